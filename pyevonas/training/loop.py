"""Train and score one candidate architecture: the paper's recipe, fast, and never crashing a search.

``evaluate(chromosome, TrainConfig(...))`` builds the model, trains it, and returns
:class:`Metrics`. Conventions:

* **Fitness** is the best validation accuracy over the epochs, on a split held out from the
  training set (``val_fraction``, stratified, fixed by ``split_seed`` so that every candidate
  sees the same split). The original scored on the test set; here the test set is used once,
  after training, with the best-validation weights (``test_accuracy``).
* **Recipe** (defaults): SGD, Nesterov momentum 0.9, learning rate 0.1 with per-step cosine
  decay to 0, weight decay 5e-4, batch 256 (the paper's number; the code used 128), 12 epochs,
  4-pixel padded random crop and horizontal flip (CIFAR). Weight decay is by default decoupled
  and scaled by the learning rate, applied to every weight, as Keras' ``SGD(weight_decay=...)``
  in the original (``weight_decay_mode="coupled"`` gives PyTorch's L2 instead).
* **Speed**: the whole dataset stays on the device as uint8; batches are drawn by index, and
  crop and flip run on the device as tensor ops. The model runs channels_last; on CUDA under bf16
  autocast with a fused optimizer step, and every depthwise convolution gets the fastest of its
  exact kernels, timed on the first batch (``autotune``). Every step sees a full batch (the
  images left over after the last full batch wait for the next epoch's shuffle), and evaluation
  pads its last batch to the same size, so cuDNN meets one batch shape. The host synchronises
  once per epoch (loss and validation accuracy), not per batch.
* **Failures never raise**: an unbuildable model, a NaN or infinite loss, CUDA out of memory
  (retried once at half the batch) or any other error inside training gives ``status="failed"``
  with the reason and ``fitness = FAILED_FITNESS``. A model above ``max_size_mb`` is not trained
  (``status="oversized"``, as the original's 40 MB filter). Only problems with the
  configuration or the dataset itself raise (``ConfigError``, ``DatasetError``), since every
  other candidate would fail the same way.
* **Continuing** (successive halving): ``stop_epoch`` stops training after that many epochs of the
  ``epochs``-epoch schedule (the learning rate follows the whole schedule), and ``checkpoint``
  names a file that keeps the training state: weights, optimizer, random generators, the best
  weights so far and the per-epoch history. A later call with a larger ``stop_epoch`` and the
  same file continues from it, so training to 3, then 6, then 12 epochs gives exactly the
  12-epoch run. A checkpoint of another training (architecture or settings) or one that cannot
  be read is ignored: the candidate trains from the start.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from pyevonas.errors import DatasetError, PyevonasError
from pyevonas.training.builders import build_model
from pyevonas.training.config import Metrics, ProgressFn, TrainConfig
from pyevonas.training.data import ImageDataset, load_dataset, stratified_split
from pyevonas.training.device import resolve_device
from pyevonas.training.layers import ChainModel
from pyevonas.training.measure import count_flops, count_parameters, measure_latency_ms, model_size_mb
from pyevonas.training.tuning import tune_depthwise

# ---------------------------------------------------------------------------- data on the device


@dataclass
class _Splits:
    train_x: Any
    train_y: Any
    val_x: Any
    val_y: Any
    test_x: Any
    test_y: Any
    input_shape: tuple[int, int, int]
    num_classes: int


_HOST_CACHE: dict[tuple[Any, ...], ImageDataset] = {}
_DEVICE_CACHE: dict[tuple[Any, ...], _Splits] = {}


def _host_dataset(config: TrainConfig) -> ImageDataset:

    key = (config.dataset, config.data_dir, config.image_size)
    if key not in _HOST_CACHE:
        _HOST_CACHE.clear()  # one dataset at a time: CIFAR is 180 MB
        _HOST_CACHE[key] = load_dataset(
            config.dataset, config.data_dir, download=config.download, image_size=config.image_size
        )
    return _HOST_CACHE[key]


def _device_splits(config: TrainConfig, device: Any) -> _Splits:

    resolved = config.resolved()
    key = (
        config.dataset,
        config.data_dir,
        config.image_size,
        resolved["val_fraction"],
        config.split_seed,
        config.max_train_images,
        str(device),
    )
    cached = _DEVICE_CACHE.get(key)
    if cached is not None:
        return cached
    ds = _host_dataset(config)
    rng = np.random.default_rng(config.split_seed)
    labels = ds.train_labels
    val_idx = stratified_split(labels, resolved["val_fraction"], rng)
    train_mask = np.ones(len(labels), dtype=bool)
    train_mask[val_idx] = False
    train_idx = np.flatnonzero(train_mask)
    if config.max_train_images is not None and config.max_train_images < len(train_idx):
        keep = stratified_split(labels[train_idx], config.max_train_images / len(train_idx), rng)
        train_idx = train_idx[keep]
    if len(train_idx) < 2 or len(val_idx) < 1:
        raise DatasetError(f"{ds.name} in {ds.source} is too small to split into train and validation")

    def put(array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array)).to(device)

    splits = _Splits(
        put(ds.train_images[train_idx]),
        put(labels[train_idx]),
        put(ds.train_images[val_idx]),
        put(labels[val_idx]),
        put(ds.test_images),
        put(ds.test_labels),
        ds.input_shape,
        ds.num_classes,
    )
    _DEVICE_CACHE.clear()  # free the previous device copy before keeping this one
    _DEVICE_CACHE[key] = splits
    return splits


def _augment(x: torch.Tensor, pad: int, hflip: bool, vflip: bool, gen: Any) -> torch.Tensor:
    """Random crop after zero padding, and flips, on a uint8 batch (N, C, H, W) on its device."""

    n, c, h, w = x.shape
    dev = x.device
    if pad > 0:
        padded = F.pad(x, (pad, pad, pad, pad))
        off_y = torch.randint(0, 2 * pad + 1, (n,), device=dev, generator=gen)
        off_x = torch.randint(0, 2 * pad + 1, (n,), device=dev, generator=gen)
        rows = off_y[:, None] + torch.arange(h, device=dev)
        cols = off_x[:, None] + torch.arange(w, device=dev)
        x = padded[
            torch.arange(n, device=dev)[:, None, None, None],
            torch.arange(c, device=dev)[None, :, None, None],
            rows[:, None, :, None],
            cols[:, None, None, :],
        ]
    if hflip:
        mask = torch.rand(n, device=dev, generator=gen) < 0.5
        x = torch.where(mask[:, None, None, None], x.flip(3), x)
    if vflip:
        mask = torch.rand(n, device=dev, generator=gen) < 0.5
        x = torch.where(mask[:, None, None, None], x.flip(2), x)
    return x


# ---------------------------------------------------------------------------- training


class _Diverged(Exception):
    """The training loss became NaN or infinite; carries what was measured until then."""

    def __init__(self, message: str, outcome: _Outcome) -> None:
        super().__init__(message)
        self.outcome = outcome


class _CallbackFailed(Exception):
    """The caller's progress callback raised: the caller's bug, re-raised as is."""


@dataclass
class _Outcome:
    val_per_epoch: list[float]
    loss_per_epoch: list[float]
    best_state: dict[str, Any] | None
    train_seconds: float
    images: int
    eval_seconds: float = 0.0
    error: str | None = None
    # Where training stands, for a continuation from a checkpoint.
    epoch: int = 0
    step: int = 0
    best: float = -1.0
    stale: int = 0
    stopped: bool = False


_CHECKPOINT_FORMAT = "pyevonas-checkpoint-1"
# Settings that do not change the trajectory of training, so a checkpoint stays valid across them.
_NOT_TRAINING = frozenset(
    {"stop_epoch", "checkpoint", "device", "num_workers", "test", "latency_warmup", "latency_repeats", "flops",
     "max_size_mb", "download", "data_dir", "autotune", "eval_batch_size"}
)  # fmt: skip


def _fingerprint(chromosome: Any, config: TrainConfig) -> str:
    """What a checkpoint must match to be continued: the architecture and the training settings."""
    settings = {k: v for k, v in config.model_dump(mode="json").items() if k not in _NOT_TRAINING}
    text = json.dumps([chromosome, settings], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _load_checkpoint(path: str, fingerprint: str, device: Any) -> dict[str, Any] | None:
    """The saved state of the same training, or None (no file, another training, unreadable)."""
    p = Path(path)
    if not p.is_file():
        return None
    try:
        state = torch.load(p, map_location=device, weights_only=True)
    except Exception:  # a torn or foreign file: train from the start (and overwrite it)
        return None
    if not isinstance(state, dict) or state.get("format") != _CHECKPOINT_FORMAT:
        return None
    return state if state.get("fingerprint") == fingerprint else None


def _save_checkpoint(path: str, state: dict[str, Any]) -> None:
    """Write atomically: a process killed while saving leaves the previous checkpoint whole."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, p)


def _autocast(device: Any, bf16: bool) -> contextlib.AbstractContextManager[Any]:

    if bf16:
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _accuracy(model: Any, xs: Any, ys: Any, batch: int, device: Any, channels_last: bool, bf16: bool) -> float:

    if len(ys) == 0:
        return 0.0
    model.eval()
    correct = torch.zeros((), dtype=torch.int64, device=device)
    with torch.no_grad(), _autocast(device, bf16):
        for start in range(0, len(ys), batch):
            x = xs[start : start + batch]
            y = ys[start : start + batch]
            if start > 0 and len(y) < batch:
                # Pad the last batch with blank images (each image is classified on its own in
                # eval mode): cuDNN then meets no new batch shape.
                x = torch.cat([x, x.new_zeros((batch - len(y), *x.shape[1:]))])
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            correct += (model(x)[: len(y)].argmax(dim=1) == y).sum()
    model.train()
    return int(correct.item()) / len(ys)


def _fit(
    model: Any,
    data: _Splits,
    config: TrainConfig,
    batch_size: int,
    eval_batch: int,
    device: Any,
    channels_last: bool,
    bf16: bool,
    autotune: bool,
    progress: ProgressFn | None,
    resume: dict[str, Any] | None = None,
    fingerprint: str = "",
) -> _Outcome:

    resolved = config.resolved(data.input_shape)
    pad = resolved["crop_padding"] if config.augment else 0
    hflip = bool(resolved["horizontal_flip"]) and config.augment
    vflip = config.vertical_flip and config.augment
    gen = torch.Generator(device=device)
    gen.manual_seed(config.seed)

    params = [p for p in model.parameters() if p.requires_grad]
    coupled = config.weight_decay_mode == "coupled"
    optimizer = sgd_optimizer(
        params,
        device,
        lr=config.lr,
        momentum=config.momentum,
        nesterov=config.nesterov,
        weight_decay=config.weight_decay if coupled else 0.0,
    )
    n = len(data.train_y)
    # Full batches only: the images after the last full batch wait for the next shuffle (a
    # training set smaller than one batch is one batch).
    batch_size = min(batch_size, n)
    steps_per_epoch = n // batch_size
    if autotune:
        first = data.train_x[:batch_size]
        tune_depthwise(
            model, first.contiguous(memory_format=torch.channels_last) if channels_last else first, bf16=bf16
        )
    total_steps = config.epochs * steps_per_epoch
    outcome = _Outcome([], [], None, 0.0, 0)
    if resume is not None:
        outcome = _restore(resume, optimizer, gen, device)
    step = outcome.step
    stop = config.stop_epoch or config.epochs
    model.train()
    start = time.perf_counter() - outcome.train_seconds
    for epoch in range(outcome.epoch + 1, stop + 1):
        if outcome.stopped:
            break
        perm = torch.randperm(n, device=device, generator=gen)
        loss_sum = torch.zeros((), dtype=torch.float32, device=device)
        for b in range(steps_per_epoch):
            idx = perm[b * batch_size : (b + 1) * batch_size]
            x = data.train_x[idx]
            y = data.train_y[idx]
            x = _prepare_batch(x, pad, hflip, vflip, gen, channels_last)
            lr = _learning_rate(config, step, total_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            if not coupled and config.weight_decay > 0:
                with torch.no_grad():
                    torch._foreach_mul_(params, 1.0 - lr * config.weight_decay)
            with _autocast(device, bf16):
                logits = model(x)
            loss = F.cross_entropy(logits.float(), y)
            optimizer.zero_grad(set_to_none=True)
            torch.autograd.backward(loss)
            optimizer.step()
            loss_sum += loss.detach()
            outcome.images += len(idx)
            step += 1
        epoch_loss = float((loss_sum / max(steps_per_epoch, 1)).item())
        outcome.loss_per_epoch.append(epoch_loss)
        outcome.epoch, outcome.step = epoch, step
        if not math.isfinite(epoch_loss):
            outcome.train_seconds = time.perf_counter() - start
            raise _Diverged(f"non-finite training loss ({epoch_loss}) in epoch {epoch}", outcome)
        eval_start = time.perf_counter()
        val = _accuracy(model, data.val_x, data.val_y, eval_batch, device, channels_last, bf16)
        outcome.eval_seconds += time.perf_counter() - eval_start
        outcome.val_per_epoch.append(val)
        _record_validation(outcome, model, val, config.early_stopping_min_delta)
        if progress is not None:
            try:
                progress({"epoch": epoch, "epochs": stop, "val_accuracy": val, "loss": epoch_loss})
            except Exception as exc:
                raise _CallbackFailed() from exc
        if config.early_stopping_patience is not None and outcome.stale >= config.early_stopping_patience:
            outcome.stopped = True
            break
    outcome.train_seconds = time.perf_counter() - start
    if config.checkpoint is not None:
        _save_training(config.checkpoint, fingerprint, batch_size, model, optimizer, gen, device, outcome)
    return outcome


def _restore(resume: dict[str, Any], optimizer: Any, gen: Any, device: Any) -> _Outcome:
    """Put a checkpoint's optimizer and random generators back and return where its training stood."""
    optimizer.load_state_dict(resume["optimizer"])
    gen.set_state(resume["generator"].cpu())
    torch.set_rng_state(resume["torch_rng"].cpu())  # dropout draws from the global generator
    if device.type == "cuda" and resume.get("cuda_rng") is not None:
        torch.cuda.set_rng_state(resume["cuda_rng"].cpu(), device)
    return _Outcome(**{**resume["outcome"], "best_state": resume.get("best_state")})


def _prepare_batch(x: torch.Tensor, pad: int, hflip: bool, vflip: bool, gen: Any, channels_last: bool) -> torch.Tensor:
    """A training batch augmented (when any augmentation is on) and in the model's memory format."""
    if pad or hflip or vflip:
        x = _augment(x, pad, hflip, vflip, gen)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def _learning_rate(config: TrainConfig, step: int, total_steps: int) -> float:
    """The learning rate of a step: per-step cosine decay to 0 over the schedule, or constant."""
    if config.lr_schedule == "cosine":
        return 0.5 * config.lr * (1.0 + math.cos(math.pi * step / total_steps))
    return config.lr


def _record_validation(outcome: _Outcome, model: Any, val: float, min_delta: float) -> None:
    """Keep the best validation accuracy and its weights; count the epochs without an improvement of min_delta."""
    if val > outcome.best:
        if val > outcome.best + min_delta:
            outcome.stale = 0
        else:
            outcome.stale += 1
        outcome.best = val
        outcome.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    else:
        outcome.stale += 1


def _save_training(
    path: str, fingerprint: str, batch_size: int, model: Any, optimizer: Any, gen: Any, device: Any, outcome: _Outcome
) -> None:
    """Checkpoint the training state: weights, optimizer, random generators, best weights and history."""
    saved = {f.name: getattr(outcome, f.name) for f in fields(outcome) if f.name != "best_state"}
    _save_checkpoint(
        path,
        {
            "format": _CHECKPOINT_FORMAT,
            "fingerprint": fingerprint,
            "batch_size": batch_size,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "generator": gen.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
            "outcome": saved,
            "best_state": outcome.best_state,
        },
    )


def sgd_optimizer(
    params: list[Any],
    device: Any,
    *,
    lr: float,
    momentum: float = 0.9,
    nesterov: bool = True,
    weight_decay: float = 0.0,
) -> torch.optim.SGD:
    """SGD as a candidate trains with it: one fused kernel for the whole update on CUDA, one
    multi-tensor call elsewhere (torch's CPU default loops over the parameters in Python)."""

    return torch.optim.SGD(
        params,
        lr=lr,
        momentum=momentum,
        nesterov=nesterov and momentum > 0,
        weight_decay=weight_decay,
        fused=device.type == "cuda" or None,
        foreach=device.type != "cuda" or None,
    )


def _is_oom(exc: BaseException) -> bool:

    oom_type = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)  # torch < 2.5: only the cuda one
    return isinstance(exc, oom_type) or "out of memory" in str(exc).lower()


def _free_memory(device: Any) -> None:

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def evaluate(
    chromosome: Sequence[Mapping[str, Any]] | str,
    config: TrainConfig | None = None,
    progress: ProgressFn | None = None,
    *,
    on_trained: Callable[[Any, Metrics], None] | None = None,
) -> Metrics:
    """Build, train and measure one candidate.

    Args:
        chromosome: a chromosome (list of gene dicts) or a text-notation architecture.
        config: how to train (default: ``TrainConfig()``, the paper's recipe on ``digits``).
        progress: called after every epoch with ``{"epoch", "epochs", "val_accuracy", "loss"}``.
        on_trained: called once with the trained model (the best validation epoch's weights, in
            eval mode) and its metrics, when training succeeded; ``train --save`` writes it out.

    Returns:
        :class:`Metrics`; ``status`` is ``failed`` (with ``error``) for a candidate that cannot
        be built or trained, never an exception.

    Raises:
        ConfigError: the device asked for does not exist.
        DatasetError: the dataset is missing or corrupt.
    """

    config = config or TrainConfig()
    device = resolve_device(config.device)
    if device.type == "cpu" and config.num_workers > 0:
        torch.set_num_threads(config.num_workers)
    data = _device_splits(config, device)
    fingerprint = _fingerprint(chromosome, config) if config.checkpoint is not None else ""
    resume = _load_checkpoint(config.checkpoint, fingerprint, device) if config.checkpoint is not None else None
    on_cuda = device.type == "cuda"
    channels_last = config.channels_last if config.channels_last is not None else device.type in ("cuda", "cpu")
    bf16 = config.bf16 if config.bf16 is not None else (on_cuda and torch.cuda.is_bf16_supported())
    autotune = config.autotune if config.autotune is not None else on_cuda
    if on_cuda:
        torch.backends.cudnn.benchmark = True
    base: dict[str, Any] = {"device": str(device)}
    resolved = config.resolved(data.input_shape)
    build = functools.partial(_build, chromosome, data, device, config.seed, resolved["bn_momentum"], channels_last)
    model, unbuilt = _first_model(build, resume, base)
    if unbuilt is not None:
        return unbuilt
    n_params = count_parameters(model)
    size = model_size_mb(model)
    sized: dict[str, Any] = {**base, "params": n_params, "size_mb": size}
    if config.max_size_mb is not None and size > config.max_size_mb:
        return Metrics(
            status="oversized", error=f"{size:.1f} MB of weights > max_size_mb {config.max_size_mb}", **sized
        )

    batch = int(resume["batch_size"]) if resume is not None else int(resolved["batch_size"])
    eval_batch = config.eval_batch_size or batch
    outcome: _Outcome | None = None
    failure: str | None = None
    partial: dict[str, Any] = {}
    for attempt in (1, 2):
        tried = _attempt_fit(
            functools.partial(
                _fit, model, data, config, batch, eval_batch, device, channels_last, bf16, autotune, progress,
                resume, fingerprint,
            )
        )  # fmt: skip
        # A failed attempt keeps what an earlier one left.
        outcome, failure, partial = tried.outcome or outcome, tried.failure, tried.partial or partial
        if not tried.out_of_memory:
            break
        # Outside the except block, so the traceback no longer pins the activations.
        failure = f"out of memory at batch size {batch}"
        if attempt == 2:
            failure = f"out of memory at batch size {resolved['batch_size']} and again at {batch}"
        del model
        _free_memory(device)
        if attempt == 2 or batch == 1:
            break
        resume = None  # the retry starts afresh at half the batch
        batch, eval_batch = max(1, batch // 2), max(1, eval_batch // 2)
        try:
            model = build()
        except Exception as rebuild_exc:
            failure = f"{failure}; rebuilding the model failed: {rebuild_exc}"
            break
    if failure is not None or outcome is None:
        _free_memory(device)
        return Metrics(status="failed", error=failure or "training did not run", batch_size=batch, **partial, **sized)

    metrics = _trained_metrics(outcome, batch, sized)
    _measure(model, outcome, data, config, eval_batch, device, channels_last, bf16, metrics)
    if on_trained is not None:
        on_trained(model.eval(), Metrics(**metrics))
    del model, outcome
    if on_cuda:
        _free_memory(device)
    return Metrics(**metrics)


def _build(
    chromosome: Sequence[Mapping[str, Any]] | str,
    data: _Splits,
    device: Any,
    seed: int,
    bn_momentum: Any,
    channels_last: bool,
) -> ChainModel:
    """The candidate's model on the device: seeded, with the recipe's batch-norm momentum and memory format."""
    torch.manual_seed(seed)
    model = build_model(chromosome, data.input_shape, data.num_classes).to(device)
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.momentum = bn_momentum
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def _first_model(
    build: Callable[[], Any], resume: dict[str, Any] | None, base: dict[str, Any]
) -> tuple[Any, Metrics | None]:
    """The built model (with a checkpoint's weights), or None and the failed Metrics saying why it cannot be built."""
    try:
        model = build()
        if resume is not None:
            model.load_state_dict(resume["model"])
    except PyevonasError as exc:
        return None, Metrics(status="failed", error=f"cannot build the model: {exc}", **base)
    except Exception as exc:  # a user-registered builder may raise anything
        if _is_oom(exc):
            return None, Metrics(status="failed", error=f"out of memory while building the model: {exc}", **base)
        return None, Metrics(status="failed", error=f"cannot build the model: {type(exc).__name__}: {exc}", **base)
    return model, None


@dataclass
class _Attempt:
    """One training attempt: its outcome, or why it failed (with what a diverged training measured)."""

    outcome: _Outcome | None = None
    failure: str | None = None
    partial: dict[str, Any] | None = None
    out_of_memory: bool = False


def _attempt_fit(fit: Callable[[], _Outcome]) -> _Attempt:
    """Run one training attempt; a divergence or an error becomes the reason, a callback's error is re-raised."""
    try:
        return _Attempt(outcome=fit())
    except _CallbackFailed as exc:
        raise exc.__cause__ from None  # type: ignore[misc]
    except _Diverged as exc:
        partial = {
            "val_accuracy_per_epoch": exc.outcome.val_per_epoch,
            # the non-finite loss stays in the error text: NaN is not valid JSON for the store
            "train_loss_per_epoch": [v for v in exc.outcome.loss_per_epoch if math.isfinite(v)],
            "train_seconds": exc.outcome.train_seconds,
            "epochs_run": len(exc.outcome.loss_per_epoch),
        }
        return _Attempt(failure=str(exc), partial=partial)
    except Exception as exc:
        return _Attempt(failure=f"training failed: {type(exc).__name__}: {exc}", out_of_memory=_is_oom(exc))


def _trained_metrics(outcome: _Outcome, batch: int, sized: dict[str, Any]) -> dict[str, Any]:
    """The metrics of a trained candidate: best validation accuracy as fitness, history and training speed."""
    val_best = max(outcome.val_per_epoch)
    fit_seconds = outcome.train_seconds - outcome.eval_seconds
    return {
        "status": "ok",
        "fitness": val_best,
        "val_accuracy": val_best,
        "val_accuracy_per_epoch": outcome.val_per_epoch,
        "train_loss_per_epoch": outcome.loss_per_epoch,
        "train_seconds": outcome.train_seconds,
        "epochs_run": len(outcome.val_per_epoch),
        "batch_size": batch,
        "images_per_second": outcome.images / fit_seconds if fit_seconds > 0 else None,
        **sized,
    }


def _measure(
    model: Any,
    outcome: _Outcome,
    data: _Splits,
    config: TrainConfig,
    eval_batch: int,
    device: Any,
    channels_last: bool,
    bf16: bool,
    metrics: dict[str, Any],
) -> None:
    """Add the best weights' test accuracy, latency and FLOPs to ``metrics``, or why measuring them failed."""
    try:
        if outcome.best_state is not None:
            model.load_state_dict(outcome.best_state)
        if config.test:
            metrics["test_accuracy"] = _accuracy(
                model, data.test_x, data.test_y, eval_batch, device, channels_last, bf16
            )
        with _autocast(device, bf16):
            metrics["latency_ms"] = measure_latency_ms(
                model,
                data.input_shape,
                device,
                warmup=config.latency_warmup,
                repeats=config.latency_repeats,
                channels_last=channels_last,
            )
        if config.flops:
            metrics["flops"] = count_flops(model, data.input_shape)
    except Exception as exc:  # the candidate trained; a failed measurement must not cost its fitness
        metrics["error"] = f"measurement after training failed: {type(exc).__name__}: {exc}"


__all__ = ["evaluate", "sgd_optimizer"]
