"""``perceptlab run-experiment DESIGN.json --participant P`` (the runner window, kiosk/full-screen start)
and ``perceptlab design from-library LIB --out DESIGN.json`` (a design over a curated set + catch trials).

The runner appends every answer to ``<out>/<participant>_<session>.csv`` (canonical layout) as it is
made and resumes an unfinished session of the same participant and design. ``--auto-respond`` answers by
itself (a pilot run and the timing check: it prints the measured stimulus durations at the end).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

import numpy as np

from perceptlab.errors import PerceptLabError


def timing_summary(trial_file: Path, refresh_hz: float | None = None) -> dict:
    """Measured stimulus durations of a trial file: median, p1, p99, share within one frame of intended."""
    with open(trial_file, newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("measured_stimulus_ms")]
    if not rows:
        return {"trials": 0}
    measured = np.array([float(r["measured_stimulus_ms"]) for r in rows])
    intended = np.array([float(r["intended_stimulus_ms"]) for r in rows])
    fix = np.array([float(r["measured_fixation_ms"]) for r in rows if r.get("measured_fixation_ms")])
    frame = 1000.0 / (refresh_hz or 60.0)
    err = measured - intended
    return {
        "trials": int(len(rows)), "frame_ms": round(frame, 3),
        "stimulus_median_ms": float(np.median(measured)), "stimulus_p1_ms": float(np.percentile(measured, 1)),
        "stimulus_p99_ms": float(np.percentile(measured, 99)), "stimulus_min_ms": float(measured.min()),
        "stimulus_max_ms": float(measured.max()),
        "share_within_one_frame": float(np.mean(np.abs(err) <= frame)),
        "fixation_median_ms": float(np.median(fix)) if len(fix) else None,
        "fixation_p99_ms": float(np.percentile(fix, 99)) if len(fix) else None,
    }


def run_experiment(args: argparse.Namespace) -> int:
    from perceptlab._qt.platform_check import platform_hint  # noqa: PLC0415 - imports no Qt

    hint = platform_hint()
    if hint:
        print(hint, file=sys.stderr)
        return 2
    from perceptlab._qt.app import ensure_app  # noqa: PLC0415
    from perceptlab._qt.experiment import open_session  # noqa: PLC0415
    from perceptlab._qt.experiment.runner import RunnerWindow, show_runner  # noqa: PLC0415

    auto = args.auto_respond or os.environ.get("PERCEPTLAB_AUTO_RESPOND") == "1"
    session, base = open_session(args.design, args.participant, args.out)
    for note in session.notes:
        print(note)
    app = ensure_app([])
    window = RunnerWindow(session, base, auto_respond=auto, auto_seed=args.seed)
    window.finishedSession.connect(lambda _p: app.quit())
    failed = []

    def hook(exc_type, exc, tb):  # an error in the runner ends the run (the answers are on disk)
        import traceback  # noqa: PLC0415

        traceback.print_exception(exc_type, exc, tb)
        failed.append(exc)
        app.exit(1)

    sys.excepthook = hook
    print(f"trial file: {session.path}")
    show_runner(window, args.fullscreen)
    try:
        app.exec()
    finally:
        sys.excepthook = sys.__excepthook__
        session.close()
    done, total = session.progress
    print(f"{done} of {total} trials answered and saved in {session.path}")
    if auto:
        summary = timing_summary(session.path, window.refresh_hz)
        print("timing: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                     for k, v in summary.items()))
    if failed:
        raise PerceptLabError(f"the runner stopped on an error ({failed[0]}); the answers so far are in "
                              f"{session.path}", "run the same command again to resume")
    return 0


def design_from_library_cmd(args: argparse.Namespace) -> int:
    from perceptlab.experiment.design import save_design  # noqa: PLC0415
    from perceptlab.experiment.library_design import design_from_library  # noqa: PLC0415

    out = Path(args.out)
    if out.is_dir():
        raise PerceptLabError(f"--out {out} is a folder; it names the design file to write",
                              fix=f"e.g. --out {out / 'design.json'}")
    status = None if args.status == "all" else args.status
    design = design_from_library(args.library, out.parent, status=status, catch_rate=args.catch_rate,
                                 seed=args.seed, feedback=args.feedback, break_every=args.break_every,
                                 name=args.name)
    save_design(design, out)
    n_catch = sum(t.is_catch for t in design.trials)
    print(f"wrote {out}: {len(design.trials) - n_catch} stimuli ({args.status}) + {n_catch} catch trials "
          f"(MNIST digits in {out.parent / 'catch'}), order seed {design.order_seed}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "run-experiment", help="run a design with a participant (runner window; every answer saved at once)",
        description="Instructions, then per trial a 300 ms fixation, the 200 ms stimulus and a separate "
        "choice screen. Every answer is appended and flushed to OUT/<participant>_<session>.csv; an "
        "unfinished session of the same participant resumes.",
    )
    p.add_argument("design", help="design file (perceptlab-design/1 JSON)")
    p.add_argument("--participant", required=True, help="participant id (letters, digits, _ - .)")
    p.add_argument("--out", help="folder for the trial files (default: trials/ beside the design)")
    p.add_argument("--fullscreen", action="store_true", help="full screen (kiosk); Esc pauses, then Q quits")
    p.add_argument("--auto-respond", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    p.set_defaults(func=run_experiment)

    d = subparsers.add_parser("design", help="experiment designs (perceptlab-design/1)",
                              description="Write experiment designs for the runner and the exports.")
    dsub = d.add_subparsers(dest="design_command", metavar="ACTION", required=True)
    f = dsub.add_parser("from-library", help="a design over a library's curated stimuli plus catch trials",
                        description="Choice trials over the library's stimuli of one status and catch trials "
                        "of real MNIST digits (held-out built-in subset) at the given rate.")
    f.add_argument("library", help="stimulus library folder")
    f.add_argument("--out", required=True, help="design file to write (catch images go beside it)")
    f.add_argument("--status", default="accepted", choices=("accepted", "new", "rejected", "all"),
                   help="which stimuli (default accepted)")
    f.add_argument("--catch-rate", type=float, default=0.1, help="share of catch trials (default 0.1)")
    f.add_argument("--seed", type=int, default=0, help="seed of the catch digits and of the order (default 0)")
    f.add_argument("--feedback", action="store_true", help="feedback after catch trials")
    f.add_argument("--break-every", type=int, default=0, help="a break every N trials (default 0: none)")
    f.add_argument("--name", help="design name (default: library name and status)")
    f.set_defaults(func=design_from_library_cmd)
