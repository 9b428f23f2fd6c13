"""The split by stimulus never leaks a stimulus between train, validation and test."""

import numpy as np
import pandas as pd
import pytest

from perceptlab.align.split import SplitSettings, assign_stimuli, check_no_leak, split_trials
from perceptlab.errors import PerceptLabError


def _random_table(rng, n_stimuli, n_participants, per_participant):
    rows = []
    keys = [f"img_{rng.integers(1e9)}_{i}.png" for i in range(n_stimuli)]
    for p in range(n_participants):
        seen = rng.choice(n_stimuli, size=min(per_participant, n_stimuli), replace=False)
        reps = rng.integers(1, 3, len(seen))  # some stimuli seen twice by the same person
        for s, r in zip(seen, reps):
            rows += [{"participant": f"p{p}", "stimulus": keys[s], "response": int(rng.integers(10))}] * int(r)
    return pd.DataFrame(rows)


@pytest.mark.parametrize("seed", range(8))
def test_no_stimulus_in_two_parts(seed):
    rng = np.random.default_rng(seed)
    table = _random_table(rng, int(rng.integers(20, 200)), int(rng.integers(2, 12)), int(rng.integers(5, 80)))
    settings = SplitSettings(
        val_fraction=float(rng.uniform(0.05, 0.3)), test_fraction=float(rng.uniform(0.05, 0.3)), seed=seed
    )
    table["split"] = split_trials(table, settings)
    check_no_leak(table)
    parts = table.groupby("stimulus")["split"].nunique()
    assert (parts == 1).all()
    for _, person in table.groupby("participant"):  # per participant too
        sets = {p: set(person.loc[person["split"] == p, "stimulus"]) for p in ("train", "val", "test")}
        assert (
            not (sets["train"] & sets["val"])
            and not (sets["train"] & sets["test"])
            and not (sets["val"] & sets["test"])
        )
    counts = assign_stimuli(table["stimulus"], settings).value_counts()
    n = table["stimulus"].nunique()
    assert counts["test"] == max(1, round(settings.test_fraction * n))
    assert counts["val"] == max(1, round(settings.val_fraction * n))


def test_split_is_fixed_by_seed_and_stable_when_stimuli_are_added():
    keys = [f"s{i}" for i in range(300)]
    a = assign_stimuli(keys, SplitSettings(seed=3))
    assert a.equals(assign_stimuli(list(reversed(keys)), SplitSettings(seed=3)).loc[a.index])
    assert not a.equals(assign_stimuli(keys, SplitSettings(seed=4)))
    b = assign_stimuli(keys + [f"t{i}" for i in range(10)], SplitSettings(seed=3))
    assert (a == b.loc[a.index]).mean() > 0.9


def test_is_train_split_refuses_a_leaking_column():
    df = pd.DataFrame(
        {
            "participant": ["a", "b", "a", "b"],
            "stimulus": ["x", "x", "y", "z"],
            "response": [1, 2, 3, 4],
            "is_train": [True, False, True, False],
        }
    )
    with pytest.raises(PerceptLabError, match="both in training and held-out"):
        split_trials(df, SplitSettings(use_is_train=True))


def test_too_few_stimuli_and_bad_fractions():
    with pytest.raises(PerceptLabError, match="too few"):
        assign_stimuli(["a", "b"], SplitSettings())
    with pytest.raises(PerceptLabError, match="leave nothing"):
        SplitSettings(val_fraction=0.5, test_fraction=0.5).validate()
