"""Stimulus records of the library: the ``Stimulus`` dataclass, its validation, and manifest formatting.

Kept apart from :mod:`perceptlab.data.library` (the SQLite + PNG store) so that exports and the app can
describe and check records without the storage code. Everything here is re-exported by
``perceptlab.data.library``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import operator
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from typing import Any

import numpy as np

from perceptlab.errors import PerceptLabError

IMAGES_DIR = "images"
MODES = ("uncertainty", "controversial", "mnist", "imported", "manipulation", "mixup", "enhanced")
STATUSES = ("new", "accepted", "rejected")
MANIFEST_COLUMNS = (
    "stimulus_id", "file", "mode", "class_a", "class_b", "classifier", "classifier2", "gamma", "steps",
    "resample", "seed", "p_a", "p_b", "judge", "passed", "status", "tags", "note", "created", "reason",
)  # fmt: skip
N_CLASSES = 10

_INT64 = (-(2**63), 2**63 - 1)


@dataclass(kw_only=True)
class Stimulus:
    """One stimulus: how it was made, what the models said, and its curation state."""

    id: str = ""  # assigned by StimulusLibrary.add
    created: str = ""  # ISO-8601 UTC; filled by add when empty
    mode: str  # one of MODES
    class_a: int | None = None
    class_b: int | None = None
    classifier: str | None = None
    classifier2: str | None = None
    gamma: float | None = None
    steps: int | None = None
    resample: int | None = None
    seed: int | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    weight_hashes: dict[str, str] = field(default_factory=dict)
    probs: dict[str, list[float]] = field(default_factory=dict)
    p_a: float | None = None
    p_b: float | None = None
    judge: float | None = None
    passed: bool | None = None
    reason: str = ""
    status: str = "new"
    tags: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def pair(self) -> tuple[int | None, int | None]:
        """The target pair (class_a, class_b)."""
        return self.class_a, self.class_b

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Stimulus:
        """Inverse of ``to_dict``; unknown keys are an error."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise PerceptLabError(
                f"unknown stimulus field(s): {', '.join(unknown)}", f"known fields: {', '.join(sorted(names))}"
            )
        if "mode" not in data:
            raise PerceptLabError("stimulus record has no 'mode'", f"set mode to one of {', '.join(MODES)}")
        return cls(**dict(data))


# --------------------------------------------------------------------------- validation


def _opt_int(value: Any, name: str, where: str, lo: int = _INT64[0], hi: int = _INT64[1]) -> int | None:
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        raise PerceptLabError(f"{where}: {name} is a boolean, expected an integer")
    try:
        number = operator.index(value)
    except TypeError:
        raise PerceptLabError(f"{where}: {name} = {value!r} is not an integer") from None
    if not lo <= number <= hi:
        raise PerceptLabError(f"{where}: {name} = {number} is outside {lo}..{hi}")
    return number


def _opt_float(value: Any, name: str, where: str) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise PerceptLabError(f"{where}: {name} = {value!r} is not a number") from None
    if math.isnan(number):
        raise PerceptLabError(f"{where}: {name} is NaN", "drop the stimulus; NaN means the generation diverged")
    return number


def _opt_str(value: Any, name: str, where: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise PerceptLabError(f"{where}: {name} = {value!r} is not text")


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):  # numpy scalars and arrays
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _as_json_dict(value: Any, name: str, where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise PerceptLabError(f"{where}: {name} must be a dict, got {type(value).__name__}")
    try:
        return json.loads(json.dumps(dict(value), default=_json_default))
    except (TypeError, ValueError) as exc:
        raise PerceptLabError(f"{where}: {name} cannot be stored as JSON ({exc})") from None


def clean_tags(tags: str | Iterable[str]) -> list[str]:
    """Validated, stripped, de-duplicated tags (a single string is one tag)."""
    if isinstance(tags, str):
        tags = [tags]
    out: list[str] = []
    for tag in tags:
        if not isinstance(tag, str):
            raise PerceptLabError(f"tag {tag!r} is not text")
        tag = tag.strip()
        if not tag or ";" in tag or "\n" in tag or "\r" in tag:
            raise PerceptLabError(f"invalid tag {tag!r}", "tags are non-empty text without ';' or line breaks")
        if tag not in out:
            out.append(tag)
    return out


def _check_status(status: str) -> str:
    if status not in STATUSES:
        raise PerceptLabError(f"unknown status {status!r}", f"use one of: {', '.join(STATUSES)}")
    return status


def _normalized(rec: Stimulus, where: str) -> Stimulus:
    """A validated copy of ``rec`` with plain Python types (numpy scalars converted)."""
    if not isinstance(rec, Stimulus):
        raise PerceptLabError(f"{where} is a {type(rec).__name__}, expected a Stimulus")
    if rec.mode not in MODES:
        raise PerceptLabError(f"{where}: unknown mode {rec.mode!r}", f"use one of: {', '.join(MODES)}")
    probs: dict[str, list[float]] = {}
    if not isinstance(rec.probs, Mapping):
        raise PerceptLabError(f"{where}: probs must be a dict of model name -> 10 probabilities")
    for model, values in rec.probs.items():
        try:
            row = [float(v) for v in np.asarray(values, dtype=np.float64).ravel()]
        except (TypeError, ValueError):
            raise PerceptLabError(f"{where}: probs[{model!r}] is not a list of numbers") from None
        if not isinstance(model, str) or len(row) != N_CLASSES:
            raise PerceptLabError(
                f"{where}: probs[{model!r}] has {len(row)} values, expected {N_CLASSES} (one per class)"
            )
        probs[model] = row
    hashes = _as_json_dict(rec.weight_hashes, "weight_hashes", where)
    if not all(isinstance(v, str) for v in hashes.values()):
        raise PerceptLabError(f"{where}: weight_hashes must map model names to sha256 hex strings")
    passed = rec.passed
    if passed is not None:
        if not isinstance(passed, (bool, np.bool_)):
            raise PerceptLabError(f"{where}: passed = {passed!r} is not True, False or None")
        passed = bool(passed)
    for name in ("reason", "note", "created"):
        if not isinstance(getattr(rec, name), str):
            raise PerceptLabError(f"{where}: {name} must be text")
    return Stimulus(
        id="",
        created=rec.created or _now(),
        mode=rec.mode,
        class_a=_opt_int(rec.class_a, "class_a", where, 0, N_CLASSES - 1),
        class_b=_opt_int(rec.class_b, "class_b", where, 0, N_CLASSES - 1),
        classifier=_opt_str(rec.classifier, "classifier", where),
        classifier2=_opt_str(rec.classifier2, "classifier2", where),
        gamma=_opt_float(rec.gamma, "gamma", where),
        steps=_opt_int(rec.steps, "steps", where),
        resample=_opt_int(rec.resample, "resample", where),
        seed=_opt_int(rec.seed, "seed", where),
        settings=_as_json_dict(rec.settings, "settings", where),
        weight_hashes=hashes,
        probs=probs,
        p_a=_opt_float(rec.p_a, "p_a", where),
        p_b=_opt_float(rec.p_b, "p_b", where),
        judge=_opt_float(rec.judge, "judge", where),
        passed=passed,
        reason=rec.reason,
        status=_check_status(rec.status),
        tags=clean_tags(rec.tags),
        note=rec.note,
    )


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- manifest


def manifest_values(rec: Stimulus) -> dict[str, Any]:
    """The manifest columns of one stimulus, as Python values (tags joined with ';')."""
    return {
        "stimulus_id": rec.id,
        "file": f"{IMAGES_DIR}/{rec.id}.png",
        "mode": rec.mode,
        "class_a": rec.class_a,
        "class_b": rec.class_b,
        "classifier": rec.classifier,
        "classifier2": rec.classifier2,
        "gamma": rec.gamma,
        "steps": rec.steps,
        "resample": rec.resample,
        "seed": rec.seed,
        "p_a": rec.p_a,
        "p_b": rec.p_b,
        "judge": rec.judge,
        "passed": rec.passed,
        "status": rec.status,
        "tags": ";".join(rec.tags),
        "note": rec.note,
        "created": rec.created,
        "reason": rec.reason,
    }


def format_cell(value: Any) -> str:
    """CSV text of one value: '' for None, true/false for booleans, repr precision for floats."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def csv_text(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    """CSV text (``\\n`` line ends) of a header and rows of Python values."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(list(header))
    writer.writerows([format_cell(v) for v in row] for row in rows)
    return buf.getvalue()
