"""The library as a list model (thumbnails loaded on demand), a filter/sort proxy and a tile delegate.

Scales to thousands of stimuli: the model keeps the records (plain dataclasses, one SQL query),
thumbnails are read from ``images/<id>.png`` only when a tile is painted and cached, and the view
uses uniform item sizes with batched layout.
"""

from __future__ import annotations

import math

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QRect,
    QSize,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QColor, QFont, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QStyle, QStyledItemDelegate

from perceptlab._qt.widgets.images import pixmap_from_file, placeholder
from perceptlab.data.difficulty import difficulty_of
from perceptlab.data.library import Stimulus, StimulusLibrary

RECORD_ROLE = Qt.ItemDataRole.UserRole + 1
ID_ROLE = Qt.ItemDataRole.UserRole + 2
THUMB = 56
CELL = QSize(THUMB + 16, THUMB + 30)
STATUS_COLORS = {"accepted": QColor("#2e9e44"), "rejected": QColor("#c8323c"), "new": QColor("#b0b0b0")}
SORT_KEYS = {
    "order": "order added",
    "judge": "judge score",
    "balance": "pair balance min(p_a, p_b)",
    "entropy": "human choice entropy",
    "difficulty": "difficulty (robust logit)",
    "status": "status",
}


def pair_text(rec: Stimulus) -> str | None:
    """'pair 4-9', 'class 6' for a single-class stimulus (an enhanced or catch digit), None without classes."""
    if rec.class_a is None:
        return None
    return f"class {rec.class_a}" if rec.class_b is None else f"pair {rec.class_a}-{rec.class_b}"


class LibraryModel(QAbstractListModel):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.library: StimulusLibrary | None = None
        self.records: list[Stimulus] = []
        self._row: dict[str, int] = {}
        self._pixmaps: dict[str, QPixmap] = {}
        self.entropy: dict[str, float] = {}
        self.sort_key = "order"
        self.descending = False

    def set_library(self, library: StimulusLibrary | None) -> None:
        self.beginResetModel()
        self.library = library
        self.records = library.records() if library is not None else []
        self._row = {r.id: i for i, r in enumerate(self.records)}
        self._pixmaps.clear()
        self.endResetModel()

    def add_ids(self, ids: list[str]) -> None:
        """Append new stimuli (at the end, whatever the sort order, until the next sort)."""
        if self.library is None:
            return
        new = [self.library.get(i) for i in ids if i not in self._row]
        if not new:
            return
        first = len(self.records)
        self.beginInsertRows(QModelIndex(), first, first + len(new) - 1)
        for k, rec in enumerate(new):
            self._row[rec.id] = first + k
            self.records.append(rec)
        self.endInsertRows()

    def refresh_ids(self, ids) -> None:
        """Re-read the records of ``ids`` from the library (after a curation change)."""
        if self.library is None:
            return
        rows = []
        for sid in ids:
            row = self._row.get(sid)
            if row is None:
                continue
            self.records[row] = self.library.get(sid)
            rows.append(row)
        if rows:
            self.dataChanged.emit(self.index(min(rows)), self.index(max(rows)))

    def sort_records(self, key: str, descending: bool = False) -> None:
        """Reorder the records by a sort key (missing values last); one Python sort, fast for thousands."""
        if key not in SORT_KEYS:
            raise KeyError(key)
        self.sort_key, self.descending = key, descending
        self.layoutAboutToBeChanged.emit()
        old = {id(r): i for i, r in enumerate(self.records)}
        seq = {r.id: int(r.id[1:]) if r.id[1:].isdigit() else i for i, r in enumerate(self.records)}
        keyed = [(self.sort_value(r, key, seq[r.id]), seq[r.id], r) for r in self.records]
        present = [k for k in keyed if not math.isnan(k[0])]
        missing = [k for k in keyed if math.isnan(k[0])]
        present.sort(key=lambda k: (k[0], k[1]), reverse=descending)
        missing.sort(key=lambda k: k[1])
        new_records = [k[2] for k in present + missing]
        persistent = self.persistentIndexList()
        self.records = new_records
        self._row = {r.id: i for i, r in enumerate(self.records)}
        where = {old[id(r)]: i for i, r in enumerate(self.records)}
        self.changePersistentIndexList(persistent, [self.index(where[p.row()]) for p in persistent])
        self.layoutChanged.emit()

    def set_entropy(self, entropy: dict[str, float]) -> None:
        self.entropy = dict(entropy)
        if self.records:
            self.dataChanged.emit(self.index(0), self.index(len(self.records) - 1))

    def row_of(self, stimulus_id: str) -> int | None:
        return self._row.get(stimulus_id)

    def record(self, row: int) -> Stimulus:
        return self.records[row]

    def pixmap(self, stimulus_id: str) -> QPixmap:
        pix = self._pixmaps.get(stimulus_id)
        if pix is None:
            path = self.library.images_dir / f"{stimulus_id}.png" if self.library is not None else None
            pix = pixmap_from_file(path, THUMB) if path is not None and path.is_file() else placeholder(THUMB)
            self._pixmaps[stimulus_id] = pix
        return pix

    # ---- Qt interface

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.records)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        rec = self.records[index.row()]
        if role == RECORD_ROLE:
            return rec
        if role in (ID_ROLE, Qt.ItemDataRole.DisplayRole):
            return rec.id
        if role == Qt.ItemDataRole.DecorationRole:
            return self.pixmap(rec.id)
        if role == Qt.ItemDataRole.ToolTipRole:
            pair = pair_text(rec) or "no pair"
            tags = f"\ntags: {', '.join(rec.tags)}" if rec.tags else ""
            ent = self.entropy.get(rec.id)
            ent_text = f"\nhuman entropy {ent:.2f} bits" if ent is not None else ""
            d = difficulty_of(rec)
            ent_text += f"\ndifficulty (robust logit) {d:.2f}" if d is not None else ""
            return f"{rec.id} — {rec.mode}, {pair}, {rec.status}{tags}{ent_text}"
        return None

    def sort_value(self, rec: Stimulus, key: str, row: int) -> float:
        if key == "judge":
            return rec.judge if rec.judge is not None else math.nan
        if key == "balance":
            return min(rec.p_a, rec.p_b) if rec.p_a is not None and rec.p_b is not None else math.nan
        if key == "entropy":
            return self.entropy.get(rec.id, math.nan)
        if key == "difficulty":
            d = difficulty_of(rec)
            return math.nan if d is None else float(d)
        if key == "status":
            return {"new": 0, "accepted": 1, "rejected": 2}.get(rec.status, 3)
        return float(row)


class LibraryProxy(QSortFilterProxyModel):
    """Filters: pair (unordered), mode, status, tag, minimum judge score, minimum entropy. The order is the
    source model's (``LibraryModel.sort_records``): sorting thousands of rows through ``lessThan`` in
    Python is too slow."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.pair: tuple[int, int] | None = None
        self.mode: str | None = None
        self.status: str | None = None
        self.tag: str | None = None
        self.min_judge: float | None = None
        self.min_entropy: float | None = None
        self.setDynamicSortFilter(False)

    def set_filters(self, **values) -> None:
        new_api = hasattr(self, "beginFilterChange")  # Qt >= 6.9; invalidateFilter() is deprecated there
        if new_api:
            self.beginFilterChange()
        for name, value in values.items():
            if not hasattr(self, name):
                raise AttributeError(name)
            setattr(self, name, value)
        if new_api:
            self.endFilterChange()
        else:
            self.invalidateFilter()

    def filterAcceptsRow(self, row: int, parent: QModelIndex) -> bool:  # noqa: N802
        model: LibraryModel = self.sourceModel()
        rec = model.records[row]
        if self.pair is not None and {rec.class_a, rec.class_b} != set(self.pair):
            return False
        if self.mode is not None and rec.mode != self.mode:
            return False
        if self.status is not None and rec.status != self.status:
            return False
        if self.tag is not None and self.tag not in rec.tags:
            return False
        if self.min_judge is not None and (rec.judge is None or rec.judge < self.min_judge):
            return False
        if self.min_entropy is not None:
            ent = model.entropy.get(rec.id)
            if ent is None or ent < self.min_entropy:
                return False
        return True


class ThumbDelegate(QStyledItemDelegate):
    """A thumbnail with a status-coloured frame, the id and the pair under it."""

    def sizeHint(self, option, index) -> QSize:  # noqa: N802
        return CELL

    def paint(self, painter: QPainter, option, index) -> None:
        rec: Stimulus = index.data(RECORD_ROLE)
        if rec is None:
            return
        painter.save()
        r = option.rect
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        painter.fillRect(r, option.palette.highlight() if selected else option.palette.base())
        img = QRect(r.x() + (r.width() - THUMB) // 2, r.y() + 4, THUMB, THUMB)
        painter.drawPixmap(img, index.data(Qt.ItemDataRole.DecorationRole))
        color = STATUS_COLORS.get(rec.status, STATUS_COLORS["new"])
        width = 1 if rec.status == "new" else 3
        painter.setPen(QPen(color, width))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(img.adjusted(-1, -1, 0, 0))
        if rec.tags:
            painter.fillRect(QRect(img.x(), img.y(), 8, 8), QColor("#e0a800"))
        font = QFont(painter.font())
        font.setPixelSize(10)
        painter.setFont(font)
        painter.setPen(option.palette.highlightedText().color() if selected else QColor("#333"))
        pair = f"{rec.class_a}-{rec.class_b}" if rec.class_a is not None and rec.class_b is not None else rec.mode
        painter.drawText(QRect(r.x(), img.bottom() + 2, r.width(), 22),
                         Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, f"{rec.id[-5:]} · {pair}")
        painter.restore()
