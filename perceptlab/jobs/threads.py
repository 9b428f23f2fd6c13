"""Torch's thread count for the tasks of a job, safe when several tasks share a process (a Dask worker
with several threads, or ``processes=False``): the first task in sets it, the last one out restores it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

_LOCK = threading.Lock()
_STATE = {"depth": 0, "before": None}


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    import torch  # noqa: PLC0415

    with _LOCK:
        if _STATE["depth"] == 0:
            _STATE["before"] = torch.get_num_threads()
        _STATE["depth"] += 1
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
    try:
        yield
    finally:
        with _LOCK:
            _STATE["depth"] -= 1
            if _STATE["depth"] == 0 and torch.get_num_threads() != _STATE["before"]:
                torch.set_num_threads(_STATE["before"])
