"""Explore: set up boundary sampling, watch it step by step, re-judge, keep the good ones."""

from __future__ import annotations

import json
import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from perceptlab._qt.explore.controller import GenerationController, Reference
from perceptlab._qt.explore.form import FilterForm, SamplerForm
from perceptlab._qt.explore.preview import COLOR_A, COLOR_B, PreviewModel, PreviewView, prob_label
from perceptlab._qt.explore.reference import ReferencePicker
from perceptlab._qt.explore.thresholds import ReferenceThresholds
from perceptlab._qt.messages import show_error
from perceptlab._qt.widgets.combos import classifier_groups
from perceptlab._qt.widgets.images import qpixmap
from perceptlab.engine.filters import FilterSettings
from perceptlab.engine.sampler import SamplerSettings
from perceptlab.errors import PerceptLabError


def prob_sources(s: SamplerSettings | None) -> tuple[str, str] | None:
    """(classifier 1, classifier 2) when p(a) and p(b) come from different classifiers (controversial)."""
    if s is None or s.mode != "controversial" or not s.classifier2:
        return None
    return s.classifier, s.classifier2


def _guiding(s: SamplerSettings | None) -> list[str]:
    """The classifiers whose probabilities a run's verdicts use."""
    if s is None:
        return []
    return [s.classifier, *([s.classifier2] if s.mode == "controversial" and s.classifier2 else [])]


class ExplorePanel(QWidget):
    message = Signal(str)
    runningChanged = Signal(bool)

    def __init__(self, session, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        reg = session.registry
        classifiers = reg.names("classifier")
        has_judge = "judge" in reg.names("judge")
        self.controller = GenerationController(session, self)
        self.form = SamplerForm(classifiers, has_judge)
        self.form.set_classifiers(classifier_groups(reg))
        self.filter_form = FilterForm()
        self.form.presetApplied.connect(self.filter_form.apply_preset)
        if self.form.preset.currentData() is not None:
            self.filter_form.apply_preset(self.form.preset.currentData(), self.form.mode.currentData())

        # reference image
        self.ref_label = QLabel("none")
        self.ref_image = QLabel()
        self.ref_image.setFixedSize(36, 36)
        pick = QPushButton("Choose…")
        pick.clicked.connect(self.choose_reference)
        clear = QPushButton("Clear")
        clear.clicked.connect(lambda: self.set_reference(None))
        ref_row = QHBoxLayout()
        ref_row.setContentsMargins(0, 0, 0, 0)
        ref_row.addWidget(self.ref_image)
        ref_row.addWidget(self.ref_label, 1)
        ref_row.addWidget(pick)
        ref_row.addWidget(clear)
        self.reference: Reference | None = None

        # run controls
        self.generate_button = QPushButton("Generate")
        self.generate_button.setObjectName("generate")
        self.generate_button.setDefault(True)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setObjectName("stop")
        self.stop_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setFormat("idle")
        run_row = QHBoxLayout()
        run_row.addWidget(self.generate_button)
        run_row.addWidget(self.stop_button)
        run_row.addWidget(self.progress, 1)
        # what a tagged run (Align > Manipulate) is for, and the tags its stimuli get in the library
        self.run_note = QLabel()
        self.run_note.setWordWrap(True)
        self.run_note.setStyleSheet("background: #fff4d6; border: 1px solid #e0c070; padding: 3px")
        self.run_note.setVisible(False)

        left = QWidget()
        ll = QVBoxLayout(left)
        ll.addWidget(self.form)
        ref_widget = QWidget()
        ref_widget.setLayout(ref_row)
        ref_widget.setToolTip("a reference image (from MNIST or a file) that the pixel constraint keeps the "
                              "sample close to, with strength Reference α")
        self.form.batch_form.addRow("Reference", ref_widget)
        self.form.sections.addTab(self.filter_form, "Filter")
        self.form.sections.setTabToolTip(2, "acceptance thresholds; editing them re-judges the batch shown")
        ll.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(left)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(left.sizeHint().width() + scroll.verticalScrollBar().sizeHint().width() + 4)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

        # preview grid, step plot and actions
        self.model = PreviewModel(self)
        self.view = PreviewView()
        self.view.setModel(self.model)
        self.view.selectionModel().currentChanged.connect(lambda *_: self._show_current())
        self.view.selectionModel().selectionChanged.connect(lambda *_: self._update_buttons())
        self.plot = pg.PlotWidget()
        self.plot.setMinimumHeight(150)
        self.plot.setLabel("bottom", "step")
        self.plot.setLabel("left", "probability")
        self.plot.setYRange(0, 1, padding=0.02)
        self.plot.setXRange(0, 50, padding=0.02)
        self.plot.setMouseEnabled(False, False)
        self.plot.hideButtons()
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        self.plot.addLegend(offset=(-10, 10))
        self.curve_a = self.plot.plot([], [], pen=pg.mkPen(COLOR_A, width=2), name="p(a)")
        self.curve_b = self.plot.plot([], [], pen=pg.mkPen(COLOR_B, width=2), name="p(b)")
        self.detail = QLabel("Choose pairs and press Generate.")
        self.detail.setWordWrap(True)
        # A fixed size: a label whose text changes on every step must not re-lay out (and repaint) the window.
        self.detail.setFixedSize(300, 84)
        self.detail.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.big = QLabel()
        self.big.setFixedSize(140, 140)
        self.big.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.add_selected = QPushButton("Add selected to library")
        self.add_accepted = QPushButton("Add all accepted to library")
        self.add_selected.setEnabled(False)
        self.add_accepted.setEnabled(False)
        bottom = QWidget()
        bl = QHBoxLayout(bottom)
        bl.addWidget(self.big)
        info = QVBoxLayout()
        info.addWidget(self.detail, 1)
        acts = QHBoxLayout()
        acts.addWidget(self.add_selected)
        acts.addWidget(self.add_accepted)
        info.addLayout(acts)
        bl.addLayout(info, 1)
        bl.addWidget(self.plot, 2)

        right = QWidget()
        rl = QVBoxLayout(right)
        rl.addLayout(run_row)
        rl.addWidget(self.run_note)
        vsplit = QSplitter(Qt.Orientation.Vertical)
        vsplit.addWidget(self.view)
        vsplit.addWidget(bottom)
        vsplit.setStretchFactor(0, 3)
        vsplit.setStretchFactor(1, 1)
        rl.addWidget(vsplit, 1)
        self.splitter = QSplitter()
        self.splitter.addWidget(scroll)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([scroll.minimumWidth(), 1000])
        self.splitter.setCollapsible(0, False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.splitter)

        self.generate_button.clicked.connect(self.generate)
        self.stop_button.clicked.connect(self.stop)
        self.add_selected.clicked.connect(lambda: self.add_to_library(selected=True))
        self.add_accepted.clicked.connect(lambda: self.add_to_library(selected=False))
        self.filter_form.changed.connect(self._filters_changed)
        self.thresholds = ReferenceThresholds(session, self)
        self.thresholds.ready.connect(self._thresholds_ready)
        self.thresholds.failed.connect(self._thresholds_failed)
        self._pending_generate: tuple[list[str] | None, str] | None = None  # waits for thresholds
        c = self.controller
        c.tilesReset.connect(self._tiles_reset)
        c.tilesChanged.connect(self._tiles_changed)
        c.progress.connect(self._progress)
        c.finished.connect(self._finished)
        c.message.connect(self.message)
        c.failed.connect(lambda exc: show_error(self, "Generation failed", exc))
        # Repaints are coalesced: steps may arrive faster than the plot and progress bar should redraw.
        self._flush_timer = QTimer(self)
        self._flush_timer.setSingleShot(True)
        self._flush_timer.setInterval(60)
        self._flush_timer.timeout.connect(self._flush)
        self._pending_progress: int | None = None
        self._pending_curve = False
        self._plot_title = ""
        self._plot_steps = 0
        self._set_plot_steps(self.form.steps.value())
        # before a run (or between runs) the step axis follows the form's Steps
        self.form.steps.valueChanged.connect(
            lambda v: self._set_plot_steps(int(v)) if not self.controller.tiles else None)
        self.form.matrix.set_pairs([(4, 9)])
        session.modelsChanged.connect(self.models_changed)
        if not classifiers:
            self.generate_button.setEnabled(False)
            self.detail.setText("No classifier in the model registry: install or train the classifier zoo first.")

    # ---- actions

    def generate(self, tags: list[str] | None = None, note: str = "") -> bool:
        """Start a run with the form's settings; ``tags`` go onto every stimulus of the run added to the
        library and ``note`` (rich text) is shown above the grid while its tiles are on screen."""
        settings = self.form.settings()
        if not settings.pairs:
            show_error(self, "Nothing to generate", PerceptLabError("no target pair is chosen",
                                                                     "click one or more cells of the pair matrix"))
            return False
        try:
            filters = self.thresholds.complete(self.filter_form.filters(), _guiding(settings))
            if filters is None:  # percentile filter: its thresholds are computed first, then the run starts
                self._pending_generate = (tags, note)
                self.generate_button.setEnabled(False)
                self.stop_button.setEnabled(True)
                self.message.emit(self.thresholds.describe(_guiding(settings)))
                self.runningChanged.emit(True)
                return True
            rounds = self.form.rounds()
            self.controller.start(settings, self.form.per_pair.value(), filters, self.reference,
                                  tags=tags or (), regenerate=rounds > 1, max_rounds=rounds)
        except PerceptLabError as exc:
            show_error(self, "Cannot generate", exc)
            return False
        self.run_note.setText(note)
        self.run_note.setVisible(bool(note))
        self._set_running(True)
        return True

    def models_changed(self) -> None:
        """User models were added, renamed or deleted: refill the classifier pickers."""
        names = self.session.registry.names("classifier")
        self.form.set_classifiers(classifier_groups(self.session.registry))
        if not self.is_running():
            self.generate_button.setEnabled(bool(names))

    def stop(self) -> None:
        if self._pending_generate is not None:
            self._pending_generate = None
            self._set_running(False)
            self.message.emit("Generation called off before it started.")
            return
        self.controller.stop()
        self.stop_button.setEnabled(False)
        self.progress.setFormat("stopping…")

    def is_running(self) -> bool:
        return self.controller.is_running() or self._pending_generate is not None

    def choose_reference(self) -> None:
        dlg = ReferencePicker(self.session, self)
        if dlg.exec():
            self.set_reference(dlg.chosen())

    def set_reference(self, ref: Reference | None) -> None:
        self.reference = ref
        if ref is None:
            self.ref_label.setText("none")
            self.ref_image.clear()
        else:
            self.ref_label.setText(ref.source)
            self.ref_image.setPixmap(qpixmap(ref.image, 36))

    def add_to_library(self, selected: bool = True) -> list[str]:
        lib = self.session.library
        if lib is None:
            show_error(self, "No library", PerceptLabError("no library is open",
                                                           "open or create one (File menu) first"))
            return []
        rows = self.view.selected_rows() if selected else None
        tiles = self.controller.addable(rows, accepted_only=not selected)
        if not tiles:
            self.message.emit("Nothing to add: choose finished images that are not in the library yet.")
            return []
        try:
            ids = self.controller.add_to_library(lib, tiles)
        except PerceptLabError as exc:
            show_error(self, "Could not add to the library", exc)
            return []
        self.session.stimuliAdded.emit(ids)
        self.message.emit(f"Added {len(ids)} stimuli to {lib.path.name} ({ids[0]}…{ids[-1]}).")
        self._update_buttons()
        return ids

    # ---- updates from the controller

    def _set_running(self, running: bool) -> None:
        self.generate_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        self.progress.setFormat("%p%" if running else "idle")
        self.runningChanged.emit(running)
        self._update_buttons()

    def _tiles_reset(self) -> None:
        self.model.set_sources(prob_sources(self.controller.settings))
        self._plot_title = ""
        self.model.set_tiles(self.controller.tiles)
        if self.controller.tiles:
            self.view.setCurrentIndex(self.model.index(0))
        self.progress.setValue(0)
        steps = self.controller.settings.steps if self.controller.settings is not None else 0
        self._set_plot_steps(steps)

    def _set_plot_steps(self, steps: int) -> None:
        if steps and steps != self._plot_steps:
            self._plot_steps = steps
            self.plot.setXRange(0, steps, padding=0.02)

    def _tiles_changed(self, first: int, last: int) -> None:
        self.model.tiles_changed(first, last)
        cur = self.view.currentIndex().row()
        if first <= cur <= last:
            self._pending_curve = True
            self._schedule()

    def _progress(self, done: float, planned: float) -> None:
        self._pending_progress = int(1000 * done / planned) if planned else 0
        self._schedule()

    def _schedule(self) -> None:
        if not self._flush_timer.isActive():
            self._flush_timer.start()

    def _flush(self) -> None:
        """Apply the latest progress and the current tile's curve (at most ~16 times a second)."""
        if self._pending_progress is not None:
            self.progress.setValue(self._pending_progress)
            self._pending_progress = None
        if self._pending_curve:
            self._pending_curve = False
            self._show_current()

    def _finished(self, how: str) -> None:
        self._flush_timer.stop()
        self._flush()
        self._set_running(False)
        self.progress.setFormat({"done": "done", "cancelled": "cancelled", "error": "failed"}[how])
        if how == "done":
            self.progress.setValue(1000)
        self._show_current()

    def _filters_changed(self) -> None:
        if not self.controller.tiles:  # nothing to re-judge; a run takes the filter when it starts
            return
        names = _guiding(self.controller.settings)
        try:
            filters = self.thresholds.complete(self.filter_form.filters(), names)
            if filters is None:  # re-judged when the thresholds are ready
                self.message.emit(self.thresholds.describe(names))
                return
            accepted = self.controller.set_filters(filters)
        except PerceptLabError as exc:
            show_error(self, "Invalid filter", exc)
            return
        finals = sum(1 for t in self.controller.tiles if t.final)
        if finals:
            self.message.emit(f"Re-judged {finals} images with the new thresholds: {accepted} accepted.")
        self._show_current()
        self._update_buttons()

    def _thresholds_ready(self) -> None:
        if self._pending_generate is not None:
            tags, note = self._pending_generate
            self._pending_generate = None
            if not self.generate(tags, note):
                self._set_running(False)
        else:
            self._filters_changed()

    def _thresholds_failed(self, exc) -> None:
        if self._pending_generate is not None:
            self._pending_generate = None
            self._set_running(False)
        show_error(self, "Could not compute the percentile thresholds", exc)

    def _update_buttons(self) -> None:
        running = self.controller.is_running()
        has_lib = self.session.library is not None
        self.add_selected.setEnabled(has_lib and bool(self.controller.addable(self.view.selected_rows())))
        self.add_accepted.setEnabled(has_lib and not running and bool(self.controller.addable(None, True)))

    def _show_current(self) -> None:
        row = self.view.currentIndex().row()
        tiles = self.controller.tiles
        if not 0 <= row < len(tiles):
            self.curve_a.setData([], [])
            self.curve_b.setData([], [])
            return
        t = tiles[row]
        a, b = t.pair
        self.curve_a.setData(t.steps, t.hist_a)
        self.curve_b.setData(t.steps, t.hist_b)
        src_a, src_b = self.model.sources or (None, None)
        if src_a:  # controversial: the names go in the legend, the title stays short enough to show
            title = f"image {row + 1}: p({a}) by classifier 1, p({b}) by classifier 2"
        else:
            title = f"image {row + 1}: p({a}) and p({b}) over steps"
        if title != self._plot_title:  # a new title re-lays the plot out: only when it changes
            self._plot_title = title
            self.plot.getPlotItem().setTitle(title)
            legend = self.plot.getPlotItem().legend
            if legend is not None:  # re-added, so that the legend box grows with longer names
                legend.clear()
                legend.addItem(self.curve_a, prob_label(a, src_a))
                legend.addItem(self.curve_b, prob_label(b, src_b))
        if t.image is not None:
            self.big.setPixmap(qpixmap(t.image, 140))
        pa, pb = prob_label(a, src_a, 3, t.p_a), prob_label(b, src_b, 3, t.p_b)
        extra = ""
        if t.record is not None and t.record.judge is not None:
            extra = f", judge {t.record.judge:.2f}"
        self.detail.setText(f"<b>Image {row + 1}</b> — pair {a}-{b}, seed {t.seed}<br>"
                            f"{pa}, {pb}{extra}<br>{t.status_text()}")

    # ---- persistence

    def state(self) -> str:
        s = self.form.settings()
        return json.dumps({"sampler": s.to_dict(), "per_pair": self.form.per_pair.value(),
                           "rounds": self.form.rounds(), "filter": self.filter_form.filters().to_dict()})

    def restore_state(self, text: str | None) -> None:
        if not text:
            return
        try:
            data = json.loads(text)
            s = SamplerSettings.from_dict(data["sampler"])
            names = self.session.registry.names("classifier")
            if s.classifier not in names:
                s = s.replace(classifier=self.form.settings().classifier)
            self.form.set_settings(s, data.get("per_pair"))
            self.form.set_rounds(int(data.get("rounds", 1)))
            self.filter_form.set_filters(FilterSettings.from_dict(data.get("filter", {})))
        except (ValueError, KeyError, TypeError, PerceptLabError):
            pass  # a stale or foreign value: keep the defaults

    def shutdown(self) -> None:
        self.controller.dispose()

    def preview_images(self) -> np.ndarray:
        """The current tiles' images (uint8 (N, 28, 28); zeros where none yet), for tests and screenshots."""
        return np.stack([t.image if t.image is not None else np.zeros((28, 28), np.uint8)
                         for t in self.controller.tiles]) if self.controller.tiles else np.zeros((0, 28, 28), np.uint8)
