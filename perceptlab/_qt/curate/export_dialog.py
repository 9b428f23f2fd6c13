"""Export dialog: CSV + PNGs or a jsPsych experiment, of all stimuli or one curation status."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from perceptlab.data.export import export_csv, export_jspsych
from perceptlab.data.library import StimulusLibrary


@dataclass
class ExportRequest:
    fmt: str  # "csv" | "jspsych"
    folder: Path
    status: str | None  # None = all
    fixation_ms: int = 300
    stimulus_ms: int = 200


def run_export(library: StimulusLibrary, req: ExportRequest) -> Path:
    """The engine call behind the dialog (run in a worker thread)."""
    if req.fmt == "csv":
        return export_csv(library, req.folder, status=req.status)
    return export_jspsych(library, req.folder, status=req.status, fixation_ms=req.fixation_ms,
                          stimulus_ms=req.stimulus_ms)


class ExportDialog(QDialog):
    def __init__(self, library: StimulusLibrary, parent: QWidget | None = None, default_dir: Path | None = None):
        super().__init__(parent)
        self.setWindowTitle("Export stimuli")
        summary = library.summary()["by_status"]
        self.fmt = QComboBox()
        self.fmt.addItem("CSV table + PNG images", "csv")
        self.fmt.addItem("jsPsych experiment (image-button trials, 300 ms fixation, 200 ms stimulus)", "jspsych")
        self.status = QComboBox()
        self.status.addItem(f"accepted only ({summary['accepted']})", "accepted")
        self.status.addItem(f"all ({sum(summary.values())})", None)
        self.status.addItem(f"new only ({summary['new']})", "new")
        self.status.addItem(f"rejected only ({summary['rejected']})", "rejected")
        base = default_dir or library.path.parent
        self.folder = QLineEdit(str(base / f"{library.path.name}-export"))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.folder, 1)
        row.addWidget(browse)
        self.fixation = QSpinBox()
        self.fixation.setRange(1, 10_000)
        self.fixation.setValue(300)
        self.fixation.setSuffix(" ms")
        self.duration = QSpinBox()
        self.duration.setRange(1, 10_000)
        self.duration.setValue(200)
        self.duration.setSuffix(" ms")
        form = QFormLayout(self)
        form.addRow("Format", self.fmt)
        form.addRow("Stimuli", self.status)
        form.addRow("Folder", row)
        form.addRow("Fixation", self.fixation)
        form.addRow("Stimulus shown", self.duration)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Export")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.fmt.currentIndexChanged.connect(self._fmt_changed)
        self._fmt_changed()

    def _fmt_changed(self) -> None:
        js = self.fmt.currentData() == "jspsych"
        self.fixation.setEnabled(js)
        self.duration.setEnabled(js)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export into folder", self.folder.text())
        if folder:
            self.folder.setText(folder)

    def request(self) -> ExportRequest:
        return ExportRequest(self.fmt.currentData(), Path(self.folder.text()).expanduser(), self.status.currentData(),
                             self.fixation.value(), self.duration.value())
