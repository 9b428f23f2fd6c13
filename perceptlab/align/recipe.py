"""The settings of a fine-tuning run and its in-memory result (split out of
:mod:`perceptlab.align.finetune`, which re-exports both).

- :class:`FinetuneRecipe` — every setting of a fine-tuning run (defaults: the paper's); round-trips
  through JSON.
- :class:`FinetuneResult` — a fine-tuned model and how it came about (saved by
  :mod:`perceptlab.align.store`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from torch import nn

from perceptlab import __version__
from perceptlab.align.layers import TRAINABLE
from perceptlab.errors import PerceptLabError

LEVELS = ("group", "individual")
SELECT_BY = ("val_loss", "val_accuracy")


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
