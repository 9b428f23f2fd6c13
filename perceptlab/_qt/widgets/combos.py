"""Refilling a QComboBox whose choices changed (models added or renamed, new records) while keeping the
user's choice where it still exists, without emitting a change for the refill itself."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from PySide6.QtWidgets import QComboBox


def refill_combo(
    combo: QComboBox, items: Iterable[tuple[str, Any]], *, preferred: Any = None, default: int = 0
) -> None:
    """Replace the (label, data) items of ``combo``. The current data stays selected when it is still
    there; else ``preferred`` (a data value) when present; else item ``default`` (clamped to the last
    item; none when empty). Signals are blocked during the refill."""
    current = combo.currentData()
    combo.blockSignals(True)
    try:
        combo.clear()
        for label, data in items:
            combo.addItem(label, data)
        i = combo.findData(current) if current is not None else -1
        if i < 0 and preferred is not None:
            i = combo.findData(preferred)
        if i < 0:
            i = min(default, combo.count() - 1)
        combo.setCurrentIndex(i)
    finally:
        combo.blockSignals(False)
