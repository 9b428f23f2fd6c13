"""``perceptlab bench``: seconds per image and acceptance of the sampler presets on the real models."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from perceptlab.cli.generate import MODES, PRESETS, parse_pairs

DEFAULT_ORDER = "draft,fast,paper,reference"  # cheapest first, as perceptlab.engine.bench.DEFAULT_BENCH_PRESETS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="sampler presets side by side: s/image, acceptance, observer transfer, confirmed per CPU-minute",
        description=(
            "Presets (or ablation arms) side by side in one interleaved run: every pass, each arm samples the same "
            "targets with the same seeds (pass p: seed 1000*(p-1)+i). Uncertainty guidance with one classifier "
            "over all 45 pairs by default; observer transfer is measured with the independent observers, which "
            "never guide or filter. Nothing is stored."
        ),
    )
    p.add_argument(
        "--presets",
        "--arms",
        dest="presets",
        default=DEFAULT_ORDER,
        help="arms, separated by ';' or ',': a preset, or preset+key=value,... e.g. 'fast+condition=pair' "
        f"(then separate arms with ';'). Default {DEFAULT_ORDER}",
    )
    p.add_argument("--mode", choices=MODES, default="uncertainty")
    p.add_argument("--classifier2", help="controversial: the classifier pushed toward b")
    p.add_argument("--pairs", metavar="A-B,...", help="target pairs (default all 45), e.g. 4-9,3-5,1-7,2-8")
    p.add_argument("--batch-size", type=int, default=64, help="images per batch (default 64, as the paper)")
    p.add_argument("--batches", "--passes", dest="batches", type=int, default=1, help="interleaved passes (default 1)")
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
    p.add_argument(
        "--libraries",
        metavar="DIR",
        type=Path,
        help="store each arm's images in a library DIR/<arm> (then: perceptlab library sheet DIR/<arm> --passed)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch  # noqa: PLC0415
    from tqdm import tqdm  # noqa: PLC0415

    from perceptlab.engine.bench import bench, format_table  # noqa: PLC0415
    from perceptlab.engine.device import describe, pick_device  # noqa: PLC0415
    from perceptlab.engine.registry import default_registry  # noqa: PLC0415
    from perceptlab.errors import PerceptLabError  # noqa: PLC0415

    from perceptlab.engine.bench import parse_arm  # noqa: PLC0415

    sep = ";" if ";" in args.presets or "+" in args.presets else ","
    presets = [parse_arm(s) for s in args.presets.split(sep) if s.strip()]
    if not presets:
        raise PerceptLabError("no bench arms given", f"name presets from: {', '.join(PRESETS)}")
    if args.mode == "controversial" and not args.classifier2:
        raise PerceptLabError("controversial bench needs --classifier2", "e.g. --classifier cornet --classifier2 vgg")
    pairs = parse_pairs(args.pairs) if args.pairs else None
    if args.batch_size < 1 or args.batches < 1:
        raise PerceptLabError("--batch-size and --batches must be at least 1")
    registry = default_registry()
    registry.entry(args.classifier, "classifier")
    device = pick_device(args.device)
    names = ", ".join(a.name for a in presets)
    print(f"bench on {describe(device)}: {names}; {args.batches} pass(es) x {args.batch_size} images each")
    budget = args.budget_minutes * 60 if args.budget_minutes > 0 else None
    job = bench(
        presets, args.batch_size, args.batches, args.classifier, registry, device, args.seed, budget,
        mode=args.mode, classifier2=args.classifier2, pairs=pairs, library_root=args.libraries,
    )  # fmt: skip
    bar, current = None, None
    try:
        while True:
            rec = next(job)
            if (rec["preset"], rec["pass"]) != current:
                if bar is not None:
                    bar.close()
                current = (rec["preset"], rec["pass"])
                desc = f"{rec['preset']} pass {rec['pass']}/{rec['passes']}"
                bar = tqdm(total=round(rec["planned"]), desc=desc, unit="img", dynamic_ncols=True)
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
            "classifier2": args.classifier2,
            "mode": args.mode,
            "pairs": args.pairs or "all",
            "seed": args.seed,
            "budget_minutes": args.budget_minutes,
        }
        Path(args.json).write_text(json.dumps({**meta, "results": rows}, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0
