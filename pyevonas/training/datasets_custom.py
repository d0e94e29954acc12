"""Datasets of one's own: a NumPy ``.npz`` file (``npz:PATH``) or an image-folder tree (``folder:DIR``).

Both are read into the arrays of the built-in datasets (``uint8`` images ``(N, C, H, W)``, ``int64``
labels ``0..C-1``); :func:`pyevonas.training.data.load_dataset` wraps them into an ``ImageDataset``
and holds out a test split when the files have none. Nothing here imports torch.

* ``npz:PATH``: arrays ``x_train`` and ``y_train``, optionally ``x_test`` and ``y_test`` (both or
  neither). Images are ``uint8`` (or any integer type with values 0..255) or float (values in
  [0, 1], scaled by 255, or in [0, 255]); ``(N, H, W, C)`` or ``(N, C, H, W)`` with 1 or 3 channels,
  or ``(N, H, W)`` for one channel. Labels are integers ``0..C-1``; every class has at least one
  training image; the number of classes ``C`` is the largest label plus one.
* ``folder:DIR``: ``DIR/train/<class>/*.png|jpg|jpeg|bmp`` and optionally ``DIR/test/<class>/...``.
  Classes are the folder names, sorted (class 0 is the first). Every image is decoded once with
  Pillow (installed with torchvision): one channel when every image is greyscale, else RGB (alpha
  dropped). With ``image_size`` every image is resized to ``image_size x image_size`` (bilinear);
  without it all images must have one size.

Every problem is a :class:`~pyevonas.errors.DatasetError` of one line that names it: a missing key,
labels that are not ``0..C-1``, fewer than two classes, images of mixed sizes, an empty class
folder, an image that cannot be read (with its path).

What a file declares is checked before memory is taken for it: every ``.npz`` member's inflated
size (from the zip directory: a zip bomb is refused before it inflates) and its ``.npy`` header's
shape against :data:`MAX_ARRAY_BYTES` and against the bytes the member holds; labels against
:data:`MAX_CLASSES`; ``image_size`` against :data:`MAX_IMAGE_SIDE`. Wide grey images (16-bit
PNGs: Pillow modes ``I;16``, ``I``) are scaled to 0..255 (``v / 257``), never clipped. An image
above Pillow's pixel limit (``PIL.Image.MAX_IMAGE_PIXELS``) is refused before it is decoded; the
other warnings Pillow and NumPy give while a dataset is read are dropped, not shown nor raised
(:func:`_recorded_warnings`), so that an error stays one line.
"""

from __future__ import annotations

import contextlib
import math
import re
import warnings
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pyevonas.errors import DatasetError

#: The prefixes of a dataset of one's own.
CUSTOM_KINDS = ("npz", "folder")
#: Image files a folder dataset reads (compared without case).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
#: Pillow modes read as one grey channel.
_GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
#: Grey modes wider than 8 bits: their values are scaled to 0..255, not clipped.
_WIDE_GREY_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
#: The most bytes one array of an ``.npz`` may take once read (its declared shape times its item
#: size, and its member's inflated size); a larger one is refused before anything is allocated.
MAX_ARRAY_BYTES = 16 * 2**30
#: The most classes a dataset may have (its largest label plus one): ImageNet-21k has 21,841.
MAX_CLASSES = 100_000
#: The largest ``image_size`` a folder dataset is resized to.
MAX_IMAGE_SIDE = 4096
#: The members of an ``.npz`` dataset that are read.
_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
#: What reading a damaged zip member may raise (zlib's and zipfile's own types among them).
_ZIP_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError)


@dataclass(frozen=True)
class RawSplits:
    """What a file or folder holds, before a test split is held out.

    Attributes:
        train_x, train_y: ``uint8`` ``(N, C, H, W)`` images and ``int64`` labels.
        test_x, test_y: the same for the test split, or None when the files have none.
        num_classes: ``C``.
        classes: class names (folder names; ``"0"``, ``"1"``... for an ``.npz``).
        source: where it was read from, for messages and reports.
    """

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray | None
    test_y: np.ndarray | None
    num_classes: int
    classes: tuple[str, ...]
    source: str


def split_spec(name: str) -> tuple[str, str] | None:
    """``("npz", PATH)`` or ``("folder", DIR)`` for a dataset of one's own, else None (a built-in name)."""
    kind, sep, rest = name.partition(":")
    kind = kind.strip().lower()
    if not sep or kind not in CUSTOM_KINDS:
        return None
    if not rest.strip():
        raise DatasetError(f"dataset {name!r}: give a path after '{kind}:' (e.g. {kind}:{_example(kind)})")
    return kind, rest.strip()


def _example(kind: str) -> str:
    return "data/mine.npz" if kind == "npz" else "data/images"


def canonical_spec(name: str) -> str | None:
    """``kind:/absolute/path`` of a dataset of one's own (so a run resumes from any folder), else None."""
    parts = split_spec(name)
    if parts is None:
        return None
    kind, path = parts
    return f"{kind}:{Path(path).expanduser().resolve()}"


def spec_label(name: str) -> str | None:
    """A short label of a dataset of one's own for run names (the file's stem or the folder's name), else None."""
    parts = split_spec(name)
    if parts is None:
        return None
    kind, path = parts
    p = Path(path).expanduser()
    stem = (p.stem if kind == "npz" else p.name) or p.resolve().name
    label = re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_")
    return label or kind


def read_custom(name: str, image_size: int | None = None) -> RawSplits:
    """Read ``npz:PATH`` or ``folder:DIR``.

    Raises:
        DatasetError: anything wrong with the file or folder, in one line.
    """
    parts = split_spec(name)
    if parts is None:
        raise DatasetError(f"{name!r} is not a dataset of one's own (npz:PATH or folder:DIR)")
    kind, path = parts
    if image_size is not None and not 1 <= image_size <= MAX_IMAGE_SIDE:
        raise DatasetError(f"--image-size must be 1..{MAX_IMAGE_SIDE}, got {image_size}")
    if kind == "npz":
        if image_size is not None:
            raise DatasetError("--image-size resizes the images of a folder: dataset; an .npz is used at its own size")
        return read_npz(path)
    return read_folder(path, image_size)


# ---------------------------------------------------------------------------- npz


@contextlib.contextmanager
def _recorded_warnings() -> Iterator[list[warnings.WarningMessage]]:
    """Record the warnings given while a dataset is read, instead of showing or raising them.

    Pillow and NumPy warn about files they still read (a palette whose transparency is given in
    bytes, damaged EXIF data, an image above Pillow's pixel limit, a cast that overflows). Shown,
    each is lines of Python source before the one-line error of a bad dataset; under ``python -W
    error`` it is raised from the middle of reading a good image. Recorded, the reader decides:
    a decompression-bomb warning refuses its image (:meth:`_Decoder.read`), the others are
    dropped, since what they warn of is handled here (every image is converted to grey or RGB,
    every value checked before it is cast).
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


def read_npz(path: str | Path) -> RawSplits:
    """The arrays of an ``.npz`` dataset (see the module docstring)."""
    with _recorded_warnings():
        return _read_npz(path)


def _read_npz(path: str | Path) -> RawSplits:
    p = Path(path).expanduser()
    if not p.is_file():
        raise DatasetError(f"npz dataset not found: {p}" + (" is a folder (use folder:DIR)" if p.is_dir() else ""))
    _check_kind(p)
    try:  # the zip's directory first: np.load leaves the file open when it cannot read a zip
        with zipfile.ZipFile(p):
            pass
    except zipfile.BadZipFile as exc:  # it starts as a zip does, so its end is missing or damaged
        raise DatasetError(
            f"cannot read {p} as a NumPy .npz file: the zip archive is truncated or damaged ({exc})"
        ) from None
    except _ZIP_ERRORS as exc:
        raise DatasetError(f"cannot read {p} as a NumPy .npz file: {type(exc).__name__}: {exc}") from None
    try:
        archive = np.load(p, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DatasetError(f"cannot read {p} as a NumPy .npz file: {exc}") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DatasetError(f"{p} holds a single array (.npy), not an .npz with x_train and y_train")
    with archive:
        keys = set(archive.files)
        missing = [k for k in ("x_train", "y_train") if k not in keys]
        if missing:
            raise DatasetError(
                f"{p}: missing key {' and '.join(missing)} (an .npz dataset holds x_train, y_train and optionally "
                f"x_test, y_test; this one has {', '.join(sorted(keys)) or 'no arrays'})"
            )
        if ("x_test" in keys) != ("y_test" in keys):
            have, lack = ("x_test", "y_test") if "x_test" in keys else ("y_test", "x_test")
            raise DatasetError(f"{p}: {have} without {lack}; give both or neither (then a test split is held out)")
        _check_members(p, keys)
        arrays = {k: _array(archive, k, p) for k in _NPZ_KEYS if k in keys}
    train_x = _images(arrays["x_train"], "x_train", p)
    train_y = _labels(arrays["y_train"], "y_train", p, len(train_x))
    num_classes = _classes_of(train_y, "y_train", p)
    test_x = test_y = None
    if "x_test" in arrays:
        test_x = _images(arrays["x_test"], "x_test", p)
        test_y = _labels(arrays["y_test"], "y_test", p, len(test_x))
        if test_x.shape[1:] != train_x.shape[1:]:
            raise DatasetError(
                f"{p}: x_test images are {_shape(test_x)} but x_train images {_shape(train_x)} (channels x height x width)"
            )
        bad = test_y[(test_y < 0) | (test_y >= num_classes)]
        if bad.size:
            raise DatasetError(
                f"{p}: labels must be 0..{num_classes - 1} (the classes of y_train); y_test has label {int(bad[0])}"
            )
    return RawSplits(
        train_x, train_y, test_x, test_y, num_classes, tuple(str(c) for c in range(num_classes)), f"npz file {p}"
    )


def _check_kind(path: Path) -> None:
    """Refuse a file that is no zip archive by what it starts with, before NumPy reads it.

    NumPy describes every file that is neither a zip nor a ``.npy`` as "pickled (object) data";
    only a file that starts as a pickle does is called one here.
    """
    try:
        with path.open("rb") as f:
            head = f.read(8)
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror or exc}") from None
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):  # a zip archive (or an empty one)
        return
    what = f"cannot read {path} as a NumPy .npz file"
    if not head:
        raise DatasetError(f"{what}: it is empty (np.savez writes a zip archive)")
    if head.startswith(b"\x93NUMPY"):
        raise DatasetError(f"{path} holds a single array (.npy), not an .npz with x_train and y_train")
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:  # the PROTO opcode that starts pickles 2..5
        raise DatasetError(
            f"{what}: it is a Python pickle, and pickles are not read (loading one can run code); "
            "save the arrays with np.savez"
        )
    raise DatasetError(f"{what}: it is not a zip archive as np.savez writes (it begins with {head!r})")


def _check_members(path: Path, keys: set[str]) -> None:
    """Refuse a member that cannot be read or that declares more than :data:`MAX_ARRAY_BYTES`,
    from the zip directory and the ``.npy`` header alone (nothing is inflated beyond the header)."""
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                key = info.filename.removesuffix(".npy")
                if key in keys and key in _NPZ_KEYS:
                    _check_member(zf, info, key, path)
    except DatasetError:
        raise
    except _ZIP_ERRORS as exc:
        raise DatasetError(f"{path}: the .npz (a zip file) is damaged: {type(exc).__name__}: {exc}") from None


def _check_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, key: str, path: Path) -> None:
    if info.flag_bits & 0x1:
        raise DatasetError(f"{path}: {key} is encrypted; store the arrays without a password (np.savez)")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise DatasetError(
            f"{path}: {key} uses zip compression method {info.compress_type}; np.savez and np.savez_compressed "
            "write stored or deflated members"
        )
    if info.file_size > MAX_ARRAY_BYTES + 2**16:  # + room for the .npy header
        raise DatasetError(
            f"{path}: {key} inflates to {info.file_size:,} bytes, above the limit of {MAX_ARRAY_BYTES:,} bytes "
            "per array (refused before reading it)"
        )
    try:
        with zf.open(info) as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise ValueError(f".npy format version {version[0]}.{version[1]} (np.save writes 1.0 or 2.0)")
            header = f.tell()
    except _ZIP_ERRORS as exc:
        raise DatasetError(f"{path}: {key} is not a valid .npy array: {exc}") from None
    if dtype.hasobject:
        raise DatasetError(
            f"{path}: {key} holds Python objects (pickled), which are not read; store plain numeric arrays"
        )
    declared = math.prod(shape) * dtype.itemsize
    dims = "x".join(map(str, shape))
    if declared > MAX_ARRAY_BYTES:
        raise DatasetError(
            f"{path}: {key} declares shape {dims} of {dtype} ({declared:,} bytes), above the limit of "
            f"{MAX_ARRAY_BYTES:,} bytes per array"
        )
    if declared > info.file_size - header:
        raise DatasetError(
            f"{path}: {key} declares shape {dims} of {dtype} ({declared:,} bytes) but holds "
            f"{max(info.file_size - header, 0):,} bytes; the file is truncated or damaged"
        )


def _array(archive: Any, key: str, path: Path) -> np.ndarray:
    try:
        return np.asarray(archive[key])
    except _ZIP_ERRORS as exc:
        raise DatasetError(f"{path}: {key} cannot be read: {type(exc).__name__}: {exc}") from None


def _shape(images: np.ndarray) -> str:
    return "x".join(str(d) for d in images.shape[1:])


def _images(x: np.ndarray, key: str, path: Path) -> np.ndarray:
    """``x`` as contiguous uint8 ``(N, C, H, W)``."""
    if x.ndim == 3:
        x = x[:, None, :, :]
    elif x.ndim == 4:
        _, a, b, c = x.shape
        nhwc, nchw = c in (1, 3), a in (1, 3)
        if nhwc and nchw:
            # Both readings have 1 or 3 channels: take the one whose images are square.
            nhwc = not (b == c and a != b)
        if nhwc:
            x = np.moveaxis(x, 3, 1)
        elif not nchw:
            raise DatasetError(
                f"{path}: {key} has shape {x.shape}; images need 1 or 3 channels, first (N, C, H, W) or last (N, H, W, C)"
            )
    else:
        raise DatasetError(
            f"{path}: {key} has shape {x.shape}; expected images (N, H, W, C), (N, C, H, W) or (N, H, W)"
        )
    if len(x) == 0:
        raise DatasetError(f"{path}: {key} holds no image")
    if x.shape[2] == 0 or x.shape[3] == 0:
        raise DatasetError(f"{path}: {key} holds images of {x.shape[3]}x{x.shape[2]} pixels; images need pixels")
    if x.dtype == np.uint8:
        return np.ascontiguousarray(x)
    if x.dtype.kind in "iu":
        low, high = int(x.min()), int(x.max())
        if low < 0 or high > 255:
            raise DatasetError(
                f"{path}: {key} is {x.dtype} with values {low}..{high}; integer images must lie in 0..255"
            )
        return np.ascontiguousarray(x.astype(np.uint8))
    if x.dtype.kind == "f":
        if not np.isfinite(x).all():
            raise DatasetError(f"{path}: {key} holds NaN or infinite pixel values")
        fmin, fmax = float(x.min()), float(x.max())
        if fmin < 0.0 or fmax > 255.0:
            raise DatasetError(
                f"{path}: {key} has values {fmin:g}..{fmax:g}; float images must lie in [0, 1] or [0, 255]"
            )
        scale = 255.0 if fmax <= 1.0 else 1.0
        return np.ascontiguousarray(np.rint(x.astype(np.float64) * scale).astype(np.uint8))
    raise DatasetError(f"{path}: {key} has dtype {x.dtype}; images must be uint8, integers 0..255 or floats")


def _labels(y: np.ndarray, key: str, path: Path, n_images: int) -> np.ndarray:
    """``y`` as int64 ``(N,)``, every value checked before it is converted (no wrap-around)."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        hint = " (one-hot? store y.argmax(axis=1))" if y.ndim == 2 else ""
        raise DatasetError(f"{path}: {key} has shape {y.shape}; labels must be one integer per image{hint}")
    if y.dtype.kind not in "iuf":
        raise DatasetError(f"{path}: labels must be integers 0..C-1; {key} has dtype {y.dtype}")
    if len(y) != n_images:
        images = "x" + key[1:]
        raise DatasetError(f"{path}: {images} has {n_images} images but {key} has {len(y)} labels")
    if y.dtype.kind == "f" and (not np.isfinite(y).all() or not np.all(y == np.round(y))):
        raise DatasetError(f"{path}: labels must be integers 0..C-1; {key} holds non-integer values")
    if len(y):
        low, high = y.min(), y.max()
        if y.dtype.kind == "f":  # compared as float64: the class limit is above float16's largest value
            low, high = np.float64(low), np.float64(high)
        if low < 0:
            raise DatasetError(f"{path}: labels must be 0..C-1; {key} has label {_label_text(low)}")
        if high >= MAX_CLASSES:
            raise DatasetError(
                f"{path}: {key} has label {_label_text(high)}, above the limit of {MAX_CLASSES:,} classes "
                f"(labels 0..{MAX_CLASSES - 1})"
            )
    return np.ascontiguousarray(y.astype(np.int64))


def _label_text(value: Any) -> str:
    """A label as the file holds it: ``1e+30`` for a float, every digit of a uint64."""
    return f"{float(value):g}" if isinstance(value, np.floating) else str(int(value))


def _classes_of(y: np.ndarray, key: str, path: Path | str) -> int:
    """The number of classes of training labels (checked by :func:`_labels`: 0..MAX_CLASSES-1),
    checking they are 0..C-1 with C >= 2."""
    low, high = int(y.min()), int(y.max())
    present = np.unique(y)
    if len(present) < 2:
        raise DatasetError(f"{path}: fewer than two classes; every label in {key} is {low}")
    if len(present) != high + 1:
        absent = np.setdiff1d(np.arange(high + 1), present, assume_unique=True)
        shown = ", ".join(map(str, absent[:8].tolist())) + (", ..." if len(absent) > 8 else "")
        raise DatasetError(
            f"{path}: labels must be 0..C-1 with every class present; {key} goes up to {high} but has no {shown}"
        )
    return high + 1


# ---------------------------------------------------------------------------- image folders


def read_folder(path: str | Path, image_size: int | None = None) -> RawSplits:
    """The images of a folder dataset (see the module docstring)."""
    with _recorded_warnings() as caught:
        return _read_folder(path, image_size, caught)


def _read_folder(path: str | Path, image_size: int | None, caught: list[warnings.WarningMessage]) -> RawSplits:
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DatasetError(f"folder dataset not found: {root}" + (" is a file" if root.exists() else ""))
    train_dir = root / "train"
    if not train_dir.is_dir():
        raise DatasetError(f"{root} has no train/ folder (expected {root}/train/<class>/*.png or .jpg)")
    classes = _class_folders(train_dir)
    if len(classes) < 2:
        found = f"only {classes[0]!r}" if classes else "none"
        raise DatasetError(f"{train_dir}: fewer than two classes (class folders found: {found})")
    train_files = _files_by_class(train_dir, classes)
    test_dir = root / "test"
    test_files: list[tuple[Path, int]] | None = None
    if test_dir.is_dir():
        test_classes = _class_folders(test_dir)
        if not test_classes:
            raise DatasetError(f"{test_dir} has no class folders (expected {test_dir}/<class>/*.png or .jpg)")
        unknown = [c for c in test_classes if c not in classes]
        if unknown:
            raise DatasetError(f"{test_dir / unknown[0]} is not a class of {train_dir} (classes: {', '.join(classes)})")
        test_files = _files_by_class(test_dir, test_classes, index={c: k for k, c in enumerate(classes)})
    decoder = _Decoder(image_size, caught)
    train = [decoder.read(f) for f, _ in train_files]
    test = [decoder.read(f) for f, _ in test_files] if test_files is not None else None
    grey = decoder.all_grey
    train_x = _stack(train, grey)
    train_y = np.asarray([label for _, label in train_files], dtype=np.int64)
    test_x = _stack(test, grey) if test is not None else None
    test_y = np.asarray([label for _, label in test_files], dtype=np.int64) if test_files is not None else None
    n = len(train) + (len(test) if test is not None else 0)
    return RawSplits(
        train_x,
        train_y,
        test_x,
        test_y,
        len(classes),
        tuple(classes),
        f"image folder {root} ({n} images, {len(classes)} classes)",
    )


def _class_folders(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _files_by_class(folder: Path, classes: list[str], index: dict[str, int] | None = None) -> list[tuple[Path, int]]:
    files: list[tuple[Path, int]] = []
    for k, name in enumerate(classes):
        sub = folder / name
        images = sorted(
            p
            for p in sub.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not images:
            raise DatasetError(f"empty class folder {sub}: no {', '.join(IMAGE_SUFFIXES)} image in it")
        label = index[name] if index is not None else k
        files.extend((p, label) for p in images)
    return files


class _Decoder:
    """Decodes images one by one, checking that they share a size (or resizing them)."""

    def __init__(self, image_size: int | None, caught: list[warnings.WarningMessage] | None = None) -> None:
        """``caught``: the list :func:`_recorded_warnings` records into (Pillow's warnings about an image)."""
        try:
            from PIL import Image
        except ImportError as exc:  # pragma: no cover - Pillow comes with torchvision (train extra)
            raise DatasetError("a folder dataset needs Pillow (pip install 'pyevonas[train]')") from exc
        self._image = Image
        self.size = image_size
        self.first: tuple[Path, tuple[int, int]] | None = None
        self.all_grey = True
        self.caught = caught if caught is not None else []

    def read(self, path: Path) -> np.ndarray:
        Image = self._image
        seen = len(self.caught)
        try:
            with Image.open(path) as im:
                self._refuse_bomb(seen)
                im.load()
                grey = im.mode in _GREY_MODES
                # Wide grey modes (16-bit, float) are scaled to 0..255; palettes and alpha go to RGB.
                if im.mode in _WIDE_GREY_MODES:
                    out = Image.fromarray(_wide_to_uint8(np.asarray(im), im.mode), "L")
                else:
                    out = im.convert("L") if grey else im.convert("RGB")
                if self.size is not None and out.size != (self.size, self.size):
                    out = out.resize((self.size, self.size), Image.Resampling.BILINEAR)
        except DatasetError as exc:
            raise DatasetError(f"cannot read image {path}: {exc}") from None
        except Exception as exc:  # Pillow raises many types for a broken file (OSError, SyntaxError, ...)
            raise DatasetError(f"cannot read image {path}: {type(exc).__name__}: {exc}") from None
        del self.caught[seen:]  # the image was read: its warnings were about nothing that matters here
        self.all_grey &= grey
        if self.size is None:
            if self.first is None:
                self.first = (path, out.size)
            elif out.size != self.first[1]:
                (w0, h0), (w, h) = self.first[1], out.size
                raise DatasetError(
                    f"images of different sizes: {self.first[0]} is {w0}x{h0} but {path} is {w}x{h}; "
                    "pass --image-size N to resize every image to N x N"
                )
        return np.asarray(out, dtype=np.uint8)

    def _refuse_bomb(self, seen: int) -> None:
        """Refuse an image above Pillow's pixel limit (it warns up to twice the limit, then raises)."""
        for warning in self.caught[seen:]:
            if issubclass(warning.category, self._image.DecompressionBombWarning):
                raise DatasetError(
                    f"{str(warning.message).rstrip('.')}; refused before decoding it (PIL.Image.MAX_IMAGE_PIXELS)"
                )


def _wide_to_uint8(values: np.ndarray, mode: str) -> np.ndarray:
    """A 16-bit or float grey image as 0..255: 16-bit values (0..65535) divided by 257, floats in
    [0, 1] times 255 (in [0, 255] as they are); anything outside is refused, never clipped."""
    if values.size == 0:
        return values.astype(np.uint8)
    low, high = float(values.min()), float(values.max())
    if mode == "F":
        if not np.isfinite(values).all() or low < 0.0 or high > 255.0:
            raise DatasetError(f"float pixel values {low:g}..{high:g}; float images must lie in [0, 1] or [0, 255]")
        scale = 255.0 if high <= 1.0 else 1.0
    else:
        if low < 0 or high > 65535:
            raise DatasetError(f"pixel values {low:g}..{high:g}; grey images must lie in 0..65535 (16 bits)")
        scale = 1.0 / 257.0
    return np.rint(values.astype(np.float64) * scale).astype(np.uint8)


def _stack(images: list[np.ndarray], grey: bool) -> np.ndarray:
    """``(N, C, H, W)`` uint8 from decoded ``(H, W)`` (grey) or ``(H, W, 3)`` arrays."""
    planes = []
    for a in images:
        if a.ndim == 2:
            a = a[None] if grey else np.repeat(a[None], 3, axis=0)
        else:
            a = np.moveaxis(a, 2, 0)
        planes.append(a)
    return np.ascontiguousarray(np.stack(planes))


__all__ = [
    "CUSTOM_KINDS",
    "IMAGE_SUFFIXES",
    "MAX_ARRAY_BYTES",
    "MAX_CLASSES",
    "MAX_IMAGE_SIDE",
    "RawSplits",
    "canonical_spec",
    "read_custom",
    "read_folder",
    "read_npz",
    "spec_label",
    "split_spec",
]
