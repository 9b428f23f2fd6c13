"""Architectures, weights on disk, the registry, and tiny training runs that resume."""

from pathlib import Path

import numpy as np
import pytest
import torch

from perceptlab.engine.classifiers import ARCHITECTURES, build
from perceptlab.engine.prior import DiTPrior, PriorConfig, sample
from perceptlab.engine.registry import Registry, predict_probs
from perceptlab.engine.weights import load_weights, save_weights
from perceptlab.errors import PerceptLabError
from tests.conftest import tiny_prior_config

TINY_PRIOR = tiny_prior_config()


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_classifier_shapes_and_input_gradient(arch):
    model = build(arch).eval().requires_grad_(False)
    x = torch.rand(3, 1, 28, 28, requires_grad=True) * 2 - 1
    x.retain_grad()
    out = model(x)
    assert out.shape == (3, 10)
    out[:, 3].sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_paper_prior_config_builds():
    paper = DiTPrior(PriorConfig(patch_size=2))
    assert paper.net.config.patch_size == 2 and paper.net.config.num_layers == 4
    assert paper.net.config.num_attention_heads * paper.net.config.attention_head_dim == 128


def test_prior_conditional_and_unconditional():
    torch.manual_seed(0)
    prior = DiTPrior(TINY_PRIOR).eval()
    x = torch.randn(2, 1, 28, 28)
    t = torch.tensor([10, 500])
    assert prior(x, t).shape == (2, 1, 28, 28)
    assert prior(x, t, torch.tensor([3, 4])).shape == (2, 1, 28, 28)
    g = torch.Generator().manual_seed(1)
    a = sample(prior, 3, steps=3, generator=g)
    b = sample(prior, 3, steps=3, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.min() >= -1 and a.max() <= 1


def _save_tiny(folder: Path, name: str, arch: str = "mlp", kind: str = "classifier") -> Path:
    model = build(arch, {"num_outputs": 1} if kind == "judge" else {})
    cfg = save_weights(model.state_dict(), folder / f"{name}.safetensors", {"name": name, "kind": kind, "arch": arch})
    return folder / f"{name}.json", cfg


def test_weights_roundtrip_and_registry(tmp_path):
    _save_tiny(tmp_path, "mlp")
    _save_tiny(tmp_path, "judge", "smallvgg", "judge")
    reg = Registry(tmp_path, tmp_path / "user")
    assert set(reg.names()) == {"mlp", "judge"}
    assert reg.names("judge") == ["judge"]
    model = reg.load("mlp")
    assert not any(p.requires_grad for p in model.parameters())
    probs = predict_probs("mlp", np.zeros((4, 28, 28), np.uint8), registry=reg)
    assert probs.shape == (4, 10) and np.allclose(probs.sum(1), 1, atol=1e-5)
    state, cfg = load_weights(tmp_path / "mlp.json")
    assert cfg["sha256"] == reg.weight_hash("mlp")


def test_user_models_listed_but_never_shadow_builtins(tmp_path):
    _save_tiny(tmp_path, "mlp")
    user = tmp_path / "user"
    user.mkdir()
    _save_tiny(user, "mlp", "logreg")
    _save_tiny(user, "mine", "logreg")
    reg = Registry(tmp_path, user)
    assert reg.entry("mlp").builtin and reg.entry("mlp").arch == "mlp"
    assert not reg.entry("mine").builtin


def test_unknown_model_names_the_choices(tmp_path):
    _save_tiny(tmp_path, "mlp")
    reg = Registry(tmp_path, tmp_path / "user")
    with pytest.raises(PerceptLabError, match=r"unknown classifier 'vgg16'.*choose one of: mlp"):
        reg.load("vgg16", kind="classifier")
    with pytest.raises(PerceptLabError, match="is a classifier, not a judge"):
        reg.load("mlp", kind="judge")


def test_corrupted_weights_refused(tmp_path):
    _save_tiny(tmp_path, "mlp")
    w = tmp_path / "mlp.safetensors"
    data = bytearray(w.read_bytes())
    data[-10] ^= 0xFF
    w.write_bytes(bytes(data))
    with pytest.raises(PerceptLabError, match=r"mlp.safetensors: SHA-256 .* does not match .*restore the file"):
        Registry(tmp_path, tmp_path / "u").load("mlp")


def test_truncated_weights_refused_even_without_hash(tmp_path):
    _save_tiny(tmp_path, "mlp")
    w = tmp_path / "mlp.safetensors"
    w.write_bytes(w.read_bytes()[:100])
    with pytest.raises(PerceptLabError, match="not a readable safetensors file"):
        load_weights(tmp_path / "mlp.json", check_hash=False)


def test_mismatched_architecture_refused(tmp_path):
    cfg_path, cfg = _save_tiny(tmp_path, "mlp")
    import json

    cfg["arch"] = "logreg"
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(PerceptLabError, match="weights do not fit the architecture"):
        Registry(tmp_path, tmp_path / "u").load("mlp")


def test_pickle_is_never_read(tmp_path):
    (tmp_path / "evil.safetensors").write_bytes(b"\x80\x04\x95" + b"x" * 64)  # a pickle header
    (tmp_path / "evil.json").write_text('{"name": "evil", "kind": "classifier", "arch": "mlp"}')
    with pytest.raises(PerceptLabError, match="not a readable safetensors file"):
        Registry(tmp_path, tmp_path / "u").load("evil")
