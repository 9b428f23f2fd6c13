"""The demo project: a small generated stimulus library plus simulated (synthetic) trials.

Layout of a demo project folder (``resources/demo`` when shipped; built by ``perceptlab demo-project``)::

    demo/
      demo.json           what it is: pairs, models, settings, the SYNTHETIC note
      library/            a stimulus library (library.sqlite, images/, manifest.csv)
      trials.csv          simulated observers' trials (variMNIST layout + rt + synthetic)
      trials_truth.csv    each simulated participant's cluster, temperature, lapse, bias
      trials_truth.json   the simulation parameters

The app copies the shipped folder to the user's data folder on first start and opens the copy, so the
shipped files are never written to. No torch here (DESIGN §1).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perceptlab.errors import PerceptLabError

LIBRARY_DIR = "library"
TRIALS_FILE = "trials.csv"
TRUTH_FILE = "trials_truth.csv"
INFO_FILE = "demo.json"
_SKIP = ("*-shm", ".manifest.csv.tmp", ".tmp-*")


@dataclass(frozen=True)
class DemoProject:
    """Paths of a demo project folder."""

    root: Path

    @property
    def library(self) -> Path:
        return self.root / LIBRARY_DIR

    @property
    def trials(self) -> Path:
        return self.root / TRIALS_FILE

    @property
    def truth(self) -> Path:
        return self.root / TRUTH_FILE

    @property
    def info_path(self) -> Path:
        return self.root / INFO_FILE

    def info(self) -> dict[str, Any]:
        """The content of demo.json ({} when absent or unreadable)."""
        try:
            return json.loads(self.info_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}


def is_demo_project(folder: str | Path) -> bool:
    """True when ``folder`` holds a library folder and a trials file in the demo layout."""
    p = DemoProject(Path(folder))
    return (p.library / "library.sqlite").is_file() and p.trials.is_file()


def find_demo(folder: str | Path | None) -> DemoProject | None:
    """The demo project in ``folder``, or None when the folder is missing or incomplete."""
    if folder is None:
        return None
    return DemoProject(Path(folder)) if is_demo_project(folder) else None


def install_demo(source: str | Path, dest: str | Path, *, replace: bool = False) -> DemoProject:
    """Copy the demo project ``source`` to ``dest`` (kept as is when it already holds one, unless
    ``replace``); returns the copy. ``source`` is only read."""
    source, dest = Path(source), Path(dest)
    if not is_demo_project(source):
        raise PerceptLabError(
            f"{source} is not a demo project (needs {LIBRARY_DIR}/library.sqlite and {TRIALS_FILE})",
            "build one with `perceptlab demo-project --out DIR`",
        )
    if is_demo_project(dest) and not replace:
        return DemoProject(dest)
    if dest.exists():
        if replace and is_demo_project(dest):
            shutil.rmtree(dest)
        elif any(dest.iterdir()):
            raise PerceptLabError(f"{dest} exists and is not empty", "pick a new folder for the demo project")
    tmp = dest.with_name(f".{dest.name}.partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        shutil.copytree(source, tmp, ignore=shutil.ignore_patterns(*_SKIP))
        if dest.exists():
            dest.rmdir()
        tmp.rename(dest)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise PerceptLabError(
            f"cannot copy the demo project to {dest}: {exc.strerror or exc}", "check free disk space and permissions"
        ) from exc
    return DemoProject(dest)
