"""Cyclic garbage collection only in the GUI thread.

Python's collector runs in whichever thread happens to allocate when a threshold is crossed. When that
is a worker (fine-tuning, sampling) and the garbage holds a Qt object, the object is destroyed off the
GUI thread: Qt then waits for the GIL the GUI thread needs to finish its own work, and the app hangs or
crashes (seen: a GroupNet worker stuck in ``QObject::~QObject`` from ``gc_collect_main``). So, as
pyqtgraph recommends, automatic collection is switched off once the QApplication exists and a GUI-thread
timer collects by the same generation thresholds instead.

:func:`hold` / :func:`release` let timing-critical screens (the experiment runner's fixation → stimulus →
response) defer collection; without an installed collector they fall back to ``gc.disable``/``gc.enable``.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QCoreApplication, QObject, QTimer

INTERVAL_MS = 250

_collector: _Collector | None = None
_holders: set[int] = set()
_disabled_by_hold = False


class _Collector(QObject):
    def __init__(self, parent: QObject):
        super().__init__(parent)
        self.threshold = gc.get_threshold()
        gc.disable()
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.check)
        self.timer.start(INTERVAL_MS)

    def check(self) -> int:
        """Collect the generations whose counts passed their thresholds (as the automatic collector
        would); nothing while a screen holds collection off. Returns the generation collected or -1.

        Full collections follow CPython's own rule: the whole heap is scanned only when the objects
        that reached the oldest generation since the last full scan exceed a quarter of those that
        survived it. Survivors are frozen (``gc.freeze``) so that the collections in between scan the
        new objects only: a full scan of a heap holding torch and Qt takes about a second, which the
        window must not freeze for."""
        if _holders:
            return -1
        t0, t1, t2 = self.threshold
        c0, c1, c2 = gc.get_count()
        if c0 <= t0:
            return -1
        generation = 2 if (c1 > t1 and c2 > t2) else 1 if c1 > t1 else 0
        if generation == 2 and len(gc.get_objects(generation=2)) > gc.get_freeze_count() / 4:
            gc.unfreeze()
            gc.collect(2)
            gc.freeze()
        else:
            gc.collect(generation)  # generation 2 here scans only what is not frozen
        return generation


def install() -> bool:
    """Switch automatic collection to the GUI-thread timer (once the QApplication exists); True if on."""
    global _collector
    app = QCoreApplication.instance()
    if app is None:
        return False
    if _collector is None:
        _collector = _Collector(app)
        _collector.destroyed.connect(_forget)
    return True


def _forget(*_args) -> None:
    global _collector
    _collector = None
    gc.unfreeze()
    gc.enable()


def installed() -> bool:
    return _collector is not None


def collect_now() -> int:
    """One check of the installed collector now (tests; returns the generation collected or -1)."""
    return _collector.check() if _collector is not None else -1


def hold(owner: object) -> None:
    """No collection until :func:`release` (idempotent per owner)."""
    global _disabled_by_hold
    _holders.add(id(owner))
    if _collector is None and gc.isenabled():
        gc.disable()
        _disabled_by_hold = True


def release(owner: object) -> None:
    global _disabled_by_hold
    _holders.discard(id(owner))
    if not _holders and _disabled_by_hold:
        _disabled_by_hold = False
        gc.enable()
