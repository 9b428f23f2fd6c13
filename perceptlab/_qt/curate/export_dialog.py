"""Export dialog: CSV + PNGs or a jsPsych experiment, of all stimuli or one curation status.

Exports never overwrite without a word: each format has its own default folder (``<library>-csv``,
``<library>-jspsych``), and a target that already holds files asks first: replace the earlier export,
export into a fresh folder next to it (``…-2``), or go back."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtWidgets import (
    QLabel,
    QMessageBox,
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

from perceptlab.data.export import JSPSYCH_DIR, JSPSYCH_FILES, MARKER, export_csv, export_jspsych
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


FOLDER_SUFFIX = {"csv": "csv", "jspsych": "jspsych"}
JSPSYCH_NOTE = (f"The experiment's <b>{JSPSYCH_DIR}/</b> folder is left empty: copy jsPsych 8 into it before "
                f"running ({', '.join(JSPSYCH_FILES)}). The README.md written with the export gives the "
                "download commands; index.html says which file is missing.")


def fresh_folder(folder: Path) -> Path:
    """``folder`` itself when it is absent or empty, else the first free ``folder-2``, ``folder-3``, …"""
    if not folder.exists() or (folder.is_dir() and not any(folder.iterdir())):
        return folder
    n = 2
    while (folder.parent / f"{folder.name}-{n}").exists():
        n += 1
    return folder.parent / f"{folder.name}-{n}"


def describe_target(folder: Path) -> str | None:
    """What a non-empty target holds (None when empty or absent), for the question before writing."""
    if not folder.is_dir() or not any(folder.iterdir()):
        return None
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        what = {"csv": "a CSV export", "jspsych": "a jsPsych experiment"}.get(marker.get("format"), "an export")
        when = f", made {marker['created']}" if marker.get("created") else ""
        return f"{folder} already holds {what} of {marker.get('stimuli', '?')} stimuli{when}."
    except (OSError, ValueError, AttributeError):
        return f"{folder} is not empty."


def ask_replace(parent, text: str) -> str:
    """'replace', 'new' or 'cancel' (a module function, so that tests can answer it)."""
    box = QMessageBox(QMessageBox.Icon.Question, "Export folder is not empty", text, parent=parent)
    replace = box.addButton("Replace", QMessageBox.ButtonRole.DestructiveRole)
    new = box.addButton("New folder", QMessageBox.ButtonRole.AcceptRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(new)
    box.exec()
    return "replace" if box.clickedButton() is replace else "new" if box.clickedButton() is new else "cancel"


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
        self.base = Path(default_dir or library.path.parent)
        self.library_name = library.path.name
        self.folder = QLineEdit(str(self._default_folder("csv")))
        self.folder.setToolTip("each format has its own default folder; a folder that already holds files "
                               "is never overwritten without asking")
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
        self.note = QLabel(JSPSYCH_NOTE)
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: #444")
        form.addRow(self.note)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Export")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.fmt.currentIndexChanged.connect(self._fmt_changed)
        self._fmt_changed()

    def _default_folder(self, fmt: str) -> Path:
        return self.base / f"{self.library_name}-{FOLDER_SUFFIX[fmt]}"

    def _fmt_changed(self) -> None:
        js = self.fmt.currentData() == "jspsych"
        self.fixation.setEnabled(js)
        self.duration.setEnabled(js)
        self.note.setVisible(js)
        # the folder follows the format unless the user typed or browsed one
        if Path(self.folder.text()) in {self._default_folder(f) for f in FOLDER_SUFFIX}:
            self.folder.setText(str(self._default_folder(self.fmt.currentData())))

    def accept(self) -> None:
        """Ask before writing into a folder that holds files: replace, a fresh folder, or back."""
        folder = Path(self.folder.text()).expanduser()
        text = describe_target(folder)
        if text is not None:
            answer = ask_replace(self, f"{text}\n\nReplace its contents, or export into {fresh_folder(folder)}?")
            if answer == "cancel":
                return
            if answer == "new":
                self.folder.setText(str(fresh_folder(folder)))
        super().accept()

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export into folder", self.folder.text())
        if folder:
            self.folder.setText(folder)

    def request(self) -> ExportRequest:
        return ExportRequest(self.fmt.currentData(), Path(self.folder.text()).expanduser(), self.status.currentData(),
                             self.fixation.value(), self.duration.value())
