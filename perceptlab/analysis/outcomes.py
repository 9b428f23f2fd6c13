"""Guidance outcomes per stimulus and their rates (DESIGN.md §3).

For a stimulus generated for the target pair (a, b), with p1 the share of responses a and p2 the
share b: *success* if min(p1, p2) > 0.25 and p1 + p2 > 0.6; *bias* if min(p1, p2) <= 0.25 and
p1 + p2 > 0.6; *failure* if p1 + p2 <= 0.6. The comparisons are made exactly on the counts (as
fractions), so a share of exactly 0.25 or a sum of exactly 0.6 falls on the documented side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pandas as pd

from perceptlab import CLASSES
from perceptlab.analysis.choices import count_columns

OUTCOMES = ("success", "bias", "failure")


def classify_outcomes(count_a: np.ndarray, count_b: np.ndarray, n: np.ndarray,
                      min_share: float = 0.25, min_total: float = 0.6) -> np.ndarray:
    """Outcome (``success``/``bias``/``failure``) from counts of a, of b and all responses."""
    a = np.asarray(count_a, dtype=np.int64)
    b = np.asarray(count_b, dtype=np.int64)
    n = np.asarray(n, dtype=np.int64)
    share = Fraction(str(min_share))
    total = Fraction(str(min_total))
    on_pair = (a + b) * total.denominator > total.numerator * n
    balanced = np.minimum(a, b) * share.denominator > share.numerator * n
    return np.where(on_pair & balanced, "success", np.where(on_pair, "bias", "failure")).astype(object)


@dataclass
class OutcomeSummary:
    """Per-stimulus outcomes, rates overall and per mode, and the symmetric pair success matrix."""

    per_stimulus: pd.DataFrame
    classes: tuple[str, ...]
    pair_success: np.ndarray  # C x C success rate, NaN where no stimuli and on the diagonal
    pair_counts: np.ndarray  # C x C number of stimuli per unordered pair

    @staticmethod
    def _rates(outcome: pd.Series) -> dict:
        n = len(outcome)
        counts = outcome.value_counts()
        out = {o: (float(counts.get(o, 0)) / n if n else None) for o in OUTCOMES}
        out["n"] = int(n)
        return out

    @property
    def overall(self) -> dict:
        return self._rates(self.per_stimulus["outcome"])

    @property
    def per_mode(self) -> dict[str, dict]:
        ps = self.per_stimulus
        mode = ps["mode"].astype(object).where(ps["mode"].notna(), "unknown").astype(str)
        return {m: self._rates(g) for m, g in ps["outcome"].groupby(mode, sort=True)}

    def to_dict(self) -> dict:
        def grid(a: np.ndarray) -> list:
            return [[None if np.isnan(v) else float(v) for v in row] for row in a.astype(float)]

        return {
            "overall": self.overall,
            "per_mode": self.per_mode,
            "pair_success": {"classes": list(self.classes), "rate": grid(self.pair_success),
                             "count": self.pair_counts.astype(int).tolist()},
        }


def guidance_outcomes(per_stimulus: pd.DataFrame, pairs: pd.DataFrame,
                      classes: Sequence[str] = CLASSES, min_share: float = 0.25,
                      min_total: float = 0.6) -> OutcomeSummary:
    """Outcomes of the stimuli that have a target pair.

    ``per_stimulus``: index stimulus, columns ``n`` and ``count_<class>`` (as from
    :func:`~perceptlab.analysis.choices.choice_counts`); ``pairs``: index stimulus, columns
    ``class_a``, ``class_b`` (class indices) and optionally ``mode``.
    """
    classes = tuple(classes)
    c = len(classes)
    pairs = pairs.reindex(per_stimulus.index)
    a = pd.to_numeric(pairs["class_a"], errors="coerce").to_numpy(dtype=float)
    b = pd.to_numeric(pairs["class_b"], errors="coerce").to_numpy(dtype=float)
    valid = np.isfinite(a) & np.isfinite(b) & (a != b)
    with np.errstate(invalid="ignore"):
        valid &= (a >= 0) & (a < c) & (b >= 0) & (b < c)
    ps = per_stimulus[valid]
    ia, ib = a[valid].astype(np.int64), b[valid].astype(np.int64)
    counts = ps[count_columns(classes)].to_numpy()
    rows = np.arange(len(ps))
    ca, cb, n = counts[rows, ia], counts[rows, ib], ps["n"].to_numpy()
    mode = pairs["mode"][valid] if "mode" in pairs.columns else pd.Series(pd.NA, index=ps.index)
    out = pd.DataFrame({
        "mode": mode.to_numpy(), "class_a": ia, "class_b": ib, "n": n,
        "p_a": ca / n, "p_b": cb / n,
        "outcome": classify_outcomes(ca, cb, n, min_share, min_total),
    }, index=ps.index)
    pair_counts = np.zeros((c, c), dtype=np.int64)
    pair_success = np.zeros((c, c), dtype=np.int64)
    success = (out["outcome"] == "success").to_numpy().astype(np.int64)
    for x, y in ((ia, ib), (ib, ia)):
        np.add.at(pair_counts, (x, y), 1)
        np.add.at(pair_success, (x, y), success)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(pair_counts > 0, pair_success / pair_counts, np.nan)
    np.fill_diagonal(rate, np.nan)
    return OutcomeSummary(out, classes, rate, pair_counts)
