"""Column layouts of trial tables: the explicit :class:`ColumnMapping` and automatic layout detection.

Known layouts (DESIGN.md §4) load without hand mapping:

- ``variMNIST``: ``subject_id, stimulus, stimulus_id, response, is_train`` (``df_DigitRecog.csv``);
- ``jsPsych``: ``subject`` (added with ``jsPsych.data.addProperties``), ``stimulus``, ``response``
  (jsPsych 6: ``button_pressed`` / ``key_press``), ``rt`` (ms), ``trial_index``, ``trial_type``; rows
  of other trial types, and ``html-*`` screens without an image (instructions), are not response
  trials;
- ``Gorilla``: ``Participant Private ID``, ``Zone Type`` (``response_*`` rows are responses),
  ``Response``, ``Reaction Time`` (ms), a stimulus column (``Spreadsheet: image`` or similar);
- ``PsychoPy``: ``participant``, ``<name>.keys``, ``<name>.rt`` (seconds), a stimulus column such as
  ``image`` or ``stimulus``;
- ``canonical``: ``participant, stimulus, response`` and optional ``rt_ms, is_train, trial_index,
  is_catch, true_label``; ``subject_id`` or ``participant_id`` may name the participant.

RT units of detected layouts are inferred (``rt_unit="auto"``): see :data:`RT_SECONDS_RULE`.
Catch trials are the rows marked so — an ``is_catch`` (or ``catch``, ``is_sentinel``,
``attention_check``) column, or a trial-type column whose value names a catch, sentinel or attention
trial. A ``true_label`` on every row is ground truth, never a catch marker.

Anything else loads through a :class:`ColumnMapping`, saved and loaded as a small JSON file.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import pandas as pd

from perceptlab.errors import PerceptLabError

RT_UNITS = ("auto", "ms", "s")
RT_SECONDS_RULE = ("an rt column whose median positive value is below 20 is in seconds (no one answers "
                   "in under 20 ms); otherwise milliseconds")
CATCH_FLAG_NAMES = ("is_catch", "catch", "is_sentinel", "sentinel", "attention_check", "is_attention_check")
CATCH_TYPE_COLUMNS = ("trial_type", "trial_kind", "trial_role", "type", "condition", "task", "block",
                      "zone type", "display", "kind")
CATCH_TYPE_PATTERN = r"(?i)catch|sentinel|attention|vigilance"
GORILLA_RESPONSE_PREFIX = "response_"

JSPSYCH_RESPONSE_TYPES = (
    "image-button-response",
    "image-keyboard-response",
    "html-button-response",
    "html-keyboard-response",
    "canvas-button-response",
    "canvas-keyboard-response",
    "video-button-response",
    "video-keyboard-response",
    "audio-button-response",
    "audio-keyboard-response",
    "categorize-image",
    "categorize-html",
)
"""jsPsych plugins whose ``response`` is a choice; ``*-button-response`` gives a button index."""

_PARTICIPANT_NAMES = ("subject", "subject_id", "participant", "participant_id", "worker_id",
                      "workerid", "prolific_pid", "participant private id")
_STIMULUS_NAMES = ("stimulus", "image", "stim", "image_file", "imagefile", "img", "filename",
                   "spreadsheet: image", "spreadsheet: stimulus", "spreadsheet_image",
                   "spreadsheet: picture", "stimulus_file", "image_path")


@dataclass(frozen=True)
class ColumnMapping:
    """Which source column holds each canonical field (``None``: not in the file).

    ``rt_unit`` is ``"ms"``, ``"s"`` or ``"auto"`` (inferred from the values, see
    :data:`RT_SECONDS_RULE`). When ``trial_type`` is set, rows whose type is not in
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
                f"column mapping: rt_unit must be 'ms' or 's' (or 'auto'), not {self.rt_unit!r}",
                fix="set rt_unit to 'ms' for milliseconds, 's' for seconds or 'auto' to infer it",
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
    response_type_prefix: str | None = None
    html_needs_image: bool = False
    catch_type_columns: tuple[str, ...] = ()


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
    out = {n: look.get(n) for n in ("true_label", "is_train", "trial_index")}
    out["is_catch"] = _first(look, CATCH_FLAG_NAMES)
    return out


def _catch_types(look: dict[str, str]) -> tuple[str, ...]:
    return tuple(look[n] for n in CATCH_TYPE_COLUMNS if n in look)


def _rt(look: dict[str, str]) -> str | None:
    return _first(look, ("rt_ms", "rt", "reaction_time", "reaction time", "response_time", "latency"))


def _most_filled(frame: pd.DataFrame, candidates: list[str]) -> str:
    return max(candidates, key=lambda c: int((frame[c].str.strip() != "").sum()))


def detect_layout(frame: pd.DataFrame, source: str) -> DetectedLayout:
    """Detect the layout of a raw table (all columns as strings); raise if none fits."""
    look = _lookup(list(frame.columns))
    opt = _optional(look)
    catch_types = _catch_types(look)
    if "trial_type" in look and "response" in look and "stimulus" in look:
        participant = _first(look, _PARTICIPANT_NAMES)
        if participant is None:
            raise PerceptLabError(
                f"{source}: jsPsych export without a participant column "
                f"(looked for {', '.join(_PARTICIPANT_NAMES)})",
                fix="add one with jsPsych.data.addProperties({subject: ...}), pass a column mapping, "
                "or load the folder of per-participant files (each file is then one participant)",
            )
        mapping = ColumnMapping(
            participant=participant, stimulus=look["stimulus"], response=look["response"],
            rt=look.get("rt"), rt_unit="auto", trial_type=look["trial_type"],
            response_trial_types=JSPSYCH_RESPONSE_TYPES, **opt,
        )
        return DetectedLayout("jsPsych", mapping, html_needs_image=True, catch_type_columns=catch_types)
    if "participant private id" in look and "zone type" in look and "response" in look:
        stimulus = _first(look, _STIMULUS_NAMES) or _gorilla_stimulus(frame)
        if stimulus is None:
            raise PerceptLabError(
                f"{source}: Gorilla data without a stimulus column (looked for "
                f"{', '.join(_STIMULUS_NAMES)} and Spreadsheet columns holding image files)",
                fix="pass a column mapping naming the column that holds the image shown")
        opt["trial_index"] = opt["trial_index"] or _first(look, ("trial number", "event index"))
        mapping = ColumnMapping(
            participant=look["participant private id"], stimulus=stimulus, response=look["response"],
            rt=_first(look, ("reaction time", "rt")), rt_unit="auto", trial_type=look["zone type"], **opt)
        return DetectedLayout("Gorilla", mapping, (f"stimulus from '{stimulus}'",),
                              response_type_prefix=GORILLA_RESPONSE_PREFIX,
                              catch_type_columns=catch_types)
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
                              strip_key_syntax=True, catch_type_columns=catch_types)
    participant = _first(look, ("participant", "subject_id", "participant_id", "subject"))
    if participant is not None and "stimulus" in look and "response" in look:
        name = ("variMNIST" if participant.lower() == "subject_id" and "is_train" in look
                else "canonical")
        mapping = ColumnMapping(
            participant=participant, stimulus=look["stimulus"], response=look["response"],
            rt=_rt(look), rt_unit="auto", **opt,
        )
        notes = () if participant.lower() == "participant" else (f"participant from '{participant}'",)
        return DetectedLayout(name, mapping, notes, catch_type_columns=catch_types)
    raise PerceptLabError(_no_layout_message(look, source), fix=_MAPPING_FIX)


def _gorilla_stimulus(frame: pd.DataFrame) -> str | None:
    """A Gorilla 'Spreadsheet…' column whose filled values are mostly image file names."""
    for c in frame.columns:
        if c.lower().startswith("spreadsheet"):
            v = frame[c].str.strip()
            v = v[v != ""]
            if len(v) and v.str.contains(r"(?i)\.(?:png|jpe?g|gif|bmp|webp)$").mean() > 0.5:
                return c
    return None


_MAPPING_FIX = (
    "rename the columns, or pass a column mapping (ColumnMapping / --mapping map.json with keys "
    "participant, stimulus, response and optionally rt, rt_unit, is_catch, true_label, trial_index, "
    "is_train)"
)

_REQUIRED = {  # in the order ties are broken when naming the closest layout
    "canonical": ("participant", "stimulus", "response"),
    "variMNIST": ("subject_id", "stimulus", "response"),
    "jsPsych": ("subject", "stimulus", "response", "trial_type"),
    "Gorilla": ("participant private id", "zone type", "response"),
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


def _key_name(code: str) -> str:
    """jsPsych 6 ``key_press`` key code -> the key (49 -> '1', 97 -> '1' on the keypad, 65 -> 'a')."""
    try:
        k = int(float(code))
    except ValueError:
        return code
    if 48 <= k <= 57:
        return str(k - 48)
    if 96 <= k <= 105:
        return str(k - 96)
    if 65 <= k <= 90:
        return chr(k + 32)
    return {32: "space", 13: "enter"}.get(k, code)


def jspsych6_response(frame: pd.DataFrame) -> str | None:
    """Give a jsPsych 6 export (``button_pressed`` / ``key_press``, no ``response``) a ``response``
    column, in place; returns a note for the report, or None when the frame is not such an export."""
    look = _lookup(list(frame.columns))
    if "trial_type" not in look or "response" in look:
        return None
    bp, kp = look.get("button_pressed"), look.get("key_press")
    if bp is None and kp is None:
        return None
    response = pd.Series("", index=frame.index, dtype=object)
    if kp is not None:
        keys = frame[kp].str.strip()
        codes = pd.Series(pd.unique(keys.to_numpy(dtype=object)), dtype=object)
        response = keys.map(dict(zip(codes, codes.map(_key_name), strict=True)))
    if bp is not None:
        buttons = frame[bp].str.strip()
        response = response.where(buttons.isin(("", "null", "None")), buttons)
    frame["response"] = response.to_numpy(dtype=object)
    used = " and ".join(f"'{c}'" for c in (bp, kp) if c is not None)
    return (f"jsPsych 6 data: response from {used}"
            + (" (key codes turned into keys: 49 -> '1')" if kp is not None else ""))
