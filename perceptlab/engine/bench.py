"""Speed, yield and observer transfer of sampler presets (and ablation arms) on the real models.

An *arm* is a preset with optional changes (``parse_arm("fast+condition=pair,gamma=0.05")``); the
filter keys ``agree``, ``agree_with`` and ``strokes`` (``agree=2,agree_with=vit/mlp,strokes=false``)
change the arm's acceptance filter instead (zoo agreement and the clean-stroke check, ``engine/filters``),
on top of the preset's own filter values (``fast``: agreement and the stroke check on). Arms run
side by side in one interleaved run: pass after pass, each arm samples the same targets with the same
seeds (pass p uses base seed 1000 * (p - 1), image i seed base + i), so machine load hits every arm
alike. Per arm: CPU and wall seconds per image (the process's CPU time, all threads, while the arm
ran), acceptance (the paper filter, by this project's filter code), observer transfer of the accepted
images for each independent observer and for all together (``analysis/transfer``), the guide's own
top two, and accepted-and-confirmed images per CPU-minute. The observers never guide or filter.

With a time budget, an arm whose projected time (from its first two steps) would overrun the budget is
stopped; its row then has the extrapolated seconds per image only.
"""

from __future__ import annotations

import itertools
import re
import time
from collections import Counter
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch

from perceptlab.analysis.transfer import summarize, top2_on_pair
from perceptlab.data.library import StimulusLibrary
from perceptlab.engine.filters import FilterSettings, rejection_kinds
from perceptlab.engine.generate import all_pairs, generate
from perceptlab.engine.registry import Registry, default_registry
from perceptlab.engine.sampler import PRESETS, SamplerSettings, preset_filter
from perceptlab.errors import PerceptLabError
from perceptlab.names import PRIMARY_OBSERVER

DEFAULT_BENCH_PRESETS = tuple(sorted(PRESETS, key=lambda n: PRESETS[n]["steps"] * PRESETS[n]["resample"]))
DEFAULT_BUDGET_S = 570.0  # the whole bench stays under 10 minutes on a 2-core CPU
ISSUE_PAIRS = [(4, 9), (3, 5), (1, 7), (2, 8)]  # the side-by-side comparison of issue #12
PASS_SEED_STRIDE = 1000
_DECIDE_AFTER_STEPS = 2  # the first step includes warm-up; project from two
FILTER_KEYS = ("agree", "agree_with", "strokes")  # arm keys that change the acceptance filter, not the sampler


@dataclass
class Arm:
    """A preset with changes on top, under a display name."""

    name: str
    preset: str
    changes: dict[str, Any] = field(default_factory=dict)
    filter_changes: dict[str, Any] = field(default_factory=dict)

    def settings(self, **base: Any) -> SamplerSettings:
        return SamplerSettings.from_preset(self.preset, **{**base, **self.changes})

    def filters(self, base: FilterSettings | None, mode: str = "uncertainty") -> FilterSettings:
        """``base`` (default: the paper's filter) with the preset's filter values and the arm's on top."""
        changes = {**preset_filter(self.preset, mode), **self.filter_changes}
        return replace(base or FilterSettings(), **changes).validate()


def _value(key: str, text: str) -> Any:
    types = {f.name: f.type for f in fields(SamplerSettings)}
    types.update({f.name: f.type for f in fields(FilterSettings) if f.name in FILTER_KEYS})
    if key not in types:
        raise PerceptLabError(
            f"unknown sampler setting {key!r} in a bench arm", f"use a SamplerSettings field name or {', '.join(FILTER_KEYS)}"
        )
    if key in ("ensemble", "agree_with"):
        return [n for n in text.split("/") if n]
    if text.lower() in ("none", "null"):
        return None
    kind = str(types[key])
    try:
        if kind.startswith("bool"):
            return text.lower() in ("1", "true", "yes")
        if kind.startswith("int"):
            return int(text)
        if kind.startswith("float"):
            return float(text)
    except ValueError as exc:
        raise PerceptLabError(f"bench arm: {key}={text!r} is not a number", "e.g. gamma=0.05") from exc
    return text


def arm_slug(name: str) -> str:
    """A folder name for an arm: 'fast+condition=pair' -> 'fast_condition-pair'."""
    return re.sub(r"[^A-Za-z0-9.-]+", "_", name.replace("=", "-")).strip("_")


def parse_arm(spec: str) -> Arm:
    """``preset`` or ``preset+key=value,key=value`` (an ensemble is written ``ensemble=vgg/cornet``)."""
    preset, _, rest = spec.strip().partition("+")
    if preset not in PRESETS:
        raise PerceptLabError(f"unknown preset {preset!r} in bench arm {spec!r}", f"choose from: {', '.join(PRESETS)}")
    changes, filter_changes = {}, {}
    for item in filter(None, (s.strip() for s in rest.split(","))):
        key, eq, text = item.partition("=")
        if not eq:
            raise PerceptLabError(f"bench arm {spec!r}: {item!r} is not key=value", "e.g. fast+condition=pair")
        key = key.strip()
        (filter_changes if key in FILTER_KEYS else changes)[key] = _value(key, text.strip())
    arm = Arm(spec.strip(), preset, changes, filter_changes)
    arm.filters(None)  # refuses a bad filter value (an observer in agree_with) now, not mid-run
    return arm


def bench(
    arms: Sequence[Arm | str] = DEFAULT_BENCH_PRESETS,
    batch_size: int = 64,
    batches: int = 1,
    classifier: str = "vgg",
    registry: Registry | None = None,
    device: torch.device | str = "cpu",
    seed: int = 0,
    budget_s: float | None = DEFAULT_BUDGET_S,
    *,
    mode: str = "uncertainty",
    classifier2: str | None = None,
    pairs: Sequence[tuple[int, int]] | None = None,
    filters: FilterSettings | None = None,
    library_root: Path | None = None,
) -> Generator[dict[str, Any], None, list[dict[str, Any]]]:
    """Benchmark each arm, interleaved over ``batches`` passes of ``batch_size`` images; yields
    generate's progress records with ``preset`` (the arm's name) and ``pass`` added and returns one
    result row (dict) per arm (``note`` says when an arm was stopped for the budget). ``filters``:
    the acceptance filter (default: the paper's). ``library_root``: each arm's images (rejects too) are
    stored in the library ``library_root/<arm slug>``, for grids (``perceptlab library sheet``)."""
    registry = registry or default_registry()
    arms = [parse_arm(a) if isinstance(a, str) else a for a in arms]
    pairs = list(pairs or all_pairs())
    deadline = time.perf_counter() + budget_s if budget_s else None
    targets = list(itertools.islice(itertools.cycle(pairs), batch_size))
    base = {"mode": mode, "classifier": classifier, "pairs": pairs, "batch_size": batch_size}
    if mode == "controversial":
        base["classifier2"] = classifier2
    state = {a.name: {"records": [], "generated": 0, "accepted": 0, "cpu": 0.0, "wall": 0.0, "note": None} for a in arms}
    arm_filters = {a.name: a.filters(filters, mode) for a in arms}
    for p in range(1, batches + 1):
        for arm in arms:
            st = state[arm.name]
            if st["note"]:
                continue
            settings = arm.settings(**base, seed=seed + PASS_SEED_STRIDE * (p - 1))
            lib = StimulusLibrary.open_or_create(Path(library_root) / arm_slug(arm.name)) if library_root else None
            job = generate(
                settings, targets, filters=arm_filters[arm.name], registry=registry, library=lib, device=device,
                keep_rejects=True,
            )
            wall0, cpu0, summary = time.perf_counter(), time.process_time(), None
            try:
                while True:
                    rec = next(job)
                    yield {**rec, "preset": arm.name, "pass": p, "passes": batches}
                    if deadline is None or rec.get("kind") != "step" or rec["step"] < _DECIDE_AFTER_STEPS:
                        continue
                    projected = (time.perf_counter() - wall0) * rec["planned"] / rec["done"]
                    if wall0 + projected > deadline:
                        st["note"] = (
                            f"stopped in pass {p} after {rec['step']} of {rec['total']} steps: projected "
                            f"{projected:.0f} s overruns the budget; s/image extrapolated"
                        )
                        st["projected"] = projected / rec["planned"]
                        break
            except StopIteration as stop:
                summary = stop.value
            finally:
                job.close()
                if lib is not None:
                    lib.close()
            if summary is None:
                continue
            st["cpu"] += time.process_time() - cpu0
            st["wall"] += time.perf_counter() - wall0
            st["generated"] += summary.generated
            st["accepted"] += summary.accepted
            st["records"] += summary.records
    return [_row(arm, state[arm.name], base, arm_filters[arm.name]) for arm in arms]


def _row(arm: Arm, st: dict[str, Any], base: dict[str, Any], filters: FilterSettings) -> dict[str, Any]:
    s = arm.settings(**base)
    row: dict[str, Any] = {
        "preset": arm.name,
        "steps": s.steps,
        "resample": s.resample,
        "gamma": s.gamma,
        "grad": s.grad,
        "spacing": s.spacing,
        "condition": s.condition,
        "ensemble": list(s.ensemble),
        "mode": s.mode,
        "agree": filters.agree,
        "strokes": filters.strokes,
        "images": st["generated"],
    }
    if st["note"]:
        row["note"] = st["note"]
    if not st["generated"]:
        row["seconds_per_image"] = st.get("projected", 0.0)
        return row
    accepted = [r for r in st["records"] if r.passed]
    rejected_by = Counter(k for r in st["records"] if r.passed is False for k in rejection_kinds(r.reason))
    transfer = summarize(accepted)
    guide_hits = [_guide_confirms(r) for r in accepted]
    confirmed = transfer.get(PRIMARY_OBSERVER, {}).get("confirmed")
    cpu_min = st["cpu"] / 60
    row.update(
        seconds=st["wall"],
        cpu_seconds=st["cpu"],
        seconds_per_image=st["wall"] / st["generated"],
        cpu_seconds_per_image=st["cpu"] / st["generated"],
        acceptance_rate=st["accepted"] / st["generated"],
        accepted=st["accepted"],
        accepted_per_minute=60 * st["accepted"] / st["wall"] if st["wall"] else None,
        accepted_per_cpu_minute=st["accepted"] / cpu_min if cpu_min else None,
        transfer={n: v["rate"] for n, v in transfer.items()},
        confirmed=confirmed,
        confirmed_per_cpu_minute=confirmed / cpu_min if confirmed is not None and cpu_min else None,
        top2_share_accepted=sum(guide_hits) / len(guide_hits) if guide_hits else None,
        rejected_by=dict(rejected_by.most_common()),
    )
    return row


def _guide_confirms(rec: Any) -> bool:
    if rec.mode == "controversial":
        return True  # the filter itself asks classifier 1 for a and classifier 2 for b
    return top2_on_pair(rec.probs[rec.classifier], rec.class_a, rec.class_b)


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """A plain-text table of bench rows, with the notes of stopped arms below it."""
    observers = sorted({n for r in rows for n in r.get("transfer", {}) if n != "all"})
    width = max([8, *(len(r["preset"]) for r in rows)])

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{v:.1%}"

    def num(v: float | None, fmt: str = ".2f") -> str:
        return "-" if v is None else format(v, fmt)

    head = (
        f"{'arm':{width}s} {'images':>6s} {'cpu s/img':>9s} {'s/img':>7s} {'accept':>7s} {'acc/cpu-min':>11s} "
        + " ".join(f"{'T ' + n:>13s}" for n in observers)
        + f" {'T all':>7s} {'conf/cpu-min':>12s} {'guide top2':>10s}"
    )
    lines = [head]
    for r in rows:
        t = r.get("transfer", {})
        lines.append(
            f"{r['preset']:{width}s} {r['images']:6d} {num(r.get('cpu_seconds_per_image'), '.3f'):>9s} "
            f"{num(r.get('seconds_per_image'), '.3f'):>7s} {pct(r.get('acceptance_rate')):>7s} "
            f"{num(r.get('accepted_per_cpu_minute')):>11s} "
            + " ".join(f"{pct(t.get(n)):>13s}" for n in observers)
            + f" {pct(t.get('all')):>7s} {num(r.get('confirmed_per_cpu_minute')):>12s} "
            f"{pct(r.get('top2_share_accepted')):>10s}"
        )
    lines += [f"{r['preset']}: {r['note']}" for r in rows if "note" in r]
    return "\n".join(lines)
