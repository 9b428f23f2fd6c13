"""Resumable training checkpoints, stored as safetensors (no pickles) plus a JSON of scalars.

A checkpoint holds the model, its EMA copy (if any), the optimizer state and the RNG state, so a run
that is stopped (Ctrl-C, a lost session) continues exactly where it was.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file


def save_checkpoint(
    path: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scalars: dict,
    ema: torch.nn.Module | None = None,
    generator: torch.Generator | None = None,
) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    if ema is not None:
        tensors.update({f"ema.{k}": v for k, v in ema.state_dict().items()})
    opt = optimizer.state_dict()
    for idx, st in opt["state"].items():
        for key, val in st.items():
            tensors[f"opt.{idx}.{key}"] = val if torch.is_tensor(val) else torch.tensor(val)
    tensors["rng.torch"] = torch.get_rng_state()
    if generator is not None:
        tensors["rng.generator"] = generator.get_state()
    tmp = path.with_name(f".{path.name}.partial")
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp))
    meta = {"scalars": scalars, "param_groups": opt["param_groups"]}
    jtmp = path.with_name(f".{path.stem}.json.partial")
    jtmp.write_text(json.dumps(meta, indent=1))
    os.replace(tmp, path)
    os.replace(jtmp, path.with_suffix(".json"))


def load_checkpoint(
    path: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    ema: torch.nn.Module | None = None,
    generator: torch.Generator | None = None,
) -> dict:
    """Restore in place; returns the saved scalars (step, epoch, ...)."""
    path = Path(path)
    tensors = load_file(str(path))
    meta = json.loads(path.with_suffix(".json").read_text())
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    if ema is not None:
        ema.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
    state: dict[int, dict] = {}
    for k, v in tensors.items():
        if k.startswith("opt."):
            _, idx, key = k.split(".", 2)
            state.setdefault(int(idx), {})[key] = v
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    torch.set_rng_state(tensors["rng.torch"])
    if generator is not None and "rng.generator" in tensors:
        generator.set_state(tensors["rng.generator"])
    return meta["scalars"]


def has_checkpoint(path: Path) -> bool:
    path = Path(path)
    return path.exists() and path.with_suffix(".json").exists()
