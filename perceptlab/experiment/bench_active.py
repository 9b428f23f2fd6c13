"""Benchmark of active stimulus selection on simulated observers with a known truth (SYNTHETIC).

Per seed:

1. A synthetic pool (``pool="dirichlet"``): N stimuli over C classes, each with latent logits — a share
   ``boundary_share`` on the boundary between two random classes (the BAM case), the rest clearly one
   class — and L candidate observer models that see the latent logits through their own noise
   (softmax(z + N(0, model_noise))). Or ``pool="library"``: the stored probabilities of L named models
   over a library's stimuli (the first model is the reference). The stimuli are split at random into a
   selection pool and ``heldout`` stimuli that are never selected.
2. Observers from :func:`perceptlab.analysis.simulate.simulate_observers` (K clusters with known
   prototypes, personal bias jitter, temperature and lapse), answering through the reference model's
   probabilities: the first ``train_participants`` are *earlier participants* whose trials are used to
   learn the cluster prototypes (``prototypes="learnt"``: agreement clustering + a bias fit per cluster;
   ``"known"``: the mean true bias of each cluster, an oracle); the next ``observers`` are the test
   observers. Each test observer answers through one of the L models drawn at random (its perceptual
   model), with its own bias, temperature and lapse.
3. For each test observer, active (BALD) and random selection run from the same pool with the same
   response random stream, one trial at a time up to ``trials``; after every trial the posterior
   predictive is scored on the held-out stimuli: *expected accuracy* = mean over held-out stimuli of
   the observer's true probability of the predicted (argmax) answer — the accuracy on the observer's
   held-out choices, without the sampling noise of one draw per stimulus. The *ceiling* is the same with
   the true choice probabilities (argmax of the truth); *best hypothesis* is the best single hypothesis
   of the grid. Cluster recovery: the posterior mass of the observer's true cluster (learnt clusters
   mapped to true ones by majority over the earlier participants); recovered = MAP cluster right with
   mass >= ``cluster_mass``.

Trials to target: for targets that close a fraction f of the gap between the prior (0 trials) accuracy
and the best hypothesis (what the participant model can reach; the ceiling with the true parameters is
reported beside it), the first trial count at which the mean curve reaches the target (per seed and over
all seeds); ``None`` when it is not reached within ``trials``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from perceptlab.analysis.simulate import (
    SYNTHETIC_NOTE,
    choice_probabilities,
    simulate_observers,
)
from perceptlab.errors import PerceptLabError
from perceptlab.experiment.active import (
    DEFAULT_LAPSE,
    DEFAULT_TEMPERATURES,
    ActiveSelector,
    hypothesis_probs,
    learn_prototypes,
    library_model_probs,
)

METHODS = ("bald", "random")


@dataclass
class BenchSettings:
    """Parameters of :func:`run_bench` (written beside the results)."""

    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    pool: str = "dirichlet"  # or "library"
    library: str | None = None
    models: tuple[str, ...] = ()  # library pool: the models (first = reference); dirichlet: ignored
    stimuli: int = 2500  # dirichlet: pool + held-out
    heldout: int = 500
    classes: int = 10
    n_models: int = 3
    model_noise: float = 1.0
    boundary_share: float = 0.5
    clusters: int = 4
    bias_strength: float = 1.5  # simulate_observers' prototype strength (its default)
    train_participants: int = 40
    train_trials: int = 300
    observers: int = 10
    trials: int = 150
    prototypes: str = "learnt"  # or "known"
    temperatures: tuple[float, ...] = DEFAULT_TEMPERATURES
    lapse: float = DEFAULT_LAPSE
    targets: tuple[float, ...] = (0.5, 0.8, 0.9, 0.95)
    cluster_mass: float = 0.9

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BenchResult:
    settings: BenchSettings
    curves: pd.DataFrame  # seed, method, trial, accuracy, cross_entropy, p_true_cluster, recovered
    table: pd.DataFrame  # one row per target (and seed 'all')
    cluster_table: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)


def dirichlet_pool(rng: np.random.Generator, n: int, c: int, n_models: int, noise: float,
                   boundary_share: float) -> dict[str, np.ndarray]:
    """Synthetic model probabilities: latent logits (boundary or clear stimuli) seen by each model
    through its own Gaussian logit noise."""
    z = rng.normal(0.0, 1.0, size=(n, c))
    a = rng.integers(c, size=n)
    b = (a + rng.integers(1, c, size=n)) % c
    boundary = rng.random(n) < boundary_share
    d = rng.uniform(-1.5, 1.5, size=n)
    rows = np.arange(n)
    z[rows, a] += np.where(boundary, 4.0 + d, 6.0)
    z[rows[boundary], b[boundary]] += 4.0 - d[boundary]
    out = {}
    for m in range(n_models):
        logits = z + rng.normal(0.0, noise, size=(n, c))
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        out[f"model{m + 1}"] = p / p.sum(axis=1, keepdims=True)
    return out


def _first_reach(curve: np.ndarray, target: float) -> int | None:
    hit = np.flatnonzero(curve >= target - 1e-12)
    return int(hit[0]) if len(hit) else None


def _cluster_map(learnt: dict[str, int], truth: pd.DataFrame) -> dict[int, int]:
    """Learnt cluster -> the true cluster most of its members are in."""
    t = truth.set_index("participant")["cluster"]
    df = pd.DataFrame({"learnt": list(learnt.values()), "true": t.loc[list(learnt)].to_numpy()})
    return {int(k): int(g["true"].mode().iloc[0]) for k, g in df.groupby("learnt")}


def run_bench(settings: BenchSettings, progress: Any = None) -> BenchResult:
    s = settings
    if s.pool not in ("dirichlet", "library"):
        raise PerceptLabError(f"unknown pool {s.pool!r}", fix="use --pool dirichlet or --pool library")
    if s.prototypes not in ("learnt", "known"):
        raise PerceptLabError(f"unknown prototypes {s.prototypes!r}", fix="use learnt or known")
    if s.pool == "library":
        if not s.library or len(s.models) < 1:
            raise PerceptLabError("a library pool needs --library and --models", fix="e.g. --models vgg,cornet,mlp")
        lib_ids, lib_probs = library_model_probs(s.library, list(s.models))
    rows: list[dict[str, Any]] = []
    timings: list[float] = []
    info: list[dict[str, Any]] = []
    for seed in s.seeds:
        rng = np.random.default_rng([seed, 1501])
        if s.pool == "dirichlet":
            model_probs = dirichlet_pool(rng, s.stimuli, s.classes, s.n_models, s.model_noise, s.boundary_share)
            ids = [f"x{i:05d}" for i in range(s.stimuli)]
        else:
            ids, model_probs = list(lib_ids), dict(lib_probs)
        n = len(ids)
        names = list(model_probs)
        c = model_probs[names[0]].shape[1]
        classes = tuple(str(i) for i in range(c))
        if not 0 < s.heldout < n - s.trials + 1:
            raise PerceptLabError(f"{n} stimuli cannot hold {s.heldout} held-out ones and {s.trials} trials",
                                  fix="lower --heldout or --trials, or use more stimuli")
        perm = rng.permutation(n)
        held = perm[: s.heldout]
        pool_ids = [ids[i] for i in perm[s.heldout:]]
        held_ids = [ids[i] for i in held]
        ref = model_probs[names[0]]
        total = s.train_participants + s.observers
        trials, truth = simulate_observers(ids, ref, total, min(s.train_trials, n), s.clusters, seed,
                                           bias_strength=s.bias_strength)
        bias_cols = [f"bias_{k}" for k in range(c)]
        train_names = set(truth["participant"].iloc[: s.train_participants])
        if s.prototypes == "known":
            protos = truth.groupby("cluster")[bias_cols].mean().sort_index().to_numpy()
            cmap = {k + 1: k + 1 for k in range(len(protos))}
            verdict = "known (mean true bias per cluster)"
        else:
            earlier = trials[trials["subject_id"].isin(train_names)].drop(columns="stimulus").rename(
                columns={"subject_id": "participant", "stimulus_id": "stimulus"})
            learnt = learn_prototypes(earlier, ref, ids, k=s.clusters, min_overlap=5)
            protos = learnt.prototypes
            cmap = _cluster_map(learnt.labels, truth)
            verdict = learnt.verdict
        probs, hyps = hypothesis_probs(model_probs, protos, s.temperatures, s.lapse)
        info.append({"seed": seed, "prototypes": verdict, "learnt_clusters": len(protos),
                     "hypotheses": len(hyps), "pool": len(pool_ids), "heldout": len(held_ids),
                     "cluster_map": {str(k): v for k, v in cmap.items()}})
        hyp_cluster = np.array([cmap.get(h.cluster, -1) for h in hyps])
        hold_h = probs[held]  # (n_held, M, C)
        for o in range(s.observers):
            row = truth.iloc[s.train_participants + o]
            true_model = names[int(np.random.default_rng([seed, o, 77]).integers(len(names)))]
            p_true = choice_probabilities(model_probs[true_model], row[bias_cols].to_numpy(float),
                                          float(row["temperature"]), float(row["lapse"]))
            pt_held = p_true[held]
            ceiling = float(pt_held.max(axis=1).mean())
            best_h = float(np.take_along_axis(pt_held[:, None, :].repeat(len(hyps), 1),
                                              hold_h.argmax(axis=2)[:, :, None], axis=2)[..., 0].mean(0).max())
            true_cluster = int(row["cluster"])
            for method in METHODS:
                sel = ActiveSelector(probs, ids, classes, seed=seed * 1000 + o, method=method,
                                     hypotheses=hyps, candidates=pool_ids)
                resp_rng = np.random.default_rng([seed, o, 99])
                uniforms = resp_rng.random(s.trials)
                for t in range(s.trials + 1):
                    pred = sel.predict(held_ids)
                    acc = float(pt_held[np.arange(len(held)), pred.argmax(axis=1)].mean())
                    xent = float(-(pt_held * np.log(np.clip(pred, 1e-12, None))).sum(axis=1).mean())
                    w = sel.posterior()
                    mass = np.bincount(np.maximum(hyp_cluster, 0), weights=w, minlength=s.clusters + 1)
                    p_tc = float(mass[true_cluster])
                    recovered = bool(int(np.argmax(mass[1:])) + 1 == true_cluster and p_tc >= s.cluster_mass)
                    rows.append({"seed": seed, "observer": o, "method": method, "trial": t, "accuracy": acc,
                                 "cross_entropy": xent, "p_true_cluster": p_tc, "recovered": recovered,
                                 "ceiling": ceiling, "best_hypothesis": best_h, "true_model": true_model,
                                 "true_cluster": true_cluster})
                    if t == s.trials:
                        break
                    t0 = time.perf_counter()
                    sid, _ = sel.next()
                    timings.append(time.perf_counter() - t0)
                    i = sel._index[sid]  # noqa: SLF001  (the bench knows the truth of its own pool)
                    r = int(np.searchsorted(np.cumsum(p_true[i]), uniforms[t] * p_true[i].sum()))
                    sel.observe(sid, min(r, c - 1))
            if progress is not None:
                progress(seed, o)
    curves = pd.DataFrame(rows)
    table, cluster_table = _tables(curves, s)
    t_ms = np.asarray(timings) * 1000
    summary = {
        "synthetic": True, "note": SYNTHETIC_NOTE, "settings": s.to_dict(), "runs": info,
        "next_ms": {"median": float(np.median(t_ms)), "p99": float(np.percentile(t_ms, 99)),
                    "max": float(t_ms.max()), "calls": len(t_ms)},
        "ceiling": float(curves["ceiling"].mean()), "best_hypothesis": float(curves["best_hypothesis"].mean()),
    }
    return BenchResult(s, curves, table, cluster_table, summary)


def _tables(curves: pd.DataFrame, s: BenchSettings) -> tuple[pd.DataFrame, pd.DataFrame]:
    out = []
    groups = [("all", curves)] + [(str(k), g) for k, g in curves.groupby("seed")]
    for seed, g in groups:
        mean = g.groupby(["method", "trial"])["accuracy"].mean()
        prior = float(mean.loc[("bald", 0)])
        ceiling = float(g["ceiling"].mean())
        best = float(g["best_hypothesis"].mean())
        for f in s.targets:
            target = prior + f * (best - prior)
            ta = _first_reach(mean.loc["bald"].to_numpy(), target)
            tr = _first_reach(mean.loc["random"].to_numpy(), target)
            out.append({"seed": seed, "gap_fraction": f, "target_accuracy": round(target, 4),
                        "prior_accuracy": round(prior, 4), "ceiling": round(ceiling, 4),
                        "best_hypothesis": round(best, 4),
                        "trials_active": ta, "trials_random": tr,
                        "ratio_random_over_active": (round(tr / ta, 2) if ta and tr else None),
                        "random_reached": tr is not None})
    table = pd.DataFrame(out)
    crow = []
    for method, g in curves.groupby("method"):
        per = []
        for _, og in g.groupby(["seed", "observer"]):
            rec = og.sort_values("trial")["recovered"].to_numpy()
            per.append(_first_reach(rec.astype(float), 1.0))
        got = [p for p in per if p is not None]
        share = g.groupby("trial")["recovered"].mean()
        crow.append({"method": method, "observers": len(per), "recovered_by_end": len(got),
                     "median_trials_to_recover": (float(np.median(got)) if got else None),
                     "trials_to_80pct_recovered": _first_reach(share.to_numpy(), 0.8),
                     "final_accuracy": round(float(g[g["trial"] == s.trials]["accuracy"].mean()), 4)})
    return table, pd.DataFrame(crow)


def plot_bench(result: BenchResult, path: Path) -> None:
    """Held-out accuracy and cluster recovery vs trials, active vs random (PNG, matplotlib Agg)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
    from matplotlib.figure import Figure  # noqa: PLC0415

    c = result.curves
    fig = Figure(figsize=(10, 4))
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    colors = {"bald": "tab:blue", "random": "tab:orange"}
    for method, g in c.groupby("method"):
        m = g.groupby("trial")["accuracy"]
        mean, sd = m.mean(), m.std().fillna(0) / np.sqrt(max(1, g.groupby(["seed", "observer"]).ngroups))
        ax1.plot(mean.index, mean.values, color=colors[method], label=f"{method}")
        ax1.fill_between(mean.index, mean - sd, mean + sd, color=colors[method], alpha=0.2)
        share = g.groupby("trial")["recovered"].mean()
        ax2.plot(share.index, share.values, color=colors[method], label=method)
    ax1.axhline(result.summary["ceiling"], color="k", ls="--", lw=1, label="ceiling (true parameters)")
    ax1.axhline(result.summary["best_hypothesis"], color="gray", ls=":", lw=1, label="best hypothesis")
    ax1.set_xlabel("trials")
    ax1.set_ylabel("held-out accuracy (expected)")
    ax1.legend(fontsize=8)
    ax2.set_xlabel("trials")
    ax2.set_ylabel(f"share with cluster recovered (mass >= {result.settings.cluster_mass:g})")
    ax2.set_ylim(0, 1.02)
    ax2.legend(fontsize=8)
    fig.suptitle(f"SYNTHETIC observers: active (BALD) vs random, {len(result.settings.seeds)} seeds x "
                 f"{result.settings.observers} observers, pool {result.settings.pool}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
