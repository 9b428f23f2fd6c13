"""Active stimulus design: BALD, the posterior, random mode, timing, the CLI and the benchmark."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from perceptlab.errors import PerceptLabError
from perceptlab.experiment.active import (
    ActiveSelector,
    Hypothesis,
    fit_bias,
    hypothesis_probs,
    torn_models,
)

CLASSES = ("a", "b", "c")


def _toy() -> tuple[np.ndarray, list[str]]:
    """Two hypotheses over three classes. s_same: both predict the same (uninformative);
    s_split: they predict opposite answers with certainty (most informative); s_noisy: they differ a
    little (some information)."""
    p = np.array([
        [[0.8, 0.1, 0.1], [0.8, 0.1, 0.1]],      # s_same
        [[0.98, 0.01, 0.01], [0.01, 0.98, 0.01]],  # s_split
        [[0.5, 0.3, 0.2], [0.3, 0.5, 0.2]],      # s_noisy
        [[1 / 3, 1 / 3, 1 / 3], [1 / 3, 1 / 3, 1 / 3]],  # s_flat: ambiguous to both, no information
    ])  # fmt: skip
    return p, ["s_same", "s_split", "s_noisy", "s_flat"]


def test_bald_picks_the_stimulus_the_hypotheses_disagree_on():
    p, ids = _toy()
    sel = ActiveSelector(p, ids, CLASSES)
    gains = dict(zip(ids, sel.gains()))
    assert gains["s_same"] == pytest.approx(0.0, abs=1e-9)
    assert gains["s_flat"] == pytest.approx(0.0, abs=1e-9)  # ambiguous is not informative
    assert gains["s_split"] > gains["s_noisy"] > 0.01
    # nearly one bit (ln 2 nats) for a perfectly diagnostic stimulus under a 50/50 prior
    assert gains["s_split"] == pytest.approx(np.log(2), abs=0.1)
    sid, g = sel.next()
    assert sid == "s_split" and g == pytest.approx(gains["s_split"])
    assert [s for s, _ in sel.ranked(2)] == ["s_split", "s_noisy"]
    assert sel.next(exclude={"s_split"})[0] == "s_noisy"


def test_observe_updates_by_bayes_and_never_repeats():
    p, ids = _toy()
    sel = ActiveSelector(p, ids, CLASSES)
    sel.observe("s_split", "b")
    w = sel.posterior()
    assert w[1] == pytest.approx(0.98 / 0.99, rel=1e-6)
    assert sel.next()[0] != "s_split"
    np.testing.assert_allclose(sel.predict(["s_split"])[0], w @ p[1], rtol=1e-9)
    sel.observe("s_noisy", 1)  # a class index works too
    with pytest.raises(PerceptLabError, match="not one of the classes"):
        sel.observe("s_same", "z")
    with pytest.raises(PerceptLabError, match="unknown stimulus"):
        sel.observe("nope", "a")


def test_posterior_concentrates_on_the_true_hypothesis():
    rng = np.random.default_rng(1)
    n, m, c = 400, 12, 5
    p = rng.dirichlet(np.ones(c) * 0.5, size=(n, m))
    ids = [f"s{i}" for i in range(n)]
    truth = 7
    for method in ("bald", "random"):
        sel = ActiveSelector(p, ids, [str(k) for k in range(c)], seed=3, method=method)
        r = np.random.default_rng(5)
        for _ in range(40):
            sid, _ = sel.next()
            i = ids.index(sid)
            sel.observe(sid, int(r.choice(c, p=p[i, truth])))
        assert int(np.argmax(sel.posterior())) == truth
        assert sel.posterior()[truth] > 0.95


def test_bald_learns_faster_than_random_on_a_mixed_pool():
    """Most stimuli are uninformative (every hypothesis agrees): BALD finds the few diagnostic ones."""
    rng = np.random.default_rng(2)
    n, m, c = 300, 6, 3
    p = np.tile(np.array([0.9, 0.05, 0.05]), (n, m, 1))
    diag = rng.choice(n, 30, replace=False)
    for i in diag:
        p[i] = rng.dirichlet(np.ones(c) * 0.3, size=m)
    ids = [f"s{i}" for i in range(n)]
    truth, masses = 2, {}
    for method in ("bald", "random"):
        sel = ActiveSelector(p, ids, CLASSES, seed=0, method=method)
        r = np.random.default_rng(9)
        for _ in range(10):
            sid, _ = sel.next()
            sel.observe(sid, int(r.choice(c, p=p[ids.index(sid), truth])))
        masses[method] = sel.posterior()[truth]
    assert masses["bald"] > 0.9 > masses["random"]


def test_random_mode_is_seeded_and_draws_from_the_candidates_only():
    p, ids = _toy()
    picks = []
    for _ in range(2):
        sel = ActiveSelector(p, ids, CLASSES, seed=11, method="random", candidates=["s_same", "s_flat", "s_noisy"])
        seq = []
        for _ in range(3):
            sid, g = sel.next()
            assert g >= 0
            seq.append(sid)
            sel.observe(sid, "a")
        picks.append(seq)
    assert picks[0] == picks[1] and sorted(picks[0]) == ["s_flat", "s_noisy", "s_same"]
    with pytest.raises(PerceptLabError, match="no stimulus left"):
        sel.next()
    sel.predict(["s_split"])  # a stimulus outside the pool can still be predicted
    with pytest.raises(PerceptLabError, match="unknown selection method"):
        ActiveSelector(p, ids, CLASSES, method="greedy")


def test_next_is_fast_for_2000_stimuli_and_50_hypotheses():
    rng = np.random.default_rng(0)
    n, m, c = 2000, 50, 10
    p = rng.dirichlet(np.ones(c) * 0.5, size=(n, m))
    sel = ActiveSelector(p, [f"s{i}" for i in range(n)], [str(k) for k in range(c)])
    times = []
    for _ in range(10):
        t0 = time.perf_counter()
        sid, _ = sel.next()
        times.append(time.perf_counter() - t0)
        sel.observe(sid, "0")
    assert np.median(times) < 0.2  # the acceptance bound; measured ~1 ms on this CPU


def test_hypotheses_from_models_prototypes_and_temperatures():
    rng = np.random.default_rng(0)
    mp = {"m1": rng.dirichlet(np.ones(4), 20), "m2": rng.dirichlet(np.ones(4), 20)}
    protos = np.array([[1.0, -1.0, 0, 0], [0, 0, 1.0, -1.0], [0.5, 0.5, -0.5, -0.5]])
    probs, labels = hypothesis_probs(mp, protos, (0.8, 1.2), 0.05)
    assert probs.shape == (20, 12, 4) and len(labels) == 12
    assert labels[0] == Hypothesis("m1", 1, 0.8, 0.05)
    np.testing.assert_allclose(probs.sum(axis=2), 1.0)
    assert probs.min() >= 0.05 / 4 - 1e-12  # the lapse floor
    sel = ActiveSelector.from_model_probs(mp, [f"s{i}" for i in range(20)], list("wxyz"), prototypes=protos,
                                          temperatures=(0.8, 1.2), lapse=0.05)
    assert sum(sel.marginal("cluster").values()) == pytest.approx(1.0)
    assert set(sel.marginal("model")) == {"m1", "m2"}
    assert set(torn_models(sel)) == {"m1", "m2"}
    with pytest.raises(PerceptLabError, match="differ in shape"):
        hypothesis_probs({"a": np.ones((3, 4)) / 4, "b": np.ones((2, 4)) / 4})


def test_fit_bias_recovers_a_known_bias():
    rng = np.random.default_rng(4)
    p = rng.dirichlet(np.ones(4), 3000)
    bias = np.array([1.0, -0.5, 0.0, -0.5])
    logits = np.log(p) + bias
    q = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    r = np.array([rng.choice(4, p=row) for row in q])
    np.testing.assert_allclose(fit_bias(p, r), bias - bias.mean(), atol=0.15)


def test_from_library_uses_stored_probabilities(tmp_path):
    from perceptlab.data.library import Stimulus, StimulusLibrary

    lib = StimulusLibrary.create(tmp_path / "lib")
    rng = np.random.default_rng(0)
    recs = []
    for i in range(6):
        pv = rng.dirichlet(np.ones(10), 2)
        recs.append(Stimulus(mode="imported", probs={"m1": pv[0].tolist(), "m2": pv[1].tolist()},
                             status="rejected" if i == 5 else "new"))
    ids = lib.add(recs, np.zeros((6, 28, 28), np.uint8))
    sel = ActiveSelector.from_library(lib, ["m1", "m2"])
    lib.close()
    assert sel.stimulus_ids == ids[:5]  # the rejected one is left out
    assert sel.classes == tuple(str(i) for i in range(10))
    assert len(sel.hypotheses) == 2 * 4
    sid, g = sel.next()
    assert sid in ids and g > 0


def _library_and_trials(tmp_path):
    """A library with two models' stored probabilities and simulated trials of 12 participants."""
    from perceptlab.analysis.simulate import simulate_observers
    from perceptlab.data.library import Stimulus, StimulusLibrary
    from perceptlab.experiment.bench_active import dirichlet_pool

    rng = np.random.default_rng(0)
    mp = dirichlet_pool(rng, 120, 10, 2, 1.0, 0.5)
    lib = StimulusLibrary.create(tmp_path / "lib")
    ids = lib.add([Stimulus(mode="imported", probs={"vgg": mp["model1"][i].tolist(), "mlp": mp["model2"][i].tolist()})
                   for i in range(120)], np.zeros((120, 28, 28), np.uint8))
    lib.close()
    trials, _ = simulate_observers(ids, mp["model1"], 12, 60, 3, 0)
    path = tmp_path / "trials.csv"
    trials.to_csv(path, index=False)
    return tmp_path / "lib", path


def test_cli_active_next(tmp_path, capsys):
    from perceptlab.cli import main

    lib, trials = _library_and_trials(tmp_path)
    assert main(["active", "next", "--library", str(lib), "--trials", str(trials), "--participant", "sim001",
                 "--models", "vgg,mlp", "--clusters", "3", "--top", "5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["trials_used"] == 60 and out["hypotheses"] == 2 * 3 * 4
    assert len(out["next"]) == 5
    gains = [r["gain_nats"] for r in out["next"]]
    assert gains == sorted(gains, reverse=True)
    seen = set(__import__("pandas").read_csv(trials).query("subject_id == 'sim001'")["stimulus_id"])
    assert not seen & {r["stimulus_id"] for r in out["next"]}
    assert main(["active", "next", "--library", str(lib), "--trials", str(trials), "--participant", "sim002",
                 "--models", "vgg", "--no-prototypes", "--top", "3"]) == 0
    text = capsys.readouterr().out
    assert "gain (nats)" in text and "sim002: 60 trials" in text
    assert main(["active", "next", "--library", str(lib), "--trials", str(trials), "--participant", "nobody",
                 "--models", "vgg"]) != 0


def test_bench_active_tiny_run(tmp_path, capsys):
    from perceptlab.cli import main

    out = tmp_path / "bench"
    assert main(["bench-active", "--seeds", "0,1", "--observers", "2", "--trials", "25", "--stimuli", "400",
                 "--heldout", "100", "--train-participants", "20", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "SYNTHETIC" in text
    summary = json.loads((out / "bench_active.json").read_text())
    assert summary["synthetic"] is True and "SYNTHETIC" in summary["note"]
    assert summary["ceiling"] >= summary["best_hypothesis"] - 1e-9
    assert {r["seed"] for r in summary["table"]} == {"all", "0", "1"}
    for name in ("bench_active_table.csv", "bench_active_curves.csv", "bench_active.png"):
        assert (out / name).stat().st_size > 0
    curves = __import__("pandas").read_csv(out / "bench_active_curves.csv")
    assert set(curves["method"]) == {"bald", "random"} and curves["trial"].max() == 25
    # same observers, same prior, for both methods
    first = curves[curves["trial"] == 0].groupby("method")["accuracy"].mean()
    assert first["bald"] == pytest.approx(first["random"])


def test_generate_candidates_between_the_torn_models(tmp_path):
    """Tiny random models: K controversial images between the two models with most posterior mass are
    scored by every hypothesis model and join the pool (and the library)."""
    from perceptlab.data.library import StimulusLibrary
    from perceptlab.engine.registry import Registry, predict_probs
    from perceptlab.engine.sampler import SamplerSettings
    from perceptlab.experiment.active import generate_candidates
    from tests.conftest import build_tiny_registry

    reg = Registry(build_tiny_registry(tmp_path / "w"), tmp_path / "user")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(8, 28, 28), dtype=np.uint8)
    mp = {name: predict_probs(name, images, reg) for name in ("vgg", "lrm", "cornet")}
    ids = [f"s{i}" for i in range(8)]
    sel = ActiveSelector.from_model_probs(mp, ids, [str(k) for k in range(10)], temperatures=(1.0,))
    sel.observe("s0", int(np.argmax(mp["vgg"][0])))  # tilt the posterior a little
    m1, m2 = torn_models(sel)
    assert m1 != m2
    lib = StimulusLibrary.create(tmp_path / "lib")
    settings = SamplerSettings(steps=2, resample=1, grad="x0", batch_size=2)
    new = generate_candidates(sel, 2, registry=reg, library=lib, pair=(3, 5), settings=settings, seed=7)
    assert len(new) == 2 and set(new) <= set(lib.ids())
    rec = lib.get(new[0])
    assert (rec.mode, rec.classifier, rec.classifier2, rec.class_a, rec.class_b) == ("controversial", m1, m2, 3, 5)
    lib.close()
    assert sel.stimulus_ids == ids + new
    got = sel.predict(new)
    assert got.shape == (2, 10) and np.allclose(got.sum(axis=1), 1)
    assert sel.next(exclude=set(ids))[0] in new  # the new stimuli are candidates


def test_from_design_uses_the_adaptive_block(tmp_path):
    from perceptlab.data.library import Stimulus, StimulusLibrary
    from perceptlab.experiment.design import Design

    rng = np.random.default_rng(3)
    with StimulusLibrary.create(tmp_path / "lib") as lib:
        ids = lib.add([Stimulus(mode="imported", probs={"vgg": rng.dirichlet(np.ones(10)).tolist(),
                                                        "mlp": rng.dirichlet(np.ones(10)).tolist()})
                       for _ in range(10)], np.zeros((10, 28, 28), np.uint8))
    names = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    design = Design(classes=names, trials=[], library=str(tmp_path / "lib"), order_seed=4,
                    adaptive={"method": "bald", "n_trials": 3, "pool": ids[:4], "models": ["vgg", "mlp"]})
    sel = ActiveSelector.from_design(design)
    assert sel.classes == tuple(names) and sel.method == "bald" and sel.seed == 4
    shown = []
    for _ in range(3):
        sid, _ = sel.next()
        shown.append(sid)
        sel.observe(sid, "three")
    assert len(set(shown)) == 3 and set(shown) <= set(ids[:4])
    design.adaptive["pool"] = ["s999999"]
    with pytest.raises(PerceptLabError, match="does not hold"):
        ActiveSelector.from_design(design)
