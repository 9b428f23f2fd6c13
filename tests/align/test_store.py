"""The user model store: save, list, rename (atomic, no clobbering), delete; built-ins untouchable."""

import json

import pytest
import torch

from perceptlab.align.finetune import FinetuneRecipe, finetune_group
from perceptlab.align.store import (
    default_name,
    delete_model,
    find_models,
    list_models,
    rename_model,
    save_model,
)
from perceptlab.errors import PerceptLabError

from .conftest import run_gen


@pytest.fixture()
def saved(align_data, mnist_fake, registry):
    recipe = FinetuneRecipe(epochs=1, batch_size=32, trainable="all")
    _, res = run_gen(finetune_group("tinylr", align_data, mnist_fake, recipe, registry=registry))
    save_model(res, "tinylr-group", registry.user_dir, registry=registry)
    return res


def test_saved_model_joins_the_registry_and_lists(saved, registry):
    assert "tinylr-group" in registry.names("classifier")
    assert not registry.entries()["tinylr-group"].builtin
    (m,) = list_models(registry.user_dir)
    assert m.name == "tinylr-group" and m.level == "group" and m.base == "tinylr"
    assert find_models(level="group", folder=registry.user_dir)[0].name == "tinylr-group"
    with pytest.raises(PerceptLabError, match="already exists"):
        save_model(saved, "tinylr-group", registry.user_dir, registry=registry)
    with pytest.raises(PerceptLabError, match="built-in"):
        save_model(saved, "tinymlp", registry.user_dir, registry=registry)
    with pytest.raises(PerceptLabError, match="not a usable model name"):
        save_model(saved, "../evil", registry.user_dir, registry=registry)


def test_rename_rewrites_the_name_and_never_clobbers(saved, registry):
    folder = registry.user_dir
    x = torch.rand(4, 1, 28, 28)
    before = registry.load("tinylr-group")(x)
    rename_model("tinylr-group", "my-group", folder, registry=registry)
    assert sorted(p.name for p in folder.iterdir()) == ["my-group.json", "my-group.safetensors"]
    cfg = json.loads((folder / "my-group.json").read_text())
    assert cfg["name"] == "my-group" and cfg["file"] == "my-group.safetensors"
    assert torch.equal(registry.load("my-group")(x), before)  # hash still checks out
    assert "tinylr-group" not in registry.names()
    save_model(saved, "other", folder, registry=registry)
    with pytest.raises(PerceptLabError, match="already exists"):
        rename_model("my-group", "other", folder, registry=registry)
    with pytest.raises(PerceptLabError, match="built-in"):
        rename_model("tinylr", "x", folder, registry=registry)
    with pytest.raises(PerceptLabError, match="built-in"):
        rename_model("other", "tinylr", folder, registry=registry)
    with pytest.raises(PerceptLabError, match="no model named"):
        rename_model("ghost", "y", folder, registry=registry)
    assert (folder / "other.json").exists() and (folder / "my-group.json").exists()


def test_delete(saved, registry):
    delete_model("tinylr-group", registry.user_dir, registry=registry)
    assert list(registry.user_dir.iterdir()) == []
    assert "tinylr-group" not in registry.names()
    with pytest.raises(PerceptLabError, match="built-in"):
        delete_model("tinylr", registry.user_dir, registry=registry)
    with pytest.raises(PerceptLabError, match="no model named"):
        delete_model("tinylr-group", registry.user_dir, registry=registry)


def test_default_names():
    assert default_name("group", "vgg") == "vgg-group"
    assert default_name("individual", "vgg", "P012") == "vgg-indiv-P012"
    assert default_name("individual", "vgg", "anna b/3") == "vgg-indiv-anna_b_3"
