import csv
import json
import re
import shutil
import subprocess

import pytest

from perceptlab.data.export import MARKER, export_csv, export_jspsych
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


def test_export_jspsych_folder(lib, tmp_path):
    index = export_jspsych(lib, tmp_path / "exp", status=None)
    out = tmp_path / "exp"
    assert index == out / "index.html"
    html = index.read_text()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources == [
        "jspsych/jspsych.js",
        "jspsych/plugin-html-keyboard-response.js",
        "jspsych/plugin-image-button-response.js",
        "jspsych/plugin-preload.js",
        "jspsych/jspsych.css",
        "timeline.js",
    ]
    assert 'typeof initJsPsych === "undefined"' in html and "jsPsych is not installed" in html
    assert "initJsPsych({" in html and 'localSave("csv"' in html
    assert "jsPsych.run(perceptlabTimeline(jsPsych))" in html
    assert (out / "jspsych").is_dir() and not any((out / "jspsych").iterdir())

    js = (out / "timeline.js").read_text()
    assert "trial_duration: 300," in js and "stimulus_duration: 200," in js
    assert 'choices: ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],' in js
    assert "type: jsPsychImageButtonResponse" in js and "type: jsPsychHtmlKeyboardResponse" in js
    assert "button_html: (choice) =>" in js and "randomize_order: true" in js
    for key in ("stimulus_id", "class_a", "class_b", "mode"):
        assert f'{key}: jsPsych.timelineVariable("{key}")' in js
    assert "type: jsPsychPreload,\n    images: PERCEPTLAB_STIMULI.map((s) => s.stimulus)," in js
    stimuli = _stimuli_from_timeline(js)
    assert [s["stimulus_id"] for s in stimuli] == lib.ids()
    assert stimuli[3] == {
        "stimulus": "images/s000004.png", "stimulus_id": "s000004", "class_a": 1, "class_b": 7, "mode": "controversial"
    }  # fmt: skip
    preload = sorted(s["stimulus"] for s in stimuli)
    assert preload == sorted(f"images/{p.name}" for p in (out / "images").iterdir())
    assert [r["stimulus_id"] for r in _read_csv(out / "stimuli.csv")] == lib.ids()

    readme = (out / "README.md").read_text()
    for needle in (
        "npm install --no-save jspsych@8",
        "@jspsych/plugin-image-button-response@2",
        "npm pack",
        "https://unpkg.com/jspsych@8/dist/index.browser.min.js",
        "https://cdn.jsdelivr.net/npm/@jspsych/plugin-preload@2/dist/index.browser.min.js",
        "jsPsych.data.get().localSave('csv'",
    ):
        assert needle in readme


def test_jspsych_timings_are_configurable_and_checked(lib, tmp_path):
    export_jspsych(lib, tmp_path / "exp", status="accepted", fixation_ms=500, stimulus_ms=100)
    js = (tmp_path / "exp" / "timeline.js").read_text()
    assert "trial_duration: 500," in js and "stimulus_duration: 100," in js
    assert [s["stimulus_id"] for s in _stimuli_from_timeline(js)] == ["s000002", "s000004"]
    with pytest.raises(PerceptLabError, match="stimulus_ms must be a positive"):
        export_jspsych(lib, tmp_path / "bad", stimulus_ms=0)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_generated_javascript_parses(lib, tmp_path):
    export_jspsych(lib, tmp_path / "exp")
    html = (tmp_path / "exp" / "index.html").read_text()
    (tmp_path / "inline.js").write_text(re.search(r"<script>(.*?)</script>", html, re.S).group(1))
    for path in (tmp_path / "exp" / "timeline.js", tmp_path / "inline.js"):
        result = subprocess.run(["node", "--check", str(path)], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
