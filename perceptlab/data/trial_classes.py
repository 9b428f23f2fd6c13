"""The class set of a trial table: given, or inferred from the file, and responses mapped onto it.

Rules (the report states which one applied):

1. Classes given (``classes=`` / CLI ``--classes`` / the Data panel's *Classes* box) are used as given,
   in that order; responses may be class names (case-insensitive) or class indices.
2. Otherwise, when at least half the distinct response and ``true_label`` values are numbers, the
   responses are class indices and the classes are the digits ``0``..``9`` (the MNIST case).
3. Otherwise the responses are class names: the classes are the distinct names of the responses and
   the ``true_label`` column, in alphabetical order (CIFAR-10's order, for its ten names). More than
   :data:`MAX_INFERRED_CLASSES` names, or a single one, is refused: the classes must then be given.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from perceptlab import CLASSES
from perceptlab.errors import PerceptLabError

MAX_INFERRED_CLASSES = 60
CLASSES_FIX = ("give the class names in class-index order (CLI: --classes a,b,c; app: the Data panel's "
               "'Classes' box)")


def resolve_classes(classes: Sequence[str] | None) -> tuple[str, ...] | None:
    """Check given class names (None: infer them from the file)."""
    if classes is None:
        return None
    if isinstance(classes, str):
        classes = classes.split(",")
    classes = tuple(str(c).strip() for c in classes)
    if len(classes) < 2:
        raise PerceptLabError(f"need at least two classes, got {list(classes)}", fix=CLASSES_FIX)
    if any(not c for c in classes):
        raise PerceptLabError(f"the class list {list(classes)} has an empty class name", fix=CLASSES_FIX)
    if len({c.lower() for c in classes}) != len(classes):
        raise PerceptLabError(f"class names must be distinct, got {list(classes)}", fix=CLASSES_FIX)
    return classes


def infer_classes(values: pd.Series, source: str) -> tuple[tuple[str, ...], str]:
    """Classes and how they were decided from the distinct response/true_label values."""
    values = pd.Series(pd.unique(values.astype(str).str.strip()), dtype=object)
    values = values[values != ""]
    if values.empty:
        return CLASSES, "the default digits 0-9 (no responses to infer them from)"
    index = np.isfinite(pd.to_numeric(values, errors="coerce").to_numpy(dtype=float))
    if index.mean() >= 0.5:
        return CLASSES, "the default digits 0-9 (the responses are class indices)"
    names = values[~index]
    by_lower: dict[str, str] = {}
    for name in names:
        by_lower.setdefault(name.lower(), name)
    found = sorted(by_lower.values(), key=str.lower)
    if len(found) > MAX_INFERRED_CLASSES:
        shown = ", ".join(found[:8])
        raise PerceptLabError(
            f"{source}: the responses hold {len(found)} distinct names ({shown}, …): too many to be a "
            f"class set (at most {MAX_INFERRED_CLASSES} are inferred)", fix=CLASSES_FIX)
    if len(found) < 2:
        raise PerceptLabError(
            f"{source}: the responses name a single class ({', '.join(found)}); a class set needs two "
            "or more", fix=CLASSES_FIX)
    return tuple(found), (f"the file: {len(found)} class names in the responses"
                          " and true_label, in alphabetical order")


def class_index(values: pd.Series, classes: Sequence[str], index_first: bool) -> np.ndarray:
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
