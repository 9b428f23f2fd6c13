"""``perceptlab eval classifiers|observers|prior|judge|robust|strokes``: measure the shipped (or any
registry) models, and how many real digits the clean-stroke check rejects."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from perceptlab.cli._common import BUILTIN_CLASSIFIERS, add_mnist_args, mnist_from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="measure classifier accuracy, prior sample quality or judge AUC")
    p.add_argument("what", choices=["classifiers", "observers", "prior", "judge", "robust", "strokes"])
    add_mnist_args(p)
    p.add_argument("--weights", metavar="DIR", help="weights folder (default: the shipped resources/weights)")
    p.add_argument("--models", default=",".join(BUILTIN_CLASSIFIERS))
    p.add_argument("-n", type=int, default=1000, help="prior: unconditional samples (default 1000)")
    p.add_argument("--per-class", type=int, default=100, help="prior: class-conditional samples per digit")
    p.add_argument("--steps", type=int, default=50, help="prior: DDPM inference steps (default 50)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--grid", metavar="PNG", help="prior: save a 10x10 grid of samples; robust: the input-gradient grid")
    p.add_argument("--attack-n", type=int, help="robust: attack only the first N hold-out digits (default all)")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.add_argument("--record", action="store_true", help="store the results as 'metrics' in each model's config")
    p.set_defaults(func=run)


def _record(folder: Path, name: str, key: str, value: dict) -> None:
    from perceptlab.engine.weights import read_config, write_json  # noqa: PLC0415

    cfg_path = folder / f"{name}.json"
    cfg = read_config(cfg_path)
    cfg.setdefault("metrics", {})[key] = value
    write_json(cfg_path, cfg)


def _record_history(folder: Path, result: dict) -> None:
    """Append a one-line summary of a prior measurement to ``metrics.quality_history`` (one entry per
    training step count and sample size: a re-measurement replaces the old entry)."""
    from perceptlab.engine.weights import read_config, write_json  # noqa: PLC0415

    cfg_path = folder / "dit.json"
    cfg = read_config(cfg_path)
    shares = result.get("class_shares", [])
    entry = {
        "steps": cfg.get("training", {}).get("steps_done"),
        "n": result["n_unconditional"],
        "confident_and_judged": result["share_confident_and_judged_digit"],
        "conditional": result.get("conditional_accuracy"),
        "min_class_share": min(shares) if shares else None,
        "max_class_share": max(shares) if shares else None,
    }
    metrics = cfg.setdefault("metrics", {})
    history = [h for h in metrics.get("quality_history", []) if (h.get("steps"), h.get("n")) != (entry["steps"], entry["n"])]
    metrics["quality_history"] = sorted([*history, entry], key=lambda h: (h.get("steps") or 0, h.get("n") or 0))
    write_json(cfg_path, cfg)


def _eval_strokes(args: argparse.Namespace) -> int:
    """The share of real digits (all of the MNIST source, hold-out or not) the clean-stroke check rejects."""
    import numpy as np  # noqa: PLC0415

    from perceptlab.analysis.strokes import LIMITS, rejection_rates  # noqa: PLC0415
    from perceptlab.data.images import float_to_uint8  # noqa: PLC0415

    data = mnist_from_args(args)
    images = float_to_uint8(np.asarray(data.images)[:, 0])
    rates = rejection_rates(images)
    print(f"clean-stroke check on {len(images):,} real digits ({data.source}), limits {LIMITS}:")
    for part in ("specks", "holes", "ink", "width", "solid", "any"):
        print(f"  {part:7s} {rates[part]:.2%} rejected")
    if args.json:
        Path(args.json).write_text(json.dumps({"source": str(data.source), **rates}, indent=2))
    return 0


def run(args: argparse.Namespace) -> int:
    from perceptlab.engine import evaluate  # noqa: PLC0415
    from perceptlab.engine.device import pick_device  # noqa: PLC0415
    from perceptlab.engine.registry import Registry, builtin_weights_dir  # noqa: PLC0415

    if args.what == "strokes":
        return _eval_strokes(args)
    device = pick_device(args.device)
    folder = Path(args.weights) if args.weights else builtin_weights_dir()
    reg = Registry(folder, user_dir=folder / "_none")
    if args.what == "classifiers":
        data = mnist_from_args(args)
        names = [n.strip() for n in args.models.split(",") if n.strip()]
        result = evaluate.eval_classifiers(reg, data, names, device)
        for name, r in result.items():
            print(f"{name:8s} held-out accuracy {r['heldout_accuracy']:.4f} ({r['n']:,} digits)")
            if args.record:
                _record(folder, name, "heldout", {**r, "data": data.source})
    elif args.what == "observers":
        from perceptlab.engine.train_classifiers import evaluate_accuracy, observer_split  # noqa: PLC0415

        data = mnist_from_args(args)
        half_b = observer_split(data)[1]
        result = {}
        for name in reg.names("observer"):
            acc = evaluate_accuracy(reg.load(name, device, kind="observer"), half_b, device)
            result[name] = {"half_b_accuracy": acc, "n": len(half_b)}
            print(f"{name:10s} accuracy {acc:.4f} on hold-out half B ({len(half_b):,} digits no model trains on)")
            if args.record:
                _record(folder, name, "half_b", {**result[name], "data": data.source})
    elif args.what == "robust":
        from perceptlab.cli.lwise import eval_robust  # noqa: PLC0415

        result = eval_robust(args, reg, folder, device)
        if args.record:
            _record(folder, "robust", "robust", result)
    elif args.what == "prior":
        result = evaluate.eval_prior(
            reg, args.n, args.per_class, args.steps, args.seed, device, grid_path=Path(args.grid) if args.grid else None
        )
        print(
            f"unconditional ({result['n_unconditional']} samples, {result['steps']} steps): "
            f"{result['share_confident_and_judged_digit']:.1%} confident (vgg > 0.9) and judged digit (> 0.5); "
            f"confident {result['share_confident']:.1%}, judged digit {result['share_judged_digit']:.1%}"
        )
        print("class shares: " + " ".join(f"{k}:{v:.1%}" for k, v in enumerate(result["class_shares"])))
        if "conditional_accuracy" in result:
            print(f"class-conditional: {result['conditional_accuracy']:.1%} classified as the asked digit")
        if args.record:
            _record(folder, "dit", "quality", result)
            _record_history(folder, result)
    else:
        data = mnist_from_args(args)
        result = evaluate.eval_judge(reg, data, device=device)
        for kind, a in result["auc_by_kind"].items():
            print(f"AUC real vs {kind:14s} {a:.4f}")
        print(f"AUC all {result['auc_all']:.4f}; real digits scored > 0.5: {result['real_share_above_0.5']:.1%}")
        if args.record:
            _record(folder, "judge", "heldout", {**result, "data": data.source})
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0
