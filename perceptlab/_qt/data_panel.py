"""Data: open a trial file, read its validation report, map columns, set exclusions, browse trials and
per-participant summaries. Loading and analysing run in worker threads."""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from perceptlab._qt.analysis.runner import analyse
from perceptlab._qt.mapping_dialog import MappingDialog, file_columns
from perceptlab._qt.messages import show_error
from perceptlab._qt.widgets.pandas_model import PandasModel
from perceptlab._qt.workers import Job
from perceptlab.data.trials import load_trials
from perceptlab.errors import PerceptLabError

TRIAL_FILTER = ("Trial tables (*.csv *.tsv *.txt *.jsonl *.ndjson *.json *.gz);;All files (*)")
UNKNOWN_LAYOUT = "no known trial-table layout"


def _table_view(model) -> QTableView:
    view = QTableView()
    view.setModel(model)
    view.setSortingEnabled(True)
    view.setAlternatingRowColors(True)
    view.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
    view.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
    view.verticalHeader().setDefaultSectionSize(20)
    view.horizontalHeader().setStretchLastSection(True)
    return view


def _fit_columns(view: QTableView, sample: int = 200) -> None:
    """Column widths from the header and the first rows (sizing every row of a 100k table is slow)."""
    model = view.model()
    fm = view.fontMetrics()
    rows = min(model.rowCount(), sample)
    for c in range(model.columnCount()):
        texts = [str(model.headerData(c, Qt.Orientation.Horizontal) or "")]
        texts += [str(model.index(r, c).data() or "") for r in range(rows)]
        view.setColumnWidth(c, min(420, max(fm.horizontalAdvance(t) for t in texts) + 24))


def _with_class_names(table):
    """The trials with the class names beside the class indices (response, true_label)."""
    import numpy as np  # noqa: PLC0415

    df = table.df.copy()
    names = np.asarray(table.classes, dtype=object)
    df.insert(df.columns.get_loc("response") + 1, "response_class", names[df["response"].to_numpy()])
    tl = df["true_label"]
    known = tl.notna().to_numpy()
    true_class = np.full(len(df), None, dtype=object)
    true_class[known] = names[tl[known].to_numpy(dtype=np.int64)]
    df.insert(df.columns.get_loc("true_label") + 1, "true_class", true_class)
    return df


class DataPanel(QWidget):
    message = Signal(str)
    trialsLoaded = Signal(str)  # path

    def __init__(self, session, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.load_job: Job | None = None
        self.analysis_job: Job | None = None
        self.last_dir = Path.home()
        open_button = QPushButton("Open trial file…")
        open_button.clicked.connect(self.open_dialog)
        folder_button = QPushButton("Open folder…")
        folder_button.setToolTip("read every trial file of a folder (e.g. one jsPsych file per participant)")
        folder_button.clicked.connect(self.open_folder_dialog)
        self.mapping_button = QPushButton("Column mapping…")
        self.mapping_button.setEnabled(False)
        self.mapping_button.clicked.connect(self.edit_mapping)
        self.path_label = QLabel("No trial file loaded — open one or drop it on the window.")
        self.classes_edit = QLineEdit()
        self.classes_edit.setPlaceholderText("from the file")
        self.classes_edit.setToolTip(
            "the study's class names in class-index order, comma separated (e.g. cat,dog,deer); "
            "empty: the response names in the file (alphabetical), or the digits 0-9 when the "
            "responses are indices. Applies to the next load (press Enter to reload).")
        self.classes_edit.returnPressed.connect(self.reload)
        self.catch = QDoubleSpinBox()
        self.catch.setRange(0.0, 1.0)
        self.catch.setSingleStep(0.05)
        self.catch.setValue(session.analysis_options["catch_threshold"])
        self.catch.setToolTip("participants whose catch-trial accuracy is at or below this are excluded")
        self.min_resp = QSpinBox()
        self.min_resp.setRange(1, 1000)
        self.min_resp.setValue(session.analysis_options["min_responses"])
        self.min_resp.setToolTip("stimuli with fewer responses are left out of the entropy statistics")
        self.apply_button = QPushButton("Apply exclusions")
        self.apply_button.clicked.connect(self.reanalyse)
        self.apply_button.setEnabled(False)
        # two rows (the file, then the analysis settings), so that the panel fits a 1366-pixel screen;
        # a long path is cut by the label, not by widening the window
        self.path_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        files = QHBoxLayout()
        files.addWidget(open_button)
        files.addWidget(folder_button)
        files.addWidget(self.mapping_button)
        files.addWidget(self.path_label, 1)
        options = QHBoxLayout()
        options.addWidget(QLabel("Classes"))
        options.addWidget(self.classes_edit, 1)
        options.addWidget(QLabel("Exclude at catch accuracy ≤"))
        options.addWidget(self.catch)
        options.addWidget(QLabel("Min responses per stimulus"))
        options.addWidget(self.min_resp)
        options.addWidget(self.apply_button)
        top = QVBoxLayout()
        top.addLayout(files)
        top.addLayout(options)

        self.report_label = QLabel("")
        self.report_label.setWordWrap(True)
        self.report_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.rejected_model = PandasModel()
        self.rejected_view = _table_view(self.rejected_model)
        report = QWidget()
        rl = QVBoxLayout(report)
        rl.addWidget(self.report_label)
        rl.addWidget(QLabel("Rejected rows (line number in the file, kind, reason):"))
        rl.addWidget(self.rejected_view, 1)
        self.trials_model = PandasModel()
        self.trials_view = _table_view(self.trials_model)
        self.participants_model = PandasModel(index_name="participant")
        self.participants_view = _table_view(self.participants_model)
        self.exclusion_label = QLabel("")
        self.exclusion_label.setWordWrap(True)
        parts = QWidget()
        pl = QVBoxLayout(parts)
        pl.addWidget(self.exclusion_label)
        pl.addWidget(self.participants_view, 1)
        self.tabs = QTabWidget()
        self.tabs.addTab(report, "Validation report")
        self.tabs.addTab(self.trials_view, "Trials")
        self.tabs.addTab(parts, "Participants")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self.tabs, 1)
        session.trialsChanged.connect(self._show_trials)
        session.analysisChanged.connect(self._show_analysis)
        session.libraryChanged.connect(self._library_changed)

    # ---- loading

    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open trial file", str(self.last_dir), TRIAL_FILTER)
        if path:
            self.load(Path(path))

    def open_folder_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open a folder of trial files", str(self.last_dir))
        if path:
            self.load(Path(path))

    def classes(self) -> list[str] | None:
        """The class names typed in the Classes box (None: from the file)."""
        text = self.classes_edit.text().strip()
        return [c.strip() for c in text.split(",")] if text else None

    def reload(self) -> Job | None:
        if self.session.trials_path is None:
            return None
        return self.load(self.session.trials_path, self.session.mapping)

    def load(self, path: Path, mapping=None) -> Job:
        path = Path(path)
        self.last_dir = path if path.is_dir() else path.parent
        if self.load_job is not None and self.load_job.is_running():
            self.load_job.disconnect_all()
            self.load_job.cancel()
        if self.analysis_job is not None and self.analysis_job.is_running():
            self.analysis_job.disconnect_all()
            self.analysis_job.cancel()
        self.session.analysis_failure = f"loading {path.name}…"
        self.session.set_analysis(None)  # never leave the previous data's plots up while loading
        job = Job(load_trials, path, mapping, self.classes(), name="load-trials", parent=self)
        job.returned.connect(lambda table: self._loaded(table, path, mapping))
        job.errored.connect(lambda exc: self._load_failed(exc, path))
        self.load_job = job.start()
        self.message.emit(f"Loading {path.name}…")
        return job

    def _loaded(self, table, path: Path, mapping) -> None:
        self.session.analysis_failure = None
        self.session.set_trials(table, path, mapping)
        rep = table.report
        self.message.emit(f"Loaded {path.name}: {rep.rows_used} of {rep.rows_total} rows used, "
                          f"{rep.rows_rejected} rejected" + (" — SYNTHETIC data" if table.synthetic else ""))
        self.trialsLoaded.emit(str(path))
        self.reanalyse()

    def _load_failed(self, exc: BaseException, path: Path) -> None:
        # the previous data set is unloaded: nothing on screen may pass for this file's results
        self.session.analysis_failure = f"{path.name} could not be loaded: {exc}"
        self.session.set_trials(None, None)
        self.report_label.setText(f"<b>{html.escape(str(path))}</b> could not be loaded:<br>"
                                  + html.escape(str(exc)))
        self.rejected_model.clear()
        if isinstance(exc, PerceptLabError) and UNKNOWN_LAYOUT in exc.message:
            self.message.emit(f"{path.name}: layout not recognised — map its columns.")
            self.ask_mapping(path, problem=exc.message)
            return
        self.message.emit(f"Could not load {path.name}.")
        show_error(self, "Could not load the trial file", exc)

    def ask_mapping(self, path: Path, problem: str = "", initial=None) -> bool:
        try:
            columns = file_columns(path)
        except PerceptLabError as exc:
            show_error(self, "Could not read the trial file", exc)
            return False
        dlg = MappingDialog(columns, str(path), self, initial=initial, problem=problem)
        if not dlg.exec():
            self.message.emit("Loading cancelled: no column mapping given.")
            return False
        self.load(path, dlg.mapping())
        return True

    def edit_mapping(self) -> None:
        if self.session.trials_path is not None:
            self.ask_mapping(self.session.trials_path, initial=self.session.mapping)

    # ---- analysis

    def reanalyse(self) -> Job | None:
        table = self.session.trials
        if table is None:
            return None
        opts = self.session.analysis_options
        opts.update(catch_threshold=self.catch.value(), min_responses=self.min_resp.value())
        lib = self.session.library.path if self.session.library is not None else None
        if self.analysis_job is not None and self.analysis_job.is_running():
            self.analysis_job.disconnect_all()
            self.analysis_job.cancel()
        job = Job(analyse, table, lib, self.session.registry, catch_threshold=opts["catch_threshold"],
                  min_responses=opts["min_responses"], k=opts["k"], bins=opts["bins"], name="analyse", parent=self)
        job.returned.connect(self._analysed)
        job.errored.connect(self._analysis_failed)
        self.session.analysis_failure = None
        self.session.set_analysis(None)  # the plots say "analysing…" until the new result is in
        self.analysis_job = job.start()
        self.message.emit("Analysing the trials…")
        return job

    def _analysed(self, analysis) -> None:
        self.session.analysis_failure = None
        self.session.set_analysis(analysis)
        self.message.emit("Analysis ready" + (f" ({len(analysis.skipped)} parts skipped — see Analysis)"
                                              if analysis.skipped else "") + ".")

    def _analysis_failed(self, exc) -> None:
        self.session.analysis_failure = f"the analysis failed: {exc}"
        self.session.set_analysis(None)
        self.message.emit("The analysis failed.")
        show_error(self, "Analysis failed", exc)

    def _library_changed(self) -> None:
        if self.session.trials is not None:
            self.reanalyse()

    # ---- display

    def _show_trials(self) -> None:
        table = self.session.trials
        self.mapping_button.setEnabled(table is not None)
        self.apply_button.setEnabled(table is not None)
        if table is None:
            self.trials_model.clear()
            self.path_label.setText("No trial file loaded — open one or drop it on the window.")
            return
        rep = table.report
        self.path_label.setToolTip(str(rep.source))
        self.path_label.setText(f"<b>{html.escape(Path(rep.source).name)}</b>"
                                + (" — <span style='color:#c8323c'><b>SYNTHETIC</b> (simulated observers)</span>"
                                   if table.synthetic else ""))
        kinds = "".join(f"<li>{n} × {html.escape(k)}</li>" for k, n in rep.rejected_by_kind().items())
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in rep.notes)
        self.report_label.setText(
            f"<b>{html.escape(rep.source)}</b><br>layout <b>{html.escape(rep.layout)}</b>, {html.escape(rep.file_format)}, "
            f"{html.escape(rep.encoding)}<br><b>{rep.rows_used}</b> of {rep.rows_total} rows used, "
            f"<b>{rep.rows_rejected}</b> set aside; {rep.n_participants} participants, {rep.n_stimuli} stimuli<br>"
            f"{len(table.classes)} classes ({html.escape(', '.join(table.classes[:12]))}"
            f"{', …' if len(table.classes) > 12 else ''}) from {html.escape(rep.classes_from)}<br>"
            + (f"<ul>{kinds}</ul>" if kinds else "") + (f"Notes:<ul>{notes}</ul>" if notes else "")
        )
        self.rejected_model.set_frame(rep.rejected)
        self.trials_model.set_frame(_with_class_names(table))
        for view in (self.rejected_view, self.trials_view):
            _fit_columns(view)

    def _show_analysis(self) -> None:
        a = self.session.analysis
        if a is None:
            self.participants_model.clear()
            self.exclusion_label.setText(html.escape(getattr(self.session, "analysis_failure", None) or ""))
            return
        self.participants_model.set_frame(a.participants)
        _fit_columns(self.participants_view)
        self.exclusion_label.setText(html.escape(a.exclusions.summary()).replace("\n", "<br>"))
