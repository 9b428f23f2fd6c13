"""Trials matched to their images, ready for fine-tuning: :class:`AlignData`.

Images are read once into one uint8 array (one row per distinct stimulus) and every trial points at
its row (``sidx``); training and evaluation index tensors, never loop over samples. Catch trials
(attention checks on real digits) are left out unless asked for, and every left-out trial is counted
in ``notes`` — nothing is dropped silently. Stimuli that match no image are an error unless
``skip_unmatched`` is set (then their trials are counted and dropped).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from perceptlab import CLASSES
from perceptlab.align.split import SplitSettings, check_no_leak, split_summary, split_trials
from perceptlab.data.trials import TrialTable, load_manifest, load_stimulus_images, resolve_stimuli
from perceptlab.errors import PerceptLabError

REQUIRED = ("participant", "stimulus", "response")


@dataclass
class AlignData:
    """Trials (``participant, stimulus, response, sidx, split`` + any canonical columns), the distinct
    stimulus keys in image-row order, and their images (uint8 (S, 28, 28))."""

    trials: pd.DataFrame
    stimuli: pd.Index
    images: np.ndarray
    classes: tuple[str, ...] = CLASSES
    source: str = ""
    split_settings: SplitSettings = field(default_factory=SplitSettings)
    notes: list[str] = field(default_factory=list)
    # (S, C) per-stimulus training targets given from outside (a soft-label set, seeds/004); used instead
    # of the choice distribution when the recipe asks for soft labels
    soft_targets: np.ndarray | None = None

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def participants(self) -> list[str]:
        return [str(p) for p in pd.unique(self.trials["participant"])]

    @cached_property
    def image_hash(self) -> str:
        return hashlib.sha256(np.ascontiguousarray(self.images).tobytes()).hexdigest()[:16]

    @cached_property
    def data_hash(self) -> str:
        """A short hash of the trials (participant, stimulus, response, split) and the images."""
        h = hashlib.sha256()
        cols = self.trials[["participant", "stimulus", "response", "split"]].astype(str)
        for col in cols.columns:
            h.update("\x1f".join(cols[col].tolist()).encode())
            h.update(b"\x1e")
        h.update(self.image_hash.encode())
        if self.soft_targets is not None:
            h.update(np.ascontiguousarray(self.soft_targets, dtype=np.float32).tobytes())
        return h.hexdigest()[:16]

    @cached_property
    def image_tensor(self) -> torch.Tensor:
        """All stimulus images as float in [-1, 1], (S, 1, 28, 28), computed once."""
        x = torch.from_numpy(np.ascontiguousarray(self.images)).float().div_(127.5).sub_(1.0)
        return x.reshape(-1, 1, 28, 28)

    def check_participant(self, participant: str) -> str:
        pid = str(participant)
        if pid not in set(self.participants):
            shown = ", ".join(self.participants[:8]) + (", …" if len(self.participants) > 8 else "")
            raise PerceptLabError(f"participant {pid!r} is not in the trial table", fix=f"choose one of: {shown}")
        return pid

    def rows(self, part: str | None = None, participant: str | Sequence[str] | None = None) -> pd.DataFrame:
        """Trials of one part (train/val/test; None = all) and of one or several participants."""
        t = self.trials
        mask = np.ones(len(t), dtype=bool)
        if part is not None:
            mask &= (t["split"] == part).to_numpy()
        if participant is not None:
            ids = [participant] if isinstance(participant, str) else list(participant)
            mask &= t["participant"].isin([str(p) for p in ids]).to_numpy()
        return t[mask]

    def choice_counts(self, rows: pd.DataFrame) -> np.ndarray:
        """Response counts (S, C) per stimulus row from the given trials."""
        flat = np.bincount(
            rows["sidx"].to_numpy(np.int64) * self.n_classes + rows["response"].to_numpy(np.int64),
            minlength=len(self.stimuli) * self.n_classes,
        )
        return flat.reshape(len(self.stimuli), self.n_classes)

    def summary(self) -> dict:
        return {
            "source": self.source,
            "trials": int(len(self.trials)),
            "participants": len(self.participants),
            "stimuli": int(len(self.stimuli)),
            "data_hash": self.data_hash,
            "split_settings": self.split_settings.to_dict(),
            "split": split_summary(self.trials),
            "notes": list(self.notes),
        }


def _canonical_frame(table: TrialTable | pd.DataFrame) -> tuple[pd.DataFrame, tuple[str, ...], str]:
    if isinstance(table, TrialTable):
        return table.df.copy(), tuple(table.classes), table.report.source
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"expected a TrialTable or a DataFrame, got {type(table).__name__}")
    missing = [c for c in REQUIRED if c not in table.columns]
    if missing:
        raise PerceptLabError(
            f"the trial table has no column(s) {', '.join(missing)}",
            fix="load it with perceptlab.data.trials.load_trials (it maps known layouts) or rename the columns",
        )
    return table.copy(), CLASSES, "<DataFrame>"


def build_align_data(
    table: TrialTable | pd.DataFrame,
    images: np.ndarray | None = None,
    stimuli: Sequence[str] | None = None,
    *,
    library: str | Path | None = None,
    images_dir: str | Path | None = None,
    split: SplitSettings | None = None,
    include_catch: bool = False,
    skip_unmatched: bool = False,
) -> AlignData:
    """Match a trial table to its images and split it by stimulus.

    Images come either as arrays (``images`` uint8 (S, 28, 28) with ``stimuli`` naming their rows) or
    from a stimulus library folder (``library``) and/or an image folder (``images_dir``), matched as
    :func:`perceptlab.data.trials.resolve_stimuli` does.
    """
    split = (split or SplitSettings()).validate()
    df, classes, source = _canonical_frame(table)
    notes: list[str] = []
    df["participant"] = df["participant"].astype(str)
    df["stimulus"] = df["stimulus"].astype(str)
    response = pd.to_numeric(df["response"], errors="coerce")
    if response.isna().any() or (response < 0).any() or (response >= len(classes)).any():
        bad = int((response.isna() | (response < 0) | (response >= len(classes))).sum())
        raise PerceptLabError(
            f"{bad} trials have a response that is not a class index 0..{len(classes) - 1}",
            fix="load the table with perceptlab.data.trials.load_trials, which maps class names to indices",
        )
    df["response"] = response.astype(np.int64)
    if "is_catch" in df.columns and not include_catch:
        catch = df["is_catch"].fillna(False).astype(bool)
        if catch.any():
            notes.append(f"{int(catch.sum())} catch trials left out (attention checks, not stimuli)")
            df = df[~catch.to_numpy()]
    if df.empty:
        raise PerceptLabError(f"{source}: no trials left to fine-tune on")

    keys = pd.Index(pd.unique(df["stimulus"].to_numpy(dtype=object)))
    if images is not None:
        if stimuli is None:
            raise ValueError("pass stimuli= naming the rows of images")
        arr = np.asarray(images)
        if arr.ndim != 3 or arr.shape[1:] != (28, 28) or arr.dtype != np.uint8:
            raise PerceptLabError(f"images have shape {arr.shape} and dtype {arr.dtype}", fix="pass uint8 (N, 28, 28)")
        given = pd.Index([str(s) for s in stimuli])
        if len(given) != len(arr):
            raise ValueError(f"{len(given)} stimulus keys for {len(arr)} images")
        if given.has_duplicates:
            raise PerceptLabError("the stimulus keys of the images repeat", fix="give every image its own key")
        pos = given.get_indexer(keys)
        unmatched = [str(k) for k, p in zip(keys, pos) if p < 0]
        matched_keys = keys[pos >= 0]
        stim_images = arr[pos[pos >= 0]]
        where = "the given images"
    else:
        if library is None and images_dir is None:
            raise PerceptLabError("no images for the trials", fix="pass --library DIR or --images DIR")
        manifest = load_manifest(library) if library is not None else None
        index = resolve_stimuli(list(keys), manifest=manifest, image_dir=images_dir)
        unmatched = index.unmatched + index.ambiguous
        matched_keys = keys[keys.isin(index.table.index)]
        stim_images = load_stimulus_images(index.table.loc[matched_keys, "path"].tolist())
        where = index.source
    if unmatched:
        lost = int(df["stimulus"].isin(unmatched).sum())
        shown = ", ".join(unmatched[:3]) + (", …" if len(unmatched) > 3 else "")
        if not skip_unmatched:
            raise PerceptLabError(
                f"{len(unmatched)} stimuli of the trial table ({lost} trials) have no image in {where} (e.g. {shown})",
                fix="point --library/--images at the folder that holds them, "
                "or pass --skip-unmatched to leave those trials out",
            )
        notes.append(f"{lost} trials on {len(unmatched)} stimuli without an image left out (e.g. {shown})")
        df = df[~df["stimulus"].isin(unmatched).to_numpy()]
        if df.empty:
            raise PerceptLabError("no trial has a matching image", fix="check --library/--images")
    stim_index = pd.Index(matched_keys, name="stimulus")
    df = df.reset_index(drop=True)
    df["sidx"] = stim_index.get_indexer(df["stimulus"]).astype(np.int64)
    df["split"] = split_trials(df, split).to_numpy()
    check_no_leak(df)
    return AlignData(
        trials=df,
        stimuli=stim_index,
        images=np.ascontiguousarray(stim_images, dtype=np.uint8),
        classes=tuple(classes),
        source=source,
        split_settings=split,
        notes=notes,
    )
