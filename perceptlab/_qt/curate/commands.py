"""Undoable curation changes (QUndoStack) built on the library's returned previous values.

Each command performs its change when it is created (so an error reaches the user before anything is
pushed); ``redo`` repeats it after an undo, ``undo`` hands the previous values back to
``StimulusLibrary.revert``. Every step is committed by the library at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtGui import QUndoCommand

from perceptlab.data.library import StimulusLibrary


class CurationCommand(QUndoCommand):
    def __init__(self, library: StimulusLibrary, field: str, apply: Callable[[], dict[str, Any]], text: str,
                 on_change: Callable[[list[str]], None]):
        super().__init__(text)
        self.library = library
        self.field = field
        self._apply = apply
        self._on_change = on_change
        self.previous = apply()  # {id: previous value}; raises PerceptLabError on failure
        self.ids = list(self.previous)
        self._first = True
        on_change(self.ids)

    def redo(self) -> None:
        if self._first:  # the change was made in __init__
            self._first = False
            return
        self.previous = self._apply()
        self._on_change(self.ids)

    def undo(self) -> None:
        self.library.revert(self.field, self.previous)
        self._on_change(self.ids)


def set_status(library: StimulusLibrary, ids: list[str], status: str, on_change) -> CurationCommand:
    n = len(ids)
    return CurationCommand(library, "status", lambda: library.set_status(ids, status),
                           f"{'accept' if status == 'accepted' else 'reject' if status == 'rejected' else 'reset'} "
                           f"{n} stimul{'us' if n == 1 else 'i'}", on_change)


def add_tag(library: StimulusLibrary, ids: list[str], tag: str, on_change) -> CurationCommand:
    return CurationCommand(library, "tags", lambda: library.add_tags(ids, tag), f"tag {len(ids)} with '{tag}'", on_change)


def remove_tag(library: StimulusLibrary, ids: list[str], tag: str, on_change) -> CurationCommand:
    return CurationCommand(library, "tags", lambda: library.remove_tags(ids, tag), f"remove tag '{tag}'", on_change)


def set_tags(library: StimulusLibrary, stimulus_id: str, tags: list[str], on_change) -> CurationCommand:
    return CurationCommand(library, "tags", lambda: {stimulus_id: library.set_tags(stimulus_id, tags)},
                           f"edit tags of {stimulus_id}", on_change)


def set_note(library: StimulusLibrary, stimulus_id: str, note: str, on_change) -> CurationCommand:
    return CurationCommand(library, "note", lambda: {stimulus_id: library.set_note(stimulus_id, note)},
                           f"edit note of {stimulus_id}", on_change)
