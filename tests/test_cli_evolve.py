"""``pyevonas evolve``: flags, config files, refusals before anything starts, resume, and a tiny real run."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import stub_evaluate

from pyevonas.cli import app
from pyevonas.cli._common import read_arch, run_guarded
from pyevonas.metric import format_arch
from pyevonas.runs.store import RunStore
from pyevonas.search.config import DEMO_BUDGET, DEMO_TRAIN, RunConfig

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _one_core(monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo's default is a worker per core; these tests stub training in this process."""
    import pyevonas.search.config

    monkeypatch.setattr(pyevonas.search.config, "usable_cores", lambda: 1)


@pytest.fixture
def stub_training(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Replace training by the stub wherever the in-process evaluator looks it up."""
    import pyevonas.training.loop

    calls: list[int] = []

    def fake(chromosome: Any, config: Any, progress: Any = None) -> Any:
        calls.append(1)
        return stub_evaluate(chromosome, config, progress)

    monkeypatch.setattr(pyevonas.training.loop, "evaluate", fake)
    return calls


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = run_guarded(app, ["evolve", *args])
    out = capsys.readouterr()
    # rich wraps long lines at the console width: compare messages with the wrapping undone.
    return code, out.out, " ".join(out.err.split())


# ---------------------------------------------------------------------- refusals
@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--population", "1"], "'population'"),
        (["--generations", "0"], "'generations'"),
        (["--epochs", "0"], "'epochs'"),
        (["--control", "wild"], "'control'"),
        (["--executor", "cloud"], "'executor'"),
        (["--workers", "0"], "'workers'"),
        (["--device", "tpu"], "device"),
        (["--schema", "no-such-schema.json"], "no-such-schema.json"),
        (["--dataset", "mnist"], "mnist"),
        (["--dataset", "cifar10", "--data-dir", "/no/such/folder"], "'data_dir'"),
    ],
)
def test_invalid_settings_are_refused_before_anything_starts(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    stub_training: list[int],
    args: list[str],
    named: str,
) -> None:
    run_dir = tmp_path / "run"
    code, _out, err = _cli([*args, "--run-dir", str(run_dir), "--quiet"], capsys)
    assert code == 2
    assert named in err
    assert "Traceback" not in err
    assert not run_dir.exists()
    assert stub_training == []


def test_a_missing_dataset_is_refused_with_the_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "data").mkdir()
    code, _out, err = _cli(
        [
            "--dataset",
            "cifar10",
            "--data-dir",
            str(tmp_path / "data"),
            "--run-dir",
            str(tmp_path / "run"),
        ],
        capsys,
    )
    assert code == 2
    assert "data" in err and "cifar" in err.lower()
    assert not (tmp_path / "run").exists()


def test_a_missing_training_stack_is_refused_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # as if the train extra were not installed
    code, _out, err = _cli(["--run-dir", str(tmp_path / "run"), "--quiet"], capsys)
    assert code == 2
    assert "torch is not installed" in err and "pip install 'pyevonas[train]'" in err
    assert "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_config_file_errors_name_the_setting(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "run.toml"
    bad.write_text("populaton = 5\n")
    code, _, err = _cli(["--config", str(bad)], capsys)
    assert code == 2 and "unknown setting 'populaton'" in err and "run.toml" in err
    bad.write_text('population = "many"\n')
    code, _, err = _cli(["--config", str(bad)], capsys)
    assert code == 2 and "'population'" in err
    bad.write_text('control = "custom"\ncontrol_upper = "gen +"\ncontrol_lower = "0"\n')
    code, _, err = _cli(["--config", str(bad)], capsys)
    assert code == 2 and "control_upper" in err
    bad.write_text("population = [\n")
    code, _, err = _cli(["--config", str(bad)], capsys)
    assert code == 2 and "not valid TOML" in err
    code, _, err = _cli(["--config", str(tmp_path / "missing.toml")], capsys)
    assert code == 2 and "config file not found" in err
    bad.write_text("[train]\nbatch_size = 0\n")
    code, _, err = _cli(["--config", str(bad), "--run-dir", str(tmp_path / "r")], capsys)
    assert code == 2 and "batch_size" in err


def test_resume_refuses_search_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _cli(["--resume", str(tmp_path), "--population", "9"], capsys)
    assert code == 2 and "--population" in err
    code, _, err = _cli(["--resume", str(tmp_path / "nothing")], capsys)
    assert code == 2 and "does not exist" in err


# ---------------------------------------------------------------------- settings
def test_no_arguments_means_the_demo_budget_on_digits() -> None:
    config = RunConfig.resolve(None, {})
    assert config.dataset == "digits"
    assert (config.generations, config.population, config.epochs, config.top_k) == (
        DEMO_BUDGET["generations"],
        DEMO_BUDGET["population"],
        DEMO_BUDGET["epochs"],
        DEMO_BUDGET["top_k"],
    )
    assert config.train == DEMO_TRAIN
    paper = RunConfig.resolve(None, {"dataset": "cifar10"})
    assert (
        paper.generations,
        paper.population,
        paper.epochs,
        paper.top_k,
        paper.p_mutation,
    ) == (20, 25, 12, 5, 0.2)
    assert paper.elitism == 0 and paper.train == {}


def test_flags_override_the_config_file_and_the_resolved_config_is_saved(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], stub_training: list[int]
) -> None:
    toml = tmp_path / "run.toml"
    toml.write_text(
        'generations = 3\npopulation = 5\nseed = 7\ncontrol = "soft"\ndiversity = "upper"\n[train]\nbatch_size = 16\n'
    )
    run_dir = tmp_path / "run"
    code, out, err = _cli(
        [
            "--config",
            str(toml),
            "--generations",
            "2",
            "--run-dir",
            str(run_dir),
            "--quiet",
        ],
        capsys,
    )
    assert code == 0, err
    with RunStore.open(run_dir, readonly=True) as store:
        saved = RunConfig.from_dict(store.config)
        assert store.generations() == [1, 2]
        assert len(store.individuals(1)) == 5
    assert (
        saved.generations,
        saved.population,
        saved.seed,
        saved.control,
        saved.diversity,
    ) == (2, 5, 7, "soft", "upper")
    assert saved.train == {**DEMO_TRAIN, "batch_size": 16}
    assert f"run stored in {run_dir}" in out
    assert f"pyevonas report {run_dir} -o" in out
    assert "generation 1/2" not in out  # --quiet
    assert stub_training


def test_plain_progress_lines_without_quiet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], stub_training: list[int]
) -> None:
    """Piped, the log has one header line and a timestamp on every line up to the summary."""
    run_dir = tmp_path / "run"
    code, out, err = _cli(["--generations", "2", "--population", "4", "--run-dir", str(run_dir)], capsys)
    assert code == 0, err
    lines = out.splitlines()
    log = lines[: next(i for i, line in enumerate(lines) if line.startswith("best architecture"))]
    assert all(re.match(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} ", line) for line in log), log
    assert [line for line in log if str(run_dir) in line] == log[:1]  # one header line
    assert f"starting run {run_dir}: digits · control rigid · 2 generations × 4" in log[0]
    assert "generation 1/2: 4 candidates" in out
    assert "bred g2:" in out
    assert "finished in" in out


def test_quiet_says_where_the_run_goes_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], stub_training: list[int]
) -> None:
    run_dir = tmp_path / "run"
    code, out, err = _cli(["--generations", "1", "--population", "3", "--run-dir", str(run_dir), "--quiet"], capsys)
    assert code == 0, err
    first = out.splitlines()[0]
    assert first.startswith("pyevonas evolve: digits, control rigid") and first.endswith(f"→ {run_dir}")
    code, out, err = _cli(["--resume", str(run_dir), "--quiet"], capsys)
    assert code == 0, err
    assert out.splitlines()[0] == f"pyevonas evolve: resuming {run_dir}"


def test_the_footer_and_best_json_give_a_usable_best(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The footer prints the best's text notation with parameters (which `pyevonas train` reads),
    its accuracies, params and size; best.json holds the same candidate with its chromosome."""
    import pyevonas.training.loop

    def measured(chromosome: Any, config: Any, progress: Any = None) -> Any:
        result = stub_evaluate(chromosome, config, progress)
        return {**result, "test_accuracy": result["fitness"] - 0.01, "params": 1234, "size_mb": 0.01}

    monkeypatch.setattr(pyevonas.training.loop, "evaluate", measured)
    run_dir = tmp_path / "run"
    code, out, err = _cli(["--generations", "2", "--population", "4", "--run-dir", str(run_dir), "--quiet"], capsys)
    assert code == 0, err
    with RunStore.open(run_dir, readonly=True) as store:
        best = max((i for i in store.individuals() if i.status == "ok"), key=lambda i: (i.fitness, -i.id))
    saved = json.loads((run_dir / "best.json").read_text())
    assert (saved["name"], saved["generation"], saved["fitness"]) == (best.name, best.generation, best.fitness)
    assert saved["chromosome"] == best.chromosome and saved["test_accuracy"] == best.test_accuracy
    notation = saved["notation"]
    assert read_arch(notation) and format_arch(read_arch(notation)) == notation  # `pyevonas train` reads it
    assert read_arch(str(run_dir / "best.json")) == best.chromosome
    text = " ".join(out.split())
    assert f"best architecture: {best.name} (generation {best.generation})" in text
    assert notation in out
    assert f"fitness {best.fitness:.4f} · val accuracy {best.val_accuracy:.4f}" in text
    assert f"test accuracy {best.test_accuracy:.4f} 1,234 params · 0.01 MB" in text
    assert f"pyevonas train --from-run {run_dir}" in text


def test_when_a_setting_stops_every_candidate_the_advice_is_a_new_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyevonas.training.loop

    def too_big(chromosome: Any, config: Any, progress: Any = None) -> Any:
        return {"status": "oversized", "error": f"2.0 MB of weights > max_size_mb {config.max_size_mb}",
                "size_mb": 2.0}  # fmt: skip

    monkeypatch.setattr(pyevonas.training.loop, "evaluate", too_big)
    toml = tmp_path / "run.toml"
    toml.write_text("[train]\nmax_size_mb = 0.5\n")
    run_dir = tmp_path / "run"
    args = ["--config", str(toml), "--generations", "2", "--population", "3", "--run-dir", str(run_dir), "--quiet"]
    code, _out, err = _cli(args, capsys)
    assert code == 2
    assert "no candidate of generation 1 was trained: all 3 are larger than max_size_mb = 0.5" in err
    assert "--resume would stop here again" in err
    assert f"Start a new run with another max_size_mb (in {toml}, under [train])" in err
    assert "continue with: pyevonas evolve --resume" not in err


def test_a_failure_outside_the_settings_is_resumed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyevonas.training.loop

    def broken(chromosome: Any, config: Any, progress: Any = None) -> Any:
        raise OSError("No space left on device")

    monkeypatch.setattr(pyevonas.training.loop, "evaluate", broken)
    run_dir = tmp_path / "run"
    code, _out, err = _cli(["--generations", "2", "--population", "3", "--run-dir", str(run_dir), "--quiet"], capsys)
    assert code == 2
    assert "every candidate of generation 1 failed" in err and "No space left on device" in err
    assert f"fix it and continue with: pyevonas evolve --resume {run_dir}" in err
    assert "start a new run with that setting changed" in err


def test_default_run_folders_are_never_reused(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    stub_training: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        code, _out, err = _cli(["--generations", "1", "--population", "3", "--quiet"], capsys)
        assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [
        "digits_rigid_s0",
        "digits_rigid_s0-2",
    ]
    code, _out, err = _cli(["--generations", "1", "--run-dir", "runs/digits_rigid_s0", "--quiet"], capsys)
    assert code == 2 and "--resume" in err


def test_resume_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], stub_training: list[int]) -> None:
    run_dir = tmp_path / "run"
    code, _, err = _cli(
        [
            "--generations",
            "2",
            "--population",
            "4",
            "--run-dir",
            str(run_dir),
            "--quiet",
        ],
        capsys,
    )
    assert code == 0, err
    n_trained = len(stub_training)
    code, out, err = _cli(["--resume", str(run_dir), "--workers", "2", "--quiet"], capsys)
    assert code == 0, err
    assert len(stub_training) == n_trained  # the run was complete: nothing trains again
    assert f"run stored in {run_dir}" in out


def test_quiet_attaches_no_observer() -> None:
    from pyevonas.cli.evolve_cmds import _observe

    seen: list[object] = []
    assert _observe(lambda observers: seen.extend(observers) or "done", True) == "done"
    assert seen == []


def test_python_dash_m_pyevonas_has_the_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pyevonas", "evolve", "--help"],
        check=False,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "--resume" in done.stdout and "--control" in done.stdout


# ---------------------------------------------------------------------- a real run
@pytest.mark.slow
def test_tiny_real_run_on_digits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    torch.set_num_threads(1)
    run_dir = tmp_path / "run"
    code, out, err = _cli(
        [
            "--generations",
            "2",
            "--population",
            "4",
            "--epochs",
            "1",
            "--device",
            "cpu",
            "--run-dir",
            str(run_dir),
            "--quiet",
        ],
        capsys,
    )
    assert code == 0, err
    with RunStore.open(run_dir, readonly=True) as store:
        assert store.generations() == [1, 2]
        individuals = store.individuals()
        assert len(individuals) == 8
        trained = [ind for ind in individuals if ind.status == "ok"]
        assert trained, [ind.error for ind in individuals]
        for ind in trained:
            assert 0.0 <= (ind.fitness or 0.0) <= 1.0
            assert len(ind.val_accuracy_per_epoch) == 1
            assert ind.params and ind.params > 0
        assert store.generation_record(2).decision is not None
    assert "best architecture:" in out
    assert f"pyevonas report {run_dir} -o" in out


def test_several_workers_mean_the_process_pool() -> None:
    assert RunConfig.resolve(None, {"workers": 2}).executor == "pool"
    assert RunConfig.resolve(None, {"workers": 2, "executor": "ray"}).executor == "ray"
    assert RunConfig.resolve(None, {"dataset": "cifar10"}).executor == "inprocess"


def test_the_demo_trains_one_candidate_per_core(monkeypatch: pytest.MonkeyPatch) -> None:
    import pyevonas.search.config as config_module

    monkeypatch.setattr(config_module, "usable_cores", lambda: 2)
    monkeypatch.setattr(config_module, "_trains_on_cpu", lambda device: device in ("cpu", "auto"))  # no GPU
    demo = RunConfig.resolve(None, {}, demo_workers=True)  # what `pyevonas evolve` asks for
    assert (demo.workers, demo.executor) == (2, "pool")
    assert RunConfig.resolve(None, {}).executor == "inprocess"  # the API's default
    assert RunConfig.resolve(None, {"workers": 1}, demo_workers=True).executor == "inprocess"  # a setting wins
    assert RunConfig.resolve(None, {"executor": "inprocess"}, demo_workers=True).workers == 1
    assert RunConfig.resolve(None, {"dataset": "cifar10"}, demo_workers=True).workers == 1  # demo only
    monkeypatch.setattr(config_module, "usable_cores", lambda: 64)
    assert RunConfig.resolve(None, {"population": 6, "top_k": 2}, demo_workers=True).workers == 6  # no idle ones
    monkeypatch.setattr(config_module, "usable_cores", lambda: 1)
    assert RunConfig.resolve(None, {}, demo_workers=True).executor == "inprocess"
    # On a GPU machine the pool would put that many workers on every GPU: in-process there.
    monkeypatch.setattr(config_module, "usable_cores", lambda: 64)
    monkeypatch.setattr(config_module, "_trains_on_cpu", lambda device: device == "cpu")
    assert RunConfig.resolve(None, {}, demo_workers=True).executor == "inprocess"
    assert RunConfig.resolve(None, {"device": "cpu"}, demo_workers=True).workers == 8


def test_a_missing_gpu_is_refused_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], stub_training: list[int]
) -> None:
    import torch

    if torch.cuda.is_available():
        args = ["--device", f"cuda:{torch.cuda.device_count()}"]
    else:
        args = ["--device", "cuda"]
    code, _out, err = _cli([*args, "--run-dir", str(tmp_path / "run"), "--quiet"], capsys)
    assert code == 2 and "'device'" in err
    assert not (tmp_path / "run").exists() and stub_training == []


def test_ctrl_c_leaves_a_resumable_run_and_says_how(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyevonas.training.loop

    calls: list[int] = []

    def interrupted(chromosome: Any, config: Any, progress: Any = None) -> Any:
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return stub_evaluate(chromosome, config, progress)

    monkeypatch.setattr(pyevonas.training.loop, "evaluate", interrupted)
    run_dir = tmp_path / "run"
    code, _out, err = _cli(
        [
            "--generations",
            "2",
            "--population",
            "4",
            "--run-dir",
            str(run_dir),
            "--quiet",
        ],
        capsys,
    )
    assert code == 130
    assert f"pyevonas evolve --resume {run_dir}" in err
    with RunStore.open(run_dir, readonly=True) as store:
        statuses = [ind.status for ind in store.individuals()]
    assert statuses.count("ok") == 4 and statuses.count("running") == 1  # gen 1 done, gen 2 stopped
    code, _out, err = _cli(["--resume", str(run_dir), "--quiet"], capsys)
    assert code == 0, err
    with RunStore.open(run_dir, readonly=True) as store:
        assert all(ind.status in ("ok", "cached") for ind in store.individuals())
