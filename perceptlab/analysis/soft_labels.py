"""Soft labels from people (seeds/004, "Learning with human relabelings"): per-stimulus target
distributions over the classes from human relabelings, optionally smoothed toward uniform by each
person's confidence omega, written as a training set (CSV and/or npz) that ``align`` trains on.

One relabeling per response trial on a mixup (or any two-class) stimulus:

- a ``slider`` trial with inferred lambda y gives (1 - y) to class_a and y to class_b;
- a ``choice`` trial gives all mass to the chosen class.

Smoothing with omega (``omega="row"``): each relabeling r becomes omega * r + (1 - omega) * uniform, with
omega = (confidence - 1) / 4 from the 1-5 rating of that trial (1 = guessing -> uniform, 5 = certain ->
r unchanged); rows without a rating take their participant's mean rating, or omega = 1 when the
participant never rated. ``omega="person"``: every row takes its participant's mean rating.
The uniform distribution is over all classes (seeds/004) or, with ``uniform="pair"``, over the
stimulus's two classes.
``omega="none"``: plain averaged relabelings. The target of a stimulus is the mean over its rows.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from perceptlab.errors import PerceptLabError

OMEGA = ("none", "row", "person")
UNIFORM = ("all", "pair")


def confidence_omega(confidence: pd.Series, participant: pd.Series, how: str = "row") -> np.ndarray:
    """omega per row in [0, 1] from 1-5 confidence ratings (see the module docstring)."""
    if how not in OMEGA:
        raise PerceptLabError(f"unknown omega {how!r}", f"use one of: {', '.join(OMEGA)}")
    conf = pd.to_numeric(confidence, errors="coerce").astype(float)
    if how == "none":
        return np.ones(len(conf))
    bad = conf.notna() & ((conf < 1) | (conf > 5))
    if bad.any():
        raise PerceptLabError(f"{int(bad.sum())} confidence ratings outside 1-5 (first: {conf[bad].iloc[0]:g})",
                              "ratings must be on the 1-5 scale of the slider trials")
    person = conf.groupby(participant.to_numpy()).transform("mean")
    use = person if how == "person" else conf.fillna(person)
    return ((use.fillna(5.0) - 1.0) / 4.0).clip(0, 1).to_numpy(float)


def relabelings(joined: pd.DataFrame, classes: list[str]) -> np.ndarray:
    """(N, C) relabeling per slider / choice row of ``analyze``'s joined table (``kind``, ``y``, ``class_a``,
    ``class_b``, ``response``)."""
    index = {c: i for i, c in enumerate(classes)}
    out = np.zeros((len(joined), len(classes)))
    for i, r in enumerate(joined.itertuples(index=False)):
        if r.kind == "slider":
            out[i, index[str(r.class_a)]] += 1.0 - r.y
            out[i, index[str(r.class_b)]] += r.y
        else:
            out[i, index[str(r.response)]] = 1.0
    return out


def relabel_rows(trials: pd.DataFrame, info: pd.DataFrame, classes: list[str]) -> pd.DataFrame:
    """Slider and choice trials matched to the design's stimuli (pick trials are not relabelings), with
    a class-index ``label`` (slider: class_b when y >= 0.5) for hard-label training."""
    from perceptlab.analysis.mixup import join_trials  # noqa: PLC0415

    rel = trials[trials["kind"].isin(["slider", "choice"])]
    if rel.empty:
        raise PerceptLabError("no slider or choice trials to relabel from",
                              "soft labels come from slider (lambda) or choice (class) trials")
    joined, _notes = join_trials(rel, info, other_choices=True)
    choice = joined["kind"] == "choice"
    unknown = choice & ~joined["response"].astype(str).isin(classes)
    if unknown.any():
        raise PerceptLabError(f"{int(unknown.sum())} choice responses name no class of the design "
                              f"(first: {joined.loc[unknown, 'response'].iloc[0]!r})", f"classes: {', '.join(classes)}")
    joined = joined.copy()
    label = np.where(joined["kind"] == "slider",
                     np.where(joined["y"] >= 0.5, joined["class_b"].astype(str), joined["class_a"].astype(str)),
                     joined["response"].astype(str))
    joined["label"] = [classes.index(v) for v in label]
    return joined


def soft_label_set(rows: pd.DataFrame, classes: list[str], omega: str = "row", uniform: str = "all") -> pd.DataFrame:
    """Per stimulus: ``stimulus, n, omega_mean, class_a, class_b, lambda`` and ``p_<class>`` targets.
    ``uniform``: smooth toward the uniform distribution over ``all`` classes (seeds/004) or over the
    stimulus's ``pair`` (class_a, class_b)."""
    if uniform not in UNIFORM:
        raise PerceptLabError(f"unknown uniform {uniform!r}", f"use one of: {', '.join(UNIFORM)}")
    r = relabelings(rows, classes)
    w = confidence_omega(rows["confidence"], rows["participant"], omega)[:, None]
    if uniform == "all":
        u = np.full_like(r, 1.0 / len(classes))
    else:
        u = np.zeros_like(r)
        index = {c: i for i, c in enumerate(classes)}
        rows_i = np.arange(len(r))
        u[rows_i, [index[str(c)] for c in rows["class_a"]]] = 0.5
        u[rows_i, [index[str(c)] for c in rows["class_b"]]] += 0.5
    smoothed = w * r + (1.0 - w) * u
    df = pd.DataFrame(smoothed, columns=[f"p_{c}" for c in classes])
    df["stimulus"] = rows["stimulus"].astype(str).to_numpy()
    df["omega"] = w[:, 0]
    agg = df.groupby("stimulus", sort=False)
    out = agg[[f"p_{c}" for c in classes]].mean()
    out.insert(0, "omega_mean", agg["omega"].mean())
    out.insert(0, "n", agg.size())
    meta = rows.drop_duplicates("stimulus").set_index("stimulus")[["class_a", "class_b", "lambda"]]
    out = out.join(meta)
    return out.reset_index()[["stimulus", "n", "omega_mean", "class_a", "class_b", "lambda",
                              *[f"p_{c}" for c in classes]]]


def targets_matrix(soft: pd.DataFrame, classes: list[str], stimuli) -> np.ndarray:
    """The (S, C) targets of ``soft`` in the order of ``stimuli``; every stimulus must be there."""
    table = soft.set_index(soft["stimulus"].astype(str))
    keys = [str(s) for s in stimuli]
    missing = [k for k in keys if k not in table.index]
    if missing:
        raise PerceptLabError(f"{len(missing)} stimuli have no soft label (first: {missing[0]})",
                              "make the soft-label set from the same trials")
    return table.loc[keys, [f"p_{c}" for c in classes]].to_numpy(float)


def write_soft_labels(soft: pd.DataFrame, classes: list[str], out: str | Path,
                      images: np.ndarray | None = None, meta: dict | None = None) -> Path:
    """``.csv``: the table (+ ``<name>.json`` with classes and meta); ``.npz``: stimuli, classes, targets,
    n, omega_mean and (when given) the uint8 images in the same order."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".npz":
        arrays = {"stimuli": soft["stimulus"].to_numpy().astype(str), "classes": np.asarray(classes, dtype=str),
                  "targets": soft[[f"p_{c}" for c in classes]].to_numpy(np.float32),
                  "n": soft["n"].to_numpy(np.int64), "omega_mean": soft["omega_mean"].to_numpy(np.float32),
                  "meta": np.asarray(json.dumps(meta or {}))}
        if images is not None:
            arrays["images"] = np.asarray(images, np.uint8)
        np.savez_compressed(out, **arrays)
    elif out.suffix.lower() == ".csv":
        soft.to_csv(out, index=False, float_format="%.6g")
        out.with_suffix(".json").write_text(json.dumps({"classes": classes, **(meta or {})}, indent=2) + "\n",
                                            encoding="utf-8")
    else:
        raise PerceptLabError(f"{out}: unknown soft-label format", "write .csv or .npz")
    return out


def read_soft_labels(path: str | Path) -> tuple[pd.DataFrame, list[str]]:
    """A set written by :func:`write_soft_labels` -> (table, classes)."""
    path = Path(path)
    if not path.is_file():
        raise PerceptLabError(f"{path}: no such soft-label file")
    if path.suffix.lower() == ".npz":
        with np.load(path, allow_pickle=False) as z:
            classes = [str(c) for c in z["classes"]]
            df = pd.DataFrame(z["targets"].astype(float), columns=[f"p_{c}" for c in classes])
            df.insert(0, "omega_mean", z["omega_mean"])
            df.insert(0, "n", z["n"])
            df.insert(0, "stimulus", z["stimuli"].astype(str))
        return df, classes
    df = pd.read_csv(path, dtype={"stimulus": str})
    classes = [c[2:] for c in df.columns if c.startswith("p_")]
    sums = df[[f"p_{c}" for c in classes]].sum(axis=1)
    bad = (sums - 1).abs() > 1e-3
    if bad.any():
        line = int(np.flatnonzero(bad.to_numpy())[0]) + 2
        raise PerceptLabError(f"{path}, line {line}: the p_<class> columns sum to {sums[bad].iloc[0]:.4f}, not 1",
                              "each row must be a probability distribution over the classes")
    return df, classes


def attach_soft_targets(data, path: str | Path):
    """``data`` (an :class:`perceptlab.align.datasets.AlignData`) with the soft-label set at ``path`` as its
    per-stimulus targets; the set's classes must be the data's."""
    from dataclasses import replace  # noqa: PLC0415

    soft, classes = read_soft_labels(path)
    if list(classes) != [str(c) for c in data.classes]:
        raise PerceptLabError(f"{path}: classes {', '.join(classes)} differ from the trials' "
                              f"{', '.join(map(str, data.classes))}", "make the set from the same experiment")
    table = soft.set_index(soft["stimulus"].astype(str))
    return replace(data, soft_targets=targets_matrix(table.reset_index(drop=True), classes, data.stimuli))
