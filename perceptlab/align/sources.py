"""Training sources and the batch schedule of a fine-tuning run (split out of
:mod:`perceptlab.align.finetune`).

A source is one stream of samples (a participant's trials, everybody's trials, MNIST digits) with its
targets; every batch draws from each source in the recipe's proportions, and an epoch is one pass
over the first (*primary*) source.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from perceptlab.align.datasets import AlignData
from perceptlab.align.recipe import FinetuneRecipe
from perceptlab.data.mnist import MnistData, load_mnist
from perceptlab.errors import PerceptLabError


@dataclass
class _Source:
    name: str
    bank: str  # "stimuli" | "mnist"
    rows: torch.Tensor  # bank row of each sample
    targets: torch.Tensor  # (N, C) probabilities
    per_batch: int = 0


def _allocate(batch_size: int, ratios: Sequence[float]) -> list[int]:
    """Samples per source in a batch: proportional to the ratios, each positive ratio >= 1."""
    total = float(sum(ratios))
    raw = [batch_size * r / total for r in ratios]
    counts = [max(1, int(math.floor(x))) if r > 0 else 0 for x, r in zip(raw, ratios)]
    order = sorted(range(len(raw)), key=lambda i: raw[i] - math.floor(raw[i]), reverse=True)
    i = 0
    while sum(counts) < batch_size and any(r > 0 for r in ratios):
        j = order[i % len(order)]
        if ratios[j] > 0:
            counts[j] += 1
        i += 1
    while sum(counts) > batch_size:
        j = max(range(len(counts)), key=lambda k: counts[k])
        counts[j] -= 1
    return counts


def _one_hot(labels: np.ndarray, n_classes: int) -> torch.Tensor:
    return F.one_hot(torch.tensor(np.asarray(labels, dtype=np.int64)), n_classes).float()


def _trial_targets(data: AlignData, rows, reference, recipe: FinetuneRecipe) -> torch.Tensor:
    """Hard one-hot responses, or the smoothed choice distribution of each trial's stimulus over the
    ``reference`` trials (seeds/004: omega * human distribution + (1 - omega) * uniform); with
    ``data.soft_targets`` (a soft-label set) those per-stimulus targets instead, as given."""
    c = data.n_classes
    if not recipe.soft_labels:
        return _one_hot(rows["response"].to_numpy(), c)
    if data.soft_targets is not None:
        return torch.from_numpy(np.asarray(data.soft_targets, dtype=np.float32)[rows["sidx"].to_numpy()])
    counts = data.choice_counts(reference).astype(np.float64)
    n = counts.sum(axis=1, keepdims=True)
    dist = np.divide(counts, n, out=np.full_like(counts, 1.0 / c), where=n > 0)
    omega = np.full_like(n, recipe.soft_confidence)
    if recipe.soft_prior_count > 0:
        omega = omega * n / (n + recipe.soft_prior_count)
    soft = omega * dist + (1 - omega) / c
    return torch.from_numpy(soft[rows["sidx"].to_numpy()]).float()


def _stream(n: int, count: int, gen: torch.Generator, pool: torch.Tensor | None = None) -> torch.Tensor:
    """``count`` draws from range(n) (or from ``pool``), without replacement within each pass."""
    base = pool if pool is not None else torch.arange(n)
    if len(base) == 0 or count == 0:
        return torch.zeros(0, dtype=torch.long)
    reps = math.ceil(count / len(base))
    return torch.cat([base[torch.randperm(len(base), generator=gen)] for _ in range(reps)])[:count]


def _schedule(sources: list[_Source], epochs: int, gen: torch.Generator, pools: dict[int, torch.Tensor]):
    """Per epoch: list of per-step sample index tensors for every source."""
    primary = sources[0]
    n0 = len(primary.rows)
    steps = math.ceil(n0 / primary.per_batch)
    plan = []
    for _ in range(epochs):
        perm = torch.randperm(n0, generator=gen)
        per_source = [[perm[s * primary.per_batch : (s + 1) * primary.per_batch] for s in range(steps)]]
        for i, src in enumerate(sources[1:], start=1):
            draws = _stream(len(src.rows), steps * src.per_batch, gen, pools.get(i))
            per_source.append(list(draws.view(steps, src.per_batch)) if src.per_batch else [draws[:0]] * steps)
        plan.append(list(zip(*per_source)))
    return plan, steps


def _mnist_source(mnist: MnistData | None, n_classes: int) -> tuple[MnistData, _Source]:
    train = (mnist if mnist is not None else load_mnist()).train()
    if len(train) == 0:
        raise PerceptLabError("no MNIST training digits to mix in", fix="use a MNIST source with training digits")
    return train, _Source("mnist", "mnist", torch.arange(len(train)), _one_hot(train.labels, n_classes))


def _rows_tensor(rows) -> torch.Tensor:
    return torch.tensor(rows["sidx"].to_numpy(np.int64), dtype=torch.long)
