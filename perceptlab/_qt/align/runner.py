"""The engine calls behind the Align panel (no widgets): the alignment job run in a worker thread, the
models the pickers offer, and the result tables drawn from an evaluation report.

The job mirrors ``perceptlab align`` (:func:`perceptlab.cli.align.run_align`): the loaded trial table is
matched to its images (the open library or an image folder) by
:func:`perceptlab.align.datasets.build_align_data`, then :func:`perceptlab.align.pipeline.run_alignment`
fine-tunes, saves and evaluates. Everything long happens inside the generator, so it runs in the worker
thread and a cancel takes effect at the next record.
"""

from __future__ import annotations

import hashlib
from collections.abc import Generator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from perceptlab.align.datasets import build_align_data
from perceptlab.align.manipulate import resolve_individual
from perceptlab.align.pipeline import AlignJob, run_alignment
from perceptlab.align.split import SplitSettings
from perceptlab.align.store import check_name, default_name, find_models, list_models
from perceptlab.engine.registry import Registry
from perceptlab.errors import PerceptLabError


def align_run(table, *, library: Path | None, images_dir: Path | None, split: SplitSettings,
              skip_unmatched: bool, job: AlignJob, mnist, registry: Registry, device) -> Generator[dict, None, dict]:
    """Match the trials to their images, then run the alignment job; returns the metrics dict."""
    yield {"kind": "stage", "stage": "data"}
    data = build_align_data(table, library=library, images_dir=images_dir, split=split,
                            skip_unmatched=skip_unmatched)
    for pid in job.participants or []:
        data.check_participant(pid)  # still there after catch / unmatched trials were left out
    yield {"kind": "data", "summary": data.summary()}
    return (yield from run_alignment(job, data, mnist, registry=registry, device=device))


# ---- models


def base_models(registry: Registry) -> list[tuple[str, str]]:
    """(name, label) of the models a fine-tuning can start from: zoo classifiers, then user GroupNets."""
    zoo, groups = [], []
    for name, e in registry.entries().items():
        if e.kind != "classifier":
            continue
        if e.builtin:
            zoo.append((name, f"{name} (zoo)"))
            continue
        try:
            level = registry.config(name).get("level")
        except PerceptLabError:
            continue
        if level == "group":
            groups.append((name, f"{name} (GroupNet)"))
    return zoo + groups


def root_of(base: str, registry: Registry) -> str:
    """The zoo model at the start of a model's lineage (the model itself for a zoo model)."""
    lineage = registry.config(base).get("lineage") or []
    return lineage[0]["name"] if lineage else base


def planned_names(job: AlignJob, participants: list[str], registry: Registry) -> list[str]:
    """The names the job's models will be saved under (as :func:`run_alignment` names them)."""
    root = root_of(job.base, registry)
    names = []
    if job.level in ("group", "both"):
        names.append(check_name(job.group_name) if job.group_name else default_name("group", root))
    if job.level in ("individual", "both"):
        names += [default_name("individual", root, p) for p in participants]
    return names


def existing_names(names: list[str], folder: Path) -> list[str]:
    """The names of ``names`` that a model in ``folder`` already has (its JSON config exists)."""
    return [n for n in names if (Path(folder) / f"{n}.json").exists()]


def user_models_frame(registry: Registry) -> pd.DataFrame:
    """The user (fine-tuned) models as a table, newest first."""
    rows = []
    for m in list_models(registry.user_dir):
        acc = m.metrics.get("val_accuracy")
        if m.level == "individual":
            who = ", ".join(m.participants)
        elif m.participants:
            who = f"{len(m.participants)} participants"
        else:
            who = ""
        rows.append({"name": m.name, "level": m.level or "", "base": m.base or "", "participants": who,
                     "val accuracy": _pct(acc) if isinstance(acc, float) else "–", "created": m.created or ""})
    return pd.DataFrame(rows, columns=["name", "level", "base", "participants", "val accuracy", "created"])


def individual_models(registry: Registry) -> dict[str, str]:
    """participant -> their IndivNet (the newest, as :func:`resolve_individual` picks it)."""
    people: list[str] = []
    for m in find_models(level="individual", folder=registry.user_dir):
        if len(m.participants) == 1 and m.participants[0] not in people:
            people.append(m.participants[0])
    out = {}
    for p in sorted(people):
        try:
            out[p] = resolve_individual(p, registry)
        except PerceptLabError:
            continue
    return out


def run_seed(run: str) -> int:
    """The sampler seed of a manipulation run tag: both arms of one run share their seeds."""
    return int(hashlib.sha256(run.encode()).hexdigest()[:8], 16) % (2**31 - 1)


# ---- tables from an evaluation report


def _pct(v: Any) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{100 * float(v):.1f}%"


def own_accuracy(evaluation: dict) -> dict[str, float | None]:
    """Mean accuracy of each model on the participants' own test trials (participants with test trials)."""
    rows = [r for r in evaluation.get("participants", []) if r.get("n", 0) > 0]
    out: dict[str, float | None] = {}
    for key in ("base", "group", "indiv"):
        vals = [r[key] for r in rows if r.get(key) is not None]
        out[key] = float(np.mean(vals)) if vals else None
    return out


def accuracy_table(evaluation: dict) -> pd.DataFrame:
    """Base / Group / Indiv accuracy on the MNIST hold-out, all test trials and own test trials."""
    mn = evaluation.get("mnist_heldout_accuracy", {})
    tr = evaluation.get("trials_accuracy", {})
    own = own_accuracy(evaluation)
    has_indiv = bool(evaluation.get("individual_models"))

    def acc(d: dict, k: str) -> Any:
        v = d.get(k)
        return v.get("accuracy") if isinstance(v, dict) else v

    n_held = evaluation.get("mnist_heldout_digits", 0)
    rows = [
        (f"MNIST hold-out ({n_held} digits)", mn.get("base"), mn.get("group"), mn.get("indiv_mean")),
        (f"trials, test part ({evaluation.get('n_trials', 0)} trials)", acc(tr, "base"), acc(tr, "group"),
         acc(tr, "indiv_mean")),
        ("own test trials (mean over participants)", own["base"], own["group"], own["indiv"]),
    ]
    frame = pd.DataFrame(
        [(label, _pct(b), _pct(g), _pct(i) if has_indiv else "–") for label, b, g, i in rows],
        columns=["accuracy on", "Base", "Group", "Indiv"],
    )
    return frame


def gains(evaluation: dict) -> pd.DataFrame:
    """Per participant: IndivNet minus GroupNet accuracy on their own test trials, largest gain first."""
    rows = [r for r in evaluation.get("participants", [])
            if r.get("n", 0) > 0 and r.get("indiv") is not None and r.get("group") is not None]
    frame = pd.DataFrame(
        {"participant": [str(r["participant"]) for r in rows], "n": [int(r["n"]) for r in rows],
         "group": [float(r["group"]) for r in rows], "indiv": [float(r["indiv"]) for r in rows]},
        columns=["participant", "n", "group", "indiv"],
    )
    frame["gain"] = frame["indiv"] - frame["group"]
    return frame.sort_values(["gain", "participant"], ascending=[False, True], kind="stable").reset_index(drop=True)


def scores_table(scores: dict) -> pd.DataFrame:
    """One row per arm of :func:`perceptlab.align.manipulate.score_manipulation`."""
    rows = []
    for arm, s in scores.get("arms", {}).items():
        rows.append({"arm": arm, "stimuli": s["n"], "success": s["success_rate"], "reverse": s["reverse_rate"],
                     "directional ratio": s["directional_ratio"], "disagreement": s["disagreement_rate"]})
    return pd.DataFrame(rows, columns=["arm", "stimuli", "success", "reverse", "directional ratio", "disagreement"])


def stimulus_ids(keys: pd.Series) -> pd.Series:
    """Trial stimulus keys (ids, file names or paths) reduced to the library id (the file stem)."""
    return keys.astype(str).str.rsplit("/", n=1).str[-1].str.replace(r"\.[A-Za-z0-9]+$", "", regex=True)
