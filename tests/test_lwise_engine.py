"""L-WISE engine: PGD within the ball, the robust recipe, difficulty in the library, enhancement."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import build_tiny_registry, digits_uint8, save_model

TINY_ROBUST = {"width": 2, "hidden": 8}


def tiny_lwise_registry(tmp_path):
    from perceptlab.engine.classifiers import build
    from perceptlab.engine.registry import Registry

    folder = build_tiny_registry(tmp_path / "weights")
    torch.manual_seed(1)
    save_model(folder, "robust", "classifier", "robust_cnn", build("robust_cnn", TINY_ROBUST), TINY_ROBUST)
    return Registry(folder, user_dir=tmp_path / "none")


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_pgd_stays_in_ball_and_raises_objective(norm):
    from perceptlab.engine.robust import RobustCNN, logit_objective, pgd

    torch.manual_seed(0)
    model = RobustCNN(**TINY_ROBUST).eval()
    x = torch.rand(6, 1, 28, 28) * 2 - 1
    y = torch.arange(6)
    eps = 1.0 if norm == "l2" else 0.1
    out = pgd(model, x, logit_objective(y), eps, norm, steps=5)
    d = (out - x).flatten(1)
    size = d.norm(dim=1) if norm == "l2" else d.abs().amax(1)
    assert (size <= eps + 1e-5).all() and out.min() >= -1 and out.max() <= 1
    with torch.no_grad():
        before = model(x).gather(1, y[:, None])[:, 0]
        after = model(out).gather(1, y[:, None])[:, 0]
    assert (after > before).all()
    down = pgd(model, x, logit_objective(y, -1.0), eps, norm, steps=5)
    with torch.no_grad():
        assert (model(down).gather(1, y[:, None])[:, 0] < before).all()
    assert not any(p.grad is not None for p in model.parameters())
    assert torch.equal(pgd(model, x, logit_objective(y), 0.0, norm), x)


def test_robust_recipe_trains_adversarially_and_resumes(tmp_path, builtin_mnist):
    from dataclasses import replace

    from perceptlab.engine.train_classifiers import RECIPES, train_classifier
    from tests.conftest import run_gen

    assert RECIPES["robust"].adv_steps > 0 and RECIPES["robust"].arch == "robust_cnn"
    data = builtin_mnist.train().subset(np.arange(len(builtin_mnist.train())) < 64)
    recipe = replace(RECIPES["robust"], epochs=1, batch_size=32, adv_steps=2, warmup_steps=1)
    out = tmp_path / "w" / "robust.safetensors"
    run_gen(train_classifier("robust", data, tmp_path / "run", out, recipe))
    import json

    cfg = json.loads(out.with_suffix(".json").read_text())
    assert cfg["training"]["adv_steps"] == 2 and cfg["training"]["adv_norm"] == "l2"
    # a second call resumes from the epoch checkpoint: nothing left to do, same weights
    first = out.read_bytes()
    run_gen(train_classifier("robust", data, tmp_path / "run", out, recipe))
    assert out.read_bytes() == first


def _library(tmp_path, builtin_mnist, n=6):
    from perceptlab.data.library import Stimulus, StimulusLibrary

    lib = StimulusLibrary.create(tmp_path / "lib")
    imgs = digits_uint8(builtin_mnist, n)
    recs = [Stimulus(mode="mnist", class_a=int(builtin_mnist.labels[i])) for i in range(n - 1)]
    recs.append(Stimulus(mode="uncertainty", class_a=3, class_b=5))
    lib.add(recs, imgs)
    lib.add([Stimulus(mode="imported")], imgs[:1])  # no class: no ground truth, left out
    return lib


def test_difficulty_stored_per_stimulus(tmp_path, builtin_mnist):
    from perceptlab.engine.lwise import compute_difficulty, difficulty_of, logit_for, true_classes

    reg = tiny_lwise_registry(tmp_path)
    lib = _library(tmp_path, builtin_mnist)
    got = compute_difficulty(lib, registry=reg)
    assert set(got) == set(lib.ids()[:-1])
    pair = lib.get(lib.ids()[-2])
    assert true_classes(pair) == [3, 5]
    assert difficulty_of(pair) == pytest.approx((logit_for(pair, 3) + logit_for(pair, 5)) / 2)
    one = lib.get(lib.ids()[0])
    assert difficulty_of(one) == pytest.approx(logit_for(one, one.class_a))
    lib.close()


def test_enhance_library_adds_stimuli_with_provenance(tmp_path, builtin_mnist):
    from perceptlab.engine.lwise import difficulty_of, enhance_library

    reg = tiny_lwise_registry(tmp_path)
    lib = _library(tmp_path, builtin_mnist)
    src = lib.ids()[:3]
    from perceptlab.engine.lwise import compute_difficulty

    compute_difficulty(lib, src, reg)
    up = enhance_library(lib, src, eps=2.0, norm="l2", steps=5, registry=reg)
    down = enhance_library(lib, src, eps=2.0, norm="l2", steps=5, harder=True, registry=reg)
    for s, u, d in zip(src, up, down):
        rec = lib.get(u)
        prov = rec.settings["enhancement"]
        assert rec.mode == "enhanced" and prov["source"] == s and prov["eps"] == 2.0 and prov["norm"] == "l2"
        assert prov["steps"] == 5 and prov["direction"] == "enhance"
        assert lib.get(d).settings["enhancement"]["direction"] == "harder"
        assert set(rec.probs) >= {"vgg", "lrm", "robust"}
        assert difficulty_of(lib.get(d)) < difficulty_of(lib.get(s)) < difficulty_of(rec)
        diff = lib.image(u).astype(float) - lib.image(s).astype(float)
        assert np.linalg.norm(diff / 127.5) <= 2.0 + 0.05
    lib.close()
