"""The Align plots before a run and with 40 participants: no scale prefix, no label pile-up, the summary
does not list 40 model names."""

from __future__ import annotations

import pytest

pytest.importorskip("pyqtgraph")


def _evaluation(n: int) -> dict:
    parts = [{"participant": f"sim{i:03d}", "n": 12, "group": 0.6, "indiv": 0.6 + (i % 7 - 3) / 100} for i in range(n)]
    return {"participants": parts, "n_trials": 12 * n, "n_stimuli": 30,
            "indiv_vs_group": {"better": sum(p["indiv"] > p["group"] for p in parts), "participants": n,
                               "ties": sum(p["indiv"] == p["group"] for p in parts), "mean_gain": 0.0},
            "gain_by_entropy": {"bins": [{"bin": "0-1", "gain": 0.02, "n_trials": 40},
                                         {"bin": "1-2", "gain": None, "n_trials": 0}]}}


def _ticks(view):
    axis = view.plot.getAxis("bottom")
    return axis._tickLevels  # noqa: SLF001 - what setTicks stored


def test_gain_plots_before_a_run(qtbot):
    from perceptlab._qt.align.plots import BinGainView, EntropyScatterView, GainView

    for cls in (GainView, BinGainView, EntropyScatterView):
        v = cls()
        qtbot.addWidget(v.widget)
        v.set_report(None)
        assert "no run yet" in v.title()
        assert not v.plot.getAxis("left").autoSIPrefix and not v.plot.getAxis("bottom").autoSIPrefix
        (y0, y1) = v.plot.getViewBox().viewRange()[1]
        assert -11 <= y0 < y1 <= 11  # not -400..400 scaled by 0.001
    gain = GainView()
    qtbot.addWidget(gain.widget)
    gain.set_report(None)
    assert _ticks(gain) == [[], []]  # no 0.1 .. 0.9 'participants' on an empty axis


def test_forty_participants_get_a_readable_axis_and_summary(qtbot):
    from perceptlab._qt.align.plots import MAX_TICK_LABELS, GainView
    from perceptlab._qt.align.results import model_names_text

    v = GainView()
    qtbot.addWidget(v.widget)
    v.set_report(_evaluation(40))
    major, minor = _ticks(v)
    assert 1 < len(major) <= MAX_TICK_LABELS and len(minor) == 40
    assert all(label.startswith("sim") for _, label in major)
    assert "of 40" in v.title()
    assert len(v.plot.getAxis("left").labelText) <= 24  # short enough for the plot's height
    v.set_report(_evaluation(4))
    assert len(_ticks(v)[0]) == 4  # few participants: every one named

    names = ["vgg-group"] + [f"vgg-indiv-sim{i:03d}" for i in range(40)]
    text = model_names_text(names)
    assert text == "vgg-group, 40 IndivNets (vgg-indiv-…)"
    assert model_names_text(["vgg-group", "vgg-indiv-p1"]) == "vgg-group, vgg-indiv-p1"
