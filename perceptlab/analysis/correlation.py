"""Spearman correlations that say why they are not defined, and model–human entropy agreement.

Every Spearman the tool reports goes through :func:`spearman_or_reason`: with too few points or a
constant input it returns the reason ("constant input: all model entropies equal") instead of NaN.
Model probabilities arrive as arrays or DataFrames (n_stimuli x n_classes); this module never runs
a model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from perceptlab.analysis.choices import entropy_bits
from perceptlab.errors import PerceptLabError


@dataclass(frozen=True)
class SpearmanResult:
    """Spearman rho and p over n pairs, or ``reason`` why it is not defined (rho and p ``None``)."""

    rho: float | None
    p: float | None
    n: int
    reason: str | None = None

    @property
    def defined(self) -> bool:
        return self.reason is None

    def to_dict(self) -> dict:
        return {"rho": self.rho, "p": self.p, "n": self.n, "reason": self.reason}

    def __str__(self) -> str:
        if not self.defined:
            return f"not defined ({self.reason})"
        return f"rho = {self.rho:.3f} (p = {self.p:.3g}, n = {self.n})"


def spearman_or_reason(x: Sequence[float] | np.ndarray | pd.Series,
                       y: Sequence[float] | np.ndarray | pd.Series, min_n: int = 3, *,
                       x_label: str = "x values", y_label: str = "y values",
                       unit: str = "stimuli") -> SpearmanResult:
    """Spearman correlation over the pairs where both values are finite."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"x and y differ in length ({x.shape} vs {y.shape})")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y, n = x[keep], y[keep], int(keep.sum())
    if n < min_n:
        return SpearmanResult(None, None, n, f"too few {unit} ({n} < {min_n})")
    for values, label in ((x, x_label), (y, y_label)):
        if np.all(values == values[0]):
            return SpearmanResult(None, None, n, f"constant input: all {label} equal")
    rho, p = stats.spearmanr(x, y)
    return SpearmanResult(float(rho), float(p), n)


def check_probabilities(probs: np.ndarray, what: str = "model probabilities") -> np.ndarray:
    """Validate an (N, C) probability matrix: finite, non-negative, rows summing to 1."""
    probs = np.asarray(probs, dtype=float)
    if probs.ndim != 2:
        raise PerceptLabError(f"{what}: expected an (n_stimuli, n_classes) array, got shape {probs.shape}")
    sums = probs.sum(axis=1)
    bad = ~np.isfinite(sums) | (probs.min(axis=1, initial=0.0) < 0) | (np.abs(sums - 1) > 1e-3)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise PerceptLabError(
            f"{what}: row {i} is not a probability distribution (sums to {sums[i]:.4g})",
            fix="pass softmax outputs (non-negative, each row summing to 1), not logits",
        )
    return probs


@dataclass
class ModelHumanResult:
    """Spearman of model vs human entropy and the scatter data (index stimulus)."""

    model: str
    spearman: SpearmanResult
    scatter: pd.DataFrame  # columns human_entropy_bits, model_entropy_bits
    n_without_probs: int

    def to_dict(self) -> dict:
        return {**self.spearman.to_dict(), "stimuli_without_model_probs": self.n_without_probs}


def model_human_entropy(human_entropy: pd.Series, probs: pd.DataFrame | np.ndarray,
                        stimuli: Sequence[str] | None = None, *, model: str = "model",
                        min_n: int = 3) -> ModelHumanResult:
    """Correlate human choice entropy with the entropy of a model's class probabilities.

    ``probs`` is a DataFrame indexed by stimulus key, or an array with ``stimuli`` naming its rows.
    Stimuli of ``human_entropy`` without probabilities are counted, not guessed.
    """
    if isinstance(probs, pd.DataFrame):
        index = probs.index.astype(str)
        values = probs.to_numpy(dtype=float)
    else:
        if stimuli is None:
            raise ValueError("pass stimuli= naming the rows of a probability array")
        index = pd.Index([str(s) for s in stimuli])
        values = np.asarray(probs, dtype=float)
        if len(index) != len(values):
            raise ValueError(f"{len(index)} stimuli for {len(values)} rows of probabilities")
    values = check_probabilities(values, f"probabilities of model '{model}'")
    model_entropy = pd.Series(entropy_bits(values), index=index)
    model_entropy = model_entropy[~model_entropy.index.duplicated()]
    common = human_entropy.index.intersection(model_entropy.index, sort=False)
    scatter = pd.DataFrame({"human_entropy_bits": human_entropy.loc[common].to_numpy(dtype=float),
                            "model_entropy_bits": model_entropy.loc[common].to_numpy()},
                           index=pd.Index(common, name="stimulus"))
    result = spearman_or_reason(scatter["human_entropy_bits"], scatter["model_entropy_bits"], min_n,
                                x_label="human entropies", y_label="model entropies")
    return ModelHumanResult(model, result, scatter, int(len(human_entropy) - len(common)))
