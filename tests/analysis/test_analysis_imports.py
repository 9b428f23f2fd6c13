"""The data and analysis layers import neither torch nor Qt (DESIGN.md §1)."""

from __future__ import annotations

import subprocess
import sys

MODULES = [
    "perceptlab.data.trials", "perceptlab.data.trial_layouts", "perceptlab.analysis.choices",
    "perceptlab.analysis.outcomes", "perceptlab.analysis.rt", "perceptlab.analysis.correlation",
    "perceptlab.analysis.clustering", "perceptlab.analysis.exclusions",
    "perceptlab.analysis.participants", "perceptlab.analysis.simulate", "perceptlab.analysis.report",
    "perceptlab.cli.analyze", "perceptlab.cli.simulate",
]


def test_no_torch_or_qt_in_analysis():
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in MODULES)
        + "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'torch', 'PySide6', 'PyQt5', 'PyQt6', 'pyqtgraph', 'superqt', 'diffusers', 'matplotlib'})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
