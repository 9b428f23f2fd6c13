"""Evaluation report: accuracies, IndivNet vs GroupNet share, entropy Spearman, gain by entropy bin;
and the simulated experiment end to end (tiny)."""

import numpy as np
import pytest

from perceptlab.align.evaluate import evaluate_alignment, format_report
from perceptlab.align.experiment import (
    ExperimentSettings,
    bias_deviation,
    mixup_stimuli,
    oracle_accuracies,
    run_simulated_experiment,
)
from perceptlab.align.finetune import FinetuneRecipe, finetune_group, finetune_individual
from perceptlab.engine.registry import Registry
from perceptlab.engine.sampler import SamplerSettings

from .conftest import make_stimuli, run_gen


def test_report(align_data, mnist_fake, registry):
    recipe = FinetuneRecipe(epochs=2, batch_size=32, trainable="all")
    _, group = run_gen(finetune_group("tinylr", align_data, mnist_fake, recipe, registry=registry))
    indiv = {}
    for pid in ("P0", "P1"):
        _, indiv[pid] = run_gen(finetune_individual(group, align_data, pid, mnist_fake, recipe, registry=registry))
    _, rep = run_gen(
        evaluate_alignment(align_data, "tinylr", group, indiv, mnist_fake, registry=registry, min_responses=2)
    )
    test = align_data.rows("test")
    assert rep["n_trials"] == len(test)
    acc = (
        group.model(align_data.image_tensor[test["sidx"].to_numpy().copy()]).argmax(1).numpy()
        == test["response"].to_numpy()
    ).mean()
    assert rep["trials_accuracy"]["group"]["accuracy"] == pytest.approx(acc)
    assert set(rep["mnist_heldout_accuracy"]) == {"base", "group", "indiv_mean"}
    ivg = rep["indiv_vs_group"]
    assert ivg["participants"] == 2 and ivg["better"] + ivg["ties"] + ivg["worse"] == 2
    assert [p["participant"] for p in rep["participants"]] == ["P0", "P1"]
    assert rep["entropy_spearman"]["n_stimuli"] > 3 and "rho" in rep["entropy_spearman"]["group"]
    pts = rep["entropy_points"]
    assert len(pts["stimulus"]) == len(pts["human"]) == len(pts["base"]) == rep["entropy_spearman"]["n_stimuli"]
    from scipy.stats import spearmanr

    assert spearmanr(pts["human"], pts["group"])[0] == pytest.approx(rep["entropy_spearman"]["group"]["rho"])
    bins = rep["gain_by_entropy"]["bins"]
    assert sum(b["n_trials"] for b in bins) + rep["gain_by_entropy"]["trials_without_entropy"] == sum(
        p["n"] for p in rep["participants"]
    )
    assert "IndivNet beats GroupNet" in format_report(rep)


def test_simulated_experiment_tiny(builtin_with_prior, mnist_fake, tmp_path):
    keys, images, _ = make_stimuli(n=120, seed=9)
    settings = ExperimentSettings(
        observer_model="tinymlp",
        base="tinylr",
        participants=6,
        trials_per_participant=60,
        clusters=2,
        individuals=2,
        per_pair=1,
        manipulation_pairs=1,
    )
    sampler = SamplerSettings(steps=2, resample=1, grad="x0", batch_size=4, seed=3)
    seen = []
    report = run_simulated_experiment(
        None,
        settings,
        stimuli=(keys, images),
        recipe=FinetuneRecipe(epochs=2, batch_size=32, trainable="all"),
        mnist=mnist_fake,
        registry=Registry(builtin_with_prior, tmp_path / "unused"),
        sampler=sampler,
        progress=seen.append,
    )
    assert report["synthetic"] and report["data"]["trials"] == 360
    assert set(report["acceptance"]) >= {
        "group_raises_entropy_spearman",
        "group_raises_trial_accuracy",
        "indiv_beats_group_share_nontrivial",
    }
    t = report["timing"]
    assert t["group_seconds"] > 0 and t["indiv_seconds_cold"] > 0 and t["group_trials"] > 0
    m = report["manipulation"]
    assert set(m["scores"]["arms"]) == {"indiv", "group"} and m["p1"] != m["p2"]
    assert set(m["expected"]) == {"indiv", "group"}
    assert all(0 <= e["success"] <= 1 and e["n"] > 0 for e in m["expected"].values())
    assert any(r.get("stage") == "group" for r in seen)


def test_helpers(mnist_fake):
    keys, images = mixup_stimuli(mnist_fake.train(), 30, seed=1)
    assert len(keys) == 30 and images.dtype == np.uint8 and images.shape == (30, 28, 28)
    import pandas as pd

    truth = pd.DataFrame({"participant": ["a", "b"], **{f"bias_{c}": [0.0, float(c == 3) * 2] for c in range(10)}})
    dev = bias_deviation(truth)
    assert dev["a"] == pytest.approx(dev["b"]) and dev["a"] > 0.2


def test_oracle_ceiling_scores_the_true_choice_rules_on_each_persons_test_trials():
    import pandas as pd

    from perceptlab.align.datasets import build_align_data

    keys = [f"k{i:02d}" for i in range(20)]
    probs = np.full((20, 10), 1e-6)
    probs[:, :2] = 0.5  # every stimulus: 0 or 1, even odds
    # a leans to 0 and always answers 0, b leans to 1 and always answers 1; the mean bias is a tie (-> 0)
    truth = pd.DataFrame({"participant": ["a", "b"], **{f"bias_{c}": [float(c == 0), float(c == 1)] for c in range(10)}})
    table = pd.DataFrame(
        {"participant": ["a"] * 20 + ["b"] * 20, "stimulus": keys * 2, "response": [0] * 20 + [1] * 20}
    )
    images = np.random.default_rng(0).integers(0, 256, (20, 28, 28), dtype=np.uint8)
    data = build_align_data(table, images, keys)
    # stimuli in a different order than the data's, to check the mapping by key
    order = np.random.default_rng(1).permutation(20)
    oracle = oracle_accuracies(data, [keys[i] for i in order], probs[order], truth, ["a", "b"])
    assert oracle["a"]["n"] == oracle["b"]["n"] == len(data.rows("test", "a")) > 0
    assert (oracle["a"]["indiv"], oracle["a"]["group"]) == (1.0, 1.0)
    assert (oracle["b"]["indiv"], oracle["b"]["group"]) == (1.0, 0.0)


def test_choice_probabilities_are_what_the_simulated_respond_samples():
    from perceptlab.align.experiment import _respond
    from perceptlab.analysis.simulate import choice_probabilities

    import pandas as pd

    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    bias = np.array([0.0, 1.0, 0.0])
    q = choice_probabilities(probs, bias, 1.0, 0.3)
    np.testing.assert_allclose(q.sum(1), 1.0)
    raw = probs * np.exp(bias)
    np.testing.assert_allclose(q, 0.7 * raw / raw.sum(1, keepdims=True) + 0.1)
    truth = pd.Series({"bias_0": 0.0, "bias_1": 1.0, "bias_2": 0.0, "temperature": 1.0, "lapse": 0.3})
    rng = np.random.default_rng(0)
    answers = np.stack([_respond(probs, truth, 3, rng) for _ in range(20000)])
    shares = np.stack([(answers == c).mean(0) for c in range(3)], axis=1)
    np.testing.assert_allclose(shares, q, atol=0.015)
