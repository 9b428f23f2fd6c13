"""28x28 8-bit grayscale PNG images, white digit on black as in MNIST.

Pixel values are uint8 0..255 on disk and float in [-1, 1] in the models (x / 127.5 - 1, as in
``perceptlab.data.mnist``). Reading accepts grayscale, palette, RGB and RGBA PNGs of size 28x28 and
converts them to grayscale; any other size is refused with a message naming the file.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from perceptlab.errors import PerceptLabError

SIZE = 28
"""Side length of every stimulus image, in pixels."""

_CONVERTIBLE_MODES = ("1", "L", "LA", "P", "RGB", "RGBA")


def float_to_uint8(x: np.ndarray) -> np.ndarray:
    """Model range [-1, 1] -> uint8 0..255 (values outside the range are clipped; NaN is refused)."""
    x = np.asarray(x, dtype=np.float64)
    if np.isnan(x).any():
        raise PerceptLabError("the image contains NaN pixels", "regenerate it; NaN usually means the guidance diverged")
    return np.rint((np.clip(x, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)


def uint8_to_float(pixels: np.ndarray) -> np.ndarray:
    """uint8 0..255 -> float32 in [-1, 1]."""
    return np.asarray(pixels, dtype=np.float32) / 127.5 - 1.0


def check_image(image: np.ndarray, what: str = "image") -> np.ndarray:
    """Return ``image`` as a (28, 28) uint8 array, or raise naming ``what`` if it is not one."""
    arr = np.asarray(image)
    if arr.shape != (SIZE, SIZE):
        raise PerceptLabError(
            f"{what} has shape {arr.shape}, expected ({SIZE}, {SIZE})",
            "pass one 28x28 grayscale image (squeeze any channel axis)",
        )
    if arr.dtype != np.uint8:
        raise PerceptLabError(
            f"{what} has dtype {arr.dtype}, expected uint8",
            "convert model outputs in [-1, 1] with perceptlab.data.images.float_to_uint8",
        )
    return arr


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of one (28, 28) uint8 image (8-bit grayscale)."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(check_image(image))).save(buf, format="PNG")
    return buf.getvalue()


def write_png(path: str | Path, image: np.ndarray, *, fsync: bool = False) -> Path:
    """Write one (28, 28) uint8 image as an 8-bit grayscale PNG; with ``fsync`` the bytes reach the disk."""
    path = Path(path)
    data = encode_png(image)
    try:
        with open(path, "wb") as fh:
            fh.write(data)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
    except OSError as exc:
        raise PerceptLabError(
            f"cannot write {path}: {exc.strerror or exc}", "check that the folder exists and is writable"
        ) from exc
    return path


def read_png(path: str | Path) -> np.ndarray:
    """Read a 28x28 image file as a (28, 28) uint8 array (RGB/RGBA/palette converted to grayscale)."""
    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()
            size, mode = img.size, img.mode
            if size != (SIZE, SIZE):
                raise PerceptLabError(
                    f"{path} is {size[0]}x{size[1]} pixels, expected {SIZE}x{SIZE}",
                    "resize it to 28x28 (white digit on black, as in MNIST) before importing",
                )
            if mode not in _CONVERTIBLE_MODES:
                raise PerceptLabError(
                    f"{path} has pixel mode {mode!r}, which cannot be read as 8-bit grayscale",
                    "save it as an 8-bit grayscale (or RGB) PNG",
                )
            gray = img if mode == "L" else img.convert("L")
            return np.array(gray, dtype=np.uint8)
    except FileNotFoundError as exc:
        raise PerceptLabError(f"{path} does not exist", "check the file name") from exc
    except UnidentifiedImageError as exc:
        raise PerceptLabError(f"{path} is not an image file Pillow can read", "save it as a PNG") from exc
    except OSError as exc:
        raise PerceptLabError(f"cannot read {path}: {exc}", "check the file is a complete PNG") from exc
