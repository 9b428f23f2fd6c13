"""Small random affine augmentation for digits in [-1, 1] (black background stays black)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def random_affine(
    x: torch.Tensor,
    generator: torch.Generator | None = None,
    max_rotate_deg: float = 10.0,
    max_shift_px: float = 2.0,
    scale_range: tuple[float, float] = (0.9, 1.1),
) -> torch.Tensor:
    """Rotate, shift and scale each image a little; background pads with -1 (black)."""
    n = x.shape[0]

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return torch.rand(n, generator=generator).mul(hi - lo).add(lo)

    angle = uniform(-max_rotate_deg, max_rotate_deg) * math.pi / 180
    scale = uniform(*scale_range)
    shift = max_shift_px * 2 / x.shape[-1]
    tx, ty = uniform(-shift, shift), uniform(-shift, shift)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1).to(x)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x + 1, grid, align_corners=False, padding_mode="zeros") - 1
