"""What a dataset file declares is checked before memory is taken, and every way it can be bad is one line.

Issue 26: one npz label of 10**12 grew the process to ~23 GB; a zip bomb, a declared shape larger
than the data, a damaged ``.npy`` header, an encrypted or oddly compressed member and 0x0 images
gave tracebacks or misleading messages; 16-bit grey PNGs of a ``folder:`` dataset were clipped to
255. The memory-hungry cases run in a child process whose address space is capped, so a
regression fails the test instead of the machine.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pyevonas.errors import DatasetError
from pyevonas.training import datasets_custom
from pyevonas.training.datasets_custom import MAX_ARRAY_BYTES, MAX_CLASSES, read_folder, read_npz

X = np.zeros((3, 8, 8), dtype=np.uint8)

# Reads an npz in a child process limited to 2 GiB of address space; prints the outcome as JSON.
_CAPPED = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
from pyevonas.errors import DatasetError
from pyevonas.training.datasets_custom import read_npz
try:
    read_npz(sys.argv[1])
    print(json.dumps({"outcome": "read"}))
except DatasetError as exc:
    print(json.dumps({"outcome": "DatasetError", "message": str(exc)}))
except BaseException as exc:
    print(json.dumps({"outcome": type(exc).__name__, "message": str(exc)}))
"""


def read_capped(path: Path) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", _CAPPED, str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def message_of(path: Path) -> str:
    with pytest.raises(DatasetError) as info:
        read_npz(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


def zip_members(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def labels_npz(path: Path, y: Any) -> Path:
    np.savez(path, x_train=X, y_train=y)
    return path


# ---------------------------------------------------------------------- labels


def test_a_label_of_ten_to_the_twelve_is_refused_before_memory_is_taken(tmp_path: Path) -> None:
    path = labels_npz(tmp_path / "hl.npz", np.array([0, 1, 10**12]))
    result = read_capped(path)
    assert result["outcome"] == "DatasetError", result
    assert "1000000000000" in result["message"] and f"{MAX_CLASSES:,}" in result["message"]


def test_a_label_just_under_the_limit_with_gaps_names_the_gaps_cheaply(tmp_path: Path) -> None:
    path = labels_npz(tmp_path / "gaps.npz", np.array([0, 1, MAX_CLASSES - 1]))
    message = message_of(path)
    assert f"goes up to {MAX_CLASSES - 1} but has no 2, 3, 4" in message


def test_a_float_label_of_1e30_is_named_as_written(tmp_path: Path) -> None:
    message = message_of(labels_npz(tmp_path / "f.npz", np.array([0.0, 1.0, 1e30])))
    assert "1e+30" in message and "-9223372036854775808" not in message


def test_the_largest_uint64_label_is_not_reported_as_minus_one(tmp_path: Path) -> None:
    message = message_of(labels_npz(tmp_path / "u.npz", np.array([0, 1, 2**64 - 1], dtype=np.uint64)))
    assert "18446744073709551615" in message and "label -1" not in message


# ---------------------------------------------------------------------- declared sizes


def test_a_declared_shape_larger_than_the_data_is_refused_before_allocating(tmp_path: Path) -> None:
    # A header that declares 10**12 bytes, with 16 bytes of data behind it.
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "|u1", "fortran_order": False, "shape": (10**6, 10**3, 10**3)})
    lying = buf.getvalue() + b"\0" * 16
    path = zip_members(tmp_path / "lie.npz", {"x_train.npy": lying, "y_train.npy": npy_bytes(np.array([0, 1, 1]))})
    result = read_capped(path)
    assert result["outcome"] == "DatasetError", result
    assert "x_train declares" in result["message"] and "1000000x1000x1000" in result["message"]


def test_a_zip_bomb_is_refused_before_it_inflates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert MAX_ARRAY_BYTES >= 2**30  # the stated limit: a gigabyte or more per array
    monkeypatch.setattr(datasets_custom, "MAX_ARRAY_BYTES", 1 << 20)
    x = np.zeros((40, 128, 128), dtype=np.uint8)  # 1.25 MiB inflated (both halves), a few KiB compressed
    path = tmp_path / "bomb.npz"
    np.savez_compressed(path, x_train=np.concatenate([x, x]), y_train=np.arange(80) % 2)
    assert path.stat().st_size < 20_000
    opened: list[str] = []
    real_open = zipfile.ZipFile.open

    def recording_open(self: zipfile.ZipFile, name: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(getattr(name, "filename", name))
        return real_open(self, name, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", recording_open)
    message = message_of(path)
    assert "x_train inflates to 1,310,848 bytes" in message and "limit of 1,048,576 bytes" in message
    assert "x_train.npy" not in opened  # refused from the zip's directory, before the member was opened


# ---------------------------------------------------------------------- malformed members


def _patched(path: Path, local: tuple[int, bytes], central: tuple[int, bytes]) -> Path:
    data = bytearray(path.read_bytes())
    for signature, (offset, value) in ((b"PK\x03\x04", local), (b"PK\x01\x02", central)):
        at = data.find(signature)
        while at >= 0:
            data[at + offset : at + offset + len(value)] = value
            at = data.find(signature, at + 4)
    path.write_bytes(bytes(data))
    return path


def test_malformed_members_are_one_line_naming_the_problem(tmp_path: Path) -> None:
    good = {"x_train.npy": npy_bytes(X), "y_train.npy": npy_bytes(np.array([0, 1, 1]))}
    bad_header = zip_members(
        tmp_path / "header.npz", {**good, "x_train.npy": b"\x93NUMPY\x01\x00\x10\x00{'descr': oops}\n"}
    )
    message = message_of(bad_header)
    assert "x_train is not a valid .npy array" in message and "pickle" not in message

    odd = _patched(zip_members(tmp_path / "odd.npz", good), (8, b"\x63\x00"), (10, b"\x63\x00"))
    assert "compression method 99" in message_of(odd)

    locked = _patched(zip_members(tmp_path / "locked.npz", good), (6, b"\x01\x00"), (8, b"\x01\x00"))
    assert "encrypted" in message_of(locked)

    objects = tmp_path / "objects.npz"
    np.savez(objects, x_train=np.array([{"a": 1}, None], dtype=object), y_train=np.array([0, 1]))
    assert "Python objects" in message_of(objects)


def _good_npz() -> bytes:
    buf = io.BytesIO()
    np.savez(buf, x_train=X, y_train=np.array([0, 1, 1]))
    return buf.getvalue()


@pytest.mark.parametrize(
    ("content", "cause"),
    [
        (b"hello, this is not NumPy at all\n" * 4, "not a zip archive"),
        (b"x_train,y_train\n1,2\n", "not a zip archive"),
        (b"PK", "not a zip archive"),
        (b"", "is empty"),
        (_good_npz()[:200], "truncated or damaged"),
        (_good_npz()[:-30], "truncated or damaged"),
        (npy_bytes(X), "a single array (.npy)"),
        (npy_bytes(X)[:100], "a single array (.npy)"),
    ],
    ids=["garbage", "csv", "two-bytes", "empty", "zip-head", "zip-without-end", "npy", "npy-truncated"],
)
def test_a_file_that_is_no_npz_names_its_real_cause_not_pickle(tmp_path: Path, content: bytes, cause: str) -> None:
    # NumPy calls every file that is neither a zip nor a .npy "pickled (object) data".
    path = tmp_path / "data.npz"
    path.write_bytes(content)
    message = message_of(path)
    assert cause in message and "pickle" not in message, message


def test_only_pickled_content_is_said_to_need_pickle(tmp_path: Path) -> None:
    import pickle

    path = tmp_path / "data.npz"
    path.write_bytes(pickle.dumps({"x_train": [1, 2]}))
    assert "it is a Python pickle" in message_of(path)
    objects = tmp_path / "objects.npz"
    np.savez(objects, x_train=np.array([{"a": 1}, None], dtype=object), y_train=np.array([0, 1]))
    assert "pickle" in message_of(objects)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_images_of_no_pixels_are_refused(tmp_path: Path, dtype: Any) -> None:
    path = tmp_path / "empty.npz"
    np.savez(path, x_train=np.zeros((3, 0, 0), dtype=dtype), y_train=np.array([0, 1, 1]))
    assert "0x0 pixels" in message_of(path)


# ---------------------------------------------------------------------- 16-bit images


def test_sixteen_bit_grey_pngs_are_scaled_not_clipped(tmp_path: Path) -> None:
    image = pytest.importorskip("PIL.Image")
    for name, value in (("dark", 1000), ("bright", 30000), ("white", 65535)):
        folder = tmp_path / "train" / name
        folder.mkdir(parents=True)
        image.fromarray(np.full((4, 4), value, dtype=np.uint16)).save(folder / "a.png")
    raw = read_folder(tmp_path)
    assert raw.train_x.dtype == np.uint8 and raw.train_x.shape == (3, 1, 4, 4)
    seen = {raw.classes[int(label)]: int(x.max()) for x, label in zip(raw.train_x, raw.train_y, strict=True)}
    assert seen == {"dark": round(1000 / 257), "bright": round(30000 / 257), "white": 255}


# ---------------------------------------------------------------------- warnings and the one-line error

# The command line with Pillow's decompression-bomb limit lowered to 1,000 pixels (a 40x40 image
# then warns, as a 90-megapixel one would), so that the test need not build a huge image.
_CLI_LOW_BOMB_LIMIT = (
    "import sys; from PIL import Image; Image.MAX_IMAGE_PIXELS = 1000; "
    "from pyevonas.cli import main; sys.argv = ['pyevonas', *sys.argv[1:]]; main()"
)


def _palette_png(path: Path, size: int = 8) -> None:
    """A palette PNG whose transparency is given in bytes: Pillow warns when it is converted to RGB."""
    image = pytest.importorskip("PIL.Image")
    im = image.new("P", (size, size), 1)
    im.putpalette([0, 0, 0, 255, 255, 255] * 128)
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, transparency=bytes([0, 128] + [255] * 254))


def _grey_png(path: Path, size: int) -> None:
    image = pytest.importorskip("PIL.Image")
    path.parent.mkdir(parents=True, exist_ok=True)
    noise = np.random.default_rng(0).integers(0, 256, (size, size), dtype=np.uint8)  # no tiny file to cut
    image.fromarray(noise).save(path)


def _folder_warning_then_error(root: Path) -> str:
    """A class of palette images (Pillow warns) and a class whose image has another size (the error)."""
    _palette_png(root / "train" / "a" / "0.png")
    _palette_png(root / "train" / "a" / "1.png")
    _grey_png(root / "train" / "b" / "0.png", 9)
    return "images of different sizes"


def _folder_truncated(root: Path) -> str:
    _palette_png(root / "train" / "a" / "0.png")
    _grey_png(root / "train" / "b" / "0.png", 30)
    data = (root / "train" / "b" / "0.png").read_bytes()
    (root / "train" / "b" / "0.png").write_bytes(data[: len(data) // 2])
    return "cannot read image"


def _folder_bomb(root: Path) -> str:
    _grey_png(root / "train" / "a" / "0.png", 8)
    _grey_png(root / "train" / "b" / "0.png", 40)  # 1,600 pixels: above the lowered limit, below twice it
    return "decompression bomb"


def _npz_float16_labels(root: Path) -> str:
    # A float16 label compared with the class limit (100,000, above float16's largest) made NumPy
    # warn "overflow encountered in cast".
    root.mkdir(parents=True)
    np.savez(root / "d.npz", x_train=X, y_train=np.array([0, 1, 60000], dtype=np.float16))
    return "has no 2, 3"


_WARNING_CASES = {
    "palette": ("folder", _folder_warning_then_error),
    "truncated": ("folder", _folder_truncated),
    "bomb": ("folder", _folder_bomb),
    "float16-labels": ("npz", _npz_float16_labels),
}


@pytest.mark.parametrize("warnings_as_errors", [False, True], ids=["default", "W-error"])
@pytest.mark.parametrize("case", list(_WARNING_CASES))
def test_warnings_of_pillow_and_numpy_leave_just_the_one_line_error(
    tmp_path: Path, case: str, warnings_as_errors: bool
) -> None:
    pytest.importorskip("torch")
    kind, build = _WARNING_CASES[case]
    root = tmp_path / "data"
    expected = build(root)
    spec = f"folder:{root}" if kind == "folder" else f"npz:{root / 'd.npz'}"
    flags = ["-W", "error"] if warnings_as_errors else []
    # -W default: every warning is shown (once per place), whatever this interpreter's filters are.
    flags = flags or ["-W", "default"]
    args = ["train", "C(8,3,1) g F(8)", "--dataset", spec, "--epochs", "1", "--quiet"]
    done = subprocess.run(
        [sys.executable, *flags, "-c", _CLI_LOW_BOMB_LIMIT, *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    err = done.stderr.strip()
    assert done.returncode == 2, err[-3000:]
    assert len(err.splitlines()) == 1 and err.startswith("error:"), err[-3000:]
    assert expected in err and "Warning" not in err, err
