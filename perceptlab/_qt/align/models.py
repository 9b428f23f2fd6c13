"""The fine-tuned models of the Align panel: the models in the user folder (GroupNets and IndivNets, as
every classifier picker lists them), renamed and deleted through :mod:`perceptlab.align.store`."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGroupBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from perceptlab._qt.align.runner import user_models_frame
from perceptlab._qt.messages import ask_yes_no, show_error
from perceptlab._qt.widgets.pandas_model import PandasModel
from perceptlab.align.store import delete_model, rename_model
from perceptlab.errors import PerceptLabError


def table_view(model) -> QTableView:
    """A read-only table of ``model`` that selects whole rows."""
    view = QTableView()
    view.setModel(model)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.verticalHeader().setVisible(False)
    view.setAlternatingRowColors(True)
    return view


class FineTunedModels(QGroupBox):
    """The user's fine-tuned models with Rename… and Delete… (the panel enables them: not during a run)."""

    message = Signal(str)
    selectionChanged = Signal()

    def __init__(self, session, parent: QWidget | None = None):
        super().__init__("Fine-tuned models", parent)
        self.session = session
        self.models_model = PandasModel()
        self.models_view = table_view(self.models_model)
        self.models_view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.models_view.horizontalHeader().setStretchLastSection(True)
        self.models_view.selectionModel().selectionChanged.connect(lambda *_: self.selectionChanged.emit())
        self.rename_button = QPushButton("Rename…")
        self.delete_button = QPushButton("Delete…")
        self.rename_button.clicked.connect(self.rename_selected)
        self.delete_button.clicked.connect(self.delete_selected)
        self.models_folder_label = QLabel()
        self.models_folder_label.setStyleSheet("color: #555")
        self.models_folder_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        mb = QVBoxLayout(self)
        mb.addWidget(self.models_folder_label)
        mb.addWidget(self.models_view, 1)
        brow = QHBoxLayout()
        brow.addStretch(1)
        brow.addWidget(self.rename_button)
        brow.addWidget(self.delete_button)
        mb.addLayout(brow)
        self.refresh()

    def refresh(self) -> None:
        """Reread the models in the user folder."""
        reg = self.session.registry
        self.models_model.set_frame(user_models_frame(reg))
        self.models_view.resizeColumnsToContents()
        self.models_folder_label.setText(f"in {reg.user_dir} (they appear in every classifier picker)")

    def enable_actions(self, allowed: bool) -> None:
        """Rename… and Delete… work on the selected model, when ``allowed``."""
        has_sel = bool(self.models_view.selectionModel().selectedRows())
        self.rename_button.setEnabled(has_sel and allowed)
        self.delete_button.setEnabled(has_sel and allowed)

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
