"""Trial tables: load, validate and map human choices onto stimuli.

:func:`load_trials` reads CSV/TSV (delimiter sniffed), JSON lines or a JSON array in the layouts of
:mod:`perceptlab.data.trial_layouts` and returns a :class:`TrialTable`: the canonical long table plus
a :class:`ValidationReport`. Nothing is dropped silently: every unusable row is listed with its line
number and reason, and ``rows_used + len(rejected) == rows_total``. Problems with the whole file
(empty, no header, unknown layout, not UTF-8) raise :class:`~perceptlab.errors.PerceptLabError`.

Encoding: UTF-8 (with or without BOM) or UTF-16 with a BOM. Anything else is refused with the byte
offset and line of the first undecodable byte; pass ``encoding=`` when the encoding is known.

:func:`load_manifest` reads a stimulus library's ``manifest.csv``; :func:`resolve_stimuli` matches the
table's stimulus keys to library entries or image files by id, path, file name or file stem.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from perceptlab import CLASSES
from perceptlab.data.trial_layouts import (
    ColumnMapping,
    DetectedLayout,
    apply_mapping,
    detect_layout,
)
from perceptlab.errors import PerceptLabError

__all__ = [
    "TrialTable",
    "ValidationReport",
    "StimulusIndex",
    "load_trials",
    "trials_from_frame",
    "load_manifest",
    "resolve_stimuli",
    "load_stimulus_images",
    "stimulus_key",
]

CANONICAL_COLUMNS = ("participant", "stimulus", "response", "rt_ms", "is_train", "trial_index",
                     "is_catch", "true_label", "line")
MISSING_TOKENS = frozenset({"", "nan", "na", "n/a", "null", "none", "undefined", "<na>"})
DELIMITERS = (",", "\t", ";", "|")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff", ".svg")
DEFAULT_MAX_RT_MS = 3_600_000.0
_TRUE = frozenset({"true", "1", "1.0", "yes", "y", "t"})
_FALSE = frozenset({"false", "0", "0.0", "no", "n", "f"})
_QUOTED = re.compile(r'"(?:[^"]|"")*"')
_IMAGE_RE = r"(?i)\.(?:png|jpe?g|gif|bmp|webp|tiff?|svg)$"
_MANIFEST_COLUMNS = ("stimulus_id", "file", "mode", "class_a", "class_b", "classifier",
                     "classifier2", "gamma", "steps", "resample", "seed", "p_a", "p_b", "judge",
                     "passed", "status")


# --------------------------------------------------------------------------------------------
# Report and table


@dataclass
class ValidationReport:
    """What loading a trial file did: layout, row accounting, rejected rows and notes."""

    source: str
    layout: str
    rows_total: int
    rows_used: int
    rejected: pd.DataFrame
    n_participants: int
    n_stimuli: int
    encoding: str = "utf-8"
    delimiter: str | None = None
    file_format: str = "delimited text"
    notes: list[str] = field(default_factory=list)

    @property
    def rows_rejected(self) -> int:
        return len(self.rejected)

    def rejected_by_kind(self) -> dict[str, int]:
        """Number of rejected rows per kind of problem, most frequent first."""
        return {str(k): int(v) for k, v in self.rejected["kind"].value_counts().items()}

    def summary(self, max_lines: int = 8) -> str:
        """A short human-readable account of the load."""
        fmt = (self.file_format if self.delimiter is None
               else {"\t": "tab-separated"}.get(self.delimiter, f"'{self.delimiter}'-separated"))
        out = [
            f"{self.source}: {self.layout} layout, {fmt}, {self.encoding}",
            f"  rows: {self.rows_total} total, {self.rows_used} used, {self.rows_rejected} rejected",
        ]
        for kind, count in self.rejected_by_kind().items():
            lines = self.rejected.loc[self.rejected["kind"] == kind, "line"].head(max_lines)
            more = ", …" if count > max_lines else ""
            out.append(f"    {count} × {kind} (line {', '.join(map(str, lines))}{more})")
        out.append(f"  participants: {self.n_participants}, stimuli: {self.n_stimuli}")
        out.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(out)

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "layout": self.layout,
            "encoding": self.encoding,
            "delimiter": self.delimiter,
            "file_format": self.file_format,
            "rows_total": self.rows_total,
            "rows_used": self.rows_used,
            "rows_rejected": self.rows_rejected,
            "rejected_by_kind": self.rejected_by_kind(),
            "participants": self.n_participants,
            "stimuli": self.n_stimuli,
            "notes": list(self.notes),
        }


@dataclass
class TrialTable:
    """Canonical trials (``df``), how they were loaded (``report``) and the class names."""

    df: pd.DataFrame
    report: ValidationReport
    classes: tuple[str, ...] = CLASSES
    synthetic: bool = False

    @property
    def participants(self) -> pd.Index:
        return pd.Index(self.df["participant"].unique())

    @property
    def stimuli(self) -> pd.Index:
        return pd.Index(self.df["stimulus"].unique())

    @property
    def has_rt(self) -> bool:
        return bool(self.df["rt_ms"].notna().any())


# --------------------------------------------------------------------------------------------
# Reading files into a raw all-string frame


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


# --------------------------------------------------------------------------------------------
# Validation into the canonical table


class _Col:
    """A source column as codes into its distinct stripped values.

    String work (strip, lower-case, parse) runs once per distinct value, not once per row.
    """

    def __init__(self, series: pd.Series):
        codes, uniques = pd.factorize(series.to_numpy(dtype=object))
        merged, stripped = pd.factorize(pd.Series(uniques, dtype=object).str.strip())
        self.codes = merged[codes]
        self.uniques = pd.Series(stripped, dtype=object)

    def take(self, per_unique: np.ndarray | pd.Series) -> np.ndarray:
        return np.asarray(per_unique)[self.codes]

    @property
    def values(self) -> np.ndarray:
        return self.take(self.uniques.to_numpy(dtype=object))

    def missing(self) -> np.ndarray:
        return self.take(_is_missing(self.uniques))

    def numbers(self) -> np.ndarray:
        """Numeric value per row (NaN where not a number)."""
        return self.take(pd.to_numeric(self.uniques, errors="coerce").to_numpy(dtype=float))


def _is_missing(values: pd.Series) -> np.ndarray:
    return values.str.lower().isin(MISSING_TOKENS).to_numpy()


def stimulus_key(values: pd.Series) -> pd.Series:
    """Normalise stimulus references: ``<img src="x">`` -> ``x``, backslashes -> ``/``."""
    values = values.astype(str).str.strip()
    has_img = values.str.contains("<img", case=False, regex=False)
    if has_img.any():
        src = values[has_img].str.extract(r"""(?i)<img[^>]*?src\s*=\s*["']?([^"'\s>]+)""")[0]
        values = values.where(~has_img, src.fillna(values[has_img]))
    if values.str.contains("\\", regex=False).any():
        values = values.str.replace("\\", "/", regex=False)
    return values


def _class_index(values: pd.Series, classes: Sequence[str], index_first: bool) -> np.ndarray:
    """Class index per value (float, NaN where neither a class name nor a valid class index)."""
    names = {str(c).strip().lower(): float(i) for i, c in enumerate(classes)}
    by_name = values.str.lower().map(names).to_numpy(dtype=float)
    num = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(num) & (num == np.floor(num)) & (num >= 0) & (num < len(classes))
    by_index = np.where(ok, num, np.nan)
    if index_first:
        return np.where(np.isnan(by_index), by_name, by_index)
    return np.where(np.isnan(by_name), by_index, by_name)


def _booleans(col: _Col) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(value, is_missing, is_invalid) per row for a column of true/false words or 0/1."""
    low = col.uniques.str.lower()
    true, false = low.isin(_TRUE).to_numpy(), low.isin(_FALSE).to_numpy()
    missing = low.isin(MISSING_TOKENS).to_numpy()
    return col.take(true), col.take(missing), col.take(~(true | false | missing))


class _Rejections:
    """Collects (kind, reason) per row; the first problem found for a row is the one reported."""

    def __init__(self, n: int):
        self.kind = np.full(n, None, dtype=object)
        self.reason = np.full(n, None, dtype=object)

    @property
    def ok(self) -> np.ndarray:
        return pd.isna(self.kind)

    def add(self, mask: np.ndarray, kind: str, reason: str, values: np.ndarray | None = None,
            suffix: str = "", quote: str = "'") -> None:
        """Reject ``mask`` rows; with ``values`` the reason reads ``reason 'value'suffix``."""
        mask = np.asarray(mask, dtype=bool) & self.ok
        if not mask.any():
            return
        self.kind[mask] = kind
        if values is None:
            self.reason[mask] = reason
        else:
            self.reason[mask] = [f"{reason} {quote}{str(v)[:40]}{quote}{suffix}" for v in values[mask]]


def _validate(raw: _Raw, layout: DetectedLayout, classes: tuple[str, ...], source: str,
              max_rt_ms: float) -> TrialTable:
    m = layout.mapping
    f = raw.frame
    n = len(f)
    notes = list(raw.notes) + list(layout.notes)
    rej = _Rejections(n)
    cols = {name: _Col(f[src]) for name, src in m.columns().items()}
    part, stim_col, resp = cols["participant"], cols["stimulus"], cols["response"]
    if layout.strip_key_syntax:
        resp.uniques = resp.uniques.str.strip("[]'\" ").str.replace(r"^num_", "", regex=True)
    stim_keys = stimulus_key(stim_col.uniques)
    part_missing, resp_missing = part.missing(), resp.missing()
    stim_missing = stim_col.take(_is_missing(stim_keys))

    maybe_empty = np.flatnonzero(part_missing & stim_missing & resp_missing)
    empty = np.zeros(n, dtype=bool)
    empty[maybe_empty] = (f.iloc[maybe_empty] == "").all(axis=1).to_numpy()
    rej.add(empty, "empty row", "empty row (no values)")
    header_again = (part.take(part.uniques == m.participant) & resp.take(resp.uniques == m.response)
                    & stim_col.take(stim_col.uniques == m.stimulus))
    rej.add(header_again, "repeated header row", "repeated header row inside the data")

    index_first = np.zeros(n, dtype=bool)
    if m.trial_type is not None:
        ttype = cols["trial_type"]
        is_image = stim_col.take(stim_keys.str.contains(_IMAGE_RE, regex=True))
        rej.add(ttype.take(~ttype.uniques.isin(m.response_trial_types)), "not a response trial",
                "not a response trial (trial_type", ttype.values, ")")
        rej.add(resp_missing & ~is_image, "not a response trial",
                "not a response trial (no response and no image stimulus; trial_type", ttype.values,
                ")")
        index_first = ttype.take(ttype.uniques.str.contains("button", regex=False))
        skipped = pd.Series(ttype.values[rej.kind == "not a response trial"]).value_counts()
        if len(skipped):
            notes.append("not response trials, by trial_type: "
                         + ", ".join(f"{t or '(empty)'} {c}" for t, c in skipped.items()))
    if layout.blank_rows_are_routines:
        rej.add(stim_missing & resp_missing, "not a response trial",
                "not a response trial (no stimulus and no key: a routine outside the trial loop)")
    rej.add(part_missing, "missing participant", f"missing participant ('{m.participant}' is empty)")
    rej.add(stim_missing, "missing stimulus", f"missing stimulus ('{m.stimulus}' is empty)")
    rej.add(resp_missing, "missing response", f"missing response ('{m.response}' is empty)")
    by_name = resp.take(_class_index(resp.uniques, classes, index_first=False))
    by_index = resp.take(_class_index(resp.uniques, classes, index_first=True))
    response = np.where(index_first, by_index, by_name)
    shown = ", ".join(classes) if len(classes) <= 12 else f"{classes[0]} … {classes[-1]}"
    rej.add(np.isnan(response), "response outside the classes", "response", resp.values,
            f" is not one of the classes ({shown}) nor a class index 0..{len(classes) - 1}")

    true_label = np.full(n, np.nan)
    if "true_label" in cols:
        tl = cols["true_label"]
        tl_missing = tl.missing()
        true_label = np.where(tl_missing, np.nan, tl.take(_class_index(tl.uniques, classes, False)))
        rej.add(~tl_missing & np.isnan(true_label), "true_label outside the classes", "true_label",
                tl.values, " is not one of the classes")

    rt_ms = np.full(n, np.nan)
    if "rt" in cols:
        rt = cols["rt"]
        if layout.strip_key_syntax:
            rt.uniques = rt.uniques.str.strip("[] ")
        value = rt.numbers() * (1000.0 if m.rt_unit == "s" else 1.0)
        rt_missing = np.isnan(value) & rt.missing()
        unit = f" {m.rt_unit}"
        with np.errstate(invalid="ignore"):
            rej.add(~rt_missing & np.isnan(value), "non-numeric rt", "rt", rt.values, " is not a number")
            rej.add(np.isinf(value), "non-finite rt", "rt", rt.values, " is not finite")
            rej.add(value < 0, "negative rt", "negative rt", rt.values, unit)
            rej.add(value > max_rt_ms, "implausible rt", "rt", rt.values,
                    f"{unit} is implausibly long (> {max_rt_ms:g} ms)")
        rt_ms = value
        if m.rt_unit == "s":
            notes.append(f"rt from '{m.rt}' converted from seconds to milliseconds")

    flags: dict[str, np.ndarray] = {}
    for name in ("is_train", "is_catch"):
        if name in cols:
            flag, flag_missing, invalid = _booleans(cols[name])
            rej.add(invalid, f"invalid {name}", name, cols[name].values, " is not true/false")
            flags[name] = np.where(flag_missing, np.nan, flag.astype(float))

    trial_index = np.full(n, np.nan)
    if "trial_index" in cols:
        ti = cols["trial_index"]
        num = ti.numbers()
        with np.errstate(invalid="ignore"):
            integral = np.isfinite(num) & (num == np.floor(num)) & (np.abs(num) < 2**53)
        rej.add(~ti.missing() & ~integral, "invalid trial_index", "trial_index", ti.values,
                " is not an integer")
        trial_index = np.where(integral, num, np.nan)

    lines = np.asarray(raw.lines, dtype=np.int64)
    has_ti = np.flatnonzero(rej.ok & ~np.isnan(trial_index))
    if len(has_ti):
        stim_codes = stim_col.take(pd.factorize(stim_keys)[0])
        keys = pd.DataFrame({"p": part.codes[has_ti], "s": stim_codes[has_ti],
                             "t": trial_index[has_ti]})
        dup_rows = keys.duplicated(keep="first").to_numpy()
        if dup_rows.any():
            first = keys.groupby(["p", "s", "t"], sort=False).ngroup().to_numpy()
            first_line = pd.Series(lines[has_ti]).groupby(first).transform("first").to_numpy()
            dup = np.zeros(n, dtype=bool)
            dup[has_ti[dup_rows]] = True
            earlier = np.zeros(n, dtype=np.int64)
            earlier[has_ti] = first_line
            rej.add(dup, "duplicate trial",
                    "duplicate trial (same participant, stimulus and trial_index as line",
                    earlier, ")", quote="")
    ok = rej.ok
    n_ok = int(ok.sum())

    def flag_array(name: str) -> pd.arrays.BooleanArray:
        values = flags[name][ok] if name in flags else np.full(n_ok, np.nan)
        return pd.array(values, dtype="Float64").astype("boolean")

    df = pd.DataFrame({
        "participant": part.values[ok],
        "stimulus": stim_col.take(stim_keys.to_numpy(dtype=object))[ok],
        "response": response[ok].astype(np.int64),
        "rt_ms": rt_ms[ok],
        "is_train": flag_array("is_train"),
        "trial_index": pd.array(trial_index[ok], dtype="Float64").astype("Int64"),
        "is_catch": np.zeros(n_ok, dtype=bool),
        "true_label": pd.array(true_label[ok], dtype="Float64").astype("Int64"),
        "line": lines[ok],
    })
    df["participant"] = df["participant"].astype(str)
    df["stimulus"] = df["stimulus"].astype(str)
    if "is_catch" in flags:
        df["is_catch"] = np.nan_to_num(flags["is_catch"][ok], nan=0.0).astype(bool)
    elif "true_label" in cols:
        df["is_catch"] = df["true_label"].notna().to_numpy()
        notes.append("no is_catch column: trials with a true_label are treated as catch trials")
    if "trial_index" not in cols:
        df["trial_index"] = df.groupby("participant", sort=False).cumcount().astype("Int64")
        repeats = int(df.duplicated(["participant", "stimulus"]).sum())
        notes.append("no trial_index column: trials numbered in file order within each participant")
        if repeats:
            notes.append(f"{repeats} trials repeat a participant–stimulus pair; without a trial "
                         "index they cannot be told apart from duplicated rows, all are kept")

    bad = ~ok
    rejected = pd.DataFrame({
        "line": np.concatenate([[r[0] for r in raw.rejected], lines[bad]]).astype(np.int64),
        "kind": np.concatenate([[r[1] for r in raw.rejected], rej.kind[bad]]).astype(object),
        "reason": np.concatenate([[r[2] for r in raw.rejected], rej.reason[bad]]).astype(object),
    }).sort_values("line", kind="stable").reset_index(drop=True)

    synthetic = _is_synthetic(f, notes)
    if synthetic:
        notes.append("SYNTHETIC data (simulated observers), not human responses")
    report = ValidationReport(
        source=source, layout=layout.name, rows_total=raw.rows_total, rows_used=len(df),
        rejected=rejected, n_participants=int(df["participant"].nunique()),
        n_stimuli=int(df["stimulus"].nunique()), encoding=raw.encoding, delimiter=raw.delimiter,
        file_format=raw.file_format, notes=notes,
    )
    if report.rows_used + report.rows_rejected != report.rows_total:
        raise RuntimeError(f"{source}: row accounting is off ({report.rows_used} used + "
                           f"{report.rows_rejected} rejected != {report.rows_total})")
    return TrialTable(df=df, report=report, classes=classes, synthetic=synthetic)


def _is_synthetic(frame: pd.DataFrame, notes: list[str]) -> bool:
    if "synthetic" in frame.columns:
        flag, missing, _ = _booleans(_Col(frame["synthetic"]))
        if flag[~missing].size and flag[~missing].all():
            return True
    return any("synthetic" in n.lower() for n in notes if n.startswith("comment:"))


def _resolve_classes(classes: Sequence[str] | None) -> tuple[str, ...]:
    classes = CLASSES if classes is None else tuple(str(c).strip() for c in classes)
    if len(classes) < 2:
        raise PerceptLabError(f"need at least two classes, got {list(classes)}")
    if len({c.lower() for c in classes}) != len(classes):
        raise PerceptLabError(f"class names must be distinct, got {list(classes)}")
    return classes


def _layout_for(frame: pd.DataFrame, mapping: ColumnMapping | str | Path | None,
                source: str) -> DetectedLayout:
    if mapping is None:
        return detect_layout(frame, source)
    if not isinstance(mapping, ColumnMapping):
        mapping = ColumnMapping.load(mapping)
    return apply_mapping(frame, mapping, source)


def load_trials(path: str | Path, mapping: ColumnMapping | str | Path | None = None,
                classes: Sequence[str] | None = None, *, sep: str | None = None,
                encoding: str | None = None, max_rt_ms: float = DEFAULT_MAX_RT_MS) -> TrialTable:
    """Load and validate a trial file (CSV/TSV/JSON lines/JSON array).

    ``mapping`` (a :class:`ColumnMapping` or the path of its JSON) overrides layout detection;
    ``classes`` are the class names in class-index order (default digits ``"0"``..``"9"``);
    responses may be class names or class indices (jsPsych button responses are indices).
    """
    path = Path(path)
    classes = _resolve_classes(classes)
    if sep is not None and len(sep) != 1:
        raise PerceptLabError(f"sep must be a single character, got {sep!r}")
    raw = _read_raw(path, sep, encoding)
    if raw.frame.empty:
        raise PerceptLabError(f"{path}: no readable rows: "
                              + "; ".join(f"line {ln}: {r}" for ln, _, r in raw.rejected[:5]))
    layout = _layout_for(raw.frame, mapping, str(path))
    return _validate(raw, layout, classes, str(path), max_rt_ms)


def trials_from_frame(frame: pd.DataFrame, mapping: ColumnMapping | None = None,
                      classes: Sequence[str] | None = None, *, source: str = "<DataFrame>",
                      max_rt_ms: float = DEFAULT_MAX_RT_MS) -> TrialTable:
    """Validate an in-memory table exactly like :func:`load_trials` (line = row number + 1)."""
    classes = _resolve_classes(classes)
    if frame.empty:
        raise PerceptLabError(f"{source}: holds no trials")
    raw = _Raw(_as_str_frame(frame.reset_index(drop=True)), np.arange(2, len(frame) + 2), [],
               "n/a", None, [], "in-memory table")
    raw.frame.columns = [str(c).strip() for c in raw.frame.columns]
    return _validate(raw, _layout_for(raw.frame, mapping, source), classes, source, max_rt_ms)


# --------------------------------------------------------------------------------------------
# Stimuli: library manifest and image folders


def load_manifest(library_dir: str | Path) -> pd.DataFrame:
    """Read ``manifest.csv`` of a stimulus library; adds ``path`` (absolute image path)."""
    library_dir = Path(library_dir)
    if not library_dir.is_dir():
        raise PerceptLabError(f"stimulus library {library_dir} is not a folder",
                              fix="point --library at the folder that holds manifest.csv and images/")
    path = library_dir / "manifest.csv"
    if not path.is_file():
        raise PerceptLabError(
            f"{library_dir} has no manifest.csv",
            fix="point --library at a stimulus library folder (manifest.csv, images/), "
            "or use --images for a plain image folder",
        )
    try:
        manifest = pd.read_csv(path, dtype={"stimulus_id": str, "file": str, "mode": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise PerceptLabError(f"{path}: cannot be read as CSV: {exc}") from None
    missing = [c for c in ("stimulus_id", "file") if c not in manifest.columns]
    if missing:
        raise PerceptLabError(f"{path}: missing columns {missing}",
                              fix=f"a manifest has the columns {', '.join(_MANIFEST_COLUMNS)}")
    for c in ("mode", "class_a", "class_b"):
        if c not in manifest.columns:
            manifest[c] = pd.NA
    for c in ("class_a", "class_b"):
        manifest[c] = pd.to_numeric(manifest[c], errors="coerce").astype("Float64").astype("Int64")
    manifest["file"] = manifest["file"].astype(str).str.replace("\\", "/", regex=False)
    manifest["path"] = [str(library_dir / f) for f in manifest["file"]]
    return manifest


@dataclass
class StimulusIndex:
    """Stimulus key -> (stimulus_id, path, mode, class_a, class_b, matched_by); unmatched keys."""

    table: pd.DataFrame
    unmatched: list[str]
    ambiguous: list[str]
    source: str

    @property
    def n_matched(self) -> int:
        return len(self.table)

    def pairs(self) -> pd.DataFrame:
        """Target pairs (``mode, class_a, class_b``) of the matched stimuli that have one."""
        t = self.table
        return t.loc[t["class_a"].notna() & t["class_b"].notna(), ["mode", "class_a", "class_b"]]

    def summary(self) -> str:
        total = self.n_matched + len(self.unmatched)
        out = f"stimuli: {self.n_matched} of {total} matched to {self.source}"
        if self.unmatched:
            shown = ", ".join(self.unmatched[:5]) + (", …" if len(self.unmatched) > 5 else "")
            out += f"; {len(self.unmatched)} not found ({shown})"
        if self.ambiguous:
            out += f"; {len(self.ambiguous)} ambiguous (the name fits several files)"
        return out

    def to_dict(self) -> dict:
        return {"source": self.source, "matched": self.n_matched,
                "unmatched": len(self.unmatched), "unmatched_examples": self.unmatched[:20],
                "ambiguous": len(self.ambiguous)}


def _name_parts(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    base = values.str.rsplit("/", n=1).str[-1]
    stem = base.str.replace(r"\.[A-Za-z0-9]+$", "", regex=True)
    return base, stem


_INDEX_COLUMNS = ["stimulus", "stimulus_id", "path", "mode", "class_a", "class_b", "matched_by"]


def _match(keys: pd.Series, cand: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series, set[str]]:
    """Match keys (RangeIndex) to candidate rows (``stimulus_id, file, path, mode, class_a,
    class_b``); returns the matched rows, the keys left over and the ambiguous keys."""
    k_base, k_stem = _name_parts(keys)
    c_base, c_stem = _name_parts(cand["file"])
    levels = (("id", keys, cand["stimulus_id"]), ("file", keys, cand["file"]),
              ("file name", k_base, c_base), ("file stem", k_stem, c_stem),
              ("id = file stem", k_stem, cand["stimulus_id"]))
    found = pd.Series(np.nan, index=keys.index, dtype=float)
    how = pd.Series(None, index=keys.index, dtype=object)
    ambiguous: set[str] = set()
    for label, key_values, cand_values in levels:
        counts = cand_values.value_counts()
        unique = cand_values[cand_values.map(counts) == 1]
        lookup = pd.Series(unique.index.to_numpy(dtype=float), index=unique.to_numpy())
        todo = found.isna()
        found[todo] = key_values[todo].map(lookup)
        how[todo & found.notna()] = label
        many = key_values[todo].map(counts).fillna(0) > 1
        ambiguous.update(keys[todo][many.to_numpy()])
    hit = found.notna()
    rows = cand.loc[found[hit].astype(int)]
    matched = pd.DataFrame({
        "stimulus": keys[hit].to_numpy(), "stimulus_id": rows["stimulus_id"].to_numpy(),
        "path": rows["path"].to_numpy(), "mode": rows["mode"].to_numpy(),
        "class_a": rows["class_a"].to_numpy(), "class_b": rows["class_b"].to_numpy(),
        "matched_by": how[hit].to_numpy(),
    })
    return matched, keys[~hit].reset_index(drop=True), ambiguous - set(keys[hit])


def _image_candidates(image_dir: Path) -> pd.DataFrame:
    if not image_dir.is_dir():
        raise PerceptLabError(f"image folder {image_dir} is not a folder",
                              fix="point --images at the folder that holds the stimulus images")
    files = sorted(p for p in image_dir.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    rel = pd.Series([p.relative_to(image_dir).as_posix() for p in files], dtype=object)
    return pd.DataFrame({"stimulus_id": _name_parts(rel)[1], "file": rel,
                         "path": [str(p) for p in files], "mode": pd.NA, "class_a": pd.NA,
                         "class_b": pd.NA})


def resolve_stimuli(table: TrialTable | pd.DataFrame | Iterable[str],
                    manifest: pd.DataFrame | None = None,
                    image_dir: str | Path | None = None) -> StimulusIndex:
    """Match each stimulus key to a library entry (``manifest``) or an image file (``image_dir``).

    A key matches by stimulus id, by relative path, by file name or by file stem, in that order, so
    a variMNIST key ``dataset_PNG/uncertainty/x.png`` finds ``images/x.png`` or id ``x``. Names that
    fit several entries are reported as ambiguous rather than guessed. With both, keys the manifest
    does not know are looked up in ``image_dir``.
    """
    if isinstance(table, TrialTable):
        raw_keys = table.df["stimulus"]
    elif isinstance(table, pd.DataFrame):
        raw_keys = table["stimulus"]
    else:
        raw_keys = pd.Series(list(table), dtype=object)
    remaining = pd.Series(pd.unique(raw_keys.astype(str).to_numpy(dtype=object)), dtype=object)
    sources: list[tuple[str, pd.DataFrame]] = []
    if manifest is not None:
        cand = manifest.reset_index(drop=True).copy()
        cand["stimulus_id"] = cand["stimulus_id"].astype(str)
        cand["file"] = cand["file"].astype(str).str.replace("\\", "/", regex=False)
        if "path" not in cand.columns:
            root = Path(image_dir) if image_dir is not None else Path(".")
            cand["path"] = [str(root / f) for f in cand["file"]]
        for col in ("mode", "class_a", "class_b"):
            if col not in cand.columns:
                cand[col] = pd.NA
        sources.append(("library manifest", cand))
    if image_dir is not None:
        sources.append((f"images in {image_dir}", _image_candidates(Path(image_dir))))
    parts = []
    ambiguous: set[str] = set()
    for _, cand in sources:
        matched, remaining, amb = _match(remaining, cand)
        parts.append(matched)
        ambiguous |= amb
    matched = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=_INDEX_COLUMNS)
    matched = matched[_INDEX_COLUMNS].set_index("stimulus")
    ambiguous -= set(matched.index)
    for c in ("class_a", "class_b"):
        matched[c] = pd.to_numeric(matched[c], errors="coerce").astype("Float64").astype("Int64")
    return StimulusIndex(
        table=matched, unmatched=[str(k) for k in remaining if k not in ambiguous],
        ambiguous=sorted(ambiguous),
        source=" + ".join(name for name, _ in sources) or "nothing (no library or images)",
    )


def load_stimulus_images(paths: Sequence[str | Path]) -> np.ndarray:
    """Read stimulus images as an (N, 28, 28) uint8 array (white digit on black)."""
    from perceptlab.data.images import SIZE, read_png  # noqa: PLC0415  (Pillow only when needed)

    if not len(paths):
        return np.zeros((0, SIZE, SIZE), dtype=np.uint8)
    return np.stack([read_png(p) for p in paths])
