"""Curate: the library as a thumbnail gallery with a detail pane; accept / reject / tag by key, undo.

Keys in the gallery: A accept, R reject, N back to new, T add a tag, arrows move; every change
applies to all selected stimuli, is committed by the library at once and can be undone (Ctrl+Z) and
redone (Ctrl+Shift+Z or Ctrl+Y).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QItemSelection, QItemSelectionModel, Qt, Signal
from PySide6.QtGui import QKeyEvent, QUndoStack
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFrame,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListView,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from perceptlab._qt.curate import commands, lwise
from perceptlab._qt.curate.detail import StimulusDetail
from perceptlab._qt.curate.export_dialog import ExportDialog, run_export
from perceptlab._qt.curate.model import CELL, SORT_KEYS, LibraryModel, LibraryProxy, ThumbDelegate
from perceptlab._qt.messages import show_error
from perceptlab._qt.widgets.combos import refill_combo
from perceptlab._qt.workers import Job
from perceptlab.data.library import MODES, STATUSES
from perceptlab.errors import PerceptLabError


class GalleryView(QListView):
    """The thumbnail grid; curation keys go to ``handler(key)``."""

    KEYS = {Qt.Key.Key_A: "accept", Qt.Key.Key_R: "reject", Qt.Key.Key_N: "new", Qt.Key.Key_T: "tag"}

    def __init__(self, handler, parent=None):
        super().__init__(parent)
        self._handler = handler
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setMovement(QListView.Movement.Static)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setUniformItemSizes(True)
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(500)
        self.setGridSize(CELL)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setItemDelegate(ThumbDelegate(self))

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        action = self.KEYS.get(Qt.Key(event.key()))
        if action and not (event.modifiers() & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier)):
            self._handler(action)
            event.accept()
            return
        super().keyPressEvent(event)


class CuratePanel(QWidget):
    message = Signal(str)

    def __init__(self, session, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.undo_stack = QUndoStack(self)
        self.last_tag = ""
        self.export_job: Job | None = None
        self.model = LibraryModel(self)
        self.proxy = LibraryProxy(self)
        self.proxy.setSourceModel(self.model)
        self.view = GalleryView(self.curate_key)
        self.view.setModel(self.proxy)
        self.view.selectionModel().currentChanged.connect(lambda *_: self._show_current())
        self.view.selectionModel().selectionChanged.connect(lambda *_: self._update_count())
        self.detail = StimulusDetail()
        self.detail.tagsEdited.connect(self._tags_edited)
        self.detail.noteEdited.connect(self._note_edited)

        # filter / sort bar
        self.pair = QComboBox()
        self.mode = QComboBox()
        self.mode.addItem("all modes", None)
        for m in MODES:
            self.mode.addItem(m, m)
        self.status = QComboBox()
        self.status.addItem("any status", None)
        for s in STATUSES:
            self.status.addItem(s, s)
        self.tag = QComboBox()
        self.min_judge = QDoubleSpinBox()
        self.min_judge.setRange(0.0, 1.0)
        self.min_judge.setSingleStep(0.05)
        self.min_judge.setSpecialValueText("any")
        self.min_judge.setToolTip("minimum judge score")
        self.min_entropy = QDoubleSpinBox()
        self.min_entropy.setRange(0.0, 3.33)
        self.min_entropy.setSingleStep(0.1)
        self.min_entropy.setSpecialValueText("any")
        self.min_entropy.setToolTip("minimum human choice entropy (bits; needs loaded trials)")
        self.sort = QComboBox()
        for key, label in SORT_KEYS.items():
            self.sort.addItem(label, key)
        self.descending = QCheckBox("descending")
        # two rows (what to show, then thresholds and order), so that the gallery and the detail pane fit
        # side by side on a 1366-pixel screen
        bar = QVBoxLayout()
        for items in ((("Pair", self.pair), ("Mode", self.mode), ("Status", self.status), ("Tag", self.tag)),
                      (("Judge ≥", self.min_judge), ("Entropy ≥", self.min_entropy), ("Sort", self.sort))):
            row = QHBoxLayout()
            for label, w in items:
                row.addWidget(QLabel(label))
                row.addWidget(w)
            if items[-1][1] is self.sort:
                row.addWidget(self.descending)
            row.addStretch(1)
            bar.addLayout(row)
        for combo in (self.mode, self.sort):  # the bar must leave room for the detail pane at 1400 px
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(9)

        # actions
        self.accept_button = QPushButton("Accept (A)")
        self.reject_button = QPushButton("Reject (R)")
        self.reset_button = QPushButton("Reset (N)")
        self.tag_button = QPushButton("Tag… (T)")
        self.export_button = QPushButton("Export…")
        self.difficulty_button = QPushButton("Difficulty")
        self.difficulty_button.setToolTip("store the robust model's ground-truth logit of the selected stimuli "
                                          "(all when none is selected)")
        self.enhance_button = QPushButton("Enhance…")
        self.enhance_button.setToolTip("L-WISE: new stimuli by gradient steps on the true class's logit (or harder)")
        self.lwise_job: Job | None = None
        self.count = QLabel()
        actions = QHBoxLayout()
        for b in (self.accept_button, self.reject_button, self.reset_button, self.tag_button):
            actions.addWidget(b)
        actions.addWidget(self.count, 1)
        actions.addWidget(self.difficulty_button)
        actions.addWidget(self.enhance_button)
        actions.addWidget(self.export_button)
        self.accept_button.clicked.connect(lambda: self.curate_key("accept"))
        self.reject_button.clicked.connect(lambda: self.curate_key("reject"))
        self.reset_button.clicked.connect(lambda: self.curate_key("new"))
        self.tag_button.clicked.connect(lambda: self.curate_key("tag"))
        self.export_button.clicked.connect(self.export_dialog)
        self.difficulty_button.clicked.connect(lambda: lwise.compute_difficulty_job(self, self.selected_ids()))
        self.enhance_button.clicked.connect(lambda: lwise.enhance_dialog(self))

        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addLayout(bar)
        ll.addWidget(self.view, 1)
        ll.addLayout(actions)
        self.splitter = QSplitter()
        self.splitter.addWidget(left)
        # the detail grows with what is known of a stimulus (observers, difficulty, humans): it scrolls
        # rather than making the window taller than a laptop screen
        detail_scroll = QScrollArea()
        detail_scroll.setWidget(self.detail)
        detail_scroll.setWidgetResizable(True)
        detail_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.splitter.addWidget(detail_scroll)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setSizes([960, 440])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.splitter)

        for combo in (self.pair, self.mode, self.status, self.tag):
            combo.currentIndexChanged.connect(self.apply_filters)
        for spin in (self.min_judge, self.min_entropy):
            spin.valueChanged.connect(self.apply_filters)
        self.sort.currentIndexChanged.connect(self.apply_sort)
        self.descending.toggled.connect(self.apply_sort)
        session.libraryChanged.connect(self.reload)
        session.stimuliAdded.connect(self._stimuli_added)
        session.analysisChanged.connect(self._analysis_changed)
        self.reload()

    # ---- loading

    def reload(self) -> None:
        self.undo_stack.clear()
        self.model.set_library(self.session.library)
        self.model.set_entropy(self.session.entropy_by_library_id())
        self._refresh_choices()
        self.apply_sort()
        if self.proxy.rowCount():
            self.view.setCurrentIndex(self.proxy.index(0, 0))
        self._show_current()

    def _stimuli_added(self, ids: list[str]) -> None:
        self.model.add_ids(ids)
        self._refresh_choices()
        self.apply_filters()

    def _analysis_changed(self) -> None:
        self.model.set_entropy(self.session.entropy_by_library_id())
        self.apply_sort()
        self._show_current()

    def _refresh_choices(self) -> None:
        """Pair and tag filter choices from the records."""
        pairs = sorted({(min(r.class_a, r.class_b), max(r.class_a, r.class_b)) for r in self.model.records
                        if r.class_a is not None and r.class_b is not None})
        tags = sorted({t for r in self.model.records for t in r.tags})
        for combo, items, label in ((self.pair, pairs, "all pairs"), (self.tag, tags, "any tag")):
            texts = [f"{it[0]}-{it[1]}" if isinstance(it, tuple) else it for it in items]
            # plain text data: tuples do not survive QVariant
            refill_combo(combo, [(label, None), *((t, t) for t in texts)])

    # ---- filtering and sorting

    def apply_filters(self) -> None:
        pair = self.pair.currentData()
        self.proxy.set_filters(
            pair=tuple(int(c) for c in pair.split("-")) if pair else None, mode=self.mode.currentData(), status=self.status.currentData(),
            tag=self.tag.currentData(),
            min_judge=self.min_judge.value() if self.min_judge.value() > 0 else None,
            min_entropy=self.min_entropy.value() if self.min_entropy.value() > 0 else None,
        )
        self._update_count()

    def apply_sort(self) -> None:
        current = self.view.currentIndex().data()
        self.model.sort_records(self.sort.currentData(), self.descending.isChecked())
        if current is not None:
            row = self.model.row_of(current)
            if row is not None:
                self.view.setCurrentIndex(self.proxy.mapFromSource(self.model.index(row)))
        self._update_count()

    def _update_count(self) -> None:
        lib = self.session.library
        if lib is None:
            self.count.setText("No library open: open or create one from the File menu.")
            return
        s = {k: 0 for k in STATUSES}
        for r in self.model.records:
            s[r.status] = s.get(r.status, 0) + 1
        sel = len(self.selected_ids())
        self.count.setText(f"{self.proxy.rowCount()} shown of {len(self.model.records)} — "
                           f"{s['accepted']} accepted, {s['rejected']} rejected, {s['new']} new"
                           + (f"; {sel} selected" if sel > 1 else ""))

    # ---- selection

    def selected_ids(self) -> list[str]:
        rows = sorted({i.row() for i in self.view.selectionModel().selectedIndexes()})
        ids = [self.proxy.index(r, 0).data() for r in rows]
        if not ids and self.view.currentIndex().isValid():
            ids = [self.view.currentIndex().data()]
        return ids

    def select_ids(self, ids: list[str]) -> None:
        sel = self.view.selectionModel()
        selection = QItemSelection()  # one selection change, not one per id (thousands stay fast)
        first = None
        for sid in ids:
            row = self.model.row_of(sid)
            if row is None:
                continue
            idx = self.proxy.mapFromSource(self.model.index(row))
            if idx.isValid():
                selection.select(idx, idx)
                first = first or idx
        sel.select(selection, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        if first is not None:
            sel.setCurrentIndex(first, QItemSelectionModel.SelectionFlag.NoUpdate)

    def _show_current(self) -> None:
        idx = self.view.currentIndex()
        lib = self.session.library
        if not idx.isValid() or lib is None:
            self.detail.show_record(None)
            return
        rec = self.model.record(self.proxy.mapToSource(idx).row())
        choices = self.session.choices_by_library_id(rec.id)
        self.detail.show_record(rec, lib.images_dir / f"{rec.id}.png", None if choices is None else choices[0])

    # ---- curation

    def _changed(self, ids: list[str]) -> None:
        self.model.refresh_ids(ids)
        self._update_count()
        self._show_current()
        self.session.stimuliChanged.emit(ids)

    def _push(self, make) -> bool:
        lib = self.session.library
        if lib is None:
            self.message.emit("No library open.")
            return False
        try:
            cmd = make(lib)
        except PerceptLabError as exc:
            show_error(self, "Curation failed", exc)
            return False
        self.undo_stack.push(cmd)
        return True

    def curate_key(self, action: str) -> None:
        ids = self.selected_ids()
        if not ids:
            self.message.emit("Select stimuli first.")
            return
        if action in ("accept", "reject", "new"):
            status = {"accept": "accepted", "reject": "rejected", "new": "new"}[action]
            if self._push(lambda lib: commands.set_status(lib, ids, status, self._changed)):
                self.message.emit(f"{len(ids)} stimul{'us' if len(ids) == 1 else 'i'} {status}.")
                if len(ids) == 1:
                    self._advance()
        elif action == "tag":
            tag = self.ask_tag()
            if tag:
                if self._push(lambda lib: commands.add_tag(lib, ids, tag, self._changed)):
                    self.last_tag = tag
                    self._refresh_choices()
                    self.message.emit(f"Tagged {len(ids)} with '{tag}'.")

    def ask_tag(self) -> str:
        tag, ok = QInputDialog.getText(self, "Tag stimuli", "Tag:", text=self.last_tag)
        self.refocus()
        return tag.strip() if ok else ""

    def refocus(self) -> None:
        """Give the keyboard back to the gallery after a dialog: without this, where no window manager
        re-activates the main window (or focus went to the dialog's parent), A / R / Ctrl+Z went nowhere
        until a tile was clicked."""
        self.window().activateWindow()
        self.view.setFocus(Qt.FocusReason.OtherFocusReason)

    def _advance(self) -> None:
        """Move to the next tile after a single-stimulus decision (a status filter may hide the current one)."""
        idx = self.view.currentIndex()
        row = idx.row() if idx.isValid() else -1
        if self.proxy.status is not None:  # the decided stimulus may have left the filtered view
            self.apply_filters()
            nxt = self.proxy.index(min(row, self.proxy.rowCount() - 1), 0)
        else:
            nxt = self.proxy.index(row + 1, 0) if row + 1 < self.proxy.rowCount() else idx
        if nxt.isValid():
            self.view.setCurrentIndex(nxt)

    def _tags_edited(self, sid: str, tags: list[str]) -> None:
        if self._push(lambda lib: commands.set_tags(lib, sid, tags, self._changed)):
            self._refresh_choices()

    def _note_edited(self, sid: str, note: str) -> None:
        self._push(lambda lib: commands.set_note(lib, sid, note, self._changed))

    # ---- export

    def export_dialog(self, default_dir: Path | None = None) -> None:
        lib = self.session.library
        if lib is None:
            show_error(self, "Export", PerceptLabError("no library is open", "open a library first"))
            return
        dlg = ExportDialog(lib, self, default_dir)
        if dlg.exec():
            self.export(dlg.request())

    def export(self, req) -> Job:
        lib = self.session.library
        job = Job(run_export, lib, req, name="export", parent=self)
        job.returned.connect(lambda path: self.message.emit(f"Exported to {path}"))
        job.errored.connect(lambda exc: show_error(self, "Export failed", exc))
        self.export_job = job.start()
        self.message.emit(f"Exporting to {req.folder}…")
        return job

    def shutdown(self) -> None:
        pass
