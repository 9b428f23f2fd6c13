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
    from perceptlab.engine.registry import resources_dir  # noqa: PLC0415

    path = resources_dir() / "icons" / "perceptlab.svg"
    return path if path.is_file() else None


def app_icon() -> QIcon:
    path = icon_path()
    return QIcon(str(path)) if path else QIcon()


def ensure_app(argv: list[str] | None = None) -> QApplication:
    """The QApplication (created once, with our names so QSettings finds the right file)."""
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
    configure_pyqtgraph()
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


def run_app(argv: list[str] | None = None) -> int:
    """Open the main window and run the event loop; returns the exit status."""
    app = ensure_app(argv)
    from perceptlab._qt.main_window import MainWindow  # noqa: PLC0415 - import torch after the app exists

    window = MainWindow(settings=QSettings())
    _install_excepthook(window)
    window.show()
    for arg in argv or []:
        if not arg.startswith("-"):
            window.open_paths([Path(arg)])
    return int(app.exec())
