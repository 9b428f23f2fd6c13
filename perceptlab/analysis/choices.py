"""Choice distributions and their entropy per stimulus (DESIGN.md §3).

The choice distribution of a stimulus is its response counts over the classes divided by the number
of responses; its entropy is the Shannon entropy in bits (0 when unanimous, log2(n_classes) at most).
Stimuli with fewer than ``min_responses`` responses are listed but left out of the statistics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import entr

from perceptlab import CLASSES


def count_columns(classes: Sequence[str]) -> list[str]:
    """Column names ``count_<class>`` in class-index order."""
    return [f"count_{c}" for c in classes]


def choice_counts(trials: pd.DataFrame, classes: Sequence[str] = CLASSES) -> pd.DataFrame:
    """Per-stimulus response counts: index ``stimulus`` (sorted), columns ``n, count_<class>``."""
    n_classes = len(classes)
    codes, stimuli = pd.factorize(trials["stimulus"], sort=True)
    response = trials["response"].to_numpy(dtype=np.int64)
    if len(response) and (response.min() < 0 or response.max() >= n_classes):
        raise ValueError(f"responses must be class indices 0..{n_classes - 1}")
    flat = np.bincount(codes * n_classes + response, minlength=len(stimuli) * n_classes)
    counts = flat.reshape(len(stimuli), n_classes)
    out = pd.DataFrame(counts, index=pd.Index(stimuli, name="stimulus"), columns=count_columns(classes))
    out.insert(0, "n", counts.sum(axis=1))
    return out


def entropy_bits(counts: np.ndarray) -> np.ndarray:
    """Shannon entropy (bits) of each row of a count (or probability) matrix; NaN for empty rows."""
    counts = np.asarray(counts, dtype=float)
    total = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = counts / total
    return entr(p).sum(axis=1) / np.log(2)


@dataclass
class ChoiceSummary:
    """Per-stimulus counts, distribution and entropy, plus statistics over the included stimuli."""

    per_stimulus: pd.DataFrame
    classes: tuple[str, ...]
    min_responses: int
    hist_edges: np.ndarray
    hist_counts: np.ndarray

    @property
    def included(self) -> pd.DataFrame:
        return self.per_stimulus[self.per_stimulus["included"]]

    @property
    def entropy(self) -> pd.Series:
        """Entropy (bits) of the stimuli with enough responses."""
        return self.included["entropy_bits"]

    @property
    def share_entropy_gt0(self) -> float:
        e = self.entropy
        return float((e > 0).mean()) if len(e) else float("nan")

    def distribution(self) -> pd.DataFrame:
        """Choice distribution (rows sum to 1), columns ``p_<class>``."""
        counts = self.per_stimulus[count_columns(self.classes)].to_numpy(dtype=float)
        p = counts / counts.sum(axis=1, keepdims=True)
        return pd.DataFrame(p, index=self.per_stimulus.index, columns=[f"p_{c}" for c in self.classes])

    def to_dict(self) -> dict:
        e = self.entropy
        return {
            "stimuli": int(len(self.per_stimulus)),
            "stimuli_included": int(len(e)),
            "stimuli_below_min_responses": int((~self.per_stimulus["included"]).sum()),
            "min_responses": self.min_responses,
            "max_entropy_bits": float(np.log2(len(self.classes))),
            "mean_bits": float(e.mean()) if len(e) else None,
            "median_bits": float(e.median()) if len(e) else None,
            "sd_bits": float(e.std(ddof=1)) if len(e) > 1 else None,
            "share_entropy_gt0": self.share_entropy_gt0 if len(e) else None,
            "histogram": {"edges": self.hist_edges.tolist(), "counts": self.hist_counts.tolist()},
        }


def choice_summary(trials: pd.DataFrame, classes: Sequence[str] = CLASSES, min_responses: int = 3,
                   bins: int = 20) -> ChoiceSummary:
    """Counts, entropy, modal response and a histogram of entropy over ``[0, log2(n_classes)]``."""
    classes = tuple(classes)
    per = choice_counts(trials, classes)
    counts = per[count_columns(classes)].to_numpy()
    per["entropy_bits"] = entropy_bits(counts)
    per["modal_response"] = counts.argmax(axis=1)
    per["included"] = per["n"].to_numpy() >= min_responses
    e = per.loc[per["included"], "entropy_bits"].to_numpy()
    hist, edges = np.histogram(e, bins=bins, range=(0.0, float(np.log2(len(classes)))))
    return ChoiceSummary(per, classes, min_responses, edges, hist)
