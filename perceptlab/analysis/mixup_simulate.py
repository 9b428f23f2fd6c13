"""A simulated lambda-perceiver (SYNTHETIC) for mixup designs, with a known ground truth.

Each category pair ``a-b`` has a perceived 50/50 point ``m = 0.5 + bias`` (bias ~ U(-max_bias, max_bias))
and a slope ``s``; the population's perceived share of class_b at generating lambda is
f(lambda) = 1 / (1 + exp(-s (lambda - m))). Each participant adds a personal shift to m (sd ``shift_sd``)
and answers with personal noise sd sigma ~ U(noise):

- slider: clip(f_p(lambda) + N(0, sigma), 0, 1), then a confidence 1-5 that falls with sigma and near
  the 50/50 point (so a person's confidence carries information about their noise);
- pick: the image whose noisy perceived share is closest to 0.5;
- choice: class_b with probability f_p(lambda), class_a otherwise; with the lapse rate a random class.

Output rows follow the runner's canonical layout (``perceptlab.experiment.design.OUTPUT_COLUMNS``) with
``session_id`` = "SYNTHETIC", so everything downstream reads them like real data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from perceptlab.analysis.mixup import logistic
from perceptlab.analysis.simulate import SYNTHETIC_NOTE
from perceptlab.errors import PerceptLabError
from perceptlab.experiment.design import OUTPUT_COLUMNS, Design, presentation_order

NOTE = SYNTHETIC_NOTE.replace("perceptlab simulate", "perceptlab mixup simulate")


@dataclass(frozen=True)
class PerceiverSettings:
    participants: int = 30
    seed: int = 0
    max_bias: float = 0.2
    slope: tuple[float, float] = (8.0, 16.0)
    shift_sd: float = 0.04
    noise: tuple[float, float] = (0.03, 0.25)
    lapse: float = 0.02

    def to_dict(self) -> dict:
        return asdict(self)


def _confidence(sigma: float, f: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    raw = 5.4 - 12.0 * sigma - 1.5 * (1.0 - np.abs(2.0 * f - 1.0)) + rng.normal(0, 0.4, size=np.shape(f))
    return np.clip(np.rint(raw), 1, 5).astype(int)


def simulate_perceivers(design: Design, settings: PerceiverSettings | None = None) -> tuple[pd.DataFrame, dict]:
    """(canonical trial rows, ground truth) for ``settings.participants`` simulated people doing the design."""
    st = settings or PerceiverSettings()
    if st.participants < 1:
        raise PerceptLabError(f"--participants {st.participants}", "simulate at least one participant")
    rng = np.random.default_rng(st.seed)
    cats = sorted({f"{t.options['class_a']}-{t.options['class_b']}" for t in design.trials
                   if t.options.get("class_a") is not None and t.options.get("class_b") is not None})
    if not cats:
        raise PerceptLabError(f"the design {design.name!r} has no mixup trials", "write one with `perceptlab mixup design`")
    truth_pairs = {c: {"bias": float(rng.uniform(-st.max_bias, st.max_bias)), "slope": float(rng.uniform(*st.slope))}
                   for c in cats}
    people = {f"SIM{p + 1:03d}": {"sigma": float(rng.uniform(*st.noise)), "shift": float(rng.normal(0, st.shift_sd))}
              for p in range(st.participants)}
    classes = list(design.classes)
    rows = []
    for pid, person in people.items():
        order = presentation_order(design)
        for idx, t in enumerate(order):
            o = t.options
            cp = f"{o.get('class_a')}-{o.get('class_b')}"
            if cp not in truth_pairs:
                continue
            tp = truth_pairs[cp]
            m, s, sig = 0.5 + tp["bias"] + person["shift"], tp["slope"], person["sigma"]
            conf = None
            if t.kind == "pick":
                lams = np.asarray(o["lambdas"], float)
                perceived = logistic(lams, m, s) + rng.normal(0, sig, size=len(lams))
                response = o["stimuli"][int(np.argmin(np.abs(perceived - 0.5)))]
            elif t.kind == "slider":
                f = logistic(float(o["lambda"]), m, s)
                response = f"{float(np.clip(f + rng.normal(0, sig), 0, 1)):.3f}"
                conf = int(_confidence(sig, np.array(f), rng))
            else:
                f = logistic(float(o["lambda"]), m, s)
                if rng.random() < st.lapse:
                    response = classes[int(rng.integers(len(classes)))]
                else:
                    response = o["class_b"] if rng.random() < f else o["class_a"]
            rows.append({"participant": pid, "stimulus": t.stimulus, "response": response,
                         "rt_ms": round(float(rng.lognormal(np.log(900 if t.kind != "choice" else 600), 0.3)), 1),
                         "trial_index": idx, "is_catch": False, "true_label": "", "kind": t.kind, "block": t.block,
                         "phase": t.phase, "feedback": False, "correct": "", "order_seed": design.order_seed,
                         "intended_fixation_ms": design.fixation_ms, "measured_fixation_ms": "",
                         "intended_stimulus_ms": design.stimulus_ms, "measured_stimulus_ms": "",
                         "confidence": conf if conf is not None else "", "session_id": "SYNTHETIC",
                         "timestamp_utc": ""})
    truth = {"note": NOTE, "settings": st.to_dict(), "pairs": truth_pairs, "participants": people,
             "convention": "bias = true 50/50 point - 0.5 (lambda = share of class_b)"}
    return pd.DataFrame(rows, columns=list(OUTPUT_COLUMNS)), truth


def recovery(pairs: pd.DataFrame, truth: dict) -> dict:
    """How well the per-pair fits (``analyze_mixup(...)["pairs"]``) recover the simulated biases:
    mean absolute error of the fitted and of the pick-based bias, per pair and overall."""
    rows = []
    for r in pairs.itertuples():
        t = truth["pairs"].get(r.category_pair)
        if t is None:
            continue
        rows.append({"category_pair": r.category_pair, "true_bias": t["bias"], "fit_bias": r.fit_bias,
                     "pick_bias": r.pick_bias, "true_slope": t["slope"], "fit_slope": r.fit_slope})
    df = pd.DataFrame(rows)
    fit_err = (df["fit_bias"] - df["true_bias"]).abs()
    out = {"pairs": len(df), "fit_bias_mae": float(fit_err.mean()), "fit_bias_max_error": float(fit_err.max()),
           "per_pair": df.to_dict("records")}
    if df["pick_bias"].notna().any():
        out["pick_bias_mae"] = float((df["pick_bias"] - df["true_bias"]).abs().mean())
    return out
