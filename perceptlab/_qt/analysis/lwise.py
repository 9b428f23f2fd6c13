"""Analysis › L-WISE: error rate vs the robust model's difficulty (from the loaded trials and the open
library), and learning curves + test accuracy by condition from learning-experiment rows (curriculum vs
shuffled control). The numbers come from ``perceptlab.analysis.difficulty`` and
``perceptlab.analysis.curriculum``; both plots export to PNG, SVG and PDF."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from perceptlab._qt.analysis.plots import ScatterView
from perceptlab._qt.messages import show_error
from perceptlab._qt.widgets.plot_export import ExportButton
from perceptlab.errors import PerceptLabError

COLORS = {"curriculum": "#dd8452", "control": "#4c72b0"}


class LearningView:
    """Accuracy by train block per condition (lines with s.e.m. bars) and test accuracy by condition (bars)."""

    def __init__(self):
        self.widget = pg.GraphicsLayoutWidget()
        self.widget.setMinimumSize(360, 220)
        self.curves = self.widget.addPlot(title="Learning curves")
        self.curves.setLabel("bottom", "train block")
        self.curves.setLabel("left", "accuracy")
        self.curves.addLegend()
        self.test = self.widget.addPlot(title="Test accuracy (unmodified images)")
        self.test.setYRange(0, 1)
        for plot in (self.curves, self.test):
            plot.getAxis("left").enableAutoSIPrefix(False)  # accuracies, not "x0.001"
        self.summary: dict | None = None

    def set_summary(self, summary: dict, synthetic: bool = False) -> None:
        self.summary = summary
        self.curves.clear()
        self.test.clear()
        self.curves.setTitle(("[SYNTHETIC] " if synthetic else "") + "Learning curves")
        for cond, curve in summary["curves"].items():
            x = np.array([c["block"] + 1 for c in curve], float)
            y = np.array([c["accuracy"] for c in curve], float)
            e = np.nan_to_num(np.array([c["sem"] for c in curve], float))
            color = COLORS.get(cond, "#8172b3")
            self.curves.plot(x, y, pen=pg.mkPen(color, width=2), symbol="o", symbolBrush=color, name=cond)
            self.curves.addItem(pg.ErrorBarItem(x=x, y=y, height=2 * e, pen=pg.mkPen(color)))
        conds = list(summary["test"])
        ys = [summary["test"][c]["accuracy"] for c in conds]
        self.test.addItem(pg.BarGraphItem(x=np.arange(len(conds)), height=ys, width=0.6,
                                          brushes=[pg.mkBrush(COLORS.get(c, "#8172b3")) for c in conds]))
        errs = np.nan_to_num(np.array([summary["test"][c]["sem"] for c in conds], float))
        self.test.addItem(pg.ErrorBarItem(x=np.arange(len(conds)), y=np.array(ys), height=2 * errs))
        self.test.getAxis("bottom").setTicks([list(enumerate(conds))])
        self.test.setYRange(0, 1)


class LwisePage(QWidget):
    """The L-WISE tab."""

    message = Signal(str)

    def __init__(self, session, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.difficulty = ScatterView("robust ground-truth logit (low = hard)", "error rate", "#4c72b0")
        self.difficulty.plot.getAxis("left").enableAutoSIPrefix(False)
        self.learning = LearningView()
        self.difficulty_note = QLabel("Load trials with true labels and open their library, then Compute.")
        self.learning_note = QLabel("Open the rows of a learning experiment (one file per condition, or one file "
                                    "with a condition column).")
        for note in (self.difficulty_note, self.learning_note):
            note.setWordWrap(True)
            note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.compute_button = QPushButton("Compute difficulty vs error")
        self.compute_button.clicked.connect(self.compute_difficulty)
        self.open_button = QPushButton("Open learning data…")
        self.open_button.clicked.connect(self.open_learning)
        layout = QHBoxLayout(self)  # side by side: stacked, two plots would not fit a 768-pixel screen
        for button, view, name, note in ((self.compute_button, self.difficulty, "difficulty_vs_error",
                                          self.difficulty_note),
                                         (self.open_button, self.learning, "learning_curves", self.learning_note)):
            column = QVBoxLayout()
            row = QHBoxLayout()
            row.addWidget(button)
            row.addStretch(1)
            row.addWidget(ExportButton(view.widget, name, self, on_error=lambda e: show_error(self, "Export", e),
                                       on_exported=lambda p: self.message.emit(f"Exported {p}")))
            column.addLayout(row)
            column.addWidget(view.widget, 1)
            column.addWidget(note)
            layout.addLayout(column, 1)

    def compute_difficulty(self) -> dict | None:
        from perceptlab.analysis.difficulty import difficulty_summary, difficulty_table, format_difficulty  # noqa: PLC0415

        table, lib = self.session.trials, self.session.library
        try:
            if table is None or lib is None:
                raise PerceptLabError("needs loaded trials and an open library",
                                      "load the trial file (Data panel) and open the library of its stimuli")
            t = difficulty_table(table.df, lib)
            summary = difficulty_summary(t)
        except PerceptLabError as exc:
            show_error(self, "Difficulty vs error", exc)
            return None
        rho = summary.get("spearman_rho")
        have = t[t["logit"].notna()]
        self.difficulty.set_points(have["logit"].to_numpy(float), have["error_rate"].to_numpy(float),
                                   list(have["stimulus_id"].astype(str)),
                                   ("[SYNTHETIC] " if table.synthetic else "") + "Error rate vs difficulty"
                                   + ("" if rho is None else f" (Spearman ρ = {rho:+.2f})"))
        self.difficulty_note.setText(format_difficulty(summary, table.synthetic).replace("\n", " — "))
        return summary

    def open_learning(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Learning-experiment rows (curriculum and control)", "",
                                                "Trial rows (*.csv)")
        if paths:
            self.load_learning(paths)

    def load_learning(self, paths: list[str]) -> dict | None:
        """Files whose name (not folder) contains ``control`` are the control condition, others the
        curriculum, unless the files carry a condition column."""
        import pandas as pd  # noqa: PLC0415

        from perceptlab.analysis.curriculum import format_learning, learning_summary, load_learning  # noqa: PLC0415

        try:
            heads = {p: pd.read_csv(p, nrows=0) for p in paths}  # the header only
            specs = [p if "condition" in h.columns
                     else f"{'control' if 'control' in Path(p).name.lower() else 'curriculum'}={p}"
                     for p, h in heads.items()]
            table = load_learning(specs)
            synthetic = bool(table.attrs.get("synthetic"))
            summary = learning_summary(table)
        except (PerceptLabError, OSError, ValueError) as exc:
            show_error(self, "Learning curves", exc if isinstance(exc, PerceptLabError) else PerceptLabError(str(exc)))
            return None
        self.learning.set_summary(summary, synthetic)
        self.learning_note.setText(format_learning(summary, synthetic).replace("\n", " — "))
        return summary
