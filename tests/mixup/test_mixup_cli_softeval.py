import json

import numpy as np
import pytest

from perceptlab.cli import main


def test_soft_label_table_on_tiny_models(mixup_design, tmp_path):
    from perceptlab.align.finetune import FinetuneRecipe
    from perceptlab.align.soft_eval import (
        calibration_metrics,
        format_table,
        soft_label_table,
    )
    from perceptlab.analysis.mixup_simulate import (
        PerceiverSettings,
        simulate_perceivers,
    )
    from perceptlab.analysis.soft_labels import relabel_rows, soft_label_set
    from perceptlab.data.images import read_png
    from perceptlab.engine.registry import Registry
    from perceptlab.experiment.design import load_design
    from perceptlab.experiment.mixup import stimulus_info
    from tests.align.conftest import (
        fake_mnist,
        one_thread,
        run_gen,
        save_tiny_classifiers,
    )

    design = load_design(mixup_design)
    trials, _ = simulate_perceivers(design, PerceiverSettings(participants=4, seed=1))
    rows = relabel_rows(trials, stimulus_info(design), design.classes)
    avg = soft_label_set(rows, design.classes, "none")
    stimuli = avg["stimulus"].tolist()
    images = np.stack([read_png(mixup_design.parent / "images" / f"{s}.png") for s in stimuli])
    mnist = fake_mnist(4)
    with one_thread():
        save_tiny_classifiers(tmp_path / "w", mnist)
        recs, res = run_gen(soft_label_table(
            rows, images, stimuli, design.classes, {"soft": avg, "omega": soft_label_set(rows, design.classes)}, avg,
            base="tinylr", mnist=mnist, recipe=FinetuneRecipe(epochs=1, batch_size=32), seeds=(0, 1),
            registry=Registry(tmp_path / "w", tmp_path / "u")))
    names = [r["model"] for r in res["table"]]
    assert names == ["base (no fine-tuning)", "hard labels", "soft", "omega"]
    assert all(r["seeds"] == 2 and r["ce"] > 0 and 0 <= r["ece"] <= 1 for r in res["table"])
    assert "| hard labels |" in format_table(res["table"])
    assert any(r.get("kind") == "run" for r in recs)
    # the metrics themselves: a perfect match has zero ECE and CE = the entropy of h
    h = np.array([[0.5, 0.5], [0.9, 0.1]])
    m = calibration_metrics(np.array([[0.5, 0.5], [0.9, 0.1]]), h)
    assert m["ece"] == pytest.approx(0) and m["ce"] == pytest.approx(-(h * np.log(h)).sum(1).mean())
    worse = calibration_metrics(np.array([[0.99, 0.01], [0.99, 0.01]]), h)
    assert worse["ce"] > m["ce"] and worse["ece"] > 0.1


def test_cli_make_design_export_simulate_analyze_softlabels(tmp_path, capsys):
    lib, des = tmp_path / "lib", tmp_path / "design"
    assert main(["mixup", "make", str(lib), "--pairs", "3-8,1-7", "--per-pair", "2", "--lambdas", "0,0.25,0.5,0.75,1",
                 "--no-probs"]) == 0
    assert main(["mixup", "design", str(lib), "--out", str(des), "--kinds", "pick,slider"]) == 0
    assert main(["mixup", "export", str(des / "design.json"), "--out", str(tmp_path / "js")]) == 0
    assert (tmp_path / "js" / "timeline.js").is_file()
    trials = tmp_path / "trials.csv"
    assert main(["mixup", "simulate", str(des / "design.json"), "--out", str(trials), "--participants", "25"]) == 0
    capsys.readouterr()
    assert main(["mixup", "analyze", str(trials), "--design", str(des / "design.json"), "--out", str(tmp_path / "r"),
                 "--truth", str(tmp_path / "trials_truth.json")]) == 0
    out = capsys.readouterr().out
    assert "SYNTHETIC" in out and "recovery of the simulated per-pair bias" in out
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["recovery"]["fit_bias_mae"] < 0.05 and summary["synthetic"].startswith("SYNTHETIC")
    assert (tmp_path / "r" / "mixup_curves.png").stat().st_size > 1000
    # the library alone describes the slider trials too (pick trials need the design)
    assert main(["mixup", "analyze", str(trials), "--library", str(lib), "--out", str(tmp_path / "r2")]) == 0
    assert main(["mixup", "soft-labels", str(trials), "--design", str(des / "design.json"),
                 "--out", str(tmp_path / "soft.npz")]) == 0
    with np.load(tmp_path / "soft.npz") as z:
        assert z["targets"].shape == (20, 10) and z["images"].shape == (20, 28, 28)
        assert np.allclose(z["targets"].sum(1), 1)
    assert main(["mixup", "analyze", str(trials), "--out", str(tmp_path / "r3")]) == 2  # no design, no library
    # the set and its relabelings train a soft-label GroupNet through `perceptlab align`
    soft, relabels = tmp_path / "soft.csv", tmp_path / "relabels.csv"
    assert main(["mixup", "soft-labels", str(trials), "--design", str(des / "design.json"), "--out", str(soft),
                 "--relabels", str(relabels)]) == 0
    capsys.readouterr()
    assert main(["align", "--trials", str(relabels), "--images", str(des / "images"), "--soft-targets", str(soft),
                 "--base", "lrm", "--out", str(tmp_path / "al"), "--epochs", "1", "--no-register", "--no-eval"]) == 0
    out = capsys.readouterr().out
    assert "soft targets:" in out and '"soft_labels": true' in out
    metrics = json.loads((tmp_path / "al" / "metrics.json").read_text())
    assert metrics


def test_soft_labels_from_choice_trials_on_boundary_stimuli(tmp_path, capsys):
    import pandas as pd

    from perceptlab.data.library import Stimulus, StimulusLibrary

    with StimulusLibrary.create(tmp_path / "lib") as lib:
        ids = lib.add([Stimulus(mode="uncertainty", class_a=4, class_b=9), Stimulus(mode="imported")],
                      np.zeros((2, 28, 28), np.uint8))
    rows = [("p1", ids[0], "4", 5), ("p2", ids[0], "9", 1), ("p1", ids[1], "7", 5)]
    pd.DataFrame([{"participant": p, "stimulus": s, "response": r, "kind": "choice", "confidence": c}
                  for p, s, r, c in rows]).to_csv(tmp_path / "t.csv", index=False)
    assert main(["mixup", "soft-labels", str(tmp_path / "t.csv"), "--library", str(tmp_path / "lib"),
                 "--out", str(tmp_path / "s.csv")]) == 0
    soft = pd.read_csv(tmp_path / "s.csv", dtype={"stimulus": str}).set_index("stimulus")
    # p2 rated 1 (omega 0): their "9" becomes uniform; p1's "4" stays
    assert soft.loc[ids[0], "p_4"] == pytest.approx((1 + 0.1) / 2) and soft.loc[ids[0], "p_9"] == pytest.approx(0.05)
    assert soft.loc[ids[1], "p_7"] == pytest.approx(1.0) and soft.loc[ids[1], "n"] == 1
