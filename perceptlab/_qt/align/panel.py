"""Align: fine-tune a GroupNet and/or IndivNets on the loaded trials, watch the progress, see how well
Base, Group and Indiv models predict the choices, manage the fine-tuned models; and (Manipulate page)
send a manipulation between two participants to Explore.

The work is :func:`perceptlab.align.pipeline.run_alignment` (the engine behind ``perceptlab align``),
run in a worker thread; Cancel stops it at the next record and, as the pipeline guarantees, leaves the
models already finished complete and nothing of the one in flight.

The panel runs the job and shows its progress; the settings are :class:`AlignForm` (``form.py``), the
results :class:`AlignResults` (``results.py``), the model list :class:`FineTunedModels` (``models.py``).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from perceptlab._qt.align.form import AlignForm
from perceptlab._qt.align.manipulate import ManipulateView
from perceptlab._qt.align.models import FineTunedModels
from perceptlab._qt.align.results import AlignResults
from perceptlab._qt.align.runner import align_run, existing_names, planned_names
from perceptlab._qt.messages import ask_yes_no, show_error
from perceptlab._qt.workers import Job
from perceptlab.errors import PerceptLabError

REDRAW_MS = 100


class AlignPanel(QWidget):
    message = Signal(str)
    runningChanged = Signal(bool)
    showExplore = Signal()

    def __init__(self, session, explore=None, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.job: Job | None = None
        self._latest: dict | None = None  # the newest record not drawn yet
        self._epoch: dict | None = None  # the newest epoch record (validation metrics)
        self._models_seen: list[str] = []
        self._n_models = 0
        self._data_text = ""
        self._outcome = ""  # "done" | "cancelled" | "error" once a run ended

        # ---- left: what to fine-tune, Run / Cancel and the progress
        self.form = AlignForm(session)
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

        scroll = QScrollArea()
        scroll.setWidget(self.form)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(self.form.sizeHint().width() + scroll.verticalScrollBar().sizeHint().width() + 4)
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
        self.results = AlignResults()
        self.models = FineTunedModels(session)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.results)
        right.addWidget(self.models)
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

        # the parts' widgets that tests and screenshots reach through the panel
        f, r = self.form, self.results
        self.base, self.level, self.epochs, self.batch_size, self.trainable = (
            f.base, f.level, f.epochs, f.batch_size, f.trainable)
        self.people, self.people_label, self.images_label = f.people, f.people_label, f.images_label
        self.summary, self.accuracy_model, self.plots, self.views = r.summary, r.accuracy_model, r.plots, r.views
        self.gain_view, self.entropy_view, self.bin_view = r.gain_view, r.entropy_view, r.bin_view
        self.models_model, self.rename_button = self.models.models_model, self.models.rename_button

        # ---- wiring
        self.run_shortcut = QShortcut(QKeySequence("Ctrl+Return"), self, self.run)
        self.cancel_shortcut = QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.cancel)
        for sc in (self.run_shortcut, self.cancel_shortcut):
            sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.run_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(self.cancel)
        self.form.changed.connect(self._update_buttons)
        self.models.selectionChanged.connect(self._update_buttons)
        for part in (self.form, self.results):
            part.folderUsed.connect(self._folder_used)
        for part in (self.results, self.models):
            part.message.connect(self.message)
        self._redraw = QTimer(self)
        self._redraw.setSingleShot(True)
        self._redraw.setInterval(REDRAW_MS)
        self._redraw.timeout.connect(self._apply_latest)
        session.trialsChanged.connect(self.form.refresh_participants)
        session.libraryChanged.connect(self.form.refresh_images)
        session.modelsChanged.connect(self.refresh_models)
        self._update_buttons()

    # ---- the parts

    @property
    def metrics(self) -> dict | None:
        """The results shown (a run's, or an opened metrics.json's)."""
        return self.results.metrics

    @property
    def images_dir(self) -> Path | None:
        """The image folder chosen; None: the open library's images."""
        return self.form.images_dir

    def refresh_models(self) -> None:
        """Refill the base picker and the fine-tuned model list (after a run, rename, delete)."""
        self.form.refresh_bases()
        self.models.refresh()
        self._update_buttons()

    def _folder_used(self, folder: Path) -> None:
        """The image folder and the results dialogs start in the folder either used last."""
        self.form.last_dir = self.results.last_dir = folder

    def set_checked_participants(self, participants) -> None:
        self.form.set_checked_participants(participants)

    def set_images_folder(self, path: Path | None) -> None:
        self.form.set_images_folder(path)

    def show_results(self, metrics: dict | None, synthetic: bool | None = None) -> None:
        self.results.show_results(metrics, synthetic)

    def save_results(self, path: Path) -> Path | None:
        return self.results.save_results(path)

    def open_results(self, path: Path) -> bool:
        return self.results.open_results(path)

    def selected_model(self) -> str | None:
        return self.models.selected_model()

    def select_model(self, name: str) -> bool:
        return self.models.select_model(name)

    def rename_selected(self) -> str | None:
        return self.models.rename_selected()

    def delete_selected(self) -> bool:
        return self.models.delete_selected()

    # ---- running

    def is_running(self) -> bool:
        return self.job is not None and self.job.is_running()

    def run(self) -> bool:
        """Start fine-tuning (Ctrl+Return); False when nothing started (the reason is shown)."""
        if self.is_running():
            return False
        s = self.session
        try:
            if s.trials is None:
                raise PerceptLabError("no trials are loaded", "load a trial file in the Data tab first")
            if self.form.base.currentData() is None:
                raise PerceptLabError("no base model", "install the classifier zoo (see 'perceptlab models')")
            library = s.library.path if s.library is not None and self.images_dir is None else None
            if library is None and self.images_dir is None:
                raise PerceptLabError("no images for the trials",
                                      "open the library that holds the stimuli (File menu) or choose an image folder")
            if s.mnist is None:
                raise PerceptLabError("the MNIST digits are still loading", "try again in a moment")
            job = self.form.job()
            people = self.form.checked_participants()
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
            split = self.form.split()
        except PerceptLabError as exc:
            show_error(self, "Cannot fine-tune", exc)
            return False
        self._n_models = len(names)
        self._models_seen = []
        self._latest = self._epoch = None
        self._outcome = ""
        self._data_text = ""
        self.results.synthetic = bool(getattr(s.trials, "synthetic", False))
        self.job = Job(align_run, s.trials, library=library, images_dir=self.images_dir, split=split,
                       skip_unmatched=self.form.skip_unmatched.isChecked(), job=job, mnist=s.mnist,
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
        ready = (self.session.trials is not None and self.form.base.count() > 0
                 and (self.session.library is not None or self.images_dir is not None)
                 and bool(self.form.checked_participants()))
        self.run_button.setEnabled(ready and not running)
        self.cancel_button.setEnabled(running and not (self.job is not None and self.job.cancel_requested))
        self.models.enable_actions(not running)

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
                         f"{100 * epoch['val_accuracy']:.1f}%, loss {epoch['val_loss']:.3f} (best epoch {epoch['best_epoch']})")
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
        self.results.show_results(metrics)  # synthetic or not: as run() set it
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

    def shutdown(self) -> None:
        if self.is_running():
            self.job.disconnect_all()
            self.job.cancel()
            self.job.wait()
