"""Curate's L-WISE actions: store the robust model's difficulty of stimuli, and enhance them (or make
them harder) into new stimuli. The work is the engine's (``perceptlab.engine.lwise``), run in a worker."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QSpinBox,
    QWidget,
)

from perceptlab._qt.messages import show_error
from perceptlab._qt.workers import Job
from perceptlab.errors import PerceptLabError


class EnhanceDialog(QDialog):
    """ε, norm, steps and direction of an enhancement."""

    def __init__(self, n: int, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(f"Enhance {n} stimul{'us' if n == 1 else 'i'}")
        self.eps = QDoubleSpinBox()
        self.eps.setRange(0.0, 20.0)
        self.eps.setSingleStep(0.5)
        self.eps.setValue(2.0)
        self.eps.setToolTip("radius of the ball around the image, in [-1, 1] pixel units")
        self.norm = QComboBox()
        self.norm.addItem("L2", "l2")
        self.norm.addItem("L∞", "linf")
        self.norm.currentIndexChanged.connect(self._norm_changed)
        self.steps = QSpinBox()
        self.steps.setRange(1, 200)
        self.steps.setValue(10)
        self.harder = QCheckBox("harder (descend the true logit)")
        form = QFormLayout(self)
        form.addRow("ε", self.eps)
        form.addRow("Norm", self.norm)
        form.addRow("Steps", self.steps)
        form.addRow("", self.harder)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _norm_changed(self) -> None:
        if self.norm.currentData() == "linf" and self.eps.value() > 1:
            self.eps.setValue(0.3)

    def request(self) -> dict:
        return {"eps": self.eps.value(), "norm": self.norm.currentData(), "steps": self.steps.value(),
                "harder": self.harder.isChecked()}


def _robust_missing(session) -> PerceptLabError | None:
    if "robust" in session.registry.names("classifier"):
        return None
    return PerceptLabError("the robust classifier is not installed",
                           "train it: perceptlab train classifiers --models robust")


def compute_difficulty_job(panel, ids: list[str]) -> Job | None:
    """Store the robust difficulty of ``ids`` (all stimuli when empty) in a worker; refreshes the gallery."""
    from perceptlab.engine.lwise import compute_difficulty  # noqa: PLC0415

    session, lib = panel.session, panel.session.library
    problem = _robust_missing(session) if lib is not None else PerceptLabError("no library is open")
    if problem is not None:
        show_error(panel, "Difficulty", problem)
        return None
    ids = ids or lib.ids()
    job = Job(compute_difficulty, lib, ids, session.registry, "robust", session.device, name="difficulty", parent=panel)

    def done(values: dict) -> None:
        panel._changed(list(values))
        panel.message.emit(f"Difficulty (robust ground-truth logit) stored for {len(values)} stimuli.")

    job.returned.connect(done)
    job.errored.connect(lambda exc: show_error(panel, "Difficulty failed", exc))
    panel.lwise_job = job.start()
    panel.message.emit(f"Computing the difficulty of {len(ids)} stimuli…")
    return job


def enhance_job(panel, ids: list[str], request: dict) -> Job | None:
    """Enhance ``ids`` as ``request`` says (EnhanceDialog.request) in a worker; the new stimuli join the library."""
    from perceptlab.engine.lwise import enhance_library  # noqa: PLC0415

    session, lib = panel.session, panel.session.library
    if not _can_enhance(panel, ids):
        return None
    job = Job(enhance_library, lib, ids, request["eps"], request["norm"], request["steps"], None, request["harder"],
              session.registry, "robust", session.device, name="enhance", parent=panel)

    def done(new_ids: list[str]) -> None:
        session.stimuliAdded.emit(new_ids)
        what = "harder" if request["harder"] else "enhanced"
        panel.message.emit(f"{len(new_ids)} {what} stimuli added ({request['norm']} ε = {request['eps']:g}, "
                           f"{request['steps']} steps).")

    job.returned.connect(done)
    job.errored.connect(lambda exc: show_error(panel, "Enhance failed", exc))
    panel.lwise_job = job.start()
    panel.message.emit(f"Enhancing {len(ids)} stimuli…")
    return job


def _can_enhance(panel, ids: list[str]) -> bool:
    """Say why enhancing cannot start (no library, no robust model, nothing selected); True if it can."""
    lib = panel.session.library
    problem = _robust_missing(panel.session) if lib is not None else PerceptLabError("no library is open")
    if problem is None and not ids:
        problem = PerceptLabError("no stimuli selected", "select the stimuli to enhance")
    if problem is not None:
        show_error(panel, "Enhance", problem)
        return False
    return True


def enhance_dialog(panel) -> Job | None:
    """Check first, then ask for the settings: no dialog to fill in for a run that cannot start."""
    ids = panel.selected_ids()
    if not _can_enhance(panel, ids):
        return None
    dlg = EnhanceDialog(len(ids), panel)
    accepted = dlg.exec()
    panel.refocus()
    return enhance_job(panel, ids, dlg.request()) if accepted else None
