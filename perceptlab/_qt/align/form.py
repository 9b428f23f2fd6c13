"""The Align settings: what to fine-tune (base model, level), on whom (the participants, All / None),
how (the recipe, :class:`perceptlab.align.recipe.FinetuneRecipe`), and with which images and split.

The form reads the session (models, trials, library) and builds the :class:`AlignJob` and
:class:`SplitSettings` of a run; the panel starts and watches it.
"""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from perceptlab._qt.align.runner import base_models
from perceptlab._qt.widgets.combos import refill_combo
from perceptlab.align.layers import TRAINABLE
from perceptlab.align.pipeline import LEVELS, AlignJob
from perceptlab.align.recipe import SELECT_BY, FinetuneRecipe
from perceptlab.align.split import SplitSettings
from perceptlab.errors import PerceptLabError

NO_TRIALS = ("No trials loaded: load a trial file in the <b>Data</b> tab (File › Open trial file…, or drop it on "
             "the window). The demo project (File › Open demo project) loads synthetic trials.")
LEVEL_LABELS = {"group": "group: one GroupNet", "individual": "individual: IndivNets from the base",
                "both": "both: GroupNet, then IndivNets from it"}
LEVEL_HINTS = {"group": "Checked participants' trials train the GroupNet.",
               "individual": "One IndivNet per checked participant, fine-tuned from the base (pick a GroupNet).",
               "both": "GroupNet on all trials, then one IndivNet per checked participant."}


class AlignForm(QWidget):
    """Model, Participants, Recipe, and Images and split boxes, one above the other."""

    changed = Signal()  # the checked participants or the images changed (whether a run can start)
    folderUsed = Signal(object)  # a folder was chosen (Path): the next file dialog starts there

    def __init__(self, session, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.images_dir: Path | None = None
        self.last_dir = Path.home()

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
        for w, tip in (
            (self.level, "group: one GroupNet on all participants' choices (mixed 1:1 with MNIST). individual: one "
                         "IndivNet per checked participant from a GroupNet (own trials + all trials + MNIST, 2:1:1). "
                         "both: the GroupNet, then the IndivNets from it"),
            (self.epochs, "passes over the training data (paper 16); the best epoch on the validation part is kept"),
            (self.lr, "AdamW learning rate (paper 1e-3): higher learns faster and forgets more of MNIST"),
            (self.batch_size, "trials per optimisation step (paper 128)"),
            (self.weight_decay, "AdamW weight decay: pulls the weights towards 0, against over-fitting few trials"),
            (self.labels, "hard: each response is a label (paper). soft: each stimulus' choice distribution, so the "
                          "model learns how uncertain the people were"),
            (self.select_by, "which validation score picks the kept epoch"),
            (self.seed, "random seed of the split and the training: the same seed gives the same models"),
        ):
            w.setToolTip(tip)
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

        layout = QVBoxLayout(self)
        layout.addWidget(model_box)
        layout.addWidget(people_box, 1)
        # recipe and data split as tabs: the form fits a 1400x900 window without scrolling
        self.sections = QTabWidget()
        self.sections.setDocumentMode(True)
        for box, name in ((recipe_box, "Recipe"), (data_box, "Images and split")):
            box.setFlat(True)
            self.sections.addTab(box, name)
        layout.addWidget(self.sections)
        layout.addStretch(0)

        self.level.currentIndexChanged.connect(self._level_changed)
        self.labels.currentIndexChanged.connect(lambda: self.soft_confidence.setEnabled(bool(self.labels.currentData())))
        self.people.itemChanged.connect(lambda *_: self.changed.emit())
        self.soft_confidence.setEnabled(False)
        self.refresh_bases()
        self.refresh_participants()
        self.refresh_images()
        self._level_changed()

    # ---- pickers

    def refresh_bases(self) -> None:
        """Refill the base picker: the zoo models and the GroupNets (after a run, rename, delete)."""
        refill_combo(self.base, [(label, name) for name, label in base_models(self.session.registry)],
                     preferred="vgg")

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
        self.changed.emit()

    def _check_all(self, checked: bool) -> None:
        state = Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked
        self.people.blockSignals(True)
        for i in range(self.people.count()):
            self.people.item(i).setCheckState(state)
        self.people.blockSignals(False)
        self.changed.emit()

    def set_checked_participants(self, participants) -> None:
        want = {str(p) for p in participants}
        self.people.blockSignals(True)
        for i in range(self.people.count()):
            item = self.people.item(i)
            item.setCheckState(Qt.CheckState.Checked if item.data(Qt.ItemDataRole.UserRole) in want
                               else Qt.CheckState.Unchecked)
        self.people.blockSignals(False)
        self.changed.emit()

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
            self.folderUsed.emit(self.last_dir)
        self.refresh_images()

    def refresh_images(self) -> None:
        """Say where the images come from (the chosen folder, else the open library)."""
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
        self.changed.emit()

    # ---- what a run does

    def recipe(self) -> FinetuneRecipe:
        return FinetuneRecipe(
            epochs=self.epochs.value(), lr=float(self.lr.value()), batch_size=self.batch_size.value(),
            weight_decay=float(self.weight_decay.value()), trainable=self.trainable.currentData(),
            indiv_trainable=self.indiv_trainable.currentData(), soft_labels=bool(self.labels.currentData()),
            soft_confidence=float(self.soft_confidence.value()), select_by=self.select_by.currentData(),
            seed=self.seed.value(),
        ).validate()

    def job(self, overwrite: bool = False) -> AlignJob:
        level = self.level.currentData()
        people = self.checked_participants()
        if not people:
            raise PerceptLabError("no participant is checked", "check the participants to fine-tune on (All)")
        everybody = len(people) == self.people.count()
        return AlignJob(base=self.base.currentData(), level=level, participants=None if everybody else people,
                        recipe=self.recipe(), register=True, models_dir=self.session.registry.user_dir,
                        overwrite=overwrite).validate()

    def split(self) -> SplitSettings:
        return SplitSettings(float(self.val_fraction.value()), float(self.test_fraction.value())).validate()
