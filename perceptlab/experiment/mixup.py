"""Mixup elicitation designs (seeds/004) in the shared ``perceptlab-design/1`` format.

Two trial kinds, as :mod:`perceptlab.experiment.design` defines them:

- ``pick`` (the paper's HSE 1, "select-shuffled"): one trial per source pair; all of its lambda-grid
  images are shown in a seeded shuffled order and the participant picks the one that looks 50/50.
  ``stimulus`` is the pair id (e.g. ``3-8-00``); the response is the chosen image's stimulus id.
- ``slider`` (HSE 2): one trial per mixed image; the two class names are given, the participant sets a
  slider from 0 (all class_a) to 1 (all class_b), then rates their confidence 1-5.
- optionally ``choice`` relabeling trials on the same images (one button per class) for soft labels.

The design folder is self-contained: ``design.json`` and ``images/<stimulus id>.png`` copied from the
library, so the in-app runner and :mod:`perceptlab.data.export_mixup` need nothing else.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from perceptlab import CLASSES
from perceptlab.data.library import StimulusLibrary
from perceptlab.data.mixup import CONVENTION, mixup_table
from perceptlab.errors import PerceptLabError
from perceptlab.experiment.design import Design, DesignTrial, save_design

DESIGN_NAME = "design.json"
TRIAL_KINDS = ("pick", "slider", "choice")
INSTRUCTIONS = {
    "pick": "Each screen shows the same two digits mixed in different proportions, in random order. "
            "Click the image that looks like an even (50/50) mix of the two digits named above it.",
    "slider": "Each image mixes two digits, named under the slider. Move the slider to how much of each "
              "digit you see (left: all the first, right: all the second), then rate your confidence.",
    "choice": "A digit image flashes after a cross. Click the digit you saw; if unsure, give your best guess.",
}


def build_design(
    table: pd.DataFrame,
    kinds: tuple[str, ...] = ("pick", "slider"),
    classes: tuple[str, ...] = CLASSES,
    name: str = "mixup",
    seed: int = 0,
    library: str | None = None,
    synthetic: bool = False,
) -> Design:
    """A design over the mixup stimuli of ``table`` (:func:`perceptlab.data.mixup.mixup_table`).
    Each kind is its own block (pick 0, slider 1, choice 2, in the order given); images are
    ``images/<stimulus>.png`` relative to the design file."""
    bad = [k for k in kinds if k not in TRIAL_KINDS]
    if bad or not kinds:
        raise PerceptLabError(f"unknown trial kind(s) {bad or kinds}", f"use {', '.join(TRIAL_KINDS)}")
    rng = np.random.default_rng(seed)
    trials: list[DesignTrial] = []
    name_of = lambda c: str(classes[int(c)])  # noqa: E731
    for block, kind in enumerate(dict.fromkeys(kinds)):
        if kind == "pick":
            for pid, g in table.groupby("pair", sort=False):
                g = g.sort_values("lambda").iloc[rng.permutation(len(g))]
                trials.append(DesignTrial(
                    id=f"pick-{pid}", stimulus=str(pid), kind="pick", block=block,
                    options={"images": [f"images/{s}.png" for s in g["stimulus"]], "stimuli": list(g["stimulus"]),
                             "lambdas": [float(v) for v in g["lambda"]], "class_a": name_of(g["class_a"].iloc[0]),
                             "class_b": name_of(g["class_b"].iloc[0])}))
        else:
            for row in table.itertuples(index=False):
                lam = float(row[table.columns.get_loc("lambda")])
                opts = {"class_a": name_of(row.class_a), "class_b": name_of(row.class_b), "lambda": lam}
                if kind == "slider":
                    opts["confidence"] = True
                trials.append(DesignTrial(id=f"{kind}-{row.stimulus}", stimulus=str(row.stimulus), kind=kind,
                                          block=block, image=f"images/{row.stimulus}.png", options=opts))
    text = " ".join(INSTRUCTIONS[k] for k in dict.fromkeys(kinds))
    return Design(classes=list(map(str, classes)), trials=trials, name=name, library=library, order_seed=seed,
                  shuffle="within_block", instructions=f"{text} (Mixing convention: {CONVENTION}.)",
                  synthetic=synthetic)


def write_design(library: StimulusLibrary, out_dir: str | Path, kinds: tuple[str, ...] = ("pick", "slider"),
                 seed: int = 0, name: str = "mixup") -> Path:
    """Write ``out_dir/design.json`` with the library's mixup stimuli and copy their images into
    ``out_dir/images/``; returns the design path."""
    out = Path(out_dir)
    if out.exists() and any(p.name != "images" and p.name != DESIGN_NAME for p in out.iterdir()):
        raise PerceptLabError(f"{out} holds other files", "pick a new or empty folder for the design")
    table = mixup_table(library)
    design = build_design(table, kinds, name=name, seed=seed, library=str(library.path.resolve()))
    (out / "images").mkdir(parents=True, exist_ok=True)
    for sid in table["stimulus"]:
        shutil.copyfile(library.images_dir / f"{sid}.png", out / "images" / f"{sid}.png")
    return save_design(design, out / DESIGN_NAME)


def stimulus_info(design: Design) -> pd.DataFrame:
    """What the design says about each mixup stimulus: ``stimulus`` (image id), ``pair`` (source pair id,
    where a pick trial names it), ``class_a``, ``class_b`` (names), ``lambda``; indexed by stimulus."""
    rows: dict[str, dict] = {}
    for t in design.trials:
        o = t.options
        if t.kind == "pick":
            for sid, lam in zip(o.get("stimuli") or [], o.get("lambdas") or []):
                rows[str(sid)] = {"stimulus": str(sid), "pair": t.stimulus, "class_a": str(o["class_a"]),
                                  "class_b": str(o["class_b"]), "lambda": float(lam)}
        elif "lambda" in o and o.get("class_a") is not None:
            rows.setdefault(t.stimulus, {"stimulus": t.stimulus, "pair": None, "class_a": str(o["class_a"]),
                                         "class_b": str(o["class_b"]), "lambda": float(o["lambda"])})
    if not rows:
        raise PerceptLabError(f"the design {design.name!r} has no mixup trials (pick, or slider/choice with "
                              "options.lambda)", "write one with `perceptlab mixup design`")
    df = pd.DataFrame(list(rows.values()))
    df["pair"] = df["pair"].fillna(df["class_a"] + "-" + df["class_b"])
    return df.set_index("stimulus", drop=False)
