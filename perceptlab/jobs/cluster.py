"""Where a job's tasks run: in this process, on a Dask ``LocalCluster``, or on a running Dask scheduler.

PerceptLab does not schedule work itself: it hands tasks to Dask distributed (pure Python, a
``LocalCluster`` of worker processes on one machine, ``dask-jobqueue`` to start workers through
Slurm/PBS/SGE, and any running scheduler joined by its address). Dask is an optional extra
(``pip install 'perceptlab[cluster]'``); the in-process cluster needs nothing and runs the very same
task functions one after the other, so a job description gives the same stimuli everywhere.

The interface the job runner (:mod:`perceptlab.jobs.tasks`) uses is small: ``submit``, ``wait``,
``outcome``, ``running``, ``cancel``, ``close``. Imports no torch.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from perceptlab.errors import PerceptLabError

_INSTALL_FIX = "install it with: pip install 'perceptlab[cluster]' (Dask distributed)"


def _require_dask():
    try:
        import distributed  # noqa: PLC0415
    except ImportError as exc:
        raise PerceptLabError(f"running on a cluster needs Dask distributed, which cannot be imported ({exc})",
                              _INSTALL_FIX) from None  # fmt: skip
    return distributed


def worker_name() -> str:
    """Who runs the current task: the Dask worker's address, else host:pid (in-process)."""
    try:
        from distributed import get_worker  # noqa: PLC0415

        return get_worker().address
    except (ImportError, ValueError):
        return f"local:{socket.gethostname()}:{os.getpid()}"


@dataclass(eq=False)
class _Local:
    """A task of the in-process cluster: run when the runner waits for it."""

    key: str
    fn: Callable[..., Any]
    args: tuple
    state: str = "pending"  # pending | finished | error | cancelled
    value: Any = None


class InProcessCluster:
    """Runs tasks one at a time in this process, when the runner waits for them (no Dask needed)."""

    kind = "in-process"

    def describe(self) -> str:
        return "in-process (no cluster)"

    def workers(self) -> int:
        return 1

    def share(self, obj: Any) -> Any:
        return obj

    def submit(self, fn: Callable[..., Any], *args: Any, key: str) -> _Local:
        return _Local(key, fn, args)

    def wait(self, handles: Sequence[_Local], timeout: float) -> list[_Local]:
        done = [h for h in handles if h.state != "pending"]
        if done:
            return done
        for h in handles:
            if h.state == "pending":
                try:
                    h.value, h.state = h.fn(*h.args), "finished"
                except Exception as exc:  # noqa: BLE001 - handed to the runner, which retries or reports
                    h.value, h.state = exc, "error"
                return [h]
        return []

    def outcome(self, handle: _Local) -> tuple[bool, Any]:
        """(ok, result or exception) of a finished task."""
        return handle.state == "finished", handle.value

    def running(self, handles: Sequence[_Local]) -> int:
        return 0

    def cancel(self, handles: Sequence[_Local]) -> None:
        for h in handles:
            if h.state == "pending":
                h.state = "cancelled"

    def warm_up(self) -> None:
        _import_engine()

    def close(self) -> None:
        pass


class DaskCluster:
    """A Dask client: on a new ``LocalCluster`` (``workers``) or on the scheduler at ``address``."""

    kind = "dask"

    def __init__(
        self,
        address: str | None = None,
        *,
        workers: int | None = None,
        processes: bool = True,
        timeout: float = 30.0,
    ):
        distributed = _require_dask()
        self._cluster = None
        if address:
            try:
                self.client = distributed.Client(address, timeout=timeout, set_as_default=False)
            except (OSError, TimeoutError) as exc:
                raise PerceptLabError(
                    f"cannot reach the Dask scheduler at {address} ({exc})",
                    "start it with 'dask scheduler' (and workers with 'dask worker ADDRESS'), check the address "
                    "and port (default 8786) and that this machine can reach it",
                ) from None
        else:
            n = workers or 1
            if n < 1:
                raise PerceptLabError(f"--workers {n}", "use at least 1 worker")
            self._cluster = distributed.LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=processes,
                dashboard_address=":0",  # a free port, never a clash with a running cluster
                worker_dashboard_address=None,
                silence_logs=logging.ERROR,
            )
            self.client = distributed.Client(self._cluster, set_as_default=False)
        self.address = self.client.scheduler.address

    def describe(self) -> str:
        where = "local cluster" if self._cluster is not None else "scheduler"
        return f"Dask {where} {self.address} ({self.workers()} workers)"

    def workers(self) -> int:
        return len(self.client.nthreads())

    def warm_up(self) -> None:
        """Import torch and the engine on every worker now (a spawned worker takes seconds to)."""
        self.client.run(_import_engine)

    def share(self, obj: Any) -> Any:
        """Send ``obj`` to every worker once; pass the returned future as a task argument."""
        return self.client.scatter(obj, broadcast=True, hash=False)

    def submit(self, fn: Callable[..., Any], *args: Any, key: str):
        return self.client.submit(fn, *args, key=key, pure=False, retries=0)

    def wait(self, handles: Sequence[Any], timeout: float) -> list[Any]:
        """The finished futures among ``handles``, waiting up to ``timeout`` seconds for one."""
        end = time.monotonic() + timeout
        while True:
            done = [h for h in handles if h.done()]
            if done or time.monotonic() >= end:
                return done
            time.sleep(0.02)

    def outcome(self, handle: Any) -> tuple[bool, Any]:
        if handle.status == "finished":
            try:
                return True, handle.result()
            except Exception as exc:  # noqa: BLE001 - lost between 'finished' and fetching
                return False, exc
        if handle.status == "cancelled":
            return False, PerceptLabError(f"task {handle.key} was cancelled by the scheduler")
        return False, handle.exception()

    def running(self, handles: Sequence[Any]) -> int:
        keys = {h.key for h in handles}
        try:
            processing = self.client.processing()
        except Exception:  # noqa: BLE001 - progress only
            return 0
        return sum(1 for ks in processing.values() for k in ks if k in keys)

    def cancel(self, handles: Sequence[Any]) -> None:
        if handles:
            self.client.cancel(list(handles), force=True)

    def close(self) -> None:
        try:
            self.client.close()
        finally:
            if self._cluster is not None:
                self._cluster.close()


def _import_engine() -> str:
    import perceptlab.engine.generate  # noqa: F401, PLC0415

    return worker_name()


def open_cluster(workers: int | None = None, scheduler: str | None = None, *, processes: bool = True):
    """The cluster a job runs on: ``scheduler`` address > ``workers`` local processes > in-process."""
    if scheduler and workers:
        raise PerceptLabError(
            "both --scheduler and --workers given",
            "--workers N starts a local cluster; --scheduler ADDRESS joins a running one: pick one",
        )
    if scheduler:
        return DaskCluster(scheduler)
    if workers:
        return DaskCluster(workers=workers, processes=processes)
    return InProcessCluster()
