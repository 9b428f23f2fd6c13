"""Train / validation / test split of a trial table *by stimulus* (torch-free).

Every stimulus goes to exactly one part, for every participant at once: a stimulus that one person
saw in training is never in anybody's validation or test trials. Each participant's own split is then
simply their trials on the stimuli of each part, so neither the group model nor the individual model
has seen any image of a participant's test trials, and the GroupNet/IndivNet comparison on those
trials is fair.

The assignment is a fixed function of the stimulus key and the seed: stimuli are ordered by
``sha256(f"{seed}:{key}")`` and the first ``round(test_fraction * S)`` go to test, the next
``round(val_fraction * S)`` to validation, the rest to training (at least one each when a fraction is
positive). Adding trials or participants later moves few stimuli, and the same table with the same
seed always gives the same split.

With ``use_is_train`` the table's own ``is_train`` column decides train vs held-out (a stimulus with
both true and false rows is refused as a leak); the held-out stimuli are split into validation and
test in the ratio of the two fractions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields

import numpy as np
import pandas as pd

from perceptlab.errors import PerceptLabError

PARTS = ("train", "val", "test")


@dataclass
class SplitSettings:
    """How trials are split (see the module docstring); round-trips through JSON."""

    val_fraction: float = 0.1
    test_fraction: float = 0.2
    seed: int = 0
    use_is_train: bool = False

    def validate(self) -> SplitSettings:
        for name in ("val_fraction", "test_fraction"):
            v = getattr(self, name)
            if not 0 <= v < 1:
                raise PerceptLabError(f"{name.replace('_', ' ')} = {v}", fix="use a fraction in [0, 1)")
        if self.val_fraction + self.test_fraction >= 1:
            raise PerceptLabError(
                f"validation + test fractions = {self.val_fraction + self.test_fraction:g} leave nothing to train on",
                fix="keep their sum below 1 (default 0.1 + 0.2)",
            )
        if self.val_fraction <= 0:
            raise PerceptLabError(
                "validation fraction is 0", fix="the best epoch is chosen on validation trials; use e.g. 0.1"
            )
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> SplitSettings:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def stimulus_rank_keys(stimuli: Sequence[str], seed: int) -> np.ndarray:
    """A uniform number in [0, 1) per stimulus key, fixed by key and seed."""
    out = np.empty(len(stimuli), dtype=np.float64)
    for i, key in enumerate(stimuli):
        digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
        out[i] = int.from_bytes(digest[:7], "big") / 2.0**56
    return out


def _counts(n: int, fractions: Sequence[float]) -> list[int]:
    counts = [max(1, int(round(f * n))) if f > 0 else 0 for f in fractions]
    if sum(counts) >= n:
        raise PerceptLabError(
            f"only {n} stimuli: too few to split into training, validation and test parts",
            fix="use more stimuli or smaller validation/test fractions",
        )
    return counts


def assign_stimuli(stimuli: Sequence[str], settings: SplitSettings | None = None) -> pd.Series:
    """Part ("train" / "val" / "test") of each distinct stimulus key, indexed by key."""
    settings = (settings or SplitSettings()).validate()
    keys = pd.Index(pd.unique(pd.Series([str(s) for s in stimuli], dtype=object)))
    n_test, n_val = _counts(len(keys), (settings.test_fraction, settings.val_fraction))
    order = np.argsort(stimulus_rank_keys(list(keys), settings.seed), kind="stable")
    part = np.full(len(keys), "train", dtype=object)
    part[order[:n_test]] = "test"
    part[order[n_test : n_test + n_val]] = "val"
    return pd.Series(part, index=keys, name="split")


def split_trials(trials: pd.DataFrame, settings: SplitSettings | None = None) -> pd.Series:
    """The part of every trial (aligned with ``trials.index``), decided by its stimulus."""
    settings = (settings or SplitSettings()).validate()
    stim = trials["stimulus"].astype(str)
    if not settings.use_is_train:
        parts = assign_stimuli(stim.to_numpy(), settings)
        return pd.Series(stim.map(parts).to_numpy(dtype=object), index=trials.index, name="split")
    if "is_train" not in trials.columns or trials["is_train"].isna().any():
        missing = int(trials["is_train"].isna().sum()) if "is_train" in trials.columns else len(trials)
        raise PerceptLabError(
            f"the split asks for the table's is_train column but {missing} trials have no is_train value",
            fix="use the default split by stimulus (leave out --use-is-train)",
        )
    flag = trials["is_train"].astype(bool)
    per_stim = flag.groupby(stim).agg(["min", "max"])
    mixed = per_stim.index[per_stim["min"] != per_stim["max"]]
    if len(mixed):
        raise PerceptLabError(
            f"is_train puts {len(mixed)} stimuli both in training and held-out trials (e.g. {mixed[0]!r}); "
            "a model would be tested on images it was trained on",
            fix="use the default split by stimulus (leave out --use-is-train)",
        )
    held = per_stim.index[~per_stim["max"].astype(bool)]
    heldout_total = settings.val_fraction + settings.test_fraction
    parts = pd.Series("train", index=per_stim.index, dtype=object)
    if len(held):
        if len(held) < 2:
            raise PerceptLabError("is_train leaves a single held-out stimulus", fix="use the default split by stimulus")
        test_share = settings.test_fraction / heldout_total
        n_test = min(len(held) - 1, max(1, int(round(test_share * len(held))))) if test_share > 0 else 0
        order = np.argsort(stimulus_rank_keys(list(held), settings.seed), kind="stable")
        sub = np.full(len(held), "val", dtype=object)
        sub[order[:n_test]] = "test"
        parts.loc[held] = sub
    else:
        raise PerceptLabError(
            "is_train marks every trial as training; nothing is left to validate on",
            fix="use the default split by stimulus (leave out --use-is-train)",
        )
    return pd.Series(stim.map(parts).to_numpy(dtype=object), index=trials.index, name="split")


def check_no_leak(trials: pd.DataFrame, column: str = "split") -> None:
    """Raise if any stimulus appears in more than one part."""
    n_parts = trials.groupby(trials["stimulus"].astype(str))[column].nunique()
    leaking = n_parts.index[n_parts > 1]
    if len(leaking):
        raise PerceptLabError(
            f"{len(leaking)} stimuli appear in more than one of train/val/test (e.g. {leaking[0]!r})",
            fix="split by stimulus (perceptlab.align.split.split_trials)",
        )


def split_summary(trials: pd.DataFrame, column: str = "split") -> dict:
    """Trials and stimuli per part, and the smallest per-participant count of each part."""
    out: dict = {}
    for part in PARTS:
        rows = trials[trials[column] == part]
        per_person = rows.groupby("participant").size().reindex(trials["participant"].unique(), fill_value=0)
        out[part] = {
            "trials": int(len(rows)),
            "stimuli": int(rows["stimulus"].nunique()),
            "min_trials_per_participant": int(per_person.min()) if len(per_person) else 0,
        }
    return out
