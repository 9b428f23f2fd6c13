"""Pick a reference image for the pixel constraint: an MNIST digit or a library stimulus."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from perceptlab._qt.explore.controller import Reference
from perceptlab._qt.widgets.images import qpixmap, to_uint8

SHOWN = 240


class ReferencePicker(QDialog):
    def __init__(self, session, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.setWindowTitle("Reference image for the pixel constraint")
        self.resize(640, 520)
        self._images: list[tuple[np.ndarray, str, int | None]] = []
        self.source = QComboBox()
        self.source.addItem("MNIST", "mnist")
        self.source.addItem("Library", "library")
        self.digit = QComboBox()
        self.digit.addItem("any digit", None)
        for d in range(10):
            self.digit.addItem(str(d), d)
        top = QHBoxLayout()
        top.addWidget(QLabel("From"))
        top.addWidget(self.source)
        top.addWidget(QLabel("class"))
        top.addWidget(self.digit)
        top.addStretch(1)
        self.note = QLabel()
        self.list = QListWidget()
        self.list.setViewMode(QListWidget.ViewMode.IconMode)
        self.list.setIconSize(QSize(48, 48))
        self.list.setGridSize(QSize(60, 60))
        self.list.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.list.setUniformItemSizes(True)
        self.list.itemDoubleClicked.connect(lambda *_: self.accept())
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.note)
        layout.addWidget(self.list, 1)
        layout.addWidget(buttons)
        self.source.currentIndexChanged.connect(self.refresh)
        self.digit.currentIndexChanged.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        self.list.clear()
        self._images = []
        digit = self.digit.currentData()
        if self.source.currentData() == "mnist":
            data = self.session.mnist
            if data is None:
                self.note.setText("MNIST is still loading (or failed to load); try again in a moment.")
                return
            idx = np.arange(len(data.labels)) if digit is None else np.flatnonzero(data.labels == digit)
            idx = idx[:SHOWN]
            pixels = to_uint8(data.images[idx])
            self._images = [(pixels[k], f"MNIST #{int(i)} ({data.source})", int(data.labels[i])) for k, i in enumerate(idx)]
            self.note.setText(f"{data.source}: first {len(idx)} digits shown")
        else:
            lib = self.session.library
            if lib is None:
                self.note.setText("No library is open.")
                return
            recs = [r for r in lib.records() if digit is None or digit in (r.class_a, r.class_b)][:SHOWN]
            self._images = [(lib.image(r.id), f"library {lib.path.name}:{r.id}", r.class_a) for r in recs]
            self.note.setText(f"{len(recs)} stimuli of {lib.path.name}")
        for img, text, _ in self._images:
            item = QListWidgetItem(QIcon(qpixmap(img, 48)), "")
            item.setToolTip(text)
            self.list.addItem(item)
        if self._images:
            self.list.setCurrentRow(0)

    def chosen(self) -> Reference | None:
        row = self.list.currentRow()
        if not 0 <= row < len(self._images):
            return None
        img, text, label = self._images[row]
        return Reference(img, text, label)
