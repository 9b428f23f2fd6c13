"""L-WISE curriculum: designs, jsPsych timeline (run in node when present), simulated learner, analysis."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from tests.conftest import digits_uint8
from tests.test_lwise_engine import tiny_lwise_registry


def _lib(tmp_path, builtin_mnist, n=12):
    from perceptlab.data.library import Stimulus, StimulusLibrary

    lib = StimulusLibrary.create(tmp_path / "lib")
    ids = lib.add([Stimulus(mode="mnist", class_a=int(builtin_mnist.labels[i])) for i in range(n)],
                  digits_uint8(builtin_mnist, n))
    return lib, ids


@pytest.fixture()
def built(tmp_path, builtin_mnist):
    from perceptlab.experiment.curriculum import CurriculumSpec, build_curriculum

    reg = tiny_lwise_registry(tmp_path)
    lib, ids = _lib(tmp_path, builtin_mnist)
    spec = CurriculumSpec(eps=[3.0, 1.0, 0.0], per_block=3, steps=3)
    cur, ctl = build_curriculum(lib, ids[:9], ids[9:], spec, registry=reg)
    yield lib, ids, cur, ctl
    lib.close()


def test_curriculum_and_control_designs(built):
    lib, ids, cur, ctl = built
    train = [t for t in cur.trials if t.phase == "train"]
    assert [t.options["eps"] for t in train] == [3.0] * 3 + [1.0] * 3 + [0.0] * 3
    assert all(t.feedback and t.true_label is not None for t in train)
    test = [t for t in cur.trials if t.phase == "test"]
    assert sorted(t.stimulus for t in test) == sorted(ids[9:]) and not any(t.feedback for t in test)
    assert all(t.block == 3 for t in test)
    # enhanced images are new stimuli whose provenance names the source
    for t in train[:6]:
        assert lib.get(t.stimulus).settings["enhancement"]["source"] == t.options["source"]
    assert [t.stimulus for t in train[6:]] == [t.options["source"] for t in train[6:]]
    # the control shows the same trials, dealt to the blocks in another order
    c_train = [t for t in ctl.trials if t.phase == "train"]
    assert sorted(t.id for t in c_train) == sorted(t.id for t in train)
    assert [t.id for t in c_train] != [t.id for t in train]
    assert [t.block for t in c_train] == [0] * 3 + [1] * 3 + [2] * 3
    assert {t.options["condition"] for t in ctl.trials} == {"control"}


def test_design_folder_loads(built, tmp_path):
    from perceptlab.experiment.curriculum import write_design_folder
    from perceptlab.experiment.design import load_design

    lib, _, cur, _ = built
    path = write_design_folder(cur, lib, tmp_path / "out" / "curriculum")
    back = load_design(path)  # validates, images included
    assert [t.id for t in back.trials] == [t.id for t in cur.trials]


NODE_HARNESS = r"""
const fs = require("fs");
global.jsPsychPreload = "preload"; global.jsPsychHtmlKeyboardResponse = "html"; global.jsPsychImageButtonResponse = "image";
const dir = process.argv[2];
eval(["timeline.js", "perceptlab-save.js", "perceptlab-curriculum.js"].map((f) => fs.readFileSync(dir + "/" + f, "utf8"))
  .join("\n") + "\nglobal.perceptlabTimeline = perceptlabTimeline;");
let last = {};
const fake = { data: { get: () => ({ last: () => ({ values: () => [last] }) }) } };
const tl = perceptlabTimeline(fake);
const out = tl.map((t) => {
  let fb = null;
  if (t.type === "image") { last = { response: 0 }; t.on_finish(last); fb = { correct: last.correct, label: last.response_label }; }
  if (t.type === "html" && typeof t.stimulus === "function") { fb = t.stimulus(); }
  return { type: t.type, phase: t.data ? t.data.phase : null, block: t.data ? t.data.block : null,
           task: t.data ? t.data.task : null, eps: t.data ? t.data.eps : null, fb: fb };
});
console.log(JSON.stringify(out));
"""


def test_jspsych_timeline_structure(built, tmp_path):
    from perceptlab.data.export_curriculum import export_curriculum_jspsych, timeline_trials

    lib, _, cur, _ = built
    index = export_curriculum_jspsych(cur, lib, tmp_path / "js")
    out = index.parent
    assert (out / "design.json").is_file() and (out / "jspsych").is_dir()
    trials = timeline_trials(cur)
    assert all((out / t["stimulus"]).is_file() for t in trials)
    assert [t["phase"] for t in trials] == ["train"] * 9 + ["test"] * 3
    js = (out / "timeline.js").read_text()
    listed = json.loads(js.split("const PERCEPTLAB_TRIALS = ")[1].split("];")[0] + "]")
    assert listed == trials
    if shutil.which("node") is None:
        pytest.skip("node is not installed: the timeline's structure was checked from its trial list only")
    (tmp_path / "h.js").write_text(NODE_HARNESS)
    steps = json.loads(subprocess.run(["node", str(tmp_path / "h.js"), str(out)], check=True,
                                      capture_output=True, text=True, timeout=30).stdout)
    kinds = [s["type"] for s in steps]
    assert kinds[:2] == ["preload", "html"]
    images = [i for i, s in enumerate(steps) if s["type"] == "image"]
    assert len(images) == 12
    for i in images:
        assert steps[i - 1]["type"] == "html"  # the fixation cross
        has_feedback = i + 1 < len(steps) and isinstance(steps[i + 1]["fb"], str)
        assert has_feedback == (steps[i]["phase"] == "train")
        if has_feedback:
            label = steps[i]["fb"]["label"]
            assert ("Correct" in steps[i + 1]["fb"]) == steps[i]["fb"]["correct"] and label == "0"
    assert [steps[i]["eps"] for i in images[:9]] == [3.0] * 3 + [1.0] * 3 + [0.0] * 3


def _hand_designs(n_blocks=4, per_block=25, n_test=60, seed=0):
    """Designs over made-up stimuli whose difficulty is known: logit = 4 + 3 * ε for block ε."""
    from perceptlab.experiment.design import Design, DesignTrial

    rng = np.random.default_rng(seed)
    classes = [f"c{i}" for i in range(4)]
    eps = np.linspace(3, 0, n_blocks)
    logits, train = {}, []
    for b, e in enumerate(eps):
        for k in range(per_block):
            sid = f"tr{b}-{k}"
            logits[sid] = 4 + 3 * e + rng.normal(0, 0.5)
            train.append(DesignTrial(id=sid, stimulus=sid, block=b, phase="train", true_label=classes[k % 4],
                                     feedback=True, options={"eps": float(e)}))
    test = []
    for k in range(n_test):
        sid = f"te{k}"
        logits[sid] = rng.uniform(1, 8)
        test.append(DesignTrial(id=sid, stimulus=sid, block=n_blocks, phase="test", true_label=classes[k % 4]))
    dealt = [train[i] for i in rng.permutation(len(train))]
    from dataclasses import replace

    ctl = [replace(t, block=p // per_block) for p, t in enumerate(dealt)]
    cur = Design(classes=classes, trials=train + test, name="x-curriculum", shuffle="none")
    con = Design(classes=classes, trials=ctl + test, name="x-control", shuffle="none")
    return cur, con, logits


def test_simulated_curriculum_learner_beats_control_and_difficulty_predicts_error():
    from scipy import stats

    from perceptlab.analysis.curriculum import LearnerSettings, learning_summary, learning_table, simulate_learners

    cur, con, logits = _hand_designs()
    wins = 0
    for seed in range(3):
        rows = simulate_learners([cur, con], logits, LearnerSettings(participants=30, seed=seed))
        assert rows["synthetic"].all() and set(rows["condition"]) == {"curriculum", "control"}
        s = learning_summary(learning_table(rows))
        wins += s["test"]["curriculum"]["accuracy"] > s["test"]["control"]["accuracy"]
        curve = [c["accuracy"] for c in s["curves"]["curriculum"]]
        assert curve[0] > curve[-1]  # enhanced first blocks are easy, the last (ε = 0) is hard
        test = rows[rows["phase"] == "test"]
        err = 1 - test.groupby("stimulus")["correct"].mean()
        rho = stats.spearmanr([logits[k] for k in err.index], err.to_numpy())[0]
        assert rho < -0.3
    assert wins == 3


def test_learning_analysis_reads_runner_rows(tmp_path):
    from perceptlab.analysis.curriculum import learning_summary, load_learning

    rows = pd.DataFrame({"participant": ["a"] * 4 + ["b"] * 4, "block": [0, 1, 2, 2] * 2,
                         "phase": ["train", "train", "test", "test"] * 2,
                         "response": ["1", "2", "3", "3", "1", "0", "0", "3"],
                         "true_label": ["1", "2", "3", "4", "1", "2", "3", "3"]})
    rows.iloc[:4].to_csv(tmp_path / "c.csv", index=False)
    rows.iloc[4:].to_csv(tmp_path / "k.csv", index=False)
    table = load_learning([f"curriculum={tmp_path / 'c.csv'}", f"control={tmp_path / 'k.csv'}"])
    assert table.attrs["synthetic"] is False  # people, not simulated learners
    s = learning_summary(table)
    assert s["test"]["curriculum"]["accuracy"] == 0.5 and s["test"]["control"]["accuracy"] == 0.5
    assert [c["accuracy"] for c in s["curves"]["control"]] == [1.0, 0.0]
    from perceptlab.errors import PerceptLabError

    with pytest.raises(PerceptLabError, match="condition"):
        load_learning([str(tmp_path / "c.csv")])


def test_jspsych_export_is_lab_safe(built, tmp_path):
    """The save options reach timeline.js and index.html (the library export's checks); the runtime, the
    shared data handling and recover.html are copied as they are."""
    import re

    from perceptlab.data.export_curriculum import export_curriculum_jspsych
    from perceptlab.data.jspsych_kit import ASSETS
    from perceptlab.errors import PerceptLabError

    lib, _, cur, _ = built
    out = export_curriculum_jspsych(cur, lib, tmp_path / "post", save_hook="post", save_url="/save",
                                    download=False).parent
    config = json.loads(re.search(r"const PERCEPTLAB_CONFIG = (\{.*?\n\});", (out / "timeline.js").read_text(), re.S).group(1))
    assert config["save_hook"] == "post" and config["save_url"] == "/save" and config["download"] is False
    assert config["experiment_id"].startswith("learning-") and config["feedback_ms"] == 1000
    for name in ("perceptlab-save.js", "perceptlab-curriculum.js", "recover.html"):
        assert (out / name).read_text() == (ASSETS / name).read_text()
    html = (out / "index.html").read_text()
    assert re.findall(r'<script src="([^"]+)"', html)[-3:] == ["timeline.js", "perceptlab-save.js", "perceptlab-curriculum.js"]
    assert "PerceptLabCurriculum.run(" in html
    assert "perceptlab-queue:" in (out / "README.md").read_text()
    assert '<script src="jatos.js"></script>' in export_curriculum_jspsych(cur, lib, tmp_path / "j", save_hook="jatos").read_text()
    with pytest.raises(PerceptLabError, match="needs a save URL"):
        export_curriculum_jspsych(cur, lib, tmp_path / "bad", save_hook="post")
    assert not (tmp_path / "bad").exists()
