"""Test-suite settings shared by every test module."""

from __future__ import annotations

import os

from hypothesis import settings

# Under CI (CI=true) property tests draw the same examples on every run, so a submission's
# result does not depend on luck; locally they explore new examples each time (and keep the
# failures they find in .hypothesis/ to replay them).
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
