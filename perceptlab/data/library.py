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

The records (``Stimulus``, validation, manifest formatting) live in :mod:`library_records`, the on-disk
plumbing (folder checks, SQLite connection, schema, rows) in :mod:`library_storage`; both are imported
from here as before.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from perceptlab import __version__
from perceptlab.data.images import SIZE, encode_png, read_png
from perceptlab.data.library_records import (  # noqa: F401  (re-exported: the public names of the library)
    IMAGES_DIR,
    MANIFEST_COLUMNS,
    MODES,
    N_CLASSES,
    STATUSES,
    Stimulus,
    _check_status,
    _normalized,
    _now,
    _opt_int,
    clean_tags,
    csv_text,
    format_cell,
    manifest_values,
)
from perceptlab.data.library_storage import (  # noqa: F401  (DB_NAME, check_writable: re-exported)
    _COLUMNS,
    _JSON_COLUMNS,
    _PLACEHOLDERS,
    _SCHEMA,
    DB_NAME,
    _connect,
    _is_empty_dir,
    _is_library,
    _not_a_library,
    _replace_text,
    _row_to_stimulus,
    _stimulus_to_row,
    check_not_truncated,
    check_writable,
    fsync_dir,
    missing_images,
)
from perceptlab.errors import PerceptLabError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.csv"

_TMP_PREFIX = ".tmp-"
_ID_RE = re.compile(r"^s\d{6,}$")
_TMP_RE = re.compile(r"^\.tmp-s\d{6,}\.png$")
_MANIFEST_TMP = ".manifest.csv.tmp"
_CHUNK = 500  # ids per SQL "IN (...)" query

def _format_id(seq: int) -> str:
    return f"s{seq:06d}"


def _id_list(ids: str | Iterable[str]) -> list[str]:
    if isinstance(ids, str):
        return [ids]
    return list(dict.fromkeys(ids))


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
        check_not_truncated(path)
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
            "missing_images": missing_images(self.images_dir, self.ids()),
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
                fsync_dir(self.images_dir)
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

    def merge_settings(self, values: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
        """Set keys of the ``settings`` of stimuli ({id: {key: JSON value}}), in one transaction;
        other keys are kept. Returns {id: previous settings}."""
        ids = _id_list(list(values))
        with self._transaction() as conn:
            old = {i: json.loads(v) for i, v in self._fetch(conn, ids, "settings").items()}
            new = {i: json.dumps({**old[i], **dict(values[i])}) for i in ids}
            self._update(conn, "settings", new)
        return old

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
