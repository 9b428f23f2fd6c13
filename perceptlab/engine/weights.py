"""Weights on disk: ``<name>.safetensors`` with ``<name>.json`` beside it.

The JSON holds the architecture config, the file's SHA-256, how it was trained and what it scored. Loading
checks the hash before anything else; only safetensors are read (never a pickle).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from perceptlab.errors import PerceptLabError


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.partial")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_json(path: Path, obj: dict) -> None:
    _atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def save_weights(state: dict[str, torch.Tensor], path: Path, config: dict) -> dict:
    """Write tensors + config atomically; returns the config with ``sha256`` filled in."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    save_file({k: v.detach().contiguous().cpu() for k, v in state.items()}, str(tmp))
    os.replace(tmp, path)
    config = dict(config)
    config["file"] = path.name
    config["sha256"] = sha256_file(path)
    write_json(path.with_suffix(".json"), config)
    return config


def read_config(json_path: Path) -> dict:
    json_path = Path(json_path)
    try:
        config = json.loads(json_path.read_text())
    except FileNotFoundError as exc:
        raise PerceptLabError(
            f"{json_path}: config missing", fix="every weights file needs its JSON config beside it"
        ) from exc
    except json.JSONDecodeError as exc:
        raise PerceptLabError(f"{json_path}: not valid JSON (line {exc.lineno}: {exc.msg})") from exc
    if not isinstance(config, dict) or "arch" not in config:
        raise PerceptLabError(f"{json_path}: no 'arch' entry", fix="this is not a PerceptLab weights config")
    return config


def load_weights(json_path: Path, check_hash: bool = True) -> tuple[dict[str, torch.Tensor], dict]:
    """Read a config and its safetensors file, checking the hash. Returns (state_dict, config)."""
    json_path = Path(json_path)
    config = read_config(json_path)
    wpath = json_path.with_name(config.get("file", json_path.with_suffix(".safetensors").name))
    if not wpath.exists():
        raise PerceptLabError(f"{wpath}: weights file missing", fix=f"restore it or remove {json_path.name}")
    if check_hash and config.get("sha256"):
        actual = sha256_file(wpath)
        if actual != config["sha256"]:
            raise PerceptLabError(
                f"{wpath}: SHA-256 {actual[:12]}… does not match its config ({config['sha256'][:12]}…); "
                "the file is corrupted or was replaced",
                fix="restore the file (reinstall PerceptLab for shipped weights) or retrain it",
            )
    try:
        state = load_file(str(wpath))
    except (SafetensorError, OSError, ValueError) as exc:
        raise PerceptLabError(f"{wpath}: not a readable safetensors file ({exc})", fix="restore or retrain it") from exc
    return state, config


def load_into(module: torch.nn.Module, state: dict[str, torch.Tensor], where: Path) -> None:
    """load_state_dict with a clear message when the weights do not fit the architecture."""
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise PerceptLabError(
            f"{where}: weights do not fit the architecture in its config ({first})",
            fix="the weights and the JSON config belong to different models; retrain or restore both",
        ) from exc
