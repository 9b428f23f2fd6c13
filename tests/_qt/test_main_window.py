"""Main window: first start on the demo project, start without one, settings restored, drops, About."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _wait_analysis(qtbot, w) -> None:
    qtbot.waitUntil(lambda: w.session.analysis is not None, timeout=60_000)


def test_first_start_opens_a_copy_of_the_demo_and_every_panel_shows_it(make_window, demo_project, tmp_path, qtbot):
    before = _digest(demo_project)
    w = make_window(demo_dir=demo_project)
    _wait_analysis(qtbot, w)
    copy = tmp_path / "data" / "demo"
    assert w.session.library.path == copy / "library"
    assert _digest(demo_project) == before  # the shipped folder is never written to
    n = len(w.session.library)
    assert n > 0 and w.curate.proxy.rowCount() == n
    assert w.data.trials_model.rowCount() == len(w.session.trials.df) > 0
    assert w.session.trials.synthetic and "SYNTHETIC" in w.analysis.banner.text()
    assert w.analysis.entropy.counts.sum() > 0
    assert w.data.participants_model.rowCount() == 16
    qtbot.waitUntil(lambda: "test digits" in w.mnist_label.text())
    assert "library" in w.library_label.text() and "CPU" in w.device_label.text()
    assert w.recent_libraries() == [str(copy / "library")]
    assert w.recent_trials() == [str(copy / "trials.csv")]


def test_start_without_demo_says_so_and_settings_survive_a_restart(make_window, tmp_path, settings, qtbot, dialogs):
    w = make_window(demo_dir=tmp_path / "no-demo-here")
    assert "No demo project found" in w.statusBar().currentMessage()
    assert w.session.library is None and w.tabs.count() == 5
    assert w.curate.count.text().startswith("No library open")
    lib = tmp_path / "mylib"
    assert w.open_library(lib, create=True)
    w.tabs.setCurrentIndex(2)
    w.explore.form.matrix.set_pairs([(3, 5), (1, 7)])
    w.explore.form.steps.setValue(7)
    w.close()
    w2 = make_window(demo_dir=tmp_path / "no-demo-here")
    assert w2.tabs.currentIndex() == 2
    assert w2.session.library is not None and w2.session.library.path == lib
    s = w2.explore.form.settings()
    assert s.pairs == [(1, 7), (3, 5)] and s.steps == 7 and s.preset is None
    assert not dialogs.calls


def test_drop_library_folder_trial_file_and_junk(make_window, demo_project, tmp_path, qtbot, dialogs):
    w = make_window()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(demo_project / "library"))])
    ev = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    w.dropEvent(ev)
    assert w.session.library is not None and w.session.library.path == demo_project / "library"
    w.session.close_library()
    w.open_paths([demo_project / "trials.csv"])
    qtbot.waitUntil(lambda: w.session.trials is not None, timeout=30_000)
    assert w.tabs.currentWidget() is w.data
    junk = tmp_path / "notes.docx"
    junk.write_text("x")
    w.open_paths([junk])
    assert "neither a library folder nor a trial file" in dialogs.texts()


def test_about_shows_versions_and_model_card(make_window, qtbot):
    w = make_window()
    dlg = w.about()
    qtbot.addWidget(dlg)
    assert dlg.tabs.count() == 2
    assert dlg.card.toPlainText().strip()
    dlg.close()


@pytest.mark.parametrize("bad", ["missing-folder", "not-a-library"])
def test_opening_a_bad_library_is_a_plain_message(make_window, tmp_path, dialogs, bad):
    w = make_window()
    path = tmp_path / bad
    if bad == "not-a-library":
        path.mkdir()
        (path / "x.txt").write_text("x")
    assert not w.open_library(path)
    assert dialogs.calls and dialogs.calls[-1][0] == "warning"
    assert str(path) in dialogs.calls[-1][2]


def test_demo_project_command_and_screenshots(demo_project, registry, tmp_path, qtbot):
    import json

    import pandas as pd

    from perceptlab._qt.screenshots import take_screenshots
    from perceptlab.cli import build_parser

    info = json.loads((demo_project / "demo.json").read_text())
    assert info["synthetic"] and info["stimuli"] == 16 and info["pairs"][0] == [4, 9]
    trials = pd.read_csv(demo_project / "trials.csv")
    assert trials["synthetic"].all() and len(trials) == 16 * 12
    assert (demo_project / "trials_truth.csv").is_file()
    args = build_parser().parse_args(["demo-project", "--out", str(tmp_path / "d"), "--per-pair", "3"])
    assert args.per_pair == 3 and args.func.__module__ == "perceptlab.cli.demo_project"

    paths = take_screenshots(demo_project, tmp_path / "shots", registry=registry, per_pair=4, batch_size=4,
                             size=(1200, 800), device="cpu")
    names = {p.stem for p in paths}
    assert {"explore", "curate", "data", "analysis-entropy", "analysis-agreement", "align-gain", "align-entropy",
            "align-manipulate"} <= names
    # the Align screenshots show a real run: a GroupNet and three IndivNets were fine-tuned
    assert len(list(registry.user_dir.glob("*-indiv-*.json"))) == 3 and (registry.user_dir / "vgg-group.json").exists()
    from PySide6.QtGui import QImage

    img = QImage(str(tmp_path / "shots" / "explore.png"))
    assert img.width() >= 1200 and img.height() >= 800
