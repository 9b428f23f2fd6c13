"""Catch trials: one meaning of the catch rate (a share of all trials) and real held-out digits."""

import numpy as np
import pytest

from perceptlab.data.catch import _builtin, catch_count, pick_catch_digits
from perceptlab.errors import PerceptLabError


def test_the_catch_rate_is_a_share_of_all_trials():
    assert catch_count(90, 0.1) == 10  # 10 of 100 trials
    assert catch_count(9, 0.5) == 9 and catch_count(3, 0.01) == 1 and catch_count(0, 0.2) == 0
    assert catch_count(50, 0) == 0
    for bad in (1.0, -0.1, True, "0.1"):
        with pytest.raises(PerceptLabError, match="share of all trials"):
            catch_count(10, bad)


def test_catch_digits_are_held_out_balanced_distinct_and_seeded():
    classes = [str(c) for c in range(10)]
    picks = pick_catch_digits(25, classes, seed=3)
    mnist = _builtin()
    assert len(picks) == 25 and len({i for i, _, _ in picks}) == 25
    counts = np.bincount([int(label) for _, label, _ in picks], minlength=10)
    assert counts.min() >= 2 and counts.max() <= 3  # balanced over the classes
    for index, label, pixels in picks:
        assert mnist.holdout[index] and mnist.labels[index] == int(label) and pixels.dtype == np.uint8
    assert [i for i, _, _ in pick_catch_digits(25, classes, seed=3)] == [i for i, _, _ in picks]
    assert [i for i, _, _ in pick_catch_digits(25, classes, seed=4)] != [i for i, _, _ in picks]
    assert {label for _, label, _ in pick_catch_digits(6, ["3", "5"], seed=0)} == {"3", "5"}
    with pytest.raises(PerceptLabError, match="real MNIST digits"):
        pick_catch_digits(2, ["cat", "dog"], seed=0)
