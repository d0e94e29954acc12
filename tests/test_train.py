"""Tests of training and scoring: the recipe on digits, the dataset loaders, and injected failures."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pyevonas.errors import ConfigError, DatasetError
from pyevonas.training.builders import register_layer, unregister_layer
from pyevonas.training.config import FAILED_FITNESS, Metrics, TrainConfig
from pyevonas.training.data import dataset_info, load_dataset, stratified_split
from pyevonas.training.loop import _accuracy, _augment, evaluate

torch.set_num_threads(1)

SMALL = [
    {"layer": "C_2D", "filters": 16, "kernel_size": 3, "strides": 1, "padding": "same"},
    {"layer": "BN_2D"},
    {"layer": "R_2D"},
    {"layer": "MP_2D", "pool_size": 2, "padding": "same"},
    {"layer": "C_2D", "filters": 32, "kernel_size": 3, "strides": 1, "padding": "same"},
    {"layer": "BN_2D"},
    {"layer": "R_2D"},
    {"layer": "GAP_2D"},
    {"layer": "D", "units": 32, "activation": "relu"},
]
FAST = {"latency_repeats": 3, "latency_warmup": 1, "flops": False}


# ---------------------------------------------------------------- the recipe on digits


def test_digits_candidate_learns_and_reports_everything() -> None:
    seen: list[dict[str, Any]] = []
    metrics = evaluate(SMALL, TrainConfig(epochs=3, flops=True), progress=seen.append)
    assert isinstance(metrics, Metrics)
    assert metrics.status == "ok" and metrics.error is None
    assert len(metrics.val_accuracy_per_epoch) == 3 == metrics.epochs_run
    assert metrics.fitness == metrics.val_accuracy == max(metrics.val_accuracy_per_epoch)
    assert metrics.fitness > 0.5  # real data: chance is 0.1
    assert metrics.test_accuracy is not None and metrics.test_accuracy > 0.5
    assert metrics.params == 1 * 9 * 16 + 16 + 32 + 16 * 9 * 32 + 32 + 64 + 32 * 32 + 32 + 32 * 10 + 10
    assert metrics.size_mb is not None and metrics.size_mb > 4 * metrics.params / 1e6
    assert metrics.latency_ms is not None and metrics.latency_ms > 0
    assert metrics.flops is not None and metrics.flops > 8 * 8 * 16 * 9
    assert metrics.train_seconds > 0 and metrics.batch_size == 32 and metrics.device == "cpu"
    assert [p["epoch"] for p in seen] == [1, 2, 3]
    assert all(set(p) == {"epoch", "epochs", "val_accuracy", "loss"} for p in seen)
    assert [p["val_accuracy"] for p in seen] == metrics.val_accuracy_per_epoch
    d = metrics.to_dict()
    for key in (
        "fitness",
        "val_accuracy",
        "test_accuracy",
        "params",
        "size_mb",
        "latency_ms",
        "train_seconds",
        "status",
    ):
        assert key in d


def test_same_seed_same_training() -> None:
    config = TrainConfig(epochs=1, seed=5, test=False, **FAST)
    a, b = evaluate(SMALL, config), evaluate(SMALL, config)
    assert a.val_accuracy_per_epoch == b.val_accuracy_per_epoch
    assert a.train_loss_per_epoch == b.train_loss_per_epoch
    c = evaluate(SMALL, config.model_copy(update={"seed": 6}))
    assert c.train_loss_per_epoch != a.train_loss_per_epoch


def test_padded_last_evaluation_batch_counts_only_real_images() -> None:
    from pyevonas.training.builders import build_model

    torch.manual_seed(0)
    model = build_model(SMALL, (1, 8, 8), 10)
    xs = torch.randint(0, 17, (37, 1, 8, 8), dtype=torch.uint8)
    ys = torch.randint(0, 10, (37,))
    with torch.no_grad():
        model.eval()
        expected = int((model(xs).argmax(dim=1) == ys).sum()) / 37
    for batch in (5, 10, 36, 37, 64):  # 37 = 3 x 10 + 7: the last batch of 7 is padded to 10
        assert _accuracy(model, xs, ys, batch, torch.device("cpu"), False, False) == expected
    assert model.training


def test_autotuned_depthwise_kernels_train_on_cpu() -> None:
    with_depthwise = [*SMALL[:3], {"layer": "DC_2D", "kernel_size": 3, "strides": 2, "padding": "same"}, *SMALL[3:]]
    config = TrainConfig(epochs=2, test=False, autotune=True, **FAST)
    tuned = evaluate(with_depthwise, config)
    plain = evaluate(with_depthwise, config.model_copy(update={"autotune": False}))
    assert tuned.status == plain.status == "ok"
    # Every kernel computes the same function; float rounding may differ in the last bits.
    assert tuned.train_loss_per_epoch == pytest.approx(plain.train_loss_per_epoch, rel=1e-3)


def test_text_notation_is_accepted() -> None:
    import pyevonas

    chrom = pyevonas.parse_arch("C(16,3,1) B L g F(32)")
    metrics = evaluate(chrom, TrainConfig(epochs=1, test=False, **FAST))
    assert metrics.status == "ok"


def test_early_stopping_and_subset() -> None:
    config = TrainConfig(
        epochs=5, early_stopping_patience=1, early_stopping_min_delta=1.0, max_train_images=200, **FAST
    )
    metrics = evaluate(SMALL, config)
    assert metrics.status == "ok" and metrics.epochs_run == 2


def test_config_validation() -> None:
    with pytest.raises(ConfigError, match="epochs"):
        TrainConfig.build(epochs=0)
    with pytest.raises(ConfigError, match="unknown dataset 'mnist'"):
        TrainConfig.build(dataset="mnist")
    with pytest.raises(ConfigError, match="device must be"):
        TrainConfig.build(device="tpu")
    with pytest.raises(ConfigError, match="bogus"):
        TrainConfig.build(bogus=1)
    assert TrainConfig(dataset="CIFAR-10").dataset == "cifar10"
    assert TrainConfig().resolved() == {
        "val_fraction": 0.2,
        "crop_padding": 1,
        "horizontal_flip": False,
        "batch_size": 32,
        "bn_momentum": 0.1,
    }
    paper = TrainConfig(dataset="cifar10")
    assert (paper.epochs, paper.lr, paper.momentum, paper.nesterov, paper.weight_decay) == (12, 0.1, 0.9, True, 5e-4)
    assert paper.resolved()["batch_size"] == 256 and paper.resolved()["crop_padding"] == 4
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            evaluate(SMALL, TrainConfig(device="cuda"))


# ---------------------------------------------------------------- failures never raise


@pytest.fixture
def fault_genes() -> Any:
    """Gene types that inject faults inside the model, so evaluate meets them as real failures."""

    class NaN(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * float("nan")

    class OOM(torch.nn.Module):
        def __init__(self, above: int) -> None:
            super().__init__()
            self.above = above

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if self.training and x.shape[0] > self.above:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
            return x

    class Broken(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("cuDNN error: CUDNN_STATUS_INTERNAL_ERROR")

    register_layer("NAN_TEST", lambda gene, shape: (NaN(), shape))
    register_layer("OOM_TEST", lambda gene, shape: (OOM(int(gene["above"])), shape))
    register_layer("BROKEN_TEST", lambda gene, shape: (Broken(), shape))
    yield
    for name in ("NAN_TEST", "OOM_TEST", "BROKEN_TEST"):
        unregister_layer(name)


def _with(gene: dict[str, Any]) -> list[dict[str, Any]]:
    return [SMALL[0], gene, *SMALL[1:]]


def _assert_failed(metrics: Metrics, message: str) -> None:
    assert metrics.status == "failed"
    assert metrics.error is not None and message in metrics.error, metrics.error
    assert metrics.fitness == FAILED_FITNESS and np.isfinite(metrics.fitness)


def test_nan_loss_fails_the_candidate(fault_genes: None) -> None:
    metrics = evaluate(_with({"layer": "NAN_TEST"}), TrainConfig(epochs=2, **FAST))
    _assert_failed(metrics, "non-finite training loss (nan) in epoch 1")
    assert metrics.params is not None  # what was measured before the failure is kept
    assert metrics.epochs_run == 1 and metrics.train_seconds > 0 and metrics.train_loss_per_epoch == []
    import json

    json.dumps(metrics.to_dict(), allow_nan=False)  # the store gets valid JSON


def test_out_of_memory_retries_at_half_batch(fault_genes: None) -> None:
    ok = evaluate(_with({"layer": "OOM_TEST", "above": 16}), TrainConfig(epochs=1, batch_size=32, **FAST))
    assert ok.status == "ok" and ok.batch_size == 16
    failed = evaluate(_with({"layer": "OOM_TEST", "above": 4}), TrainConfig(epochs=1, batch_size=32, **FAST))
    _assert_failed(failed, "out of memory at batch size 32 and again at 16")


def test_unbuildable_and_crashing_candidates_fail(fault_genes: None) -> None:
    _assert_failed(evaluate(_with({"layer": "SE_2D"}), TrainConfig(epochs=1, **FAST)), "gene 1 (SE_2D)")
    _assert_failed(evaluate(SMALL[:3], TrainConfig(epochs=1, **FAST)), "no global pooling")
    _assert_failed(
        evaluate(_with({"layer": "BROKEN_TEST"}), TrainConfig(epochs=1, **FAST)), "RuntimeError: cuDNN error"
    )
    bad_param = [{**SMALL[0], "filters": "many"}, *SMALL[1:]]
    _assert_failed(evaluate(bad_param, TrainConfig(epochs=1, **FAST)), "filters='many'")


def test_oversized_candidate_is_not_trained() -> None:
    metrics = evaluate(SMALL, TrainConfig(epochs=1, max_size_mb=0.001, **FAST))
    assert metrics.status == "oversized" and "max_size_mb" in (metrics.error or "")
    assert metrics.epochs_run == 0 and metrics.params is not None


def test_progress_errors_are_the_callers() -> None:
    def boom(_: dict[str, Any]) -> None:
        raise KeyError("caller bug")

    with pytest.raises(KeyError, match="caller bug"):
        evaluate(SMALL, TrainConfig(epochs=1, **FAST), progress=boom)


# ---------------------------------------------------------------- augmentation


def test_augment_crops_a_window_of_the_padded_image_and_flips() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (64, 3, 8, 8), dtype=torch.uint8)
    assert torch.equal(_augment(x, 0, False, False, gen), x)
    out = _augment(x, 2, False, False, gen)
    assert out.shape == x.shape and out.dtype == torch.uint8
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    offsets = set()
    for i in range(len(x)):
        hits = [
            (dy, dx)
            for dy in range(5)
            for dx in range(5)
            if torch.equal(padded[i, :, dy : dy + 8, dx : dx + 8], out[i])
        ]
        assert hits, i
        offsets.add(hits[0])
    assert len(offsets) > 5  # offsets vary per image
    flipped = _augment(x, 0, True, False, gen)
    same = [torch.equal(flipped[i], x[i]) for i in range(len(x))]
    mirrored = [torch.equal(flipped[i], x[i].flip(2)) for i in range(len(x))]
    assert all(s or m for s, m in zip(same, mirrored, strict=True)) and 10 < sum(mirrored) < 54
    vflipped = _augment(x, 0, False, True, gen)
    assert all(torch.equal(vflipped[i], x[i]) or torch.equal(vflipped[i], x[i].flip(1)) for i in range(len(x)))


# ---------------------------------------------------------------- datasets


def test_digits_dataset_is_real_and_split() -> None:
    ds = load_dataset("digits")
    assert ds.input_shape == (1, 8, 8) == dataset_info("digits")[0]
    assert ds.train_images.dtype == np.uint8 and ds.train_images.max() == 255
    assert len(ds.train_labels) + len(ds.test_labels) == 1797
    assert set(np.unique(ds.test_labels)) == set(range(10))
    held = stratified_split(ds.train_labels, 0.2, np.random.default_rng(0))
    counts = np.bincount(ds.train_labels[held], minlength=10)
    assert counts.min() >= 25 and len(held) == pytest.approx(0.2 * len(ds.train_labels), abs=10)


def _pickle(path: Path, entry: dict[Any, Any]) -> None:
    # protocol 2, as the python-2 era releases of CIFAR and downsampled ImageNet
    path.write_bytes(pickle.dumps(entry, protocol=2))


def _write_cifar(root: Path, name: str, n: int, rng: np.random.Generator) -> None:
    folder, files, key, classes = {
        "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"], "labels", 10),
        "cifar100": ("cifar-100-python", ["train", "test"], "fine_labels", 100),
    }[name]
    (root / folder).mkdir(parents=True)
    for fname in files:
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, classes, n)]
        entry: dict[Any, Any] = {"batch_label": "tiny", "data": data, key: labels}
        if name == "cifar100":
            entry = {k.encode(): v for k, v in entry.items()}  # some copies carry bytes keys
            entry[b"coarse_labels"] = [0] * n
        _pickle(root / folder / fname, entry)


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_loader_reads_the_python_release(tmp_path: Path, name: str) -> None:
    _write_cifar(tmp_path, name, 20, np.random.default_rng(1))
    ds = load_dataset(name, tmp_path)
    expected_train = 100 if name == "cifar10" else 20
    assert ds.train_images.shape == (expected_train, 3, 32, 32) and ds.test_images.shape == (20, 3, 32, 32)
    assert ds.num_classes == (10 if name == "cifar10" else 100)
    # Pixel layout: the 3072 bytes are the R plane, then G, then B.
    raw = pickle.loads((Path(ds.source) / ("test_batch" if name == "cifar10" else "test")).read_bytes())
    data = raw["data"] if "data" in raw else raw[b"data"]
    assert np.array_equal(ds.test_images[3, 1].ravel(), data[3, 1024:2048])
    # The folder itself works as data_dir too.
    assert load_dataset(name, Path(ds.source)).train_images.shape == ds.train_images.shape


def test_training_through_the_cifar_loader(tmp_path: Path) -> None:
    _write_cifar(tmp_path, "cifar10", 20, np.random.default_rng(2))
    arch = [{"layer": "C_2D", "filters": 16, "kernel_size": 3, "strides": 2}, {"layer": "GAP_2D"}]
    metrics = evaluate(arch, TrainConfig(dataset="cifar10", data_dir=str(tmp_path), epochs=1, **FAST))
    assert metrics.status == "ok", metrics.error
    assert metrics.batch_size == 256 and 0 <= metrics.fitness <= 1


def test_cifar_download_goes_through_torchvision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    torchvision = pytest.importorskip("torchvision")
    calls: list[tuple[str, bool]] = []

    class Offline:
        def __init__(self, root: str, train: bool, download: bool) -> None:
            calls.append((root, download))
            raise OSError("[Errno 101] Network is unreachable")

    class Downloads:
        def __init__(self, root: str, train: bool, download: bool) -> None:
            calls.append((root, download))
            _write_cifar(Path(root), "cifar10", 8, np.random.default_rng(6))

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", Offline)
    with pytest.raises(DatasetError, match=f"could not download cifar10 into {tmp_path}: .*unreachable"):
        load_dataset("cifar10", tmp_path, download=True)
    with pytest.raises(DatasetError, match="not found"):
        load_dataset("cifar10", tmp_path)  # without download=True nothing is fetched
    assert calls == [(str(tmp_path), True)]
    monkeypatch.setattr(torchvision.datasets, "CIFAR10", Downloads)
    assert load_dataset("cifar10", tmp_path, download=True).train_images.shape == (40, 3, 32, 32)


def _write_imagenet16(root: Path, rng: np.random.Generator, labels_range: tuple[int, int] = (1, 200)) -> None:
    root.mkdir(parents=True)
    for fname in [f"train_data_batch_{i}" for i in range(1, 11)] + ["val_data"]:
        n = 12
        _pickle(
            root / fname,
            {
                "data": rng.integers(0, 256, (n, 768), dtype=np.uint8),
                "labels": [int(v) for v in rng.integers(*labels_range, n)],
                "mean": np.zeros(768),
            },
        )


def test_imagenet16_loader_keeps_the_first_120_classes(tmp_path: Path) -> None:
    _write_imagenet16(tmp_path / "ImageNet16", np.random.default_rng(3))
    ds = load_dataset("imagenet16-120", tmp_path)
    raw_labels = []
    for i in range(1, 11):
        raw_labels += pickle.loads((tmp_path / "ImageNet16" / f"train_data_batch_{i}").read_bytes())["labels"]
    kept = [v - 1 for v in raw_labels if 1 <= v <= 120]
    assert ds.train_labels.tolist() == kept
    assert ds.train_images.shape == (len(kept), 3, 16, 16) and ds.num_classes == 120
    assert ds.train_labels.min() >= 0 and ds.train_labels.max() <= 119
    arch = [{"layer": "C_2D", "filters": 16, "kernel_size": 3, "strides": 1}, {"layer": "GMP_2D"}]
    metrics = evaluate(
        arch, TrainConfig(dataset="imagenet16-120", data_dir=str(tmp_path), epochs=1, val_fraction=0.3, **FAST)
    )
    assert metrics.status == "ok", metrics.error


def test_missing_and_corrupt_datasets_say_where_they_looked(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=f"cifar10 not found: .*{tmp_path}.*--download"):
        load_dataset("cifar10", tmp_path)
    with pytest.raises(DatasetError, match="imagenet16-120 not found: .*ImageNet16"):
        load_dataset("imagenet16-120", tmp_path)
    with pytest.raises(DatasetError, match="needs a data folder"):
        load_dataset("cifar100")
    with pytest.raises(DatasetError, match="unknown dataset"):
        load_dataset("svhn", tmp_path)
    _write_cifar(tmp_path, "cifar10", 4, np.random.default_rng(4))
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:100])
    with pytest.raises(DatasetError, match=f"corrupt dataset file {batch}"):
        load_dataset("cifar10", tmp_path)
    _pickle(batch, {"data": np.zeros((4, 100), dtype=np.uint8), "labels": [0, 1, 2, 3]})
    with pytest.raises(DatasetError, match=r"'data' must be uint8 of shape \(N, 3072\)"):
        load_dataset("cifar10", tmp_path)
    _pickle(batch, {"data": np.zeros((4, 3072), dtype=np.uint8), "labels": [0, 1]})
    with pytest.raises(DatasetError, match="4 images but 2 labels"):
        load_dataset("cifar10", tmp_path)
    _pickle(batch, {"data": np.zeros((4, 3072), dtype=np.uint8), "labels": [0, 1, 2, 30]})
    with pytest.raises(DatasetError, match="labels outside 0..9"):
        load_dataset("cifar10", tmp_path)
    # evaluate raises dataset problems (every candidate would fail alike) instead of failing one.
    with pytest.raises(DatasetError, match="corrupt"):
        evaluate(SMALL, TrainConfig(dataset="cifar10", data_dir=str(tmp_path), epochs=1))
    other = tmp_path / "in16"
    _write_imagenet16(other, np.random.default_rng(5), labels_range=(500, 600))
    with pytest.raises(DatasetError, match="no images with labels 1..120"):
        load_dataset("imagenet16-120", other)


@pytest.mark.slow
def test_the_cuda_recipe_path_runs_on_cpu_too() -> None:
    # bf16 autocast and channels_last are the CUDA defaults; on CPU they exercise the same code
    # (dtype of pooling corrections, 1x1 instance norm, float loss) without a GPU.
    import json

    items = json.loads((Path(__file__).parent / "data" / "paper_chromosomes.json").read_text())["chromosomes"]
    picked = [i for i in items if i["tag"] in ("instancenorm_before_pool", "flat", "no_conv", "large")]
    config = TrainConfig(
        epochs=1,
        bf16=True,
        channels_last=True,
        max_train_images=64,
        val_fraction=0.05,
        batch_size=32,
        test=False,
        flops=False,
        latency_repeats=1,
        latency_warmup=0,
    )
    assert len(picked) >= 8
    for item in picked:
        metrics = evaluate(item["chromosome"], config)
        assert metrics.status == "ok", (item["name"], metrics.error)


# ---------------------------------------------------------------- CUDA (run by `pytest -m gpu` on a GPU machine)

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.gpu
@needs_cuda
def test_cuda_path_trains_with_bf16_and_channels_last() -> None:
    metrics = evaluate(SMALL, TrainConfig(epochs=3, device="cuda"))
    assert metrics.status == "ok", metrics.error
    assert metrics.device.startswith("cuda") and metrics.fitness > 0.5
    assert metrics.latency_ms is not None and metrics.flops is not None
    # Same candidate in fp32 without channels_last: the fast path changes speed, not learning.
    plain = evaluate(SMALL, TrainConfig(epochs=3, device="cuda", bf16=False, channels_last=False))
    assert plain.status == "ok" and plain.fitness > 0.5


@pytest.mark.gpu
@needs_cuda
def test_cuda_every_paper_architecture_trains_a_step() -> None:
    import json

    from pyevonas.training.builders import build_model
    from pyevonas.training.layers import DepthwiseConv2d

    items = json.loads((Path(__file__).parent / "data" / "paper_chromosomes.json").read_text())["chromosomes"]
    # evaluate() leaves cudnn.benchmark on; here it would time every algorithm for each of the
    # ~40 architectures' layer shapes (minutes), so this test runs with cuDNN's heuristics.
    with torch.backends.cudnn.flags(enabled=True, benchmark=False):
        for item in items:
            if not {"GAP_2D", "GMP_2D", "FLAT"} & {g["layer"] for g in item["chromosome"]}:
                continue
            model = build_model(item["chromosome"], (3, 32, 32), 10).cuda().to(memory_format=torch.channels_last)
            x = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8, device="cuda")
            x = x.contiguous(memory_format=torch.channels_last)
            for impl in DepthwiseConv2d.IMPLS:  # every depthwise kernel runs on CUDA too
                for m in model.modules():
                    if isinstance(m, DepthwiseConv2d):
                        m.impl = impl
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    logits = model(x).float()
                loss = torch.nn.functional.cross_entropy(logits, torch.zeros(8, dtype=torch.long, device="cuda"))
                loss.backward()
                assert torch.isfinite(loss), (item["name"], impl)


@pytest.mark.gpu
@needs_cuda
def test_cuda_out_of_memory_retry(fault_genes: None) -> None:
    ok = evaluate(
        _with({"layer": "OOM_TEST", "above": 16}), TrainConfig(epochs=1, batch_size=32, device="cuda", **FAST)
    )
    assert ok.status == "ok" and ok.batch_size == 16


@pytest.mark.parametrize("setting", [{"lr": float("inf")}, {"lr": float("nan")}, {"weight_decay": float("inf")}])
def test_non_finite_settings_are_refused_up_front(setting: dict[str, float]) -> None:
    with pytest.raises(ConfigError, match=next(iter(setting))):
        TrainConfig.build(**setting)


def test_num_workers_is_checked_against_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    import pyevonas.training.config as config_module

    monkeypatch.setattr(config_module, "usable_cores", lambda: 4)
    assert TrainConfig.build(num_workers=4).num_workers == 4
    with pytest.raises(ConfigError, match=r"num_workers: 100000 threads is more than the 4 CPU cores"):
        TrainConfig.build(num_workers=100000)
