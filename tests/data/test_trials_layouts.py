"""Layout detection, column mappings, the library manifest and stimulus matching."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from perceptlab.data.trial_layouts import JSPSYCH_RESPONSE_TYPES, ColumnMapping
from perceptlab.data.trials import (
    load_manifest,
    load_stimulus_images,
    load_trials,
    resolve_stimuli,
    trials_from_frame,
)
from perceptlab.errors import PerceptLabError

VARIMNIST = (
    "subject_id,stimulus,stimulus_id,response,is_train\n"
    "7,dataset_PNG/uncertainty/u_00001.png,1,3,True\n"
    "7,dataset_PNG/controversial/c_00002.png,2,5,False\n"
    "8,dataset_PNG/uncertainty/u_00001.png,1,8,True\n"
)
JSPSYCH = (
    '"rt","stimulus","response","trial_type","trial_index","time_elapsed","subject"\n'
    '"","img/s1.png","","preload","0","10","A"\n'
    '"","<div>+</div>","","html-keyboard-response","1","400","A"\n'
    '"812","img/s1.png","3","image-button-response","2","1300","A"\n'
    '"640","img/s2.png","7","image-keyboard-response","3","2000","A"\n'
)
PSYCHOPY = (
    "image,key_resp.keys,key_resp.rt,trials.thisN,participant,date\n"
    "stims/a.png,3,0.75,0,P01,2024\n"
    "stims/b.png,num_9,1.5,1,P01,2024\n"
)
CANONICAL = (
    "participant,stimulus,response,rt_ms,is_train,trial_index,is_catch,true_label\n"
    "p1,s1,3,500,1,0,0,\n"
    "p1,s2,4,620,0,1,1,4\n"
)


@pytest.mark.parametrize(("text", "layout"), [
    (VARIMNIST, "variMNIST"), (JSPSYCH, "jsPsych"), (PSYCHOPY, "PsychoPy"), (CANONICAL, "canonical"),
])
def test_layout_detection(tmp_path, text, layout):
    path = tmp_path / "t.csv"
    path.write_text(text, encoding="utf-8")
    t = load_trials(path)
    assert t.report.layout == layout
    df = t.df
    assert df["participant"].map(type).eq(str).all()
    assert df["response"].dtype == np.int64
    assert df["rt_ms"].dtype == np.float64
    assert str(df["trial_index"].dtype) == "Int64"
    assert str(df["true_label"].dtype) == "Int64"
    assert df["is_catch"].dtype == bool
    assert str(df["is_train"].dtype) == "boolean"
    assert t.report.rows_used + t.report.rows_rejected == t.report.rows_total


def test_layout_values(tmp_path):
    def load(text):
        path = tmp_path / "t.csv"
        path.write_text(text, encoding="utf-8")
        return load_trials(path).df

    v = load(VARIMNIST)
    assert v["participant"].tolist() == ["7", "7", "8"]
    assert v["response"].tolist() == [3, 5, 8]
    assert v["is_train"].tolist() == [True, False, True]
    assert v["rt_ms"].isna().all()
    j = load(JSPSYCH)
    assert j["response"].tolist() == [3, 7] and j["rt_ms"].tolist() == [812.0, 640.0]
    assert j["trial_index"].tolist() == [2, 3] and j["line"].tolist() == [4, 5]
    p = load(PSYCHOPY)
    assert p["response"].tolist() == [3, 9] and p["rt_ms"].tolist() == pytest.approx([750.0, 1500.0])
    assert p["stimulus"].tolist() == ["stims/a.png", "stims/b.png"]
    c = load(CANONICAL)
    assert c["is_catch"].tolist() == [False, True]
    assert c["true_label"].tolist()[1] == 4 and pd.isna(c["true_label"].tolist()[0])


def test_true_label_is_ground_truth_not_a_catch_marker():
    t = trials_from_frame(pd.DataFrame({"participant": ["a", "a"], "stimulus": ["x", "y"],
                                        "response": [1, 2], "true_label": [1, 2]}))
    assert t.df["is_catch"].tolist() == [False, False]
    assert t.df["true_label"].tolist() == [1, 2]
    assert any("true_label read as the ground truth" in n for n in t.report.notes)
    assert any("catch trials: none" in n for n in t.report.notes)
    typed = trials_from_frame(pd.DataFrame({"participant": ["a", "a"], "stimulus": ["x", "y"],
                                            "response": [1, 2], "true_label": [1, 2],
                                            "condition": ["main", "catch"]}))
    assert typed.df["is_catch"].tolist() == [False, True]


def test_mapping_round_trip_and_use(tmp_path):
    mapping = ColumnMapping(participant="subj", stimulus="img", response="choice", rt="latency",
                            rt_unit="s", is_catch="sentinel", true_label="answer",
                            trial_index="n", is_train="split")
    path = mapping.save(tmp_path / "map.json")
    assert ColumnMapping.load(path) == mapping
    assert json.loads(path.read_text())["rt_unit"] == "s"
    data = tmp_path / "odd.tsv"
    data.write_text("subj\timg\tchoice\tlatency\tsentinel\tanswer\tn\tsplit\n"
                    "x\tq.png\t2\t0.5\tno\t\t1\t1\n"
                    "x\tr.png\t4\t0.25\tyes\t4\t2\t0\n", encoding="utf-8")
    t = load_trials(data, mapping=path)
    assert t.report.layout == "mapping" and t.report.rows_used == 2
    assert t.df["rt_ms"].tolist() == [500.0, 250.0]
    assert t.df["is_catch"].tolist() == [False, True]
    assert t.df["is_train"].tolist() == [True, False]
    assert t.df["trial_index"].tolist() == [1, 2]
    assert t.df["true_label"].tolist()[1] == 4


def test_mapping_errors(tmp_path):
    with pytest.raises(PerceptLabError, match="rt_unit must be 'ms' or 's'"):
        ColumnMapping("a", "b", "c", rt_unit="minutes")
    with pytest.raises(PerceptLabError, match=r"unknown keys \['colour'\]"):
        ColumnMapping.from_dict({"participant": "a", "stimulus": "b", "response": "c", "colour": 1})
    with pytest.raises(PerceptLabError, match=r"missing required keys \['response'\]"):
        ColumnMapping.from_dict({"participant": "a", "stimulus": "b"})
    bad = tmp_path / "bad.json"
    bad.write_text("{participant: a", encoding="utf-8")
    with pytest.raises(PerceptLabError, match="is not valid JSON"):
        ColumnMapping.load(bad)
    with pytest.raises(PerceptLabError, match="does not exist"):
        ColumnMapping.load(tmp_path / "none.json")


def test_jsonl_and_json_array_layouts(tmp_path):
    rows = [{"subject": "A", "trial_type": "preload", "stimulus": None, "response": None},
            {"subject": "A", "trial_type": "image-button-response", "stimulus": "a.png",
             "response": 2, "rt": 700.5, "trial_index": 1}]
    arr = tmp_path / "data.json"
    arr.write_text(json.dumps(rows), encoding="utf-8")
    t = load_trials(arr)
    assert (t.report.layout, t.report.rows_used, t.report.rows_total) == ("jsPsych", 1, 2)
    assert t.df["response"].tolist() == [2] and t.df["trial_index"].tolist() == [1]
    lines = tmp_path / "data.jsonl"
    lines.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    assert load_trials(lines).report.file_format == "JSON lines"
    assert "image-button-response" in JSPSYCH_RESPONSE_TYPES


def test_synthetic_flag_from_column_and_comment(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("# synthetic observers\nparticipant,stimulus,response\np,a,1\n", encoding="utf-8")
    t = load_trials(path)
    assert t.synthetic and any("SYNTHETIC" in n for n in t.report.notes)
    path.write_text("participant,stimulus,response,synthetic\np,a,1,True\n", encoding="utf-8")
    assert load_trials(path).synthetic
    path.write_text("participant,stimulus,response\np,a,1\n", encoding="utf-8")
    assert not load_trials(path).synthetic


def _library(tmp_path, n=4):
    lib = tmp_path / "lib"
    (lib / "images").mkdir(parents=True)
    rows = []
    for i in range(n):
        sid = f"s{i:06d}"
        Image.fromarray(np.full((28, 28), i * 40, dtype=np.uint8)).save(lib / "images" / f"{sid}.png")
        rows.append({"stimulus_id": sid, "file": f"images/{sid}.png", "mode": "uncertainty",
                     "class_a": i % 10, "class_b": (i + 1) % 10, "classifier": "vgg",
                     "classifier2": "", "gamma": 0.1, "steps": 50, "resample": 5, "seed": i,
                     "p_a": 0.5, "p_b": 0.5, "judge": 0.9, "passed": True, "status": "new"})
    pd.DataFrame(rows).to_csv(lib / "manifest.csv", index=False)
    return lib


def test_resolve_stimuli_against_a_manifest(tmp_path):
    lib = _library(tmp_path)
    manifest = load_manifest(lib)
    keys = ["dataset_PNG/uncertainty/s000000.png", "s000001", "images/s000002.png",
            "other\\folder\\s000003.png", "ghost.png"]
    t = trials_from_frame(pd.DataFrame({"participant": "p", "stimulus": keys, "response": 1}))
    idx = resolve_stimuli(t, manifest=manifest)
    assert idx.unmatched == ["ghost.png"]
    assert idx.table.loc["dataset_PNG/uncertainty/s000000.png", "stimulus_id"] == "s000000"
    assert idx.table.loc["s000001", "matched_by"] == "id"
    assert idx.table.loc["images/s000002.png", "matched_by"] == "file"
    assert idx.table.loc["other/folder/s000003.png", "class_b"] == 4
    assert "4 of 5 matched" in idx.summary() and "ghost.png" in idx.summary()
    assert idx.pairs().shape == (4, 3)
    images = load_stimulus_images(idx.table["path"].tolist())
    assert images.shape == (4, 28, 28) and images.dtype == np.uint8 and images[1, 0, 0] == 40


def test_resolve_stimuli_in_an_image_folder_and_ambiguity(tmp_path):
    folder = tmp_path / "imgs"
    for sub in ("a", "b"):
        (folder / sub).mkdir(parents=True)
        Image.fromarray(np.zeros((28, 28), dtype=np.uint8)).save(folder / sub / "twin.png")
    Image.fromarray(np.zeros((28, 28), dtype=np.uint8)).save(folder / "a" / "solo.png")
    idx = resolve_stimuli(["dataset_PNG/uncertainty/solo.png", "twin.png", "a/twin.png", "none"],
                          image_dir=folder)
    assert set(idx.table.index) == {"dataset_PNG/uncertainty/solo.png", "a/twin.png"}
    assert idx.ambiguous == ["twin.png"] and idx.unmatched == ["none"]
    assert idx.pairs().empty


def test_manifest_and_image_errors(tmp_path):
    with pytest.raises(PerceptLabError, match="is not a folder"):
        load_manifest(tmp_path / "missing")
    with pytest.raises(PerceptLabError, match="has no manifest.csv"):
        load_manifest(tmp_path)
    (tmp_path / "manifest.csv").write_text("id,path\n1,x.png\n", encoding="utf-8")
    with pytest.raises(PerceptLabError, match=r"missing columns \['stimulus_id', 'file'\]"):
        load_manifest(tmp_path)
    Image.fromarray(np.zeros((32, 32), dtype=np.uint8)).save(tmp_path / "big.png")
    with pytest.raises(PerceptLabError, match="is 32x32 pixels, expected 28x28"):
        load_stimulus_images([tmp_path / "big.png"])
    with pytest.raises(PerceptLabError, match="does not exist"):
        load_stimulus_images([tmp_path / "nope.png"])


def test_catch_trial_images_are_set_aside_not_reported_missing(tmp_path):
    lib = _library(tmp_path)
    frame = pd.DataFrame({"participant": "p", "stimulus": ["s000001", "catch/c1.png", "ghost.png"],
                          "response": 1, "is_catch": [False, True, False], "true_label": [1, 7, 1]})
    t = trials_from_frame(frame)
    assert "is_catch" in t.df.columns
    idx = resolve_stimuli(t, manifest=load_manifest(lib))
    assert idx.unmatched == ["ghost.png"] and idx.catch_only == 1
    assert "1 catch-trial images set aside" in idx.summary()
