"""`perceptlab simulate` and `perceptlab analyze` end to end (probability source monkeypatched)."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import perceptlab.cli.analyze as analyze_cli
import perceptlab.cli.simulate as simulate_cli
from perceptlab.analysis.report import analyze_table, write_report
from perceptlab.data.trials import load_manifest, load_trials, resolve_stimuli, trials_from_frame
from perceptlab.errors import PerceptLabError

N_STIMULI = 60


def fixed_probs(model_name: str, images: np.ndarray) -> np.ndarray:
    """Deterministic stand-in for the engine: Dirichlet rows keyed on each image's mean."""
    assert images.dtype == np.uint8 and images.shape[1:] == (28, 28)
    rng = np.random.default_rng(len(model_name))
    table = rng.dirichlet(np.ones(10) * 0.5, size=256)
    return table[images.reshape(len(images), -1)[:, 0]]


def _run(module, argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    module.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    lib = tmp_path_factory.mktemp("lib")
    (lib / "images").mkdir()
    rows = []
    for i in range(N_STIMULI):
        sid = f"s{i:06d}"
        img = np.full((28, 28), i * 4, dtype=np.uint8)
        Image.fromarray(img).save(lib / "images" / f"{sid}.png")
        a = i % 10
        rows.append({"stimulus_id": sid, "file": f"images/{sid}.png",
                     "mode": "uncertainty" if i % 3 else "controversial", "class_a": a,
                     "class_b": (a + 1 + i // 10) % 10, "classifier": "vgg", "classifier2": "",
                     "gamma": 0.1, "steps": 50, "resample": 5, "seed": i, "p_a": 0.5, "p_b": 0.5,
                     "judge": 0.8, "passed": True, "status": "rejected" if i == 59 else "new"})
    pd.DataFrame(rows).to_csv(lib / "manifest.csv", index=False)
    return lib


@pytest.fixture(scope="module")
def simulated(library, tmp_path_factory):
    out = tmp_path_factory.mktemp("sim") / "trials.csv"
    patch = pytest.MonkeyPatch()
    patch.setattr(simulate_cli, "_predict", fixed_probs)
    try:
        assert _run(simulate_cli, ["simulate", "--library", str(library), "--participants", "16",
                                   "--trials-per-participant", "40", "--clusters", "2",
                                   "--seed", "4", "--model", "vgg", "--out", str(out)]) == 0
    finally:
        patch.undo()
    return out


def test_simulate_cli_writes_labelled_files(simulated):
    trials = pd.read_csv(simulated)
    truth = pd.read_csv(simulated.with_name("trials_truth.csv"))
    meta = json.loads(simulated.with_name("trials_truth.json").read_text())
    assert len(trials) == 16 * 40 and trials["synthetic"].all() and truth["synthetic"].all()
    assert set(trials.columns) >= {"subject_id", "stimulus", "stimulus_id", "response", "is_train", "rt"}
    assert "s000059" not in set(trials["stimulus_id"])  # curated as rejected
    assert meta["synthetic"] is True and "SYNTHETIC" in meta["note"] and meta["model"] == "vgg"
    assert meta["settings"]["participants"] == 16 and meta["stimuli"] == N_STIMULI - 1


def test_analyze_cli_with_library_and_model(library, simulated, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(analyze_cli, "_predict", fixed_probs)
    out = tmp_path / "report"
    assert _run(analyze_cli, ["analyze", str(simulated), "--library", str(library), "--model", "vgg",
                              "lrm", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert {"synthetic", "counts", "validation", "exclusions", "entropy", "outcomes", "rt_entropy",
            "clusters", "model_human", "skipped", "stimuli", "files"} <= set(summary)
    assert summary["synthetic"] is True and summary["skipped"] == {}
    assert summary["counts"]["trials_analysed"] == 640
    assert set(summary["outcomes"]["per_mode"]) == {"uncertainty", "controversial"}
    assert len(summary["outcomes"]["pair_success"]["rate"]) == 10
    assert summary["clusters"]["k"] >= 2 and summary["rt_entropy"]["rho"] is not None
    assert set(summary["model_human"]) == {"vgg", "lrm"}
    assert summary["model_human"]["vgg"]["n"] == summary["counts"]["stimuli_analysed"]
    per = pd.read_csv(out / "per_stimulus.csv")
    assert {"stimulus", "n", "entropy_bits", "outcome", "model_entropy_vgg"} <= set(per.columns)
    assert [f"count_{c}" for c in range(10)] == [c for c in per.columns if c.startswith("count_")]
    assert set(per["outcome"].dropna()) <= {"success", "bias", "failure"}
    parts = pd.read_csv(out / "per_participant.csv")
    assert parts["cluster"].notna().all() and len(parts) == 16
    assert pd.read_csv(out / "rejected_rows.csv").empty
    for name in ("entropy_histogram", "outcomes", "rt_entropy", "agreement_matrix",
                 "model_human_vgg", "model_human_lrm"):
        for ext in ("png", "svg"):
            assert (out / f"{name}.{ext}").stat().st_size > 1000
    text = capsys.readouterr().out
    assert "SYNTHETIC" in text and "model–human entropy (vgg)" in text


def test_analyze_cli_trials_only(simulated, tmp_path, capsys):
    out = tmp_path / "report"
    assert _run(analyze_cli, ["analyze", str(simulated), "--k", "2", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["skipped"]["model_human"] == "no stimulus library or image folder given (--library or --images)"
    assert "outcomes" in summary["skipped"] and summary["outcomes"] is None
    assert summary["clusters"]["k"] == 2
    assert not (out / "outcomes.png").exists() and (out / "agreement_matrix.svg").exists()
    assert "skipped model_human: no stimulus library or image folder given" in capsys.readouterr().out


def test_analyze_with_image_folder(library, simulated):
    table = load_trials(simulated)
    stimuli = resolve_stimuli(table, image_dir=library / "images")
    analysis = analyze_table(table, stimuli=stimuli, models=["vgg"], predict=fixed_probs)
    assert "vgg" in analysis.model_human and analysis.outcomes is None
    assert "no analysed stimulus has a target pair" in analysis.skipped["outcomes"]


def test_analyze_reports_exclusions_rejections_and_model_failures(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for p in range(8):
        for s in range(30):
            rows.append({"participant": f"p{p}", "stimulus": f"st{s}", "response": int(rng.integers(0, 3)),
                         "rt_ms": float(rng.uniform(300, 900)), "is_catch": False, "true_label": None})
        for c in range(5):  # p0 fails the catch trials
            rows.append({"participant": f"p{p}", "stimulus": f"catch{c}", "response": 9 if p == 0 else c,
                         "rt_ms": 400.0, "is_catch": True, "true_label": c})
    rows.append({"participant": "p1", "stimulus": "st0", "response": 42, "rt_ms": 1.0,
                 "is_catch": False, "true_label": None})
    table = trials_from_frame(pd.DataFrame(rows), source="inline.csv")
    assert table.report.rows_rejected == 1
    analysis = analyze_table(table, catch_threshold=0.7, min_responses=8)
    s = analysis.summary()
    assert s["counts"]["participants_excluded"] == 1
    assert s["exclusions"]["excluded_participants"][0]["participant"] == "p0"
    assert s["entropy"]["stimuli_included"] == 0 and s["entropy"]["mean_bits"] is None
    assert s["validation"]["rejected_by_kind"] == {"response outside the classes": 1}
    written = {p.name for p in write_report(analysis, tmp_path / "out")}
    assert {"summary.json", "rejected_rows.csv", "entropy_histogram.png"} <= written
    assert pd.read_csv(tmp_path / "out" / "rejected_rows.csv")["line"].tolist() == [len(rows) + 1]

    with pytest.raises(PerceptLabError, match="no trials left to analyse"):
        analyze_table(table, catch_threshold=1.0)


def test_bad_model_output_is_skipped_with_reason(library, simulated):
    def broken(name, images):
        return np.ones((len(images), 3))

    table = load_trials(simulated)
    stimuli = resolve_stimuli(table, manifest=load_manifest(library))
    analysis = analyze_table(table, stimuli=stimuli, models=["odd"], predict=broken)
    assert "shape" in analysis.skipped["model_human:odd"] and not analysis.model_human


def test_report_entropies_equal_scipy_recomputation(simulated, tmp_path):
    """per_stimulus.csv's entropies against scipy on counts recomputed from the raw trial file."""
    from scipy.stats import entropy

    out = tmp_path / "report"
    assert _run(analyze_cli, ["analyze", str(simulated), "--min-responses", "1", "--out", str(out)]) == 0
    per = pd.read_csv(out / "per_stimulus.csv").set_index("stimulus")
    raw = pd.read_csv(simulated)
    raw["key"] = raw["stimulus"].astype(str).str.replace(r"^.*/", "", regex=True).str.replace(r"\.png$", "", regex=True)
    counts = pd.crosstab(raw["key"], raw["response"]).reindex(columns=range(10), fill_value=0)
    assert len(per) == len(counts)
    for key, row in counts.iterrows():
        match = per.loc[[s for s in per.index if str(s).replace(".png", "").endswith(key)][0]]
        assert match["n"] == row.sum()
        assert match["entropy_bits"] == pytest.approx(entropy(row.to_numpy(), base=2), abs=1e-9)
