"""Shared fixtures: tiny models and data so tests stay fast on 2 CPU cores."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(scope="session")
def builtin_mnist():
    from perceptlab.data.mnist import load_builtin

    return load_builtin()


@pytest.fixture()
def isolated_models(tmp_path, monkeypatch):
    """A user model folder of our own, so tests never touch ~/.local/share/perceptlab."""
    folder = tmp_path / "user_models"
    folder.mkdir()
    monkeypatch.setenv("PERCEPTLAB_MODELS", str(folder))
    import perceptlab.engine.registry as registry

    monkeypatch.setattr(registry, "_default", None)
    return folder


def digits_uint8(data, n: int) -> np.ndarray:
    return ((data.images[:n, 0] + 1) * 127.5).round().astype(np.uint8)
