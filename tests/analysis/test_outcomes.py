"""Guidance outcomes at the definition's boundaries (0.25 and 0.6), rates and the pair matrix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from perceptlab.analysis.outcomes import classify_outcomes, guidance_outcomes


@pytest.mark.parametrize(("a", "b", "n", "expected"), [
    (10, 10, 20, "success"),   # 0.5 / 0.5
    (5, 8, 20, "bias"),        # min share exactly 0.25 is not > 0.25; 0.65 > 0.6
    (6, 7, 20, "success"),     # 0.30 / 0.35
    (6, 6, 20, "failure"),     # sum exactly 0.6 is not > 0.6
    (3, 3, 10, "failure"),     # 0.3 + 0.3 = 0.6 (float arithmetic would be fragile)
    (4, 3, 10, "success"),     # 0.4 + 0.3 = 0.7, min 0.3
    (13, 0, 20, "bias"),       # one-sided
    (1, 3, 4, "bias"),         # 0.25 exactly with n = 4
    (0, 0, 7, "failure"),
    (26, 35, 100, "success"),  # 0.26 > 0.25 and 0.61 > 0.6
    (25, 36, 100, "bias"),     # 0.25 is not > 0.25
])
def test_boundaries(a, b, n, expected):
    assert classify_outcomes([a], [b], [n])[0] == expected
    assert classify_outcomes([b], [a], [n])[0] == expected


def test_custom_thresholds():
    assert classify_outcomes([3], [3], [10], min_share=0.3, min_total=0.5)[0] == "bias"
    assert classify_outcomes([4], [4], [10], min_share=0.3, min_total=0.5)[0] == "success"


def test_rates_per_mode_and_pair_matrix():
    counts = pd.DataFrame(0, index=["u1", "u2", "c1", "c2", "nopair"],
                          columns=[f"count_{i}" for i in range(10)])
    counts.loc["u1", ["count_1", "count_7"]] = [5, 5]      # success on (1, 7)
    counts.loc["u2", ["count_7", "count_1"]] = [9, 1]      # bias on (7, 1)
    counts.loc["c1", ["count_4", "count_9"]] = [2, 2]
    counts.loc["c1", "count_0"] = 6                         # failure on (4, 9)
    counts.loc["c2", ["count_4", "count_9"]] = [3, 3]      # success on (9, 4)
    counts.loc["nopair", "count_2"] = 4
    counts.insert(0, "n", counts.sum(axis=1))
    pairs = pd.DataFrame({"mode": ["uncertainty", "uncertainty", "controversial", "controversial"],
                          "class_a": [1, 7, 4, 9], "class_b": [7, 1, 9, 4]},
                         index=["u1", "u2", "c1", "c2"])
    oc = guidance_outcomes(counts, pairs)
    assert oc.per_stimulus["outcome"].to_dict() == {"u1": "success", "u2": "bias", "c1": "failure",
                                                   "c2": "success"}
    assert oc.overall == {"success": 0.5, "bias": 0.25, "failure": 0.25, "n": 4}
    assert oc.per_mode["uncertainty"] == {"success": 0.5, "bias": 0.5, "failure": 0.0, "n": 2}
    assert oc.per_mode["controversial"]["failure"] == 0.5
    m, c = oc.pair_success, oc.pair_counts
    assert np.array_equal(c, c.T) and np.allclose(m, m.T, equal_nan=True)
    assert m[1, 7] == 0.5 and c[1, 7] == 2 and m[4, 9] == 0.5
    assert np.isnan(np.diag(m)).all() and np.isnan(m[0, 3]) and c[0, 3] == 0
    d = oc.to_dict()
    assert d["pair_success"]["rate"][0][0] is None and d["pair_success"]["count"][7][1] == 2
