"""Human percepts of mixup (seeds/004): inferred vs generating lambda, a logistic fit per category pair,
aggregate and individual misalignment (numpy / scipy / pandas only).

Inputs: the response trials of a mixup experiment (:func:`perceptlab.data.export_mixup.read_mixup_results`)
and what each stimulus is (:func:`perceptlab.experiment.mixup.stimulus_info`: pair, class_a, class_b and
the generating lambda, the share of class_b).

- **slider** trials give the inferred lambda directly; **choice** trials give 1 when the participant
  chose class_b, 0 for class_a (other classes are counted and left out); **pick** trials give the lambda
  of the image chosen as the perceived 50/50 point.
- **Logistic fit** per category pair (``a-b``): P(perceive class_b | lambda) = 1 / (1 + exp(-s (lambda - m)))
  fitted by maximum (quasi-)likelihood to the slider values and the choice outcomes together (a slider
  value y counts as y "b" and 1 - y "a" observations). ``m`` is the perceived 50/50 point, ``s`` the slope,
  ``bias`` = m - 0.5 (positive: more of class_b is needed to look even).
- **Misalignment**: mean |inferred - generating| over slider trials (aggregate, per pair, per participant),
  the pick trials' mean chosen lambda - 0.5, and per-participant fits (individual 50/50 points).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from perceptlab.errors import PerceptLabError

M_BOUNDS = (-0.5, 1.5)
S_BOUNDS = (0.05, 200.0)


SUMMARY_KEYS = ("slider_mae", "fit_mean_abs_bias", "pick_mean_abs_bias", "individual_mean_abs_bias")


def is_synthetic(trials: pd.DataFrame) -> bool:
    """Rows written by the SYNTHETIC lambda-perceiver (its session_id)."""
    return bool("session_id" in trials.columns and trials["session_id"].astype(str).eq("SYNTHETIC").any())


def logistic(lam, m: float, s: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-s * (np.asarray(lam, dtype=float) - m)))


def fit_logistic(lam: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None) -> dict:
    """Fit m (50/50 point) and s (slope) to outcomes ``y`` in [0, 1] at coefficients ``lam``: the
    (quasi-)binomial maximum likelihood, bounded (m in [-0.5, 1.5], s in [0.05, 200])."""
    lam = np.asarray(lam, dtype=float)
    y = np.clip(np.asarray(y, dtype=float), 0.0, 1.0)
    w = np.ones_like(y) if weight is None else np.asarray(weight, dtype=float)
    n = int(len(y))
    if n < 3 or np.unique(lam).size < 2:
        return {"m": None, "s": None, "bias": None, "n": n, "converged": False}

    def nll(theta):
        m, s = theta
        z = s * (lam - m)
        # log(1 + exp(-z)) and log(1 + exp(z)), stable
        return float(np.sum(w * (y * np.logaddexp(0, -z) + (1 - y) * np.logaddexp(0, z))))

    def grad(theta):
        m, s = theta
        p = logistic(lam, m, s)
        r = w * (p - y)
        return np.array([np.sum(r * -s), np.sum(r * (lam - m))])

    starts = [(0.5, 10.0), (float(np.clip(np.average(lam, weights=np.maximum(w, 1e-9)), 0, 1)), 5.0)]
    best = None
    for x0 in starts:
        res = minimize(nll, x0, jac=grad, method="L-BFGS-B", bounds=[M_BOUNDS, S_BOUNDS])
        if best is None or res.fun < best.fun:
            best = res
    m, s = (float(v) for v in best.x)
    return {"m": m, "s": s, "bias": m - 0.5, "n": n, "converged": bool(best.success), "nll": float(best.fun)}


def join_trials(trials: pd.DataFrame, info: pd.DataFrame, other_choices: bool = False) -> tuple[pd.DataFrame, list[str]]:
    """Trials with ``pair``, ``category_pair`` (``a-b``), ``class_a``, ``class_b``, ``lambda`` (generating)
    and ``y`` (inferred lambda or 0/1 outcome; for pick rows the chosen lambda); notes on what was left out.
    ``other_choices``: keep choice trials that chose neither class of the pair (``y`` NaN)."""
    notes: list[str] = []
    df = trials.copy()
    df["stimulus"] = df["stimulus"].astype(str)
    df["confidence"] = pd.to_numeric(df["confidence"], errors="coerce") if "confidence" in df else np.nan
    info = info.set_index("stimulus", drop=False) if "stimulus" in info.columns else info
    out = []
    pair_of = info.groupby("pair").first()
    for kind, g in df.groupby("kind", sort=False):
        g = g.copy()
        if kind == "pick":
            known = g["stimulus"].isin(pair_of.index)
            g = g[known]
            chosen = g["response"].astype(str)
            ok = chosen.isin(info.index)
            if (~ok).any():
                notes.append(f"{int((~ok).sum())} pick trials chose a stimulus the design does not list; left out")
            g = g[ok.to_numpy()]
            g["pair"] = g["stimulus"]
            for col in ("class_a", "class_b"):
                g[col] = pair_of.loc[g["pair"], col].to_numpy()
            g["lambda"] = np.nan
            g["y"] = info.loc[g["response"].astype(str), "lambda"].to_numpy(float)
            missing = int((~known).sum())
        else:
            known = g["stimulus"].isin(info.index)
            missing = int((~known).sum())
            g = g[known]
            meta = info.loc[g["stimulus"]]
            for col in ("pair", "class_a", "class_b", "lambda"):
                g[col] = meta[col].to_numpy()
            if kind == "slider":
                y = pd.to_numeric(g["response"], errors="coerce")
                bad = y.isna() | (y < 0) | (y > 1)
                if bad.any():
                    lines = ", ".join(str(v) for v in g.loc[bad, "line"].head(3)) if "line" in g else "?"
                    notes.append(f"{int(bad.sum())} slider trials with a response outside [0, 1] left out (lines {lines})")
                g = g[~bad.to_numpy()]
                g["y"] = y[~bad].to_numpy(float)
            else:  # choice
                resp = g["response"].astype(str)
                is_b, is_a = resp == g["class_b"].astype(str), resp == g["class_a"].astype(str)
                other = ~(is_a | is_b)
                if other.any() and not other_choices:
                    notes.append(f"{int(other.sum())} choice trials chose neither class of the pair; left out of the fits")
                    g, is_b, other = g[~other.to_numpy()], is_b[~other], other[~other]
                g["y"] = np.where(other.to_numpy(), np.nan, is_b.astype(float).to_numpy())
        if missing:
            notes.append(f"{missing} {kind} trials on stimuli the design does not describe; left out")
        out.append(g)
    if not out or sum(len(g) for g in out) == 0:
        raise PerceptLabError("no mixup trial matches the design's stimuli",
                              "analyze the trials with the design (or library) they were collected with")
    joined = pd.concat(out, ignore_index=True)
    joined["category_pair"] = joined["class_a"].astype(str) + "-" + joined["class_b"].astype(str)
    return joined, notes


def analyze_mixup(trials: pd.DataFrame, info: pd.DataFrame, min_trials_individual: int = 6) -> dict:
    """Every mixup analysis; returns {"pairs": DataFrame, "participants": DataFrame, "curves": DataFrame,
    "individual_fits": DataFrame, "summary": dict, "joined": DataFrame}."""
    df, notes = join_trials(trials, info)
    fit_rows = df[df["kind"].isin(["slider", "choice"])]
    slider = df[df["kind"] == "slider"].copy()
    slider["abs_error"] = (slider["y"] - slider["lambda"]).abs()
    picks = df[df["kind"] == "pick"]
    pairs = []
    for cp in sorted(df["category_pair"].unique()):
        f = fit_rows[fit_rows["category_pair"] == cp]
        fit = fit_logistic(f["lambda"].to_numpy(float), f["y"].to_numpy(float))
        s = slider[slider["category_pair"] == cp]
        p = picks[picks["category_pair"] == cp]
        pairs.append({"category_pair": cp, "class_a": df.loc[df["category_pair"] == cp, "class_a"].iloc[0],
                      "class_b": df.loc[df["category_pair"] == cp, "class_b"].iloc[0],
                      "fit_m": fit["m"], "fit_slope": fit["s"], "fit_bias": fit["bias"], "fit_n": fit["n"],
                      "slider_n": len(s), "slider_mae": float(s["abs_error"].mean()) if len(s) else None,
                      "slider_signed": float((s["y"] - s["lambda"]).mean()) if len(s) else None,
                      "pick_n": len(p), "pick_mean": float(p["y"].mean()) if len(p) else None,
                      "pick_bias": float(p["y"].mean() - 0.5) if len(p) else None})
    pairs_df = pd.DataFrame(pairs)
    parts, fits = [], []
    for pid, g in df.groupby("participant", sort=True):
        s = slider[slider["participant"] == pid]
        p = picks[picks["participant"] == pid]
        parts.append({"participant": pid, "trials": len(g), "slider_n": len(s),
                      "slider_mae": float(s["abs_error"].mean()) if len(s) else None,
                      "slider_signed": float((s["y"] - s["lambda"]).mean()) if len(s) else None,
                      "mean_confidence": float(g["confidence"].mean()) if g["confidence"].notna().any() else None,
                      "pick_n": len(p), "pick_abs_bias": float((p["y"] - 0.5).abs().mean()) if len(p) else None})
        for cp, h in fit_rows[fit_rows["participant"] == pid].groupby("category_pair"):
            if len(h) >= min_trials_individual:
                fit = fit_logistic(h["lambda"].to_numpy(float), h["y"].to_numpy(float))
                fits.append({"participant": pid, "category_pair": cp, "m": fit["m"], "slope": fit["s"],
                             "bias": fit["bias"], "n": fit["n"]})
    curves = (slider.groupby(["category_pair", "lambda"])["y"].agg(["mean", "std", "count"]).reset_index()
              .rename(columns={"mean": "inferred_mean", "std": "inferred_sd", "count": "n"})) if len(slider) else \
        pd.DataFrame(columns=["category_pair", "lambda", "inferred_mean", "inferred_sd", "n"])
    ind = pd.DataFrame(fits, columns=["participant", "category_pair", "m", "slope", "bias", "n"])
    summary = {
        "trials": int(len(df)), "participants": int(df["participant"].nunique()),
        "category_pairs": int(len(pairs_df)), "by_kind": {k: int(v) for k, v in df["kind"].value_counts().items()},
        "slider_mae": float(slider["abs_error"].mean()) if len(slider) else None,
        "fit_mean_abs_bias": float(pairs_df["fit_bias"].abs().mean()) if pairs_df["fit_bias"].notna().any() else None,
        "pick_mean_abs_bias": float(pairs_df["pick_bias"].abs().mean()) if pairs_df["pick_bias"].notna().any() else None,
        "individual_mean_abs_bias": float(ind["bias"].abs().mean()) if len(ind) else None,
        "individual_bias_sd": float(ind["bias"].std()) if len(ind) > 1 else None,
        "notes": notes,
        "convention": "lambda = share of class_b; bias = fitted 50/50 point - 0.5",
    }
    return {"pairs": pairs_df, "participants": pd.DataFrame(parts), "curves": curves,
            "individual_fits": ind, "summary": summary, "joined": df}


def write_report(result: dict, out_dir: str | Path, synthetic_note: str | None = None) -> list[Path]:
    """CSV tables, summary.json and PNG figures (matplotlib, Agg) into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for key in ("pairs", "participants", "curves", "individual_fits"):
        p = out / f"mixup_{key}.csv"
        result[key].to_csv(p, index=False)
        paths.append(p)
    summary = dict(result["summary"])
    if synthetic_note:
        summary["synthetic"] = synthetic_note
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=float) + "\n", encoding="utf-8")
    paths.append(out / "summary.json")
    paths += _figures(result, out, synthetic_note)
    return paths


def _figures(result: dict, out: Path, note: str | None) -> list[Path]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
    from matplotlib.figure import Figure  # noqa: PLC0415

    def subplots(size):
        fig = Figure(figsize=size)
        FigureCanvasAgg(fig)
        return fig, fig.add_subplot()

    paths = []
    pairs, curves = result["pairs"], result["curves"]
    fig, ax = subplots((6, 5))
    grid = np.linspace(0, 1, 101)
    ax.plot(grid, grid, "k--", lw=1, label="mixup label (identity)")
    for row in pairs.itertuples():
        c = curves[curves["category_pair"] == row.category_pair]
        line = ax.plot(c["lambda"], c["inferred_mean"], "o", ms=3)[0] if len(c) else None
        if row.fit_m is not None and not pd.isna(row.fit_m):
            ax.plot(grid, logistic(grid, row.fit_m, row.fit_slope), "-", lw=1,
                    color=line.get_color() if line else None, label=f"{row.category_pair} (m={row.fit_m:.2f})")
    ax.set_xlabel("generating lambda (share of class_b)")
    ax.set_ylabel("inferred lambda / P(class_b)")
    ax.set_title("Inferred vs generating lambda" + (" (SYNTHETIC)" if note else ""))
    if len(pairs) <= 12:
        ax.legend(fontsize=7)
    p = out / "mixup_curves.png"
    fig.tight_layout()
    fig.savefig(p, dpi=110)
    paths.append(p)
    ind = result["individual_fits"]
    fig, ax = subplots((6, 4))
    if len(ind):
        ax.hist(ind["bias"].dropna(), bins=30, color="tab:blue", alpha=0.8, label="individual fits")
    for v in pairs["fit_bias"].dropna():
        ax.axvline(v, color="tab:red", lw=1)
    ax.set_xlabel("bias of the 50/50 point (m - 0.5); red: per-pair aggregate fits")
    ax.set_ylabel("participant x pair fits")
    ax.set_title("Individual misalignment" + (" (SYNTHETIC)" if note else ""))
    p = out / "mixup_individual_bias.png"
    fig.tight_layout()
    fig.savefig(p, dpi=110)
    paths.append(p)
    return paths
