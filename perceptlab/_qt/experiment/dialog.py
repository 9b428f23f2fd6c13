"""Run ▸ Run experiment…: what to run (the open library's curated set, or a design file), the participant
id, catch trials, the output folder and full screen; then the runner window, and the new trial file in
the Data panel once it closes."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from perceptlab.errors import PerceptLabError
from perceptlab.experiment.session import check_participant

LIBRARY, FILE = "library", "file"


class RunExperimentDialog(QDialog):
    def __init__(self, library_path: Path | None, n_accepted: int, experiments_dir: Path,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Run experiment")
        self.setMinimumWidth(620)
        self.library_path, self.experiments_dir = library_path, Path(experiments_dir)
        form = QFormLayout(self)
        self.source = QComboBox()
        if library_path is not None:
            self.source.addItem(f"Accepted stimuli of {library_path.name} ({n_accepted})", LIBRARY)
        self.source.addItem("A design file…", FILE)
        self.source.currentIndexChanged.connect(self._update)
        form.addRow("Stimuli", self.source)
        self.design_edit = QLineEdit()
        self.design_edit.setPlaceholderText("perceptlab-design/1 JSON")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.design_edit, 1)
        row.addWidget(browse)
        self.design_row = QWidget()
        self.design_row.setLayout(row)
        form.addRow("Design file", self.design_row)
        self.participant = QLineEdit()
        self.participant.setPlaceholderText("e.g. P01 (an unfinished session of this id resumes)")
        form.addRow("Participant id", self.participant)
        self.catch_rate = QDoubleSpinBox()
        self.catch_rate.setRange(0.0, 0.5)
        self.catch_rate.setSingleStep(0.05)
        self.catch_rate.setValue(0.1)
        self.catch_rate.setToolTip("share of catch trials: real MNIST digits with known labels")
        form.addRow("Catch trials", self.catch_rate)
        self.break_every = QSpinBox()
        self.break_every.setRange(0, 1000)
        self.break_every.setValue(50)
        self.break_every.setSpecialValueText("no breaks")
        form.addRow("Break every", self.break_every)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        form.addRow("Order seed", self.seed)
        self.fullscreen = QCheckBox("Full screen (Esc pauses, then Q quits)")
        form.addRow("", self.fullscreen)
        self.out_edit = QLineEdit()
        form.addRow("Trial files in", self.out_edit)
        self.error = QLabel()
        self.error.setStyleSheet("color: #c0392b")
        self.error.setWordWrap(True)
        form.addRow(self.error)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Start")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self._update()

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Design file", str(self.experiments_dir), "Designs (*.json)")
        if path:
            self.design_edit.setText(path)
            self._update()

    def _update(self) -> None:
        from_lib = self.source.currentData() == LIBRARY
        self.design_row.setEnabled(not from_lib)
        for w in (self.catch_rate, self.break_every, self.seed):
            w.setEnabled(from_lib)
        if not self.out_edit.isModified():
            self.out_edit.setText(str(self.default_out()))

    def library_design_path(self) -> Path:
        name = self.library_path.name if self.library_path is not None else "design"
        return self.experiments_dir / name / "design.json"

    def design_path(self) -> Path:
        return self.library_design_path() if self.source.currentData() == LIBRARY else Path(self.design_edit.text())

    def default_out(self) -> Path:
        text = self.design_edit.text().strip()
        if self.source.currentData() == FILE and text:
            return Path(text).parent / "trials"
        return self.library_design_path().parent / "trials"

    def accept(self) -> None:
        try:
            check_participant(self.participant.text())
            if self.source.currentData() == FILE and not Path(self.design_edit.text()).is_file():
                raise PerceptLabError("choose a design file")
        except PerceptLabError as exc:
            self.error.setText(str(exc))
            self.adjustSize()
            return
        super().accept()

    def values(self) -> dict:
        return {"source": self.source.currentData(), "design": self.design_path(),
                "participant": self.participant.text().strip(), "catch_rate": self.catch_rate.value(),
                "break_every": self.break_every.value(), "seed": self.seed.value(),
                "fullscreen": self.fullscreen.isChecked(), "out": Path(self.out_edit.text().strip() or
                                                                       self.default_out())}
