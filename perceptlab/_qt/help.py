"""Help ▸ User guide (``resources/help/guide.md``, offline) and Help ▸ Keyboard shortcuts (read from the
window's actions, so that the sheet always says what the keys do now)."""

from __future__ import annotations

import html

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget

from perceptlab.paths import resources_dir

#: keys handled by widgets rather than by menu actions
PANEL_KEYS = (
    ("Curate gallery", "A", "accept the selected stimuli"),
    ("Curate gallery", "R", "reject the selected stimuli"),
    ("Curate gallery", "N", "set the selected stimuli back to new"),
    ("Curate gallery", "T", "add a tag to the selected stimuli"),
    ("Curate gallery", "Arrows, Shift/Ctrl+click", "move, extend the selection"),
    ("Align", "Ctrl+Return", "run the fine-tuning"),
    ("Align", "Escape", "cancel the running fine-tuning"),
    ("Classifier pickers", "type", "filter the list by name"),
    ("Experiment runner", "number/letter keys, Space, Esc then Q", "answer, go on, pause then quit"),
)


def guide_path():
    return resources_dir() / "help" / "guide.md"


def guide_text() -> str:
    path = guide_path()
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return f"# User guide\n\nThe guide ({path}) is not available in this installation."


def _key_text(act: QAction) -> str:
    return ", ".join(s.toString(QKeySequence.SequenceFormat.NativeText) for s in act.shortcuts())


def shortcut_rows(window: QWidget) -> list[tuple[str, str, str]]:
    """(where, keys, what) for every menu action with a shortcut, then the panels' own keys."""
    rows = []
    for menu_action in window.menuBar().actions():
        menu = menu_action.menu()
        if menu is None:
            continue
        where = menu_action.text().replace("&", "")
        for act in menu.actions():
            if act.shortcuts():
                rows.append((where, _key_text(act), act.text().replace("&", "").split("  (")[0]))
    return rows + list(PANEL_KEYS)


def shortcut_html(window: QWidget) -> str:
    body = "".join(f"<tr><td>{html.escape(w)}</td><td><b>{html.escape(k)}</b></td><td>{html.escape(t)}</td></tr>"
                   for w, k, t in shortcut_rows(window))
    return ("<h2>Keyboard shortcuts</h2><table cellpadding='4'>"
            "<tr><th align='left'>where</th><th align='left'>keys</th><th align='left'>does</th></tr>"
            f"{body}</table>")


class TextDialog(QDialog):
    """A closeable, resizable text window (markdown or HTML)."""

    def __init__(self, title: str, parent: QWidget | None = None, *, markdown: str | None = None,
                 rich: str | None = None, size=(760, 640)):
        super().__init__(parent)
        self.setWindowTitle(title)
        self.resize(*size)
        self.browser = QTextBrowser()
        self.browser.setOpenExternalLinks(True)
        if markdown is not None:
            self.browser.setMarkdown(markdown)
        else:
            self.browser.setHtml(rich or "")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.browser)
        layout.addWidget(buttons)


def guide_dialog(parent: QWidget) -> TextDialog:
    return TextDialog("PerceptLab user guide", parent, markdown=guide_text())


def shortcuts_dialog(window: QWidget) -> TextDialog:
    return TextDialog("Keyboard shortcuts", window, rich=shortcut_html(window), size=(620, 560))
