"""Thresholds of the percentile (varEmotion) filter for Explore: each classifier's probabilities on the
MNIST images in use are computed once, in a worker, and kept; a new q is then only a percentile away.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal, Slot

from perceptlab._qt.workers import Job
from perceptlab.engine.filters import FilterSettings, with_thresholds
from perceptlab.errors import PerceptLabError


def _reference_probs(names: list[str], images, registry) -> dict:
    from perceptlab.engine.registry import predict_probs  # noqa: PLC0415 - torch work, in the worker

    return {name: predict_probs(name, images, registry) for name in names}


class ReferenceThresholds(QObject):
    """``complete(filters, names)`` gives the filter with thresholds, or None while they are computed;
    ``ready`` is emitted when they are (ask again then), ``failed`` with the error otherwise."""

    ready = Signal()
    failed = Signal(object)

    def __init__(self, session, parent: QObject | None = None):
        super().__init__(parent)
        self.session = session
        self._mnist = None  # the reference set the cached probabilities belong to
        self._probs: dict = {}
        self.job: Job | None = None
        session.modelsChanged.connect(self._forget)  # a user model may have been replaced under its name

    @Slot()
    def _forget(self) -> None:
        self._probs = {}

    def complete(self, filters: FilterSettings, names) -> FilterSettings | None:
        if filters.kind != "percentile":
            return filters
        mnist = self.session.mnist
        if mnist is None:
            raise PerceptLabError("the MNIST images for the percentile filter are still loading",
                                  "wait a moment and try again, or use the paper thresholds")
        if mnist is not self._mnist:  # another MNIST source was chosen: start over
            self._mnist, self._probs = mnist, {}
        names = sorted(set(names))
        missing = [n for n in names if n not in self._probs]
        if not missing:
            return with_thresholds(filters, {n: self._probs[n] for n in names})
        if self.job is None:
            self.job = Job(_reference_probs, missing, mnist.images, self.session.registry, name="thresholds",
                           parent=self)
            self.job.returned.connect(self._on_returned)
            self.job.errored.connect(self._on_error)
            self.job.start()
        return None

    def describe(self, names) -> str:
        n = 0 if self.session.mnist is None else len(self.session.mnist.images)
        return f"Computing the percentile thresholds of {', '.join(sorted(set(names)))} over {n} MNIST images…"

    @Slot(object)
    def _on_returned(self, probs: dict) -> None:
        self.job = None
        if self.session.mnist is self._mnist:
            self._probs.update(probs)
        self.ready.emit()

    @Slot(object)
    def _on_error(self, exc) -> None:
        self.job = None
        self.failed.emit(exc)
