"""numpy images -> Qt images (28x28 uint8 grayscale, white digit on black)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPixmap

from perceptlab.data.images import float_to_uint8


def to_uint8(images) -> np.ndarray:
    """Model-range floats ([-1, 1], any of (N,1,28,28)/(N,28,28)/(28,28)) or uint8 -> uint8 (..., 28, 28)."""
    arr = images.numpy() if hasattr(images, "numpy") else np.asarray(images)
    if arr.dtype != np.uint8:
        arr = float_to_uint8(arr)
    if arr.ndim == 4:
        arr = arr[:, 0]
    return np.ascontiguousarray(arr)


def qimage(gray: np.ndarray) -> QImage:
    """A deep copy of a (H, W) uint8 array as a grayscale QImage."""
    gray = np.ascontiguousarray(gray, dtype=np.uint8)
    h, w = gray.shape
    return QImage(gray.data, w, h, w, QImage.Format.Format_Grayscale8).copy()


def qpixmap(gray: np.ndarray, size: int | None = None) -> QPixmap:
    """A pixmap of a uint8 image, scaled (unsmoothed: pixels stay crisp) to ``size`` if given."""
    pix = QPixmap.fromImage(qimage(gray))
    if size:
        pix = pix.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation)
    return pix


def pixmap_from_file(path: str | Path, size: int | None = None) -> QPixmap:
    pix = QPixmap(str(path))
    if pix.isNull():
        pix = placeholder(size or 28)
    elif size:
        pix = pix.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation)
    return pix


def placeholder(size: int, text: str = "?") -> QPixmap:
    pix = QPixmap(size, size)
    pix.fill(QColor("#444"))
    p = QPainter(pix)
    p.setPen(QColor("#ddd"))
    p.drawText(QRect(0, 0, size, size), Qt.AlignmentFlag.AlignCenter, text)
    p.end()
    return pix
