"""Runs an Explore generation job and keeps the tiles up to date; no widgets here.

The job is the engine's :func:`perceptlab.engine.generate.generate` generator, run in a worker thread
(``workers.Job``) with a *staging* library in a temporary folder: every finished batch is scored with
every zoo classifier and the judge, judged and committed there by the engine, so the Explore grid can
re-judge it with new thresholds (``filters.rejudge``, nothing sampled again) and copy chosen stimuli
into the user's library with one ``StimulusLibrary.add``. A reference image for the pixel constraint
(from MNIST or the library) is first added to the staging library, where the engine looks it up.
"""

from __future__ import annotations

import copy
import math
import shutil
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal, Slot

from perceptlab._qt.explore.preview import Tile
from perceptlab._qt.widgets.images import to_uint8
from perceptlab._qt.workers import Job
from perceptlab.data.library import Stimulus, StimulusLibrary
from perceptlab.data.library_records import clean_tags
from perceptlab.engine.filters import FilterSettings, rejudge, verdicts
from perceptlab.engine.generate import DEFAULT_MAX_ROUNDS, expand_targets, generate, resolve_seed
from perceptlab.engine.sampler import SamplerSettings
from perceptlab.errors import PerceptLabError


REDRAW_MS = 40  # previews repaint on every step, at most 25 times a second


def warm_models(registry, device) -> list[str]:
    """Load every model of the registry into its cache (run at start-up in a worker, so that the first
    Generate does not wait for weights to load); returns the names that could not be loaded."""
    import torch  # noqa: PLC0415

    failed = []
    x = torch.zeros(2, 1, 28, 28, device=device)
    for kind in ("prior", "classifier", "judge"):
        for name in registry.names(kind):
            try:
                model = registry.load(name, device, kind=kind)
                # one tiny forward and backward pass primes the CPU kernels and autograd (first calls are
                # slow: without it the first Generate waited ~2 s longer for its first preview)
                xg = x.clone().requires_grad_(True)
                out = model(xg, torch.tensor([500, 500], device=device)) if kind == "prior" else model(xg)
                out = getattr(out, "sample", out)
                torch.autograd.grad(out.float().sum(), xg)
            except Exception:  # noqa: BLE001 - a broken model is reported when it is used
                failed.append(name)
    return failed


class Reference:
    """A reference image for the pixel constraint: uint8 (28, 28), where it came from, its label."""

    def __init__(self, image: np.ndarray, source: str, label: int | None = None):
        self.image = np.ascontiguousarray(image, dtype=np.uint8)
        self.source = source
        self.label = label


class GenerationController(QObject):
    tilesReset = Signal()
    tilesChanged = Signal(int, int)  # first, last tile index
    progress = Signal(float, float)  # done, planned (images)
    started = Signal()
    finished = Signal(str)  # "done" | "cancelled" | "error"
    message = Signal(str)
    failed = Signal(object)  # the exception

    def __init__(self, session, parent: QObject | None = None):
        super().__init__(parent)
        self.session = session
        self.tiles: list[Tile] = []
        self.settings: SamplerSettings | None = None
        self.filters = FilterSettings()
        self.job: Job | None = None
        self.summary = None
        self.reference: Reference | None = None
        self.run_tags: list[str] = []  # added to every stimulus of the current run stored in a library
        self._staging: StimulusLibrary | None = None
        self._staging_dir: Path | None = None
        self._earlier: set[str] = set()  # staged ids of earlier runs
        self._staging_lock = threading.Lock()
        self._active = False
        self.t_start: float | None = None
        self.first_preview_at: float | None = None
        self.stop_requested_at: float | None = None
        self.stopped_at: float | None = None
        self.step_times: list[float] = []  # when each step record reached the GUI thread
        self._latest = None  # the newest step not drawn yet
        self._redraw = QTimer(self)
        self._redraw.setSingleShot(True)
        self._redraw.setInterval(REDRAW_MS)
        self._redraw.timeout.connect(self._apply_latest)

    # ---- staging

    def staging(self) -> StimulusLibrary:
        with self._staging_lock:
            return self._make_staging()

    def _make_staging(self) -> StimulusLibrary:
        if self._staging is None:
            self._staging_dir = Path(tempfile.mkdtemp(prefix="perceptlab-explore-"))
            self._staging = StimulusLibrary.create(self._staging_dir / "staging")
        return self._staging

    def dispose(self) -> None:
        """Stop the job and remove the staging folder (on window close)."""
        self._active = False
        if self.job is not None and self.job.is_running():
            self.job.disconnect_all()
            self.job.cancel()
            self.job.wait()
        if self._staging is not None:
            self._staging.close()
            self._staging = None
        if self._staging_dir is not None:
            shutil.rmtree(self._staging_dir, ignore_errors=True)
            self._staging_dir = None

    # ---- running

    def is_running(self) -> bool:
        """True from Generate until the job's outcome (done, cancelled, failed) has been handled."""
        return self._active

    def start(self, settings: SamplerSettings, per_pair: int, filters: FilterSettings,
              reference: Reference | None = None, tags: list[str] | tuple[str, ...] = (),
              regenerate: bool = False, max_rounds: int = DEFAULT_MAX_ROUNDS) -> None:
        """Start a run; ``tags`` are added to every stimulus of this run stored by ``add_to_library``
        (the Align panel's Manipulate view tags its runs with the participants, arm and run). With
        ``regenerate`` the rejected images are sampled again (new seeds, same tile) until each passes
        the filter given here or ``max_rounds`` rounds are spent."""
        if self.is_running():
            raise PerceptLabError("a generation is already running", "stop it first")
        if per_pair < 1:
            raise PerceptLabError("no images asked for", "ask for at least 1 image per pair")
        if settings.mode == "controversial" and settings.classifier2 == settings.classifier:
            raise PerceptLabError("controversial mode needs two different classifiers",
                                  "pick another classifier 2")
        settings = settings.replace(seed=resolve_seed(settings.seed), reference=None).validate()
        filters = filters.validate()
        self.reference = reference
        self.run_tags = clean_tags(list(tags)) if tags else []
        targets = expand_targets(settings.pairs, per_pair)
        self.settings, self.filters, self.summary = settings, filters, None
        self._earlier = set(self.staging().ids())
        self.tiles = [Tile(i, tuple(p), settings.seed + i) for i, p in enumerate(targets)]
        self.tilesReset.emit()
        self.t_start = time.perf_counter()
        self.first_preview_at = self.stop_requested_at = self.stopped_at = None
        self.step_times = []
        self._latest = None
        rounds = max_rounds if regenerate else 1
        job = Job(self._job, settings, targets, filters, reference, rounds, name="generate", parent=self)
        job.yielded.connect(self._on_record)
        job.returned.connect(self._on_returned)
        job.errored.connect(self._on_error)
        job.cancelled.connect(self._on_cancelled)
        self.job = job
        self._active = True
        job.start()
        self.started.emit()
        again = f"; rejects sampled again, up to {rounds} rounds" if rounds > 1 else ""
        self.message.emit(f"Generating {len(targets)} images ({settings.mode}, {settings.steps} steps, "
                          f"R={settings.resample}, gamma {settings.gamma:g}, seed {settings.seed}{again})…")

    def _job(self, settings: SamplerSettings, targets, filters: FilterSettings, reference: Reference | None,
             rounds: int = 1):
        """The work of one run, in the worker thread: the staging library is created (first time) and the
        reference stored there before the engine's generation job starts."""
        staging = self.staging()
        if reference is not None:
            rec = Stimulus(mode="mnist" if reference.source.startswith("MNIST") else "imported",
                           class_a=reference.label, note=f"reference: {reference.source}")
            settings = settings.replace(reference=staging.add([rec], reference.image[None])[0])
        return (
            yield from generate(settings, targets, filters=filters, registry=self.session.registry, library=staging,
                                device=self.session.device, regenerate=rounds > 1, max_rounds=rounds,
                                keep_rejects=True)
        )

    def stop(self) -> None:
        if self.is_running():
            self.stop_requested_at = time.perf_counter()
            self.job.cancel()
            self.message.emit("Stopping after the current step…")

    # ---- records from the engine

    def _pair_probs(self, probs: dict, pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """p(a) and p(b) of each image of a step (classifier 1 and 2 in controversial mode)."""
        s = self.settings
        n = len(pairs)
        p1 = probs.get(s.classifier)
        p2 = probs.get(s.classifier2) if s.mode == "controversial" else p1
        rows = np.arange(n)
        pa = p1[rows, pairs[:, 0]] if p1 is not None else np.full(n, np.nan)
        pb = p2[rows, pairs[:, 1]] if p2 is not None else np.full(n, np.nan)
        return pa.astype(float), pb.astype(float)

    @Slot(object)
    def _on_record(self, rec: dict) -> None:
        kind = rec.get("kind", "step")
        if kind == "step":
            self._on_step(rec)
        elif kind == "batch":
            self._apply_latest()
            self._on_batch(rec)
        self.progress.emit(float(rec.get("done", 0.0)), float(rec.get("planned", 1.0)))

    def _batch_tiles(self, rec: dict) -> list[Tile]:
        """The tiles of the record's batch. A rejected image sampled again (``regenerate``) comes back
        with a new seed: its tile starts over as the next attempt."""
        tiles = []
        for slot, seed in zip(rec["slots"], rec["seeds"]):
            tile = self.tiles[slot]
            if tile.seed != seed:
                tile.restart(seed)
            tiles.append(tile)
        return tiles

    def _emit_changed(self, tiles: list[Tile]) -> None:
        if tiles:
            self.tilesChanged.emit(min(t.index for t in tiles), max(t.index for t in tiles))

    def _on_step(self, rec: dict) -> None:
        """Record every step's p(a), p(b) (cheap); the images and badges of the latest step are applied
        by ``_apply_latest`` at most every ``REDRAW_MS`` (steps of small models can be faster than that)."""
        now = time.perf_counter()
        self.step_times.append(now)
        probs = {k: v.numpy() if hasattr(v, "numpy") else np.asarray(v) for k, v in rec.get("probs", {}).items()}
        tiles = self._batch_tiles(rec)
        pa, pb = self._pair_probs(probs, np.array([t.pair for t in tiles], dtype=int).reshape(-1, 2))
        step = int(rec.get("step", 0))
        for tile, a, b in zip(tiles, pa.tolist(), pb.tolist()):
            tile.steps.append(step)
            tile.hist_a.append(a)
            tile.hist_b.append(b)
        self._latest = (tiles, rec, probs, pa, pb)
        if self.first_preview_at is None:
            self._apply_latest()
            self.first_preview_at = time.perf_counter()
        elif not self._redraw.isActive():
            self._redraw.start()

    def _apply_latest(self) -> None:
        if self._latest is None:
            return
        tiles, rec, probs, pa, pb = self._latest
        self._latest = None
        x0 = to_uint8(rec["x0"])
        judge = rec.get("judge")
        judge = None if judge is None else np.asarray(judge.numpy() if hasattr(judge, "numpy") else judge)
        valid = np.asarray(rec["valid"].numpy() if hasattr(rec["valid"], "numpy") else rec["valid"], dtype=bool)
        live = self._live_verdicts([t.pair for t in tiles], probs, judge)
        for i, tile in enumerate(tiles):
            tile.image = x0[i]
            tile.valid = bool(valid[i])
            tile.p_a, tile.p_b = float(pa[i]), float(pb[i])
            tile.live_passed = None if live is None else live[i]
        self._emit_changed(tiles)

    def _live_verdicts(self, pairs, probs, judge) -> list[bool] | None:
        s = self.settings
        p1 = probs.get(s.classifier)
        p2 = probs.get(s.classifier2) if s.mode == "controversial" else None
        if p1 is None or (s.mode == "controversial" and p2 is None):
            return None
        # the preview is judged by the guides' thresholds only: the other zoo classifiers score the final
        # image, and the stroke check needs a finished one
        f = replace(self.filters, agree=0, strokes=False)
        f = f if judge is not None else replace(f, min_judge=None)
        try:
            out = verdicts(s.mode, pairs, p1, judge, f, p2, (s.classifier, s.classifier2 or ""))
        except PerceptLabError:
            return None
        return [v.passed for v in out]

    def _on_batch(self, rec: dict) -> None:
        staging = self.staging()
        tiles = self._batch_tiles(rec)
        # this run's records by seed (unique within a run); the worker may have staged later batches too
        by_seed = {r.seed: r for r in staging.records()
                   if r.id not in self._earlier and r.mode in ("uncertainty", "controversial")}
        for tile in tiles:
            record = by_seed.get(tile.seed)
            tile.final = True
            if record is None:
                tile.valid, tile.passed, tile.reason = False, False, "diverged (NaN) during sampling"
                continue
            tile.record = record
            tile.image = staging.image(record.id)
            tile.p_a = record.p_a if record.p_a is not None else math.nan
            tile.p_b = record.p_b if record.p_b is not None else math.nan
            v = rejudge(record, self.filters, tile.image)
            tile.passed, tile.reason = v.passed, v.reason
        self._emit_changed(tiles)

    @Slot(object)
    def _on_returned(self, summary) -> None:
        self._active = False
        self._redraw.stop()
        self._apply_latest()
        self.summary = summary
        self.stopped_at = time.perf_counter()
        acc = sum(1 for t in self.tiles if t.final and t.passed)
        again = ""
        if summary.rounds > 1:
            again = f" over {summary.rounds} rounds ({summary.unfilled} of {len(self.tiles)} still rejected)"
        confirmed = [t.observer_confirms() for t in self.tiles if t.final and t.passed]
        confirmed = [c for c in confirmed if c]
        observed = ""
        if confirmed:
            observed = f" ({sum(all(c.values()) for c in confirmed)} of them confirmed by every independent observer)"
        self.message.emit(f"Generated {summary.generated} images in {summary.seconds:.1f} s{again}: {acc} accepted"
                          f"{observed}, {summary.invalid} diverged. Select images and add them to the library.")
        self.finished.emit("done")

    def _halt(self) -> None:
        """End of an interrupted run: stop redrawing, draw the last state, mark unfinished tiles stopped."""
        self._active = False
        self._redraw.stop()
        self._apply_latest()
        self.stopped_at = time.perf_counter()
        for t in self.tiles:
            if not t.final:
                t.stopped = True
        self.tilesChanged.emit(0, max(len(self.tiles) - 1, 0))

    @Slot()
    def _on_cancelled(self) -> None:
        self._halt()
        done = sum(1 for t in self.tiles if t.final)
        self.message.emit(f"Generation cancelled; {done} finished images kept.")
        self.finished.emit("cancelled")

    @Slot(object)
    def _on_error(self, exc) -> None:
        self._halt()
        self.message.emit(f"Generation failed: {exc}")
        self.failed.emit(exc)
        self.finished.emit("error")

    # ---- after the run

    def set_filters(self, filters: FilterSettings) -> int:
        """Re-judge every finished image with new thresholds; returns how many are accepted."""
        self.filters = filters.validate()
        for t in self.tiles:
            if t.final and t.record is not None:
                v = rejudge(t.record, self.filters, t.image)
                t.passed, t.reason = v.passed, v.reason
        if self.tiles:
            self.tilesChanged.emit(0, len(self.tiles) - 1)
        return sum(1 for t in self.tiles if t.final and t.passed)

    def addable(self, rows: list[int] | None = None, accepted_only: bool = False) -> list[Tile]:
        rows = range(len(self.tiles)) if rows is None else rows
        out = []
        for i in rows:
            t = self.tiles[i]
            if t.record is None or t.added_id is not None:
                continue
            if accepted_only and not t.passed:
                continue
            out.append(t)
        return out

    def add_to_library(self, library: StimulusLibrary, tiles: list[Tile]) -> list[str]:
        """Store the staged stimuli of ``tiles`` (verdicts as currently judged) in ``library``."""
        if not tiles:
            return []
        records, images = [], []
        for t in tiles:
            rec = copy.deepcopy(t.record)
            rec.passed, rec.reason = t.passed, t.reason
            rec.settings = {**rec.settings, "filter": self.filters.to_dict()}
            rec.tags = [*rec.tags, *(tag for tag in self.run_tags if tag not in rec.tags)]
            if self.reference is not None:
                rec.settings["reference"] = {"source": self.reference.source, "label": self.reference.label}
                rec.settings.get("sampler", {}).pop("reference", None)
            records.append(rec)
            images.append(self.staging().image(t.record.id))
        ids = library.add(records, np.stack(images))
        for t, sid in zip(tiles, ids):
            t.added_id = sid
        self.tilesChanged.emit(0, len(self.tiles) - 1)
        return ids
