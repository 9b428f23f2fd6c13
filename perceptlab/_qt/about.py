"""About dialog: versions of PerceptLab and its libraries, the device, and the model card."""

from __future__ import annotations

import platform
import sys
from importlib import metadata

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import qVersion
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QTabWidget, QTextBrowser, QVBoxLayout, QWidget

from perceptlab import __version__
from perceptlab.paths import resources_dir


def versions() -> dict[str, str]:
    out = {"PerceptLab": __version__, "Python": platform.python_version(), "PySide6": pyside_version, "Qt": qVersion()}
    for dist in ("pyqtgraph", "superqt", "torch", "diffusers", "numpy", "scipy", "pandas"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    out["platform"] = f"{platform.system()} {platform.release()} ({platform.machine()})"
    return out


def model_card_text() -> str:
    path = resources_dir() / "MODEL_CARD.md"
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return f"The model card ({path}) is not available in this installation."


class AboutDialog(QDialog):
    def __init__(self, device_text: str, registry_names: list[str], parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("About PerceptLab")
        self.resize(720, 560)
        rows = "".join(f"<tr><td><b>{k}</b></td><td>{v}</td></tr>" for k, v in versions().items())
        about = QLabel(
            "<h2>PerceptLab</h2>"
            "<p>A workbench for the BAM method (<i>Synthesizing Images on Perceptual Boundaries of ANNs</i>, "
            "ICML 2025): classifier-guided diffusion generates digits on classifier decision boundaries; curate "
            "them into stimulus sets, load human choices and compare human variability with model uncertainty.</p>"
            f"<table>{rows}<tr><td><b>device</b></td><td>{device_text}</td></tr>"
            f"<tr><td><b>models</b></td><td>{', '.join(registry_names) or 'none found'}</td></tr></table>"
            f"<p><small>{sys.executable}</small></p>"
        )
        about.setWordWrap(True)
        self.card = QTextBrowser()
        self.card.setMarkdown(model_card_text())
        self.card.setOpenExternalLinks(True)
        tabs = QTabWidget()
        tabs.addTab(about, "About")
        tabs.addTab(self.card, "Model card")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        buttons.accepted.connect(self.accept)
        layout = QVBoxLayout(self)
        layout.addWidget(tabs)
        layout.addWidget(buttons)
        self.tabs = tabs
