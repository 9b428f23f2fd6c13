import csv
import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from perceptlab.data.export import MARKER, export_csv, export_jspsych
from perceptlab.data.catch import _builtin
from perceptlab.data.jspsych_kit import ASSETS, jspsych_files, response_keys
from perceptlab.data.library import MANIFEST_COLUMNS, StimulusLibrary
from perceptlab.errors import PerceptLabError
from tests.data.test_library import make_images, make_records


@pytest.fixture()
def lib(tmp_path):
    with StimulusLibrary.create(tmp_path / "lib") as library:
        library.add(make_records(3, pair=(3, 5)), make_images(3))
        library.add(make_records(2, mode="controversial", pair=(1, 7)), make_images(2, seed=1))
        library.set_status(["s000002", "s000004"], "accepted")
        yield library


def _read_csv(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_export_csv_columns_rows_and_images(lib, tmp_path):
    path = export_csv(lib, tmp_path / "out")
    assert path == tmp_path / "out" / "stimuli.csv"
    rows = _read_csv(path)
    header = list(rows[0])
    probs = [f"prob_{m}_{k}" for m in ("mlp", "vgg") for k in range(10)]
    assert header == [*MANIFEST_COLUMNS, *probs]
    assert [r["stimulus_id"] for r in rows] == lib.ids()
    assert rows[0]["file"] == "images/s000001.png" and rows[3]["mode"] == "controversial"
    assert float(rows[0]["prob_vgg_3"]) == pytest.approx(0.45) and float(rows[0]["prob_mlp_9"]) == 0.1
    assert sorted(p.name for p in (tmp_path / "out" / "images").iterdir()) == [f"{i}.png" for i in lib.ids()]
    for r in rows:
        assert (tmp_path / "out" / r["file"]).read_bytes() == (lib.path / r["file"]).read_bytes()
    assert json.loads((tmp_path / "out" / MARKER).read_text())["complete"] is True


def test_status_filter_and_empty_selection(lib, tmp_path):
    rows = _read_csv(export_csv(lib, tmp_path / "acc", status="accepted"))
    assert [r["stimulus_id"] for r in rows] == ["s000002", "s000004"]
    assert len(list((tmp_path / "acc" / "images").iterdir())) == 2
    with pytest.raises(PerceptLabError, match=r"no stimuli with status rejected in .* — reject some first or drop"):
        export_csv(lib, tmp_path / "rej", status="rejected")
    assert not (tmp_path / "rej").exists()
    with pytest.raises(PerceptLabError, match="unknown status"):
        export_csv(lib, tmp_path / "x", status="approved")


def test_refuses_foreign_folders_and_reexports_over_its_own(lib, tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "thesis.docx").write_text("precious")
    with pytest.raises(PerceptLabError, match="not empty and is not a previous PerceptLab export"):
        export_csv(lib, foreign)
    assert [p.name for p in foreign.iterdir()] == ["thesis.docx"]
    with pytest.raises(PerceptLabError, match="inside the library"):
        export_csv(lib, lib.path / "exports")

    out = tmp_path / "out"
    export_jspsych(lib, out)
    (out / "jspsych" / "jspsych.js").write_text("// filled by the user")
    (out / "participant-data.csv").write_text("keep me")
    export_csv(lib, out, status="accepted")  # re-export: replaces our files, keeps the rest
    assert sorted(p.name for p in (out / "images").iterdir()) == ["s000002.png", "s000004.png"]
    assert not (out / "index.html").exists()
    assert (out / "jspsych" / "jspsych.js").read_text() == "// filled by the user"
    assert (out / "participant-data.csv").read_text() == "keep me"


def _stimuli_from_timeline(js: str) -> list[dict]:
    body = re.search(r"const PERCEPTLAB_STIMULI = (\[.*?\n\]);", js, re.S).group(1)
    return json.loads(body)


def _config(js: str) -> dict:
    return json.loads(re.search(r"const PERCEPTLAB_CONFIG = (\{.*?\n\});", js, re.S).group(1))


def test_export_jspsych_folder(lib, tmp_path):
    index = export_jspsych(lib, tmp_path / "exp", status=None)
    out = tmp_path / "exp"
    assert index == out / "index.html"
    html = index.read_text()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources == [
        "jspsych/jspsych.js",
        "jspsych/plugin-html-keyboard-response.js",
        "jspsych/plugin-image-keyboard-response.js",
        "jspsych/plugin-html-button-response.js",
        "jspsych/plugin-preload.js",
        "jspsych/jspsych.css",
        "timeline.js",
        "perceptlab-save.js",
        "perceptlab-run.js",
    ]
    assert 'typeof initJsPsych === "undefined"' in html and "jsPsych is not installed" in html
    assert "PerceptLab.run({ subject: subject, seed: params.get(\"seed\") })" in html
    assert (out / "jspsych").is_dir() and not any((out / "jspsych").iterdir())
    assert (out / "perceptlab-run.js").read_text() == (ASSETS / "perceptlab-run.js").read_text()
    assert "localStorage" in (out / "recover.html").read_text()
    assert not (out / "catch").exists() and not (out / "catch.csv").exists()

    js = (out / "timeline.js").read_text()
    config = _config(js)
    assert config["layout"] == "choice-screen" and config["fixation_ms"] == 300 and config["stimulus_ms"] == 200
    assert config["classes"] == [str(i) for i in range(10)] and config["keys"] == config["classes"]
    assert config["save_hook"] == "none" and config["download"] is True and config["n_catch"] == 0
    assert config["experiment_id"].startswith("lib-")
    stimuli = _stimuli_from_timeline(js)
    assert [s["stimulus_id"] for s in stimuli] == lib.ids()
    assert stimuli[3] == {
        "stimulus": "images/s000004.png", "stimulus_id": "s000004", "class_a": 1, "class_b": 7, "mode": "controversial",
        "task": "digit", "is_catch": False, "true_label": None,
    }  # fmt: skip
    preload = sorted(s["stimulus"] for s in stimuli)
    assert preload == sorted(f"images/{p.name}" for p in (out / "images").iterdir())
    assert [r["stimulus_id"] for r in _read_csv(out / "stimuli.csv")] == lib.ids()

    readme = (out / "README.txt").read_text()
    for needle in (
        "npm install --no-save jspsych@8",
        "@jspsych/plugin-html-button-response@2",
        "https://unpkg.com/jspsych@8/dist/index.browser.min.js",
        "https://cdn.jsdelivr.net/npm/@jspsych/plugin-preload@2/dist/index.browser.min.js",
        "jsPsych.data.get().localSave('csv'",
        "recover.html",
        "jatos.appendResultData",
        "jatos.submitResultData",
        'command: "init"',
        "cannot be tested offline",
        "separate choice screen",
    ):
        assert needle in readme, needle


def test_jspsych_timings_are_configurable_and_checked(lib, tmp_path):
    export_jspsych(lib, tmp_path / "exp", status="accepted", fixation_ms=500, stimulus_ms=100)
    js = (tmp_path / "exp" / "timeline.js").read_text()
    assert _config(js)["fixation_ms"] == 500 and _config(js)["stimulus_ms"] == 100
    assert [s["stimulus_id"] for s in _stimuli_from_timeline(js)] == ["s000002", "s000004"]
    with pytest.raises(PerceptLabError, match="stimulus_ms must be a positive"):
        export_jspsych(lib, tmp_path / "bad", stimulus_ms=0)


def test_catch_trials_are_real_labelled_digits(lib, tmp_path):
    export_jspsych(lib, tmp_path / "exp", catch_rate=0.375, catch_seed=7)  # 3 of 8 trials
    out = tmp_path / "exp"
    stimuli = _stimuli_from_timeline((out / "timeline.js").read_text())
    catch = [s for s in stimuli if s["is_catch"]]
    assert len(stimuli) == 5 + 3 and len(catch) == 3
    assert all(s["task"] == "catch" and s["true_label"] in [str(i) for i in range(10)] for s in catch)
    assert len({s["true_label"] for s in catch}) == 3  # balanced: distinct digits first
    rows = _read_csv(out / "catch.csv")
    mnist = _builtin()
    from PIL import Image

    for s, row in zip(catch, rows, strict=True):
        assert row["file"] == s["stimulus"] and row["true_label"] == s["true_label"]
        pixels = np.asarray(Image.open(out / s["stimulus"]))
        assert pixels.shape == (28, 28) and pixels.dtype == np.uint8
        index = int(row["mnist_index"])
        assert mnist.labels[index] == int(s["true_label"]) and mnist.holdout[index]
        assert np.abs(pixels / 127.5 - 1 - mnist.images[index, 0]).max() < 0.01
    again = tmp_path / "again"
    export_jspsych(lib, again, catch_rate=0.375, catch_seed=7)
    assert _read_csv(again / "catch.csv") == rows  # the seed decides
    export_jspsych(lib, out, catch_rate=0)  # a re-export without catch trials removes them
    assert not (out / "catch").exists() and not (out / "catch.csv").exists()
    with pytest.raises(PerceptLabError, match="the catch rate must be a share of all trials"):
        export_jspsych(lib, tmp_path / "bad", catch_rate=1.5)


def test_layout_hooks_and_options_are_checked(lib, tmp_path):
    export_jspsych(lib, tmp_path / "b", layout="buttons-with-image", save_hook="post", save_url="/save",
                   download=False)
    html = (tmp_path / "b" / "index.html").read_text()
    assert "jspsych/plugin-image-button-response.js" in html and "plugin-html-button-response" not in html
    config = _config((tmp_path / "b" / "timeline.js").read_text())
    assert config["layout"] == "buttons-with-image" and config["save_url"] == "/save" and config["download"] is False
    export_jspsych(lib, tmp_path / "j", save_hook="jatos")
    html = (tmp_path / "j" / "index.html").read_text()
    assert '<script src="jatos.js"></script>' in html and "window.jatos ? jatos.onLoad(perceptlabStart) : perceptlabStart()" in html
    export_jspsych(lib, tmp_path / "p", save_hook="pavlovia")
    assert "jspsych/jspsych-pavlovia.js" in (tmp_path / "p" / "index.html").read_text()
    for kwargs, message in (({"layout": "grid"}, "unknown jsPsych layout"),
                            ({"save_hook": "ftp"}, "unknown save hook"),
                            ({"save_hook": "post"}, "needs a save URL"),
                            ({"save_url": "/save"}, "only used by the 'post' save hook")):
        with pytest.raises(PerceptLabError, match=message):
            export_jspsych(lib, tmp_path / "bad", **kwargs)
    assert not (tmp_path / "bad").exists()


def test_response_keys_follow_the_classes():
    assert response_keys([str(i) for i in range(10)]) == [str(i) for i in range(10)]
    assert response_keys(["cat", "dog", "car"]) == ["1", "2", "3"]
    assert response_keys([f"c{i}" for i in range(11)])[8:] == ["9", None, None]


def test_jspsych_from_copies_an_npm_install(lib, tmp_path):
    npm = tmp_path / "npm"
    for f in jspsych_files("choice-screen"):
        pkg = npm / "node_modules" / f.package
        (pkg / f.path).parent.mkdir(parents=True, exist_ok=True)
        (pkg / f.path).write_text(f"// {f.name}")
        (pkg / "package.json").write_text(json.dumps({"version": f"{f.major}.1.0"}))
    export_jspsych(lib, tmp_path / "exp", jspsych_from=npm)
    names = sorted(p.name for p in (tmp_path / "exp" / "jspsych").iterdir())
    assert names == sorted(f.name for f in jspsych_files("choice-screen"))
    assert (tmp_path / "exp" / "jspsych" / "jspsych.js").read_text() == "// jspsych.js"
    (npm / "node_modules" / "jspsych" / "package.json").write_text('{"version": "7.3.4"}')
    with pytest.raises(PerceptLabError, match="version 7.3.4, but the export needs jspsych@8"):
        export_jspsych(lib, tmp_path / "exp", jspsych_from=npm)
    (npm / "node_modules" / "jspsych" / "package.json").write_text('{"version": "8.3.0"}')
    with pytest.raises(PerceptLabError, match="npm package @jspsych/plugin-image-button-response is not installed"):
        export_jspsych(lib, tmp_path / "exp2", layout="buttons-with-image", jspsych_from=npm)


_NODE_HARNESS = """
const fs = require("fs");
const vm = require("vm");
const dir = process.argv[2];
const ctx = { console, requestAnimationFrame: () => 0, document: {} };
for (const g of ["jsPsychPreload", "jsPsychHtmlKeyboardResponse", "jsPsychImageKeyboardResponse",
                 "jsPsychHtmlButtonResponse", "jsPsychImageButtonResponse", "jsPsychPavlovia"]) ctx[g] = g;
vm.createContext(ctx);
vm.runInContext(fs.readFileSync(dir + "/timeline.js", "utf8") + "\\n" + fs.readFileSync(dir + "/perceptlab-save.js", "utf8")
  + "\\n" + fs.readFileSync(dir + "/perceptlab-run.js", "utf8")
  + "\\n;this.__tl = perceptlabTimeline({ timelineVariable: (n) => ({ tv: n }) });", ctx);
const replacer = (k, v) => (typeof v === "function" ? "<function " + (v.length) + ">" : v);
process.stdout.write(JSON.stringify(ctx.__tl, replacer));
"""


def _node_timeline(out, tmp_path):
    (tmp_path / "harness.js").write_text(_NODE_HARNESS)
    done = subprocess.run(["node", str(tmp_path / "harness.js"), str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_generated_timeline_in_node(lib, tmp_path):
    export_jspsych(lib, tmp_path / "exp", catch_rate=0.2, fixation_ms=250)
    tl = _node_timeline(tmp_path / "exp", tmp_path)
    assert [t.get("type") for t in tl] == ["jsPsychPreload", "jsPsychHtmlKeyboardResponse", None]
    assert len(tl[0]["images"]) == 6 and tl[0]["record_data"] is False
    trials = tl[2]
    assert trials["randomize_order"] is True and len(trials["timeline_variables"]) == 6
    fixation, image, choice = trials["timeline"]
    # frame-locked in the browser; trial_duration is the fallback 500 ms later (frames stop in a hidden tab)
    assert fixation["trial_duration"] == 750 and fixation["choices"] == "NO_KEYS" and fixation["record_data"] is False
    # the image alone: no response accepted, then the choice screen with one button per class
    assert image["type"] == "jsPsychImageKeyboardResponse" and image["choices"] == "NO_KEYS"
    assert image["trial_duration"] == 700 and image["record_data"] is False and image["stimulus"] == {"tv": "stimulus"}
    assert choice["type"] == "jsPsychHtmlButtonResponse" and choice["choices"] == [str(i) for i in range(10)]
    assert choice["grid_columns"] == 10 and "record_data" not in choice
    assert choice["data"]["is_catch"] == {"tv": "is_catch"} and choice["data"]["true_label"] == {"tv": "true_label"}
    assert choice["data"]["intended_stimulus_ms"] == 200 and choice["data"]["intended_fixation_ms"] == 250

    export_jspsych(lib, tmp_path / "b", layout="buttons-with-image", save_hook="pavlovia")
    tl = _node_timeline(tmp_path / "b", tmp_path)
    assert [t.get("command") for t in tl] == ["init", None, None, None, "finish"]
    fixation, digit = tl[3]["timeline"]
    assert digit["type"] == "jsPsychImageButtonResponse" and digit["stimulus_duration"] is None
    assert digit["response_ends_trial"] is True and "trial_duration" not in digit


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_generated_javascript_parses(lib, tmp_path):
    for hook in ("none", "jatos"):
        export_jspsych(lib, tmp_path / hook, save_hook=hook)
        html = (tmp_path / hook / "index.html").read_text()
        (tmp_path / f"inline-{hook}.js").write_text(re.search(r"<script>(.*?)</script>", html, re.S).group(1))
        recover = (tmp_path / hook / "recover.html").read_text()
        (tmp_path / f"recover-{hook}.js").write_text(re.search(r"<script>(.*?)</script>", recover, re.S).group(1))
        for path in (tmp_path / hook / "timeline.js", tmp_path / hook / "perceptlab-run.js",
                     tmp_path / hook / "perceptlab-save.js",
                     tmp_path / f"inline-{hook}.js", tmp_path / f"recover-{hook}.js"):
            result = subprocess.run(["node", "--check", str(path)], capture_output=True, text=True)
            assert result.returncode == 0, result.stderr
