"""Trial tables: load, validate and map human choices onto stimuli.

:func:`load_trials` reads one trial file, several files, or a folder of them (CSV/TSV with the
delimiter sniffed, JSON lines, a JSON array or an object holding one, gzip-compressed or not) in the
layouts of :mod:`perceptlab.data.trial_layouts`, and returns a :class:`TrialTable`: the canonical
long table plus a :class:`ValidationReport`. Nothing is dropped silently: every unusable row is set
aside with its file, line number and reason, and ``rows_used + len(rejected) == rows_total`` —
for each file and in all. Problems with a whole file (empty, not a regular file, no header, unknown
layout) raise :class:`~perceptlab.errors.PerceptLabError`; with several files, a refused file is
listed with its reason and the others load.

Stages: :mod:`trial_sources` (opening, size and file-type checks, gzip, encodings),
:mod:`trial_reading` (raw blocks of text), :mod:`trial_validate` (block validation, then the
decisions over all rows: class set, RT unit, duplicates, catch trials), :mod:`trial_classes` (the
class set rules), :mod:`trial_stimuli` (matching stimuli to a library or image folder).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from perceptlab.data.trial_classes import resolve_classes
from perceptlab.data.trial_layouts import (
    ColumnMapping,
    DetectedLayout,
    apply_mapping,
    detect_layout,
    jspsych6_response,
)
from perceptlab.data.trial_reading import (  # noqa: F401  (DELIMITERS, _read_raw: re-exported)
    DELIMITERS,
    _as_str_frame,
    _Raw,
    _read_raw,
    read_chunks,
)
from perceptlab.data.trial_report import TrialTable, ValidationReport
from perceptlab.data.trial_stimuli import (  # noqa: F401  (re-exported: the public API of trial tables)
    IMAGE_EXTENSIONS,
    StimulusIndex,
    load_manifest,
    load_stimulus_images,
    resolve_stimuli,
)
from perceptlab.data.trial_validate import (  # noqa: F401
    CANONICAL_COLUMNS,
    MISSING_TOKENS,
    Context,
    finish,
    stimulus_key,
    validate_block,
)
from perceptlab.errors import PerceptLabError

__all__ = [
    "TrialTable",
    "ValidationReport",
    "StimulusIndex",
    "load_trials",
    "trials_from_frame",
    "trial_files",
    "load_manifest",
    "resolve_stimuli",
    "load_stimulus_images",
    "stimulus_key",
]

DEFAULT_MAX_RT_MS = 3_600_000.0
TRIAL_SUFFIXES = (".csv", ".tsv", ".txt", ".json", ".jsonl", ".ndjson", ".dat")
_NO_PARTICIPANT = "without a participant column"


def trial_files(paths: str | Path | Sequence[str | Path]) -> tuple[list[Path], list[str]]:
    """The trial files named by ``paths`` (files, or folders: their trial files, sorted) and notes
    on what a folder held besides."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    files: list[Path] = []
    notes: list[str] = []
    for p in map(Path, paths):
        if p.is_dir():
            found, other = [], []
            for c in sorted(p.iterdir()):
                name = c.name.lower().removesuffix(".gz")
                if c.name.startswith(".") or c.is_dir():
                    continue
                (found if name.endswith(TRIAL_SUFFIXES) else other).append(c)
            if not found:
                raise PerceptLabError(f"folder {p} holds no trial files ({', '.join(TRIAL_SUFFIXES)}, "
                                      "or .gz of them)", fix="point at the folder of the exported data")
            files += found
            if other:
                notes.append(f"{p}: {len(other)} other files not read ({', '.join(o.name for o in other[:5])}"
                             + (", …" if len(other) > 5 else "") + ")")
        else:
            files.append(p)
    if not files:
        raise PerceptLabError("no trial file given")
    return files, notes


def _with_participant(raw: _Raw, name: str) -> _Raw:
    raw.frame.insert(0, "participant", name)
    return raw


def _layout(frame: pd.DataFrame, mapping: ColumnMapping | None, source: str) -> DetectedLayout:
    if mapping is None:
        return detect_layout(frame, source)
    return apply_mapping(frame, mapping, source)


def _contexts(path: Path, mapping: ColumnMapping | None, sep: str | None, encoding: str | None,
              several: bool, block_chars: int | None, max_rt_ms: float = DEFAULT_MAX_RT_MS):
    """Validate one file block by block: (context, parts, first raw)."""
    kwargs = {} if block_chars is None else {"block_chars": block_chars}
    chunks = read_chunks(path, sep, encoding, **kwargs)
    first = next(chunks)
    if first.frame.empty and not first.rejected:
        raise PerceptLabError(f"{path}: holds no trials", fix="export the trials again")
    if first.frame.empty and not len(first.frame.columns):
        raise PerceptLabError(f"{path}: no readable rows: "
                              + "; ".join(f"line {ln}: {r}" for ln, _, r in first.rejected[:5]))
    js6 = jspsych6_response(first.frame)
    own_participant = False
    try:
        layout = _layout(first.frame, mapping, str(path))
    except PerceptLabError as exc:
        if not (several and mapping is None and _NO_PARTICIPANT in exc.message):
            raise
        own_participant = True
        layout = _layout(_with_participant(first, path.stem).frame, None, str(path))
    ctx = Context(layout, str(path), decimal_comma=first.delimiter not in (",", None), max_rt_ms=max_rt_ms)
    if js6:
        ctx.notes.append(js6)
    if own_participant:
        ctx.notes.append(f"{path.name}: no participant column; the file is one participant, "
                         f"'{path.stem}' (its name)")
    parts = [validate_block(first, ctx)]
    for raw in chunks:
        if js6:
            jspsych6_response(raw.frame)
        if own_participant:
            _with_participant(raw, path.stem)
        parts.append(validate_block(raw, ctx))
    ctx.notes[:0] = [n for n in first.notes if n not in ctx.notes] + list(layout.notes)
    first.frame = first.frame.iloc[0:0]  # only its encoding, format and notes are kept
    return ctx, parts, first


def load_trials(path: str | Path | Sequence[str | Path], mapping: ColumnMapping | str | Path | None = None,
                classes: Sequence[str] | str | None = None, *, sep: str | None = None,
                encoding: str | None = None, max_rt_ms: float = DEFAULT_MAX_RT_MS,
                block_chars: int | None = None) -> TrialTable:
    """Load and validate trial data: a file, several files or a folder (see the module docstring).

    ``mapping`` (a :class:`ColumnMapping` or the path of its JSON) overrides layout detection;
    ``classes`` are the class names in class-index order (default: inferred, see
    :mod:`perceptlab.data.trial_classes`); responses may be class names or class indices (jsPsych
    button responses are indices).
    """
    classes = resolve_classes(classes)
    if sep is not None and len(sep) != 1:
        raise PerceptLabError(f"sep must be a single character, got {sep!r}")
    if mapping is not None and not isinstance(mapping, ColumnMapping):
        mapping = ColumnMapping.load(mapping)
    files, notes = trial_files(path)
    several = len(files) > 1 or (isinstance(path, (str, Path)) and Path(path).is_dir())
    if not several:
        ctx, parts, first = _contexts(files[0], mapping, sep, encoding, False, block_chars, max_rt_ms)
        info = {"encoding": first.encoding, "delimiter": first.delimiter,
                "file_format": first.file_format, "notes": notes}
        return finish(parts, [ctx], classes, str(files[0]), max_rt_ms, info)
    contexts, parts, failed, firsts = [], [], [], []
    for f in files:
        try:
            ctx, p, first = _contexts(f, mapping, sep, encoding, True, block_chars, max_rt_ms)
        except PerceptLabError as exc:
            failed.append({"file": str(f), "rows_total": 0, "rows_used": 0, "rows_rejected": 0,
                           "error": str(exc)})
            continue
        contexts.append(ctx)
        parts += p
        firsts.append(first)
    source = str(path) if isinstance(path, (str, Path)) else f"{len(files)} files"
    if not contexts:
        raise PerceptLabError(f"{source}: none of the {len(files)} files could be read: "
                              + "; ".join(x["error"] for x in failed[:3]),
                              fix="correct the files, or load them one at a time to see each report")
    if failed:
        notes.append(f"{len(failed)} of {len(files)} files refused (rows not counted): "
                     + "; ".join(x["error"] for x in failed[:5]))
    encodings = sorted({r.encoding for r in firsts})
    info = {"encoding": "/".join(encodings), "delimiter": None,
            "file_format": f"{len(contexts)} files (" + ", ".join(sorted({r.file_format for r in firsts})) + ")",
            "notes": [f"{len(contexts)} files read; line numbers are per file", *notes],
            "failed_files": failed}
    return finish(parts, contexts, classes, source, max_rt_ms, info)


def trials_from_frame(frame: pd.DataFrame, mapping: ColumnMapping | None = None,
                      classes: Sequence[str] | None = None, *, source: str = "<DataFrame>",
                      max_rt_ms: float = DEFAULT_MAX_RT_MS) -> TrialTable:
    """Validate an in-memory table exactly like :func:`load_trials` (line = row number + 1)."""
    import numpy as np  # noqa: PLC0415

    classes = resolve_classes(classes)
    if frame.empty:
        raise PerceptLabError(f"{source}: holds no trials")
    raw = _Raw(_as_str_frame(frame.reset_index(drop=True)), np.arange(2, len(frame) + 2), [],
               "n/a", None, [], "in-memory table")
    raw.frame.columns = [str(c).strip() for c in raw.frame.columns]
    js6 = jspsych6_response(raw.frame)
    layout = _layout(raw.frame, mapping, source)
    ctx = Context(layout, source, decimal_comma=False, max_rt_ms=max_rt_ms)
    ctx.notes += ([js6] if js6 else []) + list(layout.notes)
    part = validate_block(raw, ctx)
    return finish([part], [ctx], classes, source, max_rt_ms,
                  {"encoding": "n/a", "delimiter": None, "file_format": "in-memory table"})
