"""Run > Cluster jobs…: a generation job from Explore's settings on local Dask workers lands in the
open library while the window stays responsive; cancel; a bad configuration is refused in plain words."""

from __future__ import annotations

import pytest

pytest.importorskip("distributed")

from tests._qt.test_explore import GapMeter  # noqa: E402


@pytest.fixture(autouse=True)
def _fork_workers():
    import dask

    with dask.config.set({"distributed.worker.multiprocessing-method": "fork"}):
        yield


def _explore(w, per_pair=3, batch=2):
    ex = w.explore
    ex.form.matrix.set_pairs([(3, 5), (4, 9)])
    ex.form.apply_preset("draft")
    ex.form.steps.setValue(2)
    ex.form.per_pair.setValue(per_pair)
    ex.form.batch_size.setValue(batch)
    ex.form.seed.setValue(3)


def _open_dialog(w):
    w.act_cluster_jobs.trigger()
    return w.cluster_jobs


def test_generate_on_two_local_workers_lands_in_the_open_library(make_window, qtbot, tmp_path):
    w = make_window()
    assert w.open_library(tmp_path / "lib", create=True)
    _explore(w)
    dlg = _open_dialog(w)
    assert dlg.isVisible() and dlg.kind.currentData() == "generate"
    dlg.workers.setValue(2)
    added = []
    w.session.stimuliAdded.connect(added.extend)
    qtbot.waitUntil(lambda: not dlg.preload.is_running(), timeout=30_000)  # Dask loaded when the dialog opened
    meter = GapMeter()
    meter.start()
    with qtbot.waitSignal(dlg.jobFinished, timeout=60_000) as blocker:
        assert dlg.submit()
        assert not dlg.submit_button.isEnabled() and dlg.cancel_button.isEnabled()
    max_gap = meter.stop()
    assert blocker.args == ["done"]
    assert max_gap < 0.25  # the cluster starts and the job runs off the GUI thread
    assert len(w.session.library) == 6 and sorted(added) == w.session.library.ids()
    assert sorted(r.seed for r in w.session.library.records()) == list(range(3, 9))
    assert "tasks done 3/3" in dlg.status.text() or dlg.status.text().startswith("Done: 6 images")
    log = dlg.log.toPlainText()
    assert "cluster: Dask local cluster" in log and "Done: 6 images" in log
    qtbot.waitUntil(dlg.submit_button.isEnabled, timeout=10_000)  # once the worker thread has ended
    assert w.settings.value("cluster/mode") == "local" and int(w.settings.value("cluster/workers")) == 2


def test_cancel_stops_the_job_and_keeps_what_was_committed(make_window, qtbot, tmp_path):
    w = make_window()
    assert w.open_library(tmp_path / "lib", create=True)
    _explore(w, per_pair=60, batch=1)  # 120 one-image tasks: far more than run before Cancel lands
    dlg = _open_dialog(w)
    dlg.workers.setValue(1)
    with qtbot.waitSignal(w.session.stimuliAdded, timeout=60_000):
        assert dlg.submit()
    with qtbot.waitSignal(dlg.jobFinished, timeout=30_000) as blocker:
        dlg.cancel()
    assert blocker.args == ["cancelled"]
    n = len(w.session.library)
    assert 1 <= n < 120
    assert len({r.seed for r in w.session.library.records()}) == n


def test_refusals_are_plain(make_window, dialogs):
    w = make_window()
    dlg = _open_dialog(w)
    assert not dlg.submit()  # no library open
    assert "no library is open" in dialogs.texts()
    dlg.remote.setChecked(True)
    assert not dlg.submit()
    assert "no scheduler address" in dialogs.texts()
    dlg.kind.setCurrentIndex(1)
    dlg.address.setText("tcp://127.0.0.1:1")
    assert not dlg.submit()
    assert "no trials are loaded" in dialogs.texts()


def test_align_indivnets_on_a_local_worker_land_in_the_model_store(make_window, qtbot, tmp_path):
    import torch

    from perceptlab.data.images import write_png
    from perceptlab.data.trials import load_trials
    from tests.align.conftest import fake_mnist, make_stimuli, make_trials

    torch.set_num_threads(1)  # tiny models (the Qt conftest restores the count)
    keys, images, dominant = make_stimuli(n=60, seed=4)
    folder = tmp_path / "images"
    folder.mkdir()
    for k, img in zip(keys, images):
        write_png(folder / k, img)
    csv = tmp_path / "trials.csv"
    make_trials(keys, dominant, participants=3, seed=5).to_csv(csv, index=False)
    w = make_window()
    qtbot.waitUntil(lambda: w.session.mnist is not None, timeout=10_000)
    w.session.mnist = fake_mnist()
    w.session.set_trials(load_trials(csv), csv)
    a = w.align
    a.set_images_folder(folder)
    a.level.setCurrentIndex(a.level.findData("both"))
    a.epochs.setValue(1)
    a.batch_size.setValue(32)
    dlg = _open_dialog(w)
    dlg.kind.setCurrentIndex(dlg.kind.findData("align"))
    dlg.workers.setValue(1)
    changed = []
    w.session.modelsChanged.connect(lambda: changed.append(1))
    with qtbot.waitSignal(dlg.jobFinished, timeout=90_000) as blocker:
        assert dlg.submit()
    assert blocker.args == ["done"], dlg.log.toPlainText()
    names = {p.stem for p in w.session.registry.user_dir.glob("*.json")}
    assert names == {"vgg-group", "vgg-indiv-P0", "vgg-indiv-P1", "vgg-indiv-P2"}
    assert changed and "Done: 4 model(s) saved" in dlg.status.text()
    assert dlg.log.toPlainText().count("saved vgg-indiv-") == 3
