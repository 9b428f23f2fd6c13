"""Simulated observers: determinism, layout, labelling, RT that grows with entropy."""

from __future__ import annotations

import numpy as np
import pytest

from perceptlab.analysis.choices import choice_summary
from perceptlab.analysis.rt import rt_entropy
from perceptlab.analysis.simulate import simulate_observers
from perceptlab.data.trials import trials_from_frame
from perceptlab.errors import PerceptLabError


def _probs(n=300, seed=0):
    return np.random.default_rng(seed).dirichlet(np.ones(10) * 0.4, size=n)


def test_simulate_is_deterministic_and_labelled():
    ids = [f"s{i}" for i in range(300)]
    a, truth_a = simulate_observers(ids, _probs(), 12, 80, 3, seed=7,
                                    stimuli=[f"images/{i}.png" for i in ids])
    b, truth_b = simulate_observers(ids, _probs(), 12, 80, 3, seed=7,
                                    stimuli=[f"images/{i}.png" for i in ids])
    assert a.equals(b) and truth_a.equals(truth_b)
    c, _ = simulate_observers(ids, _probs(), 12, 80, 3, seed=8)
    assert not a["response"].equals(c["response"])
    assert list(a.columns) == ["subject_id", "stimulus", "stimulus_id", "response", "is_train", "rt",
                               "synthetic"]
    assert a["synthetic"].all() and truth_a["synthetic"].all()
    assert "SYNTHETIC" in truth_a.attrs["note"] and truth_a.attrs["settings"]["seed"] == 7
    assert len(a) == 12 * 80 and not a.duplicated(["subject_id", "stimulus"]).any()
    assert sorted(truth_a["cluster"].unique()) == [1, 2, 3]
    assert {f"bias_{c}" for c in range(10)} <= set(truth_a.columns)
    t = trials_from_frame(a)
    assert t.report.layout == "variMNIST" and t.synthetic and t.report.rows_used == len(a)


def test_rt_grows_with_entropy():
    ids = [f"s{i}" for i in range(300)]
    frame, _ = simulate_observers(ids, _probs(), 40, 150, 2, seed=1)
    df = trials_from_frame(frame).df
    res = rt_entropy(df, choice_summary(df).entropy)
    assert res.spearman.rho > 0.2 and res.spearman.p < 0.01


def test_simulate_errors():
    with pytest.raises(PerceptLabError, match="only 5 stimuli"):
        simulate_observers(list("abcde"), _probs(5), 3, 6, 1)
    with pytest.raises(PerceptLabError, match="clusters"):
        simulate_observers(list("abcde"), _probs(5), 2, 3, 3)
    with pytest.raises(PerceptLabError, match="not logits"):
        simulate_observers(list("ab"), np.ones((2, 10)), 2, 1, 1)
