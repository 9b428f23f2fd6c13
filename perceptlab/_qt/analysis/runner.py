"""The engine calls behind the Data and Analysis panels, run in worker threads."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from perceptlab.analysis.clustering import cluster_participants
from perceptlab.analysis.participants import participant_summary
from perceptlab.analysis.report import Analysis, analyze_table
from perceptlab.data.trial_stimuli import library_stimuli
from perceptlab.data.trials import TrialTable, resolve_stimuli
from perceptlab.engine.registry import Registry, predict_probs


APP_CONTROLS = {
    "library": "open a stimulus library (File menu)",
    "model": "the Model list of the Model vs human tab",
    "catch_threshold": "'Exclude at catch accuracy ≤' (Data panel)",
    "min_responses": "'Min responses per stimulus' (Data panel)",
    "min_overlap": "the minimum overlap (perceptlab analyze --min-overlap)",
    "k": "'Clusters k' (Participants tab)",
    "classes": "'Classes' (Data panel)",
}
"""The app's own controls, named in the analyses' messages instead of CLI flags."""


def analyse(table: TrialTable, library: Path | None, registry: Registry | None, *, catch_threshold: float = 0.7,
            min_responses: int = 3, k: int | None = None, bins: int = 20, min_overlap: int = 5) -> Analysis:
    """Every analysis of ``table``; stimuli resolved against the library's database when one is open,
    and model–human agreement for every classifier of the registry."""
    stimuli = resolve_stimuli(table, library_stimuli(library)) if library is not None else None
    models: tuple[str, ...] = ()
    predict = None
    if stimuli is not None and registry is not None and stimuli.n_matched:
        models = tuple(registry.names("classifier"))

        def predict(name: str, images: np.ndarray) -> np.ndarray:
            return predict_probs(name, images, registry)

    return analyze_table(table, stimuli=stimuli, models=models, predict=predict, min_responses=min_responses,
                         catch_threshold=catch_threshold, k=k, bins=bins, min_overlap=min_overlap,
                         controls=APP_CONTROLS)


def recluster(analysis: Analysis, k: int | None) -> Analysis:
    """The same analysis with participants clustered into ``k`` clusters (None: by silhouette)."""
    ex = analysis.exclusions
    min_overlap = analysis.options.get("min_overlap", 5)
    clusters = cluster_participants(ex.trials, k=k, min_overlap=min_overlap)
    participants = participant_summary(analysis.table.df, ex, clusters, len(analysis.table.classes))
    options = {**analysis.options, "k": k}
    skipped = {key: v for key, v in analysis.skipped.items() if key != "clusters"}
    return replace(analysis, clusters=clusters, participants=participants, options=options, skipped=skipped)
