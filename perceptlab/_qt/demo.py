"""Where the shipped demo project is, and where the app keeps its writable copy."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QStandardPaths

from perceptlab.data.demo import DemoProject, find_demo, install_demo
from perceptlab.paths import resources_dir


def shipped_demo_dir() -> Path:
    """``resources/demo`` (built by ``perceptlab demo-project``; may be absent)."""
    return resources_dir() / "demo"


def user_data_dir() -> Path:
    """The app's writable data folder, ``perceptlab`` in the platform's data location
    (``~/.local/share/perceptlab`` on Linux, beside the user model folder ``models/``)."""
    loc = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.GenericDataLocation)
    return (Path(loc) if loc else Path.home() / ".local" / "share") / "perceptlab"


def install_shipped_demo(source: Path | None, data_dir: Path) -> DemoProject | None:
    """Copy the demo project ``source`` into ``data_dir/demo`` (once) and return the copy; None when
    there is no demo project to copy. Never writes into ``source``."""
    src = find_demo(source)
    if src is None:
        return None
    return install_demo(src.root, data_dir / "demo")
