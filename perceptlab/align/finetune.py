"""Group and individual fine-tuning on human choices (BAM §4, DESIGN §2 "Fine-tuning").

- **GroupNet** (:func:`finetune_group`): a base zoo model fine-tuned on the trials of all participants
  mixed 1:1 with MNIST digits in every batch.
- **IndivNet** (:func:`finetune_individual`): a GroupNet fine-tuned further on one participant's
  trials + all participants' trials + MNIST, mixed 2:1:1 in every batch.

Targets are the participants' responses (cross-entropy; with ``soft_labels`` the per-stimulus choice
distributions, optionally shrunk toward uniform, as in seeds/004), MNIST digits their labels.
Paper defaults: AdamW, lr 1e-3, batch 128, 16 epochs, and the epoch with the best validation score is
kept (epoch 0, the starting model, is a candidate: a fine-tuning that never helps returns the start).

What an epoch is: one pass over the *primary* source — all training trials for a GroupNet, the
participant's own training trials for an IndivNet — with the other sources drawn alongside in the
batch proportions (without replacement, cycling). An IndivNet's secondary sources draw from a fixed
random pool of at most ``secondary_pool`` trials / digits, so its cost does not grow with the size of
the whole table.

Which layers train (``recipe.trainable`` for the GroupNet, ``recipe.indiv_trainable`` for IndivNets;
see :mod:`perceptlab.align.layers`):

- GroupNet, ``auto``: ``all`` on a GPU (the paper's full fine-tuning), ``head`` on a CPU — the
  convolutional trunk is frozen, its outputs are computed once per distinct image and cached
  (:mod:`perceptlab.align.features`), and only the head trains (a SmallVGG on 20,000 trials takes
  minutes instead of hours on 2 CPU cores).
- IndivNet, ``auto``: ``calibration`` on every device — a per-class logit offset and a logit scale on
  top of the GroupNet (11 parameters, lr = ``lr * calibration_lr_scale``), folded into the final layer
  so the IndivNet is an ordinary classifier of the same architecture (usable for guidance). A
  participant's ~300-500 trials fit it without overfitting. Measured on simulated observers (40 x 500
  trials, CORnet-Z observers, MLP base, seed 1): IndivNet beat GroupNet on own test trials for 36/40
  participants with ``calibration`` vs 27/40 with ``head``; it is also the cheapest (~0.1 s each on
  cached features). Set ``indiv_trainable="all"`` for the paper's full fine-tuning.

The recipe stored with every model records which layers were trained.

The functions are generators: they yield ``{"kind": "features" | "step" | "epoch", ...}`` records
and return a :class:`FinetuneResult` (in memory — nothing is written; see
:mod:`perceptlab.align.store`). Closing the generator stops the work at the next yield.

:class:`FinetuneRecipe` / :class:`FinetuneResult` live in :mod:`perceptlab.align.recipe` and the
training sources and batch schedule in :mod:`perceptlab.align.sources`; both are re-exported here.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from perceptlab.align.datasets import AlignData
from perceptlab.align.features import FeatureCache, ImageBank
from perceptlab.align.layers import LogitCalibration, module_hash, resolve_trainable, split_model

# Re-exported: these lived here before the split and are imported from here elsewhere.
from perceptlab.align.recipe import LEVELS, SELECT_BY, FinetuneRecipe, FinetuneResult  # noqa: F401
from perceptlab.align.sources import (  # noqa: F401
    _allocate,
    _mnist_source,
    _one_hot,
    _rows_tensor,
    _schedule,
    _Source,
    _stream,
    _trial_targets,
)
from perceptlab.data.mnist import MnistData
from perceptlab.engine.registry import Registry, default_registry
from perceptlab.errors import PerceptLabError

EVAL_CHUNK = 4096


# ----------------------------------------------------------------------------- starting models


@dataclass
class _Start:
    model: nn.Module
    arch: str
    arch_config: dict
    name: str
    sha256: str
    lineage: list[dict]


def _load_start(start: str | FinetuneResult, registry: Registry, device: torch.device) -> _Start:
    if isinstance(start, FinetuneResult):
        model = copy.deepcopy(start.model).to(device)
        name = start.saved_name or f"<unsaved {start.level} model>"
        sha = start.saved_sha256 or module_hash(model)
        return _Start(
            model, start.arch, dict(start.arch_config), name, sha, [*start.lineage, {"name": name, "sha256": sha}]
        )
    entry = registry.entry(str(start), kind="classifier")
    cfg = registry.config(entry.name)
    model = copy.deepcopy(registry.load(entry.name, device, kind="classifier"))
    sha = registry.weight_hash(entry.name)
    lineage = [*cfg.get("lineage", []), {"name": entry.name, "sha256": sha}]
    return _Start(model, entry.arch, dict(cfg.get("arch_config", {})), entry.name, sha, lineage)


# ----------------------------------------------------------------------------- evaluation helpers


@torch.no_grad()
def _val_metrics(top: nn.Module, feats: torch.Tensor, rows: torch.Tensor, responses: torch.Tensor,
                 soft: torch.Tensor | None = None) -> dict:
    """Loss against the responses, or against ``soft`` targets per row (a soft-label set); accuracy
    always against the responses."""
    was = top.training
    top.eval()
    loss_sum, correct = 0.0, 0
    for s in range(0, len(rows), EVAL_CHUNK):
        logits = top(feats[rows[s : s + EVAL_CHUNK]])
        y = responses[s : s + EVAL_CHUNK].to(logits.device)
        target = y if soft is None else soft[s : s + EVAL_CHUNK].to(logits.device)
        loss_sum += F.cross_entropy(logits, target, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
    top.train(was)
    n = max(1, len(rows))
    return {"val_loss": loss_sum / n, "val_accuracy": correct / n, "n_val": int(len(rows))}


def _better(new: dict, old: dict, select_by: str) -> bool:
    if select_by == "val_accuracy":
        return (new["val_accuracy"], -new["val_loss"]) > (old["val_accuracy"], -old["val_loss"])
    return new["val_loss"] < old["val_loss"]


# ----------------------------------------------------------------------------- the loop


def _finetune(
    level: str,
    start: _Start,
    data: AlignData,
    sources: list[_Source],
    val_rows: pd.DataFrame,
    participants: list[str],
    mnist_train: MnistData | None,
    recipe: FinetuneRecipe,
    device: torch.device,
    cache: FeatureCache,
    pools: dict[int, torch.Tensor],
) -> Generator[dict[str, Any], None, FinetuneResult]:
    t0 = time.perf_counter()
    torch.manual_seed(recipe.seed)
    gen = torch.Generator().manual_seed(recipe.seed)
    model = start.model
    trunk, top = split_model(model, start.arch, recipe.trainable if level == "group" else recipe.indiv_trainable)
    model.requires_grad_(False)
    calibration = isinstance(top, LogitCalibration)
    if calibration:
        params = top.adapter_parameters()
        lr = recipe.lr * recipe.calibration_lr_scale
    else:
        top.requires_grad_(True)
        params = [p for p in top.parameters() if p.requires_grad]
        lr = recipe.lr
    model.eval()
    held = top if calibration else model  # whose state is the fine-tuned part

    def snapshot() -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in held.state_dict().items()}

    for src, k in zip(sources, _allocate(recipe.batch_size, _mix(level, recipe))):
        src.per_batch = k
    plan, steps = _schedule(sources, recipe.epochs, gen, pools)

    banks = {"stimuli": ImageBank(f"stimuli:{data.image_hash}", data.image_tensor)}
    if mnist_train is not None:
        banks["mnist"] = ImageBank(f"mnist-train:{mnist_train.fingerprint()}", mnist_train.tensors()[0])
    val_sidx = torch.tensor(val_rows["sidx"].to_numpy(np.int64), dtype=torch.long)
    val_resp = torch.tensor(val_rows["response"].to_numpy(np.int64), dtype=torch.long)
    val_soft = None  # a soft-label set is also the validation target
    if recipe.soft_labels and data.soft_targets is not None:
        val_soft = _trial_targets(data, val_rows, val_rows, recipe)
    needed: dict[str, list[torch.Tensor]] = {"stimuli": [val_sidx], "mnist": []}
    for epoch_plan in plan:
        for step in epoch_plan:
            for src, idx in zip(sources, step):
                needed[src.bank].append(src.rows[idx])
    trunk_key = module_hash(trunk) if trunk is not None else None
    tf = time.perf_counter()
    feats: dict[str, torch.Tensor] = {}
    for bank_name, parts in needed.items():
        if bank_name not in banks:
            continue
        rows = torch.cat(parts).unique() if parts else torch.zeros(0, dtype=torch.long)
        feats[bank_name] = yield from cache.ensure(trunk, trunk_key, banks[bank_name], rows, device, what=bank_name)
    feature_seconds = time.perf_counter() - tf

    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0 if calibration else recipe.weight_decay)
    targets = [src.targets.to(device) for src in sources]
    history = [
        {
            "epoch": 0,
            "train_loss": None,
            **_val_metrics(top, feats["stimuli"], val_sidx, val_resp, val_soft),
            "seconds": round(time.perf_counter() - t0, 3),
        }
    ]
    best_epoch = 0
    best_state = snapshot()
    yield {"kind": "epoch", "epoch": 0, "epochs": recipe.epochs, **history[0], "best_epoch": 0}
    total = steps * recipe.epochs
    for epoch, epoch_plan in enumerate(plan, start=1):
        top.train()
        running, seen = 0.0, 0
        for i, step in enumerate(epoch_plan):
            xs = [feats[src.bank][src.rows[idx]] for src, idx in zip(sources, step)]
            ts = [tgt[idx.to(tgt.device)] for tgt, idx in zip(targets, step)]
            x, t = torch.cat(xs), torch.cat(ts)
            loss = F.cross_entropy(top(x), t)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            running += loss.item() * len(t)
            seen += len(t)
            yield {
                "kind": "step",
                "step": (epoch - 1) * steps + i + 1,
                "total": total,
                "epoch": epoch,
                "loss": running / seen,
            }
        rec = {
            "epoch": epoch,
            "train_loss": running / max(1, seen),
            **_val_metrics(top, feats["stimuli"], val_sidx, val_resp, val_soft),
            "seconds": round(time.perf_counter() - t0, 3),
        }
        history.append(rec)
        if _better(rec, history[best_epoch], recipe.select_by):
            best_epoch = epoch
            best_state = snapshot()
        yield {"kind": "epoch", "epochs": recipe.epochs, **rec, "best_epoch": best_epoch}
    held.load_state_dict(best_state)
    if calibration:
        top.fold()
    model.eval().requires_grad_(False)
    counts = {src.name: int(len(src.rows)) for src in sources}
    counts["val"] = int(len(val_rows))
    counts["per_batch"] = {src.name: src.per_batch for src in sources}
    counts["steps_per_epoch"] = steps
    return FinetuneResult(
        model=model,
        level=level,
        arch=start.arch,
        arch_config=start.arch_config,
        base=start.name,
        base_sha256=start.sha256,
        lineage=start.lineage,
        participants=participants,
        recipe=recipe,
        history=history,
        best_epoch=best_epoch,
        data_hash=data.data_hash,
        split=data.split_settings.to_dict(),
        counts=counts,
        seconds=time.perf_counter() - t0,
        feature_seconds=feature_seconds,
        trunk_hash=trunk_key,
    )


def _mix(level: str, recipe: FinetuneRecipe) -> tuple[float, ...]:
    return tuple(recipe.group_mix if level == "group" else recipe.indiv_mix)


def _prepare(recipe: FinetuneRecipe | None, device) -> tuple[FinetuneRecipe, torch.device]:
    recipe = (recipe or FinetuneRecipe()).validate()
    device = torch.device(device)
    return recipe.replace(
        trainable=resolve_trainable(recipe.trainable, device),
        indiv_trainable="calibration" if recipe.indiv_trainable == "auto" else recipe.indiv_trainable,
    ), device

def finetune_group(
    base: str | FinetuneResult,
    data: AlignData,
    mnist: MnistData | None = None,
    recipe: FinetuneRecipe | None = None,
    *,
    participants: Sequence[str] | None = None,
    registry: Registry | None = None,
    device: torch.device | str = "cpu",
    cache: FeatureCache | None = None,
) -> Generator[dict[str, Any], None, FinetuneResult]:
    """GroupNet: ``base`` (a registry name) fine-tuned on the training trials of ``participants``
    (default: everybody) mixed with MNIST (``recipe.group_mix``, 1:1). Validation: their validation
    trials. A generator (see the module docstring)."""
    recipe, device = _prepare(recipe, device)
    registry = registry or default_registry()
    pids = data.participants if participants is None else [data.check_participant(p) for p in participants]
    train = data.rows("train", pids)
    val = data.rows("val", pids)
    if train.empty:
        raise PerceptLabError(
            "no training trials for the group model", fix="check the split fractions and the participants"
        )
    if val.empty:
        raise PerceptLabError("no validation trials for the group model", fix="raise --val-fraction")
    start = _load_start(base, registry, device)
    sources = [_Source("trials", "stimuli", _rows_tensor(train), _trial_targets(data, train, train, recipe))]
    mnist_train = None
    if recipe.group_mix[1] > 0:
        mnist_train, src = _mnist_source(mnist, data.n_classes)
        sources.append(src)
    return (
        yield from _finetune(
            "group", start, data, sources, val, list(pids), mnist_train, recipe, device, cache or FeatureCache(), {}
        )
    )


def finetune_individual(
    group: str | FinetuneResult,
    data: AlignData,
    participant: str,
    mnist: MnistData | None = None,
    recipe: FinetuneRecipe | None = None,
    *,
    registry: Registry | None = None,
    device: torch.device | str = "cpu",
    cache: FeatureCache | None = None,
) -> Generator[dict[str, Any], None, FinetuneResult]:
    """IndivNet of ``participant``: ``group`` (a GroupNet, by registry name or in memory) fine-tuned
    on the participant's training trials + everybody's training trials + MNIST (``recipe.indiv_mix``,
    2:1:1); an epoch is one pass over the participant's training trials. Validation: the participant's
    validation trials. A generator (see the module docstring)."""
    recipe, device = _prepare(recipe, device)
    registry = registry or default_registry()
    pid = data.check_participant(participant)
    own = data.rows("train", pid)
    val = data.rows("val", pid)
    everyone = data.rows("train")
    if own.empty:
        raise PerceptLabError(f"participant {pid!r} has no training trials", fix="check the split fractions")
    if val.empty:
        n = len(data.rows(None, pid))
        raise PerceptLabError(
            f"participant {pid!r} has no validation trials (of {n} trials)",
            fix="raise --val-fraction, or collect more trials from this participant",
        )
    start = _load_start(group, registry, device)
    gen = np.random.default_rng(recipe.seed)
    sources = [
        _Source("own", "stimuli", _rows_tensor(own), _trial_targets(data, own, own, recipe)),
        _Source("all", "stimuli", _rows_tensor(everyone), _trial_targets(data, everyone, everyone, recipe)),
    ]
    mnist_train = None
    if recipe.indiv_mix[2] > 0:
        mnist_train, src = _mnist_source(mnist, data.n_classes)
        sources.append(src)
    pools: dict[int, torch.Tensor] = {}
    if recipe.secondary_pool is not None:
        for i, src in enumerate(sources[1:], start=1):
            if len(src.rows) > recipe.secondary_pool:
                pools[i] = torch.as_tensor(np.sort(gen.choice(len(src.rows), recipe.secondary_pool, replace=False)))
    if recipe.indiv_mix[1] <= 0:
        sources[1].rows = sources[1].rows[:0]
        sources[1].targets = sources[1].targets[:0]
    return (
        yield from _finetune(
            "individual", start, data, sources, val, [pid], mnist_train, recipe, device, cache or FeatureCache(), pools
        )
    )
