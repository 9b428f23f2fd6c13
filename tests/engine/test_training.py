"""Tiny training runs: they learn, checkpoint, resume to the same result, and export loadable weights."""

import itertools

import torch

from perceptlab.engine.registry import Registry
from perceptlab.engine.train_classifiers import ClassifierRecipe, evaluate_accuracy, train_classifier
from perceptlab.engine.train_judge import JudgeRecipe, auc, train_judge
from perceptlab.engine.train_prior import PriorTrainConfig, learning_rate, min_snr_weights, train_prior
from tests.conftest import run_gen, tiny_prior_config

TINY_PRIOR = tiny_prior_config()


def _drain(gen):
    return run_gen(gen)[1]


def test_logreg_learns_and_exports(tmp_path, builtin_mnist):
    data = builtin_mnist.train()
    recipe = ClassifierRecipe("logreg", epochs=3, lr=1e-2, augment=False, weight_decay=0.0, warmup_steps=5)
    out = _drain(train_classifier("lrm", data, tmp_path / "run", tmp_path / "w" / "lrm.safetensors", recipe))
    model = Registry(tmp_path / "w", tmp_path / "u").load("lrm")
    assert out.exists()
    assert evaluate_accuracy(model, builtin_mnist.held_out()) > 0.75


def test_classifier_resume_matches_uninterrupted(tmp_path, builtin_mnist):
    data = builtin_mnist.train().subset(slice(0, 512))
    recipe = ClassifierRecipe("mlp", epochs=2, batch_size=128)
    _drain(train_classifier("mlp", data, tmp_path / "a", tmp_path / "wa" / "mlp.safetensors", recipe))
    # interrupted after the first epoch, then resumed in a new call
    gen = train_classifier("mlp", data, tmp_path / "b", tmp_path / "wb" / "mlp.safetensors", recipe)
    for rec in gen:
        if rec["kind"] == "epoch":
            break
    gen.close()
    _drain(train_classifier("mlp", data, tmp_path / "b", tmp_path / "wb" / "mlp.safetensors", recipe))
    a = Registry(tmp_path / "wa", tmp_path / "u").load("mlp")
    b = Registry(tmp_path / "wb", tmp_path / "u").load("mlp")
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb)


def test_prior_steps_checkpoint_and_resume(tmp_path, builtin_mnist):
    data = builtin_mnist.train().subset(slice(0, 256))
    cfg = PriorTrainConfig(steps=6, batch_size=8, checkpoint_every=3, warmup=2)
    gen = train_prior(data, tmp_path / "run", tmp_path / "w" / "dit.safetensors", cfg, TINY_PRIOR)
    steps = [rec["step"] for rec in itertools.islice(gen, 4)]
    gen.close()  # checkpoint written on close
    assert steps == [1, 2, 3, 4]
    # a measurement recorded on the exported weights (as 'perceptlab eval prior --record' does)
    from perceptlab.cli.eval import _record_history
    from perceptlab.engine.model_card import render

    _record_history(tmp_path / "w", {"n_unconditional": 50, "share_confident_and_judged_digit": 0.25,
                                     "conditional_accuracy": 0.5, "class_shares": [0.1] * 9 + [0.05]})
    _record_history(tmp_path / "w", {"n_unconditional": 50, "share_confident_and_judged_digit": 0.3,
                                     "class_shares": [0.1] * 10})  # same steps and n: replaces
    rest = []
    gen = train_prior(data, tmp_path / "run", tmp_path / "w" / "dit.safetensors", cfg, TINY_PRIOR)
    while True:
        try:
            rest.append(next(gen)["step"])
        except StopIteration:
            break
    assert rest == [5, 6]
    reg = Registry(tmp_path / "w", tmp_path / "u")
    assert reg.config("dit")["training"]["steps_done"] == 6 and reg.config("dit")["training"]["complete"]
    history = reg.config("dit")["metrics"]["quality_history"]  # kept through the re-export
    assert history == [{"steps": 4, "n": 50, "confident_and_judged": 0.3, "conditional": None,
                        "min_class_share": 0.1, "max_class_share": 0.1}]
    assert "quality" not in reg.config("dit")["metrics"]  # that measured the old weights
    assert "| 4 | 50 | 30.0% | - | 10.0%–10.0% |" in render(tmp_path / "w")
    prior = reg.load("dit", kind="prior")
    assert prior(torch.zeros(1, 1, 28, 28), torch.tensor([5])).shape == (1, 1, 28, 28)


def test_prior_resumed_with_a_new_recipe_records_its_phases(tmp_path, builtin_mnist):
    import json

    import pytest

    from perceptlab.engine.model_card import render
    from perceptlab.errors import PerceptLabError

    data = builtin_mnist.train().subset(slice(0, 64))
    out = tmp_path / "w" / "dit.safetensors"
    first = PriorTrainConfig(steps=4, batch_size=4, warmup=1, decay_start=2, checkpoint_every=2)
    _drain(train_prior(data, tmp_path / "run", out, first, TINY_PRIOR))
    # a checkpoint from before checkpoints stored their recipe: the exported config stands in
    meta_path = tmp_path / "run" / "prior_checkpoint.json"
    meta = json.loads(meta_path.read_text())
    meta["scalars"] = {k: meta["scalars"][k] for k in ("step", "elapsed_s")}
    meta_path.write_text(json.dumps(meta))
    second = PriorTrainConfig(steps=6, batch_size=4, warmup=1, lr=5e-4, decay_start=4, cond_drop=0.5)
    _drain(train_prior(data, tmp_path / "run", out, second, TINY_PRIOR))
    _drain(train_prior(data, tmp_path / "run", out, second, TINY_PRIOR))  # complete already: no new phase
    training = Registry(tmp_path / "w", tmp_path / "u").config("dit")["training"]
    assert training["steps_done"] == 6 and training["lr"] == 5e-4 and training["cond_drop"] == 0.5
    assert [(ph["until"], ph["lr"], ph["cond_drop"], ph["decay_start"]) for ph in training["phases"]] == [
        (4, 1e-3, 0.15, 2)]
    card = render(tmp_path / "w")
    assert "in 2 phases" in card
    assert "steps 0–4: lr 0.001, constant until step 2, then cosine decay to 0 at step 4, 15% of each batch" in card
    assert "steps 4–6: lr 0.0005, cosine decay to 0 at step 6, 50% of each batch" in card
    assert json.loads(meta_path.read_text())["scalars"]["recipe"]["cond_drop"] == 0.5  # stored from now on
    # resumed with the defaults (fewer steps than done): refused before anything is written
    before = (tmp_path / "w" / "dit.json").read_text()
    with pytest.raises(PerceptLabError, match="at step 6, and --steps 4 leaves nothing"):
        _drain(train_prior(data, tmp_path / "run", out, first, TINY_PRIOR))
    assert (tmp_path / "w" / "dit.json").read_text() == before


def test_prior_learning_rate_warms_up_holds_then_decays_to_zero():
    cfg = PriorTrainConfig(steps=1000, lr=1e-3, warmup=100, decay_start=600)
    rates = [learning_rate(s, cfg) for s in range(cfg.steps)]
    assert rates[0] == 1e-5 and rates[99] == 1e-3  # linear warm-up
    assert set(rates[100:601]) == {1e-3}  # constant until the decay starts
    assert abs(rates[800] - 0.5e-3) < 1e-12  # cosine: half way through the decay, half the rate
    assert all(a > b for a, b in zip(rates[600:], rates[601:]))  # strictly falling
    assert rates[-1] < 1e-7
    no_decay = PriorTrainConfig(steps=1000, warmup=100, decay_start=1000)
    assert learning_rate(999, no_decay) == no_decay.lr


def test_prior_refuses_a_cond_drop_that_is_not_a_share(tmp_path, builtin_mnist):
    import pytest

    from perceptlab.errors import PerceptLabError

    gen = train_prior(builtin_mnist.train().subset(slice(0, 16)), tmp_path / "run", tmp_path / "w" / "dit.safetensors",
                      PriorTrainConfig(steps=1, batch_size=4, cond_drop=1.5), TINY_PRIOR)
    with pytest.raises(PerceptLabError, match="cond_drop = 1.5"):
        next(gen)
    assert not (tmp_path / "w").exists()  # nothing written


def test_min_snr_weights_bounded():
    acp = torch.linspace(0.9999, 0.0001, 1000)
    w = min_snr_weights(acp, torch.arange(1000), 5.0)
    assert (w <= 1).all() and w[0] < 0.01 and torch.isclose(w[-1], torch.tensor(1.0))


def test_judge_learns_real_vs_nondigits(tmp_path, builtin_mnist):
    data = builtin_mnist.train().subset(slice(0, 600))
    recipe = JudgeRecipe(epochs=1, nondigits_per_kind=120, batch_size=64)
    _drain(train_judge(data, tmp_path / "run", tmp_path / "w" / "judge.safetensors", recipe))
    reg = Registry(tmp_path / "w", tmp_path / "u")
    from perceptlab.engine.nondigits import make_nondigits
    from perceptlab.engine.train_judge import judge_score_tensor

    held, _ = builtin_mnist.held_out().subset(slice(0, 200)).tensors()
    neg, _ = make_nondigits(40, 999, held)
    j = reg.load("judge", kind="judge")
    assert auc(judge_score_tensor(j, held).numpy(), judge_score_tensor(j, neg).numpy()) > 0.8


def test_judge_regresses_ratings(tmp_path, builtin_mnist):
    data = builtin_mnist.train().subset(slice(0, 64))
    x, _ = data.tensors()
    ratings = (x.numpy(), torch.linspace(0, 1, 64).numpy())
    gen = train_judge(data, tmp_path / "run", tmp_path / "w" / "judge.safetensors", JudgeRecipe(epochs=1), ratings=ratings)
    _drain(gen)
    assert "regression on ratings" in Registry(tmp_path / "w", tmp_path / "u").config("judge")["training"]["targets"]


def test_auc_basic():
    import numpy as np

    assert auc(np.array([2.0, 3.0]), np.array([0.0, 1.0])) == 1.0
    assert auc(np.array([1.0]), np.array([1.0])) == 0.5
