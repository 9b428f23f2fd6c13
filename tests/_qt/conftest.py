"""Fixtures for the Qt tests: tiny random models in a tmp registry, a tiny demo project, tmp settings,
and QMessageBox / QInputDialog replaced by recorders (nothing ever blocks)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")
pytest.importorskip("pytestqt")


@pytest.fixture(scope="session", autouse=True)
def _gui_thread_gc(qapp):
    """As in the app (perceptlab._qt.app): cyclic garbage is collected in the GUI thread only."""
    from perceptlab._qt import gui_gc

    gui_gc.install()
    yield


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> Path:
    """dit (tiny DiT), vgg, mlp and cornet (logistic regressions) and judge, randomly initialised."""
    from tests.conftest import build_tiny_registry

    classifiers = (("vgg", "logreg"), ("mlp", "logreg"))
    return build_tiny_registry(tmp_path_factory.mktemp("tiny_weights"), classifiers)


@pytest.fixture()
def registry(tiny_weights, tmp_path):
    from perceptlab.engine.registry import Registry

    return Registry(tiny_weights, tmp_path / "user_models")


@pytest.fixture(scope="session")
def demo_project(tiny_weights, tmp_path_factory) -> Path:
    """A demo project built by the real `perceptlab demo-project` handler with the tiny models."""
    import perceptlab.engine.registry as reg_mod
    from perceptlab.cli.demo_project import run

    out = tmp_path_factory.mktemp("demo_src") / "demo"
    mp = pytest.MonkeyPatch()
    mp.setattr(reg_mod, "_default", reg_mod.Registry(tiny_weights, tiny_weights / "no_user_models"))
    try:
        args = argparse.Namespace(
            out=out, pairs="4-9,3-5,1-7,2-7", per_pair=4, mode="uncertainty", classifier=None, classifier2=None,
            preset="draft", batch_size=16, seed=0, participants=16, trials_per_participant=12, clusters=2,
            observer_model=None, device="cpu", force=False,
        )
        assert run(args) == 0
    finally:
        mp.undo()
    return out


@pytest.fixture()
def fake_mnist():
    from perceptlab.data.mnist import MnistData

    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, size=(40, 1, 28, 28)).astype(np.float32)
    labels = np.arange(40) % 10
    return MnistData(images, labels, "test digits (40)", np.zeros(40, bool), np.zeros(40, object))


@pytest.fixture()
def settings(tmp_path):
    from PySide6.QtCore import QSettings

    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


class Recorder:
    def __init__(self):
        self.calls: list[tuple[str, str, str]] = []

    def texts(self) -> str:
        return "\n".join(f"{kind}: {title}: {text}" for kind, title, text in self.calls)


@pytest.fixture(autouse=True)
def dialogs(monkeypatch):
    """QMessageBox's static functions record instead of blocking; QInputDialog answers 'keep'."""
    from PySide6.QtWidgets import QInputDialog, QMessageBox

    rec = Recorder()

    def make(kind, answer):
        def f(parent, title, text, *args, **kwargs):
            rec.calls.append((kind, title, text))
            return answer
        return staticmethod(f)

    for kind in ("warning", "critical", "information"):
        monkeypatch.setattr(QMessageBox, kind, make(kind, QMessageBox.StandardButton.Ok))
    monkeypatch.setattr(QMessageBox, "question", make("question", QMessageBox.StandardButton.Yes))
    monkeypatch.setattr(QInputDialog, "getText", staticmethod(lambda *a, **k: ("keep", True)))
    return rec


@pytest.fixture()
def make_window(qtbot, registry, settings, tmp_path, fake_mnist):
    """Build a MainWindow on tmp settings and a tmp data folder; closes every window at teardown."""
    from perceptlab._qt.main_window import MainWindow

    windows = []

    def make(demo_dir=None, settings_=None, **kwargs):
        kwargs.setdefault("registry", registry)
        w = MainWindow(settings=settings_ or settings, device="cpu", data_dir=tmp_path / "data",
                       demo_dir=demo_dir, mnist_loader=lambda: fake_mnist, **kwargs)
        qtbot.addWidget(w)
        w.resize(1300, 860)
        w.show()
        windows.append(w)
        return w

    yield make
    for w in windows:
        w.close()


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """The window leaves a core to the GUI (torch threads, GIL switch interval); restore both afterwards."""
    import torch

    import sys

    n, switch = torch.get_num_threads(), sys.getswitchinterval()
    yield
    torch.set_num_threads(n)
    sys.setswitchinterval(switch)
