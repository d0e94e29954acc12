"""Datasets of one's own: ``npz:PATH`` and ``folder:DIR`` read, split, refused in one line, and searched end to end.

Every file here is written by the test: small synthetic images whose class is a bright square in
a class-dependent corner, so a candidate can learn them in an epoch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
Image = pytest.importorskip("PIL.Image")

from pyevonas.cli import app
from pyevonas.cli._common import run_guarded
from pyevonas.errors import DatasetError
from pyevonas.report.analysis import load_run
from pyevonas.runs.store import RunStore
from pyevonas.search.config import RunConfig
from pyevonas.training.config import TrainConfig
from pyevonas.training.data import dataset_info, load_dataset

torch.set_num_threads(1)

ARCH = "C(8,3,1) B L g F(16)"


def images(n_per_class: int, classes: int = 3, side: int = 8, channels: int = 1, seed: int = 0) -> tuple[Any, Any]:
    """``(x, y)``: uint8 NHWC images with a bright quarter chosen by the class, plus noise."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(classes), n_per_class)
    x = rng.integers(0, 60, size=(len(y), side, side, channels)).astype(np.uint8)
    half = side // 2
    for k, label in enumerate(y):
        r, c = divmod(int(label) % 4, 2)
        x[k, r * half : (r + 1) * half, c * half : (c + 1) * half, :] = 220
    return x, y


def write_npz(path: Path, **arrays: Any) -> str:
    np.savez(path, **arrays)
    return f"npz:{path}"


def write_folder(root: Path, split: str, x: Any, y: Any, names: tuple[str, ...] = ("cat", "dog", "emu")) -> None:
    for k, (img, label) in enumerate(zip(x, y, strict=True)):
        folder = root / split / names[int(label)]
        folder.mkdir(parents=True, exist_ok=True)
        plane = img[..., 0] if img.shape[-1] == 1 else img
        Image.fromarray(plane).save(folder / f"{k}.png")


def cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = run_guarded(app, args)
    out = capsys.readouterr()
    return code, out.out, " ".join(out.err.split())


# ---------------------------------------------------------------------- npz


def test_npz_without_a_test_split_gets_a_stratified_one(tmp_path: Path) -> None:
    x, y = images(20)
    spec = write_npz(tmp_path / "mine.npz", x_train=x, y_train=y)
    ds = load_dataset(spec)
    assert ds.name == f"npz:{(tmp_path / 'mine.npz').resolve()}"
    assert ds.num_classes == 3 and ds.input_shape == (1, 8, 8)
    assert ds.train_images.dtype == np.uint8 and ds.train_images.flags.c_contiguous
    assert len(ds.train_labels) == 48 and len(ds.test_labels) == 12  # 20 % held out...
    assert np.bincount(ds.test_labels).tolist() == [4, 4, 4]  # ...of every class
    again = load_dataset(spec)  # with a fixed seed
    assert np.array_equal(again.test_images, ds.test_images)
    assert dataset_info(spec) == ((1, 8, 8), 3)


def test_npz_layouts_and_pixel_types(tmp_path: Path) -> None:
    x, y = images(4, channels=3)  # NHWC uint8
    reference = load_dataset(write_npz(tmp_path / "a.npz", x_train=x, y_train=y, x_test=x, y_test=y))
    assert reference.input_shape == (3, 8, 8)
    assert np.array_equal(reference.test_images, np.moveaxis(x, 3, 1))
    forms = {
        "nchw": np.moveaxis(x, 3, 1),
        "float01": x / 255.0,
        "float255": x.astype(np.float32),
        "int64": x.astype(np.int64),
    }
    for name, xs in forms.items():
        ds = load_dataset(write_npz(tmp_path / f"{name}.npz", x_train=xs, y_train=y, x_test=xs, y_test=y))
        assert np.array_equal(ds.test_images, reference.test_images), name
    grey, _ = images(4)
    ds = load_dataset(write_npz(tmp_path / "nhw.npz", x_train=grey[..., 0], y_train=y.reshape(-1, 1)))
    assert ds.input_shape == (1, 8, 8)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"x_train": "x"}, "missing key y_train"),
        ({"x_train": "x", "y_train": "y", "x_test": "x"}, "x_test without y_test"),
        ({"x_train": "x", "y_train": "y_shifted"}, "labels must be 0..C-1 with every class present"),
        ({"x_train": "x", "y_train": "y_negative"}, "labels must be 0..C-1; y_train has label -1"),
        ({"x_train": "x", "y_train": "y_one"}, "fewer than two classes"),
        ({"x_train": "x", "y_train": "y_float"}, "non-integer"),
        ({"x_train": "x", "y_train": "y_short"}, "x_train has 12 images but y_train has 11 labels"),
        ({"x_train": "x", "y_train": "y", "x_test": "x", "y_test": "y_big"}, "y_test has label 7"),
        ({"x_train": "x_wide", "y_train": "y"}, "1 or 3 channels"),
        ({"x_train": "x_neg", "y_train": "y"}, "float images must lie in [0, 1] or [0, 255]"),
    ],
)
def test_bad_npz_files_are_one_line_naming_the_problem(
    tmp_path: Path, arrays: dict[str, str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    x, y = images(4)
    pool = {
        "x": x,
        "y": y,
        "y_shifted": y * 2,
        "y_negative": y - 1,
        "y_one": np.zeros_like(y),
        "y_float": y + 0.5,
        "y_short": y[:-1],
        "y_big": np.full_like(y, 7),
        "x_wide": np.zeros((12, 8, 8, 5), dtype=np.uint8),
        "x_neg": x.astype(np.float32) - 10,
    }
    spec = write_npz(tmp_path / "bad.npz", **{k: pool[v] for k, v in arrays.items()})
    with pytest.raises(DatasetError, match=message.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
        load_dataset(spec)
    code, _out, err = cli(["train", ARCH, "--dataset", spec, "--epochs", "1", "--device", "cpu", "-q"], capsys)
    assert code == 2 and message in err and "Traceback" not in err
    assert err.count("error:") == 1


def test_a_missing_or_foreign_npz_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="npz dataset not found"):
        load_dataset(f"npz:{tmp_path / 'nothing.npz'}")
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(DatasetError, match="cannot read .* as a NumPy .npz file"):
        load_dataset(f"npz:{tmp_path / 'text.npz'}")
    with pytest.raises(DatasetError, match="give a path after 'npz:'"):
        load_dataset("npz:")
    with pytest.raises(DatasetError, match="--image-size resizes the images of a folder"):
        load_dataset(write_npz(tmp_path / "ok.npz", x_train=images(4)[0], y_train=images(4)[1]), image_size=4)


# ---------------------------------------------------------------------- folders


def test_folder_dataset_reads_classes_and_resizes(tmp_path: Path) -> None:
    x, y = images(5, channels=3)
    write_folder(tmp_path / "pics", "train", x, y)
    xt, yt = images(2, channels=3, seed=1)
    write_folder(tmp_path / "pics", "test", xt, yt)
    ds = load_dataset(f"folder:{tmp_path / 'pics'}")
    assert ds.classes == ("cat", "dog", "emu") and ds.num_classes == 3
    assert ds.input_shape == (3, 8, 8) and len(ds.train_labels) == 15 and len(ds.test_labels) == 6
    assert ds.train_images.dtype == np.uint8
    # PNG is lossless: the pixels come back as written, class by class in sorted file order.
    order = np.argsort([f"{int(label)}/{k}" for k, label in enumerate(y)], kind="stable")
    assert sorted(map(tuple, ds.train_images.reshape(15, -1).tolist())) == sorted(
        map(tuple, np.moveaxis(x[order], 3, 1).reshape(15, -1).tolist())
    )
    small = load_dataset(f"folder:{tmp_path / 'pics'}", image_size=4)
    assert small.input_shape == (3, 4, 4)
    grey, gy = images(4)
    write_folder(tmp_path / "grey", "train", grey, gy)
    held = load_dataset(f"folder:{tmp_path / 'grey'}")
    assert held.input_shape == (1, 8, 8)
    assert len(held.train_labels) + len(held.test_labels) == 12 and len(held.test_labels) == 3


def test_bad_folders_are_one_line_naming_the_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    x, y = images(3)

    def fresh(name: str) -> Path:
        root = tmp_path / name
        write_folder(root, "train", x, y)
        return root

    cases: list[tuple[Path, str, int | None]] = []
    root = fresh("empty")
    (root / "train" / "fox").mkdir()
    cases.append((root, f"empty class folder {root / 'train' / 'fox'}", None))
    root = fresh("unreadable")
    (root / "train" / "dog" / "broken.png").write_bytes(b"\x89PNG not really")
    cases.append((root, f"cannot read image {root / 'train' / 'dog' / 'broken.png'}", None))
    root = fresh("mixed")
    Image.fromarray(np.zeros((6, 5), dtype=np.uint8)).save(root / "train" / "cat" / "odd.png")
    cases.append((root, "images of different sizes", None))
    cases.append((root, "", 4))  # --image-size makes the mixed sizes fine
    one = tmp_path / "one"
    write_folder(one, "train", x[:3], np.zeros(3, dtype=np.int64))
    cases.append((one, "fewer than two classes", None))
    cases.append((tmp_path / "nowhere", "folder dataset not found", None))
    root = fresh("stray")
    write_folder(root, "test", x[:1], np.zeros(1, dtype=np.int64), names=("wolf",))
    cases.append((root, "is not a class of", None))
    for root, message, size in cases:
        spec = f"folder:{root}"
        if not message:
            assert load_dataset(spec, image_size=size).input_shape == (1, 4, 4)
            continue
        with pytest.raises(DatasetError) as info:
            load_dataset(spec, image_size=size)
        assert message in str(info.value) and "\n" not in str(info.value)
    root = tmp_path / "mixed"
    code, _out, err = cli(["train", ARCH, "--dataset", f"folder:{root}", "--epochs", "1", "-q"], capsys)
    assert code == 2 and "images of different sizes" in err and "--image-size" in err and "Traceback" not in err


def test_settings_of_ones_own_dataset() -> None:
    config = TrainConfig(dataset="npz:~/x.npz")
    assert config.dataset == f"npz:{Path('~/x.npz').expanduser().resolve()}"
    resolved = config.resolved((3, 32, 32))
    assert resolved["crop_padding"] == 4 and resolved["horizontal_flip"] is False
    assert resolved["batch_size"] == 64 and resolved["val_fraction"] == 0.1
    with pytest.raises(ValueError, match="image_size resizes the images of a folder"):
        TrainConfig(dataset="digits", image_size=8)
    run = RunConfig.resolve(None, {"dataset": "folder:data/flowers", "image_size": 16})
    assert run.dataset == f"folder:{Path('data/flowers').resolve()}" and run.run_name == "flowers_rigid_s0"
    with pytest.raises(Exception, match="train.image_size is a top-level setting"):
        RunConfig.resolve(None, {"dataset": "folder:x", "train": {"image_size": 8}})


# ---------------------------------------------------------------------- end to end


def _one_generation(tmp_path: Path, spec: str, capsys: pytest.CaptureFixture[str], *extra: str) -> Path:
    run_dir = tmp_path / "run"
    args = ["evolve", "--dataset", spec, *extra, "--generations", "1", "--population", "2", "--epochs", "1"]
    code, _out, err = cli([*args, "--device", "cpu", "--run-dir", str(run_dir), "--quiet"], capsys)
    assert code == 0, err
    with RunStore.open(run_dir, readonly=True) as store:
        assert [ind.status for ind in store.individuals()] == ["ok", "ok"]
        assert store.meta["dataset"] == spec.split(":")[0] + ":" + str(Path(spec.split(":", 1)[1]).resolve())
    return run_dir


def test_a_search_on_an_npz_file_and_a_train(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    x, y = images(12)
    xt, yt = images(4, seed=2)
    spec = write_npz(tmp_path / "mine.npz", x_train=x, y_train=y, x_test=xt, y_test=yt)
    run_dir = _one_generation(tmp_path, spec, capsys)
    assert load_run(run_dir).dataset == f"npz:{(tmp_path / 'mine.npz').resolve()}"  # what a report names
    code, out, err = cli(["train", ARCH, "--dataset", spec, "--epochs", "1", "--device", "cpu", "--json", "-q"], capsys)
    assert code == 0, err
    result = json.loads(out)
    assert result["status"] == "ok" and result["dataset"].endswith("mine.npz") and result["test_accuracy"] is not None
    code, out, err = cli(["profile", ARCH, "--dataset", spec, "--batch-size", "4", "--repeats", "1", "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["layers"][0]["in_shape"] == [1, 8, 8]


def test_a_search_on_an_image_folder_from_run_toml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    x, y = images(12, channels=3)
    write_folder(tmp_path / "pics", "train", x, y)
    Image.fromarray(np.zeros((10, 10, 3), dtype=np.uint8)).save(tmp_path / "pics" / "train" / "cat" / "big.png")
    toml = tmp_path / "run.toml"
    toml.write_text(f'dataset = "folder:{tmp_path / "pics"}"\nimage_size = 8\n')
    run_dir = _one_generation(tmp_path, f"folder:{tmp_path / 'pics'}", capsys, "--config", str(toml))
    with RunStore.open(run_dir, readonly=True) as store:
        assert store.config["image_size"] == 8
    report = tmp_path / "report"
    code, _out, err = cli(["report", str(run_dir), "-o", str(report)], capsys)
    assert code == 0, err
    assert str((tmp_path / "pics").resolve()) in (report / "index.html").read_text(encoding="utf-8")


def test_a_dataset_of_ones_own_is_read_once_until_it_changes(tmp_path: Path) -> None:
    x, y = images(3)
    write_folder(tmp_path / "pics", "train", x, y)
    spec = f"folder:{tmp_path / 'pics'}"
    first = load_dataset(spec)
    assert load_dataset(spec) is first  # the check before a search, the class count and training share it
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(tmp_path / "pics" / "train" / "dog" / "new.png")
    again = load_dataset(spec)
    assert again is not first and len(again.train_labels) + len(again.test_labels) == 10


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["npz", "folder"])
def test_a_search_on_ones_own_data_survives_sigkill_and_resumes(
    tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Real training on the user's file in a child process, killed with SIGKILL once a candidate
    is stored; --resume finishes the run on the same data, losing and repeating nothing."""
    import os
    import signal
    import subprocess
    import sys
    import time

    x, y = images(12)
    if kind == "npz":
        spec = write_npz(tmp_path / "mine.npz", x_train=x, y_train=y)
    else:
        write_folder(tmp_path / "pics", "train", x, y)
        spec = f"folder:{tmp_path / 'pics'}"
    run_dir = tmp_path / "run"
    repo = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")])}
    args = ["--dataset", spec, "--generations", "2", "--population", "3", "--epochs", "1", "--device", "cpu"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "pyevonas", "evolve", *args, "--run-dir", str(run_dir), "--quiet"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    finished_before: set[int] = set()
    try:
        deadline = time.monotonic() + 240
        while not finished_before:
            if proc.poll() is not None:
                pytest.fail(f"the search ended ({proc.returncode}) before it could be killed: {proc.stderr.read()!r}")
            if time.monotonic() > deadline:
                pytest.fail("no candidate was stored within 240 s")
            time.sleep(0.2)
            if (run_dir / "run.sqlite").exists():
                try:
                    with RunStore.open(run_dir, readonly=True) as store:
                        finished_before = {i.id for i in store.individuals() if i.status == "ok"}
                except Exception:  # the database is being created: look again
                    continue
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    with RunStore.open(run_dir, readonly=True) as store:
        stored = {i.id: i.fitness for i in store.individuals() if i.status == "ok"}
    assert 1 <= len(stored) < 6  # killed mid-run
    code, _out, err = cli(["evolve", "--resume", str(run_dir), "--quiet"], capsys)
    assert code == 0, err
    with RunStore.open(run_dir, readonly=True) as store:
        individuals = store.individuals()
        assert len(individuals) == 6 and all(i.status in ("ok", "cached") for i in individuals)
        # What was finished before the kill is kept as it was, not trained again.
        assert {i.id: i.fitness for i in individuals if i.id in stored} == stored
        assert store.meta["dataset"] == kind + ":" + str(Path(spec.split(":", 1)[1]).resolve())
        assert store.get_state("finished") is not None
