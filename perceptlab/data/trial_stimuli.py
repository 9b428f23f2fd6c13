"""Stimuli of a trial table: a library's manifest, image folders, and matching keys to them.

:func:`load_manifest` reads a stimulus library's ``manifest.csv``; :func:`resolve_stimuli` matches the
table's stimulus keys to library entries or image files by id, path, file name or file stem.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from perceptlab.errors import PerceptLabError

if TYPE_CHECKING:
    from perceptlab.data.trials import TrialTable

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff", ".svg")
_MANIFEST_COLUMNS = ("stimulus_id", "file", "mode", "class_a", "class_b", "classifier",
                     "classifier2", "gamma", "steps", "resample", "seed", "p_a", "p_b", "judge",
                     "passed", "status")




def library_stimuli(library_dir: str | Path) -> pd.DataFrame:
    """The stimuli of a library as a manifest frame (with ``path``), read from ``library.sqlite`` —
    the source of truth — when the folder has one; a hand-edited ``manifest.csv`` is not used then.
    A folder with only ``manifest.csv`` (an export) is read from it."""
    from perceptlab.data.library import DB_NAME, StimulusLibrary  # noqa: PLC0415

    library_dir = Path(library_dir)
    if not (library_dir / DB_NAME).exists():
        return load_manifest(library_dir)
    with StimulusLibrary.open(library_dir) as lib:
        manifest = lib.to_dataframe()
        images = lib.images_dir
    manifest["stimulus_id"] = manifest["stimulus_id"].astype(str)
    manifest["file"] = manifest["file"].astype(str)
    manifest["path"] = [str(images / f"{i}.png") for i in manifest["stimulus_id"]]
    return manifest


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
    catch_only: int = 0  # stimuli seen only on catch trials (real digits, not library stimuli): not looked up

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
        if self.catch_only:
            out += f"; {self.catch_only} catch-trial images set aside"
        return out

    def to_dict(self) -> dict:
        return {"source": self.source, "matched": self.n_matched,
                "unmatched": len(self.unmatched), "unmatched_examples": self.unmatched[:20],
                "ambiguous": len(self.ambiguous), "catch_only": self.catch_only}


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
    from perceptlab.data.trials import TrialTable  # noqa: PLC0415  (trials re-exports this module)

    frame = table.df if isinstance(table, TrialTable) else table if isinstance(table, pd.DataFrame) else None
    raw_keys = frame["stimulus"] if frame is not None else pd.Series(list(table), dtype=object)
    remaining = pd.Series(pd.unique(raw_keys.astype(str).to_numpy(dtype=object)), dtype=object)
    catch_only = 0
    if frame is not None and "is_catch" in frame.columns:  # catch digits are no library stimuli
        catch = frame["is_catch"].fillna(False).astype(bool).to_numpy()
        keys = raw_keys.astype(str)
        only = set(keys[catch]) - set(keys[~catch])
        catch_only = len(only)
        remaining = remaining[~remaining.isin(only)].reset_index(drop=True)
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
        catch_only=catch_only,
    )


def load_stimulus_images(paths: Sequence[str | Path]) -> np.ndarray:
    """Read stimulus images as an (N, 28, 28) uint8 array (white digit on black)."""
    from perceptlab.data.images import SIZE, read_png  # noqa: PLC0415  (Pillow only when needed)

    if not len(paths):
        return np.zeros((0, SIZE, SIZE), dtype=np.uint8)
    return np.stack([read_png(p) for p in paths])
