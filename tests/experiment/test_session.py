import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from perceptlab.data.library import StimulusLibrary
from perceptlab.errors import PerceptLabError
from perceptlab.experiment.design import (
    OUTPUT_COLUMNS,
    Design,
    DesignTrial,
    load_design,
    save_design,
)
from perceptlab.data.catch import catch_count
from perceptlab.experiment.library_design import design_from_library
from perceptlab.experiment.session import ExperimentSession
from tests.data.test_library import make_images, make_records

ROOT = Path(__file__).resolve().parents[2]


def small_design(n=6, **kw) -> Design:
    trials = [DesignTrial(id=f"t{i}", stimulus=f"s{i}", true_label=str(i % 3) if i % 2 else None,
                          is_catch=bool(i % 2)) for i in range(n)]
    return Design(classes=["0", "1", "2"], trials=trials, order_seed=5, **kw)


def rows(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_append_flush_and_resume(tmp_path):
    d = small_design()
    s = ExperimentSession(d, "P1", tmp_path)
    assert s.path.name.startswith("P1_") and not s.resumed
    first = s.next_trial()
    assert s.next_trial() is first  # stays until recorded
    s.record("1", 512.0, 301.0, 199.5)
    # on disk before anything else happens (read through a fresh handle)
    got = rows(s.path)
    assert list(got[0]) == list(OUTPUT_COLUMNS) and len(got) == 1
    assert got[0]["stimulus"] == first.stimulus and got[0]["trial_index"] == "0"
    assert got[0]["measured_stimulus_ms"] == "199.5" and got[0]["intended_stimulus_ms"] == "200"
    s.record("2", 400.0, 300.0, 200.0)
    s.close()
    again = ExperimentSession(d, "P1", tmp_path)
    assert again.resumed and again.session_id == s.session_id and again.n_answered == 2
    with pytest.raises(PerceptLabError, match="open in another runner"):
        ExperimentSession(d, "P1", tmp_path)  # a second runner on the same file is refused
    assert again.next_trial().id == again.order[2].id
    while not again.done:
        t = again.next_trial()
        again.record(t.true_label or "0", 300.0, 300.0, 200.0)
    again.close()
    out = rows(s.path)
    assert [r["trial_index"] for r in out] == [str(i) for i in range(6)]
    assert [r["stimulus"] for r in out] == [t.stimulus for t in again.order]
    catch = [r for r in out if r["is_catch"] == "True"]
    assert catch and all(r["correct"] in ("True", "False") for r in catch)
    with pytest.raises(PerceptLabError, match="completed this design"):
        ExperimentSession(d, "P1", tmp_path)
    other = ExperimentSession(d, "P2", tmp_path)  # another participant: a new file
    assert not other.resumed and other.path != s.path
    other.close()


def test_truncated_last_line_is_reported_and_removed(tmp_path):
    d = small_design()
    s = ExperimentSession(d, "P1", tmp_path)
    s.record("1", 500.0, 300.0, 200.0)
    s.close()
    with open(s.path, "a", encoding="utf-8") as fh:
        fh.write("P1,s3,2,41")  # a kill in the middle of a write
    again = ExperimentSession(d, "P1", tmp_path)
    assert again.n_answered == 1 and any("cut off" in n for n in again.notes)
    again.record("0", 500.0, 300.0, 200.0)
    again.close()
    assert [r["trial_index"] for r in rows(s.path)] == ["0", "1"]


def test_file_of_another_design_is_refused(tmp_path):
    s = ExperimentSession(small_design(), "P1", tmp_path, session_id="x1")
    s.record("1", 500.0, 300.0, 200.0)
    s.close()
    d2 = small_design()
    d2.order_seed = 99
    d2.shuffle = "none"
    d2.trials.reverse()
    with pytest.raises(PerceptLabError, match="another design"):
        ExperimentSession(d2, "P1", tmp_path, session_id="x1")
    with pytest.raises(PerceptLabError, match="participant id"):
        ExperimentSession(small_design(), "../evil", tmp_path)


def test_pick_and_slider_rows(tmp_path):
    trials = [
        DesignTrial(id="p", stimulus="pick1", kind="pick",
                    options={"images": ["a.png", "b.png"], "stimuli": ["m1", "m2"], "class_a": "0", "class_b": "1"}),
        DesignTrial(id="s", stimulus="mix1", kind="slider", phase="test",
                    options={"class_a": "0", "class_b": "1", "lambda": 0.3, "confidence": True}),
    ]
    s = ExperimentSession(Design(classes=["0", "1"], trials=trials, shuffle="none"), "P", tmp_path)
    s.record("m2", 900.0, 300.0, 200.0)
    with pytest.raises(PerceptLabError, match="outside"):
        s.record(1.5, 900.0, 300.0, 200.0)
    s.record(0.4251, 900.0, 300.0, 200.0, confidence=4)
    s.close()
    out = rows(s.path)
    assert (out[0]["kind"], out[0]["response"]) == ("pick", "m2")
    assert (out[1]["kind"], out[1]["response"], out[1]["confidence"], out[1]["phase"]) == ("slider", "0.425", "4", "test")


class FakeSelector:
    """The interface of perceptlab.experiment.active.ActiveSelector: picks the first unseen id."""

    def __init__(self, ids):
        self.ids, self.seen = list(ids), []

    def observe(self, stimulus_id, response):
        self.seen.append((stimulus_id, response))

    def next(self, exclude=()):
        left = [i for i in self.ids if i not in exclude]
        return left[-1], 0.5


def test_adaptive_session_asks_the_selector_and_replays_on_resume(tmp_path):
    d = small_design()
    d.adaptive = {"method": "bald", "n_trials": 3, "pool": ["s0", "s1", "s2", "s3"]}
    sel = FakeSelector(d.adaptive["pool"])
    s = ExperimentSession(d, "P1", tmp_path, selector=sel)
    assert s.n_trials == 3 and s.next_trial().stimulus == "s3"
    s.record("1", 500.0, 300.0, 200.0)
    assert s.next_trial().stimulus == "s2" and sel.seen == [("s3", "1")]
    s.close()
    sel2 = FakeSelector(d.adaptive["pool"])
    again = ExperimentSession(d, "P1", tmp_path, selector=sel2)
    assert sel2.seen == [("s3", "1")] and again.next_trial().stimulus == "s2"
    again.close()
    with pytest.raises(PerceptLabError, match="selector"):
        ExperimentSession(d, "P9", tmp_path)


def _library(tmp_path, n=9):
    lib = StimulusLibrary.create(tmp_path / "lib")
    ids = lib.add(make_records(n), make_images(n))
    lib.set_status(ids[: n - 2], "accepted")
    return lib, ids


def test_design_from_library_with_catch_trials(tmp_path, builtin_mnist):
    lib, ids = _library(tmp_path)
    d = design_from_library(lib, tmp_path / "study", catch_rate=0.25, seed=3, mnist=builtin_mnist)
    lib.close()
    main = [t for t in d.trials if not t.is_catch]
    catch = [t for t in d.trials if t.is_catch]
    assert [t.stimulus for t in main] == ids[:7]
    assert len(catch) == catch_count(7, 0.25) == 2
    path = save_design(d, tmp_path / "study" / "design.json")
    back = load_design(path)  # validates that every image exists relative to the design
    for t in catch:
        img = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(path.parent / t.image))
        assert img.shape == (28, 28) and t.true_label in back.classes
        idx = int(t.stimulus.split("mnist")[1][:5])
        assert str(int(builtin_mnist.labels[idx])) == t.true_label and builtin_mnist.holdout[idx]
    with pytest.raises(PerceptLabError, match="no stimuli"):
        design_from_library(tmp_path / "lib", tmp_path / "x", status="rejected", mnist=builtin_mnist)


def test_catch_trials_drive_the_exclusion(tmp_path, builtin_mnist):
    from perceptlab.analysis.exclusions import apply_exclusions
    from perceptlab.data.trials import load_trials

    lib, _ = _library(tmp_path)
    d = design_from_library(lib, tmp_path / "study", catch_rate=0.3, seed=1, mnist=builtin_mnist)
    lib.close()
    for participant, attentive in (("good", True), ("bad", False)):
        s = ExperimentSession(d, participant, tmp_path / "out")
        while not s.done:
            t = s.next_trial()
            answer = t.true_label if (t.is_catch and attentive) else ("9" if t.is_catch else "3")
            s.record(answer, 600.0, 300.0, 200.0)
        s.close()
    table = load_trials(tmp_path / "out")
    assert table.report.rows_used == 2 * len(d.trials)
    res = apply_exclusions(table.df, catch_threshold=0.7)
    assert res.excluded == ["bad"]
    assert set(res.trials["participant"]) == {"good"} and not res.trials["is_catch"].any()


AUTO = """
import sys, time
from perceptlab.experiment.design import load_design
from perceptlab.experiment.session import ExperimentSession
s = ExperimentSession(load_design(sys.argv[1]), "K1", sys.argv[2])
while not s.done:
    t = s.next_trial()
    s.record("1", 250.0, 300.0, 200.0)
    print(s.n_answered, flush=True)
    time.sleep(0.01)
"""


def test_kill_9_loses_no_answered_trial_and_resumes(tmp_path):
    trials = [DesignTrial(id=f"t{i}", stimulus=f"s{i}") for i in range(400)]
    path = save_design(Design(classes=["0", "1"], trials=trials, order_seed=2), tmp_path / "d.json")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", AUTO, str(path), str(tmp_path / "out")], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, text=True)
    answered = 0
    deadline = time.time() + 60
    while answered < 40 and time.time() < deadline:
        answered = int(proc.stdout.readline() or answered)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # every trial the process reported as answered (printed after record returned) is on disk
    for line in proc.stdout:
        answered = max(answered, int(line))
    assert answered >= 40
    files = list((tmp_path / "out").glob("K1_*.csv"))
    assert len(files) == 1
    on_disk = rows(files[0])
    assert len(on_disk) >= answered
    assert [int(r["trial_index"]) for r in on_disk] == list(range(len(on_disk)))
    s = ExperimentSession(load_design(path), "K1", tmp_path / "out")
    assert s.resumed and s.n_answered == len(on_disk)
    assert s.next_trial().stimulus == s.order[len(on_disk)].stimulus
    s.close()


def test_cli_design_from_library(tmp_path, capsys):
    from perceptlab.cli import main

    lib, ids = _library(tmp_path)
    lib.close()
    out = tmp_path / "study" / "design.json"
    assert main(["design", "from-library", str(tmp_path / "lib"), "--out", str(out), "--catch-rate", "0.2",
                 "--seed", "4", "--break-every", "5"]) == 0
    d = load_design(out)
    assert d.break_every == 5 and d.order_seed == 4 and sum(t.is_catch for t in d.trials) == 2
    assert "7 stimuli (accepted) + 2 catch trials" in capsys.readouterr().out
    assert main(["design", "from-library", str(tmp_path / "lib"), "--out", str(tmp_path)]) == 2


def test_adaptive_design_with_the_active_selector(tmp_path):
    """An adaptive design over a library: the pool's trials come from the library's images, the real
    ActiveSelector (perceptlab.experiment.active, issue 15c) chooses, answers are replayed on resume."""
    pytest.importorskip("perceptlab.experiment.active")
    from perceptlab.experiment.session import open_session

    lib, ids = _library(tmp_path)
    lib.close()
    design = Design(classes=[str(i) for i in range(10)], trials=[], library="../lib", name="adaptive",
                    adaptive={"method": "bald", "n_trials": 3, "pool": ids[:6], "models": ["vgg", "mlp"]})
    path = save_design(design, tmp_path / "study" / "design.json")
    s, base = open_session(path, "A1")
    first = s.next_trial()
    assert first.stimulus in ids[:6] and (base / first.image).is_file()
    s.record("3", 400.0, 300.0, 200.0)
    s.close()
    again, _ = open_session(path, "A1")
    assert again.resumed and again.n_answered == 1
    nxt = again.next_trial()
    assert nxt.stimulus in ids[:6] and nxt.stimulus != first.stimulus
    again.close()
