"""The digit judge: SmallVGG with one output whose sigmoid says how digit-like an image is.

No human ratings ship, so by default it learns real digits (target 1) against generated non-digits
(target 0, see ``nondigits``). With a ratings table (``stimulus, rating`` in [0, 1]) it regresses the
ratings instead, as in the paper (soft-target binary cross-entropy).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from perceptlab.data.mnist import MnistData
from perceptlab.engine.augment import random_affine
from perceptlab.engine.classifiers import SmallVGG
from perceptlab.engine.nondigits import make_nondigits
from perceptlab.engine.supervised import supervised_loop
from perceptlab.engine.weights import save_weights


AUGMENT_SHARE = 0.5


@dataclass
class JudgeRecipe:
    epochs: int = 2
    lr: float = 1e-3
    batch_size: int = 128
    weight_decay: float = 5e-4
    nondigits_per_kind: int = 1500
    seed: int = 0


@torch.no_grad()
def judge_score_tensor(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    model.eval()
    return torch.cat([torch.sigmoid(model(x[s : s + batch_size]))[:, 0] for s in range(0, len(x), batch_size)])


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Area under the ROC curve (probability a positive outranks a negative; ties count half)."""
    from scipy.stats import rankdata  # noqa: PLC0415

    ranks = rankdata(np.concatenate([pos, neg]))
    r_pos = ranks[: len(pos)].sum()
    return float((r_pos - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def train_judge(
    data: MnistData,
    run_dir: Path,
    out_path: Path,
    recipe: JudgeRecipe | None = None,
    prior: torch.nn.Module | None = None,
    ratings: tuple[np.ndarray, np.ndarray] | None = None,
    device: torch.device | str = "cpu",
) -> Iterator[dict]:
    """Train the judge on real digits vs non-digits, or on ``ratings`` = (images [-1,1] (N,1,28,28), targets)."""
    recipe = recipe or JudgeRecipe()
    torch.manual_seed(recipe.seed)
    gen = torch.Generator().manual_seed(recipe.seed)
    digits, _ = data.tensors()
    if ratings is None:
        neg, kinds = make_nondigits(recipe.nondigits_per_kind, recipe.seed, digits, prior=prior)
        x_all = torch.cat([digits, neg])
        y_all = torch.cat([torch.ones(len(digits)), torch.zeros(len(neg))])
        target_desc = f"{len(digits)} real digits vs {len(neg)} non-digits ({', '.join(sorted(set(kinds)))})"
    else:
        x_all = torch.as_tensor(ratings[0], dtype=torch.float32).reshape(-1, 1, 28, 28)
        y_all = torch.as_tensor(ratings[1], dtype=torch.float32)
        target_desc = f"{len(y_all)} rated images (regression on ratings)"
    model = SmallVGG(num_outputs=1).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)

    def prepare(x: torch.Tensor, y: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        # Half of every batch, real and non-digit alike, goes through the random affine: its
        # bilinear resampling softens strokes, so it must not tell real digits from the others.
        warp = torch.rand(len(x), generator=gen) < AUGMENT_SHARE
        if warp.any():
            x = x.clone()
            x[warp] = random_affine(x[warp], gen)
        return x, y

    def loss_fn(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(model(x.to(device))[:, 0], y.to(device))

    elapsed = yield from supervised_loop(
        model,
        opt,
        Path(run_dir) / "judge_checkpoint.safetensors",
        x_all,
        y_all,
        epochs=recipe.epochs,
        batch_size=recipe.batch_size,
        generator=gen,
        lr_at=lambda step, total: recipe.lr * 0.5 * (1 + math.cos(math.pi * step / total)),
        loss_fn=loss_fn,
        prepare=prepare,
    )
    config = {
        "name": out_path.stem,
        "kind": "judge",
        "arch": "smallvgg",
        "arch_config": {},
        "training": {
            **asdict(recipe),
            "targets": target_desc,
            "train_seconds": round(elapsed),
            "data": data.source,
            "data_fingerprint": data.fingerprint(),
        },
    }
    save_weights(model.state_dict(), out_path, config)
    return out_path
