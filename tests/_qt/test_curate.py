"""Curate: keys, multi-select, undo/redo, decisions surviving a restart, filters, sorting, export."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from PySide6.QtCore import QItemSelectionModel, Qt
from PySide6.QtCore import QSettings

from perceptlab._qt.curate.export_dialog import ExportDialog, ExportRequest


@pytest.fixture()
def library_copy(demo_project, tmp_path):
    dest = tmp_path / "lib"
    shutil.copytree(demo_project / "library", dest)
    return dest


def _ids(curate):
    return [curate.proxy.index(r, 0).data() for r in range(curate.proxy.rowCount())]


def test_keys_undo_redo_and_a_fresh_window_sees_every_decision(make_window, library_copy, qtbot, tmp_path):
    w = make_window()
    assert w.open_library(library_copy)
    cur = w.curate
    view = cur.view
    ids = _ids(cur)
    assert len(ids) >= 6 and view.currentIndex().data() == ids[0]
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_A)
    assert view.currentIndex().data() == ids[1]  # moved on to the next stimulus
    qtbot.keyClick(view, Qt.Key.Key_R)
    qtbot.keyClick(view, Qt.Key.Key_Right)
    assert view.currentIndex().data() == ids[3]
    sel = view.selectionModel()
    sel.clearSelection()
    for r in (3, 4, 5):
        sel.select(cur.proxy.index(r, 0), QItemSelectionModel.SelectionFlag.Select)
    qtbot.keyClick(view, Qt.Key.Key_T)  # QInputDialog answers "keep" (conftest)
    lib = w.session.library
    assert lib.get(ids[0]).status == "accepted" and lib.get(ids[1]).status == "rejected"
    assert all(lib.get(i).tags == ["keep"] for i in ids[3:6])
    assert "1 accepted, 1 rejected" in cur.count.text()

    w.act_undo.trigger()  # the tag
    assert all(lib.get(i).tags == [] for i in ids[3:6])
    w.act_undo.trigger()  # the rejection
    assert lib.get(ids[1]).status == "new"
    w.act_redo.trigger()
    w.act_redo.trigger()
    assert lib.get(ids[1]).status == "rejected" and lib.get(ids[4]).tags == ["keep"]
    assert cur.undo_stack.count() == 3
    # a note, edited in the detail pane, is undoable too
    cur.select_ids([ids[2]])
    cur.view.setCurrentIndex(cur.proxy.index(2, 0))
    cur.detail.note.setText("blurry")
    cur.detail.note.editingFinished.emit()
    assert lib.get(ids[2]).note == "blurry"
    w.act_undo.trigger()
    assert lib.get(ids[2]).note == ""
    w.act_redo.trigger()
    w.close()

    w2 = make_window(settings_=QSettings(str(tmp_path / "other.ini"), QSettings.Format.IniFormat))
    assert w2.open_library(library_copy)
    lib2 = w2.session.library
    assert lib2.get(ids[0]).status == "accepted" and lib2.get(ids[1]).status == "rejected"
    assert [lib2.get(i).tags for i in ids[3:6]] == [["keep"]] * 3 and lib2.get(ids[2]).note == "blurry"
    manifest = pd.read_csv(library_copy / "manifest.csv")
    assert manifest.set_index("stimulus_id").loc[ids[0], "status"] == "accepted"
    w2.curate.status.setCurrentIndex(w2.curate.status.findData("accepted"))
    assert _ids(w2.curate) == [ids[0]]


def test_filters_sorting_detail_and_entropy(make_window, demo_project, qtbot):
    w = make_window(demo_dir=demo_project)
    qtbot.waitUntil(lambda: w.session.analysis is not None, timeout=60_000)
    cur = w.curate
    lib = w.session.library
    n = len(lib)
    cur.pair.setCurrentIndex(cur.pair.findData("4-9"))
    assert 0 < cur.proxy.rowCount() < n
    assert all({r.class_a, r.class_b} == {4, 9} for r in (lib.get(i) for i in _ids(cur)))
    cur.pair.setCurrentIndex(0)
    cur.sort.setCurrentIndex(cur.sort.findData("judge"))
    cur.descending.setChecked(True)
    judges = [lib.get(i).judge for i in _ids(cur)]
    assert judges == sorted(judges, reverse=True)
    cur.min_judge.setValue(judges[len(judges) // 2])
    assert cur.proxy.rowCount() <= len(judges) // 2 + 1
    cur.min_judge.setValue(0.0)
    entropy = w.session.entropy_by_library_id()
    assert len(entropy) == n and cur.model.entropy == entropy
    cur.sort.setCurrentIndex(cur.sort.findData("entropy"))
    ents = [entropy[i] for i in _ids(cur)]
    assert ents == sorted(ents, reverse=True)
    cur.min_entropy.setValue(1.0)
    assert all(entropy[i] >= 1.0 for i in _ids(cur))
    cur.min_entropy.setValue(0.0)
    cur.view.setCurrentIndex(cur.proxy.index(0, 0))
    d = cur.detail
    rows = [d.probs.horizontalHeaderItem(c).text() for c in range(d.probs.columnCount())]
    assert rows[:3] == ["cornet", "mlp", "vgg"] and rows[-1].startswith("humans\nn=")
    assert _ids(cur)[0] in d.title.text() and '"sampler"' in d.provenance.toPlainText()


def test_export_csv_and_jspsych(make_window, library_copy, tmp_path, qtbot, dialogs):
    w = make_window()
    assert w.open_library(library_copy)
    cur = w.curate
    first = _ids(cur)[:2]
    cur.select_ids(first)
    cur.curate_key("accept")
    dlg = ExportDialog(w.session.library, cur, tmp_path)
    qtbot.addWidget(dlg)
    req = dlg.request()
    assert req.fmt == "csv" and req.status == "accepted" and req.folder == tmp_path / "lib-csv"
    job = cur.export(req)
    qtbot.waitUntil(lambda: not job.is_running(), timeout=20_000)
    exported = pd.read_csv(tmp_path / "lib-csv" / "stimuli.csv")
    assert sorted(exported["stimulus_id"]) == sorted(first)
    assert (tmp_path / "lib-csv" / "images" / f"{first[0]}.png").is_file()
    job = cur.export(ExportRequest("jspsych", tmp_path / "js", None, 250, 150))
    qtbot.waitUntil(lambda: not job.is_running(), timeout=20_000)
    assert (tmp_path / "js" / "index.html").is_file() and "150" in (tmp_path / "js" / "timeline.js").read_text()
    job = cur.export(ExportRequest("csv", library_copy / "inside", None))  # refused by the engine
    qtbot.waitUntil(lambda: not job.is_running(), timeout=20_000)
    assert "inside the library" in dialogs.texts()
