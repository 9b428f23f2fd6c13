"""The L-WISE commands end to end on tiny models: difficulty, enhance, curriculum build/simulate/analyze,
difficulty-analysis, enhance-table and eval robust."""

from __future__ import annotations

import json

import pytest

import perceptlab.engine.registry as registry_module
from perceptlab.cli import main
from tests.test_lwise_engine import tiny_lwise_registry


@pytest.fixture()
def env(tmp_path, monkeypatch):
    reg = tiny_lwise_registry(tmp_path)
    monkeypatch.setenv("PERCEPTLAB_WEIGHTS", str(reg.builtin_dir))
    monkeypatch.setenv("PERCEPTLAB_MODELS", str(tmp_path / "user_models"))
    monkeypatch.setattr(registry_module, "_default", None)
    return tmp_path


def test_curriculum_pipeline(env, capsys):
    lib, out = env / "lib", env / "build"
    assert main(["curriculum", "build", str(lib), "--out", str(out), "--from-holdout", "6", "--eps", "2,0",
                 "--per-block", "4", "--steps", "2", "--device", "cpu"]) == 0
    for cond in ("curriculum", "control"):
        assert (out / cond / "design.json").is_file() and (out / f"jspsych-{cond}" / "timeline.js").is_file()
    rows = env / "sim.csv"
    assert main(["curriculum", "simulate", str(out), "--participants", "4", "--out", str(rows)]) == 0
    text = capsys.readouterr().out
    assert "SYNTHETIC" in text and "test accuracy (curriculum)" in text
    assert main(["curriculum", "analyze", "--trials", str(rows), "--out", str(env / "fig")]) == 0
    assert "SYNTHETIC" in capsys.readouterr().out
    assert (env / "fig" / "learning_curves.png").is_file()
    summary = json.loads((env / "fig" / "learning.json").read_text())
    assert set(summary["test"]) == {"curriculum", "control"} and summary["synthetic"]
    # difficulty vs simulated error on the same rows (true labels carried)
    assert main(["difficulty-analysis", str(rows), "--library", str(lib), "--out", str(env / "d")]) == 0
    out_text = capsys.readouterr().out
    assert "Spearman rho" in out_text
    assert (env / "d" / "difficulty_vs_error.png").is_file()
    # enhancement from the CLI: new stimuli with provenance
    assert main(["enhance", str(lib), "--ids", "s000001,s000002", "--eps", "1.5", "--steps", "2", "--harder",
                 "--device", "cpu"]) == 0
    assert "2 harder stimuli added" in capsys.readouterr().out
    assert main(["difficulty", str(lib), "--mode", "mnist", "--device", "cpu"]) == 0
    assert "difficulty (robust ground-truth logit) stored for 14 stimuli" in capsys.readouterr().out


def test_enhance_table_and_eval_robust(env, capsys):
    assert main(["enhance-table", "-n", "20", "--eps", "0,2", "--steps", "2", "--grid", str(env / "g.png"),
                 "--json", str(env / "t.json"), "--device", "cpu"]) == 0
    table = json.loads((env / "t.json").read_text())
    assert [r["eps"] for r in table["rows"]] == [0.0, 2.0] and {"vgg", "lrm", "robust"} <= set(table["zoo"])
    assert (env / "g.png").is_file()
    capsys.readouterr()
    assert main(["eval", "robust", "--grid", str(env / "grad.png"), "--record", "--attack-n", "40", "--device", "cpu"]) == 0
    assert "robust accuracy" in capsys.readouterr().out
    cfg = json.loads((env / "weights" / "robust.json").read_text())
    assert cfg["metrics"]["robust"]["pgd_steps"] >= 1 and (env / "grad.png").is_file()


def test_enhance_unknown_id_names_library(env, capsys):
    assert main(["library", "create", str(env / "lib")]) == 0
    assert main(["enhance", str(env / "lib"), "--ids", "s999999"]) == 2
    assert "s999999" in capsys.readouterr().err


def test_curriculum_build_save_options(env, capsys):
    lib, out = env / "lib", env / "build"
    assert main(["curriculum", "build", str(lib), "--out", str(out), "--from-holdout", "2", "--save-hook", "post"]) != 0
    assert "needs a save URL" in capsys.readouterr().err and not lib.exists()  # checked before the build
    assert main(["curriculum", "build", str(lib), "--out", str(out), "--from-holdout", "2", "--eps", "0",
                 "--per-block", "2", "--steps", "1", "--device", "cpu", "--save-hook", "jatos", "--no-download"]) == 0
    js = (out / "jspsych-curriculum" / "timeline.js").read_text()
    assert '"save_hook": "jatos"' in js and '"download": false' in js
