"""Align: fine-tune a GroupNet and/or IndivNets on the loaded trials, watch the progress, see how well
Base, Group and Indiv models predict the choices, manage the fine-tuned models; and (Manipulate page)
send a manipulation between two participants to Explore.

The work is :func:`perceptlab.align.pipeline.run_alignment` (the engine behind ``perceptlab align``),
run in a worker thread; Cancel stops it at the next record and, as the pipeline guarantees, leaves the
models already finished complete and nothing of the one in flight.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import pandas as pd
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from perceptlab._qt.align.manipulate import ManipulateView
from perceptlab._qt.align.plots import BinGainView, EntropyScatterView, GainView
from perceptlab._qt.align.runner import (
    accuracy_table,
    align_run,
    base_models,
    existing_names,
    planned_names,
    user_models_frame,
)
from perceptlab._qt.messages import ask_yes_no, show_error
from perceptlab._qt.widgets.combos import refill_combo
from perceptlab._qt.widgets.pandas_model import PandasModel
from perceptlab._qt.widgets.plot_export import ExportButton
from perceptlab._qt.workers import Job
from perceptlab.align.layers import TRAINABLE
from perceptlab.align.pipeline import LEVELS, AlignJob
from perceptlab.align.recipe import SELECT_BY, FinetuneRecipe
from perceptlab.align.split import SplitSettings
from perceptlab.align.store import delete_model, rename_model
from perceptlab.errors import PerceptLabError

NO_TRIALS = ("No trials loaded: load a trial file in the <b>Data</b> tab (File › Open trial file…, or drop it on "
             "the window). The demo project (File › Open demo project) loads synthetic trials.")
LEVEL_LABELS = {"group": "group: one GroupNet", "individual": "individual: IndivNets from the base",
                "both": "both: GroupNet, then IndivNets from it"}
LEVEL_HINTS = {"group": "Checked participants' trials train the GroupNet.",
               "individual": "One IndivNet per checked participant, fine-tuned from the base (pick a GroupNet).",
               "both": "GroupNet on all trials, then one IndivNet per checked participant."}
REDRAW_MS = 100


def _table(model) -> QTableView:
    view = QTableView()
    view.setModel(model)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.verticalHeader().setVisible(False)
    view.setAlternatingRowColors(True)
    return view


class AlignPanel(QWidget):
    message = Signal(str)
    runningChanged = Signal(bool)
    showExplore = Signal()

    def __init__(self, session, explore=None, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.job: Job | None = None
        self.metrics: dict | None = None
        self.synthetic = False
        self.images_dir: Path | None = None
        self.last_dir = Path.home()
        self._latest: dict | None = None  # the newest record not drawn yet
        self._epoch: dict | None = None  # the newest epoch record (validation metrics)
        self._models_seen: list[str] = []
        self._n_models = 0
        self._data_text = ""
        self._outcome = ""  # "done" | "cancelled" | "error" once a run ended

        # ---- left: what to fine-tune
        self.base = QComboBox()
        self.base.setToolTip("zoo model (level group / both) or a GroupNet (level individual)")
        self.level = QComboBox()
        for name in LEVELS:
            self.level.addItem(LEVEL_LABELS[name], name)
        self.level_hint = QLabel()
        self.level_hint.setWordWrap(True)
        self.level_hint.setStyleSheet("color: #555")
        model_box = QGroupBox("Model")
        mf = QFormLayout(model_box)
        mf.addRow("Base model", self.base)
        mf.addRow("Level", self.level)
        mf.addRow(self.level_hint)

        self.people = QListWidget()
        self.people.setMinimumHeight(110)
        self.people.setToolTip("checked participants take part (see the level)")
        self.people_label = QLabel()
        self.people_label.setWordWrap(True)
        self.people_label.setTextFormat(Qt.TextFormat.RichText)
        all_button = QPushButton("All")
        none_button = QPushButton("None")
        all_button.clicked.connect(lambda: self._check_all(True))
        none_button.clicked.connect(lambda: self._check_all(False))
        self.people_buttons = (all_button, none_button)
        people_box = QGroupBox("Participants")
        pl = QVBoxLayout(people_box)
        pl.addWidget(self.people_label)
        pl.addWidget(self.people, 1)
        row = QHBoxLayout()
        row.addWidget(all_button)
        row.addWidget(none_button)
        row.addStretch(1)
        pl.addLayout(row)

        r = FinetuneRecipe()
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 1000)
        self.epochs.setValue(r.epochs)
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(6)
        self.lr.setRange(1e-6, 1.0)
        self.lr.setSingleStep(1e-4)
        self.lr.setValue(r.lr)
        self.batch_size = QSpinBox()
        self.batch_size.setRange(2, 8192)
        self.batch_size.setValue(r.batch_size)
        self.weight_decay = QDoubleSpinBox()
        self.weight_decay.setDecimals(4)
        self.weight_decay.setRange(0.0, 1.0)
        self.weight_decay.setSingleStep(0.01)
        self.weight_decay.setValue(r.weight_decay)
        self.trainable = QComboBox()
        self.indiv_trainable = QComboBox()
        for combo, auto in ((self.trainable, "auto (all on a GPU, head on a CPU)"),
                            (self.indiv_trainable, "auto (calibration)")):
            combo.addItem(auto, "auto")
            for name in TRAINABLE:
                combo.addItem(name, name)
        self.trainable.setToolTip("GroupNet: all (paper), head (frozen trunk: fast on a CPU), readout (last layer), "
                                  "calibration (per-class logit offset and scale)")
        self.indiv_trainable.setToolTip("IndivNets: the same choices; calibration is robust with a few hundred trials")
        self.labels = QComboBox()
        self.labels.addItem("hard: each response", False)
        self.labels.addItem("soft: choice distribution per stimulus", True)
        self.soft_confidence = QDoubleSpinBox()
        self.soft_confidence.setRange(0.0, 1.0)
        self.soft_confidence.setSingleStep(0.05)
        self.soft_confidence.setValue(r.soft_confidence)
        self.soft_confidence.setToolTip("soft labels: W × distribution + (1 − W) × uniform")
        self.select_by = QComboBox()
        for name in SELECT_BY:
            self.select_by.addItem(name.replace("_", " "), name)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setValue(r.seed)
        recipe_box = QGroupBox("Recipe (defaults: the paper's)")
        rf = QFormLayout(recipe_box)
        rf.addRow("Epochs", self.epochs)
        rf.addRow("Learning rate", self.lr)
        rf.addRow("Batch size", self.batch_size)
        rf.addRow("Weight decay", self.weight_decay)
        rf.addRow("GroupNet trains", self.trainable)
        rf.addRow("IndivNets train", self.indiv_trainable)
        rf.addRow("Labels", self.labels)
        rf.addRow("Soft-label weight", self.soft_confidence)
        rf.addRow("Best epoch by", self.select_by)
        rf.addRow("Seed", self.seed)

        self.images_label = QLabel()
        self.images_label.setWordWrap(True)
        folder_button = QPushButton("Image folder…")
        folder_button.setToolTip("a folder of the stimulus images, matched to the trials by file name")
        folder_button.clicked.connect(self.choose_images_folder)
        self.use_library_button = QPushButton("Use the library")
        self.use_library_button.clicked.connect(lambda: self.set_images_folder(None))
        self.val_fraction = QDoubleSpinBox()
        self.val_fraction.setRange(0.01, 0.5)
        self.val_fraction.setSingleStep(0.05)
        self.val_fraction.setValue(SplitSettings().val_fraction)
        self.test_fraction = QDoubleSpinBox()
        self.test_fraction.setRange(0.01, 0.8)
        self.test_fraction.setSingleStep(0.05)
        self.test_fraction.setValue(SplitSettings().test_fraction)
        self.skip_unmatched = QCheckBox("leave out trials whose stimulus has no image")
        data_box = QGroupBox("Images and split (by stimulus)")
        df = QFormLayout(data_box)
        df.addRow(self.images_label)
        irow = QHBoxLayout()
        irow.addWidget(folder_button)
        irow.addWidget(self.use_library_button)
        irow.addStretch(1)
        df.addRow(irow)
        df.addRow("Validation share", self.val_fraction)
        df.addRow("Test share", self.test_fraction)
        df.addRow(self.skip_unmatched)

        self.run_button = QPushButton("Run")
        self.run_button.setObjectName("align_run")
        self.run_button.setToolTip("fine-tune and evaluate (Ctrl+Return)")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("align_cancel")
        self.cancel_button.setToolTip("stop after the current step; finished models are kept (Esc)")
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setFormat("idle")
        self.progress.setTextVisible(True)
        self.progress_text = QLabel("Choose a base model and participants, then Run.")
        self.progress_text.setWordWrap(True)
        self.progress_text.setMinimumHeight(36)
        self.progress_text.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)

        left = QWidget()
        ll = QVBoxLayout(left)
        ll.addWidget(model_box)
        ll.addWidget(people_box, 1)
        ll.addWidget(recipe_box)
        ll.addWidget(data_box)
        ll.addStretch(0)
        scroll = QScrollArea()
        scroll.setWidget(left)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(left.sizeHint().width() + scroll.verticalScrollBar().sizeHint().width() + 4)
        run_row = QHBoxLayout()
        run_row.addWidget(self.run_button)
        run_row.addWidget(self.cancel_button)
        left_outer = QWidget()
        lo = QVBoxLayout(left_outer)
        lo.setContentsMargins(0, 0, 0, 0)
        lo.addWidget(scroll, 1)
        lo.addLayout(run_row)
        lo.addWidget(self.progress)
        lo.addWidget(self.progress_text)

        # ---- right: results and the fine-tuned models
        self.summary = QLabel("No results yet.")
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.accuracy_model = PandasModel()
        self.accuracy_view = _table(self.accuracy_model)
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

        self.models_model = PandasModel()
        self.models_view = _table(self.models_model)
        self.models_view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.models_view.horizontalHeader().setStretchLastSection(True)
        self.models_view.selectionModel().selectionChanged.connect(lambda *_: self._update_buttons())
        self.rename_button = QPushButton("Rename…")
        self.delete_button = QPushButton("Delete…")
        self.rename_button.clicked.connect(self.rename_selected)
        self.delete_button.clicked.connect(self.delete_selected)
        self.models_folder_label = QLabel()
        self.models_folder_label.setStyleSheet("color: #555")
        self.models_folder_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        models_box = QGroupBox("Fine-tuned models")
        mb = QVBoxLayout(models_box)
        mb.addWidget(self.models_folder_label)
        mb.addWidget(self.models_view, 1)
        brow = QHBoxLayout()
        brow.addStretch(1)
        brow.addWidget(self.rename_button)
        brow.addWidget(self.delete_button)
        mb.addLayout(brow)

        results = QWidget()
        rl = QVBoxLayout(results)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(self.summary)
        rl.addLayout(res_row)
        rl.addWidget(self.accuracy_view)
        rl.addWidget(self.plots, 1)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(results)
        right.addWidget(models_box)
        right.setStretchFactor(0, 3)
        right.setStretchFactor(1, 1)
        right.setSizes([600, 200])

        self.splitter = QSplitter()
        self.splitter.addWidget(left_outer)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setCollapsible(0, False)
        self.splitter.setSizes([scroll.minimumWidth(), 1000])
        finetune = QWidget()
        fl = QVBoxLayout(finetune)
        fl.setContentsMargins(0, 0, 0, 0)
        fl.addWidget(self.splitter)

        self.manipulate = ManipulateView(session, explore, self)
        self.manipulate.message.connect(self.message)
        self.manipulate.showExplore.connect(self.showExplore)
        self.tabs = QTabWidget()
        self.tabs.addTab(finetune, "Fine-tune")
        self.tabs.addTab(self.manipulate, "Manipulate")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.tabs)

        # ---- wiring
        self.run_shortcut = QShortcut(QKeySequence("Ctrl+Return"), self, self.run)
        self.cancel_shortcut = QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.cancel)
        for sc in (self.run_shortcut, self.cancel_shortcut):
            sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.run_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(self.cancel)
        self.level.currentIndexChanged.connect(self._level_changed)
        self.labels.currentIndexChanged.connect(lambda: self.soft_confidence.setEnabled(bool(self.labels.currentData())))
        self.people.itemChanged.connect(lambda *_: self._update_buttons())
        self._redraw = QTimer(self)
        self._redraw.setSingleShot(True)
        self._redraw.setInterval(REDRAW_MS)
        self._redraw.timeout.connect(self._apply_latest)
        session.trialsChanged.connect(self.refresh_participants)
        session.libraryChanged.connect(self._images_changed)
        session.modelsChanged.connect(self.refresh_models)
        self.soft_confidence.setEnabled(False)
        self.refresh_models()
        self.refresh_participants()
        self._images_changed()
        self._level_changed()
        self.show_results(None)

    # ---- pickers

    def refresh_models(self) -> None:
        """Refill the base picker and the fine-tuned model list (after a run, rename, delete)."""
        reg = self.session.registry
        refill_combo(self.base, [(label, name) for name, label in base_models(reg)], preferred="vgg")
        self.models_model.set_frame(user_models_frame(reg))
        self.models_view.resizeColumnsToContents()
        self.models_folder_label.setText(f"in {reg.user_dir} (they appear in every classifier picker)")
        self._update_buttons()

    def refresh_participants(self) -> None:
        table = self.session.trials
        self.people.blockSignals(True)
        self.people.clear()
        if table is None:
            self.people_label.setText(NO_TRIALS)
        else:
            df = table.df
            counts = df.groupby(df["participant"].astype(str), sort=False).size()
            for pid, n in counts.items():
                item = QListWidgetItem(f"{pid}  ({n} trials)")
                item.setData(Qt.ItemDataRole.UserRole, str(pid))
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(Qt.CheckState.Checked)
                self.people.addItem(item)
            synth = " <span style='color:#c8323c'><b>SYNTHETIC</b> (simulated observers)</span>" \
                if getattr(table, "synthetic", False) else ""
            self.people_label.setText(f"{len(counts)} participants in {html.escape(Path(table.report.source).name)}"
                                      f"{synth}")
        self.people.blockSignals(False)
        has = table is not None
        self.people.setEnabled(has)
        for b in self.people_buttons:
            b.setEnabled(has)
        self._update_buttons()

    def _check_all(self, checked: bool) -> None:
        state = Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked
        self.people.blockSignals(True)
        for i in range(self.people.count()):
            self.people.item(i).setCheckState(state)
        self.people.blockSignals(False)
        self._update_buttons()

    def set_checked_participants(self, participants) -> None:
        want = {str(p) for p in participants}
        self.people.blockSignals(True)
        for i in range(self.people.count()):
            item = self.people.item(i)
            item.setCheckState(Qt.CheckState.Checked if item.data(Qt.ItemDataRole.UserRole) in want
                               else Qt.CheckState.Unchecked)
        self.people.blockSignals(False)
        self._update_buttons()

    def checked_participants(self) -> list[str]:
        return [self.people.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.people.count())
                if self.people.item(i).checkState() == Qt.CheckState.Checked]

    def _level_changed(self) -> None:
        level = self.level.currentData()
        entry = self.session.registry.entries().get(self.base.currentData())
        if level == "individual" and entry is not None and entry.builtin:
            groups = [i for i in range(self.base.count()) if self.base.itemText(i).endswith("(GroupNet)")]
            if groups:  # IndivNets start from a GroupNet (a zoo model still works, as the note says)
                self.base.setCurrentIndex(groups[0])
        self.level_hint.setText(LEVEL_HINTS[level])
        self.indiv_trainable.setEnabled(self.level.currentData() != "group")
        self.trainable.setEnabled(self.level.currentData() != "individual")

    # ---- images

    def choose_images_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Folder of the stimulus images", str(self.last_dir))
        if path:
            self.set_images_folder(Path(path))

    def set_images_folder(self, path: Path | None) -> None:
        self.images_dir = Path(path) if path is not None else None
        if path is not None:
            self.last_dir = Path(path)
        self._images_changed()

    def _images_changed(self) -> None:
        lib = self.session.library
        if self.images_dir is not None:
            text = f"Images from the folder <b>{html.escape(str(self.images_dir))}</b>"
        elif lib is not None:
            text = f"Images from the open library <b>{html.escape(lib.path.name)}</b>"
        else:
            text = ("<span style='color:#c8323c'>No images: open the library that holds the stimuli (File menu) "
                    "or choose an image folder.</span>")
        self.images_label.setText(text)
        self.use_library_button.setEnabled(self.images_dir is not None and lib is not None)
        self._update_buttons()

    # ---- running

    def is_running(self) -> bool:
        return self.job is not None and self.job.is_running()

    def recipe(self) -> FinetuneRecipe:
        return FinetuneRecipe(
            epochs=self.epochs.value(), lr=float(self.lr.value()), batch_size=self.batch_size.value(),
            weight_decay=float(self.weight_decay.value()), trainable=self.trainable.currentData(),
            indiv_trainable=self.indiv_trainable.currentData(), soft_labels=bool(self.labels.currentData()),
            soft_confidence=float(self.soft_confidence.value()), select_by=self.select_by.currentData(),
            seed=self.seed.value(),
        ).validate()

    def _job(self, overwrite: bool = False) -> AlignJob:
        level = self.level.currentData()
        people = self.checked_participants()
        if not people:
            raise PerceptLabError("no participant is checked", "check the participants to fine-tune on (All)")
        everybody = len(people) == self.people.count()
        return AlignJob(base=self.base.currentData(), level=level, participants=None if everybody else people,
                        recipe=self.recipe(), register=True, models_dir=self.session.registry.user_dir,
                        overwrite=overwrite).validate()

    def run(self) -> bool:
        """Start fine-tuning (Ctrl+Return); False when nothing started (the reason is shown)."""
        if self.is_running():
            return False
        s = self.session
        try:
            if s.trials is None:
                raise PerceptLabError("no trials are loaded", "load a trial file in the Data tab first")
            if self.base.currentData() is None:
                raise PerceptLabError("no base model", "install the classifier zoo (see 'perceptlab models')")
            library = s.library.path if s.library is not None and self.images_dir is None else None
            if library is None and self.images_dir is None:
                raise PerceptLabError("no images for the trials",
                                      "open the library that holds the stimuli (File menu) or choose an image folder")
            if s.mnist is None:
                raise PerceptLabError("the MNIST digits are still loading", "try again in a moment")
            job = self._job()
            people = self.checked_participants()
            names = planned_names(job, people, s.registry)
            clash = existing_names(names, s.registry.user_dir)
            if clash:
                shown = ", ".join(clash[:6]) + (", …" if len(clash) > 6 else "")
                if not ask_yes_no(self, "Replace models?",
                                  f"{len(clash)} fine-tuned model(s) of this run already exist: {shown}.\n\n"
                                  "Replace them? (No: rename or delete them in the Fine-tuned models list first.)"):
                    self.message.emit("Fine-tuning not started: the models already exist.")
                    return False
                job.overwrite = True
            split = SplitSettings(float(self.val_fraction.value()), float(self.test_fraction.value())).validate()
        except PerceptLabError as exc:
            show_error(self, "Cannot fine-tune", exc)
            return False
        self._n_models = len(names)
        self._models_seen = []
        self._latest = self._epoch = None
        self._outcome = ""
        self._data_text = ""
        self.synthetic = bool(getattr(s.trials, "synthetic", False))
        self.job = Job(align_run, s.trials, library=library, images_dir=self.images_dir, split=split,
                       skip_unmatched=self.skip_unmatched.isChecked(), job=job, mnist=s.mnist,
                       registry=s.registry, device=s.device, name="align", parent=self)
        self.job.yielded.connect(self._on_record)
        self.job.returned.connect(self._on_returned)
        self.job.errored.connect(self._on_error)
        self.job.cancelled.connect(self._on_cancelled)
        self.job.finished.connect(self._on_finished)
        self.job.start()
        self.progress.setValue(0)
        self.progress.setFormat("starting…")
        self.progress_text.setText(f"{len(names)} model(s): {', '.join(names[:4])}{' …' if len(names) > 4 else ''}")
        self._set_running(True)
        self.message.emit(f"Fine-tuning {len(names)} model(s) from {job.base} ({job.level})…")
        return True

    def cancel(self) -> None:
        """Stop after the current step (Esc); finished models are kept, the one in flight is not saved."""
        if self.is_running() and not self.job.cancel_requested:
            self.job.cancel()
            self.cancel_button.setEnabled(False)
            self.progress.setFormat("cancelling…")

    def _set_running(self, running: bool) -> None:
        self.runningChanged.emit(running)
        self._update_buttons()

    def _update_buttons(self) -> None:
        running = self.is_running()
        ready = (self.session.trials is not None and self.base.count() > 0
                 and (self.session.library is not None or self.images_dir is not None)
                 and bool(self.checked_participants()))
        self.run_button.setEnabled(ready and not running)
        self.cancel_button.setEnabled(running and not (self.job is not None and self.job.cancel_requested))
        has_sel = bool(self.models_view.selectionModel().selectedRows())
        self.rename_button.setEnabled(has_sel and not running)
        self.delete_button.setEnabled(has_sel and not running)

    # ---- progress (records are coalesced: steps may come far faster than the window should repaint)

    def _on_record(self, rec: dict) -> None:
        kind = rec.get("kind")
        model = rec.get("model")
        if model and rec.get("stage") in ("group", "individual") and model not in self._models_seen:
            self._models_seen.append(model)
        if kind == "data":
            sp = rec["summary"]["split"]
            self._data_text = (f"{rec['summary']['trials']} trials, {rec['summary']['participants']} participants, "
                               f"{rec['summary']['stimuli']} stimuli; split by stimulus: train {sp['train']['trials']}"
                               f", validation {sp['val']['trials']}, test {sp['test']['trials']} trials")
            for note in rec["summary"].get("notes", []):
                self.message.emit(f"Note: {note}")
        elif kind == "note":
            self.message.emit(f"Note: {rec['message']}")
        elif kind == "saved":
            self.message.emit(f"Saved {rec['model']}.")
        if kind == "epoch":
            self._epoch = rec
        self._latest = rec
        if not self._redraw.isActive():
            self._redraw.start()

    def _apply_latest(self) -> None:
        rec = self._latest
        if rec is None or self._outcome:
            return
        n = max(self._n_models, 1)
        stage = rec.get("stage")
        i = max(len(self._models_seen), 1)
        epoch = self._epoch or {}
        if stage in ("group", "individual"):
            frac = 0.0
            if rec.get("kind") == "step" and rec.get("total"):
                frac = rec["step"] / rec["total"]
            elif epoch.get("epochs"):
                frac = epoch["epoch"] / epoch["epochs"]
            value = (i - 1 + frac) / (n + 0.5)
            what = "GroupNet" if stage == "group" else "IndivNet"
            text = f"{what} {rec.get('model')} — model {i} of {n}"
            if epoch and epoch.get("model") == rec.get("model"):
                text += (f", epoch {epoch['epoch']}/{epoch['epochs']}: validation accuracy "
                         f"{epoch['val_accuracy']:.3f}, loss {epoch['val_loss']:.3f} (best epoch {epoch['best_epoch']})")
            elif rec.get("kind") == "features":
                text += f", caching features {rec['done']}/{rec['total']}"
            self.progress.setFormat(f"model {i} of {n} — %p%")
        elif stage == "evaluate":
            value = n / (n + 0.5)
            text = "Evaluating on the held-out test part" + (f": {rec['model']}" if rec.get("model") else "…")
            self.progress.setFormat("evaluating — %p%")
        else:
            value = 0.0
            text = "Matching the trials to their images…" if rec.get("kind") == "stage" else self._data_text
            self.progress.setFormat("preparing…")
        self.progress.setValue(int(1000 * min(max(value, 0.0), 1.0)))
        self.progress_text.setText(text)

    def _on_returned(self, metrics: dict) -> None:
        self._outcome = "done"
        self._redraw.stop()
        self.progress.setValue(1000)
        self.progress.setFormat("done")
        secs = metrics.get("seconds", {}).get("total")
        self.progress_text.setText(f"Fine-tuned {len(metrics.get('models', {}))} model(s)"
                                   + (f" in {secs:.1f} s" if isinstance(secs, (int, float)) else "") + ".")
        self.show_results(metrics, self.synthetic)
        self.message.emit("Alignment done: " + ", ".join(metrics.get("models", {})))

    def _on_error(self, exc) -> None:
        if isinstance(exc, PerceptLabError) and "have no image in" in exc.message:
            # the engine's fix names the command-line options; say it in this panel's words
            exc = PerceptLabError(exc.message, "choose the library or image folder that holds them (Images and "
                                               "split), or check 'leave out trials whose stimulus has no image'")
        self._outcome = "error"
        self._redraw.stop()
        self.progress.setFormat("failed")
        self.progress_text.setText(f"Failed: {exc}")
        self.message.emit("Fine-tuning failed.")
        show_error(self, "Fine-tuning failed", exc)

    def _on_cancelled(self) -> None:
        self._outcome = "cancelled"
        self._redraw.stop()
        self.progress.setFormat("cancelled")
        self.progress_text.setText("Cancelled: the models finished before the cancel are saved; the one in "
                                   "progress was not.")
        self.message.emit("Fine-tuning cancelled.")

    def _on_finished(self) -> None:
        self._set_running(False)
        self.session.models_changed()  # new (or, when cancelled, some finished) models are in the registry

    # ---- results

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
        job = metrics.get("job", {})
        names = ", ".join(html.escape(n) for n in metrics.get("models", {}))
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
        self.last_dir = path.parent
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
        self.last_dir = Path(path).parent
        self.show_results(metrics, False)
        self.message.emit(f"Showing {path}")
        return True

    # ---- fine-tuned models

    def selected_model(self) -> str | None:
        rows = self.models_view.selectionModel().selectedRows()
        if not rows:
            return None
        return str(self.models_model.frame().iloc[rows[0].row()]["name"])

    def select_model(self, name: str) -> bool:
        frame = self.models_model.frame()
        hits = frame.index[frame["name"] == name] if len(frame) else []
        if not len(hits):
            return False
        self.models_view.selectRow(int(hits[0]))
        return True

    def rename_selected(self) -> str | None:
        old = self.selected_model()
        if old is None:
            return None
        new, ok = QInputDialog.getText(self, "Rename model", f"New name for {old}:", text=old)
        new = (new or "").strip()
        if not ok or not new or new == old:
            return None
        try:
            rename_model(old, new, self.session.registry.user_dir, registry=self.session.registry)
        except PerceptLabError as exc:
            show_error(self, "Could not rename the model", exc)
            return None
        self.session.models_changed()
        self.select_model(new)
        self.message.emit(f"Renamed {old} to {new}.")
        return new

    def delete_selected(self) -> bool:
        name = self.selected_model()
        if name is None:
            return False
        if not ask_yes_no(self, "Delete model", f"Delete the fine-tuned model {name}?\n\nIts weights and "
                          f"settings are removed from {self.session.registry.user_dir}; this cannot be undone."):
            return False
        try:
            delete_model(name, self.session.registry.user_dir, registry=self.session.registry)
        except PerceptLabError as exc:
            show_error(self, "Could not delete the model", exc)
            return False
        self.session.models_changed()
        self.message.emit(f"Deleted {name}.")
        return True

    def shutdown(self) -> None:
        if self.is_running():
            self.job.disconnect_all()
            self.job.cancel()
            self.job.wait()
