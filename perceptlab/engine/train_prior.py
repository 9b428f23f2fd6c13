"""Training loop of the diffusion prior (DDPM, epsilon prediction, min-SNR weighting, EMA).

``train_prior`` is a generator: it yields a small record per step and returns the path of the exported
EMA weights. Checkpoints (safetensors) let a stopped run resume exactly.
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import torch

from perceptlab.data.mnist import MnistData
from perceptlab.engine.checkpoint import has_checkpoint, load_checkpoint, save_checkpoint
from perceptlab.engine.prior import NULL_CLASS, DiTPrior, PriorConfig
from perceptlab.engine.weights import save_weights
from perceptlab.errors import PerceptLabError


@dataclass
class PriorTrainConfig:
    steps: int = 38_000
    batch_size: int = 128
    lr: float = 1e-3
    warmup: int = 500
    decay_start: int = 25_000  # constant rate until here, then cosine decay to 0 at ``steps``
    weight_decay: float = 0.0
    ema_decay: float = 0.999
    min_snr_gamma: float = 5.0
    cond_drop: float = 0.15  # share of each batch trained with the null class (unconditional)
    checkpoint_every: int = 250
    seed: int = 0


def learning_rate(step: int, config: PriorTrainConfig) -> float:
    """Rate for (0-based) ``step``: linear warm-up, constant, then cosine decay to 0 at ``config.steps``
    from ``config.decay_start`` on (no decay when ``decay_start >= steps``)."""
    lr = config.lr * min(1.0, (step + 1) / max(1, config.warmup))
    start = config.decay_start
    if start < config.steps and step >= start:
        progress = min(1.0, (step - start) / (config.steps - start))
        lr *= 0.5 * (1.0 + math.cos(math.pi * progress))
    return lr


def min_snr_weights(alphas_cumprod: torch.Tensor, t: torch.Tensor, gamma: float) -> torch.Tensor:
    """Per-sample loss weights for epsilon prediction: min(SNR, gamma) / SNR."""
    ac = alphas_cumprod[t]
    snr = ac / (1 - ac)
    return torch.clamp(snr, max=gamma) / snr


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    for pe, pm in zip(ema.parameters(), model.parameters()):
        pe.lerp_(pm, 1 - decay)


def _exported(config_path: Path) -> dict:
    """The config of the exported prior about to be replaced, or {} when there is none or it cannot be read."""
    try:
        cfg = json.loads(config_path.read_text())
    except (OSError, ValueError):
        return {}
    return cfg if isinstance(cfg, dict) else {}


def _quality_history(config_path: Path) -> list[dict]:
    """``metrics.quality_history`` of the exported prior being replaced (``perceptlab eval prior
    --record`` appends to it), or []."""
    metrics = _exported(config_path).get("metrics")
    return list(metrics.get("quality_history", [])) if isinstance(metrics, dict) else []


RECIPE_KEYS = ("steps", "batch_size", "lr", "warmup", "decay_start", "weight_decay", "ema_decay", "min_snr_gamma",
               "cond_drop")


def _recipe(config: PriorTrainConfig | dict) -> dict:
    """The settings that shape the weights (not the checkpoint interval or the seed)."""
    d = asdict(config) if isinstance(config, PriorTrainConfig) else config
    return {k: d.get(k) for k in RECIPE_KEYS}


def _earlier_phases(scalars: dict, step: int, config: PriorTrainConfig, config_path: Path) -> list[dict]:
    """The recipes the resumed run trained under before this call, oldest first: each phase is a recipe with
    the step it ran ``until``. A phase ends where a run is resumed with different settings (say a second
    phase at a lower rate and a higher ``cond_drop``). Checkpoints store their recipe; for one written before
    they did, the exported config beside ``out_path`` stands in when it was exported at the same step."""
    phases = list(scalars.get("phases", []))
    recipe = scalars.get("recipe")
    if recipe is None:
        training = _exported(config_path).get("training", {})
        if training.get("steps_done") == step:
            recipe, phases = _recipe(training), list(training.get("phases", []))
    if recipe is not None and recipe != _recipe(config) and step > (phases[-1]["until"] if phases else 0):
        if step >= config.steps:
            raise PerceptLabError(
                f"the prior run being resumed is at step {step:,}, and --steps {config.steps:,} leaves nothing to "
                "train with the new settings",
                f"ask for more steps (--steps above {step:,}), or start a new run with another --run-dir",
            )
        phases.append({**recipe, "until": step})
    return phases


def train_prior(
    data: MnistData,
    run_dir: Path,
    out_path: Path,
    config: PriorTrainConfig | None = None,
    prior_config: PriorConfig | None = None,
    device: torch.device | str = "cpu",
    max_minutes: float | None = None,
) -> Iterator[dict]:
    """Train (or resume) the prior on ``data`` (use ``data.train()``); yields per-step records."""
    config = config or PriorTrainConfig()
    if not 0.0 <= config.cond_drop <= 1.0:
        raise PerceptLabError(f"cond_drop = {config.cond_drop} is not a share", "use a value from 0 to 1 (default 0.15)")
    run_dir = Path(run_dir)
    ckpt = run_dir / "prior_checkpoint.safetensors"
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    model = DiTPrior(prior_config).to(device)
    ema = copy.deepcopy(model).requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = model.make_scheduler()
    acp = scheduler.alphas_cumprod.to(device)
    step, elapsed, phases = 0, 0.0, []
    if has_checkpoint(ckpt):
        scalars = load_checkpoint(ckpt, model, opt, ema=ema, generator=gen)
        step, elapsed = scalars["step"], scalars.get("elapsed_s", 0.0)
        phases = _earlier_phases(scalars, step, config, out_path.with_suffix(".json"))
    images, labels = data.tensors()
    n = len(labels)
    t_start = time.monotonic()
    elapsed0 = elapsed

    def export(final: bool) -> Path:
        cfg = {
            "name": out_path.stem,
            "kind": "prior",
            "arch": "dit",
            "arch_config": model.config.to_dict(),
            "training": {
                **asdict(config),
                **({"phases": phases} if phases else {}),
                "steps_done": step,
                "train_seconds": round(elapsed),
                "data": data.source,
                "data_fingerprint": data.fingerprint(),
                "n_train": n,
                "weights": "EMA",
                "complete": final,
            },
        }
        history = _quality_history(out_path.with_suffix(".json"))
        if history:  # measurements of earlier weights stay; the current weights have none yet
            cfg["metrics"] = {"quality_history": history}
        save_weights(ema.state_dict(), out_path, cfg)
        return out_path

    def checkpoint() -> None:
        scalars = {"step": step, "elapsed_s": elapsed, "recipe": _recipe(config), "phases": phases}
        save_checkpoint(ckpt, model, opt, scalars, ema=ema, generator=gen)

    model.train()
    try:
        while step < config.steps:
            idx = torch.randint(0, n, (config.batch_size,), generator=gen)
            x0 = images[idx].to(device)
            y = labels[idx].to(device)
            drop = torch.rand(config.batch_size, generator=gen) < config.cond_drop
            y = torch.where(drop.to(device), torch.full_like(y, NULL_CLASS), y)
            t = torch.randint(0, scheduler.config.num_train_timesteps, (config.batch_size,), generator=gen).to(device)
            noise = torch.randn(x0.shape, generator=gen).to(device)
            xt = scheduler.add_noise(x0, noise, t)
            lr = learning_rate(step, config)
            for g in opt.param_groups:
                g["lr"] = lr
            pred = model(xt, t, y)
            w = min_snr_weights(acp, t, config.min_snr_gamma)
            loss = (w * (pred - noise).pow(2).mean(dim=(1, 2, 3))).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            ema_update(ema, model, config.ema_decay if step > config.warmup else 0.0)
            step += 1
            elapsed = elapsed0 + time.monotonic() - t_start
            loss_value = loss.detach().item()
            yield {"step": step, "total": config.steps, "loss": loss_value, "lr": lr}
            if not math.isfinite(loss_value):
                raise FloatingPointError(f"prior training diverged at step {step} (loss {loss_value})")
            if step % config.checkpoint_every == 0:
                checkpoint()
                export(final=False)
            if max_minutes is not None and elapsed - elapsed0 > max_minutes * 60:
                break
    finally:
        if step > 0:
            checkpoint()
            export(final=step >= config.steps)
    return out_path
