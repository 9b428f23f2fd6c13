"""Refilling a QComboBox whose choices changed (models added or renamed, new records) while keeping the
user's choice where it still exists, without emitting a change for the refill itself."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from PySide6.QtCore import Qt
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


# ---- classifier pickers: grouped (built-in / GroupNets / IndivNets) and filtered by typing

GROUP_TITLES = (("built-in", "built-in"), ("group", "GroupNets (fine-tuned on all participants)"),
                ("individual", "IndivNets (one participant each)"), ("other", "other user models"))


def classifier_groups(registry) -> list[tuple[str, list[str]]]:
    """The registry's classifiers as (title, names) groups: the built-in zoo, GroupNets, IndivNets, other
    user models (empty groups left out)."""
    from perceptlab.align.store import list_models  # noqa: PLC0415

    entries = registry.entries()
    levels = {m.name: m.level for m in list_models(registry.user_dir)}
    buckets: dict[str, list[str]] = {key: [] for key, _ in GROUP_TITLES}
    for name in registry.names("classifier"):
        if entries[name].builtin:
            buckets["built-in"].append(name)
        else:
            buckets[levels.get(name) if levels.get(name) in ("group", "individual") else "other"].append(name)
    return [(title, buckets[key]) for key, title in GROUP_TITLES if buckets[key]]


def refill_grouped(combo: QComboBox, groups: Iterable[tuple[str, list[str]]], *, preferred: Any = None,
                   default: int = 0) -> None:
    """Like :func:`refill_combo` with a header row (bold, not selectable) above each group; ``default``
    counts models, not rows. With one group only, no headers."""
    from PySide6.QtGui import QFont, QStandardItem, QStandardItemModel  # noqa: PLC0415

    groups = [(t, list(n)) for t, n in groups]
    headers = len(groups) > 1
    current = combo.currentData()
    names = [n for _, ns in groups for n in ns]
    combo.blockSignals(True)
    try:
        model = QStandardItemModel(combo)
        for title, ns in groups:
            if headers:
                head = QStandardItem(title)
                head.setFlags(head.flags() & ~(Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEnabled))
                font = QFont(combo.font())
                font.setBold(True)
                head.setFont(font)
                model.appendRow(head)
            for n in ns:
                item = QStandardItem(("    " if headers else "") + n if not combo.isEditable() else n)
                item.setData(n, Qt.ItemDataRole.UserRole)
                item.setToolTip(f"{title}: {n}")
                model.appendRow(item)
        combo.setModel(model)
        set_picker_model(combo)
        pick = current if current in names else preferred if preferred in names else (
            names[min(default, len(names) - 1)] if names else None)
        combo.setCurrentIndex(combo.findData(pick) if pick is not None else -1)
    finally:
        combo.blockSignals(False)


def make_filterable(combo: QComboBox) -> None:
    """Type to filter: the combo becomes editable and a popup lists the models whose name contains what
    was typed; leaving the field without choosing restores the current model's name."""
    from PySide6.QtWidgets import QCompleter  # noqa: PLC0415

    combo.setEditable(True)
    combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
    completer = QCompleter(combo.model(), combo)
    completer.setFilterMode(Qt.MatchFlag.MatchContains)
    completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
    completer.setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
    combo.setCompleter(completer)

    def chosen(text: str) -> None:
        i = combo.findData(text)
        if i >= 0:  # a model, not a group header
            combo.setCurrentIndex(i)

    completer.activated[str].connect(chosen)

    def restore() -> None:
        i = combo.currentIndex()
        if i >= 0 and combo.lineEdit().text() != combo.itemText(i):
            combo.lineEdit().setText(combo.itemText(i))

    combo.lineEdit().editingFinished.connect(restore)
    # the completer follows the model when the combo gets a new one (refill_grouped)
    combo._filter_completer = completer  # noqa: SLF001 - keep a reference


def set_picker_model(combo: QComboBox) -> None:
    """After :func:`refill_grouped` replaced the model of a filterable combo: point its completer at it."""
    completer = getattr(combo, "_filter_completer", None)
    if completer is not None:
        completer.setModel(combo.model())
