"""The live preview grid: one tile per image of a generation job.

A tile shows the current x0 preview (final image once its batch is done), the guiding classifier's
probabilities for the pair as two bars, and a verdict badge: grey "…" while sampling (a provisional
verdict from the step's probabilities is drawn as a hollow ring), green ✓ accepted, red ✗ rejected,
blue "L" once it is in the library. The grid is a QListView in icon mode over ``PreviewModel`` with
``PreviewDelegate`` painting each tile, so thousands of tiles scroll smoothly and only visible tiles
repaint on each step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from PySide6.QtCore import QAbstractListModel, QModelIndex, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QImage, QPainter, QPen
from PySide6.QtWidgets import QAbstractItemView, QListView, QStyle, QStyledItemDelegate

from perceptlab.analysis.transfer import confirmations
from perceptlab.analysis.transfer import describe as describe_observers

TILE_ROLE = Qt.ItemDataRole.UserRole + 1
IMG = 84
TILE_W, TILE_H = IMG + 12, IMG + 44
COLOR_A = QColor("#2e6fd8")
COLOR_B = QColor("#e07b1a")
PASS = QColor("#2e9e44")
FAIL = QColor("#c8323c")
PENDING = QColor("#8a8a8a")
ADDED = QColor("#1d4fa0")


@dataclass
class Tile:
    """One image of a job (see the module docstring)."""

    index: int
    pair: tuple[int, int]
    seed: int
    image: np.ndarray | None = None  # uint8 (28, 28)
    p_a: float = math.nan
    p_b: float = math.nan
    steps: list[int] = field(default_factory=list)
    hist_a: list[float] = field(default_factory=list)
    hist_b: list[float] = field(default_factory=list)
    live_passed: bool | None = None  # provisional verdict from the last step
    passed: bool | None = None  # final verdict (None: not final)
    reason: str = ""
    final: bool = False
    valid: bool = True
    stopped: bool = False
    record: object | None = None  # the staged Stimulus once its batch is done
    added_id: str | None = None
    attempt: int = 1  # > 1: sampled again after a rejection (regenerate rejects)

    def restart(self, seed: int) -> None:
        """Start the next attempt at this target with a new seed (the last attempt stays in staging)."""
        self.seed, self.attempt = seed, self.attempt + 1
        self.image, self.p_a, self.p_b = None, math.nan, math.nan
        self.steps, self.hist_a, self.hist_b = [], [], []
        self.live_passed = self.passed = self.record = self.added_id = None
        self.reason, self.final, self.valid, self.stopped = "", False, True, False

    def status_text(self) -> str:
        if self.added_id:
            return f"in the library as {self.added_id}"
        if not self.valid:
            return "diverged (NaN) — dropped"
        if self.stopped:
            return "stopped before its batch finished"
        again = f" (attempt {self.attempt})" if self.attempt > 1 else ""
        if not self.final:
            return f"sampling…{again}"
        verdict = f"accepted{again}" if self.passed else f"rejected{again}: {self.reason}"
        observed = self.observer_text()
        return f"{verdict}; {observed}" if observed else verdict

    def observer_confirms(self) -> dict[str, bool]:
        """Each independent observer's verdict on the final image (never used by the filter)."""
        rec = self.record
        return confirmations(rec.probs, rec.class_a, rec.class_b) if rec is not None else {}

    def observer_text(self) -> str:
        rec = self.record
        return describe_observers(rec.probs, rec.class_a, rec.class_b) if rec is not None else ""


def prob_label(cls, source: str | None, decimals: int | None = None, p: float = math.nan) -> str:
    """'p(3)' or, when the probability comes from a named classifier (controversial mode: one per class),
    'cornet: p(3)'; with ``decimals``, the value too ('cornet: p(3) = 1.00')."""
    text = f"p({cls})" if not source else f"{source}: p({cls})"
    if decimals is None:
        return text
    return f"{text} = {'–' if not math.isfinite(p) else f'{p:.{decimals}f}'}"


def short_names(a: str, b: str, most: int = 4) -> tuple[str, str]:
    """Tile labels for two classifiers that tell them apart: 'cor'/'vgg', or for names that share a
    prefix (vgg-indiv-sim001, vgg-indiv-sim002) the part where they differ ('001'/'002')."""
    if a[:3] != b[:3]:
        return a[:3], b[:3]
    common = 0
    while common < min(len(a), len(b)) and a[common] == b[common]:
        common += 1
    start = max(0, min(common, len(a) - 3, len(b) - 3))
    return a[start:start + most], b[start:start + most]


class PreviewModel(QAbstractListModel):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.tiles: list[Tile] = []
        #: the classifiers p_a and p_b come from when they differ (controversial mode), else None
        self.sources: tuple[str, str] | None = None

    def set_sources(self, sources: tuple[str, str] | None) -> None:
        self.sources = sources

    def set_tiles(self, tiles: list[Tile]) -> None:
        self.beginResetModel()
        self.tiles = tiles
        self.endResetModel()

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.tiles)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        tile = self.tiles[index.row()]
        if role == TILE_ROLE:
            return tile
        if role == Qt.ItemDataRole.ToolTipRole:
            a, b = tile.pair
            src_a, src_b = self.sources or (None, None)
            return (f"image {tile.index + 1}, pair {a}-{b}, seed {tile.seed}\n"
                    f"{prob_label(a, src_a, 3, tile.p_a)}, {prob_label(b, src_b, 3, tile.p_b)}\n{tile.status_text()}")
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{tile.pair[0]}-{tile.pair[1]}"
        return None

    def tiles_changed(self, first: int, last: int) -> None:
        if self.tiles and first <= last:
            self.dataChanged.emit(self.index(first), self.index(min(last, len(self.tiles) - 1)), [TILE_ROLE])


class PreviewDelegate(QStyledItemDelegate):
    def sizeHint(self, option, index) -> QSize:  # noqa: N802
        return QSize(TILE_W, TILE_H)

    def paint(self, painter: QPainter, option, index) -> None:
        tile: Tile = index.data(TILE_ROLE)
        if tile is None:
            return
        painter.save()
        r = option.rect
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        painter.fillRect(r, option.palette.highlight() if selected else option.palette.base())
        img_rect = QRect(r.x() + (r.width() - IMG) // 2, r.y() + 4, IMG, IMG)
        if tile.image is not None:
            arr = np.ascontiguousarray(tile.image)
            qimg = QImage(arr.data, 28, 28, 28, QImage.Format.Format_Grayscale8)
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
            painter.drawImage(img_rect, qimg)
        else:
            painter.fillRect(img_rect, QColor("#222"))
        if not tile.valid or tile.stopped:
            painter.fillRect(img_rect, QColor(255, 255, 255, 110))
        self._badge(painter, tile, img_rect)
        sources = getattr(index.model(), "sources", None)
        self._bars(painter, tile, QRect(r.x() + 4, img_rect.bottom() + 5, r.width() - 8, 34), sources)
        painter.restore()

    @staticmethod
    def _badge(painter: QPainter, tile: Tile, img_rect: QRect) -> None:
        d = 18
        box = QRectF(img_rect.right() - d - 1, img_rect.top() + 2, d, d)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        font = QFont(painter.font())
        font.setBold(True)
        font.setPixelSize(12)
        painter.setFont(font)
        if tile.added_id:
            color, text, filled = ADDED, "L", True
        elif tile.final:
            color, text, filled = (PASS, "✓", True) if tile.passed else (FAIL, "✗", True)
        elif not tile.valid or tile.stopped:
            color, text, filled = FAIL, "–", True
        elif tile.live_passed is None:
            color, text, filled = PENDING, "…", True
        else:
            color, text, filled = (PASS if tile.live_passed else FAIL), "", False
        conf = tile.observer_confirms() if tile.final else {}
        if conf:  # a small square at the top left: do the independent observers see the pair too?
            n_ok = sum(conf.values())
            shade = PASS if n_ok == len(conf) else (PENDING if n_ok else FAIL)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QBrush(shade))
            painter.drawRect(QRectF(img_rect.left() + 3, img_rect.top() + 3, 8, 8))
        if filled:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QBrush(color))
            painter.drawEllipse(box)
            painter.setPen(QPen(QColor("white")))
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)
        else:
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.setPen(QPen(color, 3))
            painter.drawEllipse(box.adjusted(2, 2, -2, -2))

    @staticmethod
    def _bars(painter: QPainter, tile: Tile, rect: QRect, sources: tuple[str, str] | None = None) -> None:
        """Two bars, p(a) and p(b); in controversial mode each row names its classifier ('cor 3')."""
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        font = QFont(painter.font())
        font.setBold(False)
        font.setPixelSize(10)
        painter.setFont(font)
        label_w = 12 if not sources else 34
        short = short_names(*sources) if sources else None
        row_h = rect.height() // 2
        for k, (cls, p, color) in enumerate(((tile.pair[0], tile.p_a, COLOR_A), (tile.pair[1], tile.p_b, COLOR_B))):
            y = rect.y() + k * row_h
            painter.setPen(QColor("#333"))
            label = str(cls) if not short else f"{short[k]} {cls}"
            painter.drawText(QRect(rect.x(), y, label_w, row_h), Qt.AlignmentFlag.AlignVCenter, label)
            track = QRect(rect.x() + label_w, y + 3, rect.width() - label_w - 26, row_h - 6)
            painter.fillRect(track, QColor("#e4e4e4"))
            if math.isfinite(p):
                fill = QRect(track.x(), track.y(), int(round(track.width() * max(0.0, min(1.0, p)))), track.height())
                painter.fillRect(fill, color)
            painter.drawText(QRect(track.right() + 3, y, 24, row_h), Qt.AlignmentFlag.AlignVCenter,
                             "" if not math.isfinite(p) else f"{p:.2f}")


class PreviewView(QListView):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setMovement(QListView.Movement.Static)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setUniformItemSizes(True)
        self.setSpacing(3)
        self.setWrapping(True)
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(200)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setItemDelegate(PreviewDelegate(self))
        self.setMinimumHeight(TILE_H + 12)

    def selected_rows(self) -> list[int]:
        return sorted(i.row() for i in self.selectionModel().selectedIndexes())
