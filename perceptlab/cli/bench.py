"""``perceptlab bench``: seconds per image and acceptance of the sampler presets on the real models."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from perceptlab.cli.generate import PRESETS

DEFAULT_ORDER = "draft,fast,paper"  # cheapest first, as perceptlab.engine.bench.DEFAULT_BENCH_PRESETS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="time the sampler presets (s/image, acceptance, accepted per minute)",
        description=(
            "Uncertainty guidance with one classifier over all 45 pairs: one batch of 64 per preset by default "
            "(minutes on a 2-core CPU, most of it for the paper preset; see --budget-minutes). Nothing is stored."
        ),
    )
    p.add_argument(
        "--presets", default=DEFAULT_ORDER, help=f"comma-separated, run in this order (default {DEFAULT_ORDER})"
    )
    p.add_argument("--batch-size", type=int, default=64, help="images per batch (default 64, as the paper)")
    p.add_argument("--batches", type=int, default=1, help="batches per preset (default 1)")
    p.add_argument("--classifier", default="vgg", help="guiding classifier (default vgg)")
    p.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument(
        "--budget-minutes",
        type=float,
        default=9.5,
        help="stop a preset whose projected time overruns this budget for the whole bench, reporting its "
        "extrapolated s/image (default 9.5; 0 = no limit)",
    )
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch  # noqa: PLC0415
    from tqdm import tqdm  # noqa: PLC0415

    from perceptlab.engine.bench import bench, format_table  # noqa: PLC0415
    from perceptlab.engine.device import describe, pick_device  # noqa: PLC0415
    from perceptlab.engine.registry import default_registry  # noqa: PLC0415
    from perceptlab.errors import PerceptLabError  # noqa: PLC0415

    presets = [s.strip() for s in args.presets.split(",") if s.strip()]
    unknown = [s for s in presets if s not in PRESETS]
    if unknown or not presets:
        raise PerceptLabError(
            f"unknown preset(s): {', '.join(unknown) or '(none given)'}", f"choose from: {', '.join(PRESETS)}"
        )
    if args.batch_size < 1 or args.batches < 1:
        raise PerceptLabError("--batch-size and --batches must be at least 1")
    registry = default_registry()
    registry.entry(args.classifier, "classifier")
    device = pick_device(args.device)
    print(f"bench on {describe(device)}: {', '.join(presets)}; {args.batches} x {args.batch_size} images each")
    budget = args.budget_minutes * 60 if args.budget_minutes > 0 else None
    job = bench(presets, args.batch_size, args.batches, args.classifier, registry, device, args.seed, budget)
    bar, current = None, None
    try:
        while True:
            rec = next(job)
            if rec["preset"] != current:
                if bar is not None:
                    bar.close()
                current = rec["preset"]
                bar = tqdm(total=round(rec["planned"]), desc=current, unit="img", dynamic_ncols=True)
            bar.update(round(rec["done"], 1) - bar.n)
    except StopIteration as stop:
        rows = stop.value
    finally:
        if bar is not None:
            bar.close()
        job.close()
    print(format_table(rows))
    if args.json:
        meta = {
            "device": describe(device),
            "torch": torch.__version__,
            "batch_size": args.batch_size,
            "batches": args.batches,
            "classifier": args.classifier,
            "budget_minutes": args.budget_minutes,
        }
        Path(args.json).write_text(json.dumps({**meta, "results": rows}, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0
