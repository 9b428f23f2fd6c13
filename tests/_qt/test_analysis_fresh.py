"""No stale results: after the demo, a failing file and then a good one (named classes, every row
labelled), every Analysis plot's title and n describe the new data — or say 'not computed'."""

from __future__ import annotations

import re


from tests.conftest import CIFAR10_NAMES, cifar10s_like

NAMES = CIFAR10_NAMES


def _cifar_like(path, n_sub=24, n_img=60, per=30, seed=3):
    return cifar10s_like(path, n_sub, n_img, per, seed, p_correct=0.75, rt_ms=(400, 1500), subject="sub{:03d}",
                         stimulus="cifar10s/img_{:04d}.png")  # fmt: skip


def _titles(an) -> dict[str, str]:
    return {key: view.title() for key, view in an.views.items()}


def test_failed_then_good_file_replaces_every_plot(make_window, demo_project, qtbot, tmp_path, dialogs):
    w = make_window(demo_dir=demo_project)
    qtbot.waitUntil(lambda: w.session.analysis is not None, timeout=60_000)
    an = w.analysis
    demo = _titles(an)
    assert "[SYNTHETIC]" in demo["entropy"] and "[SYNTHETIC]" in demo["outcomes"]

    bad = tmp_path / "broken.csv"
    bad.write_text("participant,stimulus,response\np1,a.png,\np2,b.png,\n")  # every response missing
    job = w.data.load(bad)
    qtbot.waitUntil(lambda: not job.is_running(), timeout=30_000)
    qtbot.waitUntil(lambda: w.session.trials is None, timeout=10_000)
    after_bad = _titles(an)
    for key, title in after_bad.items():
        assert "not computed" in title and "broken.csv" in title, (key, title)
        assert "SYNTHETIC" not in title, (key, title)
    assert "2 × missing response" in dialogs.texts()
    for note in an.notes.values():
        assert "not computed" in note.text()

    good = tmp_path / "cifar10s.csv"
    frame = _cifar_like(good)
    job = w.data.load(good)
    qtbot.waitUntil(lambda: w.session.analysis is not None and w.session.trials is not None
                    and w.session.trials.report.source == str(good), timeout=60_000)
    a = w.session.analysis
    assert a.table.classes == tuple(NAMES)
    titles = _titles(an)
    assert all("SYNTHETIC" not in t for t in titles.values()), titles
    n_stimuli = frame["stimulus"].nunique()
    assert f"n = {n_stimuli}," in titles["entropy"]
    assert an.entropy.counts.sum() == n_stimuli
    assert "not computed" in titles["outcomes"] and an.outcomes.image.image is None
    assert re.search(rf"n = {n_stimuli}\)", titles["rt_entropy"]) and len(an.rt.keys) == n_stimuli
    assert f"n = {frame['subject_id'].nunique()} participants" in titles["agreement"]
    assert an.agreement.image.image.shape[:2] == (24, 24)
    assert "not computed" in titles["model_human"] and "ten digits" in titles["model_human"]
    assert an.model.count() == 0
    assert str(good) in an.notes["entropy"].text()
    banner = an.banner.text()
    assert f"{len(frame)} trials" in banner and "24 participants" in banner
    # the participants heatmap fits the participants: 0..N, not a leftover range
    (x0, x1), (y0, y1) = an.agreement.plot.vb.viewRange()
    assert -2 < x0 <= 0.5 and 23.5 <= x1 < 26


def test_outcome_heatmap_labels_every_cell(make_window, demo_project, qtbot):
    w = make_window(demo_dir=demo_project)
    qtbot.waitUntil(lambda: w.session.analysis is not None, timeout=60_000)
    oc = w.session.analysis.outcomes
    c = len(oc.classes)
    labels = w.analysis.outcomes.labels
    assert len(labels) == c * (c - 1)
    assert sorted(int(t.textItem.toPlainText()) for t in labels) == sorted(
        int(oc.pair_counts[i, j]) for i in range(c) for j in range(c) if i != j)


def test_a_folder_of_per_participant_files_loads_in_the_data_panel(make_window, qtbot, tmp_path):
    folder = tmp_path / "jspsych"
    folder.mkdir()
    for who in ("ann", "ben", "cat"):
        (folder / f"{who}.csv").write_text(
            '"trial_type","stimulus","response","rt"\n"html-keyboard-response","<p>Press 1 to start</p>","1","900"\n'
            + "".join(f'"image-button-response","img/s{i}.png","{i % 3}","{500 + i}"\n' for i in range(5)))
    w = make_window()
    w.data.classes_edit.setText("deer,cat,dog")
    job = w.data.load(folder)
    qtbot.waitUntil(lambda: not job.is_running(), timeout=30_000)
    t = w.session.trials
    assert t is not None and t.classes == ("deer", "cat", "dog")
    assert sorted(t.df["participant"].unique()) == ["ann", "ben", "cat"]
    assert t.report.rows_used == 15 and t.report.rejected_by_kind() == {"not a response trial": 3}
    assert "response_class" in w.data.trials_model.frame().columns
    assert set(w.data.trials_model.frame()["response_class"]) == {"deer", "cat", "dog"}
