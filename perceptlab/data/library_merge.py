"""Merging stimulus libraries: ``perceptlab library merge A B ... --out C`` and the commit of a
distributed generation job's shards (:mod:`perceptlab.jobs.generate_job`) share this code.

Guarantees:

- **Ids never collide.** Every stimulus copied into the target gets a fresh id from the target's
  counter (``StimulusLibrary.add``); the old id and the library it came from are kept in the record's
  provenance, and ``merge_libraries`` returns the old -> new id map (``--id-map`` writes it as CSV).
- **Provenance is kept.** Settings, seed, weight hashes, probabilities, verdict and creation time are
  copied unchanged; ``settings["provenance"]`` gains a ``sources`` list (``{"library", "id"}``) and keeps
  whatever was there (a generation job stores ``job``, ``task``, ``attempt`` and ``worker`` there).
- **Repeats are de-duplicated** (default) **or refused** (``on_repeat="refuse"``). Two records are the
  same stimulus when their :func:`stimulus_key` is equal: a hash of mode, target pair, classifiers,
  per-image seed, weight hashes and the stored settings (without the job's base seed, which only says
  where a job's seed range started, and without ``provenance``). A record without a seed (an imported
  digit) is keyed on its pixels instead. The first occurrence is kept — the target's own, then the
  sources in the order given — and a repeat is not copied.
- **Curation survives.** When a repeat is folded into the kept record its tags are added to the kept
  record's tags, a differing note is appended, and the status is combined: equal statuses stay, ``new``
  gives way to a decision, and an ``accepted`` against a ``rejected`` is a conflict: refused
  (``on_conflict="refuse"``, the default, before anything is written) or settled by the first
  occurrence (``on_conflict="first"``).

``merge_libraries`` plans the whole merge in memory and checks it before it writes, so a refused merge
leaves the target untouched. Imports no torch.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from perceptlab.data.library import Stimulus, StimulusLibrary
from perceptlab.errors import PerceptLabError

PROVENANCE = "provenance"
ON_REPEAT = ("skip", "refuse")
ON_CONFLICT = ("refuse", "first")
_CHUNK = 500  # records per library transaction


def stimulus_key(rec: Stimulus, image: np.ndarray | None = None) -> str | None:
    """What makes a stimulus the same stimulus: (settings, seed) for generated ones, pixels otherwise.

    ``None`` when the record has no seed and no image is given (it can then never be a repeat).
    """
    settings = {k: v for k, v in rec.settings.items() if k != PROVENANCE}
    sampler = settings.get("sampler")
    if isinstance(sampler, Mapping):
        settings["sampler"] = {k: v for k, v in sampler.items() if k != "seed"}
    what: dict[str, Any] = {
        "mode": rec.mode,
        "pair": [rec.class_a, rec.class_b],
        "classifiers": [rec.classifier, rec.classifier2],
        "weights": dict(sorted(rec.weight_hashes.items())),
        "settings": settings,
    }
    if rec.seed is not None:
        what["seed"] = int(rec.seed)
    elif image is not None:
        what["pixels"] = hashlib.sha256(np.ascontiguousarray(image, dtype=np.uint8).tobytes()).hexdigest()
    else:
        return None
    text = json.dumps(what, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def with_provenance(rec: Stimulus, **entries: Any) -> Stimulus:
    """A copy of ``rec`` whose ``settings["provenance"]`` has ``entries`` added (``sources`` entries are
    appended to the list, other keys set)."""
    out = copy.deepcopy(rec)
    prov = dict(out.settings.get(PROVENANCE) or {})
    for key, value in entries.items():
        if key == "sources":
            prov["sources"] = [*prov.get("sources", []), *value]
        else:
            prov[key] = value
    out.settings = {**out.settings, PROVENANCE: prov}
    return out


def combine_status(kept: str, repeat: str) -> str | None:
    """The status of a kept record after folding in a repeat; ``None`` for a conflict."""
    if kept == repeat or repeat == "new":
        return kept
    if kept == "new":
        return repeat
    return None


@dataclass
class Repeat:
    """A record that was not copied because an earlier one is the same stimulus."""

    source: str  # library path (or shard label) of the repeat
    source_id: str
    kept: str  # "<library>:<id>" of the kept record (the target's id once written)


@dataclass
class MergeReport:
    """What a merge did."""

    target: str
    added: int = 0
    repeats: list[Repeat] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)  # settled by on_conflict="first"
    id_map: list[tuple[str, str, str]] = field(default_factory=list)  # (source, old id, new id)
    curation_updates: int = 0  # records of the target whose tags/status/note a repeat changed

    def summary(self) -> str:
        text = f"merged into {self.target}: {self.added} stimuli added, {len(self.repeats)} repeats de-duplicated"
        if self.curation_updates:
            text += f", curation of {self.curation_updates} kept stimuli updated from their repeats"
        if self.conflicts:
            text += f", {len(self.conflicts)} status conflicts settled by the first occurrence"
        return text

    def write_id_map(self, path: str | Path) -> Path:
        path = Path(path)
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(["source", "old_id", "new_id"])
            writer.writerows(self.id_map)
        return path


@dataclass
class _Planned:
    rec: Stimulus
    image: np.ndarray
    source: str
    source_id: str


def _fold(kept: Stimulus, repeat: Stimulus, where: str, on_conflict: str, conflicts: list[str]) -> bool:
    """Fold the curation of ``repeat`` into ``kept`` (in place); True when ``kept`` changed."""
    before = (kept.status, list(kept.tags), kept.note)
    status = combine_status(kept.status, repeat.status)
    if status is None:
        msg = f"{where}: status {repeat.status} but the kept copy is {kept.status}"
        if on_conflict == "refuse":
            raise PerceptLabError(
                f"status conflict between repeats of the same stimulus — {msg}",
                "make the two copies agree (perceptlab library set-status), or pass --on-conflict first "
                "to keep the status of the first occurrence",
            )
        conflicts.append(msg)
        status = kept.status
    kept.status = status
    kept.tags = kept.tags + [t for t in repeat.tags if t not in kept.tags]
    if repeat.note and repeat.note != kept.note and repeat.note not in kept.note.split(" | "):
        kept.note = f"{kept.note} | {repeat.note}" if kept.note else repeat.note
    return (kept.status, kept.tags, kept.note) != before


def _target_index(target: StimulusLibrary) -> tuple[dict[str, str], dict[str, Stimulus]]:
    index: dict[str, str] = {}
    records: dict[str, Stimulus] = {}
    for rec in target.records():
        key = stimulus_key(rec, target.image(rec.id) if rec.seed is None else None)
        records[rec.id] = rec
        if key is not None:
            index.setdefault(key, rec.id)
    return index, records


def merge_libraries(
    sources: Sequence[str | Path],
    out: str | Path,
    *,
    on_repeat: str = "skip",
    on_conflict: str = "refuse",
) -> MergeReport:
    """Merge the libraries ``sources`` into ``out`` (created if new or empty; an existing library keeps
    its stimuli and takes the others after them). See the module docstring for the rules."""
    if on_repeat not in ON_REPEAT:
        raise PerceptLabError(f"unknown repeat policy {on_repeat!r}", f"use one of: {', '.join(ON_REPEAT)}")
    if on_conflict not in ON_CONFLICT:
        raise PerceptLabError(f"unknown conflict policy {on_conflict!r}", f"use one of: {', '.join(ON_CONFLICT)}")
    if not sources:
        raise PerceptLabError("no libraries to merge", "name at least one library folder before --out")
    out_path = Path(out).expanduser().resolve()
    resolved = [Path(s).expanduser().resolve() for s in sources]
    for src in resolved:
        if src == out_path:
            raise PerceptLabError(f"{src} is both a source and the target", "pick a new folder for --out")
    if len(set(resolved)) != len(resolved):
        dup = next(s for s in resolved if resolved.count(s) > 1)
        raise PerceptLabError(f"{dup} is given twice", "name each library once")
    # Read every source first: a source that cannot be opened must fail before the target is created.
    loaded: list[tuple[str, list[Stimulus], list[np.ndarray]]] = []
    for src in resolved:
        with StimulusLibrary.open(src) as lib:
            recs = lib.records()
            loaded.append((str(src), recs, [lib.image(r.id) for r in recs]))
    with StimulusLibrary.open_or_create(out_path) as target:
        index, existing = _target_index(target)
        report = MergeReport(target=str(target.path))
        planned: list[_Planned] = []
        where_planned: dict[str, int] = {}  # key -> index into planned
        changed_existing: dict[str, Stimulus] = {}
        for label, recs, images in loaded:
            for rec, image in zip(recs, images):
                key = stimulus_key(rec, image if rec.seed is None else None)
                where = f"{label}:{rec.id}"
                if key is not None and (key in index or key in where_planned):
                    if on_repeat == "refuse":
                        first = index.get(key) or planned[where_planned[key]].source_id
                        raise PerceptLabError(
                            f"{where} repeats {first} (same settings and seed); nothing was written",
                            "pass --on-repeat skip to de-duplicate, or leave one of the copies out",
                        )
                    if key in index:
                        kept_id = index[key]
                        kept = changed_existing.get(kept_id) or copy.deepcopy(existing[kept_id])
                        if _fold(kept, rec, where, on_conflict, report.conflicts):
                            changed_existing[kept_id] = kept
                        report.repeats.append(Repeat(label, rec.id, f"{target.path}:{kept_id}"))
                    else:
                        p = planned[where_planned[key]]
                        _fold(p.rec, rec, where, on_conflict, report.conflicts)
                        p.rec = with_provenance(p.rec, sources=[{"library": label, "id": rec.id, "repeat": True}])
                        report.repeats.append(Repeat(label, rec.id, f"{p.source}:{p.source_id}"))
                    continue
                new = with_provenance(rec, sources=[{"library": label, "id": rec.id}])
                if key is not None:
                    where_planned[key] = len(planned)
                planned.append(_Planned(new, image, label, rec.id))
        # Everything checked: write.
        for start in range(0, len(planned), _CHUNK):
            chunk = planned[start : start + _CHUNK]
            ids = target.add([p.rec for p in chunk], np.stack([p.image for p in chunk]))
            report.id_map += [(p.source, p.source_id, new_id) for p, new_id in zip(chunk, ids)]
        report.added = len(planned)
        for kept_id, kept in changed_existing.items():
            old = existing[kept_id]
            if kept.status != old.status:
                target.set_status(kept_id, kept.status)
            if kept.tags != old.tags:
                target.set_tags(kept_id, kept.tags)
            if kept.note != old.note:
                target.set_note(kept_id, kept.note)
        report.curation_updates = len(changed_existing)
    return report


class ShardCommitter:
    """Idempotent commit of generated records into an open library, keyed on :func:`stimulus_key`.

    The engine commits each finished task with :meth:`commit`; a record whose (settings, seed) the
    library already holds — a task that ran twice, a job resumed into the same library — is not stored
    again, and the id it already has is returned in its place.
    """

    def __init__(self, library: StimulusLibrary):
        self.library = library
        self.index, _ = _target_index(library)
        self.repeats = 0

    def commit(
        self,
        records: Sequence[Stimulus],
        images: np.ndarray,
        per_record: Sequence[Mapping[str, Any]] | None = None,
        **provenance: Any,
    ) -> list[tuple[str, bool]]:
        """Store the new records in one transaction, with ``provenance`` (and ``per_record[i]``, e.g. the
        task and worker of each) added; returns (id, newly stored) per record."""
        images = np.asarray(images)
        extra = list(per_record) if per_record is not None else [{}] * len(records)
        keys = [stimulus_key(r, img if r.seed is None else None) for r, img in zip(records, images)]
        fresh: list[int] = []
        seen: set[str] = set()
        for i, key in enumerate(keys):
            if key is None or (key not in self.index and key not in seen):
                fresh.append(i)
                if key is not None:
                    seen.add(key)
        stored = self.library.add(
            [with_provenance(records[i], **provenance, **extra[i]) for i in fresh], images[fresh] if fresh else images[:0]
        )
        out: list[tuple[str, bool]] = []
        new_ids = dict(zip(fresh, stored))
        for i, key in enumerate(keys):
            if i in new_ids:
                if key is not None:
                    self.index[key] = new_ids[i]
                out.append((new_ids[i], True))
            else:
                self.repeats += 1
                out.append((self.index[key], False))
        return out

