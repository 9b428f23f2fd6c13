"""Run ▸ Run experiment… (Ctrl+Shift+X) in the main window: the dialog, the design of the open library's
curated set (built and saved under ``<data dir>/experiments/<library>/``; the same settings give the same
design, so an unfinished participant resumes), the runner window, and the new trial file loaded into the
Data panel (canonical columns: no mapping) when the runner closes."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QKeySequence

from perceptlab._qt.experiment import open_session
from perceptlab._qt.experiment.dialog import LIBRARY, RunExperimentDialog
from perceptlab._qt.experiment.runner import RunnerWindow, show_runner
from perceptlab._qt.messages import show_error
from perceptlab.errors import PerceptLabError

SHORTCUT = "Ctrl+Shift+X"


class ExperimentLauncher(QObject):
    finished = Signal(object)  # the trial file

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.runner: RunnerWindow | None = None

    @property
    def experiments_dir(self) -> Path:
        return Path(self.window.data_dir) / "experiments"

    def dialog(self) -> RunExperimentDialog:
        lib = self.window.session.library
        n = len(lib.ids(status="accepted")) if lib is not None else 0
        return RunExperimentDialog(lib.path if lib is not None else None, n, self.experiments_dir, self.window)

    def run_dialog(self) -> None:
        dlg = self.dialog()
        if dlg.exec():
            self.start(**dlg.values())

    def library_design(self, design_path: Path, catch_rate: float, break_every: int, seed: int) -> Path:
        from perceptlab.experiment.design import save_design  # noqa: PLC0415
        from perceptlab.experiment.library_design import design_from_library  # noqa: PLC0415

        lib = self.window.session.library
        if lib is None:
            raise PerceptLabError("no library is open", "open a library, or run a design file")
        design = design_from_library(lib, design_path.parent, catch_rate=catch_rate, seed=seed,
                                     break_every=break_every, mnist=self.window.session.mnist)
        return save_design(design, design_path)

    def start(self, design: Path, participant: str, out: Path, fullscreen: bool = False, source: str = "file",
              catch_rate: float = 0.1, break_every: int = 0, seed: int = 0, auto_respond: bool = False):
        try:
            if source == LIBRARY:
                design = self.library_design(Path(design), catch_rate, break_every, seed)
            session, base = open_session(design, participant, out)
        except PerceptLabError as exc:
            show_error(self.window, "Could not start the experiment", exc)
            return None
        self.runner = RunnerWindow(session, base, auto_respond=auto_respond)
        self.runner.finishedSession.connect(self._done)
        self.window.status(f"Experiment running: {participant}, answers saved to {session.path}", 0)
        return show_runner(self.runner, fullscreen)

    def _done(self, path: Path) -> None:
        runner, self.runner = self.runner, None
        done, total = runner.session.progress if runner is not None else (0, 0)
        self.window.status(f"Experiment ended: {done} of {total} trials in {path}; loaded in Data")
        if done:
            self.window.data.load(Path(path))
            self.window.tabs.setCurrentWidget(self.window.data)
        self.finished.emit(path)


def add_experiment_action(window, menu) -> None:
    """The Run menu's "Run experiment…" entry (window.experiments is the launcher)."""
    window.experiments = ExperimentLauncher(window)
    menu.addSeparator()
    window.act_run_experiment = menu.addAction("Run &experiment…", window.experiments.run_dialog)
    window.act_run_experiment.setShortcut(QKeySequence(SHORTCUT))
    window.act_run_experiment.setStatusTip("Run the open library's accepted stimuli (or a design file) with a "
                                           "participant; every answer is saved at once")
