"""Keyboard shortcuts as typed: every binding is unique (no 'Ambiguous shortcut'), Redo answers
Ctrl+Shift+Z and Ctrl+Y, and Ctrl+Z works right after tagging through the dialog."""

from __future__ import annotations

import shutil

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QApplication, QInputDialog


@pytest.fixture()
def window(make_window, demo_project, tmp_path, qtbot):
    dest = tmp_path / "lib"
    shutil.copytree(demo_project / "library", dest)
    w = make_window()
    assert w.open_library(dest)
    w.tabs.setCurrentWidget(w.curate)
    w.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is w, timeout=3000)
    return w


def test_no_key_sequence_is_bound_twice(window):
    seen: dict[str, str] = {}
    for act in window.findChildren(QAction):
        for seq in act.shortcuts():
            key = seq.toString()
            assert key not in seen, f"{key} bound to both {seen[key]!r} and {act.text()!r}"
            seen[key] = act.text()
    redo = [s.toString() for s in window.act_redo.shortcuts()]
    assert "Ctrl+Shift+Z" in redo and "Ctrl+Y" in redo
    assert window.act_undo.shortcut() == QKeySequence(QKeySequence.StandardKey.Undo)


def test_typed_undo_redo_and_undo_right_after_tagging(window, qtbot, monkeypatch):
    cur = window.curate
    lib = window.session.library
    first = cur.view.currentIndex().data()
    cur.view.setFocus()
    qtbot.keyClick(cur.view, Qt.Key.Key_A)
    assert lib.get(first).status == "accepted"
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert lib.get(first).status == "new"
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Z,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert lib.get(first).status == "accepted"
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)
    assert lib.get(first).status == "accepted"

    # the tag dialog takes the focus with it (here: to the detail pane's note field, as a closing dialog
    # may leave it anywhere); after tagging the keyboard is the gallery's again
    sid = cur.view.currentIndex().data()

    def get_text(*_a, **_k):
        cur.detail.note.setFocus()
        return "odd", True

    monkeypatch.setattr(QInputDialog, "getText", staticmethod(get_text))
    qtbot.keyClick(cur.view, Qt.Key.Key_T)
    assert lib.get(sid).tags == ["odd"]
    assert QApplication.focusWidget() is cur.view
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert lib.get(sid).tags == []


def test_help_menu_has_the_guide_and_a_shortcut_sheet_from_the_actions(window, qtbot):
    from perceptlab._qt.help import guide_path

    assert guide_path().is_file()
    texts = [a.text() for a in window.menuBar().actions()[-1].menu().actions()]
    assert "User &guide" in texts and "&Keyboard shortcuts" in texts
    guide = window.show_guide()
    qtbot.addWidget(guide)
    text = guide.browser.toPlainText()
    for term in ("Resampling R", "Judge weight", "Reference α", "silhouette", "bias", "failure", "100% > 0"):
        assert term in text, term
    sheet = window.show_shortcuts()
    qtbot.addWidget(sheet)
    text = sheet.browser.toPlainText()
    assert "Ctrl+Shift+Z" in text and "Ctrl+Y" in text and "Undo" in text and "accept the selected" in text
