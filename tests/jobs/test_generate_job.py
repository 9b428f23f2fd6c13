"""Distributed generation: the same images whatever the number of workers, no stimulus lost or made
twice when a task fails or a worker dies, cancellation, and the CLI's --workers."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from perceptlab.data.library import Stimulus, StimulusLibrary
from perceptlab.engine.generate import BatchOutcome, expand_targets, fill_targets, generate
from perceptlab.engine.sampler import SamplerSettings
from perceptlab.errors import PerceptLabError
from perceptlab.jobs.cluster import InProcessCluster
from perceptlab.jobs.generate_job import GenerateJob, run_generate_job
from tests.conftest import run_gen
from tests.jobs import _faulty

distributed = pytest.importorskip("distributed")
from perceptlab.jobs.cluster import DaskCluster  # noqa: E402

TARGETS = expand_targets([(3, 5), (4, 9), (1, 7)], 3)  # 9 stimuli -> 3 batches of 4, 4, 1


def _settings(**kw) -> SamplerSettings:
    return SamplerSettings.from_preset("draft", steps=2, batch_size=4, seed=5, classifier="vgg", **kw)


def _job(registry, **kw) -> GenerateJob:
    return GenerateJob.build(_settings(), TARGETS, registry=registry, **kw)


def _manifest(path) -> list[dict]:
    """manifest.csv rows without the creation time (a wall-clock timestamp)."""
    with open(path / "manifest.csv", newline="") as fh:
        return [{k: v for k, v in row.items() if k != "created"} for row in csv.DictReader(fh)]


def _pngs(path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((path / "images").glob("*.png"))}


def _run_into(path, job, cluster, **kw):
    with StimulusLibrary.create(path) as lib:
        records, summary = run_gen(run_generate_job(job, cluster, lib, **kw))
    return records, summary


@pytest.fixture(scope="module")
def threads_cluster():
    cluster = DaskCluster(workers=2, processes=False)
    yield cluster
    cluster.close()


def test_one_and_two_workers_and_in_process_give_identical_libraries(registry, tmp_path, threads_cluster):
    job = _job(registry)
    one = DaskCluster(workers=1, processes=False)
    try:
        _, s1 = _run_into(tmp_path / "w1", job, one)
    finally:
        one.close()
    _, s2 = _run_into(tmp_path / "w2", job, threads_cluster)
    _, s0 = _run_into(tmp_path / "w0", job, InProcessCluster())
    assert len(s2.workers) == 2  # both workers took part
    m1 = _manifest(tmp_path / "w1")
    assert len(m1) == 9 and [r["stimulus_id"] for r in m1] == [f"s{i:06d}" for i in range(1, 10)]
    assert [int(r["seed"]) for r in m1] == list(range(5, 14))
    assert m1 == _manifest(tmp_path / "w2") == _manifest(tmp_path / "w0")  # ids, seeds, probabilities...
    assert _pngs(tmp_path / "w1") == _pngs(tmp_path / "w2") == _pngs(tmp_path / "w0")  # byte-identical
    # ... and the same as the in-process engine run of the same settings
    with StimulusLibrary.create(tmp_path / "engine") as lib:
        run_gen(generate(_settings(), TARGETS, registry=registry, library=lib))
    assert _manifest(tmp_path / "engine") == m1 and _pngs(tmp_path / "engine") == _pngs(tmp_path / "w1")
    with StimulusLibrary.open(tmp_path / "w2") as lib:
        prov = [r.settings["provenance"] for r in lib.records()]
    assert {p["job"] for p in prov} == {job.job_id} and {p["worker"] for p in prov} == set(s2.workers)
    assert all(p["task"].startswith(job.job_id) for p in prov)


def test_a_worker_killed_mid_job_loses_and_duplicates_nothing(registry, tmp_path, markers):
    job = _job(registry)
    _, expected = _run_into(tmp_path / "ref", job, InProcessCluster())
    cluster = DaskCluster(workers=2, processes=True)  # nanny-supervised worker processes
    try:
        _, summary = _run_into(tmp_path / "lib", job, cluster, task_fn=_faulty.dies_once)
    finally:
        cluster.close()
    assert any(p.name.startswith("die-") for p in markers.iterdir())  # a worker really died
    with StimulusLibrary.open(tmp_path / "lib") as lib:
        seeds = [r.seed for r in lib.records()]
    assert sorted(seeds) == list(range(5, 14)) and len(set(seeds)) == 9
    assert _manifest(tmp_path / "lib") == _manifest(tmp_path / "ref")
    assert _pngs(tmp_path / "lib") == _pngs(tmp_path / "ref")


def test_failed_tasks_are_retried_and_counted(registry, tmp_path, markers, threads_cluster):
    records, summary = _run_into(tmp_path / "lib", _job(registry), threads_cluster, task_fn=_faulty.raises_once)
    progress = [r for r in records if r["kind"] == "job"]
    assert progress[-1]["failed"] == 3 and progress[-1]["done"] == 3  # every batch failed once, then passed
    assert summary.generated == 9 and len(summary.ids) == 9
    with StimulusLibrary.open(tmp_path / "lib") as lib:
        assert sorted(r.seed for r in lib.records()) == list(range(5, 14))
        attempts = {r.settings["provenance"]["attempt"] for r in lib.records()}
    assert attempts == {1}


def test_a_task_that_keeps_failing_stops_the_job_with_its_error(registry, tmp_path):
    with pytest.raises(PerceptLabError, match=r"task r1b\d failed 2 times; last error: RuntimeError: this task never"):
        _run_into(tmp_path / "lib", _job(registry), InProcessCluster(), task_fn=_faulty.always_raises, retries=1)


def test_cancel_keeps_what_was_committed_and_a_rerun_completes_without_repeats(registry, tmp_path):
    job = _job(registry)
    with StimulusLibrary.create(tmp_path / "lib") as lib:
        gen = run_generate_job(job, InProcessCluster(), lib)
        for rec in gen:
            if rec["kind"] == "batch":
                break
        gen.close()  # cancel after the first batch
        assert len(lib) == 4
        _, summary = run_gen(run_generate_job(job, InProcessCluster(), lib))
        assert summary.repeats == 4 and len(summary.ids) == 5 and len(lib) == 9
        assert sorted(r.seed for r in lib.records()) == list(range(5, 14))


def test_regeneration_rounds_use_the_seeds_of_fill_targets(registry):
    """The driver cuts rounds and batches like the in-process loop (fake batches: a seed passes if % 3 == 0)."""
    passes = lambda s: s % 3 == 0  # noqa: E731

    def fake_task(job_dict, pairs, seeds):
        ok = [passes(s) for s in seeds]
        recs = [Stimulus(mode="uncertainty", class_a=a, class_b=b, seed=s, passed=p).to_dict()
                for (a, b), s, p in zip(pairs, seeds, ok)]  # fmt: skip
        return {"passed": ok, "records": recs, "images": np.zeros((len(recs), 28, 28), np.uint8),
                "invalid": [], "worker": "fake", "seconds": 0.0}  # fmt: skip

    def fake_runner(pairs, seeds):
        yield {"kind": "step", "step": 1, "total": 1}
        ok = [passes(s) for s in seeds]
        recs = [Stimulus(mode="uncertainty", class_a=a, class_b=b, seed=s, passed=p) for (a, b), s, p in zip(pairs, seeds, ok)]
        return BatchOutcome(ok, recs, np.zeros((len(recs), 28, 28), np.uint8))

    job = _job(registry, regenerate=True, max_rounds=5)
    _, ours = run_gen(run_generate_job(job, InProcessCluster(), task_fn=fake_task))
    _, theirs = run_gen(fill_targets(TARGETS, fake_runner, batch_size=4, base_seed=5, regenerate=True, max_rounds=5))
    assert [(r.seed, r.pair) for r in ours.records] == [(r.seed, r.pair) for r in theirs.records]
    assert (ours.rounds, ours.generated, ours.accepted, ours.unfilled) == (
        theirs.rounds, theirs.generated, theirs.accepted, theirs.unfilled,
    )  # fmt: skip
    assert ours.rounds > 1


def test_a_worker_with_other_weights_is_refused(registry, tmp_path):
    job = _job(registry)
    job.weight_hashes["vgg"] = "0" * 64
    with pytest.raises(PerceptLabError, match="other weights for 'vgg'.*same PerceptLab and models"):
        _run_into(tmp_path / "lib", job, InProcessCluster(), retries=0)


def test_job_description_round_trips_and_its_id_ignores_folders(registry):
    job = _job(registry)
    again = GenerateJob.from_dict(__import__("json").loads(job.to_json()))
    assert again == job and again.job_id == job.job_id
    moved = GenerateJob.from_dict({**job.to_dict(), "builtin_dir": "/elsewhere"})
    assert moved.job_id == job.job_id
    assert GenerateJob.from_dict({**job.to_dict(), "threads": 2}).job_id != job.job_id


def test_cli_generate_on_two_local_workers(tiny_weights, tmp_path, monkeypatch, capsys):
    import perceptlab.engine.registry as registry_module
    from perceptlab.cli import main

    monkeypatch.setenv("PERCEPTLAB_WEIGHTS", str(tiny_weights))
    monkeypatch.setenv("PERCEPTLAB_MODELS", str(tmp_path / "user_models"))
    monkeypatch.setattr(registry_module, "_default", None)
    fast = ["--steps", "2", "--resample", "1", "--batch-size", "2", "--seed", "1"]
    base = ["generate", "--classifier", "vgg", "--pairs", "3-5,4-9", "--per-pair", "2", *fast]
    assert main([*base, "--library", str(tmp_path / "a"), "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert "cluster: Dask local cluster" in out and "(2 workers)" in out and "generated 4 images" in out
    assert "images per worker:" in out
    assert main([*base, "--library", str(tmp_path / "b")]) == 0
    assert _manifest(tmp_path / "a") == _manifest(tmp_path / "b") and _pngs(tmp_path / "a") == _pngs(tmp_path / "b")
    assert main([*base, "--library", str(tmp_path / "c"), "--workers", "2", "--scheduler", "tcp://x:1"]) == 2
    assert "pick one" in capsys.readouterr().err


def test_joining_a_running_scheduler_by_address(registry, tmp_path):
    """--scheduler ADDRESS: a client of a scheduler started elsewhere (here: a tcp LocalCluster)."""
    running = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp",
                                       dashboard_address=":0")  # fmt: skip
    try:
        assert running.scheduler_address.startswith("tcp://")
        cluster = DaskCluster(running.scheduler_address)
        try:
            assert cluster.workers() == 2 and "scheduler tcp://" in cluster.describe()
            _, summary = _run_into(tmp_path / "remote", _job(registry), cluster)
        finally:
            cluster.close()
    finally:
        running.close()
    _, _ = _run_into(tmp_path / "local", _job(registry), InProcessCluster())
    assert _manifest(tmp_path / "remote") == _manifest(tmp_path / "local")
    assert _pngs(tmp_path / "remote") == _pngs(tmp_path / "local")


def test_an_unreachable_scheduler_is_one_plain_error():
    with pytest.raises(PerceptLabError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9.*dask scheduler"):
        DaskCluster("tcp://127.0.0.1:9", timeout=1)


def test_a_saved_job_description_runs_anywhere_with_the_same_result(tiny_weights, tmp_path, monkeypatch, capsys):
    import perceptlab.engine.registry as registry_module
    from perceptlab.cli import main

    monkeypatch.setenv("PERCEPTLAB_WEIGHTS", str(tiny_weights))
    monkeypatch.setenv("PERCEPTLAB_MODELS", str(tmp_path / "user_models"))
    monkeypatch.setattr(registry_module, "_default", None)
    job = tmp_path / "job.json"
    argv = ["generate", "--classifier", "vgg", "--pairs", "3-5,4-9", "--per-pair", "3", "--steps", "2",
            "--resample", "1", "--batch-size", "2", "--seed", "8", "--library", str(tmp_path / "a")]  # fmt: skip
    assert main([*argv, "--save-job", str(job)]) == 0
    assert "wrote job gen-" in capsys.readouterr().out and not (tmp_path / "a").exists()
    assert main(["job", "show", str(job)]) == 0
    assert "6 stimuli over 2 pair(s)" in capsys.readouterr().out
    assert main(["job", "run", str(job), "--library", str(tmp_path / "a")]) == 0  # in-process
    assert main(["job", "run", str(job), "--library", str(tmp_path / "b"), "--workers", "2"]) == 0
    assert _manifest(tmp_path / "a") == _manifest(tmp_path / "b") and _pngs(tmp_path / "a") == _pngs(tmp_path / "b")
    assert main(["job", "run", str(job), "--library", str(tmp_path / "b")]) == 0  # again: nothing new
    assert "stored 0" in capsys.readouterr().out.splitlines()[-1]
    assert len(_manifest(tmp_path / "b")) == 6
    job.write_text("{not json")
    assert main(["job", "run", str(job), "--library", str(tmp_path / "c")]) == 2
    assert "line 1: not valid JSON" in capsys.readouterr().err
