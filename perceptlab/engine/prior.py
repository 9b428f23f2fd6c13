"""The diffusion prior: diffusers' ``DiTTransformer2DModel`` on 28x28x1 digits with a DDPM scheduler.

Class-conditional with one extra *null* class (index 10): ``class_labels=None`` samples unconditionally,
a digit samples that digit. The network predicts the noise (epsilon).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from diffusers import DDPMScheduler, DiTTransformer2DModel
from torch import nn

NUM_CLASSES = 10
NULL_CLASS = NUM_CLASSES
# A "pair label" conditions on the mean of two classes' embeddings: PAIR_BASE + a * PAIR_STRIDE + b.
PAIR_BASE = 1000
PAIR_STRIDE = 100


def pair_labels(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pair labels for ``DiTPrior``: each image conditioned halfway between classes a and b."""
    return PAIR_BASE + a.long() * PAIR_STRIDE + b.long()


def _mixed_embedding(table: nn.Embedding, labels: torch.Tensor) -> torch.Tensor:
    """``table(labels)``, where a pair label gives the mean of its two classes' rows."""
    pair = labels >= PAIR_BASE
    if not pair.any():
        return nn.functional.embedding(labels, table.weight)
    code = labels - PAIR_BASE
    a = torch.where(pair, code // PAIR_STRIDE, labels)
    b = torch.where(pair, code % PAIR_STRIDE, labels)
    return 0.5 * (nn.functional.embedding(a, table.weight) + nn.functional.embedding(b, table.weight))


@dataclass
class PriorConfig:
    """Architecture and noise schedule. Paper: patch 2, hidden 128 (8 heads x 16), 4 layers, 1000 steps."""

    patch_size: int = 4
    num_heads: int = 8
    head_dim: int = 16
    num_layers: int = 4
    sample_size: int = 28
    num_train_timesteps: int = 1000
    beta_schedule: str = "linear"
    beta_start: float = 1e-4
    beta_end: float = 0.02

    @classmethod
    def from_dict(cls, d: dict) -> "PriorConfig":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def to_dict(self) -> dict:
        return asdict(self)


def _bind_mixed(table: nn.Embedding):
    import types  # noqa: PLC0415

    return types.MethodType(_mixed_embedding, table)


class DiTPrior(nn.Module):
    """Epsilon-predicting DiT with a null class for unconditional sampling."""

    def __init__(self, config: PriorConfig | None = None):
        super().__init__()
        self.config = config or PriorConfig()
        c = self.config
        self.net = DiTTransformer2DModel(
            num_attention_heads=c.num_heads,
            attention_head_dim=c.head_dim,
            in_channels=1,
            out_channels=1,
            num_layers=c.num_layers,
            sample_size=c.sample_size,
            patch_size=c.patch_size,
            num_embeds_ada_norm=NUM_CLASSES + 1,
            norm_type="ada_norm_zero",
        )
        # Every AdaLN block has its own class table; let each also read pair labels (state dict unchanged).
        for name, module in self.net.named_modules():
            if isinstance(module, nn.Embedding) and name.endswith("class_embedder.embedding_table"):
                module.forward = _bind_mixed(module)

    def forward(self, x: torch.Tensor, t: torch.Tensor, class_labels: torch.Tensor | None = None) -> torch.Tensor:
        b = x.shape[0]
        if class_labels is None:
            class_labels = torch.full((b,), NULL_CLASS, dtype=torch.long, device=x.device)
        if t.ndim == 0:
            t = t.expand(b)
        return self.net(x, timestep=t, class_labels=class_labels).sample

    def make_scheduler(self) -> DDPMScheduler:
        return make_scheduler(self.config)


def make_scheduler(config: PriorConfig) -> DDPMScheduler:
    """The DDPM scheduler of a prior. ``clip_sample`` is off: the guided sampler clamps x0 itself.
    Trailing timestep spacing: the first of 50 inference steps is t = 999 (pure noise), not t = 980."""
    return DDPMScheduler(
        num_train_timesteps=config.num_train_timesteps,
        beta_schedule=config.beta_schedule,
        beta_start=config.beta_start,
        beta_end=config.beta_end,
        clip_sample=False,
        prediction_type="epsilon",
        variance_type="fixed_small",
        timestep_spacing="trailing",
    )


@torch.no_grad()
def sample(
    prior: DiTPrior,
    n: int,
    steps: int = 50,
    class_labels: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    batch_size: int = 250,
) -> torch.Tensor:
    """Plain (unguided) ancestral DDPM sampling; returns x0 in [-1, 1], shape (n, 1, 28, 28)."""
    prior.eval()
    scheduler = prior.make_scheduler()
    scheduler.set_timesteps(steps, device=device)
    out = []
    for start in range(0, n, batch_size):
        b = min(batch_size, n - start)
        x = torch.randn((b, 1, 28, 28), generator=generator, device=device)
        y = None if class_labels is None else class_labels[start : start + b].to(device)
        for t in scheduler.timesteps:
            eps = prior(x, t, y)
            x = scheduler.step(eps, t, x, generator=generator).prev_sample
        out.append(x.clamp(-1, 1))
    return torch.cat(out)
