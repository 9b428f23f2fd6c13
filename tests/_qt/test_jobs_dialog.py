"""Run > Cluster jobs…: a generation job from Explore's settings on local Dask workers lands in the
open library while the window stays responsive; cancel; a bad configuration is refused in plain words."""

from __future__ import annotations

import pytest

pytest.importorskip("distributed")


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
    with qtbot.waitSignal(dlg.jobFinished, timeout=60_000) as blocker:
        assert dlg.submit()
        assert not dlg.submit_button.isEnabled() and dlg.cancel_button.isEnabled()
    assert blocker.args == ["done"]
    assert len(w.session.library) == 6 and sorted(added) == w.session.library.ids()
    assert sorted(r.seed for r in w.session.library.records()) == list(range(3, 9))
    assert "tasks done 3/3" in dlg.status.text() or dlg.status.text().startswith("Done: 6 images")
    log = dlg.log.toPlainText()
    assert "cluster: Dask local cluster" in log and "Done: 6 images" in log
    qtbot.waitUntil(dlg.submit_button.isEnabled, timeout=10_000)  # once the worker thread has ended


def test_cancel_stops_the_job_and_keeps_what_was_committed(make_window, qtbot, tmp_path):
    w = make_window()
    assert w.open_library(tmp_path / "lib", create=True)
    _explore(w, per_pair=10, batch=1)
    dlg = _open_dialog(w)
    dlg.workers.setValue(1)
    with qtbot.waitSignal(w.session.stimuliAdded, timeout=60_000):
        assert dlg.submit()
    with qtbot.waitSignal(dlg.jobFinished, timeout=30_000) as blocker:
        dlg.cancel()
    assert blocker.args == ["cancelled"]
    n = len(w.session.library)
    assert 1 <= n < 20
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
