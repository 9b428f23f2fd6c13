"""The shipped robust classifier: hash-checked, as accurate as its model card says, and robust where a
standard model is not (a cheap PGD check on 200 hold-out digits)."""

import numpy as np
import pytest
import torch

from perceptlab.engine.registry import Registry, builtin_weights_dir


@pytest.fixture(scope="module")
def shipped():
    reg = Registry(builtin_weights_dir(), user_dir=builtin_weights_dir() / "_none")
    if "robust" not in reg.names("classifier"):
        pytest.skip("the robust weights are not in this checkout")
    return reg


def test_robust_card_and_attack(shipped, builtin_mnist):
    from perceptlab.engine.robust import ROBUST_EPS, ROBUST_NORM, robust_accuracy

    cfg = shipped.config("robust")
    assert cfg["training"]["adv_steps"] > 0 and cfg["training"]["adv_eps"] == ROBUST_EPS
    m = cfg["metrics"]["robust"]
    assert m["clean_accuracy"] >= 0.98 and m["robust_accuracy"] >= 0.9 and m["n"] == 2000
    held = builtin_mnist.held_out()
    x, y = held.tensors()
    x, y = x[::5], y[::5]  # 200 digits
    clean, robust = robust_accuracy(shipped.load("robust"), x, y, ROBUST_EPS, ROBUST_NORM, steps=5)
    assert clean >= 0.97 and robust >= 0.85
    _, lrm_robust = robust_accuracy(shipped.load("lrm"), x, y, ROBUST_EPS, ROBUST_NORM, steps=5)
    assert robust > lrm_robust + 0.2
