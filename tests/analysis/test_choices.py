"""Choice counts and entropy, checked against an independent recomputation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import entropy as scipy_entropy

from perceptlab.analysis.choices import choice_counts, choice_summary, entropy_bits


def _trials(rng, n_stimuli=60, max_n=25):
    rows = []
    for s in range(n_stimuli):
        n = int(rng.integers(1, max_n))
        p = rng.dirichlet(np.ones(10) * rng.choice([0.05, 0.5, 3.0]))
        rows.append(pd.DataFrame({"participant": [f"p{i}" for i in range(n)], "stimulus": f"s{s:03d}",
                                  "response": rng.choice(10, size=n, p=p)}))
    return pd.concat(rows, ignore_index=True)


def test_entropy_matches_scipy():
    rng = np.random.default_rng(0)
    trials = _trials(rng)
    summary = choice_summary(trials, min_responses=1)
    per = summary.per_stimulus
    for stimulus, group in trials.groupby("stimulus"):
        counts = np.bincount(group["response"], minlength=10)
        assert per.loc[stimulus, [f"count_{c}" for c in range(10)]].tolist() == counts.tolist()
        assert per.loc[stimulus, "n"] == len(group)
        assert per.loc[stimulus, "entropy_bits"] == pytest.approx(scipy_entropy(counts, base=2), abs=1e-9)
    assert np.allclose(summary.distribution().sum(axis=1), 1.0)


def test_entropy_extremes_and_share():
    counts = np.array([[7, 0, 0, 0, 0, 0, 0, 0, 0, 0], [1] * 10, [2, 2, 0, 0, 0, 0, 0, 0, 0, 0]])
    h = entropy_bits(counts)
    assert h[0] == 0.0
    assert h[1] == pytest.approx(np.log2(10), abs=1e-12)
    assert h[2] == pytest.approx(1.0, abs=1e-12)
    trials = pd.DataFrame({"participant": list("abcabcab"), "stimulus": list("xxxyyyzz"),
                           "response": [1, 1, 1, 2, 3, 2, 4, 4]})
    s = choice_summary(trials, min_responses=3, bins=10)
    assert s.per_stimulus["included"].tolist() == [True, True, False]
    assert s.share_entropy_gt0 == 0.5
    assert s.hist_counts.sum() == 2 and s.hist_edges[-1] == pytest.approx(np.log2(10))
    d = s.to_dict()
    assert d["stimuli_below_min_responses"] == 1 and d["share_entropy_gt0"] == 0.5


def test_class_names_and_errors():
    trials = pd.DataFrame({"participant": ["a", "b"], "stimulus": ["x", "x"], "response": [0, 2]})
    counts = choice_counts(trials, classes=["cat", "dog", "emu"])
    assert list(counts.columns) == ["n", "count_cat", "count_dog", "count_emu"]
    with pytest.raises(ValueError, match="class indices 0..1"):
        choice_counts(trials, classes=["cat", "dog"])
