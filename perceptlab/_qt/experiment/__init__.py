"""The in-app experiment runner (:mod:`.runner`) and the dialog that starts it from the main window
(:mod:`.dialog`); the engine is :mod:`perceptlab.experiment.session`."""

from __future__ import annotations

from perceptlab.experiment.session import open_session  # noqa: F401  (the runner's entry point)
