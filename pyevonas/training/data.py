"""Image datasets as uint8 arrays: the built-in digits, CIFAR-10/100 and ImageNet16-120, and one's own.

Every loader returns an :class:`ImageDataset` holding ``uint8`` images of shape ``(N, C, H, W)``
with pixel values in [0, 255] (the model rescales them, as the original's ``Rescaling`` gene
does) and ``int64`` labels starting at 0. Loading is from local files only, except that
CIFAR can be downloaded through torchvision when asked (``download=True``).

* ``digits``: scikit-learn's bundled 8 x 8 handwritten digits (1,797 real images, 10 classes,
  no download). Pixel values 0..16 are scaled to 0..255; the images stay 8 x 8 and one channel,
  so a candidate trains in seconds on a CPU. A fixed, stratified 20 % is the test split.
* ``cifar10`` / ``cifar100``: the python-pickle release (``cifar-10-batches-py/``,
  ``cifar-100-python/``, what torchvision downloads) in ``data_dir`` or its parent.
* ``imagenet16-120``: the downsampled-ImageNet 16 x 16 pickles used by NAS-Bench-201 and
  NATS-Bench (``train_data_batch_1`` .. ``train_data_batch_10`` and ``val_data``, labels
  1..1000), keeping the first 120 classes (151,700 train and 6,000 test images).
* ``npz:PATH`` / ``folder:DIR``: a dataset of one's own (:mod:`pyevonas.training.datasets_custom`);
  without a test split in the files, a fixed, stratified 20 % of the training images is held out
  as the test split, as for digits.

The pickle files are read with :mod:`pickle`, as torchvision and NAS-Bench-201 do: only load
dataset files you trust.
"""

from __future__ import annotations

import contextlib
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pyevonas.errors import DatasetError
from pyevonas.training.datasets_custom import canonical_spec, read_custom

DATASETS = ("digits", "cifar10", "cifar100", "imagenet16-120")
#: Share of a dataset of one's own held out as its test split when the files have none, and its seed.
HELD_OUT_TEST_FRACTION = 0.2
HELD_OUT_TEST_SEED = 0


@dataclass(frozen=True)
class _CifarRelease:
    folder: str
    train: tuple[str, ...]
    test: tuple[str, ...]
    label_key: str
    classes: int


_CIFAR = {
    "cifar10": _CifarRelease(
        "cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)), ("test_batch",), "labels", 10
    ),
    "cifar100": _CifarRelease("cifar-100-python", ("train",), ("test",), "fine_labels", 100),
}
_IMAGENET16_TRAIN = [f"train_data_batch_{i}" for i in range(1, 11)]
_IMAGENET16_TEST = ["val_data"]
_IMAGENET16_FOLDERS = ("", "ImageNet16", "imagenet16", "ImageNet16-120")


@dataclass(frozen=True)
class ImageDataset:
    """A labelled image dataset split into train and test.

    Attributes:
        name: the dataset's name.
        train_images: ``uint8`` array ``(N, C, H, W)``, values in [0, 255].
        train_labels: ``int64`` array ``(N,)`` in ``[0, num_classes)``.
        test_images: as ``train_images``.
        test_labels: as ``train_labels``.
        num_classes: number of classes.
        source: where it was read from.
        classes: class names, when the dataset has them (a folder dataset's folder names).
    """

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    num_classes: int
    source: str
    classes: tuple[str, ...] = ()

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        _, c, h, w = self.train_images.shape
        return int(c), int(h), int(w)


def dataset_info(name: str, image_size: int | None = None) -> tuple[tuple[int, int, int], int]:
    """``(input_shape, num_classes)`` of a dataset: a built-in one without loading it; one's own is read."""
    if is_custom(name):
        ds = load_dataset(name, image_size=image_size)
        return ds.input_shape, ds.num_classes
    if image_size is not None:
        raise DatasetError(f"--image-size resizes the images of a folder: dataset, not of {name}")
    table = {
        "digits": ((1, 8, 8), 10),
        "cifar10": ((3, 32, 32), 10),
        "cifar100": ((3, 32, 32), 100),
        "imagenet16-120": ((3, 16, 16), 120),
    }
    key = canonical_dataset(name)
    return table[key]


def is_custom(name: str) -> bool:
    """Whether ``name`` is a dataset of one's own (``npz:PATH`` or ``folder:DIR``)."""
    return canonical_spec(name) is not None


def canonical_dataset(name: str) -> str:
    """The dataset's canonical name (``CIFAR-10`` -> ``cifar10``, a custom spec normalised); unknown names are refused."""
    custom = canonical_spec(name)
    if custom is not None:
        return custom
    key = name.strip().lower().replace("_", "-")
    aliases = {
        "imagenet16": "imagenet16-120",
        "imagenet16120": "imagenet16-120",
        "cifar-10": "cifar10",
        "cifar-100": "cifar100",
    }
    key = aliases.get(key, key)
    if key not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}, npz:PATH or folder:DIR")
    return key


def load_dataset(
    name: str, data_dir: str | Path | None = None, *, download: bool = False, image_size: int | None = None
) -> ImageDataset:
    """Load a dataset by name.

    Args:
        name: ``digits``, ``cifar10``, ``cifar100``, ``imagenet16-120``, ``npz:PATH`` or ``folder:DIR``.
        data_dir: the folder holding the dataset's files (ignored for ``digits`` and one's own).
        download: for CIFAR, download into ``data_dir`` through torchvision if the files are
            missing (needs network access).
        image_size: for ``folder:DIR``, resize every image to this size (else all must share one).

    Raises:
        DatasetError: unknown name, missing folder or files, or corrupt files; the message says
            where it looked (or, for one's own, what is wrong).
    """
    key = canonical_dataset(name)
    if is_custom(key):
        return load_custom(key, image_size)
    if image_size is not None:
        raise DatasetError(f"--image-size resizes the images of a folder: dataset, not of {key}")
    if key == "digits":
        return load_digits()
    if data_dir is None:
        raise DatasetError(f"dataset {key!r} needs a data folder (--data-dir)")
    root = Path(data_dir).expanduser()
    if key in _CIFAR:
        return load_cifar(key, root, download=download)
    return load_imagenet16(root)


#: The last dataset of one's own read in this process: checking it before a search, counting its
#: classes and training in-process all read it, and a folder is decoded image by image.
_CUSTOM_CACHE: dict[tuple[Any, ...], ImageDataset] = {}


def _signature(name: str) -> tuple[Any, ...]:
    """What changes when the file or folder does (modification times), so a cached copy is not stale."""
    path = Path(name.partition(":")[2])
    paths = [path]
    if path.is_dir():  # a folder dataset: its split folders and their class folders
        for split in (path / "train", path / "test"):
            paths.append(split)
            with contextlib.suppress(OSError):
                paths.extend(sorted(split.iterdir()))
    stamps: list[Any] = []
    for p in paths:
        try:
            st = p.stat()
        except OSError:
            stamps.append(None)
            continue
        stamps.append((str(p), st.st_mtime_ns, st.st_size))
    return tuple(stamps)


def load_custom(name: str, image_size: int | None = None) -> ImageDataset:
    """A dataset of one's own (``npz:PATH`` or ``folder:DIR``), with a held-out test split if it has none."""
    key = (canonical_spec(name) or name, image_size, _signature(canonical_spec(name) or name))
    cached = _CUSTOM_CACHE.get(key)
    if cached is not None:
        return cached
    dataset = _read_custom(name, image_size)
    _CUSTOM_CACHE.clear()
    _CUSTOM_CACHE[key] = dataset
    return dataset


def _read_custom(name: str, image_size: int | None) -> ImageDataset:
    raw = read_custom(name, image_size)
    test_x, test_y = raw.test_x, raw.test_y
    train_x, train_y = raw.train_x, raw.train_y
    if test_x is None or test_y is None:
        held = np.zeros(len(train_y), dtype=bool)
        rng = np.random.default_rng(HELD_OUT_TEST_SEED)
        held[stratified_split(train_y, HELD_OUT_TEST_FRACTION, rng)] = True
        test_x, test_y = train_x[held], train_y[held]
        train_x, train_y = train_x[~held], train_y[~held]
    return ImageDataset(
        name=canonical_spec(name) or name,
        train_images=np.ascontiguousarray(train_x),
        train_labels=train_y,
        test_images=np.ascontiguousarray(test_x),
        test_labels=test_y,
        num_classes=raw.num_classes,
        source=raw.source,
        classes=raw.classes,
    )


# ---------------------------------------------------------------------------- digits


def load_digits(test_fraction: float = 0.2, seed: int = 0) -> ImageDataset:
    """scikit-learn's 8 x 8 digits as uint8 (1, 8, 8) images, with a stratified test split."""
    try:
        from sklearn.datasets import load_digits as sk_load_digits
    except ImportError as exc:  # pragma: no cover - sklearn is in the train extra
        raise DatasetError("the digits dataset needs scikit-learn (pip install 'pyevonas[train]')") from exc
    bunch = sk_load_digits()
    images = np.rint(np.asarray(bunch.images, dtype=np.float64) * (255.0 / 16.0)).astype(np.uint8)
    images = images[:, None, :, :]
    labels = np.asarray(bunch.target, dtype=np.int64)
    test_mask = np.zeros(len(labels), dtype=bool)
    test_mask[stratified_split(labels, test_fraction, np.random.default_rng(seed))] = True
    return ImageDataset(
        name="digits",
        train_images=np.ascontiguousarray(images[~test_mask]),
        train_labels=labels[~test_mask],
        test_images=np.ascontiguousarray(images[test_mask]),
        test_labels=labels[test_mask],
        num_classes=10,
        source="sklearn.datasets.load_digits (bundled with scikit-learn)",
    )


def stratified_split(labels: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Indices of a random ``fraction`` of the samples, the same fraction of every class.

    Returns the held-out indices, sorted. Each class contributes ``round(fraction * count)``
    samples (at least one when the class has two or more).
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must lie in (0, 1), got {fraction}")
    held: list[np.ndarray] = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        n = int(round(fraction * len(members)))
        if len(members) >= 2:
            n = min(max(n, 1), len(members) - 1)
        else:
            n = 0
        held.append(rng.permutation(members)[:n])
    return np.sort(np.concatenate(held)) if held else np.empty(0, dtype=np.int64)


# ---------------------------------------------------------------------------- pickles


def _read_pickle(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            entry = pickle.load(f, encoding="latin1")
    except FileNotFoundError:
        raise DatasetError(f"missing dataset file {path}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError, IndexError) as exc:
        raise DatasetError(f"corrupt dataset file {path}: {exc.__class__.__name__}: {exc}") from None
    except OSError as exc:
        raise DatasetError(f"cannot read dataset file {path}: {exc}") from None
    if not isinstance(entry, dict):
        raise DatasetError(f"corrupt dataset file {path}: expected a pickled dict, got {type(entry).__name__}")
    # Python-2 pickles read with latin1 keep str keys; some re-packed copies have bytes keys.
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in entry.items()}


def _images_from(entry: dict[str, Any], path: Path, side: int) -> np.ndarray:
    if "data" not in entry:
        raise DatasetError(f"corrupt dataset file {path}: no 'data' array")
    data = np.asarray(entry["data"])
    pixels = 3 * side * side
    if data.ndim != 2 or data.shape[1] != pixels or data.dtype != np.uint8:
        raise DatasetError(
            f"corrupt dataset file {path}: 'data' must be uint8 of shape (N, {pixels}), got {data.dtype} {data.shape}"
        )
    return data.reshape(-1, 3, side, side)


def _labels_from(entry: dict[str, Any], key: str, path: Path, n: int) -> np.ndarray:
    if key not in entry:
        raise DatasetError(f"corrupt dataset file {path}: no {key!r} list")
    try:
        labels = np.asarray(entry[key], dtype=np.int64)
    except (TypeError, ValueError):
        raise DatasetError(f"corrupt dataset file {path}: {key!r} is not a list of integers") from None
    if labels.shape != (n,):
        raise DatasetError(f"corrupt dataset file {path}: {n} images but {labels.size} labels")
    return labels


def _read_batches(files: Sequence[Path], label_key: str, side: int) -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    for path in files:
        entry = _read_pickle(path)
        x = _images_from(entry, path, side)
        images.append(x)
        labels.append(_labels_from(entry, label_key, path, len(x)))
    return np.ascontiguousarray(np.concatenate(images)), np.concatenate(labels)


# ---------------------------------------------------------------------------- CIFAR


def _find_folder(root: Path, folder: str, required: Sequence[str]) -> Path | None:
    for candidate in (root / folder, root):
        if all((candidate / f).is_file() for f in required):
            return candidate
    return None


def load_cifar(name: str, data_dir: str | Path, *, download: bool = False) -> ImageDataset:
    """CIFAR-10 or CIFAR-100 from the python-pickle release in ``data_dir`` (or ``data_dir/<folder>``).

    Raises:
        DatasetError: files missing (and ``download`` is off or fails) or corrupt.
    """
    spec = _CIFAR[name]
    root = Path(data_dir).expanduser()
    required = [*spec.train, *spec.test]
    folder = _find_folder(root, spec.folder, required)
    if folder is None and download:
        _download_cifar(name, root)
        folder = _find_folder(root, spec.folder, required)
    if folder is None:
        raise DatasetError(
            f"{name} not found: looked for {', '.join(required)} in {root / spec.folder} and {root}"
            + ("" if download else " (pass --download to fetch it with torchvision)")
        )
    train_x, train_y = _read_batches([folder / f for f in spec.train], spec.label_key, 32)
    test_x, test_y = _read_batches([folder / f for f in spec.test], spec.label_key, 32)
    for labels, split in ((train_y, "train"), (test_y, "test")):
        if labels.size and (labels.min() < 0 or labels.max() >= spec.classes):
            raise DatasetError(f"corrupt {name} in {folder}: {split} labels outside 0..{spec.classes - 1}")
    return ImageDataset(name, train_x, train_y, test_x, test_y, spec.classes, str(folder))


def _download_cifar(name: str, root: Path) -> None:
    try:
        import torchvision
    except ImportError as exc:  # pragma: no cover - torchvision is in the train extra
        raise DatasetError("downloading CIFAR needs torchvision (pip install 'pyevonas[train]')") from exc
    cls = torchvision.datasets.CIFAR10 if name == "cifar10" else torchvision.datasets.CIFAR100
    try:
        root.mkdir(parents=True, exist_ok=True)
        cls(root=str(root), train=True, download=True)
    except Exception as exc:  # network errors come in many classes (URLError, HTTPError, OSError...)
        raise DatasetError(f"could not download {name} into {root}: {exc}") from None


# ---------------------------------------------------------------------------- ImageNet16-120


def load_imagenet16(data_dir: str | Path, n_classes: int = 120) -> ImageDataset:
    """ImageNet16-120 from NAS-Bench-201's downsampled-ImageNet pickles.

    Looks in ``data_dir`` and in its ``ImageNet16`` subfolder. Keeps labels 1..``n_classes``
    (stored 1-based) and shifts them to 0-based.

    Raises:
        DatasetError: files missing or corrupt, or no image of the first classes.
    """
    root = Path(data_dir).expanduser()
    required = [*_IMAGENET16_TRAIN, *_IMAGENET16_TEST]
    folder = None
    for sub in _IMAGENET16_FOLDERS:
        candidate = root / sub if sub else root
        if all((candidate / f).is_file() for f in required):
            folder = candidate
            break
    if folder is None:
        looked = ", ".join(str(root / s) if s else str(root) for s in _IMAGENET16_FOLDERS)
        raise DatasetError(
            f"imagenet16-120 not found: looked for train_data_batch_1..10 and val_data in {looked} "
            "(the downsampled ImageNet 16x16 pickles of NAS-Bench-201)"
        )
    train_x, train_y = _read_batches([folder / f for f in _IMAGENET16_TRAIN], "labels", 16)
    test_x, test_y = _read_batches([folder / f for f in _IMAGENET16_TEST], "labels", 16)
    keep_train = (train_y >= 1) & (train_y <= n_classes)
    keep_test = (test_y >= 1) & (test_y <= n_classes)
    if not keep_train.any() or not keep_test.any():
        raise DatasetError(f"corrupt imagenet16-120 in {folder}: no images with labels 1..{n_classes}")
    return ImageDataset(
        "imagenet16-120",
        np.ascontiguousarray(train_x[keep_train]),
        train_y[keep_train] - 1,
        np.ascontiguousarray(test_x[keep_test]),
        test_y[keep_test] - 1,
        n_classes,
        str(folder),
    )


__all__ = [
    "DATASETS",
    "HELD_OUT_TEST_FRACTION",
    "HELD_OUT_TEST_SEED",
    "ImageDataset",
    "canonical_dataset",
    "dataset_info",
    "is_custom",
    "load_cifar",
    "load_custom",
    "load_dataset",
    "load_digits",
    "load_imagenet16",
    "stratified_split",
]
