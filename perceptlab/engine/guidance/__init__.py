"""Guidance terms for the boundary sampler, one per module, and their weighted sum.

Every term maps x0_hat (B, 1, 28, 28) in [-1, 1] to a per-image loss (B,) through ``term(x0)``;
``term.evaluate(x0)`` also returns detached diagnostics keyed by model name: class probabilities
(B, 10) for classifiers, digit-likeness scores (B,) for the judge. Model parameters are frozen, so
only the gradient with respect to the image is ever computed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import torch
from torch import nn

from perceptlab.engine.guidance.controversial import ControversialLoss
from perceptlab.engine.guidance.judge import JudgePenalty
from perceptlab.engine.guidance.pixel import DEFAULT_ALPHA, PixelConstraint
from perceptlab.engine.guidance.uncertainty import UncertaintyLoss

MODES = ("uncertainty", "controversial")

__all__ = [
    "MODES",
    "ControversialLoss",
    "Guidance",
    "GuidanceTerm",
    "JudgePenalty",
    "PixelConstraint",
    "UncertaintyLoss",
    "build_guidance",
]


class GuidanceTerm(Protocol):
    """What the sampler needs from a term."""

    def evaluate(self, x0: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]: ...


class Guidance:
    """A weighted sum of terms: ``loss(x0) = sum_k w_k * term_k(x0)`` per image."""

    def __init__(self, terms: list[tuple[float, GuidanceTerm]]):
        if not terms:
            raise ValueError("guidance needs at least one term")
        self.terms = terms

    def evaluate(self, x0: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total per-image loss (B,) and the merged diagnostics of all terms."""
        total = torch.zeros(len(x0), device=x0.device, dtype=x0.dtype)
        diagnostics: dict[str, torch.Tensor] = {}
        for weight, term in self.terms:
            loss, diag = term.evaluate(x0)
            total = total + weight * loss
            diagnostics.update(diag)
        return total, diagnostics

    def __call__(self, x0: torch.Tensor) -> torch.Tensor:
        return self.evaluate(x0)[0]


def build_guidance(
    mode: str,
    a: int | torch.Tensor,
    b: int | torch.Tensor,
    classifier: nn.Module,
    classifier2: nn.Module | None = None,
    judge: nn.Module | None = None,
    judge_weight: float = 1.0,
    reference: torch.Tensor | None = None,
    alpha: float = DEFAULT_ALPHA,
    names: tuple[str, str] = ("classifier", "classifier2"),
    judge_name: str = "judge",
    ensemble: Mapping[str, nn.Module] | None = None,
) -> Guidance:
    """The BAM loss of one mode, plus the judge penalty (``judge_weight`` > 0) and the pixel
    constraint (when ``reference`` is given). In uncertainty mode ``ensemble`` (name -> classifier)
    guides beside ``classifier``: the loss is the mean of their uncertainty losses, so the image is
    pushed onto a boundary that all of them share."""
    if mode == "uncertainty":
        guides = {names[0]: classifier, **(ensemble or {})}
        w = 1.0 / len(guides)
        terms: list[tuple[float, GuidanceTerm]] = [(w, UncertaintyLoss(m, a, b, n)) for n, m in guides.items()]
    elif mode == "controversial":
        if ensemble:
            raise ValueError("ensemble guidance is for uncertainty mode")
        if classifier2 is None:
            raise ValueError("controversial guidance needs a second classifier")
        terms = [(1.0, ControversialLoss(classifier, classifier2, a, b, names))]
    else:
        raise ValueError(f"unknown guidance mode {mode!r}; expected one of {MODES}")
    if judge is not None and judge_weight > 0:
        terms.append((judge_weight, JudgePenalty(judge, judge_name)))
    if reference is not None and alpha > 0:
        terms.append((1.0, PixelConstraint(reference, alpha)))
    return Guidance(terms)
