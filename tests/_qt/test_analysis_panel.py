"""Analysis: every plot drawn from the demo analysis, clicks open the stimuli behind them, exports."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, Qt

from perceptlab._qt.widgets.plot_export import export_plot


@pytest.fixture()
def analysed(make_window, demo_project, qtbot):
    w = make_window(demo_dir=demo_project)
    qtbot.waitUntil(lambda: w.session.analysis is not None, timeout=60_000)
    w.tabs.setCurrentWidget(w.analysis)
    return w


def test_plots_and_clicks_show_the_stimuli_behind_them(analysed, qtbot):
    w = analysed
    an = w.analysis
    a = w.session.analysis
    # entropy histogram: bins, and a click on a bar
    an.bins.setValue(5)
    assert len(an.entropy.counts) == 5 and an.entropy.counts.sum() == len(a.choices.entropy)
    i = int(an.entropy.counts.argmax())
    x = (an.entropy.edges[i] + an.entropy.edges[i + 1]) / 2
    keys = an.entropy.click_at(x)
    assert len(keys) == an.entropy.counts[i]
    b = an.browser
    assert b is not None and b.isVisible() and len(b.items) == len(keys)
    assert b.items[0].path is not None and b.items[0].path.is_file() and b.items[0].counts.sum() > 0
    # a real mouse click on the same bar goes through the scene
    b.items = []
    an.tabs.setCurrentIndex(0)
    vb = an.entropy.plot.vb
    scene_pt = vb.mapViewToScene(vb.mapFromView(vb.mapSceneToView(vb.sceneBoundingRect().center())))
    view_pt = an.entropy.widget.mapFromScene(scene_pt)
    x_mid = vb.mapSceneToView(scene_pt).x()
    qtbot.mouseClick(an.entropy.widget.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(view_pt.x(), view_pt.y()))
    if an.entropy.edges[0] <= x_mid <= an.entropy.edges[-1]:
        qtbot.waitUntil(lambda: len(b.items) > 0 or b.heading.text() != "", timeout=2000)
    # outcomes: heatmap cell and a stacked bar
    oc = a.outcomes
    assert oc is not None and an.outcomes.image.image is not None
    keys = an.outcomes.click_cell(4, 9)
    assert keys and all(int(oc.per_stimulus.loc[k, "class_a"]) in (4, 9) for k in keys)
    assert "4-9" in b.heading.text()
    outcome_keys = an.outcomes.click_bar(0, 0.01)
    assert outcome_keys and set(oc.per_stimulus.loc[outcome_keys, "outcome"]) == {oc.per_stimulus.loc[outcome_keys[0], "outcome"]}
    # RT vs entropy
    assert "ρ" in an.rt.plot.titleLabel.text and len(an.rt.keys) > 0
    assert an.rt.click_point(0) == [an.rt.keys[0]] and len(b.items) == 1
    # participants: agreement ordered by clustering, k control, a cell shows the co-viewed stimuli
    assert a.clusters is not None and an.agreement.image.image is not None
    job = an.set_k(3)
    qtbot.waitUntil(lambda: not job.is_running(), timeout=30_000)
    assert w.session.analysis.clusters.k == 3 and "k = 3" in an.agreement.plot.titleLabel.text
    pair = an.agreement.click_cell(0, 1)
    assert pair is not None and pair[0] in b.heading.text() and "seen by both" in b.heading.text()
    # model vs human: one scatter per zoo classifier
    models = [an.model.itemData(i) for i in range(an.model.count())]
    assert models == ["cornet", "mlp", "vgg", "vit"]
    an.model.setCurrentIndex(2)
    assert "vgg" in an.model_human.plot.titleLabel.text and "ρ" in an.model_human.plot.titleLabel.text
    assert an.model_human.click_point(0)


def test_every_plot_exports_png_svg_pdf(analysed, tmp_path, qtbot):
    an = analysed.analysis
    for name, view in an.views.items():
        an.tabs.setCurrentIndex(list(an.views).index(name))
        for fmt in ("png", "svg", "pdf"):
            out = export_plot(view.widget, tmp_path / f"{name}.{fmt}")
            data = out.read_bytes()
            assert len(data) > 500, (name, fmt)
            head = {"png": b"\x89PNG", "svg": b"<?xml", "pdf": b"%PDF"}[fmt]
            assert data.startswith(head) or (fmt == "svg" and b"<svg" in data[:400]), (name, fmt, data[:40])
