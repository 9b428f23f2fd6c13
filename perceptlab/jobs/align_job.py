"""Fine-tuning fan-out: the IndivNets of N participants as N parallel tasks, one GroupNet shared.

The GroupNet is trained once (by :func:`perceptlab.align.pipeline.run_alignment`, on the machine that
drives the job) or named from the registry; it, the trial data and the MNIST mix are sent to every
worker once (``share``) and each task fine-tunes one participant's IndivNet from it with the job's
recipe. An IndivNet depends only on (GroupNet, data, participant, recipe, threads), so the models are
the same whatever the number of workers; they come back to the driver, which saves them into the
model store as they arrive (a cancelled job keeps the finished ones, complete). Each worker keeps one
feature cache, so the GroupNet's features are computed once per worker, not once per participant.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Sequence
from pathlib import Path
from typing import Any

from perceptlab.jobs.cluster import worker_name
from perceptlab.jobs.tasks import Task, run_tasks
from perceptlab.jobs.threads import torch_threads

_CACHE: Any = None  # one FeatureCache per worker process
_CACHE_LOCK = threading.Lock()


def _feature_cache():
    global _CACHE
    with _CACHE_LOCK:
        if _CACHE is None:
            from perceptlab.align.features import FeatureCache  # noqa: PLC0415

            _CACHE = FeatureCache()
        return _CACHE


def run_individual_task(
    group: Any,
    data: Any,
    mnist: Any,
    participant: str,
    recipe: dict[str, Any],
    folders: tuple[str | None, str | None],
    device: str,
    threads: int,
) -> dict[str, Any]:
    """One IndivNet, on whichever worker runs it. ``group``: a FinetuneResult or a registry name."""
    from perceptlab.align.finetune import FinetuneRecipe, finetune_individual  # noqa: PLC0415
    from perceptlab.engine.registry import Registry  # noqa: PLC0415

    from perceptlab.engine.device import pick_device  # noqa: PLC0415

    device = pick_device(device)  # a worker without the driver's GPU says so
    builtin, user = (Path(f) if f and Path(f).is_dir() else None for f in folders)
    registry = Registry(builtin, user)
    with torch_threads(threads):
        gen = finetune_individual(group, data, participant, mnist, FinetuneRecipe.from_dict(recipe),
                                  registry=registry, device=device, cache=_feature_cache())  # fmt: skip
        try:
            while True:
                next(gen)
        except StopIteration as stop:
            result = stop.value
    return {"result": result, "worker": worker_name()}


def fan_out_individuals(
    cluster: Any,
    group: Any,
    data: Any,
    participants: Sequence[str],
    mnist: Any,
    recipe: Any,
    *,
    registry: Any,
    device: Any,
    on_result: Callable[[str, Any, str], dict[str, Any] | None],
    threads: int = 1,
    retries: int = 2,
) -> Generator[dict[str, Any], None, dict[str, str]]:
    """Fine-tune the IndivNets of ``participants`` on ``cluster``. ``on_result(participant, result,
    worker)`` runs on the driver for each as it arrives and may return a record to yield. Yields the
    task runner's ``{"kind": "job", ...}`` records (``stage="individual"``); returns {participant: worker}."""
    share = getattr(cluster, "share", lambda obj: obj)
    shared = [share(obj) for obj in (group, data, mnist)]
    folders = (str(registry.builtin_dir), str(registry.user_dir))
    recipe_dict = recipe.to_dict()
    tasks = [
        Task(f"indiv{i}", run_individual_task, (*shared[:2], shared[2], pid, recipe_dict, folders, str(device), threads))
        for i, pid in enumerate(participants)
    ]
    workers: dict[str, str] = {}
    ready: list[dict[str, Any]] = []

    def done(i: int, value: dict[str, Any], attempt: int) -> None:
        pid = participants[i]
        workers[pid] = value["worker"]
        rec = on_result(pid, value["result"], value["worker"])
        if rec is not None:
            ready.append(rec)

    runner = run_tasks(cluster, tasks, done, retries=retries, prefix="align", extra={"stage": "individual"})
    try:
        for rec in runner:
            yield from ready
            ready.clear()
            yield rec
    finally:
        runner.close()
    yield from ready
    return workers
