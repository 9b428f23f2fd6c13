"""``perceptlab generate``: a tiny run end to end, and one-line errors for bad input."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import perceptlab.engine.registry as registry_module
from perceptlab.cli import bench as cli_bench
from perceptlab.cli import generate as cli_generate
from perceptlab.cli import main
from perceptlab.cli.generate import parse_pairs
from perceptlab.data.library import StimulusLibrary
from perceptlab.errors import PerceptLabError
from tests.conftest import build_tiny_registry

FAST = ["--steps", "2", "--resample", "1", "--batch-size", "2", "--seed", "1"]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return build_tiny_registry(tmp_path_factory.mktemp("weights"))


@pytest.fixture()
def env(weights, tmp_path, monkeypatch):
    monkeypatch.setenv("PERCEPTLAB_WEIGHTS", str(weights))
    monkeypatch.setenv("PERCEPTLAB_MODELS", str(tmp_path / "user_models"))
    monkeypatch.setattr(registry_module, "_default", None)
    return tmp_path


def _error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    return err


def test_generate_end_to_end(env, capsys):
    lib = env / "lib"
    argv = ["generate", "--classifier", "vgg", "--pairs", "3-5,4-9", "--per-pair", "2", "--library", str(lib), *FAST]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "generated 4 images" in out and "accepted" in out and "s/image" in out
    with StimulusLibrary.open(lib) as opened:
        recs = opened.records()
    assert len(recs) == 4 and {r.seed for r in recs} == {1, 2, 3, 4}
    assert {(r.class_a, r.class_b) for r in recs} == {(3, 5), (4, 9)}
    assert recs[0].settings["sampler"]["preset"] == "fast" and recs[0].steps == 2


def test_controversial_with_regeneration(env, capsys):
    argv = [
        "generate", "--mode", "controversial", "--classifier", "vgg", "--classifier2", "lrm", "--pairs", "3-5",
        "--library", str(env / "lib"), "--regenerate-rejects", "--max-rounds", "2", *FAST,
    ]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "vgg vs lrm" in out


def test_kill_9_during_generate_keeps_what_was_committed_and_a_second_run_appends(env, weights, capsys):
    from tests.data.test_library import assert_consistent

    lib = env / "lib"
    repo = Path(__file__).resolve().parents[1]
    child_env = {
        **os.environ,
        "PYTHONPATH": str(repo) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "OMP_NUM_THREADS": "1",
    }
    argv = ["generate", "--classifier", "vgg", "--pairs", "3-5", "--per-pair", "400", "--library", str(lib), *FAST]
    child = subprocess.Popen(
        [sys.executable, "-m", "perceptlab", *argv], env=child_env, cwd=repo,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    manifest = lib / "manifest.csv"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:  # wait until a few batches are in, then kill mid-run
            if manifest.exists() and manifest.read_text().count("\n") >= 7:
                break
            assert child.poll() is None, child.stderr.read().decode()
            time.sleep(0.05)
        else:
            pytest.fail("the generate child committed nothing in 120 s")
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL
    with StimulusLibrary.open(lib) as opened:
        before = opened.records()
        assert 6 <= len(before) < 400
        assert_consistent(opened)
        images = {r.id: opened.image(r.id) for r in before}
    assert main(["generate", "--classifier", "vgg", "--pairs", "4-9", "--library", str(lib), *FAST]) == 0
    with StimulusLibrary.open(lib) as opened:
        after = opened.records()
        assert [r.id for r in after[: len(before)]] == [r.id for r in before]
        assert len(after) == len(before) + 1 and (after[-1].class_a, after[-1].class_b) == (4, 9)
        for rid, img in images.items():
            np.testing.assert_array_equal(opened.image(rid), img)
        assert_consistent(opened)


@pytest.mark.parametrize("bad", ["3-3", "3-12", "35", "a-b"])
def test_bad_pair(env, capsys, bad):
    err = _error(capsys, ["generate", "--classifier", "vgg", "--pairs", f"4-9,{bad}", "--library", str(env / "l")])
    assert repr(bad) in err and "a-b with two different digits 0-9" in err


def test_parse_pairs():
    assert parse_pairs("3-5, 4-9,3-5") == [(3, 5), (4, 9)]
    with pytest.raises(PerceptLabError):
        parse_pairs("")


def test_unknown_classifier_lists_the_available_ones(env, capsys):
    err = _error(capsys, ["generate", "--classifier", "resnet", "--pairs", "3-5", "--library", str(env / "l")])
    assert "resnet" in err and "lrm" in err and "vgg" in err


def test_controversial_needs_classifier2(env, capsys):
    argv = ["generate", "--mode", "controversial", "--classifier", "vgg", "--pairs", "3-5", "--library", str(env / "l")]
    assert "--classifier2" in _error(capsys, argv)


def test_folder_that_is_not_a_library(env, capsys):
    folder = env / "photos"
    folder.mkdir()
    (folder / "cat.png").write_bytes(b"x")
    err = _error(capsys, ["generate", "--classifier", "vgg", "--pairs", "3-5", "--library", str(folder)])
    assert "not a PerceptLab library" in err and "pick an empty folder" in err


def test_read_only_library(env, capsys, monkeypatch):
    lib = env / "lib"
    StimulusLibrary.create(lib).close()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: Path(p) != lib and real_access(p, mode, **kw))
    err = _error(capsys, ["generate", "--classifier", "vgg", "--pairs", "3-5", "--library", str(lib)])
    assert "read-only" in err and "make it writable" in err


def test_unknown_reference(env, capsys):
    argv = [
        "generate",
        "--classifier",
        "vgg",
        "--pairs",
        "3-5",
        "--library",
        str(env / "lib"),
        "--reference",
        "s000042",
    ]
    err = _error(capsys, argv)
    assert "s000042" in err and "--reference" in err


def test_percentile_filter_stores_its_thresholds(env, capsys):
    lib, ref = env / "lib", env / "ref.npz"
    rng = np.random.default_rng(0)
    np.savez(ref, x_test=rng.integers(0, 256, (40, 28, 28), dtype=np.uint8), y_test=np.arange(40) % 10)
    argv = ["generate", "--classifier", "vgg", "--pairs", "3-5", "--library", str(lib), "--filter", "percentile"]
    assert main([*argv, "--mnist", str(ref), *FAST]) == 0
    assert "75th percentiles" in capsys.readouterr().out
    with StimulusLibrary.open(lib) as opened:
        rec = opened.records()[0]
    filt = rec.settings["filter"]
    assert filt["kind"] == "percentile" and len(filt["thresholds"]["vgg"]) == 10


def test_agree_filter_is_stored_and_refuses_observers(env, capsys):
    lib = env / "lib"
    argv = ["generate", "--classifier", "vgg", "--pairs", "3-5", "--library", str(lib), "--ensemble", "cornet"]
    assert main([*argv, "--agree", "1", "--agree-with", "lrm", *FAST]) == 0
    with StimulusLibrary.open(lib) as opened:
        recs = opened.records()
    assert recs and recs[0].settings["filter"]["agree"] == 1 and recs[0].settings["filter"]["agree_with"] == ["lrm"]
    for r in recs:  # a pass needs lrm to put 3-5 on top, else the reason says so
        if set(np.argsort(-np.asarray(r.probs["lrm"]))[:2].tolist()) != {3, 5}:
            assert not r.passed and "0 of 1 other zoo classifiers put 3-5 in their top two" in r.reason
    capsys.readouterr()
    err = _error(capsys, [*argv, "--agree", "1", "--agree-with", "obs-cnn", *FAST])
    assert "obs-cnn" in err and "observers never filter" in err


def test_bench_prints_a_table_and_json(env, capsys):
    out_json = env / "bench.json"
    assert main(["bench", "--presets", "draft", "--batch-size", "3", "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "cpu s/img" in out and "draft" in out
    row = json.loads(out_json.read_text())["results"][0]
    assert row["preset"] == "draft" and row["images"] == 3
    assert {"seconds_per_image", "cpu_seconds_per_image", "acceptance_rate", "accepted_per_minute", "transfer",
            "confirmed_per_cpu_minute", "top2_share_accepted"} <= set(row)  # fmt: skip
    assert _error(capsys, ["bench", "--presets", "turbo"]).endswith("choose from: paper, fast, draft, reference")
    assert "not key=value" in _error(capsys, ["bench", "--arms", "fast+gamma"])
    assert "--classifier2" in _error(capsys, ["bench", "--mode", "controversial"])


def test_bench_stops_a_preset_that_overruns_the_budget(env, capsys):
    out_json = env / "bench.json"
    argv = ["bench", "--presets", "draft", "--batch-size", "2", "--budget-minutes", "1e-6", "--json", str(out_json)]
    assert main(argv) == 0
    assert "draft: stopped in pass 1 after 2 of 10 steps" in capsys.readouterr().out
    row = json.loads(out_json.read_text())["results"][0]
    assert row["images"] == 0 and row["seconds_per_image"] > 0 and "acceptance_rate" not in row


def test_cli_constants_match_the_engine():
    from perceptlab.engine import sampler
    from perceptlab.engine.bench import DEFAULT_BENCH_PRESETS
    from perceptlab.engine.guidance import MODES

    assert cli_generate.MODES == MODES and cli_generate.GRAD_MODES == sampler.GRAD_MODES
    assert cli_generate.SPACINGS == sampler.SPACINGS
    assert cli_generate.PRESETS == tuple(sampler.PRESETS) and cli_generate.DEFAULT_PRESET == sampler.DEFAULT_PRESET
    assert tuple(cli_bench.DEFAULT_ORDER.split(",")) == DEFAULT_BENCH_PRESETS


def test_cli_modules_import_no_torch():
    code = "import sys, perceptlab.cli.generate, perceptlab.cli.bench; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert out.stdout.strip() == "False", out.stderr


def test_the_fast_preset_brings_its_filter_and_flags_override_it(env, capsys):
    argv = ["generate", "--classifier", "vgg", "--pairs", "3-5", *FAST]
    assert main([*argv, "--library", str(env / "fast")]) == 0
    out = capsys.readouterr().out
    assert "filter: paper thresholds, judge > 0.5, zoo agreement 2, clean strokes" in out
    with StimulusLibrary.open(env / "fast") as opened:
        rejects = [r for r in opened.records() if r.passed is False]
    assert ("rejected by: " in out) == bool(rejects)
    assert main([*argv, "--library", str(env / "paper"), "--agree", "0", "--no-strokes"]) == 0
    assert main([*argv, "--library", str(env / "mine"), "--preset", "paper"]) == 0
    stored = {}
    for name in ("fast", "paper", "mine"):
        with StimulusLibrary.open(env / name) as opened:
            stored[name] = opened.records()[0].settings["filter"]
    assert (stored["fast"]["agree"], stored["fast"]["strokes"]) == (2, True)
    assert (stored["paper"]["agree"], stored["paper"]["strokes"]) == (0, False)
    assert (stored["mine"]["agree"], stored["mine"]["strokes"]) == (0, False)  # the paper preset: the paper filter
    out_json = env / "bench.json"
    arms = "fast+steps=2;fast+steps=2,agree=0,strokes=false"
    assert main(["bench", "--arms", arms, "--batch-size", "2", "--pairs", "3-5", "--json", str(out_json)]) == 0
    rows = json.loads(out_json.read_text())["results"]
    assert [(r["agree"], r["strokes"]) for r in rows] == [(2, True), (0, False)]
    for r in rows:  # every reject is counted under at least one part of the filter
        assert sum(r["rejected_by"].values()) >= r["images"] - r["accepted"]
    assert not {"zoo agreement", "stroke check"} & set(rows[1]["rejected_by"])  # both off in the second arm
