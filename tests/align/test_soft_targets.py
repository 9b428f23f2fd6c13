"""A soft-label set (per-stimulus targets given from outside, seeds/004) as the GroupNet's training targets."""

from dataclasses import replace

import numpy as np
import torch

from perceptlab.align.finetune import FinetuneRecipe, _trial_targets, finetune_group

from .conftest import run_gen

FAST = FinetuneRecipe(epochs=6, batch_size=32, trainable="all", group_mix=(1.0, 0.0), lr=3e-2)


def _soft(align_data) -> np.ndarray:
    """Half class 0, half class 1 for every stimulus: far from any participant's hard answers."""
    t = np.zeros((len(align_data.stimuli), 10))
    t[:, :2] = 0.5
    return t


def test_given_targets_replace_the_choice_distribution(align_data):
    soft = replace(align_data, soft_targets=_soft(align_data))
    train = soft.rows("train")
    got = _trial_targets(soft, train, train, FAST.replace(soft_labels=True)).numpy()
    assert np.allclose(got, 0.5 * (np.arange(10) < 2))
    hard = _trial_targets(soft, train, train, FAST).numpy()  # soft_labels off: one-hot answers as before
    assert np.allclose(hard.sum(1), 1) and set(np.unique(hard)) == {0.0, 1.0}
    assert soft.data_hash != align_data.data_hash  # a model trained on other targets is another data set


def test_groupnet_learns_the_soft_targets(align_data, mnist_fake, registry):
    soft = replace(align_data, soft_targets=_soft(align_data))
    x = align_data.image_tensor[torch.as_tensor(np.sort(align_data.rows("train")["sidx"].unique()))]

    def mass_on_01(data, recipe):
        _, res = run_gen(finetune_group("tinylr", data, mnist_fake, recipe, registry=registry))
        with torch.no_grad():
            return torch.softmax(res.model(x), 1)[:, :2].sum(1).mean().item(), res

    soft_mass, res = mass_on_01(soft, FAST.replace(soft_labels=True))
    hard_mass, _ = mass_on_01(align_data, FAST)
    assert res.best_epoch > 0  # validated against the soft targets too: training toward them helps
    assert soft_mass > hard_mass + 0.1, (soft_mass, hard_mass)
