"""Column-mapping dialog for trial tables whose layout is not recognised (builds a ``ColumnMapping``)."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QLabel,
    QPushButton,
    QWidget,
)

from perceptlab._qt.messages import show_error
from perceptlab.data.trial_layouts import ColumnMapping
from perceptlab.errors import PerceptLabError

REQUIRED = ("participant", "stimulus", "response")
OPTIONAL = ("rt", "is_catch", "true_label", "trial_index", "is_train", "trial_type")
HINTS = {
    "participant": "who answered", "stimulus": "the image shown (id, file name or path)",
    "response": "the class chosen (index or name)", "rt": "reaction time", "is_catch": "catch / attention trial flag",
    "true_label": "correct class of catch trials", "trial_index": "trial order", "is_train": "train/test split flag",
    "trial_type": "rows of other trial types are skipped",
}


def file_columns(path: str | Path) -> list[str]:
    """The column names of a trial file, read the way ``load_trials`` reads it."""
    path = Path(path)
    try:  # the loader's own reader, so that delimiter sniffing and JSON lines agree with it
        from perceptlab.data.trial_reading import read_columns  # noqa: PLC0415

        return [str(c) for c in read_columns(path)]
    except ImportError:  # pragma: no cover - the reader moved; fall back to pandas
        import pandas as pd  # noqa: PLC0415

        if path.suffix.lower() in (".jsonl", ".ndjson"):
            first = path.read_text(encoding="utf-8").splitlines()[0]
            return list(json.loads(first))
        return [str(c) for c in pd.read_csv(path, sep=None, engine="python", nrows=5).columns]


class MappingDialog(QDialog):
    def __init__(self, columns: list[str], source: str = "", parent: QWidget | None = None,
                 initial: ColumnMapping | None = None, problem: str = ""):
        super().__init__(parent)
        self.setWindowTitle("Map the columns of the trial table")
        self.columns = list(columns)
        form = QFormLayout(self)
        intro = QLabel(
            (f"<b>{Path(source).name}</b>: " if source else "")
            + "PerceptLab does not recognise this layout. Say which column holds each field; "
            "participant, stimulus and response are required."
            + (f"<br><small>{problem}</small>" if problem else "")
        )
        intro.setWordWrap(True)
        form.addRow(intro)
        self.combos: dict[str, QComboBox] = {}
        lower = {c.lower(): c for c in self.columns}
        for name in (*REQUIRED, *OPTIONAL):
            combo = QComboBox()
            if name not in REQUIRED:
                combo.addItem("— not in the file —", None)
            for c in self.columns:
                combo.addItem(c, c)
            guess = lower.get(name)
            if guess is not None:
                combo.setCurrentIndex(combo.findData(guess))
            combo.setToolTip(HINTS[name])
            self.combos[name] = combo
            form.addRow(f"{name}{' *' if name in REQUIRED else ''}", combo)
        self.rt_unit = QComboBox()
        self.rt_unit.addItem("milliseconds", "ms")
        self.rt_unit.addItem("seconds", "s")
        self.rt_unit.addItem("infer from the values (median < 20: seconds)", "auto")
        form.addRow("RT unit", self.rt_unit)
        save = QPushButton("Save mapping as JSON…")
        save.clicked.connect(self._save)
        form.addRow(save)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Load with this mapping")
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        if initial is not None:
            self.set_mapping(initial)

    def set_mapping(self, m: ColumnMapping) -> None:
        for name, combo in self.combos.items():
            i = combo.findData(getattr(m, name))
            if i >= 0:
                combo.setCurrentIndex(i)
        self.rt_unit.setCurrentIndex(self.rt_unit.findData(m.rt_unit))

    def mapping(self) -> ColumnMapping:
        values = {name: combo.currentData() for name, combo in self.combos.items()}
        chosen = [v for v in values.values() if v is not None]
        dupes = sorted({c for c in chosen if chosen.count(c) > 1})
        if dupes:
            raise PerceptLabError(f"the column(s) {', '.join(dupes)} are mapped to more than one field",
                                  "map each column to one field only")
        kwargs = {k: v for k, v in values.items() if v is not None}
        return ColumnMapping(rt_unit=self.rt_unit.currentData(), **kwargs)

    def _accept(self) -> None:
        try:
            self.mapping()
        except PerceptLabError as exc:
            show_error(self, "Column mapping", exc)
            return
        self.accept()

    def _save(self) -> None:
        try:
            m = self.mapping()
        except PerceptLabError as exc:
            show_error(self, "Column mapping", exc)
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save column mapping", "mapping.json", "JSON (*.json)")
        if path:
            m.save(path)
