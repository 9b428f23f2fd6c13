"""Per-participant summary: trials, catch accuracy, agreement with the group majority, RT, cluster."""

from __future__ import annotations

import numpy as np
import pandas as pd

from perceptlab.analysis.clustering import ClusterResult
from perceptlab.analysis.exclusions import ExclusionResult


def agreement_with_majority(trials: pd.DataFrame, reference: pd.DataFrame, n_classes: int) -> pd.Series:
    """Per participant: share of trials whose response is the majority response of the others.

    The majority comes from ``reference`` (the analysed trials) without the participant's own
    response. Ties between several modal responses count as 1/(number tied); trials on stimuli no
    one else answered are left out of the denominator.
    """
    ref_codes, stimuli = pd.factorize(reference["stimulus"])
    ref_resp = reference["response"].to_numpy(dtype=np.int64)
    counts = np.bincount(ref_codes * n_classes + ref_resp,
                         minlength=len(stimuli) * n_classes).reshape(len(stimuli), n_classes)
    codes = stimuli.get_indexer(trials["stimulus"])
    resp = trials["response"].to_numpy(dtype=np.int64)
    known = codes >= 0
    others = np.zeros((len(trials), n_classes), dtype=np.int64)
    others[known] = counts[codes[known]]
    in_ref = trials.index.isin(reference.index) & known
    others[np.flatnonzero(in_ref), resp[in_ref]] -= 1
    top = others.max(axis=1)
    answered = top > 0
    n_modes = (others == top[:, None]).sum(axis=1)
    hit = others[np.arange(len(trials)), resp] == top
    score = np.where(answered & hit, 1.0 / n_modes, 0.0)
    frame = pd.DataFrame({"participant": trials["participant"].to_numpy(), "score": score,
                          "answered": answered})
    g = frame[frame["answered"]].groupby("participant", sort=False)["score"].mean()
    return g.reindex(pd.unique(trials["participant"]))


def participant_summary(trials: pd.DataFrame, exclusions: ExclusionResult,
                        clusters: ClusterResult | None, n_classes: int) -> pd.DataFrame:
    """One row per participant of the valid trial table (excluded participants included)."""
    by = trials.groupby("participant", sort=True)
    out = pd.DataFrame({"n_trials": by.size()})
    out = out.join(exclusions.catch[["n_catch", "n_scored", "n_correct", "accuracy", "excluded"]]
                   .rename(columns={"accuracy": "catch_accuracy", "n_correct": "catch_correct",
                                    "n_scored": "catch_scored"}))
    analysed = exclusions.trials.groupby("participant").size()
    out["n_analysed"] = analysed.reindex(out.index).fillna(0).astype(int)
    non_catch = trials[~trials["is_catch"].to_numpy(dtype=bool)]
    out["agreement_with_majority"] = agreement_with_majority(non_catch, exclusions.trials, n_classes)
    rt = non_catch.groupby("participant")["rt_ms"]
    out["mean_rt_ms"] = rt.mean()
    out["median_rt_ms"] = rt.median()
    out["cluster"] = (clusters.labels.reindex(out.index).astype("Int64")
                      if clusters is not None and (clusters.reliable or clusters.k_given)
                      else pd.array([pd.NA] * len(out), dtype="Int64"))
    out.index.name = "participant"
    return out
