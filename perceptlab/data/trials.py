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

Reading files lives in :mod:`trial_reading`, stimulus resolution in :mod:`trial_stimuli`; their public
names are imported from here as before.
"""

from __future__ import annotations

from collections.abc import Sequence
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
from perceptlab.data.trial_reading import (  # noqa: F401  (DELIMITERS, _read_raw: re-exported)
    DELIMITERS,
    _as_str_frame,
    _Raw,
    _read_raw,
)
from perceptlab.data.trial_stimuli import (  # noqa: F401  (re-exported: the public API of trial tables)
    IMAGE_EXTENSIONS,
    StimulusIndex,
    load_manifest,
    load_stimulus_images,
    resolve_stimuli,
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
DEFAULT_MAX_RT_MS = 3_600_000.0
_TRUE = frozenset({"true", "1", "1.0", "yes", "y", "t"})
_FALSE = frozenset({"false", "0", "0.0", "no", "n", "f"})
_IMAGE_RE = r"(?i)\.(?:png|jpe?g|gif|bmp|webp|tiff?|svg)$"


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
