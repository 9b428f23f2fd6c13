"""Application start-up: ``run_app(argv)`` is what ``perceptlab`` (no arguments) calls."""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

ORGANIZATION = "PerceptLab"
APPLICATION = "PerceptLab"
_configured = False


def configure_pyqtgraph() -> None:
    """Global pyqtgraph options, set once: row-major images (numpy (rows, cols)), antialiased lines."""
    global _configured
    if _configured:
        return
    import pyqtgraph as pg  # noqa: PLC0415

    pg.setConfigOptions(imageAxisOrder="row-major", antialias=True, background="w", foreground="k")
    _configured = True


GIL_SWITCH_S = 0.001


def reserve_gui_core(device) -> None:
    """Keep the window responsive while a worker thread samples.

    - Python hands the GIL between threads every ``sys.getswitchinterval()`` (5 ms by default). Every
      paint of a tile and every slot is a Python call that must first get the GIL back from the busy
      worker, so a repaint of a grid of tiles could wait 5 ms per tile; 1 ms keeps it short.
    - On the CPU, sampling uses one thread fewer than there are cores, so that the window always has a
      core to repaint on (on a busy 2-core machine two torch threads also fight each other and the
      sampler runs many times slower).
    """
    if sys.getswitchinterval() > GIL_SWITCH_S:
        sys.setswitchinterval(GIL_SWITCH_S)
    if getattr(device, "type", str(device)) != "cpu":
        return
    import torch  # noqa: PLC0415

    cores = os.cpu_count() or 1
    if cores > 1 and torch.get_num_threads() >= cores:
        torch.set_num_threads(cores - 1)


def icon_path() -> Path | None:
    from perceptlab.paths import resources_dir  # noqa: PLC0415

    path = resources_dir() / "icons" / "perceptlab.svg"
    return path if path.is_file() else None


def app_icon() -> QIcon:
    path = icon_path()
    return QIcon(str(path)) if path else QIcon()


def ensure_app(argv: list[str] | None = None) -> QApplication:
    """The QApplication (created once, with our names so QSettings finds the right file)."""
    app = _create_app(argv)
    configure_pyqtgraph()
    return app


def _create_app(argv: list[str] | None = None) -> QApplication:
    app = QApplication.instance()
    if app is None:
        QApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
        app = QApplication([sys.argv[0] if sys.argv else "perceptlab", *(argv or [])])
        app.setOrganizationName(ORGANIZATION)
        app.setApplicationName(APPLICATION)
        app.setApplicationDisplayName("PerceptLab")
        app.setDesktopFileName("perceptlab")  # packaging/perceptlab.desktop
        from perceptlab import __version__  # noqa: PLC0415

        app.setApplicationVersion(__version__)
        app.setWindowIcon(app_icon())
    from perceptlab._qt import gui_gc  # noqa: PLC0415

    gui_gc.install()  # Qt objects must never be collected (destroyed) in a worker thread
    return app


def _install_excepthook(window) -> None:
    """Exceptions escaping a slot become a dialog instead of a silent traceback on stderr."""
    previous = sys.excepthook

    def hook(exc_type, exc, tb):
        traceback.print_exception(exc_type, exc, tb)
        try:
            from perceptlab._qt.messages import show_error  # noqa: PLC0415

            show_error(window, "PerceptLab", exc)
        except Exception:  # noqa: BLE001
            previous(exc_type, exc, tb)

    sys.excepthook = hook


def _print_platform_hint(msg_type, _context, message) -> None:
    """Qt's messages while the platform plugin loads, plus the fix when it cannot (Qt aborts next)."""
    from PySide6.QtCore import QtMsgType  # noqa: PLC0415

    print(message, file=sys.stderr)
    if msg_type == QtMsgType.QtFatalMsg:
        from perceptlab._qt.platform_check import fatal_hint  # noqa: PLC0415

        hint = fatal_hint(message)
        if hint:
            print(hint, file=sys.stderr, flush=True)


def _paint_now(app, window, timeout_s: float = 3.0) -> None:
    """Wait until the window system has exposed ``window``, then paint it at once: before the event loop
    runs the queued start-up work (data loading, analysis), so the first frame is never black."""
    import time  # noqa: PLC0415

    deadline = time.monotonic() + timeout_s
    handle = window.windowHandle()
    while handle is not None and not handle.isExposed() and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.005)
    window.repaint()
    app.processEvents()


def run_app(argv: list[str] | None = None) -> int:
    """Open the main window and run the event loop; returns the exit status.

    The window shows at once as a splash screen with a progress bar; torch, diffusers, the models and the
    panels load after it has painted (about 5 s of imports on a 2-core machine)."""
    from PySide6.QtCore import qInstallMessageHandler  # noqa: PLC0415

    previous = qInstallMessageHandler(_print_platform_hint)
    app = _create_app(argv)
    qInstallMessageHandler(previous)
    from perceptlab._qt.splash import Splash  # noqa: PLC0415

    splash = Splash()
    splash.show_painted(app)

    def stage_torch():
        import torch  # noqa: F401, PLC0415

    def stage_models():
        import perceptlab.engine.registry  # noqa: F401, PLC0415

    def stage_panels():
        configure_pyqtgraph()
        import perceptlab._qt.main_window  # noqa: F401, PLC0415

    for text, stage in (("Loading PyTorch…", stage_torch), ("Loading diffusers and the model registry…", stage_models),
                        ("Loading plots and panels…", stage_panels)):
        splash.step(text)
        stage()
    splash.step("Opening the window…")
    from perceptlab._qt.main_window import MainWindow  # noqa: PLC0415 - import torch after the app exists

    window = MainWindow(settings=QSettings(), start=False)
    _install_excepthook(window)
    window.show()
    _paint_now(app, window)
    splash.finish(window)
    window.start()  # the demo or last library, MNIST and the model warm-up: after the first frame
    for arg in argv or []:
        if not arg.startswith("-"):
            window.open_paths([Path(arg)])
    return int(app.exec())
