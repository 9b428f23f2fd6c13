"""The in-app experiment runner (:mod:`.runner`) and the dialog that starts it from the main window
(:mod:`.dialog`); the engine is :mod:`perceptlab.experiment.session`."""

from __future__ import annotations

from pathlib import Path

from perceptlab.experiment.design import load_design
from perceptlab.experiment.session import ExperimentSession, make_selector


def open_session(design_path: str | Path, participant: str, out_dir: str | Path | None = None,
                 session_id: str | None = None) -> tuple[ExperimentSession, Path]:
    """The session for a design file (resuming an unfinished one) and the folder its images are relative
    to; trial files go to ``out_dir`` (default: ``trials/`` beside the design)."""
    design_path = Path(design_path)
    design = load_design(design_path)
    base = design_path.parent
    selector = make_selector(design, base, seed=design.order_seed) if design.adaptive else None
    out = Path(out_dir) if out_dir else base / "trials"
    return ExperimentSession(design, participant, out, session_id, selector=selector), base
