"""Column layouts of trial tables: the explicit :class:`ColumnMapping` and automatic layout detection.

Known layouts (DESIGN.md §4) load without hand mapping:

- ``variMNIST``: ``subject_id, stimulus, stimulus_id, response, is_train`` (``df_DigitRecog.csv``);
- ``jsPsych``: ``subject`` (added with ``jsPsych.data.addProperties``), ``stimulus``, ``response``,
  ``rt`` (ms), ``trial_index``, ``trial_type``; rows of other trial types are not response trials;
- ``PsychoPy``: ``participant``, ``<name>.keys``, ``<name>.rt`` (seconds), a stimulus column such as
  ``image`` or ``stimulus``;
- ``canonical``: ``participant, stimulus, response`` and optional ``rt_ms, is_train, trial_index,
  is_catch, true_label``.

Anything else loads through a :class:`ColumnMapping`, saved and loaded as a small JSON file.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import pandas as pd

from perceptlab.errors import PerceptLabError

RT_UNITS = ("ms", "s")

JSPSYCH_RESPONSE_TYPES = (
    "image-button-response",
    "image-keyboard-response",
    "html-button-response",
    "html-keyboard-response",
    "canvas-button-response",
    "canvas-keyboard-response",
)
"""jsPsych plugins whose ``response`` is a choice; ``*-button-response`` gives a button index."""

_PARTICIPANT_NAMES = ("subject", "subject_id", "participant", "participant_id")
_STIMULUS_NAMES = ("stimulus", "image", "stim", "image_file", "imagefile", "img", "filename")
_RT_NOTE = "column 'rt' taken as milliseconds"


@dataclass(frozen=True)
class ColumnMapping:
    """Which source column holds each canonical field (``None``: not in the file).

    ``rt_unit`` is ``"ms"`` or ``"s"``. When ``trial_type`` is set, rows whose type is not in
    ``response_trial_types`` (or that have neither a response nor an image stimulus) are reported as
    "not a response trial". ``button_response`` marks types whose response is a button index.
    """

    participant: str
    stimulus: str
    response: str
    rt: str | None = None
    rt_unit: str = "ms"
    is_catch: str | None = None
    true_label: str | None = None
    trial_index: str | None = None
    is_train: str | None = None
    trial_type: str | None = None
    response_trial_types: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.rt_unit not in RT_UNITS:
            raise PerceptLabError(
                f"column mapping: rt_unit must be 'ms' or 's', not {self.rt_unit!r}",
                fix="set rt_unit to 'ms' for milliseconds or 's' for seconds",
            )
        for name in ("participant", "stimulus", "response"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise PerceptLabError(
                    f"column mapping: '{name}' must name a column (got {value!r})",
                    fix="give the source column that holds the " + name,
                )
        object.__setattr__(self, "response_trial_types", tuple(self.response_trial_types))

    def columns(self) -> dict[str, str]:
        """Canonical field -> source column, for the fields that name a column."""
        names = ("participant", "stimulus", "response", "rt", "is_catch", "true_label",
                 "trial_index", "is_train", "trial_type")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}

    def to_dict(self) -> dict:
        data = asdict(self)
        data["response_trial_types"] = list(self.response_trial_types)
        return data

    @classmethod
    def from_dict(cls, data: dict, source: str = "column mapping") -> ColumnMapping:
        if not isinstance(data, dict):
            raise PerceptLabError(f"{source}: expected a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise PerceptLabError(
                f"{source}: unknown keys {unknown}",
                fix=f"use only {sorted(known)}",
            )
        missing = [k for k in ("participant", "stimulus", "response") if k not in data]
        if missing:
            raise PerceptLabError(
                f"{source}: missing required keys {missing}",
                fix="name the source columns for participant, stimulus and response",
            )
        data = dict(data)
        data["response_trial_types"] = tuple(data.get("response_trial_types") or ())
        try:
            return cls(**data)
        except PerceptLabError as exc:
            raise PerceptLabError(f"{source}: {exc.message}", fix=exc.fix) from None

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> ColumnMapping:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise PerceptLabError(f"column mapping file {path} does not exist") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise PerceptLabError(
                f"column mapping file {path} is not valid JSON: {exc}",
                fix='write it like {"participant": "subj", "stimulus": "img", "response": "key"}',
            ) from None
        return cls.from_dict(data, source=str(path))


@dataclass(frozen=True)
class DetectedLayout:
    """A layout name, the mapping it implies and notes for the validation report.

    ``blank_rows_are_routines``: a row with neither stimulus nor response is a routine outside the
    trial loop (PsychoPy), not a broken trial. ``strip_key_syntax``: PsychoPy key syntax
    (``num_3``, ``['3']``) is reduced to the key name.
    """

    name: str
    mapping: ColumnMapping
    notes: tuple[str, ...] = ()
    blank_rows_are_routines: bool = False
    strip_key_syntax: bool = False


def _lookup(columns: Sequence[str]) -> dict[str, str]:
    """Lower-case column name -> actual name (first occurrence)."""
    out: dict[str, str] = {}
    for c in columns:
        out.setdefault(c.lower(), c)
    return out


def _first(look: dict[str, str], names: Sequence[str]) -> str | None:
    for n in names:
        if n in look:
            return look[n]
    return None


def _optional(look: dict[str, str]) -> dict[str, str | None]:
    return {n: look.get(n) for n in ("is_catch", "true_label", "is_train", "trial_index")}


def _most_filled(frame: pd.DataFrame, candidates: list[str]) -> str:
    return max(candidates, key=lambda c: int((frame[c].str.strip() != "").sum()))


def detect_layout(frame: pd.DataFrame, source: str) -> DetectedLayout:
    """Detect the layout of a raw table (all columns as strings); raise if none fits."""
    look = _lookup(list(frame.columns))
    opt = _optional(look)
    if "trial_type" in look and "response" in look and "stimulus" in look:
        participant = _first(look, _PARTICIPANT_NAMES)
        if participant is None:
            raise PerceptLabError(
                f"{source}: jsPsych export without a participant column "
                f"(looked for {', '.join(_PARTICIPANT_NAMES)})",
                fix="add one with jsPsych.data.addProperties({subject: ...}) or pass a column mapping",
            )
        mapping = ColumnMapping(
            participant=participant, stimulus=look["stimulus"], response=look["response"],
            rt=look.get("rt"), rt_unit="ms", trial_type=look["trial_type"],
            response_trial_types=JSPSYCH_RESPONSE_TYPES, **opt,
        )
        return DetectedLayout("jsPsych", mapping)
    keys = [c for c in frame.columns if c.lower().endswith(".keys")]
    if keys and "participant" in look:
        key_col = _most_filled(frame, keys) if len(keys) > 1 else keys[0]
        stem = key_col[: -len(".keys")]
        stimulus = _first(look, _STIMULUS_NAMES)
        if stimulus is None:
            raise PerceptLabError(
                f"{source}: PsychoPy data without a stimulus column "
                f"(looked for {', '.join(_STIMULUS_NAMES)})",
                fix="pass a column mapping naming the column that holds the image file",
            )
        loops = [c for c in frame.columns if c.endswith(".thisN")]
        trial_index = opt.pop("trial_index") or (
            (_most_filled(frame, loops) if len(loops) > 1 else loops[0]) if loops else None
        )
        notes = [f"response keys from '{key_col}'"]
        if len(keys) > 1:
            notes.append(f"other key columns ignored: {', '.join(k for k in keys if k != key_col)}")
        mapping = ColumnMapping(
            participant=look["participant"], stimulus=stimulus, response=key_col,
            rt=look.get(f"{stem}.rt".lower()), rt_unit="s", trial_index=trial_index, **opt,
        )
        return DetectedLayout("PsychoPy", mapping, tuple(notes), blank_rows_are_routines=True,
                              strip_key_syntax=True)
    if "subject_id" in look and "stimulus" in look and "response" in look:
        rt = look.get("rt_ms") or look.get("rt")
        notes = (_RT_NOTE,) if rt is not None and rt.lower() == "rt" else ()
        mapping = ColumnMapping(
            participant=look["subject_id"], stimulus=look["stimulus"], response=look["response"],
            rt=rt, **opt,
        )
        return DetectedLayout("variMNIST", mapping, notes)
    if "participant" in look and "stimulus" in look and "response" in look:
        rt = look.get("rt_ms") or look.get("rt")
        notes = (_RT_NOTE,) if rt is not None and rt.lower() == "rt" else ()
        mapping = ColumnMapping(
            participant=look["participant"], stimulus=look["stimulus"], response=look["response"],
            rt=rt, **opt,
        )
        return DetectedLayout("canonical", mapping, notes)
    raise PerceptLabError(_no_layout_message(look, source), fix=_MAPPING_FIX)


_MAPPING_FIX = (
    "rename the columns, or pass a column mapping (ColumnMapping / --mapping map.json with keys "
    "participant, stimulus, response and optionally rt, rt_unit, is_catch, true_label, trial_index, "
    "is_train)"
)

_REQUIRED = {  # in the order ties are broken when naming the closest layout
    "canonical": ("participant", "stimulus", "response"),
    "variMNIST": ("subject_id", "stimulus", "response"),
    "jsPsych": ("subject", "stimulus", "response", "trial_type"),
    "PsychoPy": ("participant", "<name>.keys", "stimulus or image"),
}


def _no_layout_message(look: dict[str, str], source: str) -> str:
    def missing(name: str) -> list[str]:
        need = _REQUIRED[name]
        out = []
        for col in need:
            if col == "<name>.keys":
                ok = any(c.endswith(".keys") for c in look)
            elif col == "stimulus or image":
                ok = _first(look, _STIMULUS_NAMES) is not None
            else:
                ok = col in look
            if not ok:
                out.append(col)
        return out

    gaps = {name: missing(name) for name in _REQUIRED}
    closest = min(gaps, key=lambda n: len(gaps[n]))
    cols = ", ".join(look.values())
    expected = "; ".join(f"{n} ({', '.join(req)})" for n, req in _REQUIRED.items())
    return (
        f"{source}: no known trial-table layout matches the columns [{cols}]; closest is "
        f"{closest}, which lacks {', '.join(gaps[closest])}. Known layouts: {expected}"
    )


def apply_mapping(frame: pd.DataFrame, mapping: ColumnMapping, source: str) -> DetectedLayout:
    """Check that every column the mapping names exists in the table."""
    absent = {k: v for k, v in mapping.columns().items() if v not in frame.columns}
    if absent:
        listed = ", ".join(f"{k} -> '{v}'" for k, v in absent.items())
        raise PerceptLabError(
            f"{source}: the column mapping names columns that are not in the file ({listed}); "
            f"the file has [{', '.join(frame.columns)}]",
            fix="correct the mapping so that each field names one of the file's columns",
        )
    return DetectedLayout("mapping", mapping)
