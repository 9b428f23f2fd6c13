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
    QCheckBox,
    QComboBox,
    QDialog,
    QDoubleSpinBox,
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
from perceptlab.data.catch import catch_count
from perceptlab.data.library import StimulusLibrary


@dataclass
class ExportRequest:
    fmt: str  # "csv" | "jspsych"
    folder: Path
    status: str | None  # None = all
    fixation_ms: int = 300
    stimulus_ms: int = 200
    layout: str = "choice-screen"
    catch_rate: float = 0.0
    save_hook: str = "none"
    save_url: str | None = None
    download: bool = True


def run_export(library: StimulusLibrary, req: ExportRequest) -> Path:
    """The engine call behind the dialog (run in a worker thread)."""
    if req.fmt == "csv":
        return export_csv(library, req.folder, status=req.status)
    return export_jspsych(library, req.folder, status=req.status, fixation_ms=req.fixation_ms,
                          stimulus_ms=req.stimulus_ms, layout=req.layout, catch_rate=req.catch_rate,
                          save_hook=req.save_hook, save_url=req.save_url, download=req.download)


FOLDER_SUFFIX = {"csv": "csv", "jspsych": "jspsych"}
JSPSYCH_NOTE = (f"The experiment's <b>{JSPSYCH_DIR}/</b> folder is left empty: copy jsPsych 8 into it before "
                f"running ({', '.join(JSPSYCH_FILES)}; each layout loads the ones it needs). The README.txt "
                "written with the export gives the commands (or use <i>perceptlab library export "
                "--jspsych-from DIR</i>); index.html says which file is missing. Every answered trial is "
                "kept in the browser's localStorage; recover.html downloads interrupted sessions.")


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
        self.fmt.addItem("jsPsych experiment (fixation, stimulus, choice; data kept in the browser)", "jspsych")
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
        self.layout_choice = QComboBox()
        self.layout_choice.addItem("choice screen after the image (the papers' protocol)", "choice-screen")
        self.layout_choice.addItem("buttons shown with the image", "buttons-with-image")
        self.catch_rate = QDoubleSpinBox()
        self.catch_rate.setRange(0.0, 0.9)
        self.catch_rate.setSingleStep(0.05)
        self.catch_rate.setDecimals(2)
        self.catch_rate.setToolTip("share of catch trials among all trials (real MNIST digits with known labels; 0.1 = one trial in "
                                   "ten); "
                                   "they drive the catch-accuracy exclusion")
        self.n_stimuli = dict(summary)
        self.catch_rate.valueChanged.connect(self._catch_changed)
        self.status.currentIndexChanged.connect(self._catch_changed)
        self.catch_label = QLabel()
        catch_row = QHBoxLayout()
        catch_row.addWidget(self.catch_rate)
        catch_row.addWidget(self.catch_label, 1)
        self.save_hook = QComboBox()
        self.save_hook.addItem("none (download at the end + localStorage)", "none")
        self.save_hook.addItem("POST each row to a URL (queued until the server answers)", "post")
        self.save_hook.addItem("JATOS", "jatos")
        self.save_hook.addItem("Pavlovia (its jsPsych plugin; untested offline)", "pavlovia")
        self.save_url = QLineEdit()
        self.save_url.setPlaceholderText("https://… or /save on the same server")
        self.download = QCheckBox("download the data as CSV at the end")
        self.download.setChecked(True)
        self.save_hook.currentIndexChanged.connect(self._hook_changed)
        form = QFormLayout(self)
        form.addRow("Format", self.fmt)
        form.addRow("Stimuli", self.status)
        form.addRow("Folder", row)
        form.addRow("Fixation", self.fixation)
        form.addRow("Stimulus shown", self.duration)
        form.addRow("Layout", self.layout_choice)
        form.addRow("Catch trials", catch_row)
        form.addRow("Save hook", self.save_hook)
        form.addRow("Save URL", self.save_url)
        form.addRow("", self.download)
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
        self._catch_changed()

    def _default_folder(self, fmt: str) -> Path:
        return self.base / f"{self.library_name}-{FOLDER_SUFFIX[fmt]}"

    def _fmt_changed(self) -> None:
        js = self.fmt.currentData() == "jspsych"
        for w in (self.fixation, self.duration, self.layout_choice, self.catch_rate, self.save_hook,
                  self.download):
            w.setEnabled(js)
        self._hook_changed()
        self.note.setVisible(js)
        # the folder follows the format unless the user typed or browsed one
        if Path(self.folder.text()) in {self._default_folder(f) for f in FOLDER_SUFFIX}:
            self.folder.setText(str(self._default_folder(self.fmt.currentData())))

    def _hook_changed(self) -> None:
        self.save_url.setEnabled(self.fmt.currentData() == "jspsych" and self.save_hook.currentData() == "post")

    def _catch_changed(self) -> None:
        status = self.status.currentData()
        n = sum(self.n_stimuli.values()) if status is None else self.n_stimuli.get(status, 0)
        k = catch_count(n, self.catch_rate.value()) if n else 0
        self.catch_label.setText(f"{k} catch trials for {n} stimuli")

    def accept(self) -> None:
        """Ask before writing into a folder that holds files: replace, a fresh folder, or back."""
        folder = Path(self.folder.text()).expanduser()
        if self.fmt.currentData() == "jspsych" and self.save_hook.currentData() == "post" \
                and not self.save_url.text().strip():
            QMessageBox.warning(self, "Save URL missing", "The POST save hook sends every row to a URL: "
                                "give the save URL, or pick another save hook.")
            return
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
        hook = self.save_hook.currentData()
        return ExportRequest(self.fmt.currentData(), Path(self.folder.text()).expanduser(), self.status.currentData(),
                             self.fixation.value(), self.duration.value(), self.layout_choice.currentData(),
                             round(self.catch_rate.value(), 2), hook,
                             (self.save_url.text().strip() or None) if hook == "post" else None,
                             self.download.isChecked())
