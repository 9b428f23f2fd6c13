"""Reading trial files into raw all-string frames: delimiter sniffing, JSON lines/arrays/objects.

The first stage of :func:`perceptlab.data.trials.load_trials`. :func:`read_chunks` yields the file as
one or more :class:`_Raw` blocks (a delimited file of any size is parsed in blocks of about
:data:`BLOCK_CHARS` characters, so memory stays bounded by the canonical table, not the text).
Rows that cannot be read at all (wrong field count, broken JSON, a repeated header) are recorded
with their line number here; the columns are validated later.

A header row repeated inside the data (two exports concatenated) is set aside; when it names the
same columns *in another order*, the rows after it are read in that order (matched by name), and
the report says so.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from perceptlab.data.trial_sources import decode, read_source
from perceptlab.errors import PerceptLabError

DELIMITERS = (",", "\t", ";", "|")
BLOCK_CHARS = 8_000_000
"""Characters of a delimited file parsed at a time."""
_JSON_CONTAINER_KEYS = ("trials", "data", "values", "results", "rows")


@dataclass
class _Raw:
    frame: pd.DataFrame  # every column str, missing as ""
    lines: np.ndarray  # source line (or record) number of each frame row
    rejected: list[tuple[int, str, str]]  # rows unusable before any column is read
    encoding: str
    delimiter: str | None
    notes: list[str]
    file_format: str = "delimited text"
    columns: list[str] = field(default_factory=list)

    @property
    def rows_total(self) -> int:
        return len(self.frame) + len(self.rejected)


def _sniff(header: str) -> str:
    import re  # noqa: PLC0415

    bare = re.sub(r'"(?:[^"]|"")*"', "", header)
    counts = {d: bare.count(d) for d in DELIMITERS}
    return max(DELIMITERS, key=lambda d: counts[d])


def _cell_text(v) -> str:
    if isinstance(v, (list, dict)):
        return json.dumps(v, ensure_ascii=False)
    return str(v)


def _as_str_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Every column as str, missing values as '', whole floats without '.0' (3.0 -> '3'), lists and
    objects as JSON text."""
    out = {}
    for name in frame.columns:
        col = frame[name]
        if col.dtype == object:
            missing = col.map(lambda v: v is None or (isinstance(v, float) and v != v)).to_numpy(bool)
            text = np.asarray([_cell_text(v) for v in col.to_numpy(dtype=object)], dtype=object)
            whole = np.asarray([isinstance(v, float) and v == v and v == int(v) and abs(v) < 2**53
                                for v in col.to_numpy(dtype=object)], dtype=bool)
            if whole.any():
                text[whole] = [str(int(v)) for v in col.to_numpy(dtype=object)[whole]]
        else:
            text = col.astype(str).to_numpy(dtype=object)
            missing = col.isna().to_numpy()
            if pd.api.types.is_float_dtype(col.dtype):
                v = col.to_numpy(dtype=float)
                with np.errstate(invalid="ignore"):
                    whole = np.isfinite(v) & (v == np.round(v)) & (np.abs(v) < 2**53)
                text[whole] = v[whole].astype(np.int64).astype(str)
        text[missing] = ""
        out[str(name)] = text
    return pd.DataFrame(out, index=frame.index, dtype=str)


def _field_reason(n: int, expected: int, sep: str) -> str:
    hint = ""
    if n == 1:
        hint = f" (the row does not use the header's delimiter {sep!r}?)"
    elif n > expected:
        hint = f" (an unquoted {sep!r} inside a value?)"
    return f"{n} field{'s' if n != 1 else ''} where the header has {expected}{hint}"


class _HeaderState:
    """The header, and the column order of the rows being read (changed by a reordered header)."""

    def __init__(self, header: list[str]):
        self.header = header
        self.names = set(header)
        self.order = list(header)

    def apply(self, frame: pd.DataFrame, lines: np.ndarray, rejected: list, notes: list) -> pd.DataFrame:
        """Set aside repeated header rows; read rows after a reordered header in its order."""
        if frame.empty:
            return frame
        first = frame[self.header[0]].to_numpy(dtype=object)
        codes, uniques = pd.factorize(first)
        hit = pd.Series(uniques, dtype=object).str.strip().isin(self.names).to_numpy()
        like = hit[codes] if len(codes) else np.zeros(0, dtype=bool)
        for c in self.header[1:]:  # only rows whose first value is a column name are checked further
            rows = np.flatnonzero(like)
            if not len(rows):
                break
            like[rows] = frame[c].iloc[rows].str.strip().isin(self.names).to_numpy()
        heads = np.flatnonzero(like)
        values = frame.to_numpy(dtype=object) if (len(heads) or self.order != self.header) else None
        segments = [0, *heads.tolist(), len(frame)]
        drop = np.zeros(len(frame), dtype=bool)
        for k, pos in enumerate(segments[:-1]):
            if k > 0:
                row = [str(v).strip() for v in values[pos]]
                if sorted(row) == sorted(self.header):
                    drop[pos] = True
                    if row == self.header:
                        rejected.append((int(lines[pos]), "repeated header row",
                                         "repeated header row inside the data"))
                    else:
                        rejected.append((int(lines[pos]), "repeated header row",
                                         "repeated header row with the columns in another order "
                                         f"({', '.join(row)}): the rows after it are read in that order"))
                        notes.append(f"line {int(lines[pos])}: a repeated header names the columns in "
                                     "another order; the rows after it were matched by name")
                    self.order = row if row != self.header else list(self.header)
                    pos += 1
            end = segments[k + 1]
            if self.order != self.header and end > pos:
                where = [self.order.index(name) for name in self.header]
                values[pos:end] = values[pos:end][:, where]
        if values is not None:
            frame = pd.DataFrame(values, columns=self.header, index=frame.index, dtype=str)
        return frame[~drop] if drop.any() else frame


def _parse_block(block: str, first_line: int, state: _HeaderState, sep: str, source: str,
                 notes: list) -> tuple[pd.DataFrame, np.ndarray, list]:
    """Frame, line numbers and rejected rows of a block of whole records."""
    header = state.header
    rejected: list[tuple[int, str, str]] = []
    quoted = '"' in block
    lines: list[str] | None = None
    if not quoted:  # fields per line counted on the bytes: no Python loop over lines
        b = np.frombuffer(block.encode("utf-8"), dtype=np.uint8)
        nl = np.flatnonzero(b == 10)
        starts = np.concatenate([[0], nl + 1])
        ends = np.concatenate([nl, [len(b)]])
        per_sep = np.concatenate([[0], np.cumsum(b == ord(sep), dtype=np.int32)])
        content = np.concatenate([[0], np.cumsum(b > 32, dtype=np.int32)])
        del b
        n_fields = per_sep[ends] - per_sep[starts] + 1
        blank = content[ends] == content[starts]
        good = ~blank & (n_fields == len(header))
        keep = np.flatnonzero(good).tolist()
        for i in np.flatnonzero(~blank & ~good):
            rejected.append((first_line + int(i), "wrong number of fields",
                             _field_reason(int(n_fields[i]), len(header), sep)))
        whole = bool(good[:-1].all()) and (good[-1] or blank[-1])
    else:
        lines = block.split("\n")
        if any(ln.count('"') % 2 for ln in lines):
            return _parse_block_slow(block, first_line, state, sep, source, notes)
        keep = []
        for i, ln in enumerate(lines):
            if not ln.strip():
                continue
            n = len(next(csv.reader([ln], delimiter=sep))) if '"' in ln else ln.count(sep) + 1
            if n == len(header):
                keep.append(i)
            else:
                rejected.append((first_line + i, "wrong number of fields", _field_reason(n, len(header), sep)))
        whole = False
    line_nos = np.asarray(keep, dtype=np.int64) + first_line
    if not keep:
        return pd.DataFrame(columns=header, dtype=str), line_nos, rejected
    if whole:
        body = block
    else:
        lines = lines if lines is not None else block.split("\n")
        body = "\n".join(lines[i] for i in keep)
        del lines
    frame = pd.read_csv(io.StringIO(body), sep=sep, header=None, names=header, dtype=str,
                        keep_default_na=False, na_filter=False, skip_blank_lines=False, engine="c",
                        index_col=False)
    if len(frame) != len(keep):
        return _parse_block_slow(block, first_line, state, sep, source, notes)
    frame = state.apply(frame, line_nos, rejected, notes)
    return frame, line_nos[frame.index.to_numpy()], rejected


def _parse_block_slow(block: str, first_line: int, state: _HeaderState, sep: str, source: str,
                      notes: list) -> tuple[pd.DataFrame, np.ndarray, list]:
    """Record-by-record parse for blocks with quoted line breaks or stray quotes."""
    header = state.header
    reader = csv.reader(io.StringIO(block), delimiter=sep, strict=True)
    rows: list[list[str]] = []
    row_lines: list[int] = []
    rejected: list[tuple[int, str, str]] = []
    start = first_line
    try:
        for record in reader:
            if record and any(v.strip() for v in record) or len(record) > 1:
                if len(record) == len(header):
                    rows.append(record)
                    row_lines.append(start)
                else:
                    rejected.append((start, "wrong number of fields",
                                     _field_reason(len(record), len(header), sep)))
            start = first_line + reader.line_num
    except csv.Error as exc:
        raise PerceptLabError(
            f"{source}: malformed quoting in the record starting on line {start}: {exc}",
            fix="close the quote, or double quotes inside quoted values (\"\")",
        ) from None
    frame = pd.DataFrame(rows, columns=header, dtype=str)
    line_nos = np.asarray(row_lines, dtype=np.int64)
    frame = state.apply(frame, line_nos, rejected, notes)
    return frame, line_nos[frame.index.to_numpy()], rejected


def _read_delimited(text: str, source: str, sep: str | None, encoding: str,
                    notes: list[str], block_chars: int) -> Iterator[_Raw]:
    pos, line_no, header_line = 0, 1, None
    while pos <= len(text):  # leading blank and '#' comment lines, then the header
        nl = text.find("\n", pos)
        end = len(text) if nl < 0 else nl
        line = text[pos:end]
        pos = end + 1
        if line.strip():
            if not line.lstrip().startswith("#"):
                header_line = line
                break
            notes.append(f"comment: {line.strip().lstrip('#').strip()}")
        line_no += 1
        if nl < 0:
            break
    if header_line is None:
        raise PerceptLabError(
            f"{source}: has no header row (only blank or comment lines)",
            fix="the first line must name the columns, e.g. participant,stimulus,response",
        )
    sep = sep or _sniff(header_line)
    header = [h.strip().lstrip("\ufeff") for h in next(csv.reader([header_line], delimiter=sep))]
    if len(header) == 1:
        raise PerceptLabError(
            f"{source}: the header has a single column '{header[0]}': its delimiter is not one of "
            "comma, tab, ';' or '|'",
            fix="save the table as CSV or TSV, or pass sep= with the delimiter it uses",
        )
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes or "" in header:
        what = f"repeats the column name(s) {dupes}" if dupes else "has an unnamed column"
        raise PerceptLabError(f"{source}: the header (line {line_no}) {what}",
                              fix="give every column a distinct name")
    if not text[pos:].strip():
        raise PerceptLabError(
            f"{source}: has a header but no data rows",
            fix="export the trials again; the file holds only the column names",
        )
    state = _HeaderState(header)
    first_line = line_no + 1
    while pos < len(text):
        end = min(len(text), pos + block_chars)
        if end < len(text):
            nl = text.find("\n", end)
            end = len(text) if nl < 0 else nl + 1
            while text.count('"', pos, end) % 2 and end < len(text):  # a quoted line break
                nl = text.find("\n", end)
                end = len(text) if nl < 0 else nl + 1
        block = text[pos:end]
        frame, lines, rejected = _parse_block(block, first_line, state, sep, source, notes)
        yield _Raw(frame.reset_index(drop=True), lines, rejected, encoding, sep, notes,
                   columns=header)
        first_line += block.count("\n")
        pos = end


def _read_json_lines(text: str, encoding: str) -> _Raw:
    lines = text.split("\n")
    pos = [i for i, ln in enumerate(lines) if ln.strip()]
    records: list[dict] = []
    keep: list[int] = []
    rejected: list[tuple[int, str, str]] = []
    for p in pos:
        try:
            value = json.loads(lines[p])
        except json.JSONDecodeError as exc:
            rejected.append((p + 1, "not valid JSON", f"not valid JSON: {exc.msg}"))
            continue
        if not isinstance(value, dict):
            rejected.append((p + 1, "not a JSON object", f"a JSON {type(value).__name__}, not an object"))
            continue
        records.append(value)
        keep.append(p + 1)
    frame = _as_str_frame(pd.DataFrame.from_records(records)) if records else pd.DataFrame()
    return _Raw(frame, np.asarray(keep, dtype=np.int64), rejected, encoding, None, [], "JSON lines",
                columns=[str(c) for c in frame.columns])


def _records_raw(value: list, encoding: str, what: str, notes: list[str]) -> _Raw:
    is_obj = np.fromiter((isinstance(v, dict) for v in value), dtype=bool, count=len(value))
    numbers = np.arange(1, len(value) + 1)
    rejected = [(int(n), "not a JSON object", "array element is not an object")
                for n in numbers[~is_obj]]
    objs = [v for v, ok in zip(value, is_obj, strict=True) if ok]
    frame = _as_str_frame(pd.DataFrame.from_records(objs)) if objs else pd.DataFrame()
    return _Raw(frame, numbers[is_obj], rejected, encoding, None,
                [*notes, f"line numbers are record numbers within the {what}"], what,
                columns=[str(c) for c in frame.columns])


def _read_json(text: str, source: str, encoding: str) -> _Raw:
    stripped = text.lstrip()
    if stripped.startswith("{"):
        first = stripped.split("\n", 1)[0]
        try:
            one = json.loads(first)
        except json.JSONDecodeError:
            one = None
        rest = stripped[len(first):].strip()[:1]
        if isinstance(one, dict) and rest in ("{", ""):
            container = any(isinstance(one.get(k), list) for k in _JSON_CONTAINER_KEYS)
            nested = any(isinstance(v, (list, dict)) for v in one.values())
            if not container and (rest == "{" or not nested):
                return _read_json_lines(text, encoding)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        if stripped.startswith("{"):
            return _read_json_lines(text, encoding)
        raise PerceptLabError(
            f"{source}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})",
            fix="export the data again, or save it as CSV",
        ) from None
    notes: list[str] = []
    if isinstance(value, dict):
        key = next((k for k in _JSON_CONTAINER_KEYS if isinstance(value.get(k), list)), None)
        if key is None:
            lists = [k for k, v in value.items() if isinstance(v, list)]
            raise PerceptLabError(
                f"{source}: a JSON object without a list of trials (looked for the keys "
                f"{', '.join(_JSON_CONTAINER_KEYS)}" + (f"; its lists: {', '.join(lists)}" if lists else "")
                + ")", fix="export the trials as a JSON array of objects, JSON lines or CSV")
        notes.append(f"trials from the '{key}' array of a JSON object")
        value = value[key]
    if not isinstance(value, list):
        raise PerceptLabError(f"{source}: a JSON {type(value).__name__}, expected an array of trials")
    return _records_raw(value, encoding, "JSON array", notes)


def read_text(path: Path, encoding: str | None) -> tuple[str, str, list[str]]:
    """The decoded text of a trial file (newlines normalised), its encoding and notes."""
    source = str(path)
    data, notes = read_source(path)
    if not data.strip():
        raise PerceptLabError(
            f"{source}: is empty" + (" (only whitespace)" if data else " (0 bytes)"),
            fix="export the trials again",
        )
    text, enc, more = decode(data, source, encoding)
    del data
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise PerceptLabError(f"{source}: is empty (only whitespace)", fix="export the trials again")
    return text, enc, notes + more


def read_chunks(path: Path, sep: str | None, encoding: str | None,
                block_chars: int = BLOCK_CHARS) -> Iterator[_Raw]:
    """The file as raw blocks (one for JSON); the first block's notes hold the file-level notes."""
    source = str(path)
    text, enc, notes = read_text(path, encoding)
    first = text.lstrip()[:1]
    if first in ("[", "{") and sep is None:
        raw = _read_json(text, source, enc)
        raw.notes = notes + raw.notes
        if raw.frame.empty and not raw.rejected:
            raise PerceptLabError(f"{source}: holds no trials", fix="export the trials again")
        yield raw
        return
    yield from _read_delimited(text, source, sep, enc, notes, block_chars)


def _read_raw(path: Path, sep: str | None, encoding: str | None) -> _Raw:
    """The whole file as one raw frame (small files: previews, the mapping dialog)."""
    parts = list(read_chunks(path, sep, encoding))
    first = parts[0]
    frame = pd.concat([p.frame for p in parts], ignore_index=True) if len(parts) > 1 else first.frame
    return _Raw(frame, np.concatenate([p.lines for p in parts]),
                [r for p in parts for r in p.rejected], first.encoding, first.delimiter,
                first.notes, first.file_format, first.columns)


def read_columns(path: Path) -> list[str]:
    """The column names of a trial file (reads only its first block)."""
    return list(next(iter(read_chunks(path, None, None, block_chars=200_000))).columns)
