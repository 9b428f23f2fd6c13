"""Speed and yield of the sampler presets on the real models.

For each preset: uncertainty guidance with one classifier (SmallVGG ``vgg`` by default) over all 45
pairs (cycled over the images), ``batches`` batches of ``batch_size`` images, nothing stored. Reports
seconds per image, acceptance rate (paper filter), accepted stimuli per minute, and how often the
classifier's top-two classes are the target pair, among the accepted and among all generated images.

Presets run cheapest first. With a time budget, a preset whose projected time (from its first two
steps) would overrun the budget is stopped; its row then has the extrapolated seconds per image only.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Generator, Sequence
from typing import Any

import numpy as np
import torch

from perceptlab.engine.generate import all_pairs, generate
from perceptlab.engine.registry import Registry, default_registry
from perceptlab.engine.sampler import PRESETS, SamplerSettings

DEFAULT_BENCH_PRESETS = tuple(sorted(PRESETS, key=lambda n: PRESETS[n]["steps"] * PRESETS[n]["resample"]))
DEFAULT_BUDGET_S = 570.0  # the whole bench stays under 10 minutes on a 2-core CPU
_DECIDE_AFTER_STEPS = 2  # the first step includes warm-up; project from two


def _top2_is_pair(probs: Sequence[float], a: int, b: int) -> bool:
    return set(np.argsort(-np.asarray(probs), kind="stable")[:2].tolist()) == {a, b}


def bench(
    presets: Sequence[str] = DEFAULT_BENCH_PRESETS,
    batch_size: int = 64,
    batches: int = 1,
    classifier: str = "vgg",
    registry: Registry | None = None,
    device: torch.device | str = "cpu",
    seed: int = 0,
    budget_s: float | None = DEFAULT_BUDGET_S,
) -> Generator[dict[str, Any], None, list[dict[str, Any]]]:
    """Benchmark each preset; yields generate's progress records with ``preset`` added and returns
    one result row (dict) per preset (``note`` says when a preset was stopped for the budget)."""
    registry = registry or default_registry()
    deadline = time.perf_counter() + budget_s if budget_s else None
    n = batch_size * batches
    targets = list(itertools.islice(itertools.cycle(all_pairs()), n))
    rows = []
    for name in presets:
        settings = SamplerSettings.from_preset(
            name, mode="uncertainty", classifier=classifier, pairs=all_pairs(), batch_size=batch_size, seed=seed
        )
        row: dict[str, Any] = {
            "preset": name,
            "steps": settings.steps,
            "resample": settings.resample,
            "gamma": settings.gamma,
            "grad": settings.grad,
            "spacing": settings.spacing,
        }
        job = generate(settings, targets, registry=registry, device=device, keep_rejects=True)
        start, summary = time.perf_counter(), None
        try:
            while True:
                rec = next(job)
                yield {**rec, "preset": name}
                if deadline is None or rec.get("kind") != "step" or rec["step"] < _DECIDE_AFTER_STEPS:
                    continue
                projected = (time.perf_counter() - start) * rec["planned"] / rec["done"]
                if start + projected > deadline:
                    row.update(
                        images=0,
                        seconds_per_image=projected / rec["planned"],
                        note=f"stopped after {rec['step']} of {rec['total']} steps: projected {projected:.0f} s "
                        f"overruns the budget; s/image extrapolated, nothing accepted",
                    )
                    break
        except StopIteration as stop:
            summary = stop.value
        finally:
            job.close()
        if summary is None:
            rows.append(row)
            continue
        hits = [_top2_is_pair(r.probs[classifier], r.class_a, r.class_b) for r in summary.records]
        hits_accepted = [h for h, r in zip(hits, summary.records) if r.passed]
        row.update(
            images=summary.generated,
            seconds=summary.seconds,
            seconds_per_image=summary.seconds_per_image,
            acceptance_rate=summary.acceptance_rate,
            accepted_per_minute=summary.accepted_per_minute,
            top2_share_accepted=float(np.mean(hits_accepted)) if hits_accepted else None,
            top2_share_generated=sum(hits) / summary.generated if summary.generated else None,
            invalid=summary.invalid,
        )
        rows.append(row)
    return rows


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """A plain-text table of bench rows, with the notes of stopped presets below it."""
    head = (
        f"{'preset':8s} {'steps':>5s} {'R':>2s} {'gamma':>5s} {'grad':>4s} {'spacing':>9s} {'images':>6s} {'s/image':>8s} "
        f"{'accept':>7s} {'acc/min':>8s} {'top2|acc':>8s} {'top2|all':>8s}"
    )

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{v:.1%}"

    lines = [head]
    for r in rows:
        per_min = r.get("accepted_per_minute")
        lines.append(
            f"{r['preset']:8s} {r['steps']:5d} {r['resample']:2d} {r['gamma']:5g} {r['grad']:>4s} {r.get('spacing', 'trailing'):>9s} {r['images']:6d} "
            f"{r['seconds_per_image']:8.3f} {pct(r.get('acceptance_rate')):>7s} "
            f"{'-' if per_min is None else f'{per_min:.2f}':>8s} "
            f"{pct(r.get('top2_share_accepted')):>8s} {pct(r.get('top2_share_generated')):>8s}"
        )
    lines += [f"{r['preset']}: {r['note']}" for r in rows if "note" in r]
    return "\n".join(lines)
