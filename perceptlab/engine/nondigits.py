"""Generators of non-digit images, the negatives the digit judge learns to tell from real digits.

Each kind returns float images in [-1, 1], shape (n, 1, 28, 28), drawn from a ``torch.Generator`` so a
seed reproduces them. ``half_denoised`` needs a prior; the others need at most some real digits.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F


def _u(n: int, lo: float, hi: float, g: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=g) * (hi - lo) + lo


def noise(n: int, g: torch.Generator, digits: torch.Tensor | None = None) -> torch.Tensor:
    """Gaussian, uniform and sparse salt noise, optionally blurred, at random intensities."""
    kind = torch.randint(0, 3, (n,), generator=g)
    gauss = torch.randn((n, 1, 28, 28), generator=g) * _u(n, 0.3, 1.0, g).view(-1, 1, 1, 1) - 0.6
    unif = torch.rand((n, 1, 28, 28), generator=g) * 2 - 1
    salt = torch.where(torch.rand((n, 1, 28, 28), generator=g) < _u(n, 0.05, 0.3, g).view(-1, 1, 1, 1), 1.0, -1.0)
    x = torch.where((kind == 0).view(-1, 1, 1, 1), gauss, torch.where((kind == 1).view(-1, 1, 1, 1), unif, salt))
    blur = torch.rand(n, generator=g) < 0.5
    x = torch.where(blur.view(-1, 1, 1, 1), F.avg_pool2d(x, 3, 1, 1) * 1.5, x)
    return x.clamp(-1, 1)


def blobs(n: int, g: torch.Generator, digits: torch.Tensor | None = None) -> torch.Tensor:
    """One to five soft Gaussian blobs of random size and brightness."""
    yy, xx = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    img = torch.zeros(n, 28, 28)
    k = torch.randint(1, 6, (n,), generator=g)
    for j in range(5):
        cx, cy = _u(n, 4, 24, g), _u(n, 4, 24, g)
        sx, sy = _u(n, 1.5, 6, g), _u(n, 1.5, 6, g)
        amp = _u(n, 0.5, 1.0, g) * (j < k).float()
        d = ((xx - cx.view(-1, 1, 1)) / sx.view(-1, 1, 1)) ** 2 + ((yy - cy.view(-1, 1, 1)) / sy.view(-1, 1, 1)) ** 2
        img = torch.maximum(img, amp.view(-1, 1, 1) * torch.exp(-0.5 * d))
    return (img * 2 - 1).unsqueeze(1).clamp(-1, 1)


def _draw_curves(n: int, g: torch.Generator, n_curves: torch.Tensor) -> torch.Tensor:
    """Rasterise random quadratic Bezier curves with a soft pen of digit-like width."""
    yy, xx = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    pix = torch.stack([xx.flatten(), yy.flatten()], 1)  # (784, 2)
    img = torch.zeros(n, 784)
    ts = torch.linspace(0, 1, 24)
    for j in range(int(n_curves.max())):
        p = torch.rand((n, 3, 2), generator=g) * 24 + 2
        pts = ((1 - ts) ** 2).view(1, -1, 1) * p[:, :1] + (2 * (1 - ts) * ts).view(1, -1, 1) * p[:, 1:2]
        pts = pts + (ts**2).view(1, -1, 1) * p[:, 2:]
        d = torch.cdist(pix.unsqueeze(0).expand(n, -1, -1), pts).min(dim=2).values  # (n, 784)
        width = _u(n, 0.9, 1.8, g).view(-1, 1)
        stroke = torch.clamp(1.5 - d / width, 0, 1) * (j < n_curves).float().view(-1, 1)
        img = torch.maximum(img, stroke)
    return (img.view(n, 1, 28, 28) * 2 - 1).clamp(-1, 1)


def strokes(n: int, g: torch.Generator, digits: torch.Tensor | None = None) -> torch.Tensor:
    """Scribbles: four to eight random pen strokes crossing each other."""
    return _draw_curves(n, g, torch.randint(4, 9, (n,), generator=g))


def scrambled(n: int, g: torch.Generator, digits: torch.Tensor | None = None) -> torch.Tensor:
    """Real digits cut into a 4x4 grid of 7x7 patches, shuffled."""
    if digits is None:
        raise ValueError("scrambled non-digits need real digits")
    src = digits[torch.randint(0, len(digits), (n,), generator=g)]
    patches = src.unfold(2, 7, 7).unfold(3, 7, 7).reshape(n, 16, 7, 7)
    order = torch.argsort(torch.rand((n, 16), generator=g), dim=1)
    patches = torch.gather(patches, 1, order.view(n, 16, 1, 1).expand(-1, -1, 7, 7))
    return patches.view(n, 4, 4, 7, 7).permute(0, 1, 3, 2, 4).reshape(n, 1, 28, 28)


def fragments(n: int, g: torch.Generator, digits: torch.Tensor | None = None) -> torch.Tensor:
    """Overlays of pieces of three different digits, shifted apart: stroke texture with no digit shape."""
    if digits is None:
        raise ValueError("fragment non-digits need real digits")
    out = torch.full((n, 1, 28, 28), -1.0)
    for _ in range(3):
        src = digits[torch.randint(0, len(digits), (n,), generator=g)]
        dx, dy = (torch.randint(-9, 10, (2,), generator=g)).tolist()
        out = torch.maximum(out, torch.roll(src, shifts=(dy, dx), dims=(2, 3)))
    return out


def half_denoised(n: int, g: torch.Generator, digits: torch.Tensor | None = None, prior=None) -> torch.Tensor:
    """Prior samples stopped half way: the noisy state x_t at a random step between 35% and 75% of T."""
    if prior is None:
        raise ValueError("half-denoised non-digits need a prior")
    scheduler = prior.make_scheduler()
    scheduler.set_timesteps(50)
    stop = torch.randint(12, 33, (1,), generator=g).item()  # of 50 steps, counted from t = T
    x = torch.randn((n, 1, 28, 28), generator=g)
    with torch.no_grad():
        for t in scheduler.timesteps[:stop]:
            x = scheduler.step(prior(x, t), t, x, generator=g).prev_sample
    return x.clamp(-1, 1)


KINDS: dict[str, Callable[..., torch.Tensor]] = {
    "noise": noise,
    "blobs": blobs,
    "strokes": strokes,
    "scrambled": scrambled,
    "fragments": fragments,
    "half_denoised": half_denoised,
}


def make_nondigits(
    n_per_kind: int, seed: int, digits: torch.Tensor, prior=None, kinds: tuple[str, ...] | None = None
) -> tuple[torch.Tensor, list[str]]:
    """``n_per_kind`` images of every kind (``half_denoised`` only with a prior); returns (images, kind per image)."""
    g = torch.Generator().manual_seed(seed)
    images, names = [], []
    for kind in kinds or tuple(KINDS):
        if kind == "half_denoised":
            if prior is None:
                continue
            chunks = [half_denoised(min(250, n_per_kind - s), g, prior=prior) for s in range(0, n_per_kind, 250)]
            x = torch.cat(chunks)
        else:
            x = KINDS[kind](n_per_kind, g, digits)
        images.append(x)
        names += [kind] * len(x)
    return torch.cat(images), names
