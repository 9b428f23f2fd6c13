"""The in-app experiment runner (:mod:`.runner`) and the dialog that starts it from the main window
(:mod:`.dialog`); the engine is :mod:`perceptlab.experiment.session`."""

from __future__ import annotations

from perceptlab.experiment.session import open_session  # noqa: F401  (the runner's entry point)


def run_until_closed(session, base, *, fullscreen: bool = False, auto_respond: bool = False, auto_seed: int = 0):
    """Show the runner for ``session`` and wait (in a local event loop: the application is never told to
    quit) until it closes; returns the window and the exceptions that stopped it (answers stay on disk)."""
    import sys  # noqa: PLC0415
    import traceback  # noqa: PLC0415

    from PySide6.QtCore import QEventLoop  # noqa: PLC0415

    from perceptlab._qt.app import ensure_app  # noqa: PLC0415
    from perceptlab._qt.experiment.runner import RunnerWindow, show_runner  # noqa: PLC0415

    ensure_app([])
    window = RunnerWindow(session, base, auto_respond=auto_respond, auto_seed=auto_seed)
    loop = QEventLoop()
    window.finishedSession.connect(lambda _p: loop.quit())
    failed: list[BaseException] = []

    def hook(exc_type, exc, tb):  # an error in the runner ends the run
        traceback.print_exception(exc_type, exc, tb)
        failed.append(exc)
        loop.exit(1)

    previous, sys.excepthook = sys.excepthook, hook
    show_runner(window, fullscreen)
    try:
        loop.exec()
    finally:
        sys.excepthook = previous
        session.close()
    return window, failed
