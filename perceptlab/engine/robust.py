"""The adversarially robust classifier (registry name ``robust``) and projected gradient methods on it.

L-WISE (seed 003) rests on one premise: the input gradients of an adversarially trained classifier look
like strokes, so its logits measure how recognisable an image is and gradient steps on them change
images the way a person would see them change. Everything here works in the classifiers' input range,
pixels in [-1, 1] (an L2 distance of ε in these units is ε/2 in [0, 1] pixel units).

- ``RobustCNN``: the small CNN that is adversarially trained (conv5-16, pool, conv5-32, pool, FC 128).
- ``pgd``: projected gradient ascent of any per-image objective within an L2 or L∞ ball of radius ε
  around the images, clipped to the pixel range. Adversarial training and the robust accuracy maximise
  the cross-entropy; enhancement maximises the true class's logit; ``harder`` images minimise it.
- ``input_gradients``: the gradient of the true-class logit with respect to the pixels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from perceptlab.errors import PerceptLabError

NORMS = ("l2", "linf")

# The shipped robust model's threat model (its recipe in train_classifiers.RECIPES uses these).
ROBUST_EPS = 1.5
ROBUST_NORM = "l2"
ROBUST_TRAIN_STEPS = 7
ROBUST_EVAL_STEPS = 20


class RobustCNN(nn.Module):
    """conv5-16, pool, conv5-32, pool, FC 128, 10 logits (ReLU, no batch norm, no dropout: the PGD
    attack and the training step see the same network)."""

    def __init__(self, num_outputs: int = 10, width: int = 16, hidden: int = 128):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        )  # fmt: skip
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(2 * width * 7 * 7, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, num_outputs)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def check_norm(norm: str) -> str:
    if norm not in NORMS:
        raise PerceptLabError(f"unknown norm {norm!r}", fix=f"choose one of: {', '.join(NORMS)}")
    return norm


def _per_image_norm(t: torch.Tensor, norm: str) -> torch.Tensor:
    flat = t.flatten(1)
    n = flat.norm(dim=1) if norm == "l2" else flat.abs().amax(dim=1)
    return n.clamp_min(1e-12).view(-1, *([1] * (t.dim() - 1)))


def _project(delta: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    if norm == "linf":
        return delta.clamp(-eps, eps)
    return delta * (eps / _per_image_norm(delta, "l2")).clamp(max=1.0)


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    objective,
    eps: float,
    norm: str = "l2",
    steps: int = 10,
    step_size: float | None = None,
    random_start: bool = False,
    generator: torch.Generator | None = None,
    lo: float = -1.0,
    hi: float = 1.0,
) -> torch.Tensor:
    """Images within ε (``norm``) of ``x`` that maximise ``objective(logits)`` (a per-image tensor (N,))
    by ``steps`` normalised gradient steps of ``step_size`` (default 2.5 ε / steps), each followed by
    the projection onto the ball and the pixel range [lo, hi]. ε = 0 or 0 steps returns ``x``.
    The model's parameters receive no gradient."""
    check_norm(norm)
    x = x.detach()
    if eps <= 0 or steps <= 0:
        return x.clone()
    alpha = step_size if step_size is not None else 2.5 * eps / steps
    delta = torch.zeros_like(x)
    if random_start:
        noise = torch.randn(x.shape, generator=generator).to(x)
        delta = _project(noise * eps if norm == "linf" else noise, eps, norm)
        if norm == "l2":
            delta = delta * (eps / _per_image_norm(delta, "l2"))
            r = torch.rand(len(x), generator=generator).to(x).view(-1, *([1] * (x.dim() - 1)))
            delta = delta * r
        delta = (x + delta).clamp(lo, hi) - x
    for _ in range(steps):
        delta.requires_grad_(True)
        with torch.enable_grad():
            value = objective(model(x + delta)).sum()
            (grad,) = torch.autograd.grad(value, delta)
        with torch.no_grad():
            step = grad.sign() if norm == "linf" else grad / _per_image_norm(grad, "l2")
            delta = _project(delta + alpha * step, eps, norm)
            delta = (x + delta).clamp(lo, hi) - x
    return (x + delta).detach()


def cross_entropy_objective(labels: torch.Tensor):
    return lambda logits: F.cross_entropy(logits, labels, reduction="none")


def logit_objective(labels: torch.Tensor, sign: float = 1.0):
    """The (signed) logit of each image's class: +1 enhances, -1 makes harder."""
    return lambda logits: sign * logits.gather(1, labels.view(-1, 1))[:, 0]


def adversarial_examples(model, x, y, eps, norm, steps, generator=None) -> torch.Tensor:
    """PGD-``steps`` adversarial examples (cross-entropy ascent with a random start) for training and
    for the robust accuracy."""
    return pgd(model, x, cross_entropy_objective(y), eps, norm, steps, random_start=True, generator=generator)


def robust_accuracy(model, images, labels, eps, norm, steps, batch_size: int = 500, seed: int = 0) -> tuple[float, float]:
    """(clean accuracy, accuracy under PGD-``steps`` at ε) of ``model`` on tensors images (N,1,28,28), labels."""
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    clean = adv = 0
    for s in range(0, len(labels), batch_size):
        x, y = images[s : s + batch_size], labels[s : s + batch_size]
        with torch.no_grad():
            clean += (model(x).argmax(1) == y).sum().item()
        xa = adversarial_examples(model, x, y, eps, norm, steps, gen)
        with torch.no_grad():
            adv += (model(xa).argmax(1) == y).sum().item()
    n = max(1, len(labels))
    return clean / n, adv / n


def input_gradients(model: nn.Module, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """d logit_true / d pixels, shape of ``x``."""
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        value = logit_objective(labels)(model(x)).sum()
        (grad,) = torch.autograd.grad(value, x)
    return grad.detach()
