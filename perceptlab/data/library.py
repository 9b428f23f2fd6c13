"""The stimulus library: a folder with ``library.sqlite``, ``images/<id>.png`` and ``manifest.csv``.

Layout and guarantees (DESIGN.md §4):

- ``library.sqlite`` (WAL mode) holds one row per stimulus and a ``meta`` table (schema version,
  creation time, next id). Every change is one transaction.
- ``images/<id>.png``: 28x28 8-bit grayscale, white digit on black.
- ``manifest.csv`` mirrors the table for other tools; it is rewritten atomically after every change.

Crash safety: ``add`` takes the database write lock, writes each PNG to ``images/.tmp-<id>.png``,
fsyncs it, renames it to ``images/<id>.png``, and only then commits the rows. A process killed at any
moment therefore leaves, at worst, image files with no row; opening the library (under the same write
lock, so never while another process is half-way through an ``add``) deletes them, deletes left-over
temporary files and rewrites ``manifest.csv`` if it does not match the table. Ids (``s000001``, ...)
come from a counter in ``meta`` and are never reused, also across processes.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import operator
import os
import re
import sqlite3
import tempfile
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from perceptlab import __version__
from perceptlab.data.images import SIZE, encode_png, read_png
from perceptlab.errors import PerceptLabError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
DB_NAME = "library.sqlite"
MANIFEST_NAME = "manifest.csv"
IMAGES_DIR = "images"
MODES = ("uncertainty", "controversial", "mnist", "imported", "manipulation")
STATUSES = ("new", "accepted", "rejected")
MANIFEST_COLUMNS = (
    "stimulus_id", "file", "mode", "class_a", "class_b", "classifier", "classifier2", "gamma", "steps",
    "resample", "seed", "p_a", "p_b", "judge", "passed", "status", "tags", "note", "created", "reason",
)  # fmt: skip
N_CLASSES = 10

_TMP_PREFIX = ".tmp-"
_ID_RE = re.compile(r"^s\d{6,}$")
_TMP_RE = re.compile(r"^\.tmp-s\d{6,}\.png$")
_MANIFEST_TMP = ".manifest.csv.tmp"
_INT64 = (-(2**63), 2**63 - 1)
_CHUNK = 500  # ids per SQL "IN (...)" query

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS stimuli (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        created TEXT NOT NULL,
        mode TEXT NOT NULL,
        class_a INTEGER, class_b INTEGER,
        classifier TEXT, classifier2 TEXT,
        gamma REAL, steps INTEGER, resample INTEGER, seed INTEGER,
        settings TEXT NOT NULL, weight_hashes TEXT NOT NULL, probs TEXT NOT NULL,
        p_a REAL, p_b REAL, judge REAL,
        passed INTEGER, reason TEXT NOT NULL,
        status TEXT NOT NULL, tags TEXT NOT NULL, note TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS stimuli_status ON stimuli (status)",
)


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


def _format_id(seq: int) -> str:
    return f"s{seq:06d}"


def _id_list(ids: str | Iterable[str]) -> list[str]:
    if isinstance(ids, str):
        return [ids]
    return list(dict.fromkeys(ids))


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


def _replace_text(path: Path, tmp: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (``tmp`` then ``os.replace``)."""
    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
    os.replace(tmp, path)


# --------------------------------------------------------------------------- folder checks


def check_writable(folder: Path, what: str = "folder") -> None:
    """Raise a PerceptLabError naming ``folder`` unless files can be created in it."""
    ok = os.access(folder, os.W_OK | os.X_OK)
    if ok:
        try:
            fd, probe = tempfile.mkstemp(prefix=".perceptlab-write-test-", dir=folder)
            os.close(fd)
            os.unlink(probe)
        except OSError:
            ok = False
    if not ok:
        raise PerceptLabError(
            f"the {what} {folder} is read-only",
            "make it writable (check its permissions and that the drive is not mounted read-only), "
            "or copy it to a folder you can write to and open the copy",
        )


def _not_a_library(path: Path) -> PerceptLabError:
    return PerceptLabError(
        f"{path} is not a PerceptLab library (no {DB_NAME})",
        f"create one with `perceptlab library create {path}` (or New library in the app), "
        f"or pick the folder that contains {DB_NAME}",
    )


def _is_library(path: Path) -> bool:
    return (path / DB_NAME).is_file()


def _is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


# --------------------------------------------------------------------------- the library


class StimulusLibrary:
    """A stimulus library folder. Use ``create``, ``open`` or ``open_or_create``; close when done.

    Thread-safe within one process (one lock around the connection); several processes may open the
    same library, their writes are serialised by SQLite's write lock.
    """

    def __init__(self, path: Path, conn: sqlite3.Connection):
        """Internal: wrap an open connection. Use the class methods instead."""
        self.path = path
        self._conn: sqlite3.Connection | None = conn
        self._lock = threading.RLock()

    # ---- opening

    @classmethod
    def create(cls, path: str | os.PathLike[str]) -> StimulusLibrary:
        """Create a new library in ``path`` (a new or empty folder)."""
        path = Path(path).expanduser()
        if path.exists() and not path.is_dir():
            raise PerceptLabError(f"{path} is a file, not a folder", "pick a new or empty folder for the library")
        if _is_library(path):
            raise PerceptLabError(f"{path} is already a PerceptLab library", "open it instead of creating it")
        if path.exists() and not _is_empty_dir(path):
            raise PerceptLabError(f"{path} is not empty", "pick a new or empty folder for the library")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PerceptLabError(
                f"cannot create the folder {path}: {exc.strerror or exc}", "pick a folder you can write to"
            ) from exc
        check_writable(path)
        (path / IMAGES_DIR).mkdir(exist_ok=True)
        lib = cls(path, _connect(path))
        try:
            lib._init_schema()
            lib._write_manifest()
        except BaseException:
            lib.close()
            raise
        return lib

    def _init_schema(self) -> None:
        with self._transaction() as conn:
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.executemany(
                "INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)",
                [
                    ("schema_version", str(SCHEMA_VERSION)),
                    ("created", _now()),
                    ("created_by", f"perceptlab {__version__}"),
                    ("next_seq", "1"),
                ],
            )

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> StimulusLibrary:
        """Open an existing library; cleans up after an interrupted write (see module docstring)."""
        path = Path(path).expanduser()
        if not path.exists():
            raise PerceptLabError(
                f"{path} does not exist",
                f"create a library with `perceptlab library create {path}`, or pick an existing library folder",
            )
        if not path.is_dir():
            raise PerceptLabError(f"{path} is a file, not a library folder", f"pick the folder that contains {DB_NAME}")
        if not _is_library(path):
            raise _not_a_library(path)
        check_writable(path, "library folder")
        images = path / IMAGES_DIR
        if images.exists():
            check_writable(images, "images folder")
        else:
            images.mkdir()
        conn = _connect(path)
        lib = cls(path, conn)
        try:
            lib._check_schema()
            lib._recover()
        except BaseException:
            lib.close()
            raise
        return lib

    @classmethod
    def open_or_create(cls, path: str | os.PathLike[str]) -> StimulusLibrary:
        """Open the library in ``path``, or create one if the folder does not exist or is empty."""
        path = Path(path).expanduser()
        if not path.exists() or _is_empty_dir(path):
            return cls.create(path)
        if path.is_dir() and not _is_library(path):
            raise PerceptLabError(
                f"{path} is not empty and is not a PerceptLab library (no {DB_NAME})",
                f"pick an empty folder for a new library, or the folder that contains {DB_NAME}",
            )
        return cls.open(path)

    def _check_schema(self) -> None:
        """Refuse newer schemas; finish a ``create`` that was interrupted before its first commit."""
        try:
            if self._db().execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] == 0:
                self._init_schema()
            row = self._db().execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise PerceptLabError(
                f"{self.path / DB_NAME} is not a readable PerceptLab library database ({exc})",
                "restore the folder from a backup, or pick another library",
            ) from exc
        if row is None:
            raise PerceptLabError(f"{self.path / DB_NAME} has no schema version", "restore it from a backup")
        version = int(row[0])
        if version > SCHEMA_VERSION:
            raise PerceptLabError(
                f"{self.path} was written by a newer PerceptLab (library schema {version}; "
                f"this version {__version__} reads up to schema {SCHEMA_VERSION})",
                "update PerceptLab to open it",
            )

    def _recover(self) -> None:
        """Delete temporary and orphan image files; rewrite manifest.csv if it is stale."""
        images = self.path / IMAGES_DIR
        with self._transaction() as conn:
            known = {r[0] for r in conn.execute("SELECT id FROM stimuli")}
            for entry in os.scandir(images):
                name = entry.name
                stem = name[:-4] if name.endswith(".png") else ""
                if _TMP_RE.match(name) or (_ID_RE.match(stem) and stem not in known):
                    os.unlink(entry.path)
                    log.warning("removed %s (left by an interrupted write)", entry.path)
            (self.path / _MANIFEST_TMP).unlink(missing_ok=True)
            text = self._manifest_text(conn)
            manifest = self.path / MANIFEST_NAME
            try:
                current = manifest.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                current = None
            if current != text:
                _replace_text(manifest, self.path / _MANIFEST_TMP, text)

    # ---- connection plumbing

    def close(self) -> None:
        """Close the database connection (idempotent)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> StimulusLibrary:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else f"{len(self)} stimuli"
        return f"StimulusLibrary({str(self.path)!r}, {state})"

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise PerceptLabError(f"the library {self.path} is closed", "open it again")
        return self._conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (holds SQLite's write lock and this object's lock)."""
        with self._lock:
            conn = self._db()
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise PerceptLabError(
                    f"the library {self.path} is busy ({exc})",
                    "another program is writing to it; try again when it has finished",
                ) from exc
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    # ---- reading

    @property
    def manifest_path(self) -> Path:
        """Path of manifest.csv."""
        return self.path / MANIFEST_NAME

    @property
    def images_dir(self) -> Path:
        """Folder holding the PNGs."""
        return self.path / IMAGES_DIR

    def __len__(self) -> int:
        with self._lock:
            return self._db().execute("SELECT COUNT(*) FROM stimuli").fetchone()[0]

    def __contains__(self, stimulus_id: object) -> bool:
        with self._lock:
            row = self._db().execute("SELECT 1 FROM stimuli WHERE id = ?", (stimulus_id,)).fetchone()
        return row is not None

    def get(self, stimulus_id: str) -> Stimulus:
        """The record of one stimulus."""
        with self._lock:
            row = self._db().execute("SELECT * FROM stimuli WHERE id = ?", (stimulus_id,)).fetchone()
        if row is None:
            raise self._unknown([stimulus_id])
        return _row_to_stimulus(row)

    def image_path(self, stimulus_id: str) -> Path:
        """Path of the PNG of one stimulus."""
        if stimulus_id not in self:
            raise self._unknown([stimulus_id])
        return self.images_dir / f"{stimulus_id}.png"

    def image(self, stimulus_id: str) -> np.ndarray:
        """The (28, 28) uint8 image of one stimulus."""
        path = self.image_path(stimulus_id)
        if not path.exists():
            raise PerceptLabError(
                f"the image {path} of stimulus {stimulus_id} is missing",
                "restore it from a backup, or delete the stimulus",
            )
        return read_png(path)

    def _query(
        self, columns: str, status: str | None, mode: str | None, pair: tuple[int, int] | None
    ) -> list[sqlite3.Row]:
        where, args = [], []
        if status is not None:
            where.append("status = ?")
            args.append(_check_status(status))
        if mode is not None:
            if mode not in MODES:
                raise PerceptLabError(f"unknown mode {mode!r}", f"use one of: {', '.join(MODES)}")
            where.append("mode = ?")
            args.append(mode)
        if pair is not None:
            where.append("class_a IS ? AND class_b IS ?")
            args.extend(_opt_int(c, "pair", "filter", 0, N_CLASSES - 1) for c in pair)
        sql = f"SELECT {columns} FROM stimuli"
        if where:
            sql += " WHERE " + " AND ".join(where)
        with self._lock:
            return self._db().execute(sql + " ORDER BY seq", args).fetchall()

    def ids(
        self,
        status: str | None = None,
        mode: str | None = None,
        pair: tuple[int, int] | None = None,
        tag: str | None = None,
    ) -> list[str]:
        """Ids in insertion order, optionally filtered (``pair`` = (class_a, class_b), in that order)."""
        rows = self._query("id, tags", status, mode, pair)
        return [r["id"] for r in rows if tag is None or tag in json.loads(r["tags"])]

    def records(
        self,
        status: str | None = None,
        mode: str | None = None,
        pair: tuple[int, int] | None = None,
        tag: str | None = None,
    ) -> list[Stimulus]:
        """Records in insertion order, with the same filters as ``ids``."""
        recs = [_row_to_stimulus(r) for r in self._query("*", status, mode, pair)]
        return [r for r in recs if tag is None or tag in r.tags]

    def summary(self) -> dict[str, Any]:
        """Counts: total, by status, by mode and by pair ("a-b", "-" for none)."""
        rows = self._query("mode, status, class_a, class_b", None, None, None)
        pair = Counter(
            f"{'' if r['class_a'] is None else r['class_a']}-{'' if r['class_b'] is None else r['class_b']}"
            for r in rows
        )
        return {
            "total": len(rows),
            "by_status": {s: sum(r["status"] == s for r in rows) for s in STATUSES},
            "by_mode": dict(sorted(Counter(r["mode"] for r in rows).items())),
            "by_pair": dict(sorted(pair.items())),
        }

    def to_dataframe(self):  # -> pandas.DataFrame (pandas imported on use)
        """The manifest as a DataFrame (nullable integer and boolean columns)."""
        import pandas as pd  # noqa: PLC0415 - keep `import perceptlab.data.library` light

        df = pd.DataFrame([manifest_values(r) for r in self.records()], columns=list(MANIFEST_COLUMNS))
        for col in ("class_a", "class_b", "steps", "resample", "seed"):
            df[col] = df[col].astype("Int64")
        for col in ("gamma", "p_a", "p_b", "judge"):
            df[col] = df[col].astype("float64")
        df["passed"] = df["passed"].astype("boolean")
        return df

    # ---- writing

    def add(self, records: Iterable[Stimulus], images: np.ndarray) -> list[str]:
        """Store stimuli with their (N, 28, 28) uint8 images in one transaction; returns the new ids.

        Ids and, where empty, ``created`` are assigned here; the ``id`` of the given records is ignored
        and the records themselves are not modified.
        """
        records = list(records)
        images = np.asarray(images)
        if images.ndim != 3 or images.shape[1:] != (SIZE, SIZE):
            raise PerceptLabError(
                f"images have shape {images.shape}, expected (N, {SIZE}, {SIZE})",
                "pass one 28x28 grayscale image per record",
            )
        if images.dtype != np.uint8:
            raise PerceptLabError(
                f"images have dtype {images.dtype}, expected uint8",
                "convert model outputs in [-1, 1] with perceptlab.data.images.float_to_uint8",
            )
        if len(records) != len(images):
            raise PerceptLabError(f"{len(records)} records but {len(images)} images", "pass one image per record")
        if not records:
            return []
        clean = [_normalized(r, f"record {i}") for i, r in enumerate(records)]
        pngs = [encode_png(img) for img in images]
        try:
            with self._transaction() as conn:
                first = int(conn.execute("SELECT value FROM meta WHERE key = 'next_seq'").fetchone()[0])
                rows = []
                for k, (rec, png) in enumerate(zip(clean, pngs, strict=True)):
                    rec.id = _format_id(first + k)
                    self._write_image(rec.id, png)
                    rows.append((first + k, *_stimulus_to_row(rec)))
                _fsync_dir(self.images_dir)
                conn.executemany(f"INSERT INTO stimuli (seq, {', '.join(_COLUMNS)}) VALUES ({_PLACEHOLDERS})", rows)
                conn.execute("UPDATE meta SET value = ? WHERE key = 'next_seq'", (str(first + len(clean)),))
        except BaseException as exc:  # nothing committed: remove what was written
            for rec in clean:
                if rec.id:
                    (self.images_dir / f"{_TMP_PREFIX}{rec.id}.png").unlink(missing_ok=True)
                    (self.images_dir / f"{rec.id}.png").unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise PerceptLabError(
                    f"cannot write images into {self.images_dir}: {exc.strerror or exc}",
                    "check free disk space and permissions; nothing was added",
                ) from exc
            raise
        self._write_manifest()
        return [rec.id for rec in clean]

    def _write_image(self, stimulus_id: str, png: bytes) -> None:
        """Write ``images/.tmp-<id>.png`` durably, then rename it to ``images/<id>.png``."""
        tmp = self.images_dir / f"{_TMP_PREFIX}{stimulus_id}.png"
        with open(tmp, "wb") as fh:
            fh.write(png)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.images_dir / f"{stimulus_id}.png")

    def set_status(self, ids: str | Iterable[str], status: str) -> dict[str, str]:
        """Set the curation status; returns {id: previous status}."""
        return self._set_field("status", dict.fromkeys(_id_list(ids), _check_status(status)))

    def add_tags(self, ids: str | Iterable[str], tags: str | Iterable[str]) -> dict[str, list[str]]:
        """Add tags to stimuli; returns {id: previous tags}."""
        new = clean_tags(tags)
        ids = _id_list(ids)
        with self._transaction() as conn:
            old = self._fetch(conn, ids, "tags")
            self._update(conn, "tags", {i: old[i] + [t for t in new if t not in old[i]] for i in ids})
        self._write_manifest()
        return old

    def remove_tags(self, ids: str | Iterable[str], tags: str | Iterable[str]) -> dict[str, list[str]]:
        """Remove tags from stimuli (absent tags are ignored); returns {id: previous tags}."""
        gone = set(clean_tags(tags))
        ids = _id_list(ids)
        with self._transaction() as conn:
            old = self._fetch(conn, ids, "tags")
            self._update(conn, "tags", {i: [t for t in old[i] if t not in gone] for i in ids})
        self._write_manifest()
        return old

    def set_tags(self, stimulus_id: str, tags: str | Iterable[str]) -> list[str]:
        """Replace the tags of one stimulus; returns its previous tags."""
        return self._set_field("tags", {stimulus_id: clean_tags(tags)})[stimulus_id]

    def set_note(self, stimulus_id: str, note: str) -> str:
        """Replace the note of one stimulus; returns its previous note."""
        if not isinstance(note, str):
            raise PerceptLabError(f"the note must be text, got {type(note).__name__}")
        return self._set_field("note", {stimulus_id: note})[stimulus_id]

    def revert(self, field_name: str, previous: Mapping[str, Any]) -> dict[str, Any]:
        """Undo helper: set ``status``, ``tags`` or ``note`` per id from a mapping returned by a
        curation call, in one transaction; returns the values it replaced (for redo)."""
        if field_name == "status":
            values = {i: _check_status(v) for i, v in previous.items()}
        elif field_name == "tags":
            values = {i: clean_tags(v) for i, v in previous.items()}
        elif field_name == "note":
            values = {i: str(v) for i, v in previous.items()}
        else:
            raise PerceptLabError(f"cannot revert {field_name!r}", "revert one of: status, tags, note")
        return self._set_field(field_name, values)

    def delete(self, ids: str | Iterable[str]) -> int:
        """Delete stimuli and their images; returns how many were deleted."""
        ids = _id_list(ids)
        with self._transaction() as conn:
            self._fetch(conn, ids, "id")
            conn.executemany("DELETE FROM stimuli WHERE id = ?", [(i,) for i in ids])
        for i in ids:  # after the commit: a crash here leaves orphans, removed on the next open
            (self.images_dir / f"{i}.png").unlink(missing_ok=True)
        self._write_manifest()
        return len(ids)

    def _set_field(self, column: str, values: Mapping[str, Any]) -> dict[str, Any]:
        with self._transaction() as conn:
            old = self._fetch(conn, list(values), column)
            self._update(conn, column, values)
        self._write_manifest()
        return old

    def _fetch(self, conn: sqlite3.Connection, ids: list[str], column: str) -> dict[str, Any]:
        """{id: value of column} for every id, in the order given; unknown ids raise."""
        found: dict[str, Any] = {}
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            marks = ", ".join("?" * len(chunk))
            for row in conn.execute(f"SELECT id, {column} FROM stimuli WHERE id IN ({marks})", chunk):
                found[row[0]] = json.loads(row[1]) if column == "tags" else row[1]
        missing = [i for i in ids if i not in found]
        if missing:
            raise self._unknown(missing)
        return {i: found[i] for i in ids}

    @staticmethod
    def _update(conn: sqlite3.Connection, column: str, values: Mapping[str, Any]) -> None:
        encode = json.dumps if column == "tags" else (lambda v: v)
        conn.executemany(f"UPDATE stimuli SET {column} = ? WHERE id = ?", [(encode(v), i) for i, v in values.items()])

    def _unknown(self, ids: list[str]) -> PerceptLabError:
        shown = ", ".join(repr(i) for i in ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
        return PerceptLabError(
            f"no stimulus {shown} in the library {self.path}", "check the id (ids look like s000001)"
        )

    # ---- manifest

    def _manifest_text(self, conn: sqlite3.Connection) -> str:
        cols = [c for c in _COLUMNS if c not in _JSON_COLUMNS or c == "tags"]
        rows = conn.execute(f"SELECT {', '.join(cols)} FROM stimuli ORDER BY seq").fetchall()
        values = (manifest_values(_row_to_stimulus(r, cols)) for r in rows)
        return csv_text(MANIFEST_COLUMNS, ([v[c] for c in MANIFEST_COLUMNS] for v in values))

    def _write_manifest(self) -> None:
        """Rewrite manifest.csv from the table, under the write lock so writers never interleave."""
        with self._transaction() as conn:
            _replace_text(self.manifest_path, self.path / _MANIFEST_TMP, self._manifest_text(conn))


# --------------------------------------------------------------------------- row conversion

_COLUMNS = tuple(f.name for f in fields(Stimulus))
_PLACEHOLDERS = ", ".join("?" * (len(_COLUMNS) + 1))
_JSON_COLUMNS = ("settings", "weight_hashes", "probs", "tags")


def _stimulus_to_row(rec: Stimulus) -> tuple[Any, ...]:
    values = []
    for name in _COLUMNS:
        value = getattr(rec, name)
        if name in _JSON_COLUMNS:
            value = json.dumps(value)
        elif name == "passed" and value is not None:
            value = int(value)
        values.append(value)
    return tuple(values)


def _row_to_stimulus(row: sqlite3.Row, columns: Iterable[str] = _COLUMNS) -> Stimulus:
    data = {name: row[name] for name in columns}
    for name in _JSON_COLUMNS:
        if name in data:
            data[name] = json.loads(data[name])
    if data["passed"] is not None:
        data["passed"] = bool(data["passed"])
    return Stimulus(**data)


def _connect(path: Path) -> sqlite3.Connection:
    db = path / DB_NAME
    conn = None
    try:
        conn = sqlite3.connect(db, timeout=30.0, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        conn.execute("PRAGMA synchronous = FULL")
    except sqlite3.DatabaseError as exc:
        if conn is not None:
            conn.close()
        raise PerceptLabError(
            f"cannot open {db}: {exc}", "restore the library from a backup, or pick another folder"
        ) from exc
    if mode.lower() != "wal":
        conn.close()
        raise PerceptLabError(
            f"{db} cannot use write-ahead logging (journal mode {mode!r})",
            "keep libraries on a local disk, not a network share",
        )
    return conn


def _fsync_dir(folder: Path) -> None:
    """Make renames in ``folder`` durable (no-op where directories cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
