"""A read-only, sortable table model over a pandas DataFrame (100k+ rows stay fast).

Cells are formatted on demand from per-column numpy arrays; sorting is one ``sort_values`` call
(stable, missing values last) followed by a model reset.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt


def _fmt(value) -> str:
    if value is None or value is pd.NA:
        return ""
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return ""
        return f"{value:.4g}"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    return str(value)


class PandasModel(QAbstractTableModel):
    def __init__(self, frame: pd.DataFrame | None = None, parent=None, index_name: str | None = None):
        super().__init__(parent)
        self._frame = pd.DataFrame()
        self._cols: list[np.ndarray] = []
        self._index_name = index_name
        self.set_frame(frame if frame is not None else pd.DataFrame())

    def set_frame(self, frame: pd.DataFrame | None) -> None:
        """Show ``frame``; a meaningful index becomes the first column (never twice: an index whose
        name is already a column is dropped). The model reset always completes."""
        frame = pd.DataFrame() if frame is None else frame
        if not isinstance(frame.index, pd.RangeIndex) or frame.index.name is not None:
            name = frame.index.name or self._index_name or "index"
            if name in frame.columns or isinstance(frame.index, pd.MultiIndex):
                frame = frame.reset_index(drop=True)
            else:
                frame = frame.rename_axis(name).reset_index()
        frame = frame.reset_index(drop=True)
        self.beginResetModel()
        try:
            self._frame = frame
            self._cols = [frame[c].to_numpy(dtype=object) for c in frame.columns]
        finally:
            self.endResetModel()

    def clear(self) -> None:
        self.set_frame(pd.DataFrame())

    def frame(self) -> pd.DataFrame:
        return self._frame

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self._frame)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self._cols)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return _fmt(self._cols[index.column()][index.row()])
        if role == Qt.ItemDataRole.TextAlignmentRole:
            v = self._cols[index.column()][index.row()]
            if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)):
                return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if orientation == Qt.Orientation.Horizontal:
            return str(self._frame.columns[section]) if section < len(self._frame.columns) else None
        return str(section + 1)

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        if not 0 <= column < len(self._frame.columns):
            return
        name = self._frame.columns[column]
        self.layoutAboutToBeChanged.emit()
        try:
            frame = self._frame.sort_values(
                name, ascending=order == Qt.SortOrder.AscendingOrder, kind="stable", na_position="last"
            )
        except TypeError:  # mixed types: sort by text
            key = self._frame[name].astype(str)
            frame = self._frame.loc[key.sort_values(ascending=order == Qt.SortOrder.AscendingOrder, kind="stable").index]
        self._frame = frame.reset_index(drop=True)
        self._cols = [self._frame[c].to_numpy(dtype=object) for c in self._frame.columns]
        self.layoutChanged.emit()
