"""The Align results: a summary, the accuracy table and the plots of one evaluation report, from a
run in the panel or a ``metrics.json`` (written by ``perceptlab align`` or saved here)."""

from __future__ import annotations

import html
import json
from pathlib import Path

import pandas as pd
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from perceptlab._qt.align.models import table_view
from perceptlab._qt.align.plots import BinGainView, EntropyScatterView, GainView
from perceptlab._qt.align.runner import accuracy_table
from perceptlab._qt.messages import show_error
from perceptlab._qt.widgets.pandas_model import PandasModel
from perceptlab._qt.widgets.plot_export import ExportButton
from perceptlab.errors import PerceptLabError


def model_names_text(names: list[str], most: int = 3) -> str:
    """'vgg-group, vgg-indiv-p1, vgg-indiv-p2' or, for many, 'vgg-group and 40 IndivNets (vgg-indiv-…)'."""
    if not names:
        return ""
    if len(names) <= most:
        return ", ".join(html.escape(n) for n in names)
    indiv = [n for n in names if "-indiv-" in n]
    rest = [n for n in names if "-indiv-" not in n]
    parts = [html.escape(n) for n in rest[:most]] + ([f"{len(rest) - most} more"] if len(rest) > most else [])
    if indiv:
        prefix = indiv[0].split("-indiv-")[0] + "-indiv-…"
        parts.append(f"{len(indiv)} IndivNets ({html.escape(prefix)})")
    return ", ".join(parts)


class AlignResults(QWidget):
    """Summary, Accuracy (Open results… / Save results…) and the plot tabs, each with Export."""

    message = Signal(str)
    folderUsed = Signal(object)  # results were opened or saved in a folder (Path): the next dialog starts there

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.metrics: dict | None = None
        self.synthetic = False
        self.last_dir = Path.home()

        self.summary = QLabel("No results yet.")
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.accuracy_model = PandasModel()
        self.accuracy_view = table_view(self.accuracy_model)
        self.accuracy_view.setSortingEnabled(False)
        head = self.accuracy_view.horizontalHeader()
        head.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        head.setStretchLastSection(False)
        head.setMinimumSectionSize(70)
        self.accuracy_view.setFixedHeight(4 * 30 + 6)
        self.save_button = QPushButton("Save results…")
        self.save_button.setToolTip("write the results as metrics.json (as 'perceptlab align' does)")
        self.save_button.setEnabled(False)
        self.save_button.clicked.connect(self.save_results_dialog)
        open_button = QPushButton("Open results…")
        open_button.setToolTip("show a metrics.json written by 'perceptlab align' or saved here")
        open_button.clicked.connect(self.open_results_dialog)
        res_row = QHBoxLayout()
        res_row.addWidget(QLabel("<b>Accuracy</b> (held-out data no model was trained on)"), 1)
        res_row.addWidget(open_button)
        res_row.addWidget(self.save_button)

        self.gain_view = GainView()
        self.entropy_view = EntropyScatterView()
        self.bin_view = BinGainView()
        self.views = {"gain": self.gain_view, "entropy": self.entropy_view, "gain_by_entropy": self.bin_view}
        self.plots = QTabWidget()
        for key, title in (("gain", "Gain per participant"), ("entropy", "Entropy before / after"),
                           ("gain_by_entropy", "Gain by entropy")):
            view = self.views[key]
            page = QWidget()
            pg_layout = QVBoxLayout(page)
            pg_layout.setContentsMargins(2, 2, 2, 2)
            top = QHBoxLayout()
            top.addStretch(1)
            top.addWidget(ExportButton(view.widget, f"align-{key.replace('_', '-')}", self,
                                       on_error=lambda e: show_error(self, "Export", e),
                                       on_exported=lambda p: self.message.emit(f"Exported {p}")))
            pg_layout.addLayout(top)
            pg_layout.addWidget(view.widget, 1)
            self.plots.addTab(page, title)

        rl = QVBoxLayout(self)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(self.summary)
        rl.addLayout(res_row)
        rl.addWidget(self.accuracy_view)
        rl.addWidget(self.plots, 1)
        self.show_results(None)

    def show_results(self, metrics: dict | None, synthetic: bool | None = None) -> None:
        """Draw a metrics dict (as ``run_alignment`` returns it and ``metrics.json`` holds it)."""
        self.metrics = metrics
        if synthetic is not None:
            self.synthetic = synthetic
        ev = (metrics or {}).get("evaluation")
        self.save_button.setEnabled(metrics is not None)
        if ev is None:
            self.accuracy_model.set_frame(pd.DataFrame(columns=["accuracy on", "Base", "Group", "Indiv"]))
            self.summary.setText("No results yet: run a fine-tuning, or open a metrics.json."
                                 if metrics is None else "This run was not evaluated.")
        else:
            self.accuracy_model.set_frame(accuracy_table(ev))
            self.summary.setText(self._summary_html(metrics, ev))
        head = self.accuracy_view.horizontalHeader()
        if head.count():
            head.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for view in self.views.values():
            view.set_report(ev, self.synthetic)

    def _summary_html(self, metrics: dict, ev: dict) -> str:
        """A few lines above the plots: 40 IndivNet names would push the plots out of the panel, so the
        names are summed up (the Fine-tuned models table lists them all)."""
        job = metrics.get("job", {})
        names = model_names_text(list(metrics.get("models", {})))
        lines = []
        if self.synthetic:
            lines.append("<span style='color:#c8323c'><b>SYNTHETIC data</b> (simulated observers, not human "
                         "responses)</span>")
        lines.append(f"Base <b>{html.escape(str(job.get('base', '?')))}</b>, level {html.escape(str(job.get('level')))}"
                     f": {names or 'no models'}")
        lines.append(f"Test part: {ev.get('n_trials', 0)} trials on {ev.get('n_stimuli', 0)} stimuli no model saw.")
        ivg = ev.get("indiv_vs_group")
        if ivg:
            gain = ivg.get("mean_gain")
            lines.append(f"IndivNet beats GroupNet on own test trials for <b>{ivg['better']} of {ivg['participants']}"
                         f"</b> participants ({ivg['ties']} ties)"
                         + (f", mean gain {100 * gain:+.1f} points" if gain is not None else "") + ".")
        sp = ev.get("entropy_spearman", {})

        def rho(k: str) -> str:
            d = sp.get(k) or {}
            return f"{d['rho']:.2f}" if d.get("rho") is not None else "n/a"

        if "group" in sp:
            lines.append(f"Model–human entropy Spearman: base {rho('base')} → group {rho('group')} "
                         f"({sp.get('n_stimuli', 0)} stimuli with ≥ {sp.get('min_responses', 3)} responses).")
        return "<br>".join(lines)

    def _folder_used(self, folder: Path) -> None:
        self.last_dir = folder
        self.folderUsed.emit(folder)

    def save_results_dialog(self) -> Path | None:
        if self.metrics is None:
            return None
        path, _ = QFileDialog.getSaveFileName(self, "Save results", str(self.last_dir / "metrics.json"),
                                              "JSON (*.json)")
        return self.save_results(Path(path)) if path else None

    def save_results(self, path: Path) -> Path | None:
        from perceptlab.align.pipeline import _json_default  # noqa: PLC0415

        try:
            path.write_text(json.dumps(self.metrics, indent=2, default=_json_default) + "\n")
        except OSError as exc:
            show_error(self, "Could not save the results", exc)
            return None
        self._folder_used(path.parent)
        self.message.emit(f"Saved {path}")
        return path

    def open_results_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open alignment results", str(self.last_dir),
                                              "metrics.json (*.json)")
        if path:
            self.open_results(Path(path))

    def open_results(self, path: Path) -> bool:
        try:
            metrics = json.loads(Path(path).read_text())
        except OSError as exc:
            show_error(self, "Could not open the results", exc)
            return False
        except ValueError as exc:
            metrics = exc
        if not isinstance(metrics, dict) or "job" not in metrics or "evaluation" not in metrics:
            show_error(self, "Could not open the results", PerceptLabError(
                f"{path} is not the metrics.json of an alignment run",
                "open the metrics.json that 'perceptlab align --out DIR' writes or that Save results wrote"))
            return False
        self._folder_used(Path(path).parent)
        self.show_results(metrics, False)
        self.message.emit(f"Showing {path}")
        return True
