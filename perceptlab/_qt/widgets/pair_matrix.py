"""A 10x10 grid of toggle buttons to pick one or many class pairs (a, b); the diagonal is disabled.

Rows are a, columns b. ``symmetric=True`` (uncertainty mode: the pair is unordered) toggles (a, b)
and (b, a) together and ``pairs()`` returns a < b; otherwise (controversial mode) every ordered
cell is its own pair.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QGridLayout, QLabel, QPushButton, QSizePolicy, QWidget

N = 10


class PairMatrix(QWidget):
    changed = Signal()

    def __init__(self, parent: QWidget | None = None, symmetric: bool = True, cell: int = 22):
        super().__init__(parent)
        self._symmetric = symmetric
        self._buttons: dict[tuple[int, int], QPushButton] = {}
        grid = QGridLayout(self)
        grid.setSpacing(1)
        grid.setContentsMargins(0, 0, 0, 0)
        corner = QLabel("a\\b")
        corner.setAlignment(Qt.AlignmentFlag.AlignCenter)
        grid.addWidget(corner, 0, 0)
        for k in range(N):
            for pos in ((0, k + 1), (k + 1, 0)):
                lab = QLabel(str(k))
                lab.setAlignment(Qt.AlignmentFlag.AlignCenter)
                grid.addWidget(lab, *pos)
        for a in range(N):
            for b in range(N):
                btn = QPushButton("")
                btn.setCheckable(True)
                btn.setFixedSize(cell, cell)
                btn.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
                btn.setObjectName(f"pair_{a}_{b}")
                btn.setToolTip(f"pair {a}-{b}")
                btn.setFocusPolicy(Qt.FocusPolicy.NoFocus)
                if a == b:
                    btn.setEnabled(False)
                else:
                    btn.clicked.connect(lambda checked, a=a, b=b: self._clicked(a, b, checked))
                self._buttons[(a, b)] = btn
                grid.addWidget(btn, a + 1, b + 1)
        self.setStyleSheet(
            "QPushButton { background: #f2f2f2; border: 1px solid #c8c8c8; }"
            "QPushButton:checked { background: #2e6fd8; border: 1px solid #1d4fa0; }"
            "QPushButton:disabled { background: #d0d0d0; border: none; }"
        )

    # ---- state

    def button(self, a: int, b: int) -> QPushButton:
        return self._buttons[(a, b)]

    def symmetric(self) -> bool:
        return self._symmetric

    def set_symmetric(self, symmetric: bool) -> None:
        if symmetric == self._symmetric:
            return
        pairs = self.pairs()
        self._symmetric = symmetric
        self.set_pairs(pairs)

    def pairs(self) -> list[tuple[int, int]]:
        checked = [(a, b) for (a, b), btn in self._buttons.items() if a != b and btn.isChecked()]
        if self._symmetric:
            return sorted({(min(a, b), max(a, b)) for a, b in checked})
        return sorted(checked)

    def set_pairs(self, pairs) -> None:
        want = {(int(a), int(b)) for a, b in pairs if int(a) != int(b)}
        if self._symmetric:
            want |= {(b, a) for a, b in want}
        for key, btn in self._buttons.items():
            btn.setChecked(key in want)
        self.changed.emit()

    def clear(self) -> None:
        self.set_pairs([])

    def _clicked(self, a: int, b: int, checked: bool) -> None:
        if self._symmetric:
            self._buttons[(b, a)].setChecked(checked)
        self.changed.emit()
