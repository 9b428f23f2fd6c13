import pytest

from tests.conftest import build_tiny_registry


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory):
    return build_tiny_registry(tmp_path_factory.mktemp("jobs_weights"))


@pytest.fixture()
def registry(tiny_weights, tmp_path):
    from perceptlab.engine.registry import Registry

    return Registry(tiny_weights, tmp_path / "user_models")


@pytest.fixture()
def markers(tmp_path, monkeypatch):
    folder = tmp_path / "markers"
    folder.mkdir()
    monkeypatch.setenv("PERCEPTLAB_TEST_MARKERS", str(folder))
    return folder


@pytest.fixture(autouse=True)
def _fork_workers():
    """Worker processes forked from this (torch-loaded) process start in a fraction of a second; spawned
    ones (Dask's default, and the product's) import torch again, ~10 s each on 2 busy cores."""
    try:
        import dask
    except ImportError:
        yield
        return
    with dask.config.set({"distributed.worker.multiprocessing-method": "fork"}):
        yield
