"""``perceptlab train prior|classifiers|judge``: reproduce the shipped weights."""

from __future__ import annotations

import argparse
from pathlib import Path

from perceptlab.cli._common import BUILTIN_CLASSIFIERS, add_mnist_args, drive, mnist_from_args
from perceptlab.errors import PerceptLabError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train the prior, the classifier zoo or the digit judge")
    p.add_argument("what", choices=["prior", "classifiers", "observers", "judge"])
    add_mnist_args(p)
    p.add_argument("--out", metavar="DIR", help="where the weights go (default: the shipped resources/weights)")
    p.add_argument("--run-dir", default="runs", help="checkpoints for resuming (default: ./runs)")
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--models", default=",".join(BUILTIN_CLASSIFIERS), help="classifiers to train (comma list)")
    p.add_argument("--epochs", type=int, help="override the recipe's epochs (classifiers, judge)")
    p.add_argument("--steps", type=int, help="prior: total training steps (default 38,000; the rate decays to 0 at the last)")
    p.add_argument(
        "--decay-start", type=int, help="prior: step from which the rate decays (cosine) to 0 (default 25,000)"
    )
    p.add_argument(
        "--cond-drop", type=float, help="prior: share of each batch trained unconditionally (null class; default 0.15)"
    )
    p.add_argument("--minutes", type=float, help="prior: stop (and checkpoint) after this many minutes")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--patch-size", type=int, help="prior: DiT patch size (paper 2; shipped 4)")
    p.add_argument("--ratings", metavar="CSV", help="judge: regress ratings (columns stimulus, rating in [0,1])")
    p.add_argument("--images", metavar="DIR", help="judge --ratings: folder of the rated PNGs")
    p.set_defaults(func=run)


def _stop_gracefully() -> None:
    """SIGTERM and SIGINT (also when a background shell ignored it) stop training through
    KeyboardInterrupt, so the training generators write their checkpoint on the way out."""
    import signal  # noqa: PLC0415

    def stop(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace  # noqa: PLC0415

    _stop_gracefully()
    from perceptlab.engine.device import describe, pick_device  # noqa: PLC0415
    from perceptlab.engine.registry import builtin_weights_dir  # noqa: PLC0415

    device = pick_device(args.device)
    data = mnist_from_args(args)
    train = data.train()
    out_dir = Path(args.out) if args.out else builtin_weights_dir()
    run_dir = Path(args.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    print(f"device: {describe(device)}; checkpoints in {run_dir}; weights to {out_dir}")
    if args.what == "prior":
        from perceptlab.engine.prior import PriorConfig  # noqa: PLC0415
        from perceptlab.engine.train_prior import PriorTrainConfig, train_prior  # noqa: PLC0415

        cfg = PriorTrainConfig(seed=args.seed)
        for field in ("steps", "batch_size", "lr", "decay_start", "cond_drop"):
            if getattr(args, field) is not None:
                cfg = replace(cfg, **{field: getattr(args, field)})
        pcfg = PriorConfig(patch_size=args.patch_size) if args.patch_size else PriorConfig()
        path = drive(
            train_prior(train, run_dir, out_dir / "dit.safetensors", cfg, pcfg, device, args.minutes), "prior"
        )
        print(f"prior weights (EMA): {path}")
    elif args.what == "classifiers":
        from perceptlab.engine.train_classifiers import RECIPES, evaluate_accuracy, train_classifier  # noqa: PLC0415

        names = [n.strip() for n in args.models.split(",") if n.strip()]
        unknown = [n for n in names if n not in RECIPES]
        if unknown:
            raise PerceptLabError(f"no training recipe for {', '.join(unknown)}", fix=f"choose from {', '.join(RECIPES)}")
        for name in names:
            recipe = _with_overrides(replace(RECIPES[name], seed=args.seed), args)
            path = drive(train_classifier(name, train, run_dir, out_dir / f"{name}.safetensors", recipe, device), name)
            from perceptlab.engine.registry import Registry  # noqa: PLC0415

            model = Registry(out_dir, user_dir=out_dir / "_none").load(name, device)
            acc = evaluate_accuracy(model, data.held_out(), device)
            print(f"{name}: {path}; held-out accuracy {acc:.4f} on {len(data.held_out()):,} digits")
    elif args.what == "observers":
        _train_observers(args, data, run_dir, out_dir, device)
    else:
        from perceptlab.engine.train_judge import JudgeRecipe, train_judge  # noqa: PLC0415

        recipe = _with_overrides(JudgeRecipe(seed=args.seed), args)
        ratings = _read_ratings(args.ratings, args.images) if args.ratings else None
        prior = _maybe_prior(out_dir, device) if ratings is None else None
        path = drive(train_judge(train, run_dir, out_dir / "judge.safetensors", recipe, prior, ratings, device), "judge")
        print(f"judge weights: {path}")
    return 0


def _with_overrides(recipe, args: argparse.Namespace):
    """The recipe with the --epochs, --batch-size and --lr given on the command line."""
    from dataclasses import replace  # noqa: PLC0415

    given = {f: getattr(args, f) for f in ("epochs", "batch_size", "lr") if getattr(args, f) is not None}
    return replace(recipe, **given)


def _train_observers(args: argparse.Namespace, data, run_dir: Path, out_dir: Path, device) -> None:
    """The independent observer panel (never guides, never filters), measured on hold-out half B."""
    from perceptlab.engine.registry import Registry  # noqa: PLC0415
    from perceptlab.engine.train_classifiers import (  # noqa: PLC0415
        OBSERVER_RECIPES,
        evaluate_accuracy,
        observer_split,
        recipe_data,
        train_classifier,
    )

    for name, recipe in OBSERVER_RECIPES.items():
        recipe = _with_overrides(recipe, args)
        train = recipe_data(recipe, data)
        path = drive(train_classifier(name, train, run_dir, out_dir / f"{name}.safetensors", recipe, device), name)
        model = Registry(out_dir, user_dir=out_dir / "_none").load(name, device, kind="observer")
        half_b = observer_split(data)[1]
        acc = evaluate_accuracy(model, half_b, device)
        print(f"{name}: {path}; trained on {len(train):,} digits; accuracy {acc:.4f} on hold-out half B ({len(half_b):,})")


def _maybe_prior(out_dir: Path, device):
    from perceptlab.engine.registry import Registry  # noqa: PLC0415

    reg = Registry(out_dir, user_dir=out_dir / "_none")
    if "dit" not in reg.names("prior"):
        print("no prior weights yet: the judge trains without half-denoised prior samples")
        return None
    return reg.load("dit", device)


def _read_ratings(csv_path: str, images_dir: str | None):
    import numpy as np  # noqa: PLC0415
    import pandas as pd  # noqa: PLC0415

    from perceptlab.data.images import read_png  # noqa: PLC0415

    path = Path(csv_path)
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise PerceptLabError(f"{path}: cannot read ratings ({exc})") from exc
    missing = {"stimulus", "rating"} - set(table.columns)
    if missing:
        raise PerceptLabError(f"{path}: missing column(s) {', '.join(sorted(missing))}", fix="columns: stimulus, rating")
    if not images_dir:
        raise PerceptLabError("--ratings needs --images DIR, the folder of the rated PNGs")
    ratings = pd.to_numeric(table["rating"], errors="coerce")
    bad = table.index[ratings.isna() | (ratings < 0) | (ratings > 1)]
    if len(bad):
        raise PerceptLabError(f"{path}: line {bad[0] + 2}: rating must be a number in [0, 1]")
    folder = Path(images_dir)
    images = []
    for line, stim in enumerate(table["stimulus"].astype(str), start=2):
        f = folder / Path(stim).name
        if not f.suffix:
            f = f.with_suffix(".png")
        if not f.exists():
            raise PerceptLabError(f"{path}: line {line}: image {f} not found", fix="check --images")
        images.append(read_png(f))
    x = np.stack(images).astype(np.float32)[:, None] / 127.5 - 1
    return x, ratings.to_numpy(dtype=np.float32)
