"""Fine-tuning fan-out: IndivNets as parallel tasks give the same models as the serial run."""

from __future__ import annotations

import pytest
import torch

from perceptlab.align.finetune import FinetuneRecipe
from perceptlab.align.pipeline import AlignJob, run_alignment
from perceptlab.engine.registry import Registry
from perceptlab.jobs.cluster import InProcessCluster
from tests.align.conftest import fake_mnist, make_stimuli, make_trials, one_thread, save_tiny_classifiers
from tests.conftest import run_gen

distributed = pytest.importorskip("distributed")
from perceptlab.jobs.cluster import DaskCluster  # noqa: E402

PIDS = ["P0", "P1", "P2", "P3"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from perceptlab.align.datasets import build_align_data

    mnist = fake_mnist()
    folder = tmp_path_factory.mktemp("align_builtin")
    with one_thread():
        save_tiny_classifiers(folder, mnist)
    keys, images, dominant = make_stimuli(n=80)
    data = build_align_data(make_trials(keys, dominant, participants=4), images, keys)
    return folder, data, mnist


def _run(setup, tmp_path, name, cluster=None):
    folder, data, mnist = setup
    registry = Registry(folder, tmp_path / name / "models")
    job = AlignJob(base="tinylr", level="both", participants=PIDS, recipe=FinetuneRecipe(epochs=2, batch_size=32),
                   out_dir=tmp_path / name / "out", models_dir=tmp_path / name / "models", evaluate=False)  # fmt: skip
    with one_thread():
        records, metrics = run_gen(run_alignment(job, data, mnist, registry=registry, cluster=cluster))
    return records, metrics


def _weights(metrics, name):
    from perceptlab.engine.weights import load_weights

    state, _ = load_weights(metrics["models"][name]["files"][0])
    return state


def test_indivnets_on_two_workers_equal_the_serial_run(setup, tmp_path):
    _, serial = _run(setup, tmp_path, "serial")
    cluster = DaskCluster(workers=2, processes=False)
    try:
        records, fanned = _run(setup, tmp_path, "fan", cluster)
    finally:
        cluster.close()
    assert list(fanned["models"]) == list(serial["models"])  # GroupNet first, IndivNets in participant order
    assert len(fanned["models"]) == 1 + len(PIDS)
    for name in serial["models"]:
        a, b = _weights(serial, name), _weights(fanned, name)
        assert all(torch.equal(a[k], b[k]) for k in a), name
        assert fanned["models"][name]["metrics"]["val_loss"] == serial["models"][name]["metrics"]["val_loss"]
    jobs = [r for r in records if r["kind"] == "job"]
    assert jobs[-1]["done"] == jobs[-1]["total"] == len(PIDS) and jobs[-1]["stage"] == "individual"
    saved = [r for r in records if r["kind"] == "saved" and "worker" in r]
    assert len(saved) == len(PIDS)  # the GroupNet was trained once, on the driver; IndivNets on workers
    assert sum(r.get("stage") == "group" and r["kind"] == "epoch" for r in records) == 3  # epochs 0, 1, 2


def test_in_process_cluster_runs_the_same_tasks(setup, tmp_path):
    _, serial = _run(setup, tmp_path, "serial")
    _, local = _run(setup, tmp_path, "local", InProcessCluster())
    name = list(serial["models"])[-1]
    a, b = _weights(serial, name), _weights(local, name)
    assert all(torch.equal(a[k], b[k]) for k in a)
