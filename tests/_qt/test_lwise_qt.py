"""L-WISE in the app: Curate's Difficulty and Enhance actions, the difficulty sort key and detail line,
and Analysis › L-WISE (difficulty vs error, learning curves, figure export)."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest


@pytest.fixture()
def lwise_registry(tmp_path):
    from tests.test_lwise_engine import tiny_lwise_registry

    return tiny_lwise_registry(tmp_path)


@pytest.fixture()
def library_copy(demo_project, tmp_path):
    dest = tmp_path / "lib"
    shutil.copytree(demo_project / "library", dest)
    return dest


def test_curate_difficulty_and_enhance(make_window, lwise_registry, library_copy, qtbot):
    from perceptlab._qt.curate import lwise
    from perceptlab.data.difficulty import difficulty_of

    w = make_window(registry=lwise_registry)
    assert w.open_library(library_copy)
    cur = w.curate
    lib = w.session.library
    ids = lib.ids()[:3]
    job = lwise.compute_difficulty_job(cur, [])  # none selected: every stimulus
    qtbot.waitUntil(lambda: not job.is_running(), timeout=30_000)
    assert all(difficulty_of(lib.get(i)) is not None for i in lib.ids())
    cur.select_ids([ids[0]])
    cur.view.setCurrentIndex(cur.proxy.mapFromSource(cur.model.index(cur.model.row_of(ids[0]))))
    assert "difficulty (robust logit)" in cur.detail.title.text()
    cur.sort.setCurrentIndex(cur.sort.findData("difficulty"))
    shown = [cur.proxy.index(r, 0).data() for r in range(cur.proxy.rowCount())]
    values = [difficulty_of(lib.get(i)) for i in shown]
    assert values == sorted(values)
    n = len(lib)
    job = lwise.enhance_job(cur, ids, {"eps": 2.0, "norm": "l2", "steps": 3, "harder": False})
    qtbot.waitUntil(lambda: not job.is_running(), timeout=30_000)
    assert len(lib) == n + 3 and cur.model.rowCount() == n + 3
    new = lib.records(mode="enhanced")
    assert [r.settings["enhancement"]["source"] for r in new] == ids
    cur.view.setCurrentIndex(cur.proxy.mapFromSource(cur.model.index(cur.model.row_of(new[0].id))))
    assert f"enhance of {ids[0]}" in cur.detail.title.text()
    assert "None" not in cur.detail.title.text()  # a single-class stimulus reads "class a", not "pair a-None"


def test_enhance_without_robust_model_says_how_to_train_it(make_window, library_copy, dialogs, monkeypatch):
    from perceptlab._qt.curate import lwise

    w = make_window()
    assert w.open_library(library_copy)
    assert lwise.enhance_job(w.curate, w.session.library.ids()[:1], {"eps": 1.0, "norm": "l2", "steps": 2,
                                                                      "harder": False}) is None
    assert "train classifiers --models robust" in dialogs.texts()
    opened = []  # the button says so before any settings dialog opens
    monkeypatch.setattr(lwise.EnhanceDialog, "exec", lambda self: opened.append(self) or 0)
    assert lwise.enhance_dialog(w.curate) is None and opened == []


def test_analysis_lwise_tab(make_window, lwise_registry, library_copy, tmp_path, qtbot):
    from perceptlab._qt.widgets.plot_export import export_plot
    from perceptlab.data.trials import load_trials
    from perceptlab.engine.lwise import compute_difficulty

    w = make_window(registry=lwise_registry)
    assert w.open_library(library_copy)
    lib = w.session.library
    compute_difficulty(lib, registry=lwise_registry)
    recs = lib.records()[:8]
    rows = [{"participant": f"p{p}", "stimulus": r.id, "response": str((r.class_a + (p + k) % 3) % 10),
             "true_label": str(r.class_a)} for p in range(4) for k, r in enumerate(recs)]
    pd.DataFrame(rows).to_csv(tmp_path / "t.csv", index=False)
    w.session.set_trials(load_trials(tmp_path / "t.csv"), tmp_path / "t.csv")
    page = w.analysis.lwise
    assert w.analysis.tabs.indexOf(page) >= 0
    summary = page.compute_difficulty()
    assert summary["stimuli"] == 8 and "Spearman" in page.difficulty_note.text()
    assert len(page.difficulty.keys) == 8
    learn = pd.DataFrame({"participant": ["a", "a", "b", "b"], "block": [0, 1, 0, 1], "phase": ["train", "test"] * 2,
                          "correct": [True, True, False, True], "condition": ["curriculum"] * 2 + ["control"] * 2,
                          "synthetic": True})
    learn.to_csv(tmp_path / "learn.csv", index=False)
    s = page.load_learning([str(tmp_path / "learn.csv")])
    assert s["test"]["curriculum"]["accuracy"] == 1.0 and "SYNTHETIC" in page.learning_note.text()
    assert export_plot(page.learning.widget, tmp_path / "lc.png").stat().st_size > 0
    # without a condition column the file name decides, not the folder it lies in
    people = tmp_path / "control-study"
    people.mkdir()
    learn.drop(columns=["condition", "synthetic"]).to_csv(people / "curriculum.csv", index=False)
    learn.drop(columns=["condition", "synthetic"]).to_csv(people / "control.csv", index=False)
    s = page.load_learning([str(people / "curriculum.csv"), str(people / "control.csv")])
    assert set(s["test"]) == {"curriculum", "control"} and "SYNTHETIC" not in page.learning_note.text()
