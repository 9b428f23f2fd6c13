"""Where a zoo classifier is cut into a frozen trunk and a trained top.

``split_model(model, arch, trainable)`` returns ``(trunk, top)`` with ``model(x) == top(trunk(x))`` in
eval mode; ``top`` shares its parameters with ``model``, so training ``top`` trains the model.
``trainable``:

- ``all``: no trunk, every layer trains (the paper's fine-tuning);
- ``head``: the classifier head trains on frozen convolutional / encoder features (SmallVGG: the two
  fully connected layers; MLP: the last two linear layers; CORnet-Z and ViT: the final linear layer);
- ``readout``: only the last linear layer trains.

A frozen trunk is run once per image (eval mode, no gradient) and its outputs are cached, which is
what makes fine-tuning a SmallVGG fast on a CPU: the features cost one forward pass per distinct image
instead of a forward and backward pass per sample per epoch. Logistic regression has no trunk.
"""

from __future__ import annotations

import hashlib

import torch
from torch import nn

TRAINABLE = ("all", "head", "readout", "calibration")


class LogitCalibration(nn.Module):
    """A per-class logit offset and a logit scale on top of a frozen final linear layer:
    ``exp(log_scale) * (linear(x) + offset)``. :meth:`fold` writes them into the linear layer, so the
    model stays an ordinary classifier of its architecture."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.linear = linear
        self.offset = nn.Parameter(torch.zeros(linear.out_features, device=linear.weight.device))
        self.log_scale = nn.Parameter(torch.zeros((), device=linear.weight.device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.log_scale.exp() * (self.linear(x) + self.offset)

    def adapter_parameters(self) -> list[nn.Parameter]:
        return [self.offset, self.log_scale]

    @torch.no_grad()
    def fold(self) -> None:
        scale = self.log_scale.exp()
        self.linear.weight.mul_(scale)
        self.linear.bias.add_(self.offset).mul_(scale)
        self.offset.zero_()
        self.log_scale.zero_()


class _ViTTrunk(nn.Module):
    """A ViT up to (and including) the final norm of the class token."""

    def __init__(self, vit: nn.Module):
        super().__init__()
        self.embed = vit.embed
        self.cls = vit.cls
        self.pos = vit.pos
        self.encoder = vit.encoder
        self.norm = vit.norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tok = self.embed(x).flatten(2).transpose(1, 2)
        tok = torch.cat([self.cls.expand(tok.shape[0], -1, -1), tok], dim=1) + self.pos
        return self.norm(self.encoder(tok)[:, 0])


def resolve_trainable(trainable: str, device: torch.device | str) -> str:
    """``auto`` -> ``all`` on a GPU (the paper's full fine-tuning), ``head`` on a CPU."""
    if trainable == "auto":
        return "all" if torch.device(device).type == "cuda" else "head"
    if trainable not in TRAINABLE:
        raise ValueError(f"trainable must be auto or one of {TRAINABLE}, not {trainable!r}")
    return trainable


def split_model(model: nn.Module, arch: str, trainable: str) -> tuple[nn.Module | None, nn.Module]:
    """(frozen trunk or None, trained top) of ``model`` (see the module docstring)."""
    if trainable not in TRAINABLE:
        raise ValueError(f"trainable must be one of {TRAINABLE}, not {trainable!r}")
    if trainable == "calibration":
        if arch == "logreg":
            return nn.Flatten(), LogitCalibration(model.linear)
        trunk, top = split_model(model, arch, "readout")
        final = top[-1] if isinstance(top, nn.Sequential) else top
        return trunk, LogitCalibration(final)
    if trainable == "all" or arch == "logreg":
        return None, model
    if arch == "smallvgg":
        head = list(model.head)  # Flatten, Linear, ReLU, Dropout, Linear
        if trainable == "head":
            return model.features, model.head
        return nn.Sequential(model.features, *head[:3]), nn.Sequential(*head[3:])
    if arch == "mlp":
        net = list(model.net)  # Flatten, Linear, GELU, Dropout, Linear, GELU, Dropout, Linear
        cut = 4 if trainable == "head" else 7
        return nn.Sequential(*net[:cut]), nn.Sequential(*net[cut:])
    if arch == "cornet_z":
        dec = list(model.decoder)  # AdaptiveAvgPool2d, Flatten, Linear
        return nn.Sequential(model.V1, model.V2, model.V4, model.IT, *dec[:2]), dec[2]
    if arch == "vit":
        return _ViTTrunk(model), model.head
    raise ValueError(f"no cut points known for architecture {arch!r}; use trainable='all'")


def module_hash(module: nn.Module | None) -> str:
    """A short hash of a module's parameters and buffers (equal hash = equal outputs)."""
    if module is None:
        return "identity"
    h = hashlib.sha256()
    for name, t in module.state_dict().items():
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]
