"""The main window: five panels (Explore, Curate, Data, Analysis, Align), menus, toolbar, status bar,
settings and layout restored on start, recent files, drag and drop, and the first-start demo project."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import QFileDialog, QLabel, QMainWindow, QTabWidget, QToolBar

from perceptlab._qt import workers
from perceptlab._qt.about import AboutDialog
from perceptlab._qt.align.panel import AlignPanel
from perceptlab._qt.analysis.panel import AnalysisPanel
from perceptlab._qt.app import app_icon, configure_pyqtgraph, reserve_gui_core
from perceptlab._qt.curate.panel import CuratePanel
from perceptlab._qt.data_panel import DataPanel
from perceptlab._qt.help import guide_dialog, shortcuts_dialog
from perceptlab._qt.demo import install_shipped_demo, shipped_demo_dir, user_data_dir
from perceptlab._qt.explore.controller import warm_models
from perceptlab._qt.explore.panel import ExplorePanel
from perceptlab._qt.messages import show_error
from perceptlab._qt.session import Session
from perceptlab.data.demo import DemoProject, find_demo
from perceptlab.data.library import DB_NAME
from perceptlab.data.mnist import load_mnist
from perceptlab.engine.device import describe, pick_device
from perceptlab.engine.registry import Registry, default_registry
from perceptlab.errors import PerceptLabError

MAX_RECENT = 8


def device_text(device) -> str:
    """'GPU (name)' or 'CPU, n sampling threads' for the status bar."""
    if getattr(device, "type", "cpu") != "cpu":
        return describe(device)
    import torch  # noqa: PLC0415

    n = torch.get_num_threads()
    return f"CPU, {n} sampling thread{'s' if n != 1 else ''}"


def redo_shortcuts() -> list[QKeySequence]:
    """The platform's Redo keys plus Ctrl+Shift+Z and Ctrl+Y, each once: on Linux the standard Redo *is*
    Ctrl+Shift+Z, and binding it twice made Qt call the shortcut ambiguous and do nothing."""
    keys: list[QKeySequence] = []
    for seq in [*QKeySequence.keyBindings(QKeySequence.StandardKey.Redo), QKeySequence("Ctrl+Shift+Z"),
                QKeySequence("Ctrl+Y")]:
        if not seq.isEmpty() and all(seq != k for k in keys):
            keys.append(seq)
    return keys


TRIAL_SUFFIXES = (".csv", ".tsv", ".txt", ".jsonl", ".ndjson", ".json")
PANELS = ("Explore", "Curate", "Data", "Analysis", "Align")


def default_size(screen, preferred: tuple[int, int] = (1400, 900)) -> tuple[int, int]:
    """The first window's size: ``preferred``, shrunk to fit the screen's free area (a 1366x768 laptop)."""
    if screen is None:
        return preferred
    free = screen.availableGeometry()
    return min(preferred[0], int(free.width() * 0.96)), min(preferred[1], int(free.height() * 0.94))


class MainWindow(QMainWindow):
    def __init__(self, *, registry: Registry | None = None, settings: QSettings | None = None, device=None,
                 data_dir: Path | None = None, demo_dir: Path | None | str = "shipped",
                 mnist_loader: Callable[[], object] | None = None, start: bool = True):
        """``start=False`` leaves loading MNIST, warming the models and opening the last library or the demo
        to :meth:`start`, which ``run_app`` calls once the window has painted."""
        super().__init__()
        configure_pyqtgraph()
        self.settings = settings if settings is not None else QSettings()
        self.data_dir = Path(data_dir) if data_dir is not None else user_data_dir()
        self.demo_dir = shipped_demo_dir() if demo_dir == "shipped" else (Path(demo_dir) if demo_dir else None)
        registry = registry or default_registry()
        if device is None or isinstance(device, str):
            try:
                device = pick_device(device or self.settings.value("device", "auto") or "auto")
            except PerceptLabError:
                device = pick_device("cpu")
        reserve_gui_core(device)
        self.session = Session(registry, device, self)
        self.session.message.connect(self.status)
        self._mnist_loader = mnist_loader or (lambda: load_mnist(self.settings.value("mnist/folder") or None))
        self._closed = False
        self.demo: DemoProject | None = None

        self.setWindowTitle("PerceptLab")
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)
        self.explore = ExplorePanel(self.session)
        self.curate = CuratePanel(self.session)
        self.data = DataPanel(self.session)
        self.analysis = AnalysisPanel(self.session)
        self.align = AlignPanel(self.session, self.explore)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        for name, panel in zip(PANELS, (self.explore, self.curate, self.data, self.analysis, self.align)):
            self.tabs.addTab(panel, name)
            panel.message.connect(self.status)
        self.setCentralWidget(self.tabs)
        self.align.showExplore.connect(lambda: self.tabs.setCurrentWidget(self.explore))
        # new, renamed or deleted models: the analysis compares every classifier with the humans
        self.session.modelsChanged.connect(lambda: self.data.reanalyse() if self.session.trials is not None else None)
        self.data.trialsLoaded.connect(lambda p: self._remember("recent/trials", p))
        self.session.libraryChanged.connect(self._library_changed)
        self.session.stimuliAdded.connect(lambda _ids: self._update_library_label())

        self.device_label = QLabel(device_text(device))
        self.device_label.setToolTip("where sampling runs (set 'device' to cpu/cuda/auto in the settings file)")
        self.mnist_label = QLabel("MNIST: loading…")
        self.library_label = QLabel("no library open")
        for w in (self.library_label, self.mnist_label, self.device_label):
            self.statusBar().addPermanentWidget(w)
        self._build_actions()
        self._restore_layout()
        self._registry, self._started = registry, False
        if start:
            self.start()

    def start(self) -> None:
        """Background work of a fresh window: MNIST, model warm-up, the last library or the demo."""
        if self._started:
            return
        self._started = True
        self._start_mnist()
        # a plain function, not a bound method: a worker must never hold (and so maybe free) the window
        self._warm_job = workers.Job(warm_models, self._registry, self.session.device, name="warm-models",
                                     parent=self).start()
        self.explore.controller.staging()  # created now, not on the first Generate (tens of ms)
        self._open_initial()

    # ---- actions and menus

    def _action(self, text: str, slot, shortcut=None, tip: str = "") -> QAction:
        act = QAction(text, self)
        act.triggered.connect(lambda *_: slot())
        if shortcut is not None:
            act.setShortcut(QKeySequence(shortcut))
        if tip:
            act.setStatusTip(tip)
        return act

    def _build_actions(self) -> None:
        self.act_new_lib = self._action("&New library…", self.new_library_dialog, QKeySequence.StandardKey.New)
        self.act_open_lib = self._action("&Open library…", self.open_library_dialog, QKeySequence.StandardKey.Open)
        self.act_open_trials = self._action("Open &trial file…", self.data.open_dialog, "Ctrl+T")
        self.act_demo = self._action("Open &demo project", self.open_demo)
        self.act_export = self._action("&Export stimuli…", self.curate.export_dialog, "Ctrl+E")
        self.act_quit = self._action("&Quit", self.close, QKeySequence.StandardKey.Quit)
        self.act_generate = self._action("&Generate", self._generate, "Ctrl+G", "start sampling")
        self.act_stop = self._action("&Stop", self.explore.stop, "Ctrl+.", "stop sampling after the current step")
        self.act_stop.setEnabled(False)
        self.explore.runningChanged.connect(lambda r: (self.act_stop.setEnabled(r), self.act_generate.setEnabled(not r)))
        self.act_undo = self.curate.undo_stack.createUndoAction(self, "&Undo")
        self.act_undo.setShortcut(QKeySequence.StandardKey.Undo)
        self.act_redo = self.curate.undo_stack.createRedoAction(self, "&Redo")
        self.act_redo.setShortcuts(redo_shortcuts())
        self.act_mnist = self._action("MNIST &folder…", self.choose_mnist_folder)
        self.act_mnist_builtin = self._action("Use the &built-in MNIST subset", lambda: self.set_mnist_folder(None))
        self.act_about = self._action("&About PerceptLab", self.about)
        self.act_guide = self._action("User &guide", self.show_guide, QKeySequence.StandardKey.HelpContents,
                                      "how the panels work and what the settings mean (offline)")
        self.act_shortcuts = self._action("&Keyboard shortcuts", self.show_shortcuts, "Ctrl+/")

        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addActions([self.act_new_lib, self.act_open_lib])
        self.recent_libs_menu = file_menu.addMenu("Recent &libraries")
        file_menu.addAction(self.act_open_trials)
        self.recent_trials_menu = file_menu.addMenu("Recent trial &files")
        file_menu.addSeparator()
        file_menu.addActions([self.act_demo, self.act_export])
        file_menu.addSeparator()
        file_menu.addAction(self.act_quit)
        edit = bar.addMenu("&Edit")
        edit.addActions([self.act_undo, self.act_redo])
        edit.addSeparator()
        for text, key in (("Accept selected  (A)", "accept"), ("Reject selected  (R)", "reject"),
                          ("Reset selected to new  (N)", "new"), ("Tag selected…  (T)", "tag")):
            edit.addAction(self._action(text, lambda key=key: self.curate.curate_key(key)))
        run = bar.addMenu("&Run")
        run.addActions([self.act_generate, self.act_stop])
        from perceptlab._qt.jobs import add_jobs_action  # noqa: PLC0415  (Run > Cluster jobs…)

        add_jobs_action(self, run)
        from perceptlab._qt.experiment.launcher import add_experiment_action  # noqa: PLC0415  (Run > Run experiment…)

        add_experiment_action(self, run)
        view = bar.addMenu("&View")
        for i, name in enumerate(PANELS):
            view.addAction(self._action(name, lambda i=i: self.tabs.setCurrentIndex(i), f"Ctrl+{i + 1}"))
        settings_menu = bar.addMenu("&Settings")
        settings_menu.addActions([self.act_mnist, self.act_mnist_builtin])
        device_menu = settings_menu.addMenu("Sampling &device (next start)")
        current = self.settings.value("device", "auto") or "auto"
        for name in ("auto", "cpu", "cuda"):
            act = device_menu.addAction(name, lambda name=name: self.set_device(name))
            act.setCheckable(True)
            act.setChecked(name == current)
        help_menu = bar.addMenu("&Help")
        help_menu.addActions([self.act_guide, self.act_shortcuts])
        help_menu.addSeparator()
        help_menu.addAction(self.act_about)

        tb = QToolBar("Main")
        tb.setObjectName("main_toolbar")
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        tb.addActions([self.act_open_lib, self.act_open_trials])
        tb.addSeparator()
        tb.addActions([self.act_generate, self.act_stop])
        tb.addSeparator()
        tb.addActions([self.act_undo, self.act_redo, self.act_export])
        self.addToolBar(tb)
        self._rebuild_recent()

    # ---- status

    def status(self, text: str, ms: int = 8000) -> None:
        self.statusBar().showMessage(text, ms)

    def _library_changed(self) -> None:
        lib = self.session.library
        self.setWindowTitle(f"PerceptLab — {lib.path.name}" if lib is not None else "PerceptLab")
        if lib is not None:
            self._remember("recent/libraries", str(lib.path))
            self.settings.setValue("session/library", str(lib.path))
        self._update_library_label()

    def _update_library_label(self) -> None:
        lib = self.session.library
        self.library_label.setText(f"Library: {self.session.library_label()}")
        self.library_label.setToolTip(str(lib.path) if lib is not None else "")

    # ---- MNIST (background)

    def _start_mnist(self) -> None:
        self.mnist_label.setText("MNIST: loading…")
        job = workers.Job(self._mnist_loader, name="mnist", parent=self)
        job.returned.connect(self._mnist_loaded)
        job.errored.connect(self._mnist_failed)
        self._mnist_job = job.start()

    def _mnist_loaded(self, data) -> None:
        self.session.mnist = data
        source = str(getattr(data, "source", "unknown"))
        short = source if len(source) <= 24 else source[:23].rstrip() + "…"  # room for the status message
        self.mnist_label.setText(f"MNIST: {short}")
        self.mnist_label.setToolTip(f"MNIST: {source}")

    def _mnist_failed(self, exc) -> None:
        self.mnist_label.setText("MNIST: not available")
        self.status(f"MNIST could not be loaded: {exc}")

    def choose_mnist_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "MNIST folder (IDX files or .npz)")
        if folder:
            self.set_mnist_folder(folder)

    def set_mnist_folder(self, folder: str | None) -> None:
        self.settings.setValue("mnist/folder", folder or "")
        self._mnist_loader = lambda: load_mnist(folder or None)
        self._start_mnist()

    def _generate(self) -> None:
        self.tabs.setCurrentWidget(self.explore)
        self.explore.generate()

    def set_device(self, name: str) -> None:
        self.settings.setValue("device", name)
        self.status(f"Sampling device set to {name}; it applies when PerceptLab starts next.")

    # ---- opening things

    def open_library(self, path: Path, create: bool = False) -> bool:
        try:
            self.session.open_library(path, create=create)
        except PerceptLabError as exc:
            show_error(self, "Could not open the library", exc)
            self.status(f"Could not open {path}")
            return False
        self.status(f"Opened library {path} ({len(self.session.library)} stimuli)")
        return True

    def new_library_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "New library: choose a new or empty folder")
        if folder:
            self.open_library(Path(folder), create=True)

    def open_library_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, f"Open library (the folder holding {DB_NAME})")
        if folder:
            self.open_library(Path(folder))

    def open_project(self, project: DemoProject) -> None:
        if self.open_library(project.library):
            self.data.load(project.trials)

    def open_demo(self) -> bool:
        """Copy the shipped demo project to the data folder (first time) and open it."""
        try:
            project = install_shipped_demo(self.demo_dir, self.data_dir)
        except PerceptLabError as exc:
            show_error(self, "Demo project", exc)
            return False
        if project is None:
            self.status(f"No demo project found ({self.demo_dir}); open or create a library to start "
                        "(the demo is built with `perceptlab demo-project`).", 0)
            return False
        self.demo = project
        self.open_project(project)
        self.status("Opened the demo project: engine-made stimuli and SYNTHETIC (simulated) trials.")
        return True

    def open_paths(self, paths: list[Path]) -> None:
        """Open dropped or given paths: library folders, demo project folders, trial files."""
        for path in paths:
            path = Path(path)
            if path.is_dir() and (path / DB_NAME).is_file():
                self.open_library(path)
            elif path.is_dir() and find_demo(path) is not None:
                self.open_project(find_demo(path))
            elif path.is_file() and path.suffix.lower() in TRIAL_SUFFIXES:
                self.tabs.setCurrentWidget(self.data)
                self.data.load(path)
            else:
                show_error(self, "Cannot open", PerceptLabError(
                    f"{path} is neither a library folder nor a trial file",
                    f"drop a folder that holds {DB_NAME}, or a CSV/TSV/JSON lines trial table"))

    def _open_initial(self) -> None:
        if not self.settings.value("demo/offered", False, type=bool):
            self.settings.setValue("demo/offered", True)
            if self.open_demo():
                return
        lib = self.settings.value("session/library") or ""
        if lib and Path(lib).is_dir():
            if self.open_library(Path(lib)):
                trials = self.settings.value("session/trials") or ""
                if trials and Path(trials).is_file():
                    self.data.load(Path(trials))
        elif self.session.library is None and not self.statusBar().currentMessage():
            self.status("Open or create a library (File menu) or drop a library folder or trial file here.", 0)
        self._update_library_label()

    # ---- recent files

    def _recent(self, key: str) -> list[str]:
        try:
            value = json.loads(self.settings.value(key, "[]") or "[]")
        except (TypeError, ValueError):
            return []
        return [v for v in value if isinstance(v, str)]

    def _remember(self, key: str, path: str) -> None:
        items = [path] + [p for p in self._recent(key) if p != path]
        self.settings.setValue(key, json.dumps(items[:MAX_RECENT]))
        if key == "recent/trials":
            self.settings.setValue("session/trials", path)
        self._rebuild_recent()

    def _rebuild_recent(self) -> None:
        for menu, key, opener in ((self.recent_libs_menu, "recent/libraries", lambda p: self.open_library(Path(p))),
                                  (self.recent_trials_menu, "recent/trials", lambda p: self.data.load(Path(p)))):
            menu.clear()
            items = self._recent(key)
            for p in items:
                menu.addAction(p, lambda p=p, opener=opener: opener(p))
            menu.setEnabled(bool(items))

    def recent_libraries(self) -> list[str]:
        return self._recent("recent/libraries")

    def recent_trials(self) -> list[str]:
        return self._recent("recent/trials")

    # ---- drag and drop

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.open_paths(paths)

    # ---- help

    def show_guide(self):
        dlg = guide_dialog(self)
        dlg.open()
        return dlg

    def show_shortcuts(self):
        dlg = shortcuts_dialog(self)
        dlg.open()
        return dlg

    def about(self) -> AboutDialog:
        dlg = AboutDialog(device_text(self.session.device), self.session.registry.names(), self)
        dlg.open()
        return dlg

    # ---- layout persistence and shutdown

    def _restore_layout(self) -> None:
        s = self.settings
        geometry = s.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(*default_size(self.screen()))
        state = s.value("window/state")
        if state is not None:
            self.restoreState(state)
        self.tabs.setCurrentIndex(int(s.value("window/tab", 0) or 0))
        for name, splitter in self._splitters().items():
            value = s.value(f"splitters/{name}")
            if value is not None:
                splitter.restoreState(value)
        self.explore.restore_state(s.value("explore/state"))

    def _splitters(self) -> dict:
        return {"explore": self.explore.splitter, "curate": self.curate.splitter, "align": self.align.splitter}

    def save_settings(self) -> None:
        s = self.settings
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        s.setValue("window/tab", self.tabs.currentIndex())
        for name, splitter in self._splitters().items():
            s.setValue(f"splitters/{name}", splitter.saveState())
        s.setValue("explore/state", self.explore.state())
        if self.session.trials_path is not None:
            s.setValue("session/trials", str(self.session.trials_path))
        s.sync()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        if not self._closed:
            self._closed = True
            self.save_settings()
            if workers.active_jobs():
                self.hide()  # a sampling step may take a while to finish: look closed at once
            self.explore.shutdown()
            self.align.shutdown()
            workers.shutdown_all()
            self.analysis.shutdown()
            self.curate.shutdown()
            self.session.shutdown()
        super().closeEvent(event)
