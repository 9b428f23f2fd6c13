"""The task runner shared by every distributed job.

:func:`run_tasks` submits tasks to a cluster (:mod:`perceptlab.jobs.cluster`), hands each result to
``on_result`` as it arrives, re-submits a task that raised (up to ``retries`` more attempts, each with
its own key), and yields a progress record about twice a second and after every finished task:

``{"kind": "job", "done", "running", "failed", "queued", "total", "units_done", "units_total",
"elapsed_s", "eta_s"}`` — tasks finished / being processed now / failed attempts so far / waiting;
units are what the job counts (images for generation), ``eta_s`` is None until one task finished.

A worker that dies is the scheduler's business: Dask re-runs its tasks elsewhere (up to
``distributed.scheduler.allowed-failures`` deaths, then the task fails with ``KilledWorker`` and is
retried here like any error). Closing the generator (the app's Cancel, Ctrl-C) cancels every task not
finished yet; the results already handed to ``on_result`` stay. Imports no torch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any

from perceptlab.errors import PerceptLabError


@dataclass
class Task:
    """One unit of work: ``fn(*args)`` on some worker; ``units`` (e.g. images) weigh it in the ETA."""

    name: str  # unique within the job, part of the Dask key
    fn: Callable[..., Any]
    args: tuple
    units: float = 1.0


def run_tasks(
    cluster: Any,
    tasks: Sequence[Task],
    on_result: Callable[[int, Any, int], None],
    *,
    retries: int = 2,
    poll: float = 0.5,
    prefix: str = "job",
    extra: dict[str, Any] | None = None,
) -> Generator[dict[str, Any], None, dict[str, Any]]:
    """Run ``tasks``; ``on_result(index, result, attempt)`` for each; returns the final counts."""
    if retries < 0:
        raise PerceptLabError(f"retries = {retries}", "use 0 or more retries")
    t0 = time.perf_counter()
    attempts = [0] * len(tasks)
    live: dict[Any, int] = {}  # handle -> task index
    failed = 0
    done = 0
    units_done = 0.0
    units_total = float(sum(t.units for t in tasks))
    errors: list[str] = []

    def submit(i: int) -> None:
        task = tasks[i]
        handle = cluster.submit(task.fn, *task.args, key=f"{prefix}-{task.name}-a{attempts[i]}")
        live[handle] = i

    def record() -> dict[str, Any]:
        elapsed = time.perf_counter() - t0
        running = cluster.running(list(live))
        eta = (units_total - units_done) * elapsed / units_done if units_done else None
        return {
            **(extra or {}),
            "kind": "job",
            "done": done,
            "running": running,
            "failed": failed,
            "queued": len(live) - running,
            "total": len(tasks),
            "units_done": units_done,
            "units_total": units_total,
            "elapsed_s": elapsed,
            "eta_s": eta,
        }

    try:
        for i in range(len(tasks)):
            submit(i)
        yield record()
        last = time.perf_counter()
        while live:
            finished = cluster.wait(list(live), timeout=poll)
            for handle in finished:
                i = live.pop(handle)
                ok, value = cluster.outcome(handle)
                if ok:
                    on_result(i, value, attempts[i])
                    done += 1
                    units_done += tasks[i].units
                    continue
                failed += 1
                errors.append(f"{tasks[i].name} (attempt {attempts[i] + 1}): {type(value).__name__}: {value}")
                if attempts[i] >= retries:
                    raise PerceptLabError(
                        f"task {tasks[i].name} failed {attempts[i] + 1} times; last error: "
                        f"{type(value).__name__}: {value}",
                        "fix the cause (the worker's log has the traceback) and run the job again; what was "
                        "committed stays and is not made twice",
                    )
                attempts[i] += 1
                submit(i)
            if finished or time.perf_counter() - last >= poll:
                last = time.perf_counter()
                yield record()
    finally:
        if live:
            cluster.cancel(list(live))
    return {**record(), "errors": errors}
