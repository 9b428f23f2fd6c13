"""Shared fixtures: tiny models and data so tests stay fast on 2 CPU cores."""

from __future__ import annotations

import os
from pathlib import Path

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


# Tiny random models: torch is imported inside the helpers, so collecting torch-free tests stays light.

TINY_PRIOR = {"patch_size": 7, "num_heads": 2, "head_dim": 8, "num_layers": 1}


def tiny_prior_config():
    from perceptlab.engine.prior import PriorConfig

    return PriorConfig(**TINY_PRIOR)


def tiny_prior(seed: int = 0):
    """A tiny DiT prior, randomly initialised after ``torch.manual_seed(seed)``."""
    import torch

    from perceptlab.engine.prior import DiTPrior

    torch.manual_seed(seed)
    return DiTPrior(tiny_prior_config())


def save_model(folder: Path, name: str, kind: str, arch: str, model, arch_config: dict | None = None) -> dict:
    """Save ``model`` as registry entry ``name`` in ``folder``; returns the written config."""
    from perceptlab.engine.weights import save_weights

    config = {"name": name, "kind": kind, "arch": arch, "arch_config": arch_config or {}}
    return save_weights(model.state_dict(), folder / f"{name}.safetensors", config)


def build_tiny_registry(folder: Path, classifiers=(("vgg", "mlp"), ("lrm", "logreg"))) -> Path:
    """Built-in weights of a test: a tiny prior ``dit``, ``classifiers`` (name, arch), a logistic
    ``judge``, a logistic ``cornet`` (when ``classifiers`` has none: the fast preset co-guides with it) and
    logistic ``vit`` and ``mlp`` (the fast preset's zoo agreement asks three classifiers besides the
    guides), randomly initialised in that order after ``torch.manual_seed(0)``."""
    from perceptlab.engine.classifiers import build

    folder.mkdir(parents=True, exist_ok=True)
    prior = tiny_prior(0)
    save_model(folder, "dit", "prior", "dit", prior, prior.config.to_dict())
    for name, arch in classifiers:
        save_model(folder, name, "classifier", arch, build(arch))
    save_model(folder, "judge", "judge", "logreg", build("logreg", {"num_outputs": 1}))
    if "cornet" not in dict(classifiers):  # the fast preset's co-guide in uncertainty mode (made last: the
        save_model(folder, "cornet", "classifier", "logreg", build("logreg"))  # others' weights stay as they were)
    for name in ("vit", "mlp"):  # the fast preset's zoo agreement asks 3 classifiers besides two guides
        if name not in dict(classifiers):
            save_model(folder, name, "classifier", "logreg", build("logreg"))
    return folder


def run_gen(gen):
    """Drive a generator to its end: (records, return value)."""
    records = []
    try:
        while True:
            records.append(next(gen))
    except StopIteration as stop:
        return records, stop.value


CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def cifar10s_like(path, n_sub, n_img, per, seed, *, p_correct, rt_ms, subject="A{:03d}",
                  stimulus="cifar10s/test/img_{:05d}.png"):  # fmt: skip
    """A CIFAR-10S-shaped trial file (subject_id, stimulus, stimulus_id, response as class names, rt,
    true_label on every row), written to ``path``: each subject sees ``per`` of ``n_img`` images and
    answers the true class with probability ``p_correct``, else a random one. Returns the frame."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_sub):
        for k in rng.choice(n_img, per, replace=False):
            truth = int(k) % 10
            resp = truth if rng.random() < p_correct else int(rng.integers(10))
            rows.append((subject.format(s), stimulus.format(int(k)), int(k), CIFAR10_NAMES[resp],
                         round(float(rng.uniform(*rt_ms)), 1), CIFAR10_NAMES[truth]))  # fmt: skip
    frame = pd.DataFrame(rows, columns=["subject_id", "stimulus", "stimulus_id", "response", "rt", "true_label"])
    frame.to_csv(path, index=False)
    return frame
