"""Align panel: a fine-tuning run fills the table and plots, cancel leaves no half-written model, the
fine-tuned models can be renamed and deleted (every picker follows), and Manipulate runs in Explore
with tagged stimuli that can be scored."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QInputDialog, QMessageBox

from perceptlab.data.images import write_png
from perceptlab.data.trials import load_trials
from tests.align.conftest import fake_mnist, make_stimuli, make_trials


@pytest.fixture()
def one_thread():
    import torch

    torch.set_num_threads(1)  # tiny models on a shared CPU (the Qt conftest restores the count)


@pytest.fixture()
def trials_env(tmp_path):
    """90 synthetic stimuli as PNGs and 4 participants' answers to all of them."""
    keys, images, dominant = make_stimuli(n=90, seed=4)
    folder = tmp_path / "images"
    folder.mkdir()
    for k, img in zip(keys, images):
        write_png(folder / k, img)
    csv = tmp_path / "trials.csv"
    make_trials(keys, dominant, participants=4, seed=5).to_csv(csv, index=False)
    return {"csv": csv, "images": folder}


def _window(make_window, qtbot, trials_env=None):
    w = make_window()
    qtbot.waitUntil(lambda: w.session.mnist is not None, timeout=10_000)
    w.session.mnist = fake_mnist()  # synthetic 'digits' with a hold-out
    if trials_env is not None:
        w.session.set_trials(load_trials(trials_env["csv"]), trials_env["csv"])
        w.align.set_images_folder(trials_env["images"])
    w.tabs.setCurrentWidget(w.align)
    return w


def _user_model(registry, name: str, level: str, participants=(), seed: int = 0) -> None:
    import torch

    from perceptlab.engine.classifiers import build
    from perceptlab.engine.weights import save_weights

    torch.manual_seed(seed)
    cfg = {"name": name, "kind": "classifier", "arch": "logreg", "arch_config": {}, "level": level,
           "base": "vgg", "participants": list(participants), "created": f"2025-01-0{seed + 1}T00:00:00+00:00"}
    save_weights(build("logreg").state_dict(), registry.user_dir / f"{name}.safetensors", cfg)


def _combo_items(combo) -> list:
    return [combo.itemData(i) for i in range(combo.count())]


def test_run_fills_the_accuracy_table_and_plots(make_window, qtbot, trials_env, tmp_path, dialogs, one_thread,
                                               monkeypatch):
    from perceptlab._qt.widgets.plot_export import export_plot

    w = _window(make_window, qtbot, trials_env)
    a = w.align
    assert a.people.count() == 4 and a.people.isEnabled() and "4 participants" in a.people_label.text()
    assert _combo_items(a.base) == ["cornet", "mlp", "vgg", "vit"] and a.base.currentData() == "vgg"
    a.level.setCurrentIndex(a.level.findData("both"))
    a.set_checked_participants(["P1", "P2"])
    a.epochs.setValue(2)
    a.batch_size.setValue(32)
    a.trainable.setCurrentIndex(a.trainable.findData("all"))
    a.people.setFocus()
    qtbot.keyClick(a.people, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)  # Ctrl+Return runs
    assert a.is_running() and not a.run_button.isEnabled() and a.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: not a.is_running(), timeout=60_000)
    assert not dialogs.calls, dialogs.texts()
    assert a.progress.format() == "done" and a.progress.value() == 1000 and "3 model(s)" in a.progress_text.text()

    m = a.metrics
    ev = m["evaluation"]
    assert set(m["models"]) == {"vgg-group", "vgg-indiv-P1", "vgg-indiv-P2"}
    assert m["job"]["participants"] == ["P1", "P2"] and m["job"]["recipe"]["epochs"] == 2
    # the accuracy table shows the evaluation's numbers
    t = a.accuracy_model.frame()
    assert list(t.columns) == ["accuracy on", "Base", "Group", "Indiv"] and len(t) == 3
    assert t.loc[0, "Base"] == f"{100 * ev['mnist_heldout_accuracy']['base']:.1f}%"
    assert t.loc[1, "Group"] == f"{100 * ev['trials_accuracy']['group']['accuracy']:.1f}%"
    own = np.mean([r["indiv"] for r in ev["participants"]])
    assert t.loc[2, "Indiv"] == f"{100 * own:.1f}%"
    assert "IndivNet beats GroupNet" in a.summary.text() and "Spearman" in a.summary.text()
    # gain per participant: IndivNet - GroupNet on own test trials, in points
    want = {r["participant"]: 100 * (r["indiv"] - r["group"]) for r in ev["participants"]}
    heights = a.gain_view.bars.opts["height"]
    assert len(heights) == 2
    assert dict(zip(a.gain_view.frame["participant"], heights)) == pytest.approx(want)
    # entropy before (base) and after (group), one point per test stimulus, rho in the legend and title
    n = ev["entropy_spearman"]["n_stimuli"]
    assert n > 3 and a.entropy_view.n_points == {"base": n, "group": n}
    assert len(a.entropy_view.after.data) == n and "ρ" in a.entropy_view.title()
    assert "before" in a.entropy_view.title() and "after" in a.entropy_view.title()
    # gain by entropy bin
    assert [b["bin"] for b in a.bin_view.bins] == [b["bin"] for b in ev["gain_by_entropy"]["bins"]]
    for name, view in a.views.items():
        out = export_plot(view.widget, tmp_path / f"{name}.png")
        assert out.stat().st_size > 500
    # the new models are everywhere: model list, base picker, Explore's pickers, Manipulate
    names = set(a.models_model.frame()["name"])
    assert names == {"vgg-group", "vgg-indiv-P1", "vgg-indiv-P2"}
    assert "vgg-group" in _combo_items(a.base)
    assert {"vgg-indiv-P1", "vgg-indiv-P2"} <= set(_combo_items(w.explore.form.classifier2))
    assert _combo_items(a.manipulate.p1) == ["P1", "P2"]
    # results round-trip through metrics.json
    saved = a.save_results(tmp_path / "metrics.json")
    a.show_results(None)
    assert len(a.accuracy_model.frame()) == 0 and a.gain_view.bars.opts["height"] == []
    assert a.open_results(saved) and a.accuracy_model.frame().loc[1, "Group"] == t.loc[1, "Group"]
    # a second run of the same models asks before replacing them; No starts nothing
    dialogs_no = []
    monkeypatch.setattr(QMessageBox, "question",
                        staticmethod(lambda *args, **k: dialogs_no.append(args[2]) or QMessageBox.StandardButton.No))
    assert not a.run() and "vgg-group" in dialogs_no[0] and not a.is_running()


def test_cancel_mid_run_leaves_no_half_written_model(make_window, qtbot, trials_env, dialogs, one_thread):
    w = _window(make_window, qtbot, trials_env)
    a = w.align
    a.level.setCurrentIndex(a.level.findData("group"))
    a.epochs.setValue(1000)
    a.batch_size.setValue(16)
    assert a.run()
    qtbot.waitUntil(lambda: a._epoch is not None and a._epoch["epoch"] >= 1, timeout=30_000)
    a._apply_latest()  # what the progress timer draws
    text = a.progress_text.text()
    assert text.startswith("GroupNet vgg-group — model 1 of 1, epoch ") and "/1000: validation accuracy" in text
    assert a.progress.format() == "model 1 of 1 — %p%" and 0 <= a.progress.value() < 100
    a.people.setFocus()
    qtbot.keyClick(a.people, Qt.Key.Key_Escape)  # Esc cancels
    assert a.progress.format() == "cancelling…" and not a.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: not a.is_running(), timeout=30_000)
    assert a.progress.format() == "cancelled" and a.metrics is None
    user = w.session.registry.user_dir
    assert not user.exists() or list(user.iterdir()) == []
    assert a.models_model.rowCount() == 0 and a.run_button.isEnabled()
    assert not dialogs.calls, dialogs.texts()


def test_without_trials_the_participants_say_where_to_load_them(make_window, qtbot):
    w = _window(make_window, qtbot)
    a = w.align
    assert not a.people.isEnabled() and a.people.count() == 0 and "Data" in a.people_label.text()
    assert not a.run_button.isEnabled() and "No images" in a.images_label.text()
    assert "No participant has an IndivNet" in a.manipulate.status.text()
    assert not a.manipulate.watch_button.isEnabled()


def test_trials_without_images_fail_with_a_plain_message(make_window, qtbot, trials_env, tmp_path, dialogs):
    w = _window(make_window, qtbot, trials_env)
    a = w.align
    (tmp_path / "empty").mkdir()
    a.set_images_folder(tmp_path / "empty")
    assert a.run()
    qtbot.waitUntil(lambda: not a.is_running(), timeout=30_000)
    assert a.progress.format() == "failed" and dialogs.calls[-1][0] == "warning"
    assert "have no image" in dialogs.texts() and "leave out trials whose stimulus has no image" in dialogs.texts()
    assert a.metrics is None and list(w.session.registry.user_dir.glob("*")) == []


def test_rename_and_delete_fine_tuned_models(make_window, qtbot, registry, dialogs, monkeypatch):
    _user_model(registry, "vgg-group", "group")
    w = _window(make_window, qtbot)
    a = w.align
    assert list(a.models_model.frame()["name"]) == ["vgg-group"]
    assert "vgg-group" in _combo_items(a.base) and "vgg-group" in _combo_items(w.explore.form.classifier)
    assert a.base.currentData() == "vgg"
    a.level.setCurrentIndex(a.level.findData("individual"))  # IndivNets start from a GroupNet
    assert a.base.currentData() == "vgg-group" and not a.trainable.isEnabled()
    assert not a.rename_button.isEnabled()
    assert a.select_model("vgg-group") and a.rename_button.isEnabled()
    # a clash with a built-in name is refused with a dialog, nothing changes
    monkeypatch.setattr(QInputDialog, "getText", staticmethod(lambda *args, **k: ("vgg", True)))
    assert a.rename_selected() is None and "built-in" in dialogs.texts()
    monkeypatch.setattr(QInputDialog, "getText", staticmethod(lambda *args, **k: ("my-groupnet", True)))
    assert a.rename_selected() == "my-groupnet"
    user = registry.user_dir
    assert sorted(p.name for p in user.iterdir()) == ["my-groupnet.json", "my-groupnet.safetensors"]
    assert registry.config("my-groupnet")["name"] == "my-groupnet"
    for combo in (a.base, w.explore.form.classifier, w.explore.form.classifier2):
        items = _combo_items(combo)
        assert "my-groupnet" in items and "vgg-group" not in items
    assert a.selected_model() == "my-groupnet"
    # delete asks first: No keeps the model, Yes removes it everywhere
    monkeypatch.setattr(QMessageBox, "question", staticmethod(lambda *args, **k: QMessageBox.StandardButton.No))
    assert not a.delete_selected() and (user / "my-groupnet.json").exists()
    monkeypatch.setattr(QMessageBox, "question", staticmethod(lambda *args, **k: QMessageBox.StandardButton.Yes))
    assert a.delete_selected()
    assert list(user.iterdir()) == [] and "my-groupnet" not in registry.names()
    assert a.models_model.rowCount() == 0 and "my-groupnet" not in _combo_items(w.explore.form.classifier)


def test_manipulate_runs_in_explore_with_tagged_stimuli_and_scores_them(make_window, qtbot, registry, tmp_path,
                                                                         dialogs, one_thread):
    from perceptlab._qt.align.runner import run_seed
    from perceptlab.align.manipulate import manipulation_stimuli, tags_for

    _user_model(registry, "vgg-indiv-P1", "individual", ["P1"], seed=0)
    _user_model(registry, "vgg-indiv-P2", "individual", ["P2"], seed=1)
    w = _window(make_window, qtbot)
    assert w.open_library(tmp_path / "lib", create=True)
    m = w.align.manipulate
    w.align.tabs.setCurrentWidget(m)
    assert _combo_items(m.p1) == ["P1", "P2"] and m.model2.text() == "IndivNet: vgg-indiv-P2"
    m.set_participants("P1", "P2")
    m.matrix.set_pairs([(7, 1)])
    m.per_pair.setValue(2)
    m.run_tag.setText("t1")
    ex = w.explore
    ex.form.apply_preset("draft")
    ex.form.steps.setValue(2)
    ex.form.batch_size.setValue(2)
    qtbot.mouseClick(m.watch_button, Qt.MouseButton.LeftButton)
    assert not dialogs.calls, dialogs.texts()
    assert w.tabs.currentWidget() is ex and ex.is_running()
    s = ex.controller.settings
    assert s.mode == "controversial" and s.classifier == "vgg-indiv-P1" and s.classifier2 == "vgg-indiv-P2"
    assert s.pairs == [(7, 1)] and s.seed == run_seed("t1") and ex.form.per_pair.value() == 2
    assert ex.run_note.isVisibleTo(ex) and "run:t1" in ex.run_note.text()
    qtbot.waitUntil(lambda: not ex.is_running(), timeout=30_000)
    assert len(ex.controller.tiles) == 2
    ex.view.selectAll()
    ids = ex.add_to_library(selected=True)
    assert len(ids) == 2
    lib = w.session.library
    for sid in ids:
        assert set(tags_for("P1", "P2", "indiv", "t1")) <= set(lib.get(sid).tags)
    made = manipulation_stimuli(lib, "P1", "P2", "t1")
    assert sorted(made["stimulus_id"]) == sorted(ids) and set(made["arm"]) == {"indiv"}
    assert (made["class_a"] == 7).all() and (made["class_b"] == 1).all()

    # the two answer: P1 says 7 (a) on both, P2 says 1 (b) on the first and 7 on the second
    rows = [("P1", f"library/images/{ids[0]}.png", 7), ("P1", f"library/images/{ids[1]}.png", 7),
            ("P2", f"library/images/{ids[0]}.png", 1), ("P2", f"library/images/{ids[1]}.png", 7)]
    csv = tmp_path / "responses.csv"
    pd.DataFrame(rows, columns=["participant", "stimulus", "response"]).to_csv(csv, index=False)
    w.session.set_trials(load_trials(csv), csv)
    assert m.score_button.isEnabled()
    scores = m.score()
    assert scores is not None and not dialogs.calls, dialogs.texts()
    arm = scores["arms"]["indiv"]
    assert arm["n"] == 2 and arm["success_rate"] == pytest.approx(0.5) and arm["directional_ratio"] == 1.0
    table = m.scores_model.frame()
    assert list(table["arm"]) == ["indiv"] and table.loc[0, "success"] == pytest.approx(0.5)
