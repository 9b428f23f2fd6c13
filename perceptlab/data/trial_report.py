"""What loading trial files produced: the :class:`ValidationReport` (row accounting, set-aside rows by
reason with line numbers, notes) and the :class:`TrialTable` (canonical trials + report + classes)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from perceptlab import CLASSES


@dataclass
class ValidationReport:
    """What loading did: layout, row accounting, set-aside rows (``rejected``) and notes.

    ``rows_used + rows_rejected == rows_total`` always. With several files ``rejected`` has a
    ``file`` column and ``files`` lists each file's own accounting.
    """

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
    classes_from: str = "the default digits 0-9"
    files: list[dict] = field(default_factory=list)

    @property
    def rows_rejected(self) -> int:
        return len(self.rejected)

    def rejected_by_kind(self) -> dict[str, int]:
        """Number of set-aside rows per kind of problem, most frequent first."""
        return {str(k): int(v) for k, v in self.rejected["kind"].value_counts().items()}

    def top_reasons(self, n: int = 3) -> str:
        """The most frequent kinds with counts and first lines, for one-line error messages."""
        out = []
        for kind, count in list(self.rejected_by_kind().items())[:n]:
            rows = self.rejected.loc[self.rejected["kind"] == kind]
            first = rows.iloc[0]
            where = (f"{first['file']}:" if "file" in rows.columns else "line ") + str(first["line"])
            out.append(f"{count} × {kind} (first at {where}: {first['reason']})")
        return "; ".join(out)

    def summary(self, max_lines: int = 8) -> str:
        """A short human-readable account of the load."""
        fmt = (self.file_format if self.delimiter is None
               else {"\t": "tab-separated"}.get(self.delimiter, f"'{self.delimiter}'-separated"))
        out = [
            f"{self.source}: {self.layout} layout, {fmt}, {self.encoding}",
            f"  rows: {self.rows_total} total, {self.rows_used} used, {self.rows_rejected} set aside",
        ]
        for kind, count in self.rejected_by_kind().items():
            rows = self.rejected.loc[self.rejected["kind"] == kind].head(max_lines)
            if "file" in rows.columns:
                where = [f"{f}:{ln}" for f, ln in zip(rows["file"], rows["line"], strict=True)]
            else:
                where = [str(ln) for ln in rows["line"]]
            more = ", …" if count > max_lines else ""
            out.append(f"    {count} × {kind} (line {', '.join(where)}{more})")
        out.append(f"  participants: {self.n_participants}, stimuli: {self.n_stimuli}")
        out.append(f"  classes from {self.classes_from}")
        for f in self.files[:max_lines * 4] if len(self.files) > 1 else ():
            out.append(f"  file {f['file']}: {f['rows_total']} rows, {f['rows_used']} used, "
                       f"{f['rows_rejected']} set aside" + (f" — {f['error']}" if f.get("error") else ""))
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
            "classes_from": self.classes_from,
            "files": list(self.files),
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
