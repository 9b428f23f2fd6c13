"""Catch-trial exclusions, minimum responses and the per-participant summary."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from perceptlab.analysis.exclusions import apply_exclusions
from perceptlab.analysis.participants import agreement_with_majority, participant_summary
from perceptlab.data.trials import trials_from_frame


def _table():
    rows = []
    # p1: 10 catch trials, 8 correct (kept); p2: 7 of 10 (0.7 -> excluded); p3: no catch trials
    for p, correct in (("p1", 8), ("p2", 7)):
        for i in range(10):
            rows.append((p, f"catch{i}", i % 10 if i < correct else (i + 1) % 10, True, i % 10, 500.0))
    for p in ("p1", "p2", "p3"):
        for s, r in (("x", 3), ("y", 5), ("z", 1)):
            rows.append((p, s, r if p != "p3" or s != "y" else 6, False, None, 800.0))
    rows.append(("p3", "lonely", 2, False, None, 900.0))
    frame = pd.DataFrame(rows, columns=["participant", "stimulus", "response", "is_catch",
                                        "true_label", "rt_ms"])
    return trials_from_frame(frame)


def test_catch_accuracy_threshold_and_min_responses():
    t = _table()
    ex = apply_exclusions(t.df, catch_threshold=0.7, min_responses=2)
    assert ex.excluded == ["p2"]
    assert ex.catch.loc["p1", "accuracy"] == pytest.approx(0.8)
    assert ex.catch.loc["p2", "accuracy"] == pytest.approx(0.7)
    assert np.isnan(ex.catch.loc["p3", "accuracy"])
    assert not ex.trials["is_catch"].any() and "p2" not in set(ex.trials["participant"])
    assert ex.stimuli_below_min.to_dict() == {"lonely": 1}
    assert "p2: 7/10 correct (70%)" in ex.summary()
    assert "1 participants have no scored catch trials" in " ".join(ex.notes)
    d = ex.to_dict()
    assert d["excluded_participants"] == [{"participant": "p2", "accuracy": 0.7, "correct": 7, "scored": 10}]
    assert apply_exclusions(t.df, catch_threshold=0.6).excluded == []


def test_participant_summary_and_majority():
    t = _table()
    ex = apply_exclusions(t.df, min_responses=2)
    ps = participant_summary(t.df, ex, None, 10)
    assert ps.loc["p1", "n_trials"] == 13 and ps.loc["p1", "n_catch"] == 10
    assert bool(ps.loc["p2", "excluded"]) and ps.loc["p2", "n_analysed"] == 0
    # p1 vs others on x, y, z (p3 only: p2 is excluded): agrees on x and z, not y
    assert ps.loc["p1", "agreement_with_majority"] == pytest.approx(2 / 3)
    # p2 (excluded) is compared with the analysed group: p1 and p3
    assert ps.loc["p2", "agreement_with_majority"] == pytest.approx((1 + 0.5 + 1) / 3)
    assert ps.loc["p3", "mean_rt_ms"] == pytest.approx(825.0)
    assert ps["cluster"].isna().all()


def test_majority_ties_count_fractionally():
    trials = pd.DataFrame({"participant": ["a", "b", "c"], "stimulus": "s", "response": [1, 2, 1]})
    agr = agreement_with_majority(trials, trials, 10)
    assert agr.to_dict() == {"a": 0.5, "b": 0.0, "c": 0.5}
