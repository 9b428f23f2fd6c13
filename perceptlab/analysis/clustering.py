"""Participant clustering by pairwise agreement (BAM: eight perceptual clusters in variMNIST).

Agreement of two participants = share of the stimuli both saw on which they gave the same response.
It is computed with sparse products of one-hot matrices: participants x (stimulus, response) for
identical answers, participants x stimulus for co-viewing. Pairs with fewer than ``min_overlap``
co-viewed stimuli have no agreement; participants without a single such pair are left out and
listed; the remaining missing pairs get the mean observed distance, and their number is reported.
Clusters come from average-linkage hierarchical clustering of 1 - agreement, with k chosen by the
silhouette (or given). Model predictions can join as pseudo-participants: any table with
``participant, stimulus, response`` works.

A best silhouette below :data:`MIN_SILHOUETTE` (0.25, the usual floor of "weak structure" in
Kaufman & Rousseeuw's reading of silhouettes) is reported as *no reliable cluster structure*: the
result keeps the matrix and the silhouette per k, but ``reliable`` is False and no cluster labels
are handed on (a k given explicitly is kept, with the same warning).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.cluster.hierarchy import fcluster, leaves_list, linkage
from scipy.spatial.distance import squareform

from perceptlab.errors import PerceptLabError

MIN_SILHOUETTE = 0.25
"""Below this best silhouette the participants have no reliable cluster structure."""


@dataclass
class Agreement:
    """Pairwise agreement (NaN below the overlap minimum; 1 on the diagonal) and overlap counts."""

    participants: pd.Index
    agreement: np.ndarray
    overlap: np.ndarray
    min_overlap: int
    repeats_ignored: int


def agreement_matrix(trials: pd.DataFrame, min_overlap: int = 5) -> Agreement:
    """Agreement and co-viewing counts for every participant pair (first response per stimulus)."""
    first = trials.drop_duplicates(["participant", "stimulus"])
    repeats = len(trials) - len(first)
    p_codes, participants = pd.factorize(first["participant"], sort=True)
    s_codes, stimuli = pd.factorize(first["stimulus"])
    response = first["response"].to_numpy(dtype=np.int64)
    n_classes = int(response.max()) + 1 if len(response) else 1
    ones = np.ones(len(first), dtype=np.float64)
    shape_p = len(participants)
    viewed = sparse.csr_matrix((ones, (p_codes, s_codes)), shape=(shape_p, len(stimuli)))
    answer = sparse.csr_matrix((ones, (p_codes, s_codes * n_classes + response)),
                               shape=(shape_p, len(stimuli) * n_classes))
    overlap = (viewed @ viewed.T).toarray().astype(np.int64)
    same = (answer @ answer.T).toarray()
    with np.errstate(invalid="ignore", divide="ignore"):
        agreement = np.where(overlap >= max(min_overlap, 1), same / overlap, np.nan)
    np.fill_diagonal(agreement, 1.0)
    return Agreement(pd.Index(participants, name="participant"), agreement, overlap, min_overlap,
                     repeats)


def silhouette_score_precomputed(distance: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette for a precomputed distance matrix (singletons score 0, as scikit-learn)."""
    _, inv = np.unique(labels, return_inverse=True)
    n, k = len(labels), int(inv.max()) + 1
    member = np.zeros((n, k))
    member[np.arange(n), inv] = 1.0
    sums = distance @ member
    sizes = member.sum(axis=0)
    own = sizes[inv] - 1
    rows = np.arange(n)
    a = sums[rows, inv] / np.maximum(own, 1)
    other = sums / sizes
    other[rows, inv] = np.inf
    b = other.min(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = (b - a) / np.maximum(a, b)
    s = np.where((own == 0) | ~np.isfinite(s), 0.0, s)
    return float(s.mean())


@dataclass
class ClusterResult:
    """Cluster labels (1..k), the chosen k and its silhouette, and the matrix ordered for plotting."""

    labels: pd.Series  # participant -> cluster (1..k)
    k: int
    silhouette: float
    silhouette_by_k: dict[int, float]
    order: list[str]  # participants in dendrogram leaf order
    ordered_agreement: np.ndarray
    boundaries: list[int]  # positions in ``order`` where a new cluster starts (after the first)
    left_out: pd.DataFrame  # participant, max_overlap, reason
    n_pairs: int
    n_pairs_missing: int
    imputed_distance: float | None
    min_overlap: int
    notes: list[str] = field(default_factory=list)
    reliable: bool = True
    k_given: bool = False

    @property
    def verdict(self) -> str:
        """One line: k clusters, or no reliable cluster structure, with the silhouette and the rule."""
        if self.reliable:
            return f"k = {self.k} clusters (silhouette {self.silhouette:.2f} >= {MIN_SILHOUETTE:g})"
        if self.k_given:
            return (f"k = {self.k} as asked, but silhouette {self.silhouette:.2f} < {MIN_SILHOUETTE:g}: "
                    "no reliable cluster structure")
        return (f"no reliable cluster structure (best silhouette {self.silhouette:.2f} at k = {self.k}, "
                f"below {MIN_SILHOUETTE:g})")

    def sizes(self) -> dict[int, int]:
        return {int(k): int(v) for k, v in self.labels.value_counts().sort_index().items()}

    def to_dict(self) -> dict:
        return {
            "k": self.k, "silhouette": self.silhouette, "reliable": self.reliable,
            "min_silhouette": MIN_SILHOUETTE, "verdict": self.verdict,
            "silhouette_by_k": {str(k): v for k, v in self.silhouette_by_k.items()},
            "sizes": {str(k): v for k, v in self.sizes().items()},
            "participants_clustered": int(len(self.labels)),
            "left_out": self.left_out.to_dict(orient="records"),
            "min_overlap": self.min_overlap, "pairs": self.n_pairs,
            "pairs_without_overlap": self.n_pairs_missing,
            "imputed_distance": self.imputed_distance, "linkage": "average",
            "notes": list(self.notes),
        }


def cluster_participants(trials: pd.DataFrame, k: int | None = None,
                         k_range: Sequence[int] = range(2, 13), min_overlap: int = 5) -> ClusterResult:
    """Hierarchical clustering (average linkage on 1 - agreement); k by silhouette unless given."""
    agr = agreement_matrix(trials, min_overlap)
    a = agr.agreement
    has_pair = (np.isfinite(a).sum(axis=1) - 1) > 0
    off = agr.overlap.copy()
    np.fill_diagonal(off, 0)
    left_out = pd.DataFrame({
        "participant": agr.participants[~has_pair].astype(str),
        "max_overlap": off.max(axis=1, initial=0)[~has_pair],
        "reason": f"fewer than {min_overlap} co-viewed stimuli with every other participant",
    })
    keep = np.flatnonzero(has_pair)
    names = agr.participants[keep]
    n = len(keep)
    if n < 3:
        raise PerceptLabError(
            f"cannot cluster participants: only {n} have at least {min_overlap} co-viewed stimuli "
            "with someone else",
            fix="lower the minimum overlap (--min-overlap) or collect more overlapping trials",
        )
    dist = 1.0 - a[np.ix_(keep, keep)]
    missing = ~np.isfinite(dist)
    n_pairs = n * (n - 1) // 2
    n_missing = int(np.triu(missing, 1).sum())
    imputed = None
    if n_missing:
        imputed = float(np.nanmean(dist[np.triu(~missing, 1)]))
        dist = np.where(missing, imputed, dist)
    np.fill_diagonal(dist, 0.0)
    dist = (dist + dist.T) / 2
    tree = linkage(squareform(dist, checks=False), method="average")
    if k is not None:
        if not 2 <= k <= n - 1:
            raise PerceptLabError(f"k = {k} clusters is not possible for {n} participants",
                                  fix=f"choose k between 2 and {n - 1}")
        candidates = [k]
    else:
        candidates = [c for c in k_range if 2 <= c <= n - 1]
        if not candidates:
            raise PerceptLabError(f"no k in {list(k_range)} fits {n} participants")
    by_k = {}
    labels_by_k = {}
    for c in candidates:
        lab = fcluster(tree, t=c, criterion="maxclust")
        labels_by_k[c] = lab
        by_k[c] = silhouette_score_precomputed(dist, lab)
    best = max(candidates, key=lambda c: (by_k[c], -c))
    leaves = leaves_list(tree)
    labels = labels_by_k[best]
    # renumber clusters 1..k in leaf order so plots read left to right
    seen, first_pos = np.unique(labels[leaves], return_index=True)
    remap = np.zeros(labels.max() + 1, dtype=np.int64)
    remap[seen[np.argsort(first_pos)]] = np.arange(1, len(seen) + 1)
    labels = remap[labels]
    ordered_labels = labels[leaves]
    boundaries = (np.flatnonzero(np.diff(ordered_labels)) + 1).tolist()
    notes = []
    if n_missing:
        notes.append(f"{n_missing} of {n_pairs} pairs share fewer than {min_overlap} stimuli; "
                     f"their distance is the mean observed distance ({imputed:.3f})")
    reliable = bool(by_k[best] >= MIN_SILHOUETTE)
    if not reliable:
        notes.append(f"best silhouette {by_k[best]:.3f} is below {MIN_SILHOUETTE:g}: no reliable "
                     "cluster structure; participants are not assigned to clusters")
    if agr.repeats_ignored:
        notes.append(f"{agr.repeats_ignored} repeated participant–stimulus trials: first response used")
    return ClusterResult(
        labels=pd.Series(labels, index=pd.Index(names.astype(str), name="participant"), name="cluster"),
        k=int(best), silhouette=float(by_k[best]),
        silhouette_by_k={int(c): float(v) for c, v in by_k.items()},
        order=[str(x) for x in names[leaves]],
        ordered_agreement=a[np.ix_(keep[leaves], keep[leaves])],
        boundaries=boundaries, left_out=left_out, n_pairs=n_pairs, n_pairs_missing=n_missing,
        imputed_distance=imputed, min_overlap=min_overlap, notes=notes, reliable=reliable,
        k_given=k is not None,
    )
