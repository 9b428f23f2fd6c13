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
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Generator, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from perceptlab import __version__
from perceptlab.align.datasets import AlignData
from perceptlab.align.features import FeatureCache, ImageBank
from perceptlab.align.layers import TRAINABLE, LogitCalibration, module_hash, resolve_trainable, split_model
from perceptlab.data.mnist import MnistData, load_mnist
from perceptlab.engine.registry import Registry, default_registry
from perceptlab.errors import PerceptLabError

LEVELS = ("group", "individual")
SELECT_BY = ("val_loss", "val_accuracy")
EVAL_CHUNK = 4096


@dataclass
class FinetuneRecipe:
    """Every setting of a fine-tuning run (defaults: the paper's); round-trips through JSON."""

    epochs: int = 16
    lr: float = 1e-3
    batch_size: int = 128
    weight_decay: float = 0.01  # AdamW's default
    trainable: str = "auto"  # GroupNet: auto | all | head | readout | calibration (perceptlab.align.layers)
    indiv_trainable: str = "auto"  # IndivNet: the same choices; auto = calibration
    soft_labels: bool = False
    soft_confidence: float = 1.0  # omega: target = omega * choice distribution + (1 - omega) * uniform
    soft_prior_count: float = 0.0  # > 0: omega scaled by n / (n + soft_prior_count) per stimulus
    group_mix: tuple[float, ...] = (1.0, 1.0)  # trials : MNIST
    indiv_mix: tuple[float, ...] = (2.0, 1.0, 1.0)  # own trials : all trials : MNIST
    select_by: str = "val_loss"  # val_loss | val_accuracy
    secondary_pool: int | None = 1000  # IndivNet: distinct all-trials / MNIST samples drawn from
    calibration_lr_scale: float = 30.0  # trainable="calibration": lr of the offset / scale = lr * this
    seed: int = 0

    def validate(self) -> FinetuneRecipe:
        def bad(msg: str, fix: str) -> PerceptLabError:
            return PerceptLabError(msg, fix=fix)

        if self.epochs < 1:
            raise bad(f"epochs = {self.epochs}", "use at least 1 epoch (paper: 16)")
        if not self.lr > 0:
            raise bad(f"learning rate = {self.lr}", "use a positive learning rate (paper: 1e-3)")
        if self.batch_size < 2:
            raise bad(f"batch size = {self.batch_size}", "use a batch size of at least 2 (paper: 128)")
        if self.weight_decay < 0:
            raise bad(f"weight decay = {self.weight_decay}", "use >= 0")
        for name in ("trainable", "indiv_trainable"):
            value = getattr(self, name)
            if value != "auto" and value not in TRAINABLE:
                raise bad(f"unknown trainable layers {value!r}", f"use auto, {', '.join(TRAINABLE)}")
        if self.calibration_lr_scale <= 0:
            raise bad(f"calibration lr scale = {self.calibration_lr_scale}", "use a positive factor (default 30)")
        if not 0 <= self.soft_confidence <= 1:
            raise bad(f"soft-label confidence = {self.soft_confidence}", "use a weight in [0, 1]")
        if self.soft_prior_count < 0:
            raise bad(f"soft-label prior count = {self.soft_prior_count}", "use >= 0")
        for name, n in (("group_mix", 2), ("indiv_mix", 3)):
            mix = tuple(getattr(self, name))
            if len(mix) != n or any(r < 0 for r in mix) or mix[0] <= 0:
                raise bad(f"{name} = {mix}", f"give {n} non-negative ratios, the first (the participants' trials) > 0")
        if self.select_by not in SELECT_BY:
            raise bad(f"unknown selection {self.select_by!r}", f"use one of: {', '.join(SELECT_BY)}")
        if self.secondary_pool is not None and self.secondary_pool < 1:
            raise bad(f"secondary pool = {self.secondary_pool}", "use a positive size or None (everything)")
        return self

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["group_mix"] = list(self.group_mix)
        d["indiv_mix"] = list(self.indiv_mix)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FinetuneRecipe:
        """Inverse of ``to_dict``; unknown keys are refused (a typo would silently change nothing)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise PerceptLabError(
                f"unknown recipe field(s): {', '.join(unknown)}", fix=f"known: {', '.join(sorted(known))}"
            )
        values = dict(d)
        for k in ("group_mix", "indiv_mix"):
            if k in values:
                values[k] = tuple(float(v) for v in values[k])
        return cls(**values)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text_or_path: str | Path) -> FinetuneRecipe:
        text = str(text_or_path)
        if not text.lstrip().startswith("{"):
            path = Path(text)
            try:
                text = path.read_text()
            except OSError as exc:
                raise PerceptLabError(f"recipe file {path} cannot be read ({exc.strerror or exc})") from None
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as exc:
            raise PerceptLabError(f"recipe is not valid JSON (line {exc.lineno}: {exc.msg})") from None

    def replace(self, **changes: Any) -> FinetuneRecipe:
        return replace(self, **changes)


@dataclass
class FinetuneResult:
    """A fine-tuned model (eval mode, best epoch's weights) and how it came about."""

    model: nn.Module
    level: str
    arch: str
    arch_config: dict
    base: str
    base_sha256: str
    lineage: list[dict]  # [{"name", "sha256"}] from the zoo model to the direct parent
    participants: list[str]
    recipe: FinetuneRecipe  # with ``trainable`` / ``indiv_trainable`` resolved
    history: list[dict]
    best_epoch: int
    data_hash: str
    split: dict
    counts: dict
    seconds: float
    feature_seconds: float
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    trunk_hash: str | None = None
    saved_name: str | None = None  # set by perceptlab.align.store.save_model
    saved_sha256: str | None = None

    @property
    def best(self) -> dict:
        return next(h for h in self.history if h["epoch"] == self.best_epoch)

    @property
    def root(self) -> str:
        """The zoo model at the start of the lineage (e.g. ``vgg``)."""
        return self.lineage[0]["name"] if self.lineage else self.base

    def metrics(self) -> dict:
        start = self.history[0]
        best = self.best
        return {
            "best_epoch": self.best_epoch,
            "val_loss": best["val_loss"],
            "val_accuracy": best["val_accuracy"],
            "start_val_loss": start["val_loss"],
            "start_val_accuracy": start["val_accuracy"],
            "n_val_trials": best["n_val"],
            "seconds": round(self.seconds, 2),
            "feature_seconds": round(self.feature_seconds, 2),
            "history": self.history,
        }

    def config(self, name: str) -> dict:
        """The JSON config stored beside the weights."""
        return {
            "name": name,
            "kind": "classifier",
            "arch": self.arch,
            "arch_config": self.arch_config,
            "num_classes": 10,
            "level": self.level,
            "base": self.base,
            "base_sha256": self.base_sha256,
            "lineage": self.lineage,
            "participants": self.participants,
            "data_hash": self.data_hash,
            "split": self.split,
            "recipe": self.recipe.to_dict(),
            "counts": self.counts,
            "metrics": self.metrics(),
            "created": self.created,
            "perceptlab_version": __version__,
        }


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


# ----------------------------------------------------------------------------- sources and schedule


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
    ``reference`` trials (seeds/004: omega * human distribution + (1 - omega) * uniform)."""
    c = data.n_classes
    if not recipe.soft_labels:
        return _one_hot(rows["response"].to_numpy(), c)
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


# ----------------------------------------------------------------------------- evaluation helpers


@torch.no_grad()
def _val_metrics(top: nn.Module, feats: torch.Tensor, rows: torch.Tensor, responses: torch.Tensor) -> dict:
    was = top.training
    top.eval()
    loss_sum, correct = 0.0, 0
    for s in range(0, len(rows), EVAL_CHUNK):
        logits = top(feats[rows[s : s + EVAL_CHUNK]])
        y = responses[s : s + EVAL_CHUNK].to(logits.device)
        loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
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
            **_val_metrics(top, feats["stimuli"], val_sidx, val_resp),
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
            **_val_metrics(top, feats["stimuli"], val_sidx, val_resp),
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


def _mnist_source(mnist: MnistData | None, n_classes: int) -> tuple[MnistData, _Source]:
    train = (mnist if mnist is not None else load_mnist()).train()
    if len(train) == 0:
        raise PerceptLabError("no MNIST training digits to mix in", fix="use a MNIST source with training digits")
    return train, _Source("mnist", "mnist", torch.arange(len(train)), _one_hot(train.labels, n_classes))


def _rows_tensor(rows) -> torch.Tensor:
    return torch.tensor(rows["sidx"].to_numpy(np.int64), dtype=torch.long)


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
