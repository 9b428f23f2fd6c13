"""Task functions that misbehave once, importable by Dask worker processes (tests only)."""

from __future__ import annotations

import os
from pathlib import Path

from perceptlab.jobs.generate_job import run_generate_task

MARKER_DIR = "PERCEPTLAB_TEST_MARKERS"


def _first_try(name: str) -> bool:
    """True the first time a task of this name runs anywhere (a marker file records it)."""
    marker = Path(os.environ[MARKER_DIR]) / name
    try:
        marker.touch(exist_ok=False)
    except FileExistsError:
        return False
    return True


def dies_once(job_dict, pairs, seeds):
    """Kill the worker process on the first try of the task of the second batch."""
    if seeds[0] != job_dict["settings"]["seed"] and _first_try(f"die-{seeds[0]}"):
        os._exit(1)
    return run_generate_task(job_dict, pairs, seeds)


def raises_once(job_dict, pairs, seeds):
    if _first_try(f"raise-{seeds[0]}"):
        raise RuntimeError(f"flaky task {seeds[0]}")
    return run_generate_task(job_dict, pairs, seeds)


def always_raises(job_dict, pairs, seeds):
    raise RuntimeError("this task never works")
