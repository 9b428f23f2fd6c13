"""Guidance terms: per-image losses, gradient directions, frozen models."""

import pytest
import torch

from perceptlab.engine.classifiers import build
from perceptlab.engine.guidance import (
    ControversialLoss,
    Guidance,
    JudgePenalty,
    PixelConstraint,
    UncertaintyLoss,
    build_guidance,
)


def _classifier(seed: int, arch: str = "logreg") -> torch.nn.Module:
    torch.manual_seed(seed)
    return build(arch).eval()


def _judge(bias: float) -> torch.nn.Module:
    torch.manual_seed(3)
    model = build("logreg", {"num_outputs": 1}).eval()
    with torch.no_grad():
        model.linear.weight.mul_(0.5)
        model.linear.bias.fill_(bias)
    return model


def _images(n: int = 4, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand((n, 1, 28, 28), generator=g) * 2 - 1


def _descend(term, x: torch.Tensor, lr: float = 0.05) -> torch.Tensor:
    x = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(term(x).sum(), x)
    return (x - lr * g / g.flatten(1).norm(dim=1).view(-1, 1, 1, 1)).detach()


A = torch.tensor([3, 4, 1, 7])
B = torch.tensor([5, 9, 7, 2])


def test_uncertainty_loss_is_cross_entropy_to_half_half_per_image():
    clf = _classifier(0)
    x = _images()
    loss, diag = UncertaintyLoss(clf, A, B, name="vgg").evaluate(x)
    logp = torch.log_softmax(clf(x), 1)
    expected = -0.5 * (logp[torch.arange(4), A] + logp[torch.arange(4), B])
    assert loss.shape == (4,)
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(diag["vgg"], logp.exp())
    # an int pair broadcasts over the batch
    torch.testing.assert_close(UncertaintyLoss(clf, 3, 5)(x)[0], expected[0])


def test_uncertainty_step_moves_toward_the_balanced_pair():
    clf, x = _classifier(0), _images()
    term = UncertaintyLoss(clf, A, B)
    x2 = _descend(term, x)
    assert (term(x2) < term(x)).all()
    p, p2 = torch.softmax(clf(x), 1), torch.softmax(clf(x2), 1)
    idx = torch.arange(4)
    # the product p(a) p(b) (maximal at the 0.5/0.5 boundary) grows for every image
    assert (p2[idx, A] * p2[idx, B] > p[idx, A] * p[idx, B]).all()


def test_controversial_step_raises_p1_a_times_p2_b():
    c1, c2, x = _classifier(0), _classifier(1, "mlp"), _images()
    term = ControversialLoss(c1, c2, A, B, names=("c1", "c2"))
    loss, diag = term.evaluate(x)
    idx = torch.arange(4)
    l1, l2 = torch.log_softmax(c1(x), 1), torch.log_softmax(c2(x), 1)
    torch.testing.assert_close(loss, -(l1[idx, A] + l2[idx, B]))
    assert set(diag) == {"c1", "c2"}
    x2 = _descend(term, x)
    assert (term(x2) < loss).all()


def test_judge_penalty_formula_and_direction():
    low = _judge(-3.0)  # scores ~0.05: penalty active
    x = _images()
    term = JudgePenalty(low)
    loss, diag = term.evaluate(x)
    s = torch.sigmoid(low(x)[:, 0])
    torch.testing.assert_close(loss, 10 * torch.clamp((1 - s) ** 2, min=0.5))
    torch.testing.assert_close(diag["judge"], s)
    x2 = _descend(term, x, lr=0.5)
    assert (term(x2) < loss).all()


def test_judge_penalty_is_flat_for_digit_like_images():
    high = _judge(3.0)  # scores ~0.95: (1 - s)^2 < 0.5, floor reached
    x = _images().requires_grad_(True)
    loss = JudgePenalty(high)(x)
    torch.testing.assert_close(loss, torch.full((4,), 5.0))
    (g,) = torch.autograd.grad(loss.sum(), x)
    assert g.abs().max() == 0


def test_pixel_constraint_pulls_toward_the_reference():
    ref = _images(1, seed=9)
    x = _images()
    term = PixelConstraint(ref)
    assert term.alpha == 50.0
    torch.testing.assert_close(term(x), 50 * ((x - ref) ** 2).flatten(1).mean(1))
    x2 = _descend(term, x, lr=1.0)
    assert ((x2 - ref).flatten(1).norm(dim=1) < (x - ref).flatten(1).norm(dim=1)).all()


def test_weighted_sum_and_builder():
    clf, judge = _classifier(0), _judge(-3.0)
    x = _images()
    g = build_guidance("uncertainty", A, B, clf, judge=judge, judge_weight=2.0, reference=x[:1], alpha=50)
    loss, diag = g.evaluate(x)
    expected = UncertaintyLoss(clf, A, B)(x) + 2.0 * JudgePenalty(judge)(x) + PixelConstraint(x[:1])(x)
    torch.testing.assert_close(loss, expected)
    assert diag["classifier"].shape == (4, 10) and diag["judge"].shape == (4,)
    only = build_guidance("uncertainty", A, B, clf, judge=judge, judge_weight=0.0)
    assert len(only.terms) == 1
    with pytest.raises(ValueError, match="second classifier"):
        build_guidance("controversial", A, B, clf)
    with pytest.raises(ValueError):
        Guidance([])


def test_models_are_frozen_no_weight_gradients():
    clf, judge = _classifier(0, "mlp"), _judge(-3.0)
    clf.train()
    g = build_guidance("uncertainty", A, B, clf, judge=judge)
    x = _images().requires_grad_(True)
    g(x).sum().backward()
    assert not clf.training
    assert all(not p.requires_grad and p.grad is None for p in [*clf.parameters(), *judge.parameters()])
    assert x.grad is not None and torch.isfinite(x.grad).all()
