"""The experiment runner window driven by keys (offscreen), and Run ▸ Run experiment… into Data."""

from __future__ import annotations

import csv
import time

import numpy as np
from PySide6.QtCore import Qt

from perceptlab._qt.experiment.runner import RunnerWindow, key_map, show_runner
from perceptlab.data.images import write_png
from perceptlab.experiment.design import Design, DesignTrial
from perceptlab.experiment.session import ExperimentSession

FAST = {"fixation_ms": 40, "stimulus_ms": 30}


def _images(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for n in names:
        write_png(folder / f"{n}.png", rng.integers(0, 256, (28, 28), dtype=np.uint8))


def _rows(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _runner(qtbot, design, tmp_path, participant="P1", **kw):
    session = ExperimentSession(design, participant, tmp_path / "out", **kw)
    w = RunnerWindow(session, tmp_path)
    qtbot.addWidget(w)
    show_runner(w, False)
    return w


def _wait_state(qtbot, w, state, timeout=5000):
    qtbot.waitUntil(lambda: w.state == state, timeout=timeout)


def test_key_map_uses_one_character_names_else_numbers():
    assert key_map([str(i) for i in range(10)])["7"] == "7"
    assert key_map(["cat", "dog"]) == {"1": "cat", "2": "dog"}


def test_choice_trials_by_keys_feedback_breaks_and_timing(qtbot, tmp_path):
    _images(tmp_path / "img", ["a", "b", "c", "d"])
    trials = [DesignTrial(id=n, stimulus=n, image=f"img/{n}.png", is_catch=n in "ab",
                          true_label="1" if n in "ab" else None, feedback=n in "ab") for n in "abcd"]
    design = Design(classes=["0", "1", "2"], trials=trials, shuffle="none", timing=dict(FAST), break_every=2)
    w = _runner(qtbot, design, tmp_path)
    assert w.state == "instructions"
    qtbot.keyClick(w, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: w.state in ("fixation", "stimulus"), timeout=2000)
    qtbot.keyClick(w, Qt.Key.Key_1)  # during fixation / stimulus: not taken
    assert w.session.n_answered == 0
    _wait_state(qtbot, w, "respond")
    assert [b.text() for b in w.response_buttons] == ["0", "1", "2"]
    qtbot.keyClick(w, Qt.Key.Key_1)  # correct catch answer -> feedback
    assert w.session.n_answered == 1 and w.state == "feedback" and w.text.text() == "Correct"
    _wait_state(qtbot, w, "respond", 4000)
    qtbot.keyClick(w, Qt.Key.Key_2)
    assert w.text.text().startswith("Incorrect") and "1" in w.text.text()
    _wait_state(qtbot, w, "break", 4000)
    qtbot.keyClick(w, Qt.Key.Key_Space)
    for key in (Qt.Key.Key_0, Qt.Key.Key_2):
        _wait_state(qtbot, w, "respond")
        qtbot.mouseClick(w.response_buttons[0], Qt.MouseButton.LeftButton) if key == Qt.Key.Key_0 else \
            qtbot.keyClick(w, key)
    _wait_state(qtbot, w, "end")
    with qtbot.waitSignal(w.finishedSession, timeout=2000):
        qtbot.keyClick(w, Qt.Key.Key_Space)
    out = _rows(w.session.path)
    assert [r["response"] for r in out] == ["1", "2", "0", "2"]
    assert [r["correct"] for r in out] == ["True", "False", "", ""]
    for r in out:
        # whole frames of the (offscreen: 60 Hz) display: 30 -> 33.3 ms, 40 -> 33.3 ms
        assert abs(float(r["intended_stimulus_ms"]) - w.stimulus_ms) < 1e-3 and abs(w.stimulus_ms - 30) <= 1000 / 60 / 2
        assert abs(float(r["intended_fixation_ms"]) - w.fixation_ms) < 1e-3 and abs(w.fixation_ms - 40) <= 1000 / 60 / 2
        assert w.stimulus_ms - 0.01 <= float(r["measured_stimulus_ms"]) < w.stimulus_ms + 200  # never shorter
        assert w.fixation_ms - 0.01 <= float(r["measured_fixation_ms"]) < w.fixation_ms + 200
        assert float(r["rt_ms"]) > 0


def test_pick_and_slider_screens(qtbot, tmp_path):
    _images(tmp_path / "img", ["m1", "m2", "m3", "x"])
    trials = [
        DesignTrial(id="p", stimulus="pick1", kind="pick",
                    options={"images": [f"img/m{i}.png" for i in (1, 2, 3)], "stimuli": ["m1", "m2", "m3"],
                             "class_a": "3", "class_b": "8"}),
        DesignTrial(id="s", stimulus="x", kind="slider", image="img/x.png",
                    options={"class_a": "3", "class_b": "8", "lambda": 0.5, "confidence": True}),
    ]
    w = _runner(qtbot, Design(classes=["3", "8"], trials=trials, shuffle="none", timing=dict(FAST)), tmp_path)
    qtbot.keyClick(w, Qt.Key.Key_Space)
    _wait_state(qtbot, w, "respond")
    assert len(w.response_buttons) == 3 and w.response_buttons[1].icon().availableSizes()
    qtbot.keyClick(w, Qt.Key.Key_2)
    _wait_state(qtbot, w, "respond")
    assert w.slider is not None and w.slider.value() == 50
    for _ in range(3):
        qtbot.keyClick(w, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClick(w, Qt.Key.Key_Left)
    qtbot.keyClick(w, Qt.Key.Key_4)  # confidence 4 submits
    _wait_state(qtbot, w, "end")
    out = _rows(w.session.path)
    assert (out[0]["kind"], out[0]["response"], out[0]["measured_stimulus_ms"]) == ("pick", "m2", "")
    assert (out[1]["kind"], out[1]["response"], out[1]["confidence"]) == ("slider", "0.790", "4")


def test_escape_pauses_q_quits_and_the_next_window_resumes(qtbot, tmp_path):
    _images(tmp_path / "img", ["a", "b", "c"])
    trials = [DesignTrial(id=n, stimulus=n, image=f"img/{n}.png") for n in "abc"]
    design = Design(classes=["0", "1"], trials=trials, order_seed=4, timing=dict(FAST))
    w = _runner(qtbot, design, tmp_path)
    qtbot.keyClick(w, Qt.Key.Key_Space)
    _wait_state(qtbot, w, "respond")
    qtbot.keyClick(w, Qt.Key.Key_0)
    qtbot.waitUntil(lambda: w.state in ("fixation", "stimulus", "respond"), timeout=2000)
    qtbot.keyClick(w, Qt.Key.Key_Escape)
    assert w.state == "paused" and "1 of 3" in w.text.text()
    time.sleep(0.1)
    qtbot.wait(100)  # the timers of the interrupted trial do nothing
    assert w.state == "paused"
    with qtbot.waitSignal(w.finishedSession, timeout=2000) as sig:
        qtbot.keyClick(w, Qt.Key.Key_Q)
    assert sig.args[0] == w.session.path and len(_rows(w.session.path)) == 1
    again = _runner(qtbot, design, tmp_path)
    assert again.session.resumed and "Welcome back" in again.text.text()
    qtbot.keyClick(again, Qt.Key.Key_Space)
    for _ in range(2):
        _wait_state(qtbot, again, "respond")
        qtbot.keyClick(again, Qt.Key.Key_1)
    _wait_state(qtbot, again, "end")
    assert [r["trial_index"] for r in _rows(w.session.path)] == ["0", "1", "2"]


class SlowSelector:
    """ActiveSelector's interface; next() takes longer than the fixation."""

    def __init__(self, ids):
        self.ids, self.observed, self.threads = list(ids), [], []

    def observe(self, stimulus_id, response):
        self.observed.append((stimulus_id, response))

    def next(self, exclude=()):
        import threading

        self.threads.append(threading.current_thread() is threading.main_thread())
        time.sleep(0.15)
        return [i for i in self.ids if i not in exclude][0], 0.1


def test_adaptive_next_stimulus_is_chosen_off_the_gui_thread(qtbot, tmp_path):
    _images(tmp_path / "img", ["a", "b", "c"])
    trials = [DesignTrial(id=n, stimulus=n, image=f"img/{n}.png") for n in "abc"]
    design = Design(classes=["0", "1"], trials=trials, timing=dict(FAST),
                    adaptive={"method": "bald", "n_trials": 2, "pool": ["c", "b", "a"]})
    sel = SlowSelector(["c", "b", "a"])
    w = _runner(qtbot, design, tmp_path, selector=sel)
    qtbot.keyClick(w, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: w.state == "waiting", timeout=2000)  # cross stays while the selector works
    _wait_state(qtbot, w, "respond", 3000)
    qtbot.keyClick(w, Qt.Key.Key_1)
    _wait_state(qtbot, w, "respond", 3000)
    qtbot.keyClick(w, Qt.Key.Key_0)
    _wait_state(qtbot, w, "end", 3000)
    assert sel.observed == [("c", "1"), ("b", "0")]
    assert sel.threads == [False, False]  # never on the GUI (main) thread
    out = _rows(w.session.path)
    assert float(out[0]["measured_fixation_ms"]) >= 140  # the fixation lasted until the stimulus was known


def test_run_experiment_from_the_library_lands_in_data_without_mapping(make_window, qtbot, tmp_path, dialogs):
    from perceptlab._qt.experiment.dialog import LIBRARY
    from tests.data.test_library import make_images, make_records

    w = make_window()
    assert w.open_library(tmp_path / "lib", create=True)
    lib = w.session.library
    ids = lib.add(make_records(6), make_images(6))
    lib.set_status(ids[:5], "accepted")
    qtbot.waitUntil(lambda: w.session.mnist is not None, timeout=10_000)
    assert w.act_run_experiment.shortcut().toString() == "Ctrl+Shift+X"
    dlg = w.experiments.dialog()
    dlg.participant.setText("P07")
    vals = dlg.values()
    assert vals["source"] == LIBRARY and "5" in dlg.source.currentText()
    dlg.participant.setText("no spaces allowed")
    dlg.accept()
    assert "participant id" in dlg.error.text()
    vals.update(catch_rate=0.2, break_every=0, auto_respond=True)
    runner = w.experiments.start(**vals)
    assert runner is not None and runner.auto_respond
    qtbot.waitUntil(lambda: w.experiments.runner is None, timeout=20_000)
    qtbot.waitUntil(lambda: w.session.trials is not None, timeout=20_000)
    table = w.session.trials
    assert table.report.rows_used == 5 + 1 and w.session.mapping is None
    assert table.df["is_catch"].sum() == 1
    assert w.tabs.currentWidget() is w.data
    assert not [c for c in dialogs.calls if c[0] == "critical"]


def test_cli_run_experiment_auto_respond_prints_the_timing(qtbot, tmp_path, capsys):
    from perceptlab.cli import main
    from perceptlab.experiment.design import save_design

    _images(tmp_path / "img", ["a", "b", "c"])
    trials = [DesignTrial(id=n, stimulus=n, image=f"img/{n}.png") for n in "abc"]
    path = save_design(Design(classes=["0", "1"], trials=trials, timing={"fixation_ms": 50, "stimulus_ms": 50}),
                       tmp_path / "design.json")
    assert main(["run-experiment", str(path), "--participant", "C1", "--auto-respond"]) == 0
    out = capsys.readouterr().out
    assert "3 of 3 trials answered" in out and "share_within_one_frame" in out
    assert len(_rows(next((tmp_path / "trials").glob("C1_*.csv")))) == 3
