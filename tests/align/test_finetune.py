"""GroupNet / IndivNet fine-tuning: best epoch, soft labels, reload, cancel, the learned bias."""

import numpy as np
import pandas as pd
import pytest
import torch

from perceptlab.align.datasets import build_align_data
from perceptlab.align.finetune import FinetuneRecipe, _trial_targets, finetune_group, finetune_individual
from perceptlab.align.layers import split_model
from perceptlab.align.pipeline import AlignJob, run_alignment
from perceptlab.align.store import load_model, save_model
from perceptlab.engine.classifiers import ARCHITECTURES, build
from perceptlab.errors import PerceptLabError

from .conftest import make_stimuli, make_trials, run_gen

FAST = FinetuneRecipe(epochs=3, batch_size=32, trainable="all")


def _val_loss(model, data, participant=None):
    rows = data.rows("val", participant)
    x = data.image_tensor[torch.tensor(rows["sidx"].to_numpy())]
    with torch.no_grad():
        return torch.nn.functional.cross_entropy(model(x), torch.tensor(rows["response"].to_numpy())).item()


def test_recipe_round_trips_through_json():
    r = FinetuneRecipe(epochs=5, soft_labels=True, indiv_mix=(3, 1, 0), trainable="head", indiv_trainable="all")
    assert FinetuneRecipe.from_json(r.to_json()) == r
    assert FinetuneRecipe().epochs == 16 and FinetuneRecipe().lr == 1e-3 and FinetuneRecipe().batch_size == 128
    with pytest.raises(PerceptLabError, match="unknown recipe field"):
        FinetuneRecipe.from_dict({"epoch": 3})
    with pytest.raises(PerceptLabError):
        FinetuneRecipe(group_mix=(0, 1)).validate()


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
@pytest.mark.parametrize("trainable", ["head", "readout", "calibration"])
def test_trunk_and_top_compose_to_the_model(arch, trainable):
    torch.manual_seed(0)
    model = build(arch, {"depth": 1, "dim": 32, "heads": 2} if arch == "vit" else {}).eval()
    trunk, top = split_model(model, arch, trainable)
    x = torch.rand(3, 1, 28, 28) * 2 - 1
    with torch.no_grad():
        y = top(trunk(x)) if trunk is not None else top(x)
        assert torch.allclose(y, model(x), atol=1e-5)
    if trainable == "calibration":
        with torch.no_grad():
            top.offset.normal_()
            top.log_scale.fill_(0.3)
            y = top(trunk(x))
            top.fold()
            assert torch.allclose(model(x), y, atol=1e-4)  # folded into the final layer
    else:
        assert {id(p) for p in top.parameters()} <= {id(p) for p in model.parameters()}


def test_group_keeps_the_best_epoch(align_data, mnist_fake, registry):
    recipe = FinetuneRecipe(epochs=4, batch_size=16, lr=0.05, trainable="all")  # a large lr: val loss wanders
    records, res = run_gen(finetune_group("tinylr", align_data, mnist_fake, recipe, registry=registry))
    epochs = [r for r in records if r["kind"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [0, 1, 2, 3, 4]
    losses = [h["val_loss"] for h in res.history]
    assert res.best_epoch == int(np.argmin(losses))
    assert _val_loss(res.model, align_data) == pytest.approx(losses[res.best_epoch], rel=1e-4)
    assert res.participants == align_data.participants and res.level == "group"
    assert res.counts["per_batch"] == {"trials": 8, "mnist": 8}


def test_head_mode_trains_only_the_head_and_caches_features(align_data, mnist_fake, registry):
    from perceptlab.align.features import FeatureCache

    cache = FeatureCache()
    start = registry.load("tinymlp").state_dict()
    recipe = FinetuneRecipe(epochs=2, batch_size=32, trainable="head", indiv_trainable="head")
    records, res = run_gen(finetune_group("tinymlp", align_data, mnist_fake, recipe, registry=registry, cache=cache))
    assert any(r["kind"] == "features" for r in records)
    after = res.model.state_dict()
    assert torch.equal(after["net.1.weight"], start["net.1.weight"])  # trunk frozen
    assert not torch.equal(after["net.7.weight"], start["net.7.weight"]) or res.best_epoch == 0
    records2, _ = run_gen(
        finetune_individual(res, align_data, "P1", mnist_fake, recipe, registry=registry, cache=cache)
    )
    assert not any(r["kind"] == "features" for r in records2)  # same trunk: features already cached


def test_soft_labels(align_data, mnist_fake, registry):
    recipe = FAST.replace(soft_labels=True, soft_confidence=0.8)
    train = align_data.rows("train")
    targets = _trial_targets(align_data, train, train, recipe).numpy()
    assert np.allclose(targets.sum(1), 1)
    counts = align_data.choice_counts(train)
    row = train.iloc[0]
    expected = 0.8 * counts[row["sidx"]] / counts[row["sidx"]].sum() + 0.2 / 10
    assert np.allclose(targets[0], expected)
    _, res = run_gen(finetune_group("tinylr", align_data, mnist_fake, recipe, registry=registry))
    assert res.recipe.soft_labels and len(res.history) == 4


def test_reload_gives_identical_outputs_and_corruption_is_refused(align_data, mnist_fake, registry):
    _, res = run_gen(finetune_group("tinymlp", align_data, mnist_fake, FAST.replace(epochs=1), registry=registry))
    path = save_model(res, "tinymlp-group", registry.user_dir, registry=registry)
    x = align_data.image_tensor[:20]
    with torch.no_grad():
        expect = res.model(x)
        assert torch.equal(registry.load("tinymlp-group")(x), expect)
        model, cfg = load_model("tinymlp-group", registry.user_dir)
        assert torch.equal(model(x), expect)
    assert cfg["level"] == "group" and cfg["base"] == "tinymlp" and cfg["data_hash"] == align_data.data_hash
    assert cfg["base_sha256"] == registry.weight_hash("tinymlp") and cfg["recipe"]["epochs"] == 1
    weights = path.with_suffix(".safetensors")
    raw = bytearray(weights.read_bytes())
    raw[-10] ^= 0xFF
    weights.write_bytes(bytes(raw))
    registry.clear_cache()
    with pytest.raises(PerceptLabError, match="SHA-256") as err:
        load_model("tinymlp-group", registry.user_dir)
    assert "\n" not in str(err.value)
    with pytest.raises(PerceptLabError, match="corrupted"):
        registry.load("tinymlp-group")


def test_cancel_leaves_no_model_and_no_temp_file(align_data, mnist_fake, registry, tmp_path):
    out = tmp_path / "out"
    job = AlignJob(base="tinylr", level="both", participants=["P1"], recipe=FAST, out_dir=out, evaluate=False)
    gen = run_alignment(job, align_data, mnist_fake, registry=registry)
    for rec in gen:
        if rec["kind"] == "step" and rec["epoch"] == 2:  # mid-epoch of the GroupNet
            break
    gen.close()
    leftovers = [p for folder in (out, registry.user_dir) if folder.exists() for p in folder.iterdir()]
    assert leftovers == []


@pytest.mark.parametrize("indiv_trainable", ["auto", "readout", "all"])
def test_indivnet_learns_a_participants_bias(mnist_fake, registry, indiv_trainable):
    keys, images, dominant = make_stimuli(n=240, seed=5)
    data = build_align_data(make_trials(keys, dominant, participants=6, biased="P1", seed=6), images, keys)
    recipe = FinetuneRecipe(epochs=6, batch_size=32, trainable="all", indiv_trainable=indiv_trainable, lr=3e-3)
    _, group = run_gen(finetune_group("tinylr", data, mnist_fake, recipe, registry=registry))
    _, indiv = run_gen(finetune_individual(group, data, "P1", mnist_fake, recipe, registry=registry))
    ones = torch.tensor(np.flatnonzero(dominant[data.stimuli.str.slice(4, 8).astype(int)] == 1))
    with torch.no_grad():
        g7 = (group.model(data.image_tensor[ones]).argmax(1) == 7).float().mean().item()
        i7 = (indiv.model(data.image_tensor[ones]).argmax(1) == 7).float().mean().item()
    assert i7 > g7 + 0.3, (g7, i7)
    assert indiv.level == "individual" and indiv.participants == ["P1"]
    assert indiv.recipe.indiv_trainable == ("calibration" if indiv_trainable == "auto" else indiv_trainable)
    assert [step["name"] for step in indiv.lineage] == ["tinylr", "<unsaved group model>"]


def test_participant_without_validation_trials_is_a_clear_error(mnist_fake, registry):
    keys, images, dominant = make_stimuli(n=60, seed=7)
    trials = make_trials(keys, dominant, participants=3, seed=8)
    data = build_align_data(trials, images, keys)
    lonely = data.rows("train").iloc[:1].assign(participant="solo")
    data.trials = pd.concat([data.trials, lonely], ignore_index=True)
    with pytest.raises(PerceptLabError, match="no validation trials"):
        run_gen(finetune_individual("tinylr", data, "solo", mnist_fake, FAST, registry=registry))
    with pytest.raises(PerceptLabError, match="not in the trial table"):
        run_gen(finetune_individual("tinylr", data, "nobody", mnist_fake, FAST, registry=registry))


def test_feature_cache_matches_the_trunk_and_computes_each_image_once():
    from perceptlab.align.features import FeatureCache, ImageBank

    torch.manual_seed(0)
    model = build("smallvgg").eval()
    trunk, _ = split_model(model, "smallvgg", "head")
    bank = ImageBank("test", torch.rand(5, 1, 28, 28) * 2 - 1)
    cache = FeatureCache()
    records, feats = run_gen(cache.ensure(trunk, None, bank, np.array([0, 2, 2])))
    with torch.no_grad():
        expect = trunk(bank.images[[0, 2]]).flatten(1)
    assert torch.allclose(feats[[0, 2]], expect, atol=1e-4) and records[-1]["total"] == 2
    records, _ = run_gen(cache.ensure(trunk, None, bank, np.array([0, 1])))
    assert records[-1]["total"] == 1  # image 0 was cached
    assert next(trunk.parameters()).is_contiguous()  # the shared trunk is left as it was
