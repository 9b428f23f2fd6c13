"""The guided boundary sampler: universal-guidance DDPM sampling with resampling rounds.

At each inference step t and each of R resampling rounds (DESIGN §2):

1. predict eps and x0_hat = (x_t - sqrt(1 - ab_t) eps) / sqrt(ab_t), clamped to [-1, 1] with a
   straight-through clamp (the clipped value, the identity gradient: a fully clipped image still gets
   a gradient, never NaN);
2. take the gradient of the guidance loss L(x0_hat) with respect to x_t (``grad="full"``, through the
   denoiser) or with respect to x0_hat scaled by 1/sqrt(ab_t) (``grad="x0"``, eps held constant: no
   backpropagation through the denoiser);
3. optionally blur it (``smooth``, a Gaussian in pixels), then normalise it per image to norm
   sqrt(784) * sigma_t, sigma_t = sqrt(1 - ab_t) the noise level of x_t, with an epsilon in the
   denominator;
4. x_{t-1} = DDPM update (``DDPMScheduler.step`` with the clamped x0_hat) - gamma * that gradient;
5. between rounds, push x_{t-1} back to x_t with fresh noise: x_t = sqrt(1 - beta_t) x_{t-1} +
   sqrt(beta_t) eps, beta_t = 1 - ab_t / ab_prev the beta of the strided step.

The last step runs one round only (its step size is ~0). The ``reference`` preset switches steps 1, 3,
5 and the last-step rule to the public reference code's choices (``clamp="clip"``, ``step_size=
"posterior"``, ``renoise_scale="beta"``, ``final_rounds=True``; see ``sampler_settings``), so that the
published loop can be measured beside this one. Every image has its own seed and random
generator, so image i of a batch is reproduced alone from its seed. An image whose values turn NaN or
infinite is zeroed, marked invalid with the reason, and the rest of the batch goes on.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from diffusers import DDPMScheduler
from torch import nn

from perceptlab.engine.fusion import fuse_conv_bn
from perceptlab.engine.guidance import Guidance, build_guidance
from perceptlab.engine.prior import pair_labels
from perceptlab.engine.registry import Registry
from perceptlab.engine.sampler_settings import (  # noqa: F401  (re-exported: the settings live beside the loop)
    CLAMPS,
    CONDITIONS,
    DEFAULT_PRESET,
    GRAD_MODES,
    LOOP_FIELDS,
    MAX_STEPS,
    PRESETS,
    RENOISES,
    SPACINGS,
    STEP_SIZES,
    SamplerSettings,
    preset_filter,
    preset_values,
)

PIXELS = 28 * 28
NORM_EPS = 1e-8


@dataclass
class SampleResult:
    """Final images in [-1, 1] (B, 1, 28, 28) on the CPU (zeros where invalid), the valid mask, why each
    invalid image was dropped ("" for valid ones) and the per-image seeds."""

    images: torch.Tensor
    valid: torch.Tensor
    reasons: list[str]
    seeds: list[int]


@dataclass
class GuidedGradient:
    """One guided evaluation at x_t: the normalised gradient and what was computed on the way."""

    grad: torch.Tensor  # (B, 1, 28, 28), per-image norm sqrt(784) * sigma_t (0 where the gradient is 0)
    eps: torch.Tensor  # predicted noise, consistent with the clamped x0 (detached)
    x0: torch.Tensor  # clamped x0_hat (detached)
    loss: torch.Tensor  # per-image guidance loss (detached)
    diagnostics: dict[str, torch.Tensor]  # model name -> probs (B, 10) or judge scores (B,)


def normalize_per_image(grad: torch.Tensor, norm: float | torch.Tensor, eps: float = NORM_EPS) -> torch.Tensor:
    """Scale each image's gradient to the given L2 norm (``eps`` keeps zero gradients at zero)."""
    n = grad.flatten(1).norm(dim=1).view(-1, *([1] * (grad.ndim - 1)))
    return grad * (norm / (n + eps))


def step_beta(scheduler: DDPMScheduler, t: torch.Tensor | int) -> torch.Tensor:
    """beta of a strided inference step: 1 - ab_t / ab_prev (ab_prev = 1 after the last step)."""
    prev = int(scheduler.previous_timestep(t))
    ab = scheduler.alphas_cumprod
    ab_prev = ab[prev] if prev >= 0 else torch.tensor(1.0)
    return 1 - ab[int(t)] / ab_prev


def per_image_noise(shape: Sequence[int], generators: Sequence[torch.Generator], device: torch.device) -> torch.Tensor:
    """Standard normal noise, image i drawn from generator i."""
    return torch.cat([torch.randn((1, *shape[1:]), generator=g, device=device) for g in generators])


def renoise(
    x_prev: torch.Tensor,
    beta: torch.Tensor | float,
    generators: Sequence[torch.Generator],
    noise_var: torch.Tensor | float | None = None,
) -> torch.Tensor:
    """x_t = sqrt(1 - beta) x_{t-1} + sqrt(beta) eps (one forward step of the strided chain); with
    ``noise_var`` the noise has that variance instead of beta (``beta**2``: the reference code's scale)."""
    beta = torch.as_tensor(beta, dtype=x_prev.dtype, device=x_prev.device)
    var = beta if noise_var is None else torch.as_tensor(noise_var, dtype=x_prev.dtype, device=x_prev.device)
    noise = per_image_noise(x_prev.shape, generators, x_prev.device)
    return torch.sqrt(1 - beta) * x_prev + torch.sqrt(var) * noise


def posterior_std(scheduler: DDPMScheduler, t: torch.Tensor | int) -> torch.Tensor:
    """The DDPM posterior standard deviation of a strided step: sqrt((1 - ab_prev) / (1 - ab_t) * beta)."""
    prev = int(scheduler.previous_timestep(t))
    ab = scheduler.alphas_cumprod
    ab_prev = ab[prev] if prev >= 0 else torch.tensor(1.0)
    var = (1 - ab_prev) / (1 - ab[int(t)]) * (1 - ab[int(t)] / ab_prev)
    return var.clamp(min=1e-20).sqrt()


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blur (B, 1, H, W) with a separable Gaussian of std ``sigma`` pixels (reflect padding); 0 = as is."""
    if sigma <= 0:
        return x
    radius = max(1, math.ceil(2.5 * sigma))
    r = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (r / sigma) ** 2)
    k = k / k.sum()
    x = torch.nn.functional.pad(x, (radius, radius, radius, radius), mode="reflect")
    x = torch.nn.functional.conv2d(x, k.view(1, 1, 1, -1))
    return torch.nn.functional.conv2d(x, k.view(1, 1, -1, 1))


def guided_gradient(
    prior: nn.Module,
    guidance: Guidance,
    x_t: torch.Tensor,
    t: torch.Tensor,
    alpha_bar: torch.Tensor,
    grad: str = "full",
    class_labels: torch.Tensor | None = None,
    sigma: torch.Tensor | float | None = None,
    clamp: str = "straight_through",
    smooth: float = 0.0,
) -> GuidedGradient:
    """Predict eps and x0_hat at x_t and return the guidance gradient normalised per image to
    sqrt(784) * ``sigma`` (default: sqrt(1 - alpha_bar), the noise level of x_t); ``smooth`` > 0 blurs
    it first (a Gaussian of that std in pixels), which keeps its stroke-scale part and drops the
    pixel-scale part that only the guide responds to."""
    if grad not in GRAD_MODES:
        raise ValueError(f"grad must be one of {GRAD_MODES}, not {grad!r}")
    sa, s1 = alpha_bar.sqrt(), (1 - alpha_bar).sqrt()
    x = x_t.detach().requires_grad_(True)
    with torch.enable_grad():
        if grad == "full":
            eps = prior(x, t, class_labels)
        else:
            with torch.no_grad():
                eps = prior(x, t, class_labels)
        x0 = (x - s1 * eps) / sa
        if clamp == "clip":
            x0 = x0.clamp(-1, 1)  # clipped pixels get no gradient (the reference code's clip_sample)
        else:
            x0 = x0 + (x0.clamp(-1, 1) - x0).detach()  # straight-through clamp
        loss, diagnostics = guidance.evaluate(x0)
        (g,) = torch.autograd.grad(loss.sum(), x)
    x0 = x0.detach()
    return GuidedGradient(
        grad=normalize_per_image(gaussian_blur(g, smooth), math.sqrt(PIXELS) * (s1 if sigma is None else sigma)),
        eps=(x_t.detach() - sa * x0) / s1,
        x0=x0,
        loss=loss.detach(),
        diagnostics=diagnostics,
    )


def inference_timesteps(steps: int, spacing: str = "trailing", train_steps: int = MAX_STEPS) -> list[int] | None:
    """The custom timesteps of a spacing, decreasing and distinct (``None`` for "trailing", which the
    scheduler spaces itself)."""
    if spacing not in SPACINGS:
        raise ValueError(f"spacing must be one of {SPACINGS}, not {spacing!r}")
    if spacing == "trailing":
        return None
    if spacing == "leading":
        stride = train_steps // steps
        return [k * stride for k in range(steps)][::-1]
    ts = [round((train_steps - 1) * (1 - k / steps) ** 2) for k in range(steps)]
    for i in range(len(ts) - 2, -1, -1):  # distinct: each step at least one below the previous
        ts[i] = max(ts[i], ts[i + 1] + 1)
    return ts


def _drop_nonfinite(
    x: torch.Tensor, loss: torch.Tensor, valid: torch.Tensor, reasons: list[str], where: str
) -> torch.Tensor:
    """Zero images whose values or guidance loss are NaN/inf and invalidate them, recording why
    (``valid`` and ``reasons`` are updated in place)."""
    bad = ~torch.isfinite(x).flatten(1).all(dim=1) | ~torch.isfinite(loss)
    if not bad.any():
        return x
    for i in (bad & valid).nonzero()[:, 0].tolist():
        reasons[i] = f"non-finite values (NaN/inf) at {where}; image dropped"
    valid &= ~bad
    return torch.where(bad.view(-1, 1, 1, 1), torch.zeros_like(x), x)


def guided_sample(
    prior: nn.Module,
    guidance: Guidance,
    seeds: Sequence[int],
    *,
    steps: int = 50,
    resample: int = 5,
    gamma: float = 0.1,
    grad: str = "full",
    class_labels: torch.Tensor | None = None,
    scheduler: DDPMScheduler | None = None,
    spacing: str = "trailing",
    step_size: str = "marginal",
    renoise_scale: str = "sqrt_beta",
    clamp: str = "straight_through",
    final_rounds: bool = False,
    smooth: float = 0.0,
    free_steps: int = 0,
) -> Generator[dict[str, Any], None, SampleResult]:
    """Guided DDPM sampling of ``len(seeds)`` images; a generator.

    Yields after every inference step ``{"kind": "step", "step", "total", "t", "x0", "probs",
    "judge", "loss", "valid"}``: x0 is the clamped x0_hat preview (B, 1, 28, 28) on the CPU, probs maps
    each guiding classifier to its probabilities (B, 10) on x0_hat, judge the judge scores (B,) when the
    judge guides, loss the mean guidance loss of the valid images. Closing the generator stops the work
    at once. Returns a ``SampleResult``.
    """
    device = next(prior.parameters()).device
    scheduler = scheduler or prior.make_scheduler()
    custom = inference_timesteps(steps, spacing, scheduler.config.num_train_timesteps)
    if custom is None:
        scheduler.set_timesteps(steps, device=device)
    else:
        scheduler.set_timesteps(timesteps=custom, device=device)
    timesteps = scheduler.timesteps
    alphas_cumprod = scheduler.alphas_cumprod.to(device)
    gens = [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]
    batch = len(gens)
    if class_labels is not None:
        class_labels = class_labels.to(device)
    x = per_image_noise((batch, 1, 28, 28), gens, device)
    valid = torch.ones(batch, dtype=torch.bool, device=device)
    reasons = [""] * batch
    for k, t in enumerate(timesteps):
        ab_t = alphas_cumprod[t]
        beta = step_beta(scheduler, t).to(device)
        sigma = posterior_std(scheduler, t).to(device) if step_size == "posterior" else None
        noise_beta = beta**2 if renoise_scale == "beta" else beta  # renoise() takes the variance
        free = k >= len(timesteps) - free_steps  # unguided: the denoiser alone cleans up
        rounds = 1 if free or (k == len(timesteps) - 1 and not final_rounds) else resample
        for r in range(rounds):
            step_grad = "x0" if free else grad  # a free step uses no gradient: skip the denoiser's backward pass
            out = guided_gradient(prior, guidance, x, t, ab_t, step_grad, class_labels, sigma, clamp, smooth)
            with torch.no_grad():
                prev = scheduler.step(out.eps, t, x, generator=gens).prev_sample
                if not free:
                    prev = prev - gamma * out.grad
                where = f"step {k + 1}/{len(timesteps)}, round {r + 1}"
                prev = _drop_nonfinite(prev, out.loss, valid, reasons, where)
                x = renoise(prev, beta, gens, noise_beta) if r < rounds - 1 else prev
        keep = valid.view(-1, 1, 1, 1)
        diag = {name: v.cpu() for name, v in out.diagnostics.items()}
        valid_loss = out.loss[valid]
        yield {
            "kind": "step",
            "step": k + 1,
            "total": len(timesteps),
            "t": int(t),
            "x0": torch.where(keep, out.x0.nan_to_num(0.0), 0.0).cpu(),
            "probs": {name: v for name, v in diag.items() if v.ndim == 2},
            "judge": next((v for v in diag.values() if v.ndim == 1), None),
            "loss": valid_loss.mean().item() if len(valid_loss) else float("nan"),
            "valid": valid.cpu().clone(),
        }
    images = torch.where(valid.view(-1, 1, 1, 1), x.clamp(-1, 1), 0.0).cpu()
    return SampleResult(images=images, valid=valid.cpu(), reasons=reasons, seeds=[int(s) for s in seeds])


@dataclass
class SamplerModels:
    """The models a job guides with, loaded once per job."""

    prior: nn.Module
    classifier: nn.Module
    classifier2: nn.Module | None
    judge: nn.Module | None
    device: torch.device
    ensemble: dict[str, nn.Module] = field(default_factory=dict)


def load_models(settings: SamplerSettings, registry: Registry, device: torch.device | str) -> SamplerModels:
    """Load the prior, guiding classifier(s) and (when it guides) the judge from the registry."""
    device = torch.device(device)

    def guide(name: str, kind: str) -> nn.Module:
        # a private copy with the batch norms folded in (the registry's cached instance is shared with
        # fine-tuning and scoring, which need the architecture as saved)
        return fuse_conv_bn(copy.deepcopy(registry.load(name, device, kind=kind)))

    return SamplerModels(
        prior=registry.load(settings.prior, device, kind="prior"),
        classifier=guide(settings.classifier, "classifier"),
        classifier2=guide(settings.classifier2, "classifier") if settings.mode == "controversial" else None,
        judge=guide(settings.judge, "judge") if settings.judge_weight > 0 else None,
        device=device,
        ensemble={n: guide(n, "classifier") for n in settings.ensemble if n != settings.classifier},
    )


def either_class(seed: int) -> int:
    """0 (class a) or 1 (class b) for condition "either": a bit of a hash of the image's seed, so that an
    image is reproduced alone from its seed and the choice does not follow the cycle of target pairs."""
    return ((int(seed) * 2654435761) % 2**32) >> 31


def condition_labels(
    settings: SamplerSettings, pairs: Sequence[tuple[int, int]], seeds: Sequence[int] | None = None
) -> torch.Tensor | None:
    """Class labels for the prior per image, from ``settings.condition`` (None = unconditional);
    ``seeds`` (one per image) decide condition "either"."""
    cond = settings.condition
    if cond is None:
        return None
    if cond == "either":
        if seeds is None or len(seeds) != len(pairs):
            raise ValueError("condition 'either' needs one seed per image")
        return torch.tensor([p[either_class(s)] for p, s in zip(pairs, seeds)], dtype=torch.long)
    if cond in ("a", "b"):
        return torch.tensor([p[0] if cond == "a" else p[1] for p in pairs], dtype=torch.long)
    if cond == "pair":
        a = torch.tensor([p[0] for p in pairs], dtype=torch.long)
        b = torch.tensor([p[1] for p in pairs], dtype=torch.long)
        return pair_labels(a, b)
    return torch.full((len(pairs),), int(cond), dtype=torch.long)


def sample_batch(
    settings: SamplerSettings,
    models: SamplerModels,
    pairs: Sequence[tuple[int, int]],
    seeds: Sequence[int],
    reference: torch.Tensor | None = None,
) -> Generator[dict[str, Any], None, SampleResult]:
    """Sample one batch: image i aims at ``pairs[i]`` and uses ``seeds[i]`` (see ``guided_sample``)."""
    if len(pairs) != len(seeds):
        raise ValueError(f"{len(pairs)} pairs but {len(seeds)} seeds")
    device = models.device
    a = torch.tensor([p[0] for p in pairs], dtype=torch.long, device=device)
    b = torch.tensor([p[1] for p in pairs], dtype=torch.long, device=device)
    guidance = build_guidance(
        settings.mode,
        a,
        b,
        models.classifier,
        models.classifier2,
        judge=models.judge,
        judge_weight=settings.judge_weight,
        reference=reference,
        alpha=settings.alpha,
        names=(settings.classifier, settings.classifier2 or ""),
        judge_name=settings.judge,
        ensemble=models.ensemble,
    )
    return (
        yield from guided_sample(
            models.prior,
            guidance,
            seeds,
            steps=settings.steps,
            resample=settings.resample,
            gamma=settings.gamma,
            grad=settings.grad,
            class_labels=condition_labels(settings, pairs, seeds),
            spacing=settings.spacing,
            step_size=settings.step_size,
            renoise_scale=settings.renoise,
            clamp=settings.clamp,
            final_rounds=settings.final_rounds,
            smooth=settings.smooth,
            free_steps=settings.free_steps,
        )
    )
