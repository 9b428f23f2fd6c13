"""Tiny synthetic stimuli, observers and models for the alignment tests (no shipped weights)."""

from __future__ import annotations

import contextlib

import numpy as np
import pandas as pd
import pytest
import torch

from perceptlab.data.mnist import MnistData
from perceptlab.engine.classifiers import build
from perceptlab.engine.registry import Registry
from tests.conftest import build_tiny_registry, run_gen, save_model  # noqa: F401  (run_gen: re-exported)

N_CLASSES = 10


def prototypes(seed: int = 0) -> np.ndarray:
    """Ten random 28x28 patterns in [0, 1] (one per class)."""
    rng = np.random.default_rng(seed)
    return rng.random((N_CLASSES, 28, 28))


def to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x * 255), 0, 255).astype(np.uint8)


def fake_mnist(n_per_class: int = 20, seed: int = 1) -> MnistData:
    """Noisy prototypes as 'digits' (every 5th held out)."""
    rng = np.random.default_rng(seed)
    protos = prototypes()
    labels = np.repeat(np.arange(N_CLASSES), n_per_class)
    x = protos[labels] * 0.8 + 0.2 * rng.random((len(labels), 28, 28))
    images = (x.astype(np.float32) * 2 - 1)[:, None]
    holdout = np.zeros(len(labels), dtype=bool)
    holdout[::5] = True
    return MnistData(
        images,
        labels.astype(np.int64),
        "synthetic prototypes",
        holdout,
        np.full(len(labels), "synthetic", dtype=object),
    )


def make_stimuli(n: int = 150, seed: int = 2) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Stimulus keys, uint8 images (mixtures of two prototypes) and their dominant class."""
    rng = np.random.default_rng(seed)
    protos = prototypes()
    a = rng.integers(0, N_CLASSES, n)
    b = (a + rng.integers(1, N_CLASSES, n)) % N_CLASSES
    lam = rng.uniform(0.6, 0.95, n)
    x = lam[:, None, None] * protos[a] + (1 - lam)[:, None, None] * protos[b]
    x = 0.85 * x + 0.15 * rng.random((n, 28, 28))
    keys = [f"stim{i:04d}.png" for i in range(n)]
    return keys, to_uint8(x), a


def make_trials(
    keys,
    dominant,
    participants: int = 6,
    biased: str | None = "P1",
    seed: int = 3,
    trials_per_participant: int | None = None,
) -> pd.DataFrame:
    """Participants answer the dominant class (10% noise); ``biased`` answers 7 whenever it is 1."""
    rng = np.random.default_rng(seed)
    rows = []
    n = len(keys)
    t = trials_per_participant or n
    for p in range(participants):
        pid = f"P{p}"
        seen = rng.permutation(n)[:t]
        resp = dominant[seen].copy()
        noise = rng.random(len(seen)) < 0.1
        resp[noise] = rng.integers(0, N_CLASSES, int(noise.sum()))
        if pid == biased:
            resp[dominant[seen] == 1] = 7
        rows.append(
            pd.DataFrame({"participant": pid, "stimulus": np.asarray(keys, dtype=object)[seen], "response": resp})
        )
    return pd.concat(rows, ignore_index=True)


def save_tiny_model(
    folder, name: str, arch: str, seed: int = 0, train_on: MnistData | None = None, steps: int = 0
) -> None:
    torch.manual_seed(seed)
    model = build(arch)
    if train_on is not None and steps:
        x, y = train_on.tensors()
        opt = torch.optim.Adam(model.parameters(), 1e-2)
        for _ in range(steps):
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    save_model(folder, name, "classifier", arch, model)


def save_tiny_classifiers(folder, data: MnistData) -> None:
    """``tinylr`` (logreg) and ``tinymlp`` (MLP), briefly trained on ``data``'s training digits."""
    save_tiny_model(folder, "tinylr", "logreg", train_on=data.train(), steps=30)
    save_tiny_model(folder, "tinymlp", "mlp", train_on=data.train(), steps=15)


@contextlib.contextmanager
def one_thread():
    """One torch thread: tiny ops on a CPU shared with other work are far faster without threading."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with one_thread():
        yield


@pytest.fixture(scope="session")
def mnist_fake() -> MnistData:
    return fake_mnist()


@pytest.fixture(scope="session")
def builtin_dir(tmp_path_factory, mnist_fake):
    """Built-in weights of the tests: tiny classifiers ``tinylr`` (logreg) and ``tinymlp`` (MLP)."""
    folder = tmp_path_factory.mktemp("builtin")
    with one_thread():
        save_tiny_classifiers(folder, mnist_fake)
    return folder


@pytest.fixture(scope="session")
def builtin_with_prior(tmp_path_factory, mnist_fake):
    """As ``builtin_dir`` plus a tiny untrained prior ``dit`` and judge ``judge``."""
    folder = tmp_path_factory.mktemp("builtin_prior")
    with one_thread():
        save_tiny_classifiers(folder, mnist_fake)
        build_tiny_registry(folder, classifiers=())
    return folder


@pytest.fixture()
def registry(builtin_dir, tmp_path) -> Registry:
    user = tmp_path / "user_models"
    user.mkdir()
    return Registry(builtin_dir, user)


@pytest.fixture(scope="session")
def stimuli():
    return make_stimuli()


@pytest.fixture(scope="session")
def align_data(stimuli):
    from perceptlab.align.datasets import build_align_data

    keys, images, dominant = stimuli
    trials = make_trials(keys, dominant)
    return build_align_data(trials, images, keys)
