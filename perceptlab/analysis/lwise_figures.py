"""Figures of the L-WISE tools: image grids (gradients, enhancement) as PNG, and the difficulty scatter and
learning curves as PNG + SVG (matplotlib, Agg canvas; the same writer as the analysis report)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from perceptlab.analysis.report import _save


def _tile(img: np.ndarray, signed: bool) -> np.ndarray:
    """A (28, 28) array -> uint8 RGB: images in [-1, 1] as gray; gradients (``signed``) red (+) / blue (-),
    each scaled to its own largest magnitude."""
    a = np.asarray(img, dtype=np.float64).reshape(28, 28)
    if not signed:
        g = np.clip((a + 1) * 127.5, 0, 255)
        return np.stack([g, g, g], -1).astype(np.uint8)
    m = np.abs(a).max() or 1.0
    v = a / m
    rgb = np.ones((28, 28, 3))
    rgb[..., 1] -= np.abs(v)
    rgb[..., 2] -= np.clip(v, 0, None)
    rgb[..., 0] -= np.clip(-v, 0, None)
    return np.clip(rgb * 255, 0, 255).astype(np.uint8)


def image_grid(columns: Sequence[np.ndarray], signed: Sequence[bool], path: str | Path, scale: int = 3,
               gap: int = 2) -> Path:
    """Write a PNG: one column per array of images (N, 28, 28) (or (N, 1, 28, 28)), N rows."""
    from PIL import Image  # noqa: PLC0415

    cols = [np.asarray(c).reshape(-1, 28, 28) for c in columns]
    n = len(cols[0])
    step = 28 + gap
    canvas = np.full((n * step + gap, len(cols) * step + gap, 3), 255, dtype=np.uint8)
    for j, (col, sgn) in enumerate(zip(cols, signed)):
        for i in range(n):
            canvas[gap + i * step : gap + i * step + 28, gap + j * step : gap + j * step + 28] = _tile(col[i], sgn)
    img = Image.fromarray(canvas).resize((canvas.shape[1] * scale, canvas.shape[0] * scale), Image.NEAREST)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def difficulty_figure(table, summary: dict, out_dir: Path, synthetic: bool = False) -> list[Path]:
    """Error rate vs robust ground-truth logit, one dot per stimulus."""
    from matplotlib.figure import Figure  # noqa: PLC0415

    have = table[table["logit"].notna()]
    fig = Figure(figsize=(5.5, 4.0), layout="constrained")
    ax = fig.add_subplot()
    ax.scatter(have["logit"].astype(float), have["error_rate"].astype(float), s=12, alpha=0.7, color="#4c72b0")
    ax.set_xlabel("robust model's ground-truth logit (difficulty: low = hard)")
    ax.set_ylabel("error rate")
    rho = summary.get("spearman_rho")
    title = "Error rate vs difficulty" + ("" if rho is None else f" (Spearman ρ = {rho:+.2f})")
    ax.set_title(("[SYNTHETIC] " if synthetic else "") + title)
    out_dir.mkdir(parents=True, exist_ok=True)
    return _save(fig, out_dir, "difficulty_vs_error")


def learning_figure(summary: dict, out_dir: Path, synthetic: bool = False) -> list[Path]:
    """Accuracy by train block per condition, and test accuracy by condition (mean ± s.e.m.)."""
    from matplotlib.figure import Figure  # noqa: PLC0415

    fig = Figure(figsize=(8.0, 3.6), layout="constrained")
    ax, bx = fig.subplots(1, 2, width_ratios=[2, 1])
    colors = {"curriculum": "#dd8452", "control": "#4c72b0"}
    for cond, curve in summary["curves"].items():
        x = [c["block"] + 1 for c in curve]
        ax.errorbar(x, [c["accuracy"] for c in curve], yerr=[np.nan_to_num(c["sem"]) for c in curve],
                    marker="o", capsize=3, label=cond, color=colors.get(cond))
    ax.set_xlabel("train block")
    ax.set_ylabel("accuracy")
    ax.legend()
    ax.set_title(("[SYNTHETIC] " if synthetic else "") + "Learning curves")
    conds = list(summary["test"])
    bx.bar(conds, [summary["test"][c]["accuracy"] for c in conds],
           yerr=[np.nan_to_num(summary["test"][c]["sem"]) for c in conds], capsize=4,
           color=[colors.get(c, "#8172b3") for c in conds])
    bx.set_ylim(0, 1)
    bx.set_title("Test accuracy (unmodified)")
    out_dir.mkdir(parents=True, exist_ok=True)
    return _save(fig, out_dir, "learning_curves")
