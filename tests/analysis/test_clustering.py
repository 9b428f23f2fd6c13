"""Participant clustering: recovery on simulated observers, overlap handling, silhouette."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score, silhouette_score

from perceptlab.analysis.clustering import (
    agreement_matrix,
    cluster_participants,
    silhouette_score_precomputed,
)
from perceptlab.analysis.simulate import simulate_observers
from perceptlab.data.trials import trials_from_frame
from perceptlab.errors import PerceptLabError


def _simulated(seed=3, participants=40, clusters=4, trials=200, stimuli=400):
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(10), size=stimuli)
    ids = [f"s{i:04d}" for i in range(stimuli)]
    frame, truth = simulate_observers(ids, probs, participants, trials, clusters, seed=seed)
    return trials_from_frame(frame).df, truth


@pytest.mark.parametrize("seed", [3, 11])
def test_recovers_simulated_clusters(seed):
    trials, truth = _simulated(seed)
    res = cluster_participants(trials)
    labels = res.labels.reindex(truth["participant"]).to_numpy()
    ari = adjusted_rand_score(truth["cluster"], labels)
    assert ari >= 0.8, (ari, res.k, res.silhouette_by_k)
    assert res.k == 4
    assert sorted(res.order) == sorted(truth["participant"])
    assert res.ordered_agreement.shape == (40, 40)
    ordered = res.labels.loc[res.order].to_numpy()
    assert (np.flatnonzero(np.diff(ordered)) + 1).tolist() == res.boundaries
    assert ordered[0] == 1 and len(res.boundaries) == res.k - 1


def test_fixed_k_and_agreement_values():
    trials = pd.DataFrame({
        "participant": ["a"] * 4 + ["b"] * 4 + ["c"] * 4 + ["d"] * 4,
        "stimulus": list("wxyz") * 4,
        "response": [1, 2, 3, 4, 1, 2, 3, 5, 7, 7, 7, 7, 7, 7, 7, 4],
    })
    agr = agreement_matrix(trials, min_overlap=4)
    assert agr.agreement[0, 1] == 0.75 and agr.agreement[2, 3] == 0.75 and agr.agreement[0, 2] == 0.0
    assert agr.overlap[0, 3] == 4
    res = cluster_participants(trials, k=2, min_overlap=4)
    assert res.labels["a"] == res.labels["b"] != res.labels["c"] == res.labels["d"]
    with pytest.raises(PerceptLabError, match="k = 4 clusters is not possible for 4 participants"):
        cluster_participants(trials, k=4, min_overlap=4)


def test_low_overlap_is_reported_not_hidden():
    trials, truth = _simulated(5, participants=12, clusters=2, trials=60, stimuli=120)
    loner = pd.DataFrame({"participant": "loner", "stimulus": ["only_me_1", "only_me_2"],
                          "response": [1, 2]})
    res = cluster_participants(pd.concat([trials, loner], ignore_index=True), min_overlap=5)
    assert res.left_out["participant"].tolist() == ["loner"]
    assert res.left_out["max_overlap"].tolist() == [0]
    assert "loner" not in res.labels.index and len(res.labels) == 12
    strict = cluster_participants(trials, min_overlap=32)
    assert strict.n_pairs_missing > 0 and strict.imputed_distance is not None
    assert "pairs share fewer than 32 stimuli" in strict.notes[0]
    assert strict.to_dict()["pairs_without_overlap"] == strict.n_pairs_missing
    with pytest.raises(PerceptLabError, match="cannot cluster participants"):
        cluster_participants(trials, min_overlap=1000)


def test_silhouette_matches_sklearn():
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(30, 3))
    d = np.linalg.norm(pts[:, None] - pts[None], axis=2)
    labels = rng.integers(0, 4, size=30)
    labels[0] = 9  # a singleton
    assert silhouette_score_precomputed(d, labels) == pytest.approx(
        silhouette_score(d, labels, metric="precomputed"), abs=1e-12)
