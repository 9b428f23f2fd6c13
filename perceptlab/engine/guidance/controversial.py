"""Controversial guidance: classifier 1 should say a, classifier 2 should say b."""

from __future__ import annotations

import torch
from torch import nn

from perceptlab.engine.guidance.uncertainty import as_labels


class ControversialLoss:
    """CE(classifier1, a) + CE(classifier2, b), per image; ``a``/``b`` are ints or (B,) tensors."""

    def __init__(
        self,
        classifier1: nn.Module,
        classifier2: nn.Module,
        a: int | torch.Tensor,
        b: int | torch.Tensor,
        names: tuple[str, str] = ("classifier", "classifier2"),
    ):
        self.classifier1 = classifier1.eval().requires_grad_(False)
        self.classifier2 = classifier2.eval().requires_grad_(False)
        self.a, self.b, self.names = a, b, names

    def evaluate(self, x0: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Per-image loss (B,) and both classifiers' probabilities (detached)."""
        logp1 = torch.log_softmax(self.classifier1(x0), dim=1)
        logp2 = torch.log_softmax(self.classifier2(x0), dim=1)
        a = as_labels(self.a, len(x0), x0.device)[:, None]
        b = as_labels(self.b, len(x0), x0.device)[:, None]
        loss = -(logp1.gather(1, a) + logp2.gather(1, b))[:, 0]
        return loss, {self.names[0]: logp1.detach().exp(), self.names[1]: logp2.detach().exp()}

    def __call__(self, x0: torch.Tensor) -> torch.Tensor:
        return self.evaluate(x0)[0]
