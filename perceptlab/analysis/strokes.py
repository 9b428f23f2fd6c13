"""Stroke statistics of a 28x28 grey image, and the clean-stroke check of the acceptance filter.

A guided sampler can fool every classifier with images no person would write: detached specks of ink,
knots of many small loops, solid blotches. This module measures those on the image itself (no model),
against the range of real handwritten digits:

- ``specks``: detached pieces of ink smaller than ``SPECK_PIXELS`` pixels lying more than
  ``SPECK_GAP`` pixels from the largest stroke (8-connected, ink = grey value > 127);
- ``holes``: enclosed background regions of at least 2 pixels (0 for 1, 1 for 0 or 6, 2 for 8);
- ``ink``: the number of ink pixels;
- ``width``: the largest distance from an ink pixel to the background (half the widest stroke);
- ``solid``: the share of ink pixels at least 2 pixels inside the ink (a filled blob has many, a
  stroke few).

``LIMITS`` come from the 10,000 digits of the official MNIST test set (``perceptlab eval strokes``
measures them): 1.1% of them have a speck, 0.17% more than 2 holes, 0.1% more than 235 ink pixels,
0.08% a half-width above 5, 0.15% more than 55% filled area; the check rejects 1.5% of them (1.2% of
the built-in subset).
numpy and scipy only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

INK_LEVEL = 127  # grey values above this are ink
SPECK_PIXELS = 6  # a detached piece of ink smaller than this ...
SPECK_GAP = 2.5  # ... and further than this (pixels) from the largest stroke is a speck
MIN_HOLE_PIXELS = 2  # a single enclosed background pixel is noise, not a loop
_EIGHT = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True)
class StrokeStats:
    specks: int
    holes: int
    ink: int
    width: float
    solid: float = 0.0

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class StrokeLimits:
    """The most a clean digit shows (every limit inclusive)."""

    specks: int = 0
    holes: int = 2
    ink: int = 235
    width: float = 5.0
    solid: float = 0.55


LIMITS = StrokeLimits()


def stroke_stats(image: np.ndarray) -> StrokeStats:
    """Statistics of one uint8 (28, 28) image (grey values 0-255, white ink on black)."""
    img = np.asarray(image)
    if img.dtype != np.uint8:
        img = np.clip(np.rint(img.astype(np.float64)), 0, 255).astype(np.uint8)
    ink = img > INK_LEVEL
    labels, n = ndimage.label(ink, structure=_EIGHT)
    specks = 0
    if n > 1:  # a lone small mark is the digit itself
        areas = np.bincount(labels.ravel())[1:]
        gap = ndimage.distance_transform_edt(labels != np.argmax(areas) + 1)
        small = np.flatnonzero(areas < SPECK_PIXELS) + 1
        specks = int(sum(gap[labels == k].min() > SPECK_GAP for k in small))
    background, nb = ndimage.label(~ink)  # 4-connected: loops closed diagonally still enclose
    edge = np.unique(np.concatenate([background[0], background[-1], background[:, 0], background[:, -1]]))
    sizes = np.bincount(background.ravel(), minlength=nb + 1)
    inside = np.setdiff1d(np.arange(1, nb + 1), edge)
    holes = int((sizes[inside] >= MIN_HOLE_PIXELS).sum())
    n_ink = int(ink.sum())
    depth = ndimage.distance_transform_edt(ink)
    width = float(depth.max()) if n_ink else 0.0
    solid = float((depth >= 2).sum() / n_ink) if n_ink else 0.0
    return StrokeStats(specks, holes, n_ink, width, solid)


PARTS = ("specks", "holes", "ink", "width", "solid")  # StrokeStats and StrokeLimits fields, one limit each


def failed_parts(stats: StrokeStats, limits: StrokeLimits = LIMITS) -> list[str]:
    """The parts of the check (``PARTS``) whose limit the image exceeds."""
    return [part for part in PARTS if getattr(stats, part) > getattr(limits, part)]


_REASONS = {
    "specks": lambda s, lim: f"{s.specks} detached speck(s) of ink",
    "holes": lambda s, lim: f"{s.holes} enclosed loops (a knot; digits have at most {lim.holes})",
    "ink": lambda s, lim: f"{s.ink} ink pixels (a blot; digits have at most {lim.ink})",
    "width": lambda s, lim: f"strokes {2 * s.width:.0f} px wide (a blot; digits at most {2 * lim.width:.0f})",
    "solid": lambda s, lim: f"{s.solid:.0%} of the ink is filled area (a blot; digits at most {lim.solid:.0%})",
}


def stroke_reasons(stats: StrokeStats, limits: StrokeLimits = LIMITS) -> list[str]:
    """Why an image fails the clean-stroke check ([] when it passes)."""
    return [_REASONS[part](stats, limits) for part in failed_parts(stats, limits)]


def rejection_rates(images: Iterable[np.ndarray], limits: StrokeLimits = LIMITS) -> dict[str, float]:
    """Share of ``images`` failing each part of the check and the whole check (for calibration)."""
    failures = [failed_parts(stroke_stats(im), limits) for im in images]
    n = max(len(failures), 1)
    parts = {part: sum(part in f for f in failures) for part in PARTS}
    parts["any"] = sum(bool(f) for f in failures)
    return {k: v / n for k, v in parts.items()} | {"n": float(len(failures))}
