"""Rules applied over the whole of a trial table, stated once: the RT unit (seconds or milliseconds,
inferred from the values) and the fix suggested when no row of a file can be used."""

from __future__ import annotations

import numpy as np

from perceptlab.data.trial_report import ValidationReport

SECONDS_BELOW = 20.0
"""An rt column whose median positive value is below this is in seconds (no one answers in 20 ms)."""


def rt_unit_factor(unit: str, rt: np.ndarray, col: str, notes: list[str]) -> float:
    """The factor to milliseconds, by the stated rule when ``unit`` is 'auto'."""
    with np.errstate(invalid="ignore"):
        pos = rt[np.isfinite(rt) & (rt > 0)]
    median = float(np.median(pos)) if len(pos) else float("nan")
    looks_s = bool(len(pos)) and median < SECONDS_BELOW
    if unit == "s":
        notes.append(f"rt from '{col}' converted from seconds to milliseconds")
        return 1000.0
    if unit == "auto" and looks_s:
        notes.append(f"WARNING: rt column '{col}' read as SECONDS and converted to milliseconds: its "
                     f"median is {median:g} (rule: a median below {SECONDS_BELOW:g} means seconds)")
        return 1000.0
    if looks_s:
        notes.append(f"WARNING: rt column '{col}' is declared in milliseconds but its median is "
                     f"{median:g} ms; if it holds seconds, set the RT unit to seconds")
    elif unit == "auto" and len(pos):
        notes.append(f"rt column '{col}' read as milliseconds (median {median:g}; rule: a median "
                     f"below {SECONDS_BELOW:g} would mean seconds)")
    return 1.0


def fix_for(report: ValidationReport) -> str:
    kinds = report.rejected_by_kind()
    top = next(iter(kinds), "")
    if "outside the classes" in top:
        return "give the class names (CLI --classes, the Data panel's 'Classes' box)"
    if top == "not a response trial":
        return "check that the file holds the response trials (trial_type names them)"
    if "rt" in top:
        return "check the rt column (unit, decimal separator), or map another column"
    return "correct the rows listed, or map the columns explicitly (a column mapping)"
