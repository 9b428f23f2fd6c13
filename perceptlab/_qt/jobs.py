"""The "Cluster jobs" dialog (Run menu): send Explore's generation or Align's fine-tuning to a Dask
cluster — local worker processes or a running scheduler — and follow it: tasks done / running /
failed, images, ETA, a log; Cancel stops it (what was committed stays).

The job runs in a worker thread (:class:`perceptlab._qt.workers.Job`), which also starts the local
cluster or connects to the scheduler, so the window never blocks. Generated stimuli are committed into
the open library batch by batch (``session.stimuliAdded`` tells Curate); fine-tuned models go into the
user model store (``session.models_changed``). The job descriptions are those of
``perceptlab generate --workers`` / ``perceptlab align --workers`` (:mod:`perceptlab.jobs`).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from perceptlab._qt.messages import show_error
from perceptlab._qt.workers import Job
from perceptlab.errors import PerceptLabError

KINDS = (("generate", "Generate: Explore's settings into the open library"),
         ("align", "Fine-tune: Align's settings (GroupNet once, IndivNets in parallel)"))  # fmt: skip


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    s = int(round(seconds))
    return f"{s // 60}:{s % 60:02d}"


def _preload() -> bool:
    try:
        import distributed  # noqa: F401, PLC0415
    except ImportError:
        return False
    import perceptlab.jobs.generate_job  # noqa: F401, PLC0415

    return True


def run_cluster_job(kind: str, spec: dict[str, Any], where: dict[str, Any]) -> Generator[dict, None, Any]:
    """Open the cluster, run one job on it, close it (also when cancelled). Runs in a worker thread."""
    from perceptlab.jobs.cluster import open_cluster  # noqa: PLC0415

    yield {"kind": "log", "text": "starting the cluster…" if where.get("workers") else "connecting…"}
    cluster = open_cluster(where.get("workers"), where.get("scheduler"))
    try:
        yield {"kind": "log", "text": f"cluster: {cluster.describe()}"}
        if kind == "generate":
            from perceptlab.jobs.generate_job import run_generate_job  # noqa: PLC0415

            summary = yield from run_generate_job(spec["job"], cluster, spec["library"], retries=where["retries"])
            return {"kind": "generate", "summary": summary}
        from perceptlab.align.datasets import build_align_data  # noqa: PLC0415
        from perceptlab.align.pipeline import run_alignment  # noqa: PLC0415

        data = build_align_data(spec["table"], library=spec["library"], images_dir=spec["images_dir"],
                                split=spec["split"], skip_unmatched=spec["skip_unmatched"])  # fmt: skip
        metrics = yield from run_alignment(spec["job"], data, spec["mnist"], registry=spec["registry"],
                                           device=spec["device"], cluster=cluster,
                                           threads_per_task=where["threads"], retries=where["retries"])  # fmt: skip
        return {"kind": "align", "metrics": metrics}
    finally:
        cluster.close()


class ClusterJobsDialog(QDialog):
    """Configure where jobs run, submit one, follow it, cancel it."""

    jobFinished = Signal(str)  # "done" | "cancelled" | "failed"

    def __init__(self, window, parent: QWidget | None = None):
        super().__init__(parent or window)
        self.window_ = window
        self.session = window.session
        self.job: Job | None = None
        self.setWindowTitle("Cluster jobs")
        self.setModal(False)

        where = QGroupBox("Where the tasks run (Dask distributed)")
        wl = QFormLayout(where)
        self.local = QRadioButton("Local worker processes")
        self.remote = QRadioButton("Running scheduler")
        group = QButtonGroup(self)
        group.addButton(self.local)
        group.addButton(self.remote)
        self.local.setChecked(True)
        self.workers = QSpinBox(minimum=1, maximum=256, value=2)
        self.address = QLineEdit(placeholderText="tcp://10.0.0.5:8786")
        self.threads = QSpinBox(minimum=1, maximum=64, value=1)
        self.threads.setToolTip("torch threads of each task; part of the job, since it can change float bits")
        self.retries = QSpinBox(minimum=0, maximum=10, value=2)
        row = QHBoxLayout()
        row.addWidget(self.local)
        row.addWidget(self.workers)
        wl.addRow(row)
        row = QHBoxLayout()
        row.addWidget(self.remote)
        row.addWidget(self.address)
        wl.addRow(row)
        wl.addRow("Threads per task", self.threads)
        wl.addRow("Retries of a failed task", self.retries)

        self.kind = QComboBox()
        for key, label in KINDS:
            self.kind.addItem(label, key)
        self.progress = QProgressBar()
        self.progress.setFormat("idle")
        self.status = QLabel("No job running.")
        self.log = QPlainTextEdit(readOnly=True)
        self.log.setMaximumBlockCount(500)
        self.submit_button = QPushButton("Submit")
        self.cancel_button = QPushButton("Cancel job")
        self.close_button = QPushButton("Close")
        self.submit_button.clicked.connect(self.submit)
        self.cancel_button.clicked.connect(self.cancel)
        self.close_button.clicked.connect(self.hide)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        for b in (self.submit_button, self.cancel_button, self.close_button):
            buttons.addWidget(b)

        layout = QVBoxLayout(self)
        layout.addWidget(where)
        form = QFormLayout()
        form.addRow("Job", self.kind)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.log, 1)
        layout.addLayout(buttons)
        self.local.toggled.connect(self._update)
        self._restore()
        self._update()
        # Load Dask now, off the GUI thread: its first import (C extensions) holds the GIL for ~0.5 s.
        self.preload = Job(_preload, name="dask-preload", parent=self).start()
        self.resize(560, 420)

    # ---- state

    def is_running(self) -> bool:
        return self.job is not None and self.job.is_running()

    def _update(self) -> None:
        running = self.is_running()
        self.workers.setEnabled(self.local.isChecked() and not running)
        self.address.setEnabled(self.remote.isChecked() and not running)
        self.submit_button.setEnabled(not running)
        self.cancel_button.setEnabled(running and not self.job.cancel_requested)
        self.kind.setEnabled(not running)

    def _store(self):
        return getattr(self.window_, "settings", None)

    def _restore(self) -> None:
        """The cluster configured last time (QSettings ``cluster/*``)."""
        st = self._store()
        if st is None:
            return
        self.address.setText(str(st.value("cluster/address", "") or ""))
        self.workers.setValue(int(st.value("cluster/workers", 2) or 2))
        self.threads.setValue(int(st.value("cluster/threads", 1) or 1))
        (self.remote if st.value("cluster/mode", "local") == "scheduler" else self.local).setChecked(True)

    def _save(self) -> None:
        st = self._store()
        if st is not None:
            st.setValue("cluster/mode", "scheduler" if self.remote.isChecked() else "local")
            st.setValue("cluster/address", self.address.text().strip())
            st.setValue("cluster/workers", self.workers.value())
            st.setValue("cluster/threads", self.threads.value())

    def where(self) -> dict[str, Any]:
        if self.remote.isChecked():
            address = self.address.text().strip()
            if not address:
                raise PerceptLabError("no scheduler address", "type the address printed by 'dask scheduler', "
                                      "e.g. tcp://10.0.0.5:8786, or choose local worker processes")  # fmt: skip
            return {"scheduler": address, "workers": None, "threads": self.threads.value(),
                    "retries": self.retries.value()}  # fmt: skip
        return {"scheduler": None, "workers": self.workers.value(), "threads": self.threads.value(),
                "retries": self.retries.value()}  # fmt: skip

    # ---- building the jobs from the panels

    def _generate_spec(self, where: dict[str, Any]) -> dict[str, Any]:
        from perceptlab.engine.generate import expand_targets  # noqa: PLC0415
        from perceptlab.jobs.generate_job import GenerateJob  # noqa: PLC0415

        lib = self.session.library
        if lib is None:
            raise PerceptLabError("no library is open", "open or create a library (File menu): the stimuli go there")
        explore = self.window_.explore
        settings = explore.form.settings()
        if not settings.pairs:
            raise PerceptLabError("no target pair is chosen", "click one or more cells of Explore's pair matrix")
        filters = explore.filter_form.filters()
        if filters.kind == "percentile":
            raise PerceptLabError("the percentile filter needs its thresholds first",
                                  "run it once in Explore, or use the paper thresholds for a cluster job")  # fmt: skip
        if explore.reference is not None:
            raise PerceptLabError("a cluster job cannot use Explore's reference image yet",
                                  "clear the reference, or run the job in Explore")  # fmt: skip
        rounds = explore.form.rounds()
        targets = expand_targets(settings.pairs, explore.form.per_pair.value())
        job = GenerateJob.build(settings, targets, filters=filters, registry=self.session.registry, library=lib,
                                regenerate=rounds > 1, max_rounds=rounds, device=str(self.session.device),
                                threads=where["threads"])  # fmt: skip
        return {"job": job, "library": lib, "what": f"{len(targets)} stimuli, base seed {job.base_seed}"}

    def _align_spec(self, where: dict[str, Any]) -> dict[str, Any]:
        s = self.session
        align = self.window_.align
        if s.trials is None:
            raise PerceptLabError("no trials are loaded", "load a trial file in the Data tab first")
        if s.mnist is None:
            raise PerceptLabError("the MNIST digits are still loading", "try again in a moment")
        library = s.library.path if s.library is not None and align.images_dir is None else None
        if library is None and align.images_dir is None:
            raise PerceptLabError("no images for the trials",
                                  "open the library that holds the stimuli (File menu) or choose an image folder")  # fmt: skip
        job = align.form.job()
        if job.level == "group":
            raise PerceptLabError("a GroupNet alone is one task", "choose level 'individual' or 'both' in Align, "
                                  "or fine-tune the GroupNet in Align itself")  # fmt: skip
        return {"job": job, "table": s.trials, "library": library, "images_dir": align.images_dir,
                "split": align.form.split(), "skip_unmatched": align.form.skip_unmatched.isChecked(),
                "mnist": s.mnist, "registry": s.registry, "device": s.device,
                "what": f"{job.level} from {job.base}"}  # fmt: skip

    # ---- running

    def submit(self) -> bool:
        if self.is_running():
            return False
        kind = self.kind.currentData()
        try:
            where = self.where()
            spec = self._generate_spec(where) if kind == "generate" else self._align_spec(where)
        except PerceptLabError as exc:
            show_error(self, "Cannot submit the job", exc)
            return False
        self._save()
        self.log.clear()
        self._write(f"{kind}: {spec['what']}")
        self.progress.setRange(0, 0)
        self.progress.setFormat("starting…")
        self.job = Job(run_cluster_job, kind, spec, where, name="cluster-job", parent=self)
        self.job.yielded.connect(self._on_record)
        self.job.returned.connect(self._on_returned)
        self.job.errored.connect(self._on_error)
        self.job.cancelled.connect(self._on_cancelled)
        self.job.finished.connect(self._update)
        self.job.start()
        self._update()
        return True

    def cancel(self) -> None:
        if self.is_running():
            self.job.cancel()
            self.status.setText("Cancelling: tasks not finished are dropped; committed results stay.")
            self._update()

    def _write(self, text: str) -> None:
        self.log.appendPlainText(text)

    def _on_record(self, rec: dict) -> None:
        kind = rec.get("kind")
        if kind == "log":
            self._write(rec["text"])
        elif kind == "job":
            total = rec.get("images_planned", rec["units_total"])
            done = rec.get("images_done", rec["units_done"])
            self.progress.setRange(0, max(1, round(total)))
            self.progress.setValue(round(done))
            unit = "images" if "images_done" in rec else "tasks"
            self.progress.setFormat(f"{round(done)}/{round(total)} {unit}")
            stage = f"round {rec['round']}: " if rec.get("rounds", 1) > 1 else ""
            self.status.setText(f"{stage}tasks done {rec['done']}/{rec['total']} · running {rec['running']} · "
                                f"failed {rec['failed']} · ETA {_eta(rec['eta_s'])}")  # fmt: skip
        elif kind == "batch":
            if rec.get("ids"):
                self.session.stimuliAdded.emit(list(rec["ids"]))
            self._write(f"batch {rec['batch']}/{rec['batches']} from {rec['worker']}: {rec['stored']} stored")
        elif kind == "saved":
            self._write(f"saved {rec['model']}" + (f" (from {rec['worker']})" if rec.get("worker") else ""))
        elif kind == "epoch" and rec.get("stage") == "group" and rec["epoch"] == rec["epochs"]:
            self._write(f"GroupNet trained ({rec['epochs']} epochs)")

    def _on_returned(self, result: dict) -> None:
        if result["kind"] == "generate":
            s = result["summary"]
            text = (f"Done: {s.generated} images, {s.accepted} accepted, {len(s.ids)} stored"
                    + (f", {s.repeats} already in the library" if s.repeats else "") + f" ({s.seconds:.0f} s)")  # fmt: skip
        else:
            self.session.models_changed()
            text = f"Done: {len(result['metrics']['models'])} model(s) saved"
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self.progress.setFormat("done")
        self.status.setText(text)
        self._write(text)
        self.session.message.emit(f"Cluster job: {text}")
        self.jobFinished.emit("done")

    def _on_error(self, exc: BaseException) -> None:
        self.progress.setRange(0, 1)
        self.progress.setFormat("failed")
        self.status.setText("The job failed; committed results stay.")
        self._write(f"error: {exc}")
        show_error(self, "The cluster job failed", exc)
        self.jobFinished.emit("failed")

    def _on_cancelled(self) -> None:
        self.progress.setRange(0, 1)
        self.progress.setFormat("cancelled")
        self.status.setText("Cancelled; committed results stay.")
        self._write("cancelled")
        if self.kind.currentData() == "align":
            self.session.models_changed()
        self.jobFinished.emit("cancelled")

    def shutdown(self) -> None:
        if self.is_running():
            self.job.cancel()
            self.job.wait()


def add_jobs_action(window, menu) -> None:
    """The Run menu's "Cluster jobs…" entry; the dialog is made on first use and kept."""

    def show() -> None:
        dialog = getattr(window, "cluster_jobs", None)
        if dialog is None:
            dialog = window.cluster_jobs = ClusterJobsDialog(window)
        dialog.show()
        dialog.raise_()

    menu.addSeparator()
    window.act_cluster_jobs = menu.addAction("&Cluster jobs…", show)
    window.act_cluster_jobs.setStatusTip("Send a large generation or fine-tuning job to a Dask cluster and follow it")
