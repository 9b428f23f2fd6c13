import numpy as np
import pytest

from perceptlab.errors import PerceptLabError


def test_mix_follows_the_convention_lambda_is_share_of_class_b(builtin_mnist):
    from perceptlab.data.mixup import make_mixup, mix

    a = np.full((28, 28), 200, np.uint8)
    b = np.zeros((28, 28), np.uint8)
    assert mix(a, b, 0.0).max() == 200 and mix(a, b, 1.0).max() == 0 and mix(a, b, 0.25)[0, 0] == 150
    ms = make_mixup(builtin_mnist, [(3, 8)], per_pair=2, lambdas=(0, 0.5, 1), seed=0)
    assert len(ms) == 6 and set(ms.table["pair"]) == {"3-8-00", "3-8-01"}
    row = ms.table.iloc[0]
    assert builtin_mnist.labels[row.source_a] == 3 and builtin_mnist.labels[row.source_b] == 8
    assert builtin_mnist.holdout[row.source_a] and builtin_mnist.holdout[row.source_b]  # default: hold-out digits
    src = np.rint((builtin_mnist.images[row.source_a, 0] + 1) * 127.5)
    assert np.abs(ms.images[0].astype(int) - src).max() <= 1  # lambda 0 = the class_a digit


def test_library_round_trip_and_errors(mixup_lib, builtin_mnist):
    from perceptlab.data.mixup import (
        check_lambdas,
        make_mixup,
        mixup_table,
        parse_pairs,
    )

    table = mixup_table(mixup_lib)
    assert len(table) == 20 and set(table["lambda"]) == {0.0, 0.25, 0.5, 0.75, 1.0}
    rec = mixup_lib.get(table["stimulus"].iloc[0])
    assert rec.mode == "mixup" and "mixup" in rec.tags and any(t.startswith("mixup-pair:") for t in rec.tags)
    assert rec.settings["mixup"]["convention"].startswith("x = (1 - lambda)")
    assert parse_pairs("3-8, 1-7") == [(3, 8), (1, 7)]
    with pytest.raises(PerceptLabError, match="two different classes"):
        parse_pairs("3-3")
    with pytest.raises(PerceptLabError, match="in \\[0, 1\\]"):
        check_lambdas([0.5, 1.5])
    with pytest.raises(PerceptLabError, match="lower --per-pair"):
        make_mixup(builtin_mnist, [(3, 8)], per_pair=500)


def test_zoo_probabilities_are_stored(tmp_path, builtin_mnist):
    from perceptlab.data.library import StimulusLibrary
    from perceptlab.data.mixup import add_to_library, make_mixup

    ms = make_mixup(builtin_mnist, [(2, 5)], per_pair=1, lambdas=(0, 1))
    probs = {"m1": np.tile(np.eye(10)[2], (2, 1))}
    with StimulusLibrary.create(tmp_path / "l") as lib:
        ids = add_to_library(lib, ms, probs)
        rec = lib.get(ids[0])
    assert rec.classifier == "m1" and rec.p_a == 1.0 and rec.p_b == 0.0 and len(rec.probs["m1"]) == 10
