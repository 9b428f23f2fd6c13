"""Classifier pickers: grouped under built-in / GroupNets / IndivNets headers, filtered by typing."""

from __future__ import annotations

from PySide6.QtCore import Qt

from tests._qt.test_align_panel import _user_model


def test_pickers_group_the_models_and_filter_by_typing(make_window, registry, qtbot):
    _user_model(registry, "vgg-group", "group")
    for i, p in enumerate(("p1", "p2", "p3")):
        _user_model(registry, f"vgg-indiv-{p}", "individual", [p.upper()], seed=i)
    w = make_window()
    combo = w.explore.form.classifier
    rows = [(combo.itemText(i), combo.itemData(i)) for i in range(combo.count())]
    headers = [text for text, data in rows if data is None]
    assert headers[0] == "built-in" and headers[1].startswith("GroupNets") and headers[2].startswith("IndivNets")
    names = [data for _, data in rows]
    assert names.index("vgg") < names.index("vgg-group") < names.index("vgg-indiv-p1")
    head = combo.model().item(0)
    assert not head.flags() & Qt.ItemFlag.ItemIsSelectable and not head.flags() & Qt.ItemFlag.ItemIsEnabled
    assert combo.currentData() == "vgg"

    completer = combo.completer()
    assert completer.filterMode() == Qt.MatchFlag.MatchContains
    completer.setCompletionPrefix("INDIV-P2")
    assert completer.completionCount() == 1 and completer.currentCompletion() == "vgg-indiv-p2"
    completer.activated.emit("vgg-indiv-p2")
    assert combo.currentData() == "vgg-indiv-p2"
    assert w.explore.form.settings().classifier == "vgg-indiv-p2"
    # typed text that names no model goes back to the chosen one
    combo.lineEdit().setText("zzz")
    combo.lineEdit().editingFinished.emit()
    assert combo.lineEdit().text() == "vgg-indiv-p2" and combo.currentData() == "vgg-indiv-p2"
    completer.activated.emit("built-in")  # a header is no model
    assert combo.currentData() == "vgg-indiv-p2"

    # a model deleted elsewhere: the pickers refill, groups follow
    (registry.user_dir / "vgg-group.json").unlink()
    (registry.user_dir / "vgg-group.safetensors").unlink()
    w.session.modelsChanged.emit()
    texts = [combo.itemText(i) for i in range(combo.count())]
    assert "vgg-group" not in texts and not any(t.startswith("GroupNets") for t in texts)
