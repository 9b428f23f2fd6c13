"""The independent observers: scored beside the zoo, never used to guide or filter; bench reports transfer."""

import numpy as np
import pytest
import torch

from perceptlab.analysis.transfer import confirmations, summarize, top2_on_pair
from perceptlab.data.library import Stimulus
from perceptlab.engine import generate as generate_mod
from perceptlab.data.library import StimulusLibrary
from perceptlab.engine.bench import arm_slug, bench, format_table, parse_arm
from perceptlab.engine.classifiers import build
from perceptlab.engine.filters import FilterSettings
from perceptlab.engine.registry import Registry
from perceptlab.engine.sampler import SamplerSettings, load_models
from perceptlab.errors import PerceptLabError
from tests.conftest import build_tiny_registry, run_gen, save_model


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    folder = build_tiny_registry(tmp_path_factory.mktemp("weights"))
    torch.manual_seed(5)
    save_model(folder, "obs-cnn", "observer", "lenet", build("lenet"))
    save_model(folder, "obs-resnet", "observer", "resnet_s", build("resnet_s"))
    return Registry(folder, user_dir=folder / "_none")


def test_top2_on_pair_and_confirmations():
    p = [0.05, 0.4, 0.0, 0.45, 0.1, 0, 0, 0, 0, 0]
    assert top2_on_pair(p, 3, 1) and top2_on_pair(p, 1, 3) and not top2_on_pair(p, 3, 4)
    probs = {"obs-cnn": p, "vgg": p, "obs-resnet": list(reversed(p))}
    assert confirmations(probs, 1, 3) == {"obs-cnn": True, "obs-resnet": False}
    assert confirmations(probs, None, 3) == {}


def test_summarize_counts_each_observer_and_all():
    good = [0.5, 0.5] + [0.0] * 8
    bad = [0.0] * 8 + [0.5, 0.5]
    recs = [
        Stimulus(mode="uncertainty", class_a=0, class_b=1, probs={"obs-cnn": good, "obs-resnet": good}),
        Stimulus(mode="uncertainty", class_a=0, class_b=1, probs={"obs-cnn": good, "obs-resnet": bad}),
    ]
    s = summarize(recs)
    assert s["obs-cnn"] == {"n": 2, "confirmed": 2, "rate": 1.0}
    assert s["obs-resnet"]["rate"] == 0.5 and s["all"]["rate"] == 0.5


def test_observers_are_not_classifiers(registry):
    assert set(registry.names("observer")) == {"obs-cnn", "obs-resnet"}
    assert "obs-cnn" not in registry.names("classifier")
    with pytest.raises(PerceptLabError):
        registry.entry("obs-cnn", "classifier")
    # so no guidance can be built from one
    with pytest.raises(PerceptLabError):
        load_models(SamplerSettings(classifier="obs-cnn"), registry, "cpu")
    with pytest.raises(PerceptLabError):
        load_models(SamplerSettings(classifier="vgg", ensemble=["obs-resnet"]), registry, "cpu")


def test_generation_scores_observers_but_neither_guides_nor_filters_with_them(registry, monkeypatch):
    built = []
    real = generate_mod.sample_batch

    def spy(settings, models, *a, **k):
        built.append({"classifier": models.classifier, "ensemble": dict(models.ensemble), "c2": models.classifier2})
        return real(settings, models, *a, **k)

    seen = []
    real_verdicts = generate_mod.verdicts

    def spy_verdicts(mode, pairs, p1, judge, filters, p2, names, others=None, guides=(), images=None):
        seen.append((*names, *(others or {}), *guides))
        return real_verdicts(mode, pairs, p1, judge, filters, p2, names, others, guides, images)

    monkeypatch.setattr(generate_mod, "sample_batch", spy)
    monkeypatch.setattr(generate_mod, "verdicts", spy_verdicts)
    settings = SamplerSettings(steps=2, resample=1, batch_size=4, seed=3, classifier="vgg")
    agree = FilterSettings(agree=1)  # the zoo-agreement option asks the other zoo classifiers, not the observers
    _, summary = run_gen(
        generate_mod.generate(settings, [(3, 5)] * 4, filters=agree, registry=registry, keep_rejects=True)
    )
    assert seen and all("lrm" in names for names in seen)
    observers = {id(registry.load(n, kind="observer")) for n in ("obs-cnn", "obs-resnet")}
    for b in built:
        assert id(b["classifier"]) not in observers and not b["ensemble"] and b["c2"] is None
    assert all("obs-cnn" not in names and "obs-resnet" not in names for names in seen)
    rec = summary.records[0]
    assert {"obs-cnn", "obs-resnet", "vgg", "lrm"} <= set(rec.probs)
    np.testing.assert_allclose(sum(rec.probs["obs-cnn"]), 1.0, rtol=1e-5)


def test_parse_arm():
    arm = parse_arm("fast+condition=pair,gamma=0.05,ensemble=vgg/cornet,final_rounds=true,steps=12")
    assert arm.preset == "fast"
    assert arm.changes == {"condition": "pair", "gamma": 0.05, "ensemble": ["vgg", "cornet"], "final_rounds": True, "steps": 12}
    assert parse_arm("reference").changes == {}
    arm = parse_arm("fast+agree=2,agree_with=vit/mlp,steps=16")
    assert arm.changes == {"steps": 16} and arm.filter_changes == {"agree": 2, "agree_with": ["vit", "mlp"]}
    assert arm.filters(None).agree == 2 and arm.filters(FilterSettings(min_judge=None)).min_judge is None
    for bad in ("nope", "fast+gamma", "fast+colour=red", "fast+gamma=big", "fast+agree=obs-cnn", "fast+agree_with=obs-cnn"):
        with pytest.raises(PerceptLabError):
            parse_arm(bad)


def test_bench_interleaves_arms_on_the_same_seeds_and_reports_transfer(registry, tmp_path):
    records, rows = run_gen(
        bench(["draft+steps=2", "draft+steps=2,condition=a"], batch_size=4, batches=2, classifier="vgg", registry=registry,
              budget_s=None, pairs=[(3, 5), (4, 9)], library_root=tmp_path,
              filters=FilterSettings(min_prob=0.0, require_top_two=False, min_judge=None))
    )  # fmt: skip
    order = [(r["preset"], r["pass"]) for r in records if r.get("kind") == "batch"]
    a, b = "draft+steps=2", "draft+steps=2,condition=a"
    assert order == [(a, 1), (b, 1), (a, 2), (b, 2)]
    seeds = {(r["preset"], r["pass"]): r["seeds"] for r in records if r.get("kind") == "batch"}
    assert seeds[(a, 2)] == seeds[(b, 2)] == [1000, 1001, 1002, 1003]
    assert [r["preset"] for r in rows] == [a, b]
    for r in rows:
        assert r["images"] == 8 and r["cpu_seconds_per_image"] > 0
        assert r["accepted"] == 8 and r["acceptance_rate"] == 1.0
        assert set(r["transfer"]) == {"obs-cnn", "obs-resnet", "all"}
        assert 0 <= r["transfer"]["all"] <= min(r["transfer"]["obs-cnn"], r["transfer"]["obs-resnet"])
        assert r["confirmed_per_cpu_minute"] == pytest.approx(r["confirmed"] / (r["cpu_seconds"] / 60))
    assert rows[1]["condition"] == "a"
    table = format_table(rows)
    assert "T obs-cnn" in table and "conf/cpu-min" in table
    assert arm_slug(b) == "draft_steps-2_condition-a"
    with StimulusLibrary.open(tmp_path / arm_slug(b)) as lib:
        recs = lib.records()
        assert len(recs) == 8 and sorted(r.seed for r in recs) == [0, 1, 2, 3, 1000, 1001, 1002, 1003]
