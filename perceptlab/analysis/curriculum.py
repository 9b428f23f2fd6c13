"""Learning experiments (L-WISE curriculum vs shuffled control): learning curves, test accuracy by
condition, and a simulated learner (SYNTHETIC) whose accuracy improves with feedback.

**Data.** Rows in the runner/export layout (``perceptlab.experiment.design.OUTPUT_COLUMNS``): at least
``participant``, ``block``, ``phase`` and either ``correct`` or ``response`` + ``true_label``; the condition
comes from a ``condition`` column or from the file each table was read from (``load_learning``).

**Simulated learner (SYNTHETIC).** A perceptual skill s per participant (starting uniformly in
``skill0``). A stimulus's clarity z is its robust ground-truth logit (engine/lwise.py), standardised
over the design (0 = a typical test image, ``standardized``); the learner perceives the true class
with probability ``p = sigmoid(gain * (z + s))`` and then answers it, else guesses uniformly among the
classes (plus a lapse rate). After each feedback trial the skill grows
``s += rate * 4 p (1 - p) * (skill_max - s)``: feedback teaches most where the learner was unsure (p
near 1/2); images it already sees clearly, or cannot see at all, teach little.
An easy-to-hard order keeps the images near that edge as w grows (the mechanism a curriculum relies
on); a shuffled order wastes the hard images early and the easy ones late. The test phase has no
feedback and no learning.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from perceptlab.analysis.simulate import SYNTHETIC_NOTE  # noqa: F401  (the label every simulated table carries)
from perceptlab.errors import PerceptLabError
from perceptlab.experiment.design import OUTPUT_COLUMNS, Design, presentation_order

LEARNER_NOTE = "SYNTHETIC: simulated learners (perceptlab curriculum simulate), not human data"


@dataclass(frozen=True)
class LearnerSettings:
    participants: int = 20
    seed: int = 0
    skill0: tuple[float, float] = (-2.5, -1.5)  # novices: a typical unmodified image is seen with p < 0.01
    skill_max: float = 1.0
    rate: float = 0.05
    gain: float = 3.0
    lapse: float = 0.02

    def to_dict(self) -> dict:
        return asdict(self)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def standardized(logits: Mapping[str, float], designs: Sequence[Design]) -> dict[str, float]:
    """z = (logit - median test-phase logit) / s.d. of every logit the designs use: 0 is a typical test image."""
    used = {t.stimulus for d in designs for t in d.trials}
    values = np.array([logits[k] for k in used if k in logits], float)
    test = np.array([logits[t.stimulus] for d in designs for t in d.trials if t.phase == "test" and t.stimulus in logits])
    center = float(np.median(test)) if len(test) else float(np.median(values))
    spread = float(values.std()) or 1.0
    return {k: (float(v) - center) / spread for k, v in logits.items()}


def simulate_learners(designs: Sequence[Design], logits: Mapping[str, float], settings: LearnerSettings | None = None,
                      conditions: Sequence[str] | None = None) -> pd.DataFrame:
    """SYNTHETIC trial rows (OUTPUT_COLUMNS + ``condition``, ``synthetic``): ``settings.participants``
    learners per design; ``logits`` = {stimulus id: robust ground-truth logit}. Learners of different
    designs with the same index share their starting skill (a paired comparison)."""
    from perceptlab.experiment.curriculum import condition_of  # noqa: PLC0415

    s = settings or LearnerSettings()
    conditions = list(conditions) if conditions else [condition_of(d) for d in designs]
    for design in designs:
        missing = sorted({t.stimulus for t in design.trials} - set(logits))
        if missing:
            raise PerceptLabError(f"design {design.name}: no difficulty for stimulus {missing[0]}",
                                  "compute it first: perceptlab difficulty LIB")
    z = standardized(logits, designs)
    rows = []
    start = np.random.default_rng(s.seed).uniform(*s.skill0, size=s.participants)
    for design, condition in zip(designs, conditions):
        classes = list(design.classes)
        order = presentation_order(design)
        for p in range(s.participants):
            rng = np.random.default_rng([s.seed, p, 1 + conditions.index(condition)])
            skill = float(start[p])
            for k, t in enumerate(order):
                perceive = float(_sigmoid(s.gain * (z[t.stimulus] + skill)))
                truth = classes.index(t.true_label)
                if rng.random() < s.lapse or rng.random() >= perceive:
                    answer = int(rng.integers(len(classes)))
                else:
                    answer = truth
                if t.feedback:  # feedback teaches most where the learner was unsure
                    skill += s.rate * 4 * perceive * (1 - perceive) * (s.skill_max - skill)
                rows.append({
                    "participant": f"sim-{condition}-{p:03d}", "stimulus": t.stimulus, "response": classes[answer],
                    "rt_ms": None, "trial_index": k, "is_catch": t.is_catch, "true_label": t.true_label,
                    "kind": t.kind, "block": t.block, "phase": t.phase, "feedback": t.feedback,
                    "correct": answer == truth, "order_seed": design.order_seed, "condition": condition,
                    "synthetic": True,
                })
    return pd.DataFrame(rows, columns=[*OUTPUT_COLUMNS, "condition", "synthetic"])


# --------------------------------------------------------------------------- analysis


def _correct(df: pd.DataFrame, where: str) -> pd.Series:
    if "correct" in df.columns and df["correct"].notna().any():
        return df["correct"].map(lambda v: str(v).strip().lower() in ("true", "1", "1.0"))
    if {"response", "true_label"} <= set(df.columns):
        return df["response"].astype(str).str.strip() == df["true_label"].astype(str).str.strip()
    raise PerceptLabError(f"{where}: no 'correct' column and no 'response' + 'true_label'",
                          "export the learning experiment with PerceptLab (its rows carry both)")


def learning_table(frames: Mapping[str, pd.DataFrame] | pd.DataFrame, where: str = "trials") -> pd.DataFrame:
    """One row per trial: participant, condition, block, phase, correct (bool)."""
    if isinstance(frames, pd.DataFrame):
        if "condition" not in frames.columns:
            raise PerceptLabError(f"{where}: no 'condition' column",
                                  "give one file per condition (--condition curriculum=FILE --condition control=FILE)")
        frames = {c: g for c, g in frames.groupby("condition")}
    parts = []
    for condition, df in frames.items():
        missing = {"participant", "block", "phase"} - set(df.columns)
        if missing:
            raise PerceptLabError(f"{where} ({condition}): missing column(s) {', '.join(sorted(missing))}",
                                  "use the rows of PerceptLab's runner or jsPsych curriculum export")
        parts.append(pd.DataFrame({
            "participant": df["participant"].astype(str).to_numpy(), "condition": str(condition),
            "block": pd.to_numeric(df["block"], errors="coerce").to_numpy(),
            "phase": df["phase"].astype(str).to_numpy(), "correct": _correct(df, where).to_numpy(),
        }))
    out = pd.concat(parts, ignore_index=True)
    return out[out["phase"].isin(["train", "test"])].reset_index(drop=True)


def _sem(x: pd.Series) -> float:
    return float(x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else float("nan")


def learning_summary(table: pd.DataFrame) -> dict:
    """Learning curves (accuracy by train block, mean ± s.e.m. over participants) and test accuracy by
    condition, with the curriculum − control difference (Welch t-test over participants)."""
    from scipy import stats  # noqa: PLC0415

    per = table.groupby(["condition", "phase", "block", "participant"])["correct"].mean().reset_index()
    curves = {}
    for (cond,), g in per[per["phase"] == "train"].groupby(["condition"]):
        by = g.groupby("block")["correct"]
        curves[cond] = [{"block": int(b), "accuracy": float(v.mean()), "sem": _sem(v), "n": int(len(v))}
                        for b, v in by]
    test = per[per["phase"] == "test"].groupby(["condition", "participant"])["correct"].mean().reset_index()
    tests = {c: {"accuracy": float(g["correct"].mean()), "sem": _sem(g["correct"]), "participants": int(len(g))}
             for c, g in test.groupby("condition")}
    out = {"curves": curves, "test": tests}
    if {"curriculum", "control"} <= set(tests):
        a = test.loc[test["condition"] == "curriculum", "correct"]
        b = test.loc[test["condition"] == "control", "correct"]
        t = stats.ttest_ind(a, b, equal_var=False) if len(a) > 1 and len(b) > 1 else None
        out["difference"] = {"curriculum_minus_control": float(a.mean() - b.mean()),
                             "welch_t": None if t is None else float(t.statistic),
                             "p": None if t is None else float(t.pvalue)}
    return out


def format_learning(summary: dict, synthetic: bool = False) -> str:
    lines = [LEARNER_NOTE] if synthetic else []
    for cond, curve in summary["curves"].items():
        pts = ", ".join(f"b{c['block']}: {c['accuracy']:.1%}" for c in curve)
        lines.append(f"learning curve ({cond}): {pts}")
    for cond, t in summary["test"].items():
        lines.append(f"test accuracy ({cond}): {t['accuracy']:.1%} ± {t['sem']:.1%} s.e.m., {t['participants']} participants")
    d = summary.get("difference")
    if d:
        p = "" if d["p"] is None else f" (Welch t = {d['welch_t']:.2f}, p = {d['p']:.3g})"
        lines.append(f"curriculum − control: {d['curriculum_minus_control']:+.1%}{p}")
    return "\n".join(lines)


def load_learning(specs: Sequence[str]) -> pd.DataFrame:
    """``CONDITION=FILE`` (or a FILE with a condition column) -> ``learning_table``; ``attrs["synthetic"]``
    says whether any row is marked synthetic (simulated learners, not people)."""
    frames: dict[str, pd.DataFrame] = {}
    single = None
    synthetic = False
    for spec in specs:
        cond, sep, path = spec.partition("=")
        if not sep:
            cond, path = None, spec
        p = Path(path)
        try:
            df = pd.read_csv(p)
        except (OSError, ValueError) as exc:
            raise PerceptLabError(f"{p}: cannot read the trial rows ({exc})", "give a CSV file") from None
        if "synthetic" in df.columns:
            synthetic |= bool(df["synthetic"].astype(str).str.strip().str.lower().eq("true").any())
        if cond is None:
            single = learning_table(df, str(p))
        else:
            frames[cond] = df
    tables = ([learning_table(frames, ", ".join(specs))] if frames else []) + ([single] if single is not None else [])
    if not tables:
        raise PerceptLabError("no trial files given", "e.g. --trials curriculum=a.csv --trials control=b.csv")
    table = pd.concat(tables, ignore_index=True)
    table.attrs["synthetic"] = synthetic
    return table
