"""Analysis → Mixup: trials + design analysed, both plots drawn (SYNTHETIC marked), exports, errors shown."""

from __future__ import annotations

import pytest


@pytest.fixture()
def simulated(tmp_path, builtin_mnist):
    from perceptlab.analysis.mixup_simulate import (
        PerceiverSettings,
        simulate_perceivers,
    )
    from perceptlab.data.library import StimulusLibrary
    from perceptlab.data.mixup import add_to_library, make_mixup
    from perceptlab.experiment.design import load_design
    from perceptlab.experiment.mixup import write_design

    with StimulusLibrary.create(tmp_path / "lib") as lib:
        add_to_library(lib, make_mixup(builtin_mnist, [(3, 8), (1, 7)], per_pair=2, lambdas=(0, 0.25, 0.5, 0.75, 1)))
        design = write_design(lib, tmp_path / "design")
    trials, _ = simulate_perceivers(load_design(design), PerceiverSettings(participants=12))
    trials.to_csv(tmp_path / "trials.csv", index=False)
    return tmp_path / "trials.csv", design


def test_mixup_tab_draws_and_exports(qtbot, simulated, tmp_path):
    from perceptlab._qt.analysis.mixup import MixupView
    from perceptlab._qt.widgets.plot_export import export_plot

    view = MixupView()
    qtbot.addWidget(view)
    trials, design = simulated
    assert view.load(trials, None) is None and "design" in view.status.text()
    result = view.load(trials, design)
    assert result is not None and "SYNTHETIC" in view.status.text()
    assert "(SYNTHETIC)" in view.curves.plotItem.titleLabel.text
    # identity + per pair: points and the fitted curve
    assert len(view.curves.plotItem.listDataItems()) == 1 + 2 * 2
    assert len(view.bias.plotItem.listDataItems()) == 2 * 2  # individual fits + the aggregate line per pair
    assert "fit mean abs bias" in view.summary.text()
    png = export_plot(view.curves, tmp_path / "curves.png")
    assert png.stat().st_size > 1000


def test_mixup_tab_shows_what_went_wrong(qtbot, simulated, tmp_path, monkeypatch):
    import perceptlab._qt.analysis.mixup as mod

    shown = []
    monkeypatch.setattr(mod, "show_error", lambda parent, title, exc: shown.append(str(exc)))
    view = mod.MixupView()
    qtbot.addWidget(view)
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    assert view.load(bad, simulated[1]) is None
    assert shown and "neither a mixup jsPsych export" in view.status.text()


def test_analysis_panel_has_the_mixup_tab(make_window, qtbot):
    w = make_window()
    tabs = w.analysis.tabs
    assert "Mixup" in [tabs.tabText(i) for i in range(tabs.count())]
