"""What the panels share: the open library, the loaded trials and the analysis of them.

The session owns the :class:`~perceptlab.data.library.StimulusLibrary` and tells the panels through
signals when it changes. It holds no logic of its own beyond bookkeeping: opening, loading and
analysing are engine calls (run by the panels in worker threads).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PySide6.QtCore import QObject, Signal

from perceptlab.data.library import StimulusLibrary
from perceptlab.engine.registry import Registry


class Session(QObject):
    libraryChanged = Signal()  # a library was opened or closed
    stimuliAdded = Signal(list)  # ids
    stimuliChanged = Signal(list)  # ids whose curation changed
    trialsChanged = Signal()  # a trial table was loaded (or cleared)
    analysisChanged = Signal()  # a new analysis is available (or cleared)
    modelsChanged = Signal()  # user models were added, renamed or deleted (the registry lists them anew)
    message = Signal(str)  # a status-bar message

    def __init__(self, registry: Registry, device: torch.device, parent: QObject | None = None):
        super().__init__(parent)
        self.registry = registry
        self.device = device
        self.library: StimulusLibrary | None = None
        self.trials = None  # perceptlab.data.trials.TrialTable
        self.trials_path: Path | None = None
        self.mapping = None  # ColumnMapping used for the trials, if any
        self.analysis = None  # perceptlab.analysis.report.Analysis
        self.analysis_options: dict[str, Any] = {"catch_threshold": 0.7, "min_responses": 3, "k": None, "bins": 20}
        self.mnist = None  # perceptlab.data.mnist.MnistData, loaded in the background

    # ---- library

    def open_library(self, path: str | Path, create: bool = False) -> StimulusLibrary:
        lib = StimulusLibrary.open_or_create(path) if create else StimulusLibrary.open(path)
        self.close_library(emit=False)
        self.library = lib
        self.libraryChanged.emit()
        return lib

    def close_library(self, emit: bool = True) -> None:
        if self.library is not None:
            self.library.close()
            self.library = None
            if emit:
                self.libraryChanged.emit()

    def library_label(self) -> str:
        if self.library is None:
            return "no library open"
        return f"{self.library.path.name} ({len(self.library)} stimuli)"

    # ---- trials and analysis

    def set_trials(self, table, path: Path | None, mapping=None) -> None:
        self.trials = table
        self.trials_path = path
        self.mapping = mapping
        self.analysis = None
        self.trialsChanged.emit()
        self.analysisChanged.emit()

    def set_analysis(self, analysis) -> None:
        self.analysis = analysis
        self.analysisChanged.emit()

    # ---- models

    def models_changed(self) -> None:
        """Tell the panels that the user model folder changed: loaded weights are dropped (a renamed or
        replaced model must be read again) and every classifier picker is refilled."""
        self.registry.clear_cache()
        self.modelsChanged.emit()

    def entropy_by_library_id(self) -> dict[str, float]:
        """Human choice entropy (bits) of each library stimulus that the trials cover."""
        a = self.analysis
        if a is None or a.stimuli is None or not len(a.stimuli.table):
            return {}
        ent = a.choices.per_stimulus["entropy_bits"]
        ids = a.stimuli.table["stimulus_id"].reindex(ent.index)
        ok = ids.notna().to_numpy() & np.isfinite(ent.to_numpy(dtype=float))
        return dict(zip(ids[ok].astype(str), ent[ok].astype(float)))

    def choices_by_library_id(self, stimulus_id: str) -> tuple[np.ndarray, str] | None:
        """(counts per class, stimulus key) of one library stimulus, when trials cover it."""
        a = self.analysis
        if a is None or a.stimuli is None:
            return None
        t = a.stimuli.table
        keys = t.index[t["stimulus_id"].astype(str) == stimulus_id]
        per = a.choices.per_stimulus
        for key in keys:
            if key in per.index:
                cols = [f"count_{c}" for c in a.table.classes]
                return per.loc[key, cols].to_numpy(dtype=float), str(key)
        return None

    def image_path_of(self, key: str) -> Path | None:
        """Image file of a stimulus key of the trial table (via the analysis's stimulus index)."""
        a = self.analysis
        if a is None or a.stimuli is None or key not in a.stimuli.table.index:
            return None
        path = a.stimuli.table.loc[key, "path"]
        return Path(path) if isinstance(path, str) else None

    def shutdown(self) -> None:
        self.close_library(emit=False)
