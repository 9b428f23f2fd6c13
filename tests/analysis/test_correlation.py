"""Spearman with reasons instead of NaN, model–human entropy and RT–entropy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from perceptlab.analysis.correlation import model_human_entropy, spearman_or_reason
from perceptlab.analysis.rt import rt_entropy
from perceptlab.errors import PerceptLabError


def test_spearman_defined():
    rng = np.random.default_rng(1)
    x = rng.normal(size=50)
    y = x + rng.normal(size=50)
    r = spearman_or_reason(x, y)
    rho, p = stats.spearmanr(x, y)
    assert r.defined and r.rho == pytest.approx(rho) and r.p == pytest.approx(p) and r.n == 50
    assert str(r).startswith("rho = ")


def test_spearman_reasons():
    r = spearman_or_reason([1, 2], [3, 4])
    assert (r.rho, r.p, r.n, r.reason) == (None, None, 2, "too few stimuli (2 < 3)")
    r = spearman_or_reason([1, 2, 3, 4], [0.5, 0.5, 0.5, 0.5], x_label="human entropies",
                           y_label="model entropies")
    assert r.reason == "constant input: all model entropies equal" and r.rho is None
    r = spearman_or_reason([1, np.nan, 3, 4], [1, 2, np.inf, 4])
    assert r.reason == "too few stimuli (2 < 3)"
    assert str(r) == "not defined (too few stimuli (2 < 3))"
    assert r.to_dict() == {"rho": None, "p": None, "n": 2, "reason": "too few stimuli (2 < 3)"}


def test_model_human_entropy():
    rng = np.random.default_rng(2)
    stimuli = [f"s{i}" for i in range(40)]
    probs = rng.dirichlet(np.ones(10) * 0.3, size=40)
    model_h = stats.entropy(probs, base=2, axis=1)
    human = pd.Series(model_h + rng.normal(0, 0.1, size=40), index=stimuli)
    human["extra"] = 1.0
    res = model_human_entropy(human, pd.DataFrame(probs, index=stimuli), model="vgg")
    assert res.spearman.rho > 0.9 and res.spearman.n == 40 and res.n_without_probs == 1
    assert np.allclose(res.scatter["model_entropy_bits"], model_h)
    same = model_human_entropy(human, probs, stimuli=stimuli)
    assert same.spearman == res.spearman
    flat = model_human_entropy(human, np.full((40, 10), 0.1), stimuli=stimuli)
    assert flat.spearman.reason == "constant input: all model entropies equal"
    with pytest.raises(PerceptLabError, match="not logits"):
        model_human_entropy(human, rng.normal(size=(40, 10)), stimuli=stimuli, model="mlp")


def test_rt_entropy():
    trials = pd.DataFrame({"stimulus": list("aabbccdd"),
                           "rt_ms": [500, 700, 800, 900, np.nan, 1200, 1500, 1400]})
    entropy = pd.Series({"a": 0.0, "b": 0.5, "c": 1.0, "d": 2.0})
    res = rt_entropy(trials, entropy)
    assert res.per_stimulus.loc["a", "median_rt_ms"] == 600 and res.per_stimulus.loc["c", "n_rt"] == 1
    assert res.spearman.rho == pytest.approx(1.0)
    none = rt_entropy(trials.assign(rt_ms=np.nan), entropy)
    assert none.spearman.reason == "no reaction times in the trial table"
