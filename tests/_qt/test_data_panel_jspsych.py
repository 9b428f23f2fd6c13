"""The Data panel opens a folder of returned jsPsych files (one per participant) as one data set."""

from __future__ import annotations

from tests.data.test_jspsych_returned import RETURNED


def test_data_panel_loads_the_folder_and_applies_the_catch_exclusion(make_window, qtbot):
    w = make_window()
    job = w.data.load(RETURNED)
    qtbot.waitUntil(lambda: not job.is_running(), timeout=30_000)
    qtbot.waitUntil(lambda: w.session.analysis is not None, timeout=30_000)
    assert w.session.trials is not None and len(w.session.trials.df) == 22
    parts = w.data.participants_model.frame().set_index("participant")
    assert bool(parts.loc["P02", "excluded"]) and not bool(parts.loc["P01", "excluded"])
    assert "P02: 0/2 correct" in w.data.exclusion_label.text()
