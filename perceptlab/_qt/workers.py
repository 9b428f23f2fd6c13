"""Long work off the GUI thread: engine generators (and plain functions) run in a QThread.

``Job(fn, *args)`` calls ``fn(*args)`` in a fresh QThread. When the call returns a generator (the
engine's long work: sampling, generation jobs), the job iterates it and emits every record it yields
through ``yielded``; ``cancel()`` sets a flag that is checked before and after each ``next()``, so
a cancel takes effect at the next yield and the generator is closed (its ``finally`` blocks run in the
worker thread). Exactly one of ``returned`` / ``errored`` / ``cancelled`` is emitted, then ``finished``.

Signals are delivered to receivers in the GUI thread through queued connections: connect them to
methods of QObjects (widgets, controllers) so that Qt knows the receiver's thread. Every running job
is listed in ``active_jobs()``; ``shutdown_all()`` cancels and joins them (the main window calls it
when it closes, so a window closed mid-run exits cleanly).
"""

from __future__ import annotations

import inspect
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QEventLoop, QObject, Qt, QThread, QTimer, Signal, Slot

from perceptlab.errors import Cancelled

_ACTIVE: set[Job] = set()


class _Runner(QObject):
    """Lives in the worker thread; iterates the generator."""

    yielded = Signal(object)
    returned = Signal(object)
    errored = Signal(object)
    cancelled = Signal()
    finished = Signal()

    def __init__(self, fn: Callable[..., Any], args: tuple, kwargs: dict, abort: threading.Event):
        super().__init__()
        self._fn, self._args, self._kwargs = fn, args, kwargs
        self._abort = abort

    @Slot()
    def run(self) -> None:
        gen = None
        try:
            result = self._fn(*self._args, **self._kwargs)
            if inspect.isgenerator(result):
                gen = result
                while True:
                    if self._abort.is_set():
                        raise Cancelled
                    try:
                        record = next(gen)
                    except StopIteration as stop:
                        result = stop.value
                        break
                    if self._abort.is_set():
                        raise Cancelled
                    self.yielded.emit(record)
            if self._abort.is_set():
                raise Cancelled
            self.returned.emit(result)
        except Cancelled:
            self.cancelled.emit()
        except BaseException as exc:  # noqa: BLE001 - every failure goes to the GUI as a message
            self.errored.emit(exc)
        finally:
            if gen is not None:
                try:
                    gen.close()
                except BaseException as exc:  # noqa: BLE001
                    self.errored.emit(exc)
            self.finished.emit()


class Job(QObject):
    """One piece of long work in its own QThread; see the module docstring."""

    yielded = Signal(object)
    returned = Signal(object)
    errored = Signal(object)
    cancelled = Signal()
    finished = Signal()

    def __init__(self, fn: Callable[..., Any], *args: Any, name: str = "", parent: QObject | None = None, **kwargs: Any):
        super().__init__(parent)
        self.name = name or getattr(fn, "__name__", "job")
        self._abort = threading.Event()
        self._thread = QThread()
        self._thread.setObjectName(f"perceptlab-{self.name}")
        self._runner = _Runner(fn, args, kwargs, self._abort)
        self._runner.moveToThread(self._thread)
        self._thread.started.connect(self._runner.run)
        # Relay through this object (which lives in the GUI thread): receivers get queued calls.
        self._runner.yielded.connect(self._on_yielded)
        self._runner.returned.connect(self._on_returned)
        self._runner.errored.connect(self._on_errored)
        self._runner.cancelled.connect(self._on_cancelled)
        # quit() is thread-safe: call it directly from the worker, not via the (possibly blocked) GUI thread
        self._runner.finished.connect(self._thread.quit, Qt.ConnectionType.DirectConnection)
        self._thread.finished.connect(self._on_thread_finished)
        self._done = False
        self.cancel_requested_at: float | None = None
        self.finished_at: float | None = None

    # ---- control

    def start(self) -> Job:
        _ACTIVE.add(self)
        self._thread.start()
        return self

    def cancel(self) -> None:
        """Ask the work to stop at its next yield."""
        if not self._abort.is_set():
            self.cancel_requested_at = time.perf_counter()
            self._abort.set()

    @property
    def cancel_requested(self) -> bool:
        return self._abort.is_set()

    def is_running(self) -> bool:
        return not self._done

    def wait(self, timeout_ms: int = 30_000) -> bool:
        """Block until the worker thread has ended (used on shutdown); True when it did."""
        if self._done:
            return True
        deadline = time.perf_counter() + timeout_ms / 1000
        while not self._thread.isFinished():  # poll: time.sleep releases the GIL the worker needs
            if not self._thread.isRunning() and not self._thread.isFinished():
                return True  # never started
            if time.perf_counter() > deadline:
                return False
            time.sleep(0.002)
        return self._thread.wait(1000)

    def disconnect_all(self) -> None:
        """Drop every receiver (used on shutdown, before the receivers are destroyed)."""
        with warnings.catch_warnings():  # PySide warns when a signal has no receiver to drop
            warnings.simplefilter("ignore", RuntimeWarning)
            for sig in (self.yielded, self.returned, self.errored, self.cancelled, self.finished):
                try:
                    sig.disconnect()
                except (RuntimeError, TypeError):
                    pass

    # ---- relays (GUI thread)

    @Slot(object)
    def _on_yielded(self, record: object) -> None:
        if not self._abort.is_set():
            self.yielded.emit(record)

    @Slot(object)
    def _on_returned(self, value: object) -> None:
        self.returned.emit(value)

    @Slot(object)
    def _on_errored(self, exc: object) -> None:
        self.errored.emit(exc)

    @Slot()
    def _on_cancelled(self) -> None:
        self.cancelled.emit()

    @Slot()
    def _on_thread_finished(self) -> None:
        self._done = True
        self.finished_at = time.perf_counter()
        _ACTIVE.discard(self)
        self.finished.emit()


def run_job(fn: Callable[..., Any], *args: Any, name: str = "", **kwargs: Any) -> Job:
    """Create and start a job."""
    return Job(fn, *args, name=name, **kwargs).start()


def active_jobs() -> list[Job]:
    return list(_ACTIVE)


def shutdown_all(timeout_ms: int = 60_000) -> bool:
    """Cancel every running job, drop its receivers and wait for its thread; True when all ended."""
    jobs = active_jobs()
    for job in jobs:
        job.disconnect_all()
        job.cancel()
    ok = True
    for job in jobs:
        ok = job.wait(timeout_ms) and ok
        _ACTIVE.discard(job)
    return ok


def wait_ms(ms: int) -> None:
    """Run the event loop for ``ms`` milliseconds (for scripts such as the screenshot tool).

    Never call the static ``QCoreApplication.processEvents()`` in a loop: with PySide6 6.12 on
    Python 3.11 every call drops one reference to ``None`` and the interpreter aborts after a few
    thousand calls ("none_dealloc"). A local ``QEventLoop`` is safe.
    """
    loop = QEventLoop()
    QTimer.singleShot(max(0, int(ms)), loop.quit)
    loop.exec()


def wait_until(condition: Callable[[], bool], timeout_ms: int = 60_000, step_ms: int = 20) -> bool:
    """Run the event loop until ``condition()`` is true or the time is up; returns the condition."""
    deadline = time.perf_counter() + timeout_ms / 1000
    while not condition():
        if time.perf_counter() > deadline:
            return bool(condition())
        wait_ms(step_ms)
    return True
