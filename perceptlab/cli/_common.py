"""Helpers shared by the subcommands: MNIST options, option checks, the engine on demand, progress bars.

This module imports no torch: every parser imports it, and building the parser must stay light."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Iterator

import numpy as np
from tqdm import tqdm

from perceptlab.data.mnist import MnistData, load_mnist
from perceptlab.errors import PerceptLabError
from perceptlab.names import BUILTIN_CLASSIFIERS  # noqa: F401  (re-exported for the parsers)


def add_mnist_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--mnist",
        metavar="DIR",
        help="folder of MNIST IDX files (gzipped or not) or an .npz; default: the built-in 5,000-digit subset",
    )
    p.add_argument(
        "--with-builtin",
        action="store_true",
        help="combine --mnist with the built-in subset (the recipe of the shipped weights)",
    )


def add_jspsych_save_args(p: argparse.ArgumentParser, prefix: str = "") -> None:
    """--save-hook, --save-url, --no-download, --jspsych-from of the jsPsych exports (``prefix`` starts
    each help text, e.g. "jspsych: ")."""
    from perceptlab.data.jspsych_kit import SAVE_HOOKS  # noqa: PLC0415

    p.add_argument("--save-hook", choices=SAVE_HOOKS, default="none",
                   help=f"{prefix}send the data to a server: post (to --save-url), jatos, pavlovia, none")
    p.add_argument("--save-url", help=f"{prefix}the URL the post hook sends each row and the final data to")
    p.add_argument("--no-download", action="store_true",
                   help=f"{prefix}no CSV download at the end (the data stay in localStorage and the hook)")
    p.add_argument("--jspsych-from", type=Path, metavar="DIR",
                   help=f"{prefix}fill jspsych/ from an npm install in DIR (npm install jspsych@8 @jspsych/plugin-...)")


def report_jspsych_export(index: Path, readme: str, jspsych_from: object) -> None:
    """Print where a jsPsych export was written (``index``: its index.html), how to fill ``jspsych/``
    when ``jspsych_from`` did not (``readme`` explains it) and where interrupted sessions are recovered."""
    print(f"wrote {index}")
    if jspsych_from is None:
        print(f"fill {index.parent / 'jspsych'}/ with jsPsych 8 as {index.parent / readme} explains "
              "(or export again with --jspsych-from DIR)")
    print(f"data: every trial is kept in the browser's localStorage; {index.parent / 'recover.html'} "
          "downloads interrupted sessions")


def mnist_from_args(args: argparse.Namespace) -> MnistData:
    data = load_mnist(args.mnist, include_builtin=args.with_builtin)
    print(f"MNIST source: {data.source}; {int((~data.holdout).sum()):,} training / {int(data.holdout.sum()):,} held-out digits")
    return data


def given(args: argparse.Namespace, names: tuple[str, ...]) -> dict:
    """The options among ``names`` that were given (not None), as keyword arguments."""
    return {k: getattr(args, k) for k in names if getattr(args, k) is not None}


def require_at_least_one(flag: str, value: int, fix: str) -> None:
    """A one-line error ``--flag VALUE`` when a count option is below 1."""
    if value < 1:
        raise PerceptLabError(f"{flag} {value}", fix)


def registry_from_args(args: argparse.Namespace):
    """The registry with ``--models-dir`` as its user folder, else the default one (imports the engine)."""
    from perceptlab.engine.registry import Registry, default_registry  # noqa: PLC0415

    return Registry(user_dir=Path(args.models_dir)) if args.models_dir else default_registry()


def engine_probs(model_name: str, images: np.ndarray, need: str, fix: str) -> np.ndarray:
    """Class probabilities of a registry model, importing the engine (torch) only now; a missing engine
    is a one-line error: "<need> the engine, which cannot be loaded: ...", with ``fix``."""
    try:
        from perceptlab.engine.registry import predict_probs  # noqa: PLC0415
    except ImportError as exc:
        raise PerceptLabError(f"{need} the engine, which cannot be loaded: {exc}", fix=fix) from None
    return predict_probs(model_name, images)


def drive_generation(job: Iterator[dict], total: int, *, rounds: bool = True):
    """Run a generation job (``perceptlab.engine.generate.generate``) with an image-count bar; returns its
    summary. ``rounds``: follow the planned total and show the round and the accepted count."""
    bar = tqdm(total=total, desc="generating", unit="img", dynamic_ncols=True)
    try:
        while True:
            rec = next(job)
            if rounds:
                bar.total = round(rec["planned"])
                bar.set_postfix(round=rec["round"], accepted=rec["accepted"], refresh=False)
            bar.update(round(rec["done"], 1) - bar.n)
    except StopIteration as stop:
        return stop.value
    finally:
        bar.close()
        job.close()


def drive(gen: Iterator[dict], desc: str, total_key: str = "total", postfix: tuple[str, ...] = ("loss",)):
    """Run a training/sampling generator with a tqdm bar; returns the generator's return value."""
    bar = None
    try:
        while True:
            rec = next(gen)
            if rec.get("kind", "step") != "step":
                if bar is not None:
                    bar.write(", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in rec.items()))
                continue
            if bar is None:
                bar = tqdm(total=rec.get(total_key), desc=desc, initial=rec["step"] - 1, dynamic_ncols=True)
            bar.update(rec["step"] - bar.n)
            bar.set_postfix({k: f"{rec[k]:.4f}" for k in postfix if k in rec}, refresh=False)
    except StopIteration as stop:
        return stop.value
    finally:
        if bar is not None:
            bar.close()
        gen.close()
