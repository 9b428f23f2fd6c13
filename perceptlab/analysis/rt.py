"""Reaction time against choice entropy (varEmotion Fig. 7c: Spearman 0.42 on variMNIST)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from perceptlab.analysis.correlation import SpearmanResult, spearman_or_reason


@dataclass
class RtEntropyResult:
    """Spearman of per-stimulus median RT vs entropy, and the scatter data (index stimulus)."""

    spearman: SpearmanResult
    per_stimulus: pd.DataFrame  # median_rt_ms, n_rt, entropy_bits

    def to_dict(self) -> dict:
        return self.spearman.to_dict()


def median_rt(trials: pd.DataFrame) -> pd.DataFrame:
    """Median RT (ms) and number of timed trials per stimulus (only trials with an RT)."""
    timed = trials.loc[np.isfinite(trials["rt_ms"].to_numpy(dtype=float)), ["stimulus", "rt_ms"]]
    g = timed.groupby("stimulus", sort=True)["rt_ms"]
    return pd.DataFrame({"median_rt_ms": g.median(), "n_rt": g.size()})


def rt_entropy(trials: pd.DataFrame, entropy: pd.Series, min_n: int = 3) -> RtEntropyResult:
    """Spearman between each stimulus's median RT and its entropy (``entropy`` indexed by stimulus)."""
    med = median_rt(trials)
    per = med.join(entropy.rename("entropy_bits"), how="inner")
    if med.empty:
        result = SpearmanResult(None, None, 0, "no reaction times in the trial table")
    else:
        result = spearman_or_reason(per["median_rt_ms"], per["entropy_bits"], min_n,
                                    x_label="median RTs", y_label="entropies")
    return RtEntropyResult(result, per)
