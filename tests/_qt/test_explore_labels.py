"""Explore's labels: which classifier each probability comes from in controversial mode (tiles, detail,
plot), and the step axis following the form's Steps before a run."""

from __future__ import annotations

from tests._qt.test_explore import _setup


def _axis_max(ex) -> float:
    return ex.plot.getPlotItem().getViewBox().viewRange()[0][1]


def test_controversial_probabilities_name_their_classifier(make_window, qtbot):
    w = make_window()
    ex = w.explore
    f = ex.form
    f.mode.setCurrentIndex(f.mode.findData("controversial"))
    f.classifier.setCurrentIndex(f.classifier.findData("vgg"))
    f.classifier2.setCurrentIndex(f.classifier2.findData("mlp"))
    _setup(ex, [(3, 5)], per_pair=2, batch=2, steps=2, preset="draft")
    assert ex.generate()
    qtbot.waitUntil(lambda: not ex.is_running(), timeout=30_000)
    ex.view.setCurrentIndex(ex.model.index(0))
    ex._show_current()
    assert ex.model.sources == ("vgg", "mlp")
    text = ex.detail.text()
    assert "vgg: p(3) = " in text and "mlp: p(5) = " in text
    tip = ex.model.data(ex.model.index(0), 3)  # ToolTipRole
    assert "vgg: p(3) = " in tip and "mlp: p(5) = " in tip
    assert "p(3) by classifier 1, p(5) by classifier 2" in ex.plot.getPlotItem().titleLabel.text
    legend = ex.plot.getPlotItem().legend
    assert legend.getLabel(ex.curve_a).text == "vgg: p(3)" and legend.getLabel(ex.curve_b).text == "mlp: p(5)"

    # one classifier (uncertainty): plain p(a), p(b)
    f.mode.setCurrentIndex(f.mode.findData("uncertainty"))
    _setup(ex, [(4, 9)], per_pair=1, batch=1, steps=2, preset="draft")
    assert ex.generate()
    qtbot.waitUntil(lambda: not ex.is_running(), timeout=30_000)
    ex._show_current()
    assert ex.model.sources is None
    assert "p(4) = " in ex.detail.text() and "vgg:" not in ex.detail.text()


def test_step_axis_follows_steps_before_a_run(make_window):
    ex = make_window().explore
    ex.form.steps.setValue(20)
    assert 20 <= _axis_max(ex) < 22
    ex.form.steps.setValue(50)
    assert 50 <= _axis_max(ex) < 53


def test_tile_labels_tell_two_similar_classifiers_apart():
    from perceptlab._qt.explore.preview import short_names

    assert short_names("cornet", "vgg") == ("cor", "vgg")
    assert short_names("vgg-indiv-sim001", "vgg-indiv-sim002") == ("001", "002")
    assert short_names("vgg-group", "vgg-indiv-p1") == ("grou", "indi")
    a, b = short_names("vgg", "vgg2")
    assert a != b


def test_gamma_slider_shows_the_value_used_and_a_track_click_moves_one_page(make_window, qtbot):
    from PySide6.QtCore import QPoint, Qt

    form = make_window().explore.form
    gamma = form.gamma
    gamma._slider.setValue(0.995215)  # a drag lands between steps
    assert gamma.value() == 1.0 and form.settings().gamma == 1.0
    gamma.setValue(0.1)
    track = gamma._slider
    for expected in (0.15, 0.2):  # not a jump to where the click was
        qtbot.mouseClick(track, Qt.MouseButton.LeftButton, pos=QPoint(track.width() - 3, track.height() // 2))
        assert abs(gamma.value() - expected) < 1e-9
    assert form.settings().gamma == 0.2
