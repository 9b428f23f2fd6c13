"""Reading trial files into a raw all-string frame: decoding, delimiter sniffing, JSON lines/arrays.

The first stage of :func:`perceptlab.data.trials.load_trials`: rows that cannot be read at all (wrong
field count, broken JSON) are recorded with their line number here; the columns are validated later.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from perceptlab.errors import PerceptLabError

DELIMITERS = (",", "\t", ";", "|")
_QUOTED = re.compile(r'"(?:[^"]|"")*"')


@dataclass
class _Raw:
    frame: pd.DataFrame  # every column str, missing as ""
    lines: np.ndarray  # source line (or record) number of each frame row
    rejected: list[tuple[int, str, str]]  # rows unusable before any column is read
    encoding: str
    delimiter: str | None
    notes: list[str]
    file_format: str = "delimited text"

    @property
    def rows_total(self) -> int:
        return len(self.frame) + len(self.rejected)


def _decode(data: bytes, source: str, encoding: str | None) -> tuple[str, str]:
    if encoding is not None:
        try:
            return data.decode(encoding), encoding
        except (UnicodeDecodeError, LookupError) as exc:
            raise PerceptLabError(f"{source}: cannot decode as {encoding}: {exc}") from None
    utf16 = data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    codec = "utf-16" if utf16 else "utf-8-sig"
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as exc:
        if utf16:
            raise PerceptLabError(f"{source}: starts with a UTF-16 byte-order mark but is not "
                                  f"valid UTF-16 (byte offset {exc.start})",
                                  fix="re-save the file as UTF-8") from None
        line = data[: exc.start].count(b"\n") + 1
        raise PerceptLabError(
            f"{source}: not UTF-8 text: byte 0x{data[exc.start]:02x} at byte offset {exc.start} "
            f"(line {line}) is not valid UTF-8",
            fix="re-save the file as UTF-8 (spreadsheet programs call it 'CSV UTF-8'), or pass "
            "encoding='latin-1' (CLI: --encoding latin-1) if you know its encoding",
        ) from None
    if not utf16 and not data.startswith(codecs.BOM_UTF8):
        codec = "utf-8"
    return text, codec


def _sniff(header: str) -> str:
    bare = _QUOTED.sub("", header)
    counts = {d: bare.count(d) for d in DELIMITERS}
    return max(DELIMITERS, key=lambda d: counts[d])


def _as_str_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Every column as str, missing values as '' and whole floats without '.0' (3.0 -> '3')."""
    out = {}
    for name in frame.columns:
        col = frame[name]
        text = col.astype(str).to_numpy(dtype=object)
        if pd.api.types.is_float_dtype(col.dtype):
            v = col.to_numpy(dtype=float)
            with np.errstate(invalid="ignore"):
                whole = np.isfinite(v) & (v == np.round(v)) & (np.abs(v) < 2**53)
            text[whole] = v[whole].astype(np.int64).astype(str)
        text[col.isna().to_numpy()] = ""
        out[str(name)] = text
    return pd.DataFrame(out, index=frame.index, dtype=str)


def _line_table(text: str) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Lines of ``text``, its UTF-8 bytes, each line's byte start and end, and which are blank."""
    b = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    nl = np.flatnonzero(b == 10)
    starts = np.concatenate([[0], nl + 1])
    ends = np.concatenate([nl, [len(b)]])
    content = np.concatenate([[0], np.cumsum(b > 32)])
    blank = content[ends] - content[starts] == 0
    return text.split("\n"), b, starts, ends, blank


def _read_delimited(text: str, source: str, sep: str | None, encoding: str) -> _Raw:
    lines, b, starts, ends, blank = _line_table(text)
    notes: list[str] = []
    nonblank = np.flatnonzero(~blank)
    header_pos = None
    for i in nonblank:  # leading '#' comment lines, then the header
        if not lines[i].lstrip().startswith("#"):
            header_pos = int(i)
            break
        notes.append(f"comment: {lines[i].strip().lstrip('#').strip()}")
    if header_pos is None:
        raise PerceptLabError(
            f"{source}: has no header row (only blank or comment lines)",
            fix="the first line must name the columns, e.g. participant,stimulus,response",
        )
    header_line = lines[header_pos]
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
        raise PerceptLabError(f"{source}: the header (line {header_pos + 1}) {what}",
                              fix="give every column a distinct name")
    data_pos = nonblank[nonblank > header_pos]
    if len(data_pos) == 0:
        raise PerceptLabError(
            f"{source}: has a header but no data rows",
            fix="export the trials again; the file holds only the column names",
        )
    # delimiters per line, not counting those inside quotes; a line break inside quotes (a
    # multi-line value or a stray quote) sends the file to the record-by-record parser
    offset = starts[header_pos]
    b = b[offset:]
    is_sep = b == ord(sep)
    if '"' in text:
        inside = (np.cumsum(b == 34) & 1).astype(bool)
        if (inside & (b == 10)).any():
            return _read_delimited_slow(text, source, sep, header, header_pos, encoding, notes)
        is_sep &= ~inside
    per_byte = np.concatenate([[0], np.cumsum(is_sep)])
    n_fields = per_byte[ends[data_pos] - offset] - per_byte[starts[data_pos] - offset] + 1
    bad = n_fields != len(header)
    rejected = [(int(p) + 1, "wrong number of fields", _field_reason(int(k), len(header), sep))
                for p, k in zip(data_pos[bad], n_fields[bad], strict=True)]
    good = data_pos[~bad]
    body = "\n".join([header_line, *np.asarray(lines, dtype=object)[good]])
    frame = pd.read_csv(io.StringIO(body), sep=sep, dtype=str, keep_default_na=False,
                        na_filter=False, skip_blank_lines=False, engine="c")
    if len(frame) != len(good):
        return _read_delimited_slow(text, source, sep, header, header_pos, encoding, notes)
    frame.columns = header
    return _Raw(frame, good + 1, rejected, encoding, sep, notes)


def _field_reason(n: int, expected: int, sep: str) -> str:
    hint = ""
    if n == 1:
        hint = f" (the row does not use the header's delimiter {sep!r}?)"
    elif n > expected:
        hint = f" (an unquoted {sep!r} inside a value?)"
    return f"{n} field{'s' if n != 1 else ''} where the header has {expected}{hint}"


def _read_delimited_slow(text: str, source: str, sep: str, header: list[str], header_pos: int,
                         encoding: str, notes: list[str]) -> _Raw:
    """Record-by-record parse for files with quoted line breaks or stray quotes."""
    body = "\n".join(text.split("\n")[header_pos + 1:])
    reader = csv.reader(io.StringIO(body), delimiter=sep, strict=True)
    rows: list[list[str]] = []
    row_lines: list[int] = []
    rejected: list[tuple[int, str, str]] = []
    start = header_pos + 2
    try:
        for record in reader:
            if record and any(v.strip() for v in record) or len(record) > 1:
                if len(record) == len(header):
                    rows.append(record)
                    row_lines.append(start)
                else:
                    rejected.append((start, "wrong number of fields",
                                     _field_reason(len(record), len(header), sep)))
            start = header_pos + 2 + reader.line_num
    except csv.Error as exc:
        raise PerceptLabError(
            f"{source}: malformed quoting in the record starting on line {start}: {exc}",
            fix="close the quote, or double quotes inside quoted values (\"\")",
        ) from None
    frame = pd.DataFrame(rows, columns=header, dtype=str)
    return _Raw(frame, np.asarray(row_lines, dtype=np.int64), rejected, encoding, sep, notes)


def _read_json_lines(text: str, source: str, encoding: str) -> _Raw:
    lines, _, _, _, blank = _line_table(text)
    pos = np.flatnonzero(~blank)
    try:
        frame = pd.read_json(io.StringIO("\n".join(np.asarray(lines, dtype=object)[pos])),
                             lines=True, dtype=False)
        if len(frame) != len(pos):
            raise ValueError("record count differs from line count")
        return _Raw(_as_str_frame(frame), pos + 1, [], encoding, None, [], "JSON lines")
    except ValueError:
        pass
    records: list[dict] = []
    keep: list[int] = []
    rejected: list[tuple[int, str, str]] = []
    for p in pos:  # slow path: only when some line is not a JSON object
        try:
            value = json.loads(lines[p])
        except json.JSONDecodeError as exc:
            rejected.append((int(p) + 1, "not valid JSON", f"not valid JSON: {exc.msg}"))
            continue
        if not isinstance(value, dict):
            rejected.append((int(p) + 1, "not a JSON object",
                             f"a JSON {type(value).__name__}, not an object"))
            continue
        records.append(value)
        keep.append(int(p) + 1)
    frame = _as_str_frame(pd.DataFrame.from_records(records)) if records else pd.DataFrame()
    return _Raw(frame, np.asarray(keep, dtype=np.int64), rejected, encoding, None, [], "JSON lines")


def _read_json_array(text: str, source: str, encoding: str) -> _Raw:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PerceptLabError(
            f"{source}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})",
            fix="export the data again, or save it as CSV",
        ) from None
    if not isinstance(value, list):
        raise PerceptLabError(f"{source}: a JSON {type(value).__name__}, expected an array of trials")
    is_obj = np.fromiter((isinstance(v, dict) for v in value), dtype=bool, count=len(value))
    numbers = np.arange(1, len(value) + 1)
    rejected = [(int(n), "not a JSON object", "array element is not an object")
                for n in numbers[~is_obj]]
    objs = [v for v, ok in zip(value, is_obj, strict=True) if ok]
    frame = _as_str_frame(pd.DataFrame.from_records(objs)) if objs else pd.DataFrame()
    return _Raw(frame, numbers[is_obj], rejected, encoding, None,
                ["line numbers are record numbers within the JSON array"], "JSON array")


def _read_raw(path: Path, sep: str | None, encoding: str | None) -> _Raw:
    source = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise PerceptLabError(f"trial file {source} does not exist") from None
    except IsADirectoryError:
        raise PerceptLabError(f"{source} is a folder, not a trial file") from None
    if not data.strip():
        raise PerceptLabError(
            f"{source}: is empty" + (" (only whitespace)" if data else " (0 bytes)"),
            fix="export the trials again",
        )
    text, enc = _decode(data, source, encoding)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise PerceptLabError(f"{source}: is empty (only whitespace)", fix="export the trials again")
    first = text.lstrip()[:1]
    if first == "[" and sep is None:
        raw = _read_json_array(text, source, enc)
    elif first == "{" and sep is None:
        raw = _read_json_lines(text, source, enc)
    else:
        return _read_delimited(text, source, sep, enc)
    if raw.frame.empty and not raw.rejected:
        raise PerceptLabError(f"{source}: holds no trials", fix="export the trials again")
    return raw


