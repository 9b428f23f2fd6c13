"""Device selection: CUDA when present, else CPU (``--device`` overrides)."""

from __future__ import annotations

import torch

from perceptlab.errors import PerceptLabError


def pick_device(name: str | None = None) -> torch.device:
    """``None``/"auto" -> cuda if available else cpu; otherwise the named device, checked."""
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise PerceptLabError(f"unknown device {name!r}", fix="use auto, cpu or cuda") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise PerceptLabError("device cuda was asked for but no CUDA GPU is available", fix="use --device cpu")
    return dev


def describe(dev: torch.device) -> str:
    if dev.type == "cuda":
        return f"GPU ({torch.cuda.get_device_name(dev)})"
    return f"CPU ({torch.get_num_threads()} threads)"
