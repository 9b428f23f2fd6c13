"""Folding batch norms into convolutions for guidance: same outputs and input gradients, fewer modules,
and the registry's cached model is left as saved."""

import torch
from torch import nn

from perceptlab.engine.classifiers import build
from perceptlab.engine.fusion import fuse_conv_bn
from perceptlab.engine.registry import Registry
from perceptlab.engine.sampler import SamplerSettings, load_models
from tests.conftest import build_tiny_registry


def _with_random_bn_stats(model: nn.Module) -> nn.Module:
    torch.manual_seed(3)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return model.eval().requires_grad_(False)


def test_fused_smallvgg_has_the_same_outputs_and_input_gradients():
    import copy

    torch.manual_seed(0)
    model = _with_random_bn_stats(build("smallvgg"))
    twin = copy.deepcopy(model)
    x = torch.randn(5, 1, 28, 28)
    x1, x2 = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    out = model(x1)
    (g,) = torch.autograd.grad(out.logsumexp(1).sum(), x1)
    fused = fuse_conv_bn(twin)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
    out_f = fused(x2)
    (g_f,) = torch.autograd.grad(out_f.logsumexp(1).sum(), x2)
    torch.testing.assert_close(out_f, out, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(g_f, g, rtol=1e-3, atol=1e-5)
    assert not any(p.requires_grad for p in fused.parameters())


def test_models_without_batch_norm_are_unchanged():
    model = build("mlp").eval()
    before = [type(m) for m in model.modules()]
    assert [type(m) for m in fuse_conv_bn(model).modules()] == before


def test_sampler_guides_with_a_fused_copy_and_the_registry_keeps_the_saved_architecture(tmp_path):
    reg = Registry(build_tiny_registry(tmp_path / "w", classifiers=(("vgg", "smallvgg"),)), tmp_path / "u")
    models = load_models(SamplerSettings(classifier="vgg"), reg, "cpu")
    assert not any(isinstance(m, nn.BatchNorm2d) for m in models.classifier.modules())
    cached = reg.load("vgg", kind="classifier")
    assert any(isinstance(m, nn.BatchNorm2d) for m in cached.modules()) and cached is not models.classifier
