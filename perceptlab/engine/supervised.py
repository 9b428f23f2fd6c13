"""The supervised epoch/step loop shared by the classifier zoo and the digit judge.

``supervised_loop`` resumes from a checkpoint, draws one permutation per epoch from ``generator``,
sets the learning rate every step from a schedule callback, takes one optimizer step on the loss a
callback returns, checkpoints after every epoch (model, optimizer, RNG states), and yields a small
record per step and per epoch. It returns the training seconds (resumed runs included), so a caller
writes ``elapsed = yield from supervised_loop(...)``.

The order in which ``generator`` is used is fixed: the epoch's permutation, then per step whatever
``prepare`` draws. A resumed run therefore continues bit-exactly where an uninterrupted one would be.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable, Generator

import torch

from perceptlab.engine.checkpoint import has_checkpoint, load_checkpoint, save_checkpoint


Batch = tuple[torch.Tensor, torch.Tensor]


def supervised_loop(
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    ckpt: Path,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    generator: torch.Generator,
    lr_at: Callable[[int, int], float],
    loss_fn: Callable[[torch.nn.Module, torch.Tensor, torch.Tensor], torch.Tensor],
    prepare: Callable[[torch.Tensor, torch.Tensor, torch.Generator], Batch] | None = None,
) -> Generator[dict, None, float]:
    """Train ``model`` on (``inputs``, ``targets``) for ``epochs``; yields step/epoch records.

    ``lr_at(step, total)`` gives the learning rate of the 0-based ``step``; ``prepare(x, y, generator)``
    (optional) augments a batch on the CPU; ``loss_fn(model, x, y)`` returns the batch loss (it moves
    the batch to the model's device). Returns the elapsed training seconds.
    """
    n = len(targets)
    steps_per_epoch = math.ceil(n / batch_size)
    total = steps_per_epoch * epochs
    epoch, elapsed = 0, 0.0
    if has_checkpoint(ckpt):
        scalars = load_checkpoint(ckpt, model, opt, generator=generator)
        epoch, elapsed = scalars["epoch"], scalars["elapsed_s"]
    t0 = time.monotonic() - elapsed
    while epoch < epochs:
        model.train()
        perm = torch.randperm(n, generator=generator)
        running, seen = 0.0, 0
        for i in range(steps_per_epoch):
            step = epoch * steps_per_epoch + i
            idx = perm[i * batch_size : (i + 1) * batch_size]
            x, y = inputs[idx], targets[idx]
            if prepare is not None:
                x, y = prepare(x, y, generator)
            lr = lr_at(step, total)
            for g in opt.param_groups:
                g["lr"] = lr
            loss = loss_fn(model, x, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            running += loss.detach().item() * len(idx)
            seen += len(idx)
            yield {"kind": "step", "step": step + 1, "total": total, "loss": running / seen}
        epoch += 1
        elapsed = time.monotonic() - t0
        save_checkpoint(ckpt, model, opt, {"epoch": epoch, "elapsed_s": elapsed}, generator=generator)
        yield {"kind": "epoch", "epoch": epoch, "epochs": epochs, "loss": running / seen}
    return elapsed
