"""Helpers shared by the subcommands: MNIST options, progress bars."""

from __future__ import annotations

import argparse
from typing import Iterator

from tqdm import tqdm

from perceptlab.data.mnist import MnistData, load_mnist
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


def mnist_from_args(args: argparse.Namespace) -> MnistData:
    data = load_mnist(args.mnist, include_builtin=args.with_builtin)
    print(f"MNIST source: {data.source}; {int((~data.holdout).sum()):,} training / {int(data.holdout.sum()):,} held-out digits")
    return data


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
