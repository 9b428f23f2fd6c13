"""Uncertainty guidance: one classifier, probabilities split evenly between the pair (a, b)."""

from __future__ import annotations

import torch
from torch import nn


def as_labels(value: int | torch.Tensor, batch: int, device: torch.device) -> torch.Tensor:
    """A class index or a (B,) tensor of them -> a long tensor of shape (B,) on ``device``."""
    labels = torch.as_tensor(value, dtype=torch.long, device=device)
    return labels.expand(batch) if labels.ndim == 0 else labels


class UncertaintyLoss:
    """Cross-entropy between the classifier's softmax and q = 0.5 on a, 0.5 on b (per image).

    ``a`` and ``b`` are class indices or (B,) tensors, so every image can have its own pair. The
    classifier is put in eval mode with frozen parameters.
    """

    def __init__(self, classifier: nn.Module, a: int | torch.Tensor, b: int | torch.Tensor, name: str = "classifier"):
        self.classifier = classifier.eval().requires_grad_(False)
        self.a, self.b, self.name = a, b, name

    def evaluate(self, x0: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Per-image loss (B,) and the classifier's probabilities (detached)."""
        logp = torch.log_softmax(self.classifier(x0), dim=1)
        a = as_labels(self.a, len(x0), x0.device)[:, None]
        b = as_labels(self.b, len(x0), x0.device)[:, None]
        loss = -0.5 * (logp.gather(1, a) + logp.gather(1, b))[:, 0]
        return loss, {self.name: logp.detach().exp()}

    def __call__(self, x0: torch.Tensor) -> torch.Tensor:
        return self.evaluate(x0)[0]
