"""Pixel constraint: stay close to a reference image."""

from __future__ import annotations

import torch

DEFAULT_ALPHA = 50.0


class PixelConstraint:
    """``alpha * mean((x0 - reference)^2)`` per image (the paper's MSE constraint, alpha = 50).

    ``reference`` is in [-1, 1], shape (1, 28, 28), (28, 28) or one per image (B, 1, 28, 28).
    """

    def __init__(self, reference: torch.Tensor, alpha: float = DEFAULT_ALPHA):
        self.reference = reference.reshape(-1, 1, 28, 28).float()
        self.alpha = alpha

    def evaluate(self, x0: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Per-image loss (B,); no diagnostics."""
        ref = self.reference.to(x0.device)
        return self.alpha * ((x0 - ref) ** 2).flatten(1).mean(1), {}

    def __call__(self, x0: torch.Tensor) -> torch.Tensor:
        return self.evaluate(x0)[0]
