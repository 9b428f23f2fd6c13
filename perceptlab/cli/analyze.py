"""``perceptlab analyze``: the behavioural report of a trial table, headless."""

from __future__ import annotations

import argparse

import numpy as np

from perceptlab.cli._common import engine_probs
from perceptlab.errors import PerceptLabError


def _predict(model_name: str, images: np.ndarray) -> np.ndarray:
    """Class probabilities from the engine (imported here: the analysis package never loads torch)."""
    return engine_probs(model_name, images, "model probabilities need",
                        fix="install the engine's dependencies (torch), or drop --model")


def _classes(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [c.strip() for c in text.split(",")]
    if any(not c for c in names):
        raise PerceptLabError(f"--classes {text!r} has an empty class name",
                              fix="list the class names separated by commas, e.g. cat,dog,deer")
    return names


def run(args: argparse.Namespace) -> int:
    from perceptlab.analysis.report import run_report  # noqa: PLC0415

    trials = args.trials[0] if len(args.trials) == 1 else args.trials
    analysis, written = run_report(
        trials, args.out, library=args.library, images=args.images, models=args.model or (),
        predict=_predict, classes=_classes(args.classes), mapping=args.mapping,
        encoding=args.encoding, min_responses=args.min_responses,
        catch_threshold=args.catch_threshold, k=args.k, min_overlap=args.min_overlap, bins=args.bins,
    )
    print(analysis.summary_text())
    print(f"wrote {len(written)} files to {args.out}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "analyze", help="analyse a trial table: entropy, outcomes, RT, clusters, model-human",
        description="Load and validate a trial table (variMNIST, jsPsych, PsychoPy, canonical or "
        "a column mapping), apply exclusions and write summary.json, per-stimulus and "
        "per-participant tables, rejected rows and figures.",
    )
    p.add_argument("trials", nargs="+",
                   help="trial file(s) or a folder of them (CSV, TSV, JSON lines, JSON array; .gz too); "
                   "each file is accounted for in the report")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--library", help="stimulus library folder (library.sqlite, images/); its "
                       "database is read, not a hand-edited manifest.csv")
    where.add_argument("--images", help="plain folder of stimulus images (no target pairs)")
    p.add_argument("--model", nargs="+", action="extend", metavar="NAME",
                   help="classifier(s) for model-human entropy agreement (needs --library/--images)")
    p.add_argument("--classes", help="class names in class-index order, comma separated (default: "
                   "the response names in the file, in alphabetical order, or the digits 0..9 when "
                   "responses are indices)")
    p.add_argument("--mapping", help="column mapping JSON for other layouts")
    p.add_argument("--encoding", help="text encoding of the trial file when it is not UTF-8")
    p.add_argument("--min-responses", type=int, default=3,
                   help="stimuli with fewer responses are left out of entropy statistics (default 3)")
    p.add_argument("--catch-threshold", type=float, default=0.7,
                   help="exclude participants whose catch accuracy is <= this (default 0.7)")
    p.add_argument("--k", type=int, help="number of participant clusters (default: by silhouette)")
    p.add_argument("--min-overlap", type=int, default=5,
                   help="co-viewed stimuli needed for a participant pair's agreement (default 5)")
    p.add_argument("--bins", type=int, default=20, help="entropy histogram bins (default 20)")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=run)
