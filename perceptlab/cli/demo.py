"""``perceptlab demo``: a headless look at the shipped models — a grid of prior samples, classified."""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_OUT = "perceptlab-demo.png"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="draw a 10x10 grid of prior samples (one row per digit) into a PNG")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"PNG to write (default {DEFAULT_OUT})")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace | None) -> int:
    import torch  # noqa: PLC0415
    from PIL import Image  # noqa: PLC0415

    from perceptlab.engine.evaluate import grid_image  # noqa: PLC0415
    from perceptlab.engine.prior import sample  # noqa: PLC0415
    from perceptlab.engine.registry import default_registry  # noqa: PLC0415

    out = Path(args.out if args else DEFAULT_OUT)
    steps = args.steps if args else 50
    seed = args.seed if args else 0
    reg = default_registry()
    prior = reg.load("dit", kind="prior")
    labels = torch.arange(10).repeat_interleave(10)
    print(f"sampling 100 digits (10 per class, {steps} DDPM steps) from the shipped prior ...")
    x = sample(prior, 100, steps=steps, class_labels=labels, generator=torch.Generator().manual_seed(seed))
    probs = torch.softmax(reg.load("vgg", kind="classifier")(x), 1) if "vgg" in reg.names("classifier") else None
    Image.fromarray(grid_image(x, 10, 10, scale=2)).save(out)
    if probs is not None:
        agree = (probs.argmax(1) == labels).float().mean().item()
        print(f"SmallVGG reads {agree:.0%} of them as the digit asked for")
    print(f"wrote {out.resolve()}")
    return 0
