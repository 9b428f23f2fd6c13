"""A window listing the stimuli behind a plot element: image and choice distribution of each."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from perceptlab._qt.widgets.images import pixmap_from_file, placeholder

MAX_ITEMS = 2000


@dataclass
class StimulusItem:
    key: str
    path: Path | None = None
    counts: np.ndarray | None = None  # responses per class
    info: str = ""


class StimulusBrowser(QDialog):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Stimuli")
        self.resize(820, 480)
        self.items: list[StimulusItem] = []
        self.classes: tuple[str, ...] = tuple(str(i) for i in range(10))
        self.heading = QLabel()
        self.heading.setWordWrap(True)
        self.list = QListWidget()
        self.list.setViewMode(QListWidget.ViewMode.IconMode)
        self.list.setIconSize(QSize(56, 56))
        self.list.setGridSize(QSize(84, 84))
        self.list.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.list.setUniformItemSizes(True)
        self.list.currentRowChanged.connect(self._show)
        self.image = QLabel()
        self.image.setFixedSize(196, 196)
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.plot = pg.PlotWidget()
        self.plot.setMinimumHeight(160)
        self.plot.setLabel("bottom", "response")
        self.plot.setLabel("left", "share of responses")
        self.plot.setMouseEnabled(False, False)
        self.bars = pg.BarGraphItem(x=np.arange(10), height=np.zeros(10), width=0.8, brush="#4c72b0")
        self.plot.addItem(self.bars)
        self.info = QLabel()
        self.info.setWordWrap(True)
        self.info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        right = QWidget()
        rl = QVBoxLayout(right)
        top = QHBoxLayout()
        top.addWidget(self.image)
        top.addWidget(self.info, 1)
        rl.addLayout(top)
        rl.addWidget(self.plot, 1)
        split = QSplitter()
        split.addWidget(self.list)
        split.addWidget(right)
        split.setSizes([330, 490])
        layout = QVBoxLayout(self)
        layout.addWidget(self.heading)
        layout.addWidget(split, 1)

    def show_stimuli(self, title: str, items: list[StimulusItem], classes=None) -> None:
        if classes is not None:
            self.classes = tuple(classes)
        shown = items[:MAX_ITEMS]
        more = f" (first {MAX_ITEMS} shown)" if len(items) > MAX_ITEMS else ""
        self.heading.setText(f"<b>{title}</b>: {len(items)} stimuli{more}")
        self.setWindowTitle(f"Stimuli — {title}")
        self.items = shown
        self.list.clear()
        for it in shown:
            pix = pixmap_from_file(it.path, 56) if it.path is not None and it.path.is_file() else placeholder(56)
            item = QListWidgetItem(QIcon(pix), Path(it.key).stem[:12])
            item.setToolTip(it.key)
            self.list.addItem(item)
        if shown:
            self.list.setCurrentRow(0)
        else:
            self._show(-1)
        self.show()
        self.raise_()

    def _show(self, row: int) -> None:
        if not 0 <= row < len(self.items):
            self.image.setPixmap(placeholder(196, "none"))
            self.bars.setOpts(height=np.zeros(len(self.classes)))
            self.info.setText("")
            return
        it = self.items[row]
        pix = pixmap_from_file(it.path, 196) if it.path is not None and it.path.is_file() else placeholder(196, "no image")
        self.image.setPixmap(pix)
        n_classes = len(self.classes)
        if it.counts is not None and np.sum(it.counts) > 0:
            share = np.asarray(it.counts, dtype=float) / np.sum(it.counts)
            n = int(np.sum(it.counts))
        else:
            share, n = np.zeros(n_classes), 0
        self.bars.setOpts(x=np.arange(n_classes), height=share, width=0.8)
        self.plot.getAxis("bottom").setTicks([[(i, c) for i, c in enumerate(self.classes)]])
        self.plot.setYRange(0, 1)
        self.info.setText(f"<b>{it.key}</b><br>{n} responses<br>{it.info}")
