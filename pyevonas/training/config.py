"""Torch-free training settings and results: ``TrainConfig`` and ``Metrics``."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pyevonas.errors import ConfigError, DatasetError
from pyevonas.training.data import canonical_dataset, is_custom
from pyevonas.training.device import device_setting

#: Fitness of a candidate that could not be trained: below any real accuracy (which is >= 0).
FAILED_FITNESS = 0.0

ProgressFn = Callable[[dict[str, Any]], None]

# Defaults that depend on the dataset:
# (val_fraction, crop_padding, horizontal_flip, batch_size, bn_momentum).
# digits: 1,437 training images make 6 steps per epoch at batch 256, and Keras' BN momentum
# (0.99, PyTorch 0.01) leaves the running statistics at their initial values after so few
# steps, so every candidate would score chance. Batch 32 and momentum 0.1 let a candidate learn
# in two epochs; flipped digits are other digits, so no flips.
_DATASET_DEFAULTS: dict[str, tuple[float, int, bool, int, float]] = {
    "digits": (0.2, 1, False, 32, 0.1),
    "cifar10": (0.1, 4, True, 256, 0.01),
    "cifar100": (0.1, 4, True, 256, 0.01),
    "imagenet16-120": (0.1, 2, True, 256, 0.01),  # NAS-Bench-201 crops 16 with padding 2
}
# A dataset of one's own (npz:, folder:): the crop padding is an eighth of the image side (the
# built-ins' ratio: 4 for 32, 2 for 16, 1 for 8), set once the images are known; no flips (they
# may change the class, as for digits); a batch of 64 and PyTorch's BN momentum, so that a few
# thousand images still give enough steps per epoch for the BN statistics to settle.
_CUSTOM_DEFAULTS: tuple[float, int, bool, int, float] = (0.1, -1, False, 64, 0.1)


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask on Linux)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class TrainConfig(BaseModel):
    """How a candidate is trained and measured (defaults: the paper's recipe).

    Attributes:
        dataset: ``digits`` (built-in, offline), ``cifar10``, ``cifar100``, ``imagenet16-120``, or
            one's own: ``npz:PATH`` or ``folder:DIR`` (stored with an absolute path).
        data_dir: folder with the dataset files (not needed for ``digits`` and one's own).
        image_size: for ``folder:DIR``, resize every image to ``image_size x image_size``.
        download: download CIFAR into ``data_dir`` when missing (needs network access).
        epochs: training epochs: the length of the learning-rate schedule.
        stop_epoch: stop after this many epochs of the ``epochs``-epoch schedule (None: all);
            successive halving trains a candidate in such steps.
        checkpoint: a file to continue from (when it exists) and to save the training state to
            when training stops, so the next ``stop_epoch`` continues instead of restarting.
        batch_size: training batch size (None: 256, the paper's; digits 32; one's own 64).
        lr: initial learning rate; ``lr_schedule="cosine"`` decays it per step to 0.
        momentum, nesterov: SGD momentum.
        weight_decay, weight_decay_mode: ``decoupled`` (Keras: ``w -= lr * wd * w`` on every
            weight) or ``coupled`` (PyTorch L2 in the gradient).
        bn_momentum: PyTorch momentum of every BatchNorm (None: 0.01, Keras' 0.99 as in the
            original; digits 0.1, see ``_DATASET_DEFAULTS``).
        val_fraction: share of the training set held out for fitness (None: 0.1; digits 0.2).
        split_seed: seed of the train/validation split (the same for every candidate).
        seed: seed of weight initialisation, shuffling and augmentation.
        max_train_images: train on a stratified subset of this many images (quick runs).
        augment: random crop (``crop_padding`` pixels of zero padding; None: dataset default)
            and flips (``horizontal_flip`` None: dataset default; ``vertical_flip`` as the
            original code did).
        early_stopping_patience: stop when validation accuracy has not improved by more than
            ``early_stopping_min_delta`` for this many epochs (None: train every epoch; the
            original used 7 and 0.05).
        device: ``auto`` (CUDA if available), ``cpu``, ``cuda`` or ``cuda:N``.
        autotune: time the exact alternative kernels of every depthwise convolution on the
            first batch and keep the fastest (None: on CUDA, off on CPU).
        num_workers: CPU threads for torch on CPU (0: leave torch's setting). The data never
            leaves the device, so no loader workers are needed.
        channels_last: None = on for CUDA and CPU (on a 2-core x86 box it trains the paper's
            reference candidates 1.2-1.4x faster than NCHW; BENCHMARKS.md), off elsewhere.
        bf16: None = on for CUDA (where supported), off for CPU.
        eval_batch_size: batch size of validation and test passes (None: the training batch
            size, so evaluation reuses the training step's convolution algorithms).
        test: measure test accuracy after training.
        latency_warmup / latency_repeats: batch-1 latency measurement.
        flops: count multiply-accumulates with ptflops.
        max_size_mb: skip (``oversized``) models whose weights exceed this size.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    dataset: str = "digits"
    data_dir: str | None = None
    image_size: int | None = Field(None, ge=1)
    download: bool = False
    epochs: int = Field(12, ge=1)
    stop_epoch: int | None = Field(None, ge=1)
    checkpoint: str | None = None
    batch_size: int | None = Field(None, ge=1)
    lr: float = Field(0.1, gt=0)
    lr_schedule: Literal["cosine", "constant"] = "cosine"
    momentum: float = Field(0.9, ge=0, lt=1)
    nesterov: bool = True
    weight_decay: float = Field(5e-4, ge=0)
    weight_decay_mode: Literal["decoupled", "coupled"] = "decoupled"
    bn_momentum: float | None = Field(None, gt=0, le=1)
    val_fraction: float | None = Field(None, gt=0, lt=1)
    split_seed: int = Field(0, ge=0)
    seed: int = Field(0, ge=0)
    max_train_images: int | None = Field(None, ge=10)
    augment: bool = True
    crop_padding: int | None = Field(None, ge=0)
    horizontal_flip: bool | None = None
    vertical_flip: bool = False
    early_stopping_patience: int | None = Field(None, ge=1)
    early_stopping_min_delta: float = Field(0.0, ge=0)
    device: str = "auto"
    autotune: bool | None = None
    num_workers: int = Field(0, ge=0)
    channels_last: bool | None = None
    bf16: bool | None = None
    eval_batch_size: int | None = Field(None, ge=1)
    test: bool = True
    latency_warmup: int = Field(3, ge=0)
    latency_repeats: int = Field(20, ge=1)
    flops: bool = True
    max_size_mb: float | None = Field(None, gt=0)

    @field_validator("num_workers")
    @classmethod
    def _check_num_workers(cls, value: int) -> int:
        cores = usable_cores()
        if value > cores:
            raise ValueError(f"{value} threads is more than the {cores} CPU cores this process may use")
        return value

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, value: str) -> str:

        try:
            return canonical_dataset(value)
        except DatasetError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("device")
    @classmethod
    def _device_form(cls, value: str) -> str:
        return device_setting(value)

    @model_validator(mode="after")
    def _check_budget_and_size(self) -> TrainConfig:
        if self.stop_epoch is not None and self.stop_epoch > self.epochs:
            raise ValueError(f"stop_epoch ({self.stop_epoch}) must not exceed epochs ({self.epochs})")
        if self.image_size is not None and not self.dataset.startswith("folder:"):
            raise ValueError(f"image_size resizes the images of a folder: dataset, not of {self.dataset}")
        return self

    @classmethod
    def build(cls, **settings: Any) -> TrainConfig:
        """Like the constructor, but a bad setting raises ``ConfigError`` naming it."""
        try:
            return cls(**settings)
        except ValidationError as exc:
            problems = [
                f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {e['msg'].removeprefix('Value error, ')}"
                for e in exc.errors()[:5]
            ]
            raise ConfigError("invalid training setting: " + "; ".join(problems)) from None

    def resolved(self, input_shape: tuple[int, int, int] | None = None) -> dict[str, Any]:
        """Settings whose default depends on the dataset, filled in.

        Keys: val_fraction, crop_padding, horizontal_flip, batch_size, bn_momentum. For a dataset
        of one's own the default crop padding is an eighth of the image side of ``input_shape``
        ``(C, H, W)`` (0 when it is not given).
        """
        if is_custom(self.dataset):
            val, pad, flip, batch, momentum = _CUSTOM_DEFAULTS
            pad = min(input_shape[1:]) // 8 if input_shape is not None else 0
        else:
            val, pad, flip, batch, momentum = _DATASET_DEFAULTS[self.dataset]
        return {
            "val_fraction": self.val_fraction if self.val_fraction is not None else val,
            "crop_padding": self.crop_padding if self.crop_padding is not None else pad,
            "horizontal_flip": self.horizontal_flip if self.horizontal_flip is not None else flip,
            "batch_size": self.batch_size if self.batch_size is not None else batch,
            "bn_momentum": self.bn_momentum if self.bn_momentum is not None else momentum,
        }


@dataclass(frozen=True, slots=True)
class Metrics:
    """What one evaluation measured.

    Attributes:
        status: ``ok``, ``failed`` or ``oversized``.
        error: why it failed (None when ok).
        fitness: best validation accuracy (``FAILED_FITNESS`` when not ok).
        val_accuracy: best validation accuracy, or None.
        test_accuracy: test accuracy of the best-validation weights, or None.
        val_accuracy_per_epoch / train_loss_per_epoch: one value per epoch run.
        params: trainable parameters; size_mb: weights in MB (4 bytes per value incl. BN stats).
        latency_ms: median batch-1 inference time on the training device.
        flops: multiply-accumulates per image (ptflops), or None.
        train_seconds: wall time of the training loop (including per-epoch validation).
        epochs_run: epochs actually trained.
        batch_size: the batch size that trained (half the configured one after an OOM retry).
        device: where it trained.
        images_per_second: training throughput (training steps only, without validation).
    """

    status: str
    error: str | None = None
    fitness: float = FAILED_FITNESS
    val_accuracy: float | None = None
    test_accuracy: float | None = None
    val_accuracy_per_epoch: list[float] = field(default_factory=list)
    train_loss_per_epoch: list[float] = field(default_factory=list)
    params: int | None = None
    size_mb: float | None = None
    latency_ms: float | None = None
    flops: int | None = None
    train_seconds: float = 0.0
    epochs_run: int = 0
    batch_size: int | None = None
    device: str | None = None
    images_per_second: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of every field."""
        return asdict(self)


__all__ = ["FAILED_FITNESS", "Metrics", "ProgressFn", "TrainConfig", "usable_cores"]
