"""The on-disk layer of the stimulus library: folder checks, atomic text files, the SQLite connection,
its schema and the conversion between ``Stimulus`` records and table rows.

:class:`perceptlab.data.library.StimulusLibrary` builds on these; ``check_writable`` is re-exported there.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from collections.abc import Iterable
from dataclasses import fields
from pathlib import Path
from typing import Any

from perceptlab.data.library_records import Stimulus
from perceptlab.errors import PerceptLabError

DB_NAME = "library.sqlite"

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


def check_not_truncated(path: Path) -> None:
    """Refuse a 0-byte ``library.sqlite`` (no WAL) beside images or a manifest: the database was lost,
    and opening it would show an empty library as if the stimuli never existed."""
    db = path / DB_NAME
    wal = path / f"{DB_NAME}-wal"
    if db.stat().st_size or (wal.exists() and wal.stat().st_size):
        return
    pngs = sum(1 for _ in (path / "images").glob("*.png")) if (path / "images").is_dir() else 0
    if pngs or (path / "manifest.csv").exists():
        raise PerceptLabError(
            f"{db} is empty (0 bytes) although the folder holds {pngs} images"
            + (" and a manifest.csv" if (path / "manifest.csv").exists() else "")
            + ": the library database was lost or truncated",
            "restore library.sqlite from a backup; the folder was left untouched")


def missing_images(images: Path, ids: list[str]) -> list[str]:
    """Ids whose ``images/<id>.png`` is missing."""
    return [i for i in ids if not (images / f"{i}.png").is_file()]


def _is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


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


def fsync_dir(folder: Path) -> None:
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
