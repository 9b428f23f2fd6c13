"""Errors and notices for the user, in plain words.

A :class:`~perceptlab.errors.PerceptLabError` is something the user can fix: its text (message and
fix) goes into a warning dialog. Anything else is a bug: a critical dialog with the traceback in the
details. Cancelled work is a status message, not a dialog. Tests monkeypatch ``QMessageBox``'s static
functions to record instead of blocking.
"""

from __future__ import annotations

import traceback

from PySide6.QtWidgets import QMessageBox, QWidget

from perceptlab.errors import Cancelled, PerceptLabError


def describe_error(exc: BaseException) -> str:
    """One paragraph for the user."""
    if isinstance(exc, PerceptLabError):
        text = exc.message
        if exc.fix:
            text += f"\n\nWhat to do: {exc.fix}"
        return text
    if isinstance(exc, Cancelled):
        return "Cancelled."
    if isinstance(exc, MemoryError):
        return "Out of memory: try a smaller batch size."
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        return f"A file could not be read or written{where}: {exc.strerror or exc}"
    return f"Unexpected error: {type(exc).__name__}: {exc}"


def show_error(parent: QWidget | None, title: str, exc: BaseException | str) -> None:
    """A warning dialog (user-fixable problem) or a critical one with the traceback (a bug)."""
    if isinstance(exc, str):
        QMessageBox.warning(parent, title, exc)
        return
    if isinstance(exc, (PerceptLabError, OSError, MemoryError)):
        QMessageBox.warning(parent, title, describe_error(exc))
        return
    details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    QMessageBox.critical(
        parent,
        title,
        describe_error(exc) + "\n\nThis is a bug in PerceptLab; please report it with these details:\n\n" + details[-3000:],
    )


def show_info(parent: QWidget | None, title: str, text: str) -> None:
    QMessageBox.information(parent, title, text)


def ask_yes_no(parent: QWidget | None, title: str, text: str) -> bool:
    answer = QMessageBox.question(parent, title, text, QMessageBox.Yes | QMessageBox.No, QMessageBox.Yes)
    return answer == QMessageBox.Yes
