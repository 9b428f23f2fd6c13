"""Analysis → Mixup: human percepts of mixup (seeds/004) from a mixup experiment's trials and its design.

Thin over :func:`perceptlab.analysis.mixup.analyze_mixup`: pick the trials (runner CSV or jsPsych CSV/JSON)
and the design.json; two pyqtgraph plots — inferred lambda vs generating lambda per category pair with
the logistic fits and the identity (the mixup label), and each participant's fitted bias of the 50/50
point per pair (individual misalignment, the per-pair aggregate as a red line) — each exportable.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from perceptlab._qt.messages import show_error
from perceptlab._qt.widgets.plot_export import ExportButton
from perceptlab.errors import PerceptLabError

_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


class MixupView(QWidget):
    message = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.trials_path: Path | None = None
        self.design_path: Path | None = None
        self.result: dict | None = None
        self.trials_button = QPushButton("Trials…")
        self.trials_button.clicked.connect(self._pick_trials)
        self.design_button = QPushButton("Design…")
        self.design_button.clicked.connect(self._pick_design)
        self.status = QLabel("Open a mixup experiment's trials and its design.json "
                             "(`perceptlab mixup design` / `simulate` write both).")
        self.status.setWordWrap(True)
        self.curves = pg.PlotWidget()
        self.curves.setLabel("bottom", "generating lambda (share of class_b)")
        self.curves.setLabel("left", "inferred lambda / P(class_b)")
        self.curves.addLegend(offset=(10, 10))
        self.bias = pg.PlotWidget()
        self.bias.setLabel("bottom", "category pair")
        self.bias.setLabel("left", "bias of the 50/50 point (m - 0.5)")
        self.bias.getAxis("left").enableAutoSIPrefix(False)  # biases are tenths, not "x0.001"
        top = QHBoxLayout()
        top.addWidget(self.trials_button)
        top.addWidget(self.design_button)
        top.addWidget(self.status, 1)
        plots = QHBoxLayout()
        for widget, name in ((self.curves, "mixup_curves"), (self.bias, "mixup_individual_bias")):
            col = QVBoxLayout()
            col.addWidget(ExportButton(widget, name, self, on_error=lambda e: show_error(self, "Export", e),
                                       on_exported=lambda p: self.message.emit(f"Exported {p}")))
            col.addWidget(widget, 1)
            plots.addLayout(col, 1)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(plots, 1)
        layout.addWidget(self.summary)

    def _pick_trials(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Mixup trials", "", "Trials (*.csv *.json)")
        if path:
            self.load(path, self.design_path)

    def _pick_design(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Mixup design", "", "Design (*.json)")
        if path:
            self.load(self.trials_path, path)

    def load(self, trials: str | Path | None, design: str | Path | None) -> dict | None:
        """Analyse ``trials`` against ``design`` (either may still be missing) and draw."""
        self.trials_path = Path(trials) if trials else None
        self.design_path = Path(design) if design else None
        if self.trials_path is None or self.design_path is None:
            missing = "trials" if self.trials_path is None else "design"
            self.status.setText(f"Open the {missing} too.")
            return None
        from perceptlab.analysis.mixup import SUMMARY_KEYS, analyze_mixup, is_synthetic  # noqa: PLC0415
        from perceptlab.data.export_mixup import read_mixup_results  # noqa: PLC0415
        from perceptlab.experiment.design import load_design  # noqa: PLC0415
        from perceptlab.experiment.mixup import stimulus_info  # noqa: PLC0415

        try:
            rows = read_mixup_results(self.trials_path)
            result = analyze_mixup(rows, stimulus_info(load_design(self.design_path)))
        except PerceptLabError as exc:
            self.status.setText(html.escape(str(exc)))
            show_error(self, "Mixup analysis", exc)
            return None
        synthetic = is_synthetic(rows)
        result["synthetic"] = synthetic
        self.result = result
        self._draw(result)
        s = result["summary"]
        tag = "<span style='color:#c8323c'><b>SYNTHETIC data</b></span> — " if synthetic else ""
        self.status.setText(f"{tag}{s['trials']} trials, {s['participants']} participants, {s['category_pairs']} "
                            f"category pairs ({html.escape(self.trials_path.name)})")
        parts = [f"{k.replace('_', ' ')}: {s[k]:.3f}" for k in SUMMARY_KEYS if s.get(k) is not None]
        self.summary.setText(html.escape("; ".join(parts + s["notes"])))
        self.message.emit(f"Mixup analysis of {self.trials_path.name}")
        return result

    def _draw(self, result: dict) -> None:
        from perceptlab.analysis.mixup import logistic  # noqa: PLC0415

        self.curves.clear()
        self.bias.clear()
        grid = np.linspace(0, 1, 101)
        self.curves.plot(grid, grid, pen=pg.mkPen("k", style=pg.QtCore.Qt.PenStyle.DashLine), name="mixup label")
        pairs, curves, ind = result["pairs"], result["curves"], result["individual_fits"]
        for i, row in enumerate(pairs.itertuples()):
            color = _COLORS[i % len(_COLORS)]
            c = curves[curves["category_pair"] == row.category_pair]
            if len(c):
                self.curves.plot(c["lambda"].to_numpy(float), c["inferred_mean"].to_numpy(float), pen=None,
                                 symbol="o", symbolSize=6, symbolBrush=color)
            if row.fit_m is not None and not np.isnan(row.fit_m):
                self.curves.plot(grid, logistic(grid, row.fit_m, row.fit_slope), pen=pg.mkPen(color, width=2),
                                 name=f"{row.category_pair} (50/50 at {row.fit_m:.2f})")
            pts = ind[ind["category_pair"] == row.category_pair]["bias"].dropna().to_numpy(float)
            if len(pts):
                jitter = np.random.default_rng(i).uniform(-0.15, 0.15, len(pts))
                self.bias.plot(i + jitter, pts, pen=None, symbol="o", symbolSize=5, symbolBrush=color)
            if row.fit_bias is not None and not np.isnan(row.fit_bias):
                self.bias.plot([i - 0.3, i + 0.3], [row.fit_bias] * 2, pen=pg.mkPen("#c8323c", width=3))
        self.bias.getAxis("bottom").setTicks([[(i, cp) for i, cp in enumerate(pairs["category_pair"])]])
        self.bias.addLine(y=0, pen=pg.mkPen("#999"))
        suffix = " (SYNTHETIC)" if result.get("synthetic") else ""
        self.curves.setTitle("Inferred vs generating lambda" + suffix)
        self.bias.setTitle("Individual 50/50 points per pair" + suffix)
