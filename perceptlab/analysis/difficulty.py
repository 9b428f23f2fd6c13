"""Does the robust model's ground-truth logit predict human errors? (L-WISE, seed 003, mechanism 1)

Per stimulus and true label: the share of trials answered with another class (the error rate) and the
stored robust logit of that true label (engine/lwise.py; ``perceptlab difficulty LIB`` stores it). Only
trials with a true label count (catch digits, labelled MNIST digits, learning experiments). Trial class
i is taken to be the library's class index i (the order of the trial file's classes).

The test: Spearman's rank correlation between logit and error rate over stimuli (negative: stimuli the
robust model sees clearly are answered correctly more often).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from perceptlab.errors import PerceptLabError


def difficulty_table(df: pd.DataFrame, library) -> pd.DataFrame:
    """Columns stimulus_id, true_label, trials, errors, error_rate, logit (one row per stimulus and true
    label) from canonical trials ``df`` (``response``, ``true_label`` as class indices)."""
    from perceptlab.data.trial_stimuli import library_stimuli, resolve_stimuli  # noqa: PLC0415
    from perceptlab.data.difficulty import logit_for  # noqa: PLC0415

    labelled = df[df["true_label"].notna()]
    if labelled.empty:
        raise PerceptLabError("no trial has a true label",
                              "difficulty analysis needs trials with true_label (catch digits, labelled digits)")
    index = resolve_stimuli(labelled, library_stimuli(library.path))
    ids = labelled["stimulus"].astype(str).map(index.table["stimulus_id"])
    t = pd.DataFrame({"stimulus_id": ids, "true_label": labelled["true_label"].astype(int),
                      "error": (labelled["response"].astype(int) != labelled["true_label"].astype(int))})
    t = t[t["stimulus_id"].notna()]
    if t.empty:
        raise PerceptLabError(f"no labelled trial's stimulus is in the library {library.path}",
                              index.summary())
    g = t.groupby(["stimulus_id", "true_label"])["error"].agg(trials="size", errors="sum").reset_index()
    g["error_rate"] = g["errors"] / g["trials"]
    logits = []
    for sid, label in zip(g["stimulus_id"], g["true_label"]):
        logits.append(logit_for(library.get(sid), int(label)))
    g["logit"] = pd.array(logits, dtype="Float64")
    return g


def difficulty_summary(table: pd.DataFrame) -> dict:
    """Spearman's rho (logit vs error rate) over stimuli with a stored logit; counts."""
    from scipy import stats  # noqa: PLC0415

    have = table[table["logit"].notna()]
    out = {"stimuli": int(len(table)), "with_difficulty": int(len(have)), "trials": int(table["trials"].sum()),
           "mean_error_rate": float(table["error_rate"].mean()) if len(table) else float("nan")}
    if len(have) < 3:
        out.update(spearman_rho=None, p=None)
        return out
    x, y = have["logit"].to_numpy(dtype=float), have["error_rate"].to_numpy(dtype=float)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        out.update(spearman_rho=None, p=None)
        return out
    rho, p = stats.spearmanr(x, y)
    out.update(spearman_rho=float(rho), p=float(p))
    return out


def format_difficulty(summary: dict, synthetic: bool = False) -> str:
    lines = ["SYNTHETIC: the trial file is marked as simulated responses, not human data"] if synthetic else []
    lines.append(f"{summary['stimuli']} stimuli ({summary['with_difficulty']} with a robust logit), "
                 f"{summary['trials']} labelled trials, mean error rate {summary['mean_error_rate']:.1%}")
    if summary.get("spearman_rho") is None:
        lines.append("Spearman: not defined (fewer than 3 stimuli with a logit, or no spread)")
    else:
        lines.append(f"Spearman rho (robust ground-truth logit vs error rate) = {summary['spearman_rho']:+.3f}, "
                     f"p = {summary['p']:.3g}")
    return "\n".join(lines)
