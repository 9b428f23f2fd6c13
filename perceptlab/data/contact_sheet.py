"""A contact sheet of library stimuli: one PNG with a grid of images, each captioned with its target
pair (and, for controversial stimuli, the two classifiers' top classes), for looking at a run at a
glance or putting it in a report. numpy + Pillow only.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from perceptlab.data.library import StimulusLibrary
from perceptlab.data.library_records import Stimulus
from perceptlab.errors import PerceptLabError

_CAPTION_PX = 12
_GAP = 2
_BACKGROUND = 40


def select_stimuli(
    library: StimulusLibrary,
    *,
    status: str | None = None,
    passed: bool | None = None,
    mode: str | None = None,
    tag: str | None = None,
    limit: int | None = None,
) -> list[Stimulus]:
    """Records in insertion order, filtered by curation status, filter verdict, mode and tag."""
    recs = library.records(status=status, mode=mode, tag=tag)
    if passed is not None:
        recs = [r for r in recs if bool(r.passed) == passed]
    return recs[:limit] if limit is not None else recs


def caption(rec: Stimulus) -> str:
    """'3-5' for uncertainty, '3|5' for controversial (classifier 1 -> a, classifier 2 -> b)."""
    if rec.class_a is None or rec.class_b is None:
        return rec.id or ""
    sep = "|" if rec.mode == "controversial" else "-"
    return f"{rec.class_a}{sep}{rec.class_b}"


def contact_sheet(library: StimulusLibrary, records: list[Stimulus], cols: int = 10, scale: int = 2) -> Image.Image:
    """A grayscale image: ``records`` in rows of ``cols``, each tile ``28 * scale`` px with its caption."""
    if not records:
        raise PerceptLabError("no stimuli match", "loosen the filters (--status, --passed/--rejected, --mode, --tag)")
    if cols < 1 or scale < 1:
        raise PerceptLabError(f"cols = {cols}, scale = {scale}", "use at least 1 column and a scale of at least 1")
    side = 28 * scale
    tile_w, tile_h = side + _GAP, side + _CAPTION_PX + _GAP
    rows = -(-len(records) // cols)
    sheet = np.full((rows * tile_h + _GAP, min(cols, len(records)) * tile_w + _GAP), _BACKGROUND, dtype=np.uint8)
    for i, rec in enumerate(records):
        r, c = divmod(i, cols)
        img = np.kron(library.image(rec.id), np.ones((scale, scale), dtype=np.uint8))
        y, x = r * tile_h + _GAP, c * tile_w + _GAP
        sheet[y : y + side, x : x + side] = img
    out = Image.fromarray(sheet, mode="L")
    draw = ImageDraw.Draw(out)
    for i, rec in enumerate(records):
        r, c = divmod(i, cols)
        draw.text((c * tile_w + _GAP + 1, r * tile_h + _GAP + side), caption(rec), fill=220)
    return out


def write_contact_sheet(
    library: StimulusLibrary, out: str | os.PathLike[str], records: list[Stimulus], cols: int = 10, scale: int = 2
) -> Path:
    """Save the sheet as a PNG (the folder must exist; the file is written whole or not at all)."""
    out = Path(out)
    if out.suffix.lower() != ".png":
        raise PerceptLabError(f"{out} is not a .png file name", "name the output like sheet.png")
    if not out.parent.is_dir():
        raise PerceptLabError(f"folder {out.parent} does not exist", "create it first or choose another --out")
    image = contact_sheet(library, records, cols, scale)
    tmp = out.with_name(out.name + ".part")
    try:
        image.save(tmp, format="PNG")
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise PerceptLabError(f"cannot write {out} ({exc.strerror or exc})", "choose a writable --out") from None
    return out
