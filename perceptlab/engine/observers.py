"""Independent observers: classifiers that never guide and never filter.

A filter verdict says the guiding classifier was fooled; *observer transfer* (DESIGN §3) says whether
the image is ambiguous beyond the guide. The observers are registry entries of kind ``observer``, so
they never appear in a classifier picker, are never scored by the zoo ``Scorer`` and cannot be chosen
to guide or to filter (the sampler loads classifiers with ``kind="classifier"``).

The panel (names in ``OBSERVERS``):

- ``obs-cnn``: a LeNet-style CNN (5x5 convolutions, no batch norm: another family than the zoo's VGG and
  CORnet), its own seed, trained on the zoo's training digits.
- ``obs-resnet``: a small residual network trained only on half A of the fixed hold-out split (every
  other held-out digit): no digit it learnt from was ever seen by a zoo model, the prior or the judge.

Both are measured on half B of the hold-out, which no model trains on. Transfer of an image with
target pair (a, b): uncertainty, the observer's two most probable classes are {a, b}; controversial,
a and b are both in its top two (the same test). The verdicts are computed from stored probabilities by
``perceptlab.analysis.transfer``; the panel's names are ``perceptlab.names.OBSERVERS``.
"""

from __future__ import annotations

import torch
from torch import nn



class LeNetObserver(nn.Module):
    """conv5-32, pool, conv5-64, pool, FC 256 with dropout (ReLU, no batch norm)."""

    def __init__(self, num_outputs: int = 10, dropout: float = 0.3):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        )  # fmt: skip
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(64 * 7 * 7, 256), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(256, num_outputs),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class _Residual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
        )  # fmt: skip
        self.skip = (
            nn.Identity()
            if stride == 1 and cin == cout
            else nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.skip(x))


class ResNetObserver(nn.Module):
    """A small ResNet: stem conv 32, residual stages 64 (stride 2) / 128 (stride 2), global pool."""

    def __init__(self, num_outputs: int = 10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(inplace=True))
        self.stages = nn.Sequential(_Residual(32, 64, 2), _Residual(64, 128, 2))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, num_outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))


OBSERVER_ARCHITECTURES: dict[str, type[nn.Module]] = {"lenet": LeNetObserver, "resnet_s": ResNetObserver}
