"""Build a ``perceptlab-design/1`` design from a stimulus library's curated set, with catch trials.

:func:`design_from_library` takes the library's stimuli of one curation status (``accepted`` by default)
as ``choice`` trials and adds catch trials: real MNIST digits with known labels from the built-in subset
(its hold-out digits, which no shipped model trained on; :mod:`perceptlab.data.catch`), drawn with
``seed`` and balanced over the classes, written as PNGs into ``<design folder>/catch/``. ``catch_rate``
is the share of catch trials among all trials (0.1: one trial in ten), as in every export. Image paths are
relative to the design file's folder, as the format asks.
"""

from __future__ import annotations

import os
from pathlib import Path

from perceptlab.data.catch import catch_count, pick_catch_digits
from perceptlab.data.images import write_png
from perceptlab.data.library import N_CLASSES, StimulusLibrary
from perceptlab.errors import PerceptLabError
from perceptlab.experiment.design import DEFAULT_TIMING, Design, DesignTrial, validate

CATCH_DIR = "catch"
DEFAULT_INSTRUCTIONS = (
    "Each trial starts with a cross in the middle of the screen: look at it. A digit appears briefly, "
    "then buttons with the possible answers. Choose the digit you saw (click a button or press its key). "
    "Answer as accurately as you can; if unsure, choose your best guess. Press Esc to pause."
)


def design_from_library(library: StimulusLibrary | str | Path, design_dir: str | Path, *,
                        status: str | None = "accepted", catch_rate: float = 0.1, seed: int = 0,
                        feedback: bool = False, classes: list[str] | None = None, name: str | None = None,
                        break_every: int = 0, shuffle: str = "all", instructions: str = DEFAULT_INSTRUCTIONS,
                        timing: dict | None = None, mnist=None) -> Design:
    """A choice-trial design over the library's stimuli of ``status`` (None: all) plus catch trials.

    Writes the catch PNGs under ``design_dir/catch``; save the design into ``design_dir``."""
    own = not isinstance(library, StimulusLibrary)
    lib = StimulusLibrary.open(library) if own else library
    try:
        design_dir = Path(design_dir)
        classes = [str(c) for c in (classes or range(N_CLASSES))]
        ids = lib.ids(status=status)
        if not ids:
            raise PerceptLabError(f"{lib.path}: no stimuli with status {status!r}",
                                  "accept stimuli in Curate first, or choose another --status")
        trials = []
        for sid in ids:
            rel = os.path.relpath(lib.images_dir / f"{sid}.png", design_dir)
            trials.append(DesignTrial(id=sid, stimulus=sid, image=Path(rel).as_posix()))
        digits = pick_catch_digits(catch_count(len(ids), catch_rate), classes, seed, mnist)
        if digits:
            (design_dir / CATCH_DIR).mkdir(parents=True, exist_ok=True)
        for k, (index, label, pixels) in enumerate(digits):
            stim = f"catch-mnist{index:05d}"
            if any(t.stimulus == stim for t in trials):
                stim = f"{stim}-{k}"
            write_png(design_dir / CATCH_DIR / f"{stim}.png", pixels)
            trials.append(DesignTrial(id=f"catch{k + 1:03d}", stimulus=stim, image=f"{CATCH_DIR}/{stim}.png",
                                      is_catch=True, true_label=label, feedback=feedback))
        design = Design(
            classes=classes, trials=trials, name=name or f"{lib.path.name}-{status or 'all'}",
            library=Path(os.path.relpath(lib.path, design_dir)).as_posix(), order_seed=seed, shuffle=shuffle,
            timing=dict(timing or DEFAULT_TIMING), break_every=break_every, instructions=instructions,
        )
        validate(design, f"design from {lib.path}", base=design_dir)
        return design
    finally:
        if own:
            lib.close()
