"""Tiny mixup fixtures: two category pairs, two source pairs each, five lambdas (20 stimuli)."""

from __future__ import annotations

import pytest

LAMBDAS = (0.0, 0.25, 0.5, 0.75, 1.0)


@pytest.fixture()
def mixup_lib(tmp_path, builtin_mnist):
    from perceptlab.data.library import StimulusLibrary
    from perceptlab.data.mixup import add_to_library, make_mixup

    mixset = make_mixup(builtin_mnist, [(3, 8), (1, 7)], per_pair=2, lambdas=LAMBDAS, seed=1)
    lib = StimulusLibrary.create(tmp_path / "lib")
    add_to_library(lib, mixset)
    yield lib
    lib.close()


@pytest.fixture()
def mixup_design(mixup_lib, tmp_path):
    from perceptlab.experiment.mixup import write_design

    return write_design(mixup_lib, tmp_path / "design", kinds=("pick", "slider", "choice"), seed=3)
