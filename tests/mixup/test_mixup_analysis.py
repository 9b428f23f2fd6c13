import numpy as np
import pandas as pd
import pytest

from perceptlab.errors import PerceptLabError


def test_logistic_fit_recovers_known_parameters():
    from perceptlab.analysis.mixup import fit_logistic, logistic

    rng = np.random.default_rng(0)
    lam = rng.uniform(0, 1, 3000)
    y = (rng.random(3000) < logistic(lam, 0.62, 12.0)).astype(float)
    fit = fit_logistic(lam, y)
    assert abs(fit["m"] - 0.62) < 0.02 and abs(fit["s"] - 12) < 2.5 and fit["bias"] == pytest.approx(fit["m"] - 0.5)
    assert fit_logistic(np.zeros(5), np.ones(5))["m"] is None  # one lambda only: no fit


def test_simulated_biases_are_recovered_by_the_fits(mixup_design):
    from perceptlab.analysis.mixup import analyze_mixup
    from perceptlab.analysis.mixup_simulate import (
        PerceiverSettings,
        recovery,
        simulate_perceivers,
    )
    from perceptlab.experiment.design import OUTPUT_COLUMNS, load_design
    from perceptlab.experiment.mixup import stimulus_info

    design = load_design(mixup_design)
    trials, truth = simulate_perceivers(design, PerceiverSettings(participants=40, seed=2))
    assert list(trials.columns) == list(OUTPUT_COLUMNS) and set(trials["session_id"]) == {"SYNTHETIC"}
    assert "SYNTHETIC" in truth["note"]
    res = analyze_mixup(trials, stimulus_info(design))
    rec = recovery(res["pairs"], truth)
    assert rec["pairs"] == 2 and rec["fit_bias_mae"] < 0.04, rec
    # a fit that ignored the data (bias 0 everywhere) would be off by the true biases
    assert np.mean([abs(p["true_bias"]) for p in rec["per_pair"]]) > rec["fit_bias_mae"]
    assert len(res["individual_fits"]) == 80 and len(res["participants"]) == 40
    assert res["summary"]["slider_mae"] > 0
    curves = res["curves"]
    assert set(curves["lambda"]) == {0.0, 0.25, 0.5, 0.75, 1.0}


def test_analysis_reports_unusable_rows_and_writes_its_files(mixup_design, tmp_path):
    from perceptlab.analysis.mixup import analyze_mixup, write_report
    from perceptlab.experiment.design import load_design
    from perceptlab.experiment.mixup import stimulus_info

    design = load_design(mixup_design)
    info = stimulus_info(design)
    sid = info.index[0]
    trials = pd.DataFrame({
        "participant": ["a"] * 4, "kind": ["slider", "slider", "choice", "slider"],
        "stimulus": [sid, sid, sid, "nope"], "response": ["0.4", "1.7", "9", "0.5"], "confidence": [3, 3, None, 2],
        "line": [2, 3, 4, 5]})
    res = analyze_mixup(trials, info)
    notes = " ".join(res["summary"]["notes"])
    assert "outside [0, 1]" in notes and "lines 3" in notes and "neither class" in notes and "does not describe" in notes
    paths = write_report(res, tmp_path / "r", "SYNTHETIC")
    assert {p.name for p in paths} >= {"mixup_pairs.csv", "summary.json", "mixup_curves.png"}
    with pytest.raises(PerceptLabError, match="no mixup trial"):
        analyze_mixup(trials.assign(stimulus="zzz"), info)


def test_soft_labels_with_confidence_smoothing(mixup_design, tmp_path):
    from perceptlab.analysis.soft_labels import (
        confidence_omega,
        read_soft_labels,
        relabel_rows,
        soft_label_set,
        write_soft_labels,
    )
    from perceptlab.experiment.design import load_design
    from perceptlab.experiment.mixup import stimulus_info

    design = load_design(mixup_design)
    info = stimulus_info(design)
    sid = info.index[info["lambda"] == 0.25][0]
    a, b = info.loc[sid, "class_a"], info.loc[sid, "class_b"]
    trials = pd.DataFrame({"participant": ["p", "q", "q"], "kind": ["slider", "slider", "choice"],
                           "stimulus": [sid] * 3, "response": ["0.2", "0.6", "9"], "confidence": [5, 1, None]})
    classes = list(design.classes)
    rows = relabel_rows(trials, info, classes)
    assert list(rows["label"]) == [int(a), int(b), 9]
    omega = confidence_omega(rows["confidence"], rows["participant"], "row")
    assert omega.tolist() == [1.0, 0.0, 0.0]  # q's choice takes q's mean rating (1 -> omega 0)
    plain = soft_label_set(rows, classes, "none").iloc[0]
    assert plain[f"p_{a}"] == pytest.approx((0.8 + 0.4) / 3) and plain["p_9"] == pytest.approx(1 / 3)
    smooth = soft_label_set(rows, classes, "row").iloc[0]
    assert smooth[f"p_{a}"] == pytest.approx((0.8 + 0.1 + 0.1) / 3) and smooth["p_9"] == pytest.approx((0.2) / 3)
    pair = soft_label_set(rows, classes, "row", "pair").iloc[0]
    assert pair[f"p_{a}"] == pytest.approx((0.8 + 0.5 + 0.5) / 3) and pair["p_9"] == 0
    for suffix in (".csv", ".npz"):
        path = write_soft_labels(soft_label_set(rows, classes), classes, tmp_path / f"s{suffix}",
                                 images=np.zeros((1, 28, 28), np.uint8))
        back, cls = read_soft_labels(path)
        assert cls == classes and back["stimulus"].tolist() == [sid]
        assert back[[f"p_{c}" for c in classes]].sum(axis=1).iloc[0] == pytest.approx(1)
    bad = tmp_path / "bad.csv"
    bad.write_text("stimulus,p_0,p_1\ns1,0.5,0.6\n")
    with pytest.raises(PerceptLabError, match="line 2"):
        read_soft_labels(bad)
    with pytest.raises(PerceptLabError, match="outside 1-5"):
        confidence_omega(pd.Series([7]), pd.Series(["p"]))
