"""The docstring examples of every torch-free module of pyevonas run, and pass.

Torch-free: neither the module nor a pyevonas module it imports at module level (transitively)
imports torch or torchvision at module level: the similarity API, the search, the run store, the
reports, the command line, the errors, and the training package's config and data modules. Which
modules those are is read from the source, so a new module is covered without being listed here.
The training modules that import torch are left to their own (slow) tests.
"""

from __future__ import annotations

import ast
import doctest
import importlib
from pathlib import Path

import pytest

import pyevonas

PACKAGE = Path(pyevonas.__file__).resolve().parent
HEAVY = {"torch", "torchvision"}
# Modules whose examples must be found: a finder that silently found none would pass vacuously.
WITH_EXAMPLES = ["pyevonas.metric.api", "pyevonas.metric.archive", "pyevonas.metric.encode",
                 "pyevonas.metric.schema", "pyevonas.search.control"]  # fmt: skip


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _top_level_imports(path: Path, name: str) -> set[str]:
    """The modules a module imports when it is imported (not inside functions or TYPE_CHECKING)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    statements = list(tree.body)
    while statements:
        node = statements.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            statements += node.orelse
        elif isinstance(node, ast.If | ast.Try | ast.With):
            statements += [s for block in ("body", "orelse", "finalbody", "handlers") for s in getattr(node, block, [])]
        elif isinstance(node, ast.ExceptHandler):
            statements += node.body
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}  # a submodule, if it is one
    return found


def _torch_free_modules() -> list[str]:
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py") if p.name != "__main__.py"}
    imports = {name: _top_level_imports(path, name) for name, path in paths.items()}

    def deps(name: str) -> set[str]:
        """What importing ``name`` imports directly: its imports and its parent packages."""
        parents = {name.rsplit(".", k)[0] for k in range(1, name.count(".") + 1)}
        return imports[name] | parents

    heavy = {n for n, found in imports.items() if {m.split(".")[0] for m in found} & HEAVY}
    changed = True
    while changed:  # a module that imports a heavy module is heavy
        changed = False
        for name in paths.keys() - heavy:
            if deps(name) & heavy:
                heavy.add(name)
                changed = True
    return sorted(paths.keys() - heavy)


TORCH_FREE = _torch_free_modules()


def _run_examples(name: str) -> tuple[int, int, str]:
    """Run a module's docstring examples: (failed, attempted, the report of the failures)."""
    module = importlib.import_module(name)
    runner = doctest.DocTestRunner(verbose=False)
    report: list[str] = []
    for test in doctest.DocTestFinder().find(module, name):
        runner.run(test, out=report.append)
    return runner.failures, runner.tries, "".join(report)


@pytest.mark.parametrize("name", TORCH_FREE)
def test_the_docstring_examples_pass(name: str) -> None:
    failed, attempted, report = _run_examples(name)
    assert failed == 0, report
    assert attempted > 0 or name not in WITH_EXAMPLES, "its examples were not found"


def test_the_torch_free_modules_are_those_of_the_search_side() -> None:
    for name in ("pyevonas", "pyevonas.errors", "pyevonas.runs.store", "pyevonas.search.loop",
                 "pyevonas.search.executors.base", "pyevonas.training.config", *WITH_EXAMPLES):  # fmt: skip
        assert name in TORCH_FREE, name
    for name in ("pyevonas.training.loop", "pyevonas.training.builders", "pyevonas.training.layers"):
        assert name not in TORCH_FREE, name
