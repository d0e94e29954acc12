"""The documentation's Python examples, run as written, so that they stay true.

Every ```python block of README.md and docs/*.md runs: a file's blocks in order, in one namespace,
in a scratch folder. A block right after a ``<!-- skip-test: REASON -->`` line is not run, and the
reason says why (a dataset that is not in the repository, minutes of training, a signature listing).
docs/extending.md is run by tests/test_extending.py, docs/library.md and docs/integrations.md by their own tests.

Some files need a few things a reader would have: the README's run folder (made here with a stub
training) and the scoring schema's ``mine.json`` (built from the page's own JSON blocks).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import pyevonas
from pyevonas.errors import SchemaError

REPO = Path(__file__).resolve().parents[1]
#: Pages whose examples another test runs.
RUN_ELSEWHERE = {"extending.md", "integrations.md", "library.md"}
SKIP = re.compile(r"<!--\s*skip-test(?::\s*(?P<reason>.*?))?\s*-->")
BLOCK = re.compile(r"^```(?P<lang>[\w-]*)\n(?P<code>.*?)^```", re.DOTALL | re.MULTILINE)


def blocks(path: Path, lang: str = "python") -> list[tuple[int, str, str | None]]:
    """``(line, code, skip reason or None)`` of every ```lang block of a page, in order."""
    text = path.read_text(encoding="utf-8")
    found = []
    for match in BLOCK.finditer(text):
        if match["lang"] != lang:
            continue
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        skip = SKIP.fullmatch(before.strip())
        reason = None if skip is None else (skip["reason"] or "")
        found.append((text.count("\n", 0, match.start()) + 2, match["code"], reason))
    return found


PAGES = [REPO / "README.md"] + sorted(p for p in (REPO / "docs").glob("*.md") if p.name not in RUN_ELSEWHERE)
PAGES_WITH_CODE = [p for p in PAGES if any(skip is None for _, _, skip in blocks(p))]


# ---------------------------------------------------------------------- what some pages need
def stub_evaluate(chromosome: Any, config: Any, progress: Any = None) -> dict[str, Any]:
    """Pretend training: a fitness that depends only on the architecture's length."""
    fitness = 1.0 / (1.0 + len(chromosome))
    if progress is not None:
        progress({"epoch": 1, "epochs": 1, "val_accuracy": fitness, "loss": 1.0})
    return {"status": "ok", "fitness": fitness, "val_accuracy": fitness, "val_accuracy_per_epoch": [fitness]}


def _readme_run(folder: Path) -> None:
    """The run folder the README's RunStore example reads (``pyevonas evolve`` would write it)."""
    from pyevonas.search.config import RunConfig
    from pyevonas.search.loop import evolve

    config = RunConfig.resolve(None, {"generations": 2, "population": 4, "run_dir": "runs/digits_rigid_s0"})
    evolve(config, evaluate_fn=stub_evaluate)


def _scoring_schema_file(folder: Path) -> None:
    """``mine.json``: ``schemas/default.json`` plus the gene type, rules and graph section of the page's JSON blocks."""
    found = [code.lstrip() for _, code, _ in blocks(REPO / "docs" / "scoring_schema.md", "json")]
    (gene,) = (code for code in found if code.startswith('{\n  "letter"'))
    (rules,) = (code for code in found if code.startswith('{"pairs"'))
    (graph,) = (code for code in found if code.startswith('"graph"'))
    data = json.loads((REPO / "schemas" / "default.json").read_text(encoding="utf-8"))
    data["genes"].append(json.loads(gene))
    data["rules"].extend(json.loads(f"[{rules}]"))
    data.update(json.loads(f"{{{graph}}}"))
    (folder / "mine.json").write_text(json.dumps(data), encoding="utf-8")


SETUP: dict[str, Callable[[Path], None]] = {"README.md": _readme_run, "scoring_schema.md": _scoring_schema_file}


# ---------------------------------------------------------------------- the tests
@pytest.mark.parametrize("page", PAGES_WITH_CODE, ids=lambda p: p.name)
def test_the_python_blocks_of_a_page_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    if page.name in SETUP:
        SETUP[page.name](tmp_path)
    namespace: dict[str, Any] = {"__name__": "__main__"}
    for line, code, skip in blocks(page):
        if skip is not None:
            continue
        try:
            exec(compile(code, f"{page.name}, block at line {line}", "exec"), namespace)
        except ModuleNotFoundError as exc:
            if exc.name in ("torch", "torchvision", "sklearn"):
                pytest.skip(f"{page.name} line {line} needs {exc.name}")
            raise


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_skipped_block_says_why(page: Path) -> None:
    for line, _, skip in blocks(page):
        assert skip is None or len(skip) > 10, f"{page.name} line {line}: give a reason, <!-- skip-test: why -->"


def test_the_readme_evolve_example_runs_with_a_stub_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's Python search as written, with the training replaced: the demo settings, the
    observer's lines and the result's fields."""
    from pyevonas.search import loop
    from pyevonas.search.config import RunConfig

    (code,) = [code for _, code, _ in blocks(REPO / "README.md") if "RunConfig.demo(" in code]
    seen: list[RunConfig] = []
    real_evolve = loop.evolve

    def evolve(config: RunConfig, **kwargs: Any) -> Any:
        seen.append(config)
        quick = config.with_updates(generations=2, executor="inprocess", workers=1)
        return real_evolve(quick, evaluate_fn=stub_evaluate, **kwargs)

    monkeypatch.setattr(loop, "evolve", evolve)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {"__name__": "__main__"})
    (config,) = seen
    assert (config.generations, config.population, config.epochs) == (8, 8, 4)
    assert config.train["batch_size"] == 64 and config.train["num_workers"] == 1
    out = capsys.readouterr().out
    assert "generation 1/2: best " in out and "median similarity" in out and "fitness" in out
    assert out.rstrip().endswith("runs/demo")


def test_run_config_demo_is_what_the_command_line_runs() -> None:
    from pyevonas.cli.evolve_cmds import _resolve
    from pyevonas.search.config import RunConfig

    for flags in ({}, {"generations": 3, "seed": 2}, {"dataset": "cifar10"}):
        cli = _resolve(None, {**flags, "run_dir": "runs/x"})
        assert RunConfig.demo(**flags, run_dir="runs/x") == cli
    assert RunConfig.demo().train != RunConfig().train  # RunConfig(...) is the paper's recipe


def test_the_scoring_schema_worked_example_scores_as_the_page_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _scoring_schema_file(tmp_path)
    s = pyevonas.Scoring.load("mine.json")
    a = [{"layer": "SEP_2D", "filters": 64, "kernel_size": 5, "strides": 1}, {"layer": "GAP_2D"}]
    assert pyevonas.similarity(a, "C(64,5,1) g", schema=s) == pytest.approx((2 + 1.5 + 1) / (4.5 + 1))


def test_the_scoring_schema_error_examples_are_real(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The page's two messages, from the file it describes: one stage at a time."""
    monkeypatch.chdir(tmp_path)
    shown = [code for _, code, _ in blocks(REPO / "docs" / "scoring_schema.md", "") if "invalid scoring" in code]
    data = json.loads((REPO / "schemas" / "default.json").read_text(encoding="utf-8"))
    data["genes"][3]["letter"] = "C"
    data["genes"][2]["params"]["pool_size"]["min"] = 9
    data["rules"][4]["terms"][0]["param"] = "size"
    for expected, fix in zip(shown, ("genes", None), strict=True):
        Path("mine.json").write_text(json.dumps(data), encoding="utf-8")
        with pytest.raises(SchemaError) as err:
            pyevonas.Scoring.load("mine.json")
        assert str(err.value) == expected.rstrip("\n")
        if fix == "genes":
            data["genes"][3]["letter"] = "A"
            data["genes"][2]["params"]["pool_size"]["min"] = 2
