"""``perceptlab model-card``: write resources/MODEL_CARD.md from the measured configs."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("model-card", help="render the model card from the weights' configs and metrics")
    p.add_argument("--weights", metavar="DIR", help="weights folder (default: the shipped resources/weights)")
    p.add_argument("--out", metavar="FILE", help="default: resources/MODEL_CARD.md")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from perceptlab.engine.model_card import render  # noqa: PLC0415
    from perceptlab.engine.registry import builtin_weights_dir, resources_dir  # noqa: PLC0415

    folder = Path(args.weights) if args.weights else builtin_weights_dir()
    out = Path(args.out) if args.out else resources_dir() / "MODEL_CARD.md"
    out.write_text(render(folder))
    print(f"wrote {out}")
    return 0
