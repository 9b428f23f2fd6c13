"""Observer transfer (DESIGN §3): does an observer that never guided or filtered put a stimulus on
its target boundary? numpy only, so data/, analysis/ and the app can read it off stored probabilities.

Uncertainty: the observer's two most probable classes are the pair {a, b}; controversial: a and b are
both in its top two, which for two distinct classes is the same test.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from perceptlab.names import OBSERVERS


def top2_on_pair(probs: Sequence[float], a: int, b: int) -> bool:
    """Whether the two most probable classes are {a, b} (ties broken by the lower index)."""
    return set(np.argsort(-np.asarray(probs, dtype=float), kind="stable")[:2].tolist()) == {int(a), int(b)}


def confirmations(
    probs: Mapping[str, Sequence[float]], a: int | None, b: int | None, observers: Iterable[str] = OBSERVERS
) -> dict[str, bool]:
    """Observer name -> whether it confirms the pair, for the observers whose probabilities are stored."""
    if a is None or b is None:
        return {}
    return {n: top2_on_pair(probs[n], a, b) for n in observers if n in probs}


def transfer_rate(flags: Sequence[bool]) -> float | None:
    """The share of True flags (None when there are none)."""
    return float(np.mean(flags)) if len(flags) else None


def summarize(records: Iterable, observers: Iterable[str] = OBSERVERS) -> dict[str, dict[str, float | int | None]]:
    """Per observer (and ``"all"``: every stored observer confirms) over records with ``probs``,
    ``class_a``, ``class_b``: {"n": images seen, "confirmed": count, "rate": share}."""
    observers = list(observers)
    flags: dict[str, list[bool]] = {n: [] for n in [*observers, "all"]}
    for rec in records:
        conf = confirmations(rec.probs, rec.class_a, rec.class_b, observers)
        for n, ok in conf.items():
            flags[n].append(ok)
        if conf:
            flags["all"].append(all(conf.values()))
    return {n: {"n": len(f), "confirmed": int(sum(f)), "rate": transfer_rate(f)} for n, f in flags.items() if f}


def describe(probs: Mapping[str, Sequence[float]], a: int | None, b: int | None) -> str:
    """'observers: obs-cnn confirms, obs-resnet does not' ('' when no observer scored the stimulus)."""
    conf = confirmations(probs, a, b)
    if not conf:
        return ""
    return "independent observers: " + ", ".join(f"{n} {'confirms' if ok else 'does not'}" for n, ok in conf.items())
