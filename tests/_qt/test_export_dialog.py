"""The export dialog never overwrites silently: per-format default folders, a question before writing
into a folder that holds files (replace / fresh folder / back), and what jspsych/ needs."""

from __future__ import annotations

import shutil

import pytest

from perceptlab._qt.curate import export_dialog as ed


@pytest.fixture()
def lib_window(make_window, demo_project, tmp_path):
    dest = tmp_path / "lib"
    shutil.copytree(demo_project / "library", dest)
    w = make_window()
    assert w.open_library(dest)
    return w


def test_formats_default_to_different_folders_and_jspsych_says_what_it_needs(lib_window, tmp_path, qtbot):
    dlg = ed.ExportDialog(lib_window.session.library, lib_window, tmp_path / "out")
    qtbot.addWidget(dlg)
    assert dlg.request().folder == tmp_path / "out" / "lib-csv" and not dlg.note.isVisibleTo(dlg)
    dlg.fmt.setCurrentIndex(dlg.fmt.findData("jspsych"))
    assert dlg.request().folder == tmp_path / "out" / "lib-jspsych"
    assert dlg.note.isVisibleTo(dlg) and "jspsych/" in dlg.note.text() and "jspsych.js" in dlg.note.text()
    dlg.folder.setText(str(tmp_path / "mine"))  # a folder the user chose stays
    dlg.fmt.setCurrentIndex(dlg.fmt.findData("csv"))
    assert dlg.request().folder == tmp_path / "mine"


def test_a_second_export_into_the_same_folder_asks_first(lib_window, tmp_path, qtbot, monkeypatch):
    cur = lib_window.curate
    lib = lib_window.session.library
    target = tmp_path / "lib-csv"
    job = cur.export(ed.ExportRequest("csv", target, None))
    qtbot.waitUntil(lambda: not job.is_running(), timeout=20_000)
    before = (target / "stimuli.csv").read_text()
    assert ed.describe_target(target).startswith(f"{target} already holds a CSV export of ")

    answers, asked = iter(["cancel", "new", "replace"]), []

    def ask(_parent, text):
        asked.append(text)
        return next(answers)

    monkeypatch.setattr(ed, "ask_replace", ask)
    dlg = ed.ExportDialog(lib, cur, tmp_path)
    qtbot.addWidget(dlg)
    dlg.status.setCurrentIndex(dlg.status.findData(None))
    dlg.accept()  # cancel: the dialog stays open, nothing written
    assert len(asked) == 1 and dlg.result() == 0
    dlg.accept()  # new folder
    assert dlg.request().folder == tmp_path / "lib-csv-2" and dlg.result() == 1
    assert (target / "stimuli.csv").read_text() == before
    (tmp_path / "lib-csv-2").mkdir()
    (tmp_path / "lib-csv-2" / "x").write_text("taken")
    assert ed.fresh_folder(target) == tmp_path / "lib-csv-3"
    dlg2 = ed.ExportDialog(lib, cur, tmp_path)
    qtbot.addWidget(dlg2)
    dlg2.accept()  # replace: the folder stays as typed
    assert dlg2.request().folder == target and dlg2.result() == 1 and len(asked) == 3
    # an empty or absent folder: no question
    dlg3 = ed.ExportDialog(lib, cur, tmp_path / "fresh")
    qtbot.addWidget(dlg3)
    dlg3.accept()
    assert len(asked) == 3 and dlg3.result() == 1


def test_jspsych_fields_reach_the_export(lib_window, tmp_path, qtbot, monkeypatch):
    lib = lib_window.session.library
    dlg = ed.ExportDialog(lib, lib_window, tmp_path)
    qtbot.addWidget(dlg)
    assert not dlg.layout_choice.isEnabled() and not dlg.save_url.isEnabled()
    dlg.fmt.setCurrentIndex(dlg.fmt.findData("jspsych"))
    dlg.status.setCurrentIndex(dlg.status.findData(None))
    assert dlg.request().layout == "choice-screen" and dlg.request().save_hook == "none"
    dlg.catch_rate.setValue(0.2)  # a share of all trials: one catch trial per four stimuli
    n = len(lib.ids())
    assert dlg.catch_label.text() == f"{max(1, round(n / 4))} catch trials for {n} stimuli"
    dlg.layout_choice.setCurrentIndex(dlg.layout_choice.findData("buttons-with-image"))
    dlg.save_hook.setCurrentIndex(dlg.save_hook.findData("post"))
    assert dlg.save_url.isEnabled()
    warned = []
    monkeypatch.setattr(ed.QMessageBox, "warning", lambda *a: warned.append(a[2]))
    dlg.accept()  # no URL: the dialog says so and stays open
    assert warned and "save URL" in warned[0] and dlg.result() == 0
    dlg.save_url.setText("/save")
    dlg.download.setChecked(False)
    req = dlg.request()
    assert (req.layout, req.catch_rate, req.save_hook, req.save_url, req.download) == (
        "buttons-with-image", 0.2, "post", "/save", False)
    path = ed.run_export(lib, req)
    text = (path.parent / "timeline.js").read_text()
    assert '"layout": "buttons-with-image"' in text and '"save_url": "/save"' in text and '"download": false' in text
    assert len(list((path.parent / "catch").iterdir())) == max(1, round(n / 4))
    dlg.save_hook.setCurrentIndex(dlg.save_hook.findData("jatos"))
    assert dlg.request().save_url is None and not dlg.save_url.isEnabled()
