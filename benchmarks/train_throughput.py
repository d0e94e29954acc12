"""Training throughput: images/s and seconds per candidate for reference architectures of the paper's runs.

The three architectures (``train_throughput_archs.json``) are trained individuals of the paper's
30 CIFAR-10 runs at the 10th, 50th and 90th percentile of parameter count (small, median,
large). Each is trained with the paper's recipe through ``pyevonas.training.loop.evaluate``, exactly as
a search trains a candidate, after one untimed warm-up run (CUDA context, allocator).

Data: CIFAR-10 from ``--data-dir`` if given; otherwise random images of CIFAR-10's shape and
size (50,000 + 10,000), written in the CIFAR python-pickle format to a temporary folder and read
by the real loader. Throughput does not depend on pixel values, so the timings hold for the
real dataset; the accuracies do not.

    python benchmarks/train_throughput.py                    # CPU: 1 epoch on 2,048 images
    python benchmarks/train_throughput.py --device cuda      # GPU: the full 12-epoch recipe
    python benchmarks/train_throughput.py --json out.json --set bf16=false --set channels_last=false
"""

from __future__ import annotations

import argparse
import json
import pickle
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ARCHS = HERE / "train_throughput_archs.json"


def write_synthetic_cifar10(root: Path, seed: int = 0) -> Path:
    """Random uint8 images in the CIFAR-10 python release layout (5 x 10,000 train, 10,000 test)."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        entry = {
            "data": rng.integers(0, 256, (10_000, 3072), dtype=np.uint8),
            "labels": [int(v) for v in rng.integers(0, 10, 10_000)],
        }
        (folder / name).write_bytes(pickle.dumps(entry, protocol=4))
    return root


def _settings(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, _, raw = pair.partition("=")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def device_name(device: str) -> str:
    import torch

    if device.startswith("cuda") or (device == "auto" and torch.cuda.is_available()):
        return torch.cuda.get_device_name(0)
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda ...")
    parser.add_argument("--data-dir", default=None, help="real CIFAR-10 (default: synthetic data of the same size)")
    parser.add_argument("--epochs", type=int, default=None, help="default: 12 on CUDA, 1 on CPU")
    parser.add_argument("--max-train-images", type=int, default=None, help="default: all on CUDA, 2048 on CPU")
    parser.add_argument("--val-fraction", type=float, default=None, help="default: 0.1 on CUDA, 0.02 on CPU")
    parser.add_argument("--archs", default="small,median,large", help="which reference architectures")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any TrainConfig setting")
    parser.add_argument("--json", default=None, metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)

    import torch

    from pyevonas.training.config import TrainConfig
    from pyevonas.training.loop import evaluate

    if args.threads:
        torch.set_num_threads(args.threads)
    on_cuda = args.device.startswith("cuda") or (args.device == "auto" and torch.cuda.is_available())
    epochs = args.epochs or (12 if on_cuda else 1)
    max_images = args.max_train_images if args.max_train_images is not None else (None if on_cuda else 2048)
    wanted = args.archs.split(",")
    archs = [a for a in json.loads(ARCHS.read_text())["architectures"] if a["tag"] in wanted]

    tmp = None
    data_dir = args.data_dir
    if data_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="pyevonas-bench-")
        t = time.perf_counter()
        data_dir = str(write_synthetic_cifar10(Path(tmp.name)))
        print(f"synthetic CIFAR-10 written in {time.perf_counter() - t:.1f} s", file=sys.stderr)

    base = {
        "dataset": "cifar10",
        "data_dir": data_dir,
        "device": args.device,
        "epochs": epochs,
        "max_train_images": max_images,
        "val_fraction": args.val_fraction or (0.1 if on_cuda else 0.02),
        # On CPU the 10,000 test images would dominate the time of a 2,048-image epoch.
        "test": on_cuda,
        **_settings(args.set),
    }
    # Untimed warm-up: CUDA context, cuDNN handles, the dataset copy on the device.
    warm = TrainConfig(
        **{**base, "epochs": 1, "max_train_images": 1024, "val_fraction": 0.02, "test": False, "flops": False}
    )
    t = time.perf_counter()
    evaluate(archs[0]["chromosome"], warm)
    print(f"warm-up (dataset load + first candidate) {time.perf_counter() - t:.1f} s", file=sys.stderr)

    config = TrainConfig(**base)
    results = []
    for arch in archs:
        start = time.perf_counter()
        metrics = evaluate(arch["chromosome"], config)
        wall = time.perf_counter() - start
        per_epoch = metrics.train_seconds / max(metrics.epochs_run, 1)
        n_train = 45_000 if max_images is None else min(max_images, 45_000)
        results.append(
            {
                "arch": arch["tag"],
                "sequence": arch["sequence"],
                "status": metrics.status,
                "error": metrics.error,
                "params": metrics.params,
                "size_mb": metrics.size_mb,
                "flops": metrics.flops,
                "epochs": metrics.epochs_run,
                "train_images": n_train,
                "batch_size": metrics.batch_size,
                "images_per_second": metrics.images_per_second,
                "train_seconds": metrics.train_seconds,
                "seconds_per_epoch": per_epoch,
                "seconds_per_candidate": wall,
                "projected_12_epochs_full_cifar10_s": (
                    12 * 45_000 / metrics.images_per_second if metrics.images_per_second else None
                ),
                "latency_ms": metrics.latency_ms,
                "val_accuracy": metrics.val_accuracy,
            }
        )

    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"pyevonas training throughput on {device_name(args.device)} (CIFAR-10 shape, {epochs} epoch(s))"
    )
    for col in (
        "arch",
        "params",
        "MMACs",
        "epochs x images",
        "images/s",
        "s/epoch",
        "s/candidate",
        "12 ep. full (s)",
        "latency ms",
    ):
        table.add_column(col, justify="right")
    for r in results:
        if r["status"] != "ok":
            table.add_row(
                r["arch"],
                f"{r['params']:,}" if r["params"] else "-",
                "-",
                "-",
                "-",
                "-",
                "-",
                "-",
                r["error"] or r["status"],
            )
            continue
        table.add_row(
            f"{r['arch']} ({r['sequence']})",
            f"{r['params']:,}",
            f"{r['flops'] / 1e6:,.0f}" if r["flops"] else "-",
            f"{r['epochs']} x {r['train_images']:,}",
            f"{r['images_per_second']:,.0f}",
            f"{r['seconds_per_epoch']:.2f}",
            f"{r['seconds_per_candidate']:.1f}",
            f"{r['projected_12_epochs_full_cifar10_s']:.1f}",
            f"{r['latency_ms']:.2f}",
        )
    Console(width=200).print(table)
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "device": device_name(args.device),
                    "torch": torch.__version__,
                    "config": config.model_dump(),
                    "synthetic_data": args.data_dir is None,
                    "results": results,
                },
                indent=2,
            )
        )
    if tmp is not None:
        tmp.cleanup()
    return 0 if all(r["status"] == "ok" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
