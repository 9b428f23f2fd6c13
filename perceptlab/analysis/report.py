"""The full behavioural report: every analysis of a trial table, written as JSON, CSV and figures.

:func:`analyze_table` runs exclusions, choice entropy, guidance outcomes (needs the library's target
pairs), RT–entropy, participant clustering, per-participant summaries and, given images and a
``predict`` callable, model–human entropy agreement. Whatever cannot run says why in ``skipped``.
:func:`write_report` writes ``summary.json``, ``per_stimulus.csv``, ``per_participant.csv``,
``rejected_rows.csv`` and PNG + SVG figures (matplotlib, Agg canvas).

This module never imports the engine: model probabilities come from the ``predict(model_name,
images (N, 28, 28) uint8) -> (N, n_classes)`` callable the caller passes (the CLI passes the
engine's ``predict_probs``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from perceptlab.analysis.choices import ChoiceSummary, choice_summary
from perceptlab.analysis.clustering import ClusterResult, cluster_participants
from perceptlab.analysis.correlation import ModelHumanResult, model_human_entropy
from perceptlab.analysis.exclusions import ExclusionResult, apply_exclusions
from perceptlab.analysis.outcomes import OUTCOMES, OutcomeSummary, guidance_outcomes
from perceptlab.analysis.participants import participant_summary
from perceptlab.analysis.rt import RtEntropyResult, rt_entropy
from perceptlab.data.trial_layouts import ColumnMapping
from perceptlab.data.trials import (
    StimulusIndex,
    TrialTable,
    load_stimulus_images,
    load_trials,
    resolve_stimuli,
)
from perceptlab.data.trial_stimuli import library_stimuli
from perceptlab.errors import PerceptLabError

Predictor = Callable[[str, np.ndarray], np.ndarray]
"""``predict(model_name, images) -> probabilities``: images (N, 28, 28) uint8, output (N, n_classes)."""

CLI_CONTROLS = {
    "library": "--library or --images", "model": "--model", "catch_threshold": "--catch-threshold",
    "min_responses": "--min-responses", "min_overlap": "--min-overlap", "k": "--k",
    "classes": "--classes",
}
"""How the user sets each option, named in messages; the app passes its own controls' names."""


def _zoo_mismatch(classes: Sequence[str]) -> str | None:
    """Why the zoo's digit classifiers cannot be compared with this class set (None: they can)."""
    from perceptlab import CLASSES  # noqa: PLC0415

    if tuple(classes) == CLASSES:
        return None
    shown = ", ".join(classes[:6]) + (", …" if len(classes) > 6 else "")
    return (f"the study's classes ({shown}; {len(classes)} classes) are not the ten digits 0-9 that "
            "the classifier zoo and the library's target pairs use")


@dataclass
class Analysis:
    """Everything :func:`analyze_table` computed, plus what it skipped and why."""

    table: TrialTable
    exclusions: ExclusionResult
    choices: ChoiceSummary
    participants: pd.DataFrame
    rt: RtEntropyResult
    stimuli: StimulusIndex | None = None
    outcomes: OutcomeSummary | None = None
    clusters: ClusterResult | None = None
    model_human: dict[str, ModelHumanResult] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    options: dict = field(default_factory=dict)

    def per_stimulus(self) -> pd.DataFrame:
        """One row per stimulus of the analysed trials (``included``: enough responses for the
        statistics): counts, entropy, target pair and outcome, median RT, model entropies."""
        ps = self.choices.per_stimulus.copy()
        classes = self.table.classes
        ps.insert(ps.columns.get_loc("modal_response"), "modal_class",
                  np.asarray(classes, dtype=object)[ps["modal_response"].to_numpy()])
        ps = ps.drop(columns="modal_response")
        if self.stimuli is not None:
            ps = ps.join(self.stimuli.table[["stimulus_id", "mode", "class_a", "class_b"]])
        ps["outcome"] = pd.Series(pd.NA, index=ps.index, dtype=object)
        if self.outcomes is not None:
            o = self.outcomes.per_stimulus
            ps = ps.join(o[["p_a", "p_b"]])
            ps.loc[o.index, "outcome"] = o["outcome"]
        ps = ps.join(self.rt.per_stimulus[["median_rt_ms"]])
        for name, res in self.model_human.items():
            ps[f"model_entropy_{name}"] = res.scatter["model_entropy_bits"].reindex(ps.index)
        return ps.reset_index()

    def summary(self) -> dict:
        """The content of ``summary.json`` (JSON-safe: NaN becomes null)."""
        rep = self.table.report
        ex = self.exclusions
        out = {
            "synthetic": self.table.synthetic,
            "classes": list(self.table.classes),
            "counts": {
                "rows_total": rep.rows_total, "trials_valid": rep.rows_used,
                "rows_rejected": rep.rows_rejected,
                "trials_analysed": int(len(ex.trials)),
                "participants": rep.n_participants,
                "participants_excluded": len(ex.excluded),
                "participants_analysed": int(ex.trials["participant"].nunique()),
                "stimuli": int(len(self.choices.per_stimulus)),
                "stimuli_analysed": int(self.choices.per_stimulus["included"].sum()),
            },
            "validation": {**rep.to_dict(), "summary": rep.summary()},
            "decisions": {
                "classes": f"{len(self.table.classes)} classes from {rep.classes_from}",
                "catch_trials": next((n for n in rep.notes if n.startswith("catch trials:")), None),
                "true_label": next((n for n in rep.notes if n.startswith("true_label read")), None),
                "rt_unit": next((n for n in rep.notes if "rt column" in n or n.startswith("rt from")),
                                None),
                "clusters": self.clusters.verdict if self.clusters is not None else None,
            },
            "exclusions": ex.to_dict(),
            "entropy": self.choices.to_dict(),
            "outcomes": self.outcomes.to_dict() if self.outcomes is not None else None,
            "rt_entropy": self.rt.to_dict(),
            "clusters": self.clusters.to_dict() if self.clusters is not None else None,
            "model_human": {name: r.to_dict() for name, r in self.model_human.items()},
            "stimuli": self.stimuli.to_dict() if self.stimuli is not None else None,
            "skipped": dict(self.skipped),
            "options": dict(self.options),
        }
        if self.table.synthetic:
            out["note"] = "SYNTHETIC data from simulated observers, not human responses"
        return _json_safe(out)

    def summary_text(self) -> str:
        """A few lines for the terminal."""
        s = self.summary()
        c, e = s["counts"], s["entropy"]
        lines = [self.table.report.summary()]
        if self.table.synthetic:
            lines.append("SYNTHETIC data (simulated observers)")
        lines.append(self.exclusions.summary())
        lines.append(f"analysed: {c['trials_analysed']} trials, {c['participants_analysed']} "
                     f"participants, {c['stimuli_analysed']} stimuli with >= {e['min_responses']} responses")
        if e["mean_bits"] is not None:
            lines.append(f"entropy: mean {e['mean_bits']:.3f} bits, median {e['median_bits']:.3f}, "
                         f"share > 0: {e['share_entropy_gt0']:.1%}")
        if self.outcomes is not None:
            o = self.outcomes.overall
            lines.append("outcomes: " + ", ".join(
                f"{k} {o[k]:.1%}" for k in OUTCOMES if o[k] is not None) + f" (n = {o['n']})")
        lines.append(f"RT–entropy: {self.rt.spearman}")
        if self.clusters is not None:
            lines.append(f"clusters: {self.clusters.verdict}")
        for name, r in self.model_human.items():
            lines.append(f"model–human entropy ({name}): {r.spearman}")
        if self.stimuli is not None:
            lines.append(self.stimuli.summary())
        lines.extend(f"skipped {k}: {v}" for k, v in self.skipped.items())
        return "\n".join(lines)


def _json_safe(value):
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return _json_safe(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def _nothing_left(table: TrialTable, ex: ExclusionResult, controls: dict) -> PerceptLabError:
    """Why no trial is left after exclusions, with the control that changes it."""
    df = table.df
    n_catch = int(df["is_catch"].sum())
    source = table.report.source
    if n_catch == len(df):
        return PerceptLabError(
            f"{source}: all {len(df)} trials are catch trials, and catch trials are not analysed",
            fix="check how catch trials are marked (an is_catch column or a catch trial type)")
    return PerceptLabError(
        f"{source}: no trials left to analyse: all {len(ex.catch)} participants are excluded at "
        f"catch accuracy <= {ex.threshold:g} ({n_catch} catch trials scored against true_label)",
        fix=f"check the catch trials' true_label values, or lower {controls['catch_threshold']}")


def analyze_table(table: TrialTable, *, stimuli: StimulusIndex | None = None,
                  models: Sequence[str] = (), predict: Predictor | None = None,
                  min_responses: int = 3, catch_threshold: float = 0.7, k: int | None = None,
                  min_overlap: int = 5, bins: int = 20, controls: dict | None = None) -> Analysis:
    """Run every analysis the inputs allow; record in ``skipped`` what could not run and why.

    ``controls`` names how the user sets each option in messages (default: the CLI flags,
    :data:`CLI_CONTROLS`)."""
    controls = {**CLI_CONTROLS, **(controls or {})}
    classes = table.classes
    skipped: dict[str, str] = {}
    ex = apply_exclusions(table.df, catch_threshold, min_responses)
    if ex.trials.empty:
        raise _nothing_left(table, ex, controls)
    choices = choice_summary(ex.trials, classes, min_responses, bins)
    few = None
    if choices.included.empty:
        most = int(choices.per_stimulus["n"].max()) if len(choices.per_stimulus) else 0
        few = (f"no stimulus has at least {min_responses} responses (the most any has is {most}); "
               f"lower {controls['min_responses']}")
        skipped["entropy"] = few
    entropy = choices.entropy
    rt = rt_entropy(ex.trials, entropy)
    if not table.has_rt:
        skipped["rt_entropy"] = "no reaction times in the trial table"
    clusters = None
    try:
        clusters = cluster_participants(ex.trials, k=k, min_overlap=min_overlap)
    except PerceptLabError as exc:
        skipped["clusters"] = str(exc).replace("(--min-overlap)", f"({controls['min_overlap']})")
    participants = participant_summary(table.df, ex, clusters, len(classes))

    outcomes = None
    mismatch = _zoo_mismatch(classes)
    no_stimuli = f"no stimulus library or image folder given ({controls['library']})"
    if few is not None:
        skipped["outcomes"] = few
    elif stimuli is None:
        skipped["outcomes"] = no_stimuli + ": target pairs come from the library"
    elif mismatch is not None and not stimuli.pairs().empty:
        skipped["outcomes"] = mismatch + ": outcomes are not computed"
    else:
        pairs = stimuli.pairs()
        included = choices.included
        if pairs.index.intersection(included.index).empty:
            skipped["outcomes"] = ("no analysed stimulus has a target pair (class_a, class_b); "
                                   f"pairs come from a stimulus library ({controls['library']})")
        else:
            outcomes = guidance_outcomes(included, pairs, classes)

    model_human: dict[str, ModelHumanResult] = {}
    if few is not None:
        skipped["model_human"] = few
    elif mismatch is not None:
        skipped["model_human"] = mismatch + ": model–human agreement is not computed"
    elif stimuli is None:
        skipped["model_human"] = no_stimuli
    elif not models:
        skipped["model_human"] = f"no classifier chosen ({controls['model']})"
    elif predict is None:
        skipped["model_human"] = "no model probability source (predict) given"
    else:
        paths = stimuli.table["path"].reindex(entropy.index).dropna()
        if paths.empty:
            skipped["model_human"] = "none of the analysed stimuli matched an image"
        else:
            images = load_stimulus_images(paths.tolist())
            for name in models:
                try:
                    probs = np.asarray(predict(name, images), dtype=float)
                    if probs.shape != (len(paths), len(classes)):
                        raise PerceptLabError(
                            f"model '{name}' returned probabilities of shape {probs.shape}, "
                            f"expected {(len(paths), len(classes))}")
                    frame = pd.DataFrame(probs, index=paths.index)
                    model_human[name] = model_human_entropy(entropy, frame, model=name)
                except PerceptLabError as exc:
                    skipped[f"model_human:{name}"] = str(exc)
    options = {"min_responses": min_responses, "catch_threshold": catch_threshold, "k": k,
               "min_overlap": min_overlap, "bins": bins, "models": list(models)}
    return Analysis(table, ex, choices, participants, rt, stimuli, outcomes, clusters, model_human,
                    skipped, options)


# --------------------------------------------------------------------------------------------
# Figures


def _save(fig, out_dir: Path, name: str) -> list[Path]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415

    FigureCanvasAgg(fig)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.svg"]
    fig.savefig(paths[0], dpi=120)
    fig.savefig(paths[1], metadata={"Date": None})
    return paths


def _title(analysis: Analysis, text: str) -> str:
    return ("[SYNTHETIC] " if analysis.table.synthetic else "") + text


def _figures(analysis: Analysis, out_dir: Path) -> list[Path]:
    from matplotlib import colormaps  # noqa: PLC0415
    from matplotlib.figure import Figure  # noqa: PLC0415

    written: list[Path] = []
    ch = analysis.choices
    fig = Figure(figsize=(5.5, 3.8), layout="constrained")
    ax = fig.add_subplot()
    ax.stairs(ch.hist_counts, ch.hist_edges, fill=True, color="#4c72b0")
    ax.set_xlabel("choice entropy (bits)")
    ax.set_ylabel("stimuli")
    share = ch.share_entropy_gt0
    ax.set_title(_title(analysis, f"Human choice entropy (n = {len(ch.entropy)}, "
                                  f"{share:.0%} > 0)" if len(ch.entropy) else "Human choice entropy"))
    written += _save(fig, out_dir, "entropy_histogram")

    if analysis.outcomes is not None:
        written += _outcome_figure(analysis, out_dir)

    rt = analysis.rt.per_stimulus
    if analysis.table.has_rt and len(rt):
        fig = Figure(figsize=(5.5, 4), layout="constrained")
        ax = fig.add_subplot()
        ax.scatter(rt["entropy_bits"], rt["median_rt_ms"], s=6, alpha=0.4, color="#4c72b0")
        ax.set_xlabel("choice entropy (bits)")
        ax.set_ylabel("median RT (ms)")
        ax.set_title(_title(analysis, f"RT vs entropy: {analysis.rt.spearman}"), fontsize=9)
        written += _save(fig, out_dir, "rt_entropy")

    cl = analysis.clusters
    if cl is not None:
        fig = Figure(figsize=(5.5, 5), layout="constrained")
        ax = fig.add_subplot()
        shown = cl.ordered_agreement.copy()
        np.fill_diagonal(shown, np.nan)
        im = ax.imshow(np.ma.masked_invalid(shown), interpolation="nearest",
                       cmap=colormaps["viridis"].with_extremes(bad="#cccccc"))
        for b in cl.boundaries if cl.reliable or cl.k_given else ():
            ax.axhline(b - 0.5, color="white", lw=0.8)
            ax.axvline(b - 0.5, color="white", lw=0.8)
        ax.set_xlabel("participants (dendrogram order)")
        ax.set_ylabel("participants (dendrogram order)")
        ax.set_title(_title(analysis, f"Pairwise agreement: {cl.verdict}"), fontsize=9)
        fig.colorbar(im, ax=ax, label="agreement (grey: self or too little overlap)")
        written += _save(fig, out_dir, "agreement_matrix")

    for name, res in analysis.model_human.items():
        fig = Figure(figsize=(5, 4.2), layout="constrained")
        ax = fig.add_subplot()
        ax.scatter(res.scatter["model_entropy_bits"], res.scatter["human_entropy_bits"], s=6,
                   alpha=0.4, color="#dd8452")
        ax.set_xlabel(f"model entropy, {name} (bits)")
        ax.set_ylabel("human choice entropy (bits)")
        ax.set_title(_title(analysis, f"Model–human entropy ({name}): {res.spearman}"), fontsize=9)
        written += _save(fig, out_dir, f"model_human_{_safe_name(name)}")
    return written


def _safe_name(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)


def _outcome_figure(analysis: Analysis, out_dir: Path) -> list[Path]:
    from matplotlib import colormaps  # noqa: PLC0415
    from matplotlib.figure import Figure  # noqa: PLC0415

    oc = analysis.outcomes
    groups = {"all": oc.overall, **oc.per_mode}
    fig = Figure(figsize=(10, 4.2), layout="constrained")
    ax, hx = fig.subplots(1, 2, width_ratios=[1, 1.3])
    colors = {"success": "#55a868", "bias": "#dd8452", "failure": "#c44e52"}
    bottom = np.zeros(len(groups))
    for o in OUTCOMES:
        vals = np.array([g[o] or 0.0 for g in groups.values()])
        ax.bar(list(groups), vals, bottom=bottom, color=colors[o], label=o)
        bottom += vals
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of stimuli")
    ax.set_xticks(range(len(groups)), [f"{k}\n(n={g['n']})" for k, g in groups.items()])
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(_title(analysis, "Guidance outcomes"))
    classes = oc.classes
    im = hx.imshow(np.ma.masked_invalid(oc.pair_success), vmin=0, vmax=1,
                   cmap=colormaps["magma"].with_extremes(bad="#e0e0e0"))
    hx.set_xticks(range(len(classes)), classes)
    hx.set_yticks(range(len(classes)), classes)
    for i, j in zip(*np.nonzero(oc.pair_counts), strict=True):
        if i < j:
            hx.text(j, i, str(oc.pair_counts[i, j]), ha="center", va="center", fontsize=6,
                    color="#808080")
    hx.set_title("success rate per target pair (upper: n stimuli)")
    fig.colorbar(im, ax=hx, label="success rate")
    return _save(fig, out_dir, "outcomes")


# --------------------------------------------------------------------------------------------
# Writing and the one-call entry point


def write_report(analysis: Analysis, out_dir: str | Path) -> list[Path]:
    """Write summary.json, the CSV tables and the figures into ``out_dir``; return the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    per_stimulus = analysis.per_stimulus()
    for name, frame in (("per_stimulus.csv", per_stimulus),
                        ("per_participant.csv", analysis.participants.reset_index()),
                        ("rejected_rows.csv", analysis.table.report.rejected)):
        frame.to_csv(out_dir / name, index=False)
        written.append(out_dir / name)
    written += _figures(analysis, out_dir)
    summary = analysis.summary()
    summary["files"] = sorted(p.name for p in [*written, out_dir / "summary.json"])
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n",
                                          encoding="utf-8")
    written.append(out_dir / "summary.json")
    return written


def check_out_dir(out_dir: str | Path) -> Path:
    """The output folder, refused when it names an existing file (or cannot be made)."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise PerceptLabError(f"--out {out} is an existing file, not a folder",
                              fix="name a new or existing folder for the report")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PerceptLabError(f"cannot create the output folder {out}: {exc.strerror}",
                              fix="name a folder you can write to") from None
    return out


def run_report(trials_path: str | Path | Sequence[str | Path], out_dir: str | Path, *, library: str | Path | None = None,
               images: str | Path | None = None, models: Sequence[str] = (),
               predict: Predictor | None = None, classes: Sequence[str] | None = None,
               mapping: ColumnMapping | str | Path | None = None, encoding: str | None = None,
               min_responses: int = 3, catch_threshold: float = 0.7, k: int | None = None,
               min_overlap: int = 5, bins: int = 20) -> tuple[Analysis, list[Path]]:
    """Load trial files (a file, several, or a folder), resolve the stimuli against the library's
    database (or an image folder), analyse and write the report."""
    check_out_dir(out_dir)
    table = load_trials(trials_path, mapping, classes, encoding=encoding)
    stimuli = None
    if library is not None or images is not None:
        manifest = library_stimuli(library) if library is not None else None
        stimuli = resolve_stimuli(table, manifest, images)
    analysis = analyze_table(table, stimuli=stimuli, models=models, predict=predict,
                             min_responses=min_responses, catch_threshold=catch_threshold, k=k,
                             min_overlap=min_overlap, bins=bins)
    return analysis, write_report(analysis, out_dir)
