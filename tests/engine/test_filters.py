"""Acceptance filters on hand-made probabilities."""

import json

import numpy as np
import pytest

from perceptlab.data.library import Stimulus
from perceptlab.engine.filters import (
    FilterSettings,
    Verdict,
    agreement_panel,
    percentile_thresholds,
    rejudge,
    verdict,
    verdicts,
    with_thresholds,
)
from perceptlab.errors import PerceptLabError

PAPER = FilterSettings()


def probs(**by_class: float) -> np.ndarray:
    """10 probabilities with the given classes (p3=0.45, ...) and the rest shared evenly."""
    p = np.zeros(10)
    for key, v in by_class.items():
        p[int(key[1:])] = v
    rest = [c for c in range(10) if p[c] == 0]
    p[rest] = (1 - p.sum()) / len(rest)
    return p


def test_uncertainty_pass():
    assert verdict("uncertainty", 3, 5, probs(p3=0.45, p5=0.44), 0.8, PAPER) == Verdict(True, "")


def test_uncertainty_reasons():
    v = verdict("uncertainty", 3, 5, probs(p3=0.45, p8=0.44), 0.8, PAPER)
    assert not v.passed
    assert v.reason.startswith("top-two classes are 3 and 8, not the pair 3-5")
    v = verdict("uncertainty", 3, 5, probs(p3=0.31, p5=0.6), 0.8, PAPER)
    assert v.reason == "p(3)=0.31 <= 0.4"
    v = verdict("uncertainty", 3, 5, probs(p3=0.45, p5=0.44), 0.42, PAPER)
    assert v.reason == "judge 0.42 <= 0.5"
    v = verdict("uncertainty", 3, 5, probs(p5=0.35, p8=0.5), 0.1, PAPER)
    assert (
        v.reason
        == "top-two classes are 8 and 5, not the pair 3-5; p(3)=0.02 <= 0.4; p(5)=0.35 <= 0.4; judge 0.10 <= 0.5"
    )


def test_thresholds_are_editable():
    p = probs(p3=0.31, p5=0.6)
    assert not verdict("uncertainty", 3, 5, p, 0.3, PAPER).passed
    loose = FilterSettings(min_prob=0.3, min_judge=None)
    assert verdict("uncertainty", 3, 5, p, None, loose).passed
    assert verdict("uncertainty", 3, 5, p, None, PAPER).reason.endswith("no judge score")


def test_controversial_verdicts():
    p1, p2 = probs(p3=0.95), probs(p5=0.97)
    names = ("vgg", "cornet")
    assert verdict("controversial", 3, 5, p1, 0.9, PAPER, p2, names).passed
    v = verdict("controversial", 3, 5, probs(p3=0.85), 0.9, PAPER, probs(p7=0.95), names)
    assert v.reason == "vgg max p=0.85 <= 0.9; cornet predicts 7, not 5"
    with pytest.raises(ValueError):
        verdict("controversial", 3, 5, p1, 0.9, PAPER)


def test_batch_verdicts_match_single_ones():
    p = np.stack([probs(p3=0.45, p5=0.44), probs(p4=0.2, p9=0.7)])
    out = verdicts("uncertainty", [(3, 5), (4, 9)], p, np.array([0.9, 0.9]), PAPER)
    assert [v.passed for v in out] == [True, False]
    assert out[1].reason == "p(4)=0.20 <= 0.4"


def test_percentile_filter():
    rng = np.random.default_rng(0)
    ref = rng.dirichlet(np.ones(10) * 0.3, size=500)
    k = percentile_thresholds(ref, 75)
    np.testing.assert_allclose(k, np.percentile(ref, 75, axis=0))
    settings = FilterSettings(kind="percentile", thresholds={"vgg": k.tolist()})
    p = np.full(10, 0.0)
    p[3], p[5] = k[3] + 0.01, k[5] + 0.01
    assert verdict("uncertainty", 3, 5, p, 0.9, settings, names=("vgg", "")).passed
    p[5] = k[5] / 2
    v = verdict("uncertainty", 3, 5, p, 0.9, settings, names=("vgg", ""))
    assert not v.passed and v.reason.startswith("p(5)=") and "75th percentile" in v.reason
    with pytest.raises(PerceptLabError, match="no thresholds"):
        verdict("uncertainty", 3, 5, p, 0.9, settings, names=("mlp", ""))
    with pytest.raises(PerceptLabError):
        percentile_thresholds(np.zeros((3, 4)))
    # with_thresholds fills in each classifier's thresholds at the filter's q, keeping the others
    filled = with_thresholds(FilterSettings(kind="percentile", percentile=90, thresholds={"vgg": k.tolist()}),
                             {"mlp": ref[::-1]})
    assert filled.thresholds["vgg"] == k.tolist()
    np.testing.assert_allclose(filled.thresholds["mlp"], np.percentile(ref[::-1], 90, axis=0))


def test_rejudge_stored_record_with_new_thresholds():
    rec = Stimulus(
        id="s000001", mode="uncertainty", class_a=3, class_b=5, classifier="vgg",
        probs={"vgg": probs(p3=0.38, p5=0.5).tolist()}, judge=0.7, passed=False,
    )  # fmt: skip
    assert rejudge(rec, PAPER).reason == "p(3)=0.38 <= 0.4"
    assert rejudge(rec, FilterSettings(min_prob=0.35)).passed
    with pytest.raises(PerceptLabError, match="no stored probabilities"):
        rejudge(Stimulus(mode="uncertainty", class_a=3, class_b=5, classifier="vit"), PAPER)


def test_filter_settings_round_trip():
    s = FilterSettings(kind="percentile", min_judge=None, thresholds={"vgg": [0.1] * 10})
    assert FilterSettings.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    with pytest.raises(PerceptLabError):
        FilterSettings(kind="strict").validate()


def test_zoo_agreement_counts_other_classifiers_never_guides_or_observers():
    on, off = probs(p3=0.45, p5=0.44), probs(p3=0.45, p8=0.44)
    agree2 = FilterSettings(agree=2)
    others = {"vgg": on, "cornet": on, "vit": on, "mlp": off, "lrm": on, "obs-cnn": on}
    assert agreement_panel(list(others), ("vgg", "cornet"), agree2) == ["vit", "mlp", "lrm"]
    assert verdict("uncertainty", 3, 5, on, 0.8, agree2, others=others, names=("vgg", ""), guides=("cornet",)).passed
    # the guides and the observer agree, but only vit of the others does
    others["lrm"] = off
    v = verdict("uncertainty", 3, 5, on, 0.8, agree2, others=others, names=("vgg", ""), guides=("cornet",))
    assert not v.passed and v.reason == "1 of 3 other zoo classifiers put 3-5 in their top two, fewer than 2"
    # named panel; controversial mode asks for the pair in the top two as well
    named = FilterSettings(agree=1, agree_with=["mlp", "lrm"])
    assert "0 of 2" in verdict("uncertainty", 3, 5, on, 0.8, named, others=others).reason
    confident = probs(p3=0.95)
    cv = verdict("controversial", 3, 5, confident, 0.8, FilterSettings(agree=1), probs(p5=0.95), ("cornet", "vgg"), {"vit": on})
    assert cv.passed
    # off by default: nothing asked of the others
    assert verdict("uncertainty", 3, 5, on, 0.8, PAPER, others={"vit": off}).passed


def test_zoo_agreement_refuses_observers_and_too_small_panels():
    with pytest.raises(PerceptLabError, match="observers never filter"):
        FilterSettings(agree=1, agree_with=["vit", "obs-resnet"]).validate()
    with pytest.raises(PerceptLabError):
        FilterSettings(agree=-1).validate()
    on = probs(p3=0.45, p5=0.44)
    with pytest.raises(PerceptLabError, match="only 1 scored"):
        verdict("uncertainty", 3, 5, on, 0.8, FilterSettings(agree=2), others={"vit": on, "obs-cnn": on})
    with pytest.raises(PerceptLabError, match="no probabilities of mlp"):
        verdict("uncertainty", 3, 5, on, 0.8, FilterSettings(agree=1, agree_with=["mlp"]), others={"vit": on})


def test_rejudge_with_agreement_skips_the_stored_ensemble_and_observers():
    on, off = probs(p3=0.45, p5=0.44), probs(p3=0.45, p8=0.44)
    rec = Stimulus(
        mode="uncertainty", class_a=3, class_b=5, classifier="vgg", judge=0.9,
        probs={"vgg": list(on), "cornet": list(on), "vit": list(off), "obs-cnn": list(on)},
        settings={"sampler": {"ensemble": ["cornet"]}},
    )  # fmt: skip
    assert not rejudge(rec, FilterSettings(agree=1)).passed
    rec.probs["vit"] = list(on)
    assert rejudge(rec, FilterSettings(agree=1)).passed


def test_stroke_check_reads_the_image_and_names_the_fault():
    on = probs(p3=0.45, p5=0.44)
    clean = np.zeros((28, 28), np.uint8)
    clean[4:24, 13:15] = 255
    specked = clean.copy()
    specked[5, 3] = 255
    strokes = FilterSettings(strokes=True)
    assert verdict("uncertainty", 3, 5, on, 0.8, strokes, image=clean).passed
    v = verdict("uncertainty", 3, 5, on, 0.8, strokes, image=specked)
    assert not v.passed and v.reason == "1 detached speck(s) of ink"
    assert verdict("uncertainty", 3, 5, on, 0.8, PAPER, image=specked).passed  # off in the paper filter
    with pytest.raises(PerceptLabError, match="needs the image"):
        verdict("uncertainty", 3, 5, on, 0.8, strokes)
    batch = verdicts("uncertainty", [(3, 5)] * 2, np.stack([on, on]), np.array([0.9, 0.9]), strokes, images=np.stack([clean, specked]))
    assert [x.passed for x in batch] == [True, False]
    rec = Stimulus(mode="uncertainty", class_a=3, class_b=5, classifier="vgg", probs={"vgg": on.tolist()}, judge=0.9)
    assert rejudge(rec, strokes, clean).passed and not rejudge(rec, strokes, specked).passed
    assert FilterSettings.from_dict(json.loads(json.dumps(strokes.to_dict()))) == strokes


def test_rejection_kinds_and_description_name_the_parts_of_the_filter():
    from perceptlab.engine.filters import rejection_kinds

    reason = ("top-two classes are 3 and 8, not the pair 3-5; p(5)=0.20 <= 0.4; "
              "1 of 4 other zoo classifiers put 3-5 in their top two, fewer than 2; 2 detached speck(s) of ink; "
              "judge 0.30 <= 0.5")  # fmt: skip
    assert rejection_kinds(reason) == ["thresholds", "zoo agreement", "stroke check", "judge"]
    assert rejection_kinds("") == [] and rejection_kinds("vgg predicts 3, not 5") == ["thresholds"]
    assert FilterSettings().describe() == "paper thresholds, judge > 0.5"
    assert FilterSettings(agree=2, strokes=True, min_judge=None).describe() == (
        "paper thresholds, no judge check, zoo agreement 2, clean strokes")
