"""The classifier zoo of the paper and the digit judge.

Every network takes images in [-1, 1], shape (N, 1, 28, 28), and returns logits: (N, 10) for the digit
classifiers, (N, 1) for the digit judge (its sigmoid is the digit-likeness score).
"""

from __future__ import annotations

import torch
from torch import nn

from perceptlab.engine.observers import OBSERVER_ARCHITECTURES
from perceptlab.engine.robust import RobustCNN


def _conv(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class SmallVGG(nn.Module):
    """64-64-pool-128-128-pool-256-256-pool, FC 256 (paper's SmallVGG)."""

    def __init__(self, num_outputs: int = 10, dropout: float = 0.3):
        super().__init__()
        self.features = nn.Sequential(
            *_conv(1, 64), *_conv(64, 64), nn.MaxPool2d(2),
            *_conv(64, 128), *_conv(128, 128), nn.MaxPool2d(2),
            *_conv(128, 256), *_conv(256, 256), nn.MaxPool2d(2),
        )  # fmt: skip
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(256 * 3 * 3, 256), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(256, num_outputs),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class _CORBlockZ(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2)
        self.nonlin = nn.ReLU(inplace=True)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.nonlin(self.conv(x)))


class CORnetZ(nn.Module):
    """CORnet-Z (Kubilius et al.) with one input channel: V1 (7x7/2), V2, V4, IT, average-pool decoder."""

    def __init__(self, num_outputs: int = 10):
        super().__init__()
        self.V1 = _CORBlockZ(1, 64, kernel=7, stride=2)
        self.V2 = _CORBlockZ(64, 128)
        self.V4 = _CORBlockZ(128, 256)
        self.IT = _CORBlockZ(256, 512)
        self.decoder = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, num_outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.IT(self.V4(self.V2(self.V1(x)))))


class MLP(nn.Module):
    """784-512-256-10 with GELU."""

    def __init__(self, num_outputs: int = 10, dropout: float = 0.1):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(784, 512), nn.GELU(), nn.Dropout(dropout),
            nn.Linear(512, 256), nn.GELU(), nn.Dropout(dropout), nn.Linear(256, num_outputs),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class LogisticRegression(nn.Module):
    """One linear layer on the pixels (softmax regression)."""

    def __init__(self, num_outputs: int = 10):
        super().__init__()
        self.linear = nn.Linear(784, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))


class ViT(nn.Module):
    """Vision transformer: patch 4 (49 tokens + class token), dim 128, depth 8, 4 heads, pre-norm."""

    def __init__(
        self, num_outputs: int = 10, patch: int = 4, dim: int = 128, depth: int = 8, heads: int = 4,
        mlp_ratio: int = 2, dropout: float = 0.1,
    ):  # fmt: skip
        super().__init__()
        self.patch = patch
        n_tokens = (28 // patch) ** 2
        self.embed = nn.Conv2d(1, dim, patch, stride=patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, n_tokens + 1, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(
            dim, heads, dim * mlp_ratio, dropout=dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tok = self.embed(x).flatten(2).transpose(1, 2)
        tok = torch.cat([self.cls.expand(tok.shape[0], -1, -1), tok], dim=1) + self.pos
        return self.head(self.norm(self.encoder(tok)[:, 0]))


ARCHITECTURES: dict[str, type[nn.Module]] = {
    "smallvgg": SmallVGG,
    "cornet_z": CORnetZ,
    "mlp": MLP,
    "logreg": LogisticRegression,
    "vit": ViT,
}
# Everything the registry can build: the zoo (which fine-tuning knows how to split) and the independent
# observers (engine/observers.py: never guide, never filter, never fine-tuned) and the adversarially
# trained CNN of ``robust`` (engine/robust.py).
MODEL_ARCHITECTURES: dict[str, type[nn.Module]] = {**ARCHITECTURES, **OBSERVER_ARCHITECTURES, "robust_cnn": RobustCNN}


def build(arch: str, arch_config: dict | None = None) -> nn.Module:
    if arch not in MODEL_ARCHITECTURES:
        raise KeyError(arch)
    return MODEL_ARCHITECTURES[arch](**(arch_config or {}))
