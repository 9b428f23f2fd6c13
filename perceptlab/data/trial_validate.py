"""Validation of raw trial rows into the canonical table, block by block, then over the whole data.

:func:`validate_block` turns one raw block into candidate rows (participant, stimulus, response text,
rt text, flags, line) and set-aside rows; only what must be decided over all the data — the class
set, the RT unit, duplicates, trial numbering, catch marking — waits for :func:`finish`. So memory is
the canonical table, whatever the size of the file. Every row ends either used or set aside with its
line and reason.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from perceptlab.data.trial_classes import class_index, infer_classes
from perceptlab.data.trial_layouts import CATCH_TYPE_PATTERN, DetectedLayout
from perceptlab.data.trial_reading import _Raw
from perceptlab.data.trial_report import TrialTable, ValidationReport
from perceptlab.data.trial_rules import fix_for, rt_unit_factor
from perceptlab.errors import PerceptLabError

MISSING_TOKENS = frozenset({"", "nan", "na", "n/a", "null", "none", "undefined", "<na>"})
_TRUE = frozenset({"true", "1", "1.0", "yes", "y", "t"})
_FALSE = frozenset({"false", "0", "0.0", "no", "n", "f"})
_IMAGE_RE = r"(?i)\.(?:png|jpe?g|gif|bmp|webp|tiff?|svg)$"
_DECIMAL_COMMA = r"^[-+]?\d*,\d+$"
CANONICAL_COLUMNS = ("participant", "stimulus", "response", "rt_ms", "is_train", "trial_index",
                     "is_catch", "true_label", "line")


class _Col:
    """A source column as codes into its distinct stripped values (string work once per value)."""

    def __init__(self, series: pd.Series):
        codes, uniques = pd.factorize(series.to_numpy(dtype=object))
        merged, stripped = pd.factorize(pd.Series(uniques, dtype=object).str.strip())
        self.codes = merged[codes] if len(codes) else codes
        self.uniques = pd.Series(stripped, dtype=object)

    def take(self, per_unique) -> np.ndarray:
        return np.asarray(per_unique)[self.codes]

    @property
    def values(self) -> np.ndarray:
        return self.take(self.uniques.to_numpy(dtype=object))

    def missing(self) -> np.ndarray:
        return self.take(is_missing(self.uniques))


def is_missing(values: pd.Series) -> np.ndarray:
    return values.str.lower().isin(MISSING_TOKENS).to_numpy()


def numbers(values: pd.Series, decimal_comma: bool) -> np.ndarray:
    """Numeric value per distinct text (NaN where not a number); '512,5' too when allowed."""
    if decimal_comma:
        values = values.where(~values.str.match(_DECIMAL_COMMA), values.str.replace(",", ".", regex=False))
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)


def _single(text: str) -> str:
    try:
        v = json.loads(text)
    except ValueError:
        return text
    if isinstance(v, list) and v and all(isinstance(x, (str, int, float)) for x in v):
        return str(v[0]) if len(v) == 1 else " + ".join(map(str, v))
    return text


def stimulus_key(values: pd.Series) -> pd.Series:
    """Normalise stimulus references: ``<img src="x">`` -> ``x``, ``["x"]`` (a jsPsych list) -> ``x``,
    backslashes -> ``/``."""
    values = values.astype(str).str.strip()
    listed = values.str.startswith("[") & values.str.endswith("]")
    if listed.any():
        values = values.where(~listed, values[listed].map(_single))
    has_img = values.str.contains("<img", case=False, regex=False)
    if has_img.any():
        src = values[has_img].str.extract(r"""(?i)<img[^>]*?src\s*=\s*["']?([^"'\s>]+)""")[0]
        values = values.where(~has_img, src.fillna(values[has_img]))
    if values.str.contains("\\", regex=False).any():
        values = values.str.replace("\\", "/", regex=False)
    return values


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

    def add(self, mask, kind: str, reason: str, values=None, suffix: str = "", quote: str = "'") -> None:
        mask = np.asarray(mask, dtype=bool) & self.ok
        if not mask.any():
            return
        self.kind[mask] = kind
        if values is None:
            self.reason[mask] = reason
        else:
            self.reason[mask] = [f"{reason} {quote}{str(v)[:40]}{quote}{suffix}" for v in values[mask]]


@dataclass
class Context:
    """What the blocks of one load share: layout, file label, notes and counts."""

    layout: DetectedLayout
    file: str
    decimal_comma: bool
    notes: list[str] = field(default_factory=list)
    skipped_types: Counter = field(default_factory=Counter)
    synthetic_flags: list[bool] = field(default_factory=list)
    decimal_commas: int = 0
    rows_total: int = 0
    max_rt_ms: float = 3_600_000.0
    pool: dict = field(default_factory=dict)  # one string object per distinct participant/stimulus

    def shared(self, values: np.ndarray) -> np.ndarray:
        """``values`` (distinct strings of a block) as the objects already seen in earlier blocks."""
        pool = self.pool
        return np.asarray([pool.setdefault(v, v) for v in values], dtype=object)


@dataclass
class Part:
    """Candidate rows of one block (not yet checked against the classes, RT unit, duplicates)."""

    file: str
    cols: dict[str, np.ndarray]
    rejected: list[tuple[int, str, str]]


def validate_block(raw: _Raw, ctx: Context) -> Part:
    layout = ctx.layout
    m = layout.mapping
    f = raw.frame
    n = len(f)
    ctx.rows_total += raw.rows_total
    rej = _Rejections(n)
    cols = {name: _Col(f[src]) for name, src in m.columns().items()}
    part, stim_col, resp = cols["participant"], cols["stimulus"], cols["response"]
    several = np.zeros(n, dtype=bool)
    if layout.strip_key_syntax:
        u = resp.uniques
        several = resp.take(u.str.startswith("[") & u.str.contains(",", regex=False))
        resp.uniques = u.str.strip("[]'\" ").str.replace(r"^num_", "", regex=True)
    stim_keys = stimulus_key(stim_col.uniques)
    part_missing, resp_missing = part.missing(), resp.missing()
    stim_missing = stim_col.take(is_missing(stim_keys))
    maybe_empty = np.flatnonzero(part_missing & stim_missing & resp_missing)
    empty = np.zeros(n, dtype=bool)
    if len(maybe_empty):
        empty[maybe_empty] = (f.iloc[maybe_empty].apply(lambda c: c.str.strip()) == "").all(axis=1).to_numpy()
    first_col = _Col(f[f.columns[0]]) if len(f.columns) else None
    if first_col is not None:  # Gorilla ends its exports with an "END OF FILE" row
        rej.add(first_col.take(first_col.uniques.str.upper() == "END OF FILE"), "end-of-file marker",
                "end-of-file marker row (END OF FILE), not a trial")
    rej.add(empty, "empty row", "empty row (no values)")

    index_first = np.zeros(n, dtype=bool)
    catch_by_type = np.zeros(n, dtype=bool)
    for c in layout.catch_type_columns:
        if c in f.columns:
            cc = _Col(f[c])
            catch_by_type |= cc.take(cc.uniques.str.contains(CATCH_TYPE_PATTERN, regex=True))
    if m.trial_type is not None:
        ttype = cols["trial_type"]
        is_image = stim_col.take(stim_keys.str.contains(_IMAGE_RE, regex=True))
        known = ttype.uniques.isin(m.response_trial_types)
        if layout.response_type_prefix:
            known |= ttype.uniques.str.startswith(layout.response_type_prefix)
        rej.add(ttype.take(~known) & ~catch_by_type, "not a response trial",
                f"not a response trial ({m.trial_type}", ttype.values, ")")
        if layout.html_needs_image:
            html = ttype.take(ttype.uniques.str.startswith("html-"))
            rej.add(html & ~is_image & ~catch_by_type, "not a response trial",
                    "not a response trial (a screen without an image: instructions or fixation; "
                    f"{m.trial_type}", ttype.values, ")")
        rej.add(resp_missing & ~is_image, "not a response trial",
                f"not a response trial (no response and no image stimulus; {m.trial_type}",
                ttype.values, ")")
        if layout.response_type_prefix is None:
            index_first = ttype.take(ttype.uniques.str.contains("button", regex=False))
        ctx.skipped_types.update(pd.Series(ttype.values[rej.kind == "not a response trial"]).tolist())
    if layout.blank_rows_are_routines:
        rej.add(stim_missing & resp_missing, "not a response trial",
                "not a response trial (no stimulus and no key: a routine outside the trial loop)")
    rej.add(part_missing, "missing participant", f"missing participant ('{m.participant}' is empty)")
    rej.add(stim_missing, "missing stimulus", f"missing stimulus ('{m.stimulus}' is empty)")
    rej.add(resp_missing, "missing response", f"missing response ('{m.response}' is empty)")
    rej.add(several, "several keys pressed", "several keys pressed", resp.values,
            " (which one is the answer is not known; map a column that holds one key)")

    rt_num = np.full(n, np.nan)
    if "rt" in cols:
        rt = cols["rt"]
        if layout.strip_key_syntax:
            rt.uniques = rt.uniques.str.strip("[] ")
        num_u = numbers(rt.uniques, ctx.decimal_comma)
        if ctx.decimal_comma:
            ctx.decimal_commas += int(rt.take(rt.uniques.str.match(_DECIMAL_COMMA).to_numpy()).sum())
        rt_num = rt.take(num_u)
        rej.add(~rt.missing() & np.isnan(rt_num), "non-numeric rt", "rt", rt.values, " is not a number")

    flags: dict[str, np.ndarray] = {}
    for name in ("is_train", "is_catch"):
        if name in cols:
            flag, flag_missing, invalid = _booleans(cols[name])
            rej.add(invalid, f"invalid {name}", name, cols[name].values, " is not true/false")
            flags[name] = np.where(flag_missing, np.nan, flag.astype(float))
    trial_index = np.full(n, np.nan)
    if "trial_index" in cols:
        ti = cols["trial_index"]
        num = ti.take(numbers(ti.uniques, False))
        with np.errstate(invalid="ignore"):
            integral = np.isfinite(num) & (num == np.floor(num)) & (np.abs(num) < 2**53)
        rej.add(~ti.missing() & ~integral, "invalid trial_index", "trial_index", ti.values,
                " is not an integer")
        trial_index = np.where(integral, num, np.nan)
    if "synthetic" in f.columns:
        flag, missing, _ = _booleans(_Col(f["synthetic"]))
        ctx.synthetic_flags.append(bool(flag[~missing].size and flag[~missing].all()))

    lines = np.asarray(raw.lines, dtype=np.int64)
    ok = rej.ok
    bad = ~ok
    out = {
        "participant": part.take(ctx.shared(part.uniques.to_numpy(dtype=object)))[ok],
        "stimulus": stim_col.take(ctx.shared(stim_keys.to_numpy(dtype=object)))[ok],
        "response": resp.values[ok],
        "index_first": index_first[ok],
        "rt": rt_num[ok],
        "rt_text": _suspect_rt_text(cols.get("rt"), rt_num, ctx.max_rt_ms)[ok],
        "is_train": flags.get("is_train", np.full(n, np.nan))[ok],
        "is_catch": flags.get("is_catch", np.full(n, np.nan))[ok],
        "catch_by_type": catch_by_type[ok],
        "true_label": cols["true_label"].values[ok] if "true_label" in cols else np.full(int(ok.sum()), "", dtype=object),
        "trial_index": trial_index[ok],
        "line": lines[ok],
    }
    rejected = list(raw.rejected) + list(zip(lines[bad].tolist(), rej.kind[bad].tolist(),
                                             rej.reason[bad].tolist(), strict=True))
    return Part(ctx.file, out, rejected)


def _suspect_rt_text(col: _Col | None, rt: np.ndarray, max_rt_ms: float) -> np.ndarray:
    """The rt text of rows that may yet be set aside for their rt (for the reason); '' elsewhere."""
    if col is None:
        return np.full(len(rt), "", dtype=object)
    with np.errstate(invalid="ignore"):
        suspect = ~np.isfinite(rt) | (rt <= 0) | (rt > max_rt_ms / 1000.0)
    return np.where(suspect, col.values, "")


def finish(parts: Sequence[Part], contexts: Sequence[Context], classes: tuple[str, ...] | None,
           source: str, max_rt_ms: float, raw_info: dict) -> TrialTable:
    """Decide classes, RT unit, duplicates and catch trials over all the candidate rows."""
    layout = contexts[0].layout
    m = layout.mapping
    notes = list(raw_info.get("notes", []))
    for ctx in contexts:
        notes += [n for n in ctx.notes if n not in notes]
    file_of = np.concatenate([np.full(len(p.cols["line"]), p.file, dtype=object) for p in parts])
    cat = {k: np.concatenate([p.cols.pop(k) for p in parts]) for k in list(parts[0].cols)}  # frees the parts
    n = len(file_of)
    rej = _Rejections(n)

    resp = _Col(pd.Series(cat.pop("response"), dtype=object))
    tl = _Col(pd.Series(cat.pop("true_label"), dtype=object))
    if classes is None:
        classes, classes_from = infer_classes(pd.concat([resp.uniques, tl.uniques]), source)
    else:
        classes_from = "the class list given"
    by_name = resp.take(class_index(resp.uniques, classes, index_first=False))
    by_index = resp.take(class_index(resp.uniques, classes, index_first=True))
    response = np.where(cat.pop("index_first").astype(bool), by_index, by_name)
    del by_name, by_index
    shown = ", ".join(classes) if len(classes) <= 12 else f"{classes[0]} … {classes[-1]}"
    rej.add(np.isnan(response), "response outside the classes", "response", resp.values,
            f" is not one of the classes ({shown}) nor a class index 0..{len(classes) - 1}")
    tl_missing = tl.missing()
    true_label = np.where(tl_missing, np.nan, tl.take(class_index(tl.uniques, classes, False)))
    rej.add(~tl_missing & np.isnan(true_label), "true_label outside the classes", "true_label",
            tl.values, " is not one of the classes")
    del resp, tl, tl_missing

    rt_ms = np.full(n, np.nan)
    if m.rt is not None:
        factor = np.ones(n)
        if len(contexts) == 1:
            factor[:] = rt_unit_factor(m.rt_unit, cat["rt"][rej.ok], m.rt, notes)
        else:  # the unit is decided per file: one lab's files may be in seconds, another's in ms
            per_file: dict[str, list[str]] = {}
            for ctx in contexts:
                mask = file_of == ctx.file
                if ctx.layout.mapping.rt is None:
                    continue
                said: list[str] = []
                factor[mask] = rt_unit_factor(ctx.layout.mapping.rt_unit, cat["rt"][mask & rej.ok],
                                        ctx.layout.mapping.rt, said)
                for x in said:
                    per_file.setdefault(x.split(": its median")[0].split(" (median")[0], []).append(ctx.file)
            for what, names in per_file.items():
                notes.append(f"{what}: {len(names)} file(s)" + ("" if len(names) > 3 else f" ({', '.join(names)})"))
        value = cat["rt"] * factor
        unit = np.where(factor == 1.0, " ms", " s")
        texts = cat["rt_text"]
        with np.errstate(invalid="ignore"):
            rej.add(np.isinf(value), "non-finite rt", "rt", texts, " is not finite")
            u = " s" if (unit == " s").all() else (" ms" if (unit == " ms").all() else "")
            rej.add(value < 0, "negative rt", "negative rt", texts, u)
            rej.add(value == 0, "zero rt", "rt", texts, f"{u} is zero (no real answer is that fast)")
            rej.add(value > max_rt_ms, "implausible rt", "rt", texts,
                    f"{u} is implausibly long (> {max_rt_ms:g} ms)")
        rt_ms = value
        commas = sum(c.decimal_commas for c in contexts)
        if commas:
            notes.append(f"{commas} rt values written with a decimal comma (e.g. 512,5) read as decimals")

    trial_index = cat["trial_index"]
    has_ti = np.flatnonzero(rej.ok & ~np.isnan(trial_index))
    if len(has_ti):
        keys = pd.DataFrame({"p": cat["participant"][has_ti], "s": cat["stimulus"][has_ti],
                             "t": trial_index[has_ti]})
        if len(contexts) > 1:
            keys["f"] = file_of[has_ti]
        dup_rows = keys.duplicated(keep="first").to_numpy()
        if dup_rows.any():
            first = keys.groupby(list(keys.columns), sort=False).ngroup().to_numpy()
            first_line = pd.Series(cat["line"][has_ti]).groupby(first).transform("first").to_numpy()
            dup = np.zeros(n, dtype=bool)
            dup[has_ti[dup_rows]] = True
            earlier = np.zeros(n, dtype=np.int64)
            earlier[has_ti] = first_line
            rej.add(dup, "duplicate trial",
                    "duplicate trial (same participant, stimulus and trial_index as line", earlier, ")",
                    quote="")
    ok = rej.ok
    n_ok = int(ok.sum())
    df = pd.DataFrame({
        "participant": pd.Series(cat["participant"][ok], dtype=object).astype(str),
        "stimulus": pd.Series(cat["stimulus"][ok], dtype=object).astype(str),
        "response": response[ok].astype(np.int64),
        "rt_ms": rt_ms[ok].astype(float),
        "is_train": pd.array(cat["is_train"][ok], dtype="Float64").astype("boolean"),
        "trial_index": pd.array(trial_index[ok], dtype="Float64").astype("Int64"),
        "is_catch": np.zeros(n_ok, dtype=bool),
        "true_label": pd.array(true_label[ok], dtype="Float64").astype("Int64"),
        "line": cat["line"][ok].astype(np.int64),
    })
    flagged = cat["is_catch"][ok]
    by_type = cat["catch_by_type"][ok].astype(bool)
    if m.is_catch is not None:
        df["is_catch"] = np.nan_to_num(flagged, nan=0.0).astype(bool) | by_type
        notes.append(f"catch trials: {int(df['is_catch'].sum())}, the rows marked in '{m.is_catch}'"
                     + (" or by a catch trial type" if by_type.any() else ""))
    elif by_type.any():
        df["is_catch"] = by_type
        notes.append(f"catch trials: {int(by_type.sum())}, the rows whose trial type names a catch, "
                     "sentinel or attention trial")
    else:
        notes.append("catch trials: none (no is_catch column and no catch trial type)")
    if m.true_label is not None and df["true_label"].notna().any():
        notes.append("true_label read as the ground truth of each trial; only marked catch trials "
                     "are scored for exclusion")
    unnumbered = {c.file for c in contexts if c.layout.mapping.trial_index is None}
    if len(unnumbered) == len(contexts):
        df["trial_index"] = df.groupby(["participant"], sort=False).cumcount().astype("Int64")
    elif unnumbered:  # several files, some without a trial index: number those rows in file order
        rows = np.flatnonzero(np.isin(file_of[ok], list(unnumbered)))
        part = df["participant"].iloc[rows]
        df.loc[df.index[rows], "trial_index"] = part.groupby(part, sort=False).cumcount().to_numpy()
    if unnumbered:
        repeats = int(df.duplicated(["participant", "stimulus"]).sum())
        notes.append("no trial_index column: trials numbered in file order within each participant")
        if repeats:
            notes.append(f"{repeats} trials repeat a participant–stimulus pair; without a trial "
                         "index they cannot be told apart from duplicated rows, all are kept")
    skipped = Counter()
    for ctx in contexts:
        skipped.update(ctx.skipped_types)
    if skipped:
        notes.append("not response trials, by trial type: "
                     + ", ".join(f"{t or '(empty)'} {c}" for t, c in skipped.most_common()))

    bad = ~ok
    pre = [(p.file, *r) for p in parts for r in p.rejected]
    rejected = pd.DataFrame({
        "file": np.concatenate([np.asarray([r[0] for r in pre], dtype=object), file_of[bad]]),
        "line": np.concatenate([np.asarray([r[1] for r in pre], dtype=np.int64), cat["line"][bad]]),
        "kind": np.concatenate([np.asarray([r[2] for r in pre], dtype=object), rej.kind[bad]]),
        "reason": np.concatenate([np.asarray([r[3] for r in pre], dtype=object), rej.reason[bad]]),
    })
    order = pd.Series(pd.Categorical(rejected["file"], categories=[c.file for c in contexts]))
    rejected = rejected.assign(_f=order.cat.codes.to_numpy()).sort_values(
        ["_f", "line"], kind="stable").drop(columns="_f").reset_index(drop=True)
    multi = len(contexts) > 1
    if multi:
        df["file"] = file_of[ok]
    else:
        rejected = rejected.drop(columns="file")
    rows_total = sum(c.rows_total for c in contexts)
    files = []
    for ctx in contexts:
        used_f = int((file_of[ok] == ctx.file).sum()) if multi else len(df)
        files.append({"file": ctx.file, "layout": ctx.layout.name, "rows_total": ctx.rows_total,
                      "rows_used": used_f, "rows_rejected": ctx.rows_total - used_f})
    synthetic = any(f for c in contexts for f in c.synthetic_flags) or any(
        "synthetic" in x.lower() for x in notes if x.startswith("comment:"))
    if synthetic:
        notes.append("SYNTHETIC data (simulated observers), not human responses")
    report = ValidationReport(
        source=source, layout=layout.name if len({c.layout.name for c in contexts}) == 1
        else "+".join(sorted({c.layout.name for c in contexts})),
        rows_total=rows_total, rows_used=len(df), rejected=rejected,
        n_participants=int(df["participant"].nunique()), n_stimuli=int(df["stimulus"].nunique()),
        encoding=raw_info.get("encoding", "n/a"), delimiter=raw_info.get("delimiter"),
        file_format=raw_info.get("file_format", "delimited text"), notes=notes,
        classes_from=classes_from, files=files + list(raw_info.get("failed_files", [])))
    if report.rows_used + report.rows_rejected != report.rows_total:
        raise RuntimeError(f"{source}: row accounting is off ({report.rows_used} used + "
                           f"{report.rows_rejected} set aside != {report.rows_total})")
    if report.rows_used == 0:
        raise PerceptLabError(
            f"{source}: no usable trials: all {report.rows_total} rows were set aside — "
            + report.top_reasons(), fix=fix_for(report))
    return TrialTable(df=df, report=report, classes=tuple(classes), synthetic=synthetic)
