"""The detail pane of one stimulus: large image, every zoo classifier's probabilities, judge score,
settings and provenance, human choices when trials are loaded, editable tags and note."""

from __future__ import annotations

import json

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QFormLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from perceptlab._qt.curate.model import pair_text
from perceptlab._qt.widgets.images import pixmap_from_file, placeholder
from perceptlab.analysis.choices import entropy_bits
from perceptlab.analysis.transfer import describe as describe_observers
from perceptlab.data.difficulty import describe as describe_lwise
from perceptlab.data.library import Stimulus

BIG = 224


def _prob_color(p: float) -> QColor:
    v = int(255 - 170 * max(0.0, min(1.0, p)))
    return QColor(v, v, 255)


class StimulusDetail(QWidget):
    tagsEdited = Signal(str, list)  # id, tags
    noteEdited = Signal(str, str)  # id, note

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.record: Stimulus | None = None
        self.image = QLabel()
        self.image.setFixedSize(BIG, BIG)
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.title = QLabel("No stimulus selected")
        self.title.setWordWrap(True)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.probs = QTableWidget(11, 0)  # rows: classes 0-9 and entropy; columns: models (+ humans)
        self.probs.setVerticalHeaderLabels([*map(str, range(10)), "H bits"])
        self.probs.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.probs.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.probs.verticalHeader().setDefaultSectionSize(18)
        self.probs.horizontalHeader().setMinimumHeight(34)
        self.probs.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.probs.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._fit_table()
        self.probs.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.probs.setMinimumHeight(120)
        self.probs.setToolTip("probabilities of every zoo classifier (and the human choices, when trials are loaded)")
        form = QFormLayout()
        self.tags = QLineEdit()
        self.tags.setPlaceholderText("tags, separated by commas")
        self.tags.editingFinished.connect(self._tags_done)
        self.note = QLineEdit()
        self.note.setPlaceholderText("note")
        self.note.editingFinished.connect(self._note_done)
        form.addRow("Tags", self.tags)
        form.addRow("Note", self.note)
        self.provenance = QPlainTextEdit()
        self.provenance.setReadOnly(True)
        self.provenance.setMinimumHeight(100)
        layout = QVBoxLayout(self)
        layout.addWidget(self.image, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(self.title)
        layout.addWidget(self.probs)
        layout.addLayout(form)
        layout.addWidget(QLabel("Settings and provenance"))
        layout.addWidget(self.provenance, 1)
        self.show_record(None)

    def show_record(self, rec: Stimulus | None, image_path=None, choices: np.ndarray | None = None) -> None:
        self.record = rec
        enabled = rec is not None
        self.tags.setEnabled(enabled)
        self.note.setEnabled(enabled)
        if rec is None:
            self.image.setPixmap(placeholder(BIG, "no stimulus"))
            self.title.setText("No stimulus selected")
            self.probs.setColumnCount(0)
            self.tags.setText("")
            self.note.setText("")
            self.provenance.setPlainText("")
            return
        ok = image_path is not None and image_path.is_file()
        self.image.setPixmap(pixmap_from_file(image_path, BIG) if ok else placeholder(BIG, "image missing"))
        pair = pair_text(rec) or "pair —"
        who = rec.classifier or "—"
        if rec.classifier2:
            who += f" vs {rec.classifier2}"
        judge = f"{rec.judge:.3f}" if rec.judge is not None else "—"
        verdict = "passed" if rec.passed else (f"rejected: {rec.reason}" if rec.passed is False else "not judged")
        pa = f"{rec.p_a:.3f}" if rec.p_a is not None else "—"
        pb = f"{rec.p_b:.3f}" if rec.p_b is not None else "—"
        if rec.classifier2 and rec.class_a is not None:  # controversial: p_a and p_b come from two models
            probs = f"{rec.classifier}: p({rec.class_a}) = {pa}, {rec.classifier2}: p({rec.class_b}) = {pb}"
        elif rec.class_a is not None and rec.class_b is not None:
            probs = f"p({rec.class_a}) = {pa}, p({rec.class_b}) = {pb}"
        elif rec.class_a is not None:
            probs = f"p({rec.class_a}) = {pa}"
        else:
            probs = f"p_a = {pa}, p_b = {pb}"
        self.title.setText(
            f"<b>{rec.id}</b> — <b>{rec.status}</b><br>{rec.mode}, {pair}, "
            f"guided by {who}<br>"
            f"{probs}, judge score {judge}<br>filter: {verdict}"
            + (f"<br>{observed}" if (observed := describe_observers(rec.probs, rec.class_a, rec.class_b)) else "")
            + (f"<br>{lwise}" if (lwise := describe_lwise(rec)) else "")
        )
        rows = list(rec.probs.items())
        if choices is not None and np.sum(choices) > 0:
            rows.append((f"humans\nn={int(np.sum(choices))}", list(np.asarray(choices, float) / np.sum(choices))))
        self.probs.setColumnCount(len(rows))
        self.probs.setHorizontalHeaderLabels([name for name, _ in rows])
        # every column as wide as its header ('cornet', 'humans n=21') or its numbers: never cut
        head = self.probs.horizontalHeader()
        head.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        for c, (_, values) in enumerate(rows):
            values = np.asarray(values, dtype=float)
            for r, p in enumerate(values[:10]):
                item = QTableWidgetItem(f"{p:.2f}")
                item.setBackground(_prob_color(p))
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                self.probs.setItem(r, c, item)
            h = QTableWidgetItem(f"{float(entropy_bits(values[None, :10])[0]):.2f}")
            h.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
            self.probs.setItem(10, c, h)
        self._fit_table()
        self.tags.setText(", ".join(rec.tags))
        self.note.setText(rec.note)
        info = {
            "created": rec.created, "seed": rec.seed, "gamma": rec.gamma, "steps": rec.steps,
            "resample": rec.resample, "settings": rec.settings, "weight_hashes": rec.weight_hashes,
        }
        self.provenance.setPlainText(json.dumps(info, indent=2))

    def _fit_table(self) -> None:
        """Show all 11 rows and every column without a scroll bar, whatever the header height (two-line
        headers) and width (the pane widens to the columns, which fit their headers)."""
        t = self.probs
        t.setFixedHeight(t.horizontalHeader().sizeHint().height() + t.verticalHeader().length() + 2 * t.frameWidth() + 2)
        t.setMinimumWidth(t.verticalHeader().sizeHint().width() + t.horizontalHeader().length() + 2 * t.frameWidth() + 2)

    def _tags_done(self) -> None:
        if self.record is None:
            return
        tags = [t.strip() for t in self.tags.text().split(",") if t.strip()]
        if tags != self.record.tags:
            self.tagsEdited.emit(self.record.id, tags)

    def _note_done(self) -> None:
        if self.record is not None and self.note.text() != self.record.note:
            self.noteEdited.emit(self.record.id, self.note.text())
