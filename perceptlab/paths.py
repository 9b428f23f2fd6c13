"""Where the shipped files are. Light on purpose (no numpy, no torch): the desktop app asks for its icon
and help guide before the heavy libraries are loaded."""

from __future__ import annotations

from pathlib import Path


def resources_dir() -> Path:
    """The ``resources`` folder: next to the package in a checkout, inside it in a wheel install."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "resources", here.parent / "resources"):
        if (candidate / "weights").is_dir():
            return candidate
    return here.parent / "resources"
