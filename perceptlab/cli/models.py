"""``perceptlab models``: list the registry (built-in and user models)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the models in the registry")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from perceptlab.engine.registry import default_registry  # noqa: PLC0415
    from perceptlab.engine.weights import read_config  # noqa: PLC0415

    reg = default_registry()
    entries = reg.entries()
    problems = reg.problems()
    for path, why in problems:
        print(f"broken user model {path.name} ({path.parent}): {why} — not listed below")
    if not entries:
        print(f"no models found in {reg.builtin_dir} or {reg.user_dir}")
        return 1
    for name, e in entries.items():
        cfg = read_config(e.config_path)
        metrics = cfg.get("metrics", {})
        acc = metrics.get("heldout", {}).get("heldout_accuracy")
        half_b = metrics.get("half_b", {}).get("half_b_accuracy")
        extra = f"held-out accuracy {acc:.2%}" if acc is not None else ""
        if half_b is not None:
            extra = f"accuracy {half_b:.2%} on hold-out half B (never guides or filters)"
        robust = metrics.get("robust", {})
        if robust.get("clean_accuracy") is not None:
            extra = (f"held-out accuracy {robust['clean_accuracy']:.2%}, {robust['robust_accuracy']:.2%} under "
                     f"PGD-{robust['pgd_steps']} {robust['norm'].upper()} ε {robust['eps']}")
        where = "built-in" if e.builtin else f"user ({e.config_path.parent})"
        print(f"{name:10s} {e.kind:10s} {e.arch:10s} {where:10s} {extra}")
    return 0
