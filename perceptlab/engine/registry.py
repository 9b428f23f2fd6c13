"""The model registry: names -> architecture + weights + config.

Built-in models are the shipped weights in ``resources/weights`` (``dit`` prior; ``vit``, ``vgg``,
``cornet``, ``mlp``, ``lrm`` classifiers; ``judge`` digit judge). User models (fine-tuned ones) live in a
user folder (``$PERCEPTLAB_MODELS``, default ``~/.local/share/perceptlab/models``) with the same layout
and appear next to the built-ins. Loaded models are cached per (name, device).
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from perceptlab.engine.classifiers import MODEL_ARCHITECTURES as ARCHITECTURES, build
from perceptlab.engine.prior import DiTPrior, PriorConfig
from perceptlab.engine.weights import load_into, load_weights, read_config, sha256_file
from perceptlab.errors import PerceptLabError

from perceptlab.names import BUILTIN_CLASSIFIERS, BUILTIN_JUDGE, BUILTIN_PRIOR  # noqa: F401
from perceptlab.paths import resources_dir  # noqa: F401  (re-exported: scripts import it from here)


def builtin_weights_dir() -> Path:
    return Path(os.environ.get("PERCEPTLAB_WEIGHTS", resources_dir() / "weights"))


def user_models_dir() -> Path:
    default = Path.home() / ".local" / "share" / "perceptlab" / "models"
    return Path(os.environ.get("PERCEPTLAB_MODELS", default))


def model_configs(folder: Path) -> Iterator[tuple[Path, dict]]:
    """(config path, config) of each model in ``folder``, by file name: a ``<name>.json`` with its
    ``<name>.safetensors`` next to it. Configs that cannot be read are skipped; a missing folder is empty."""
    if not folder.is_dir():
        return
    for cfg_path in sorted(folder.glob("*.json")):
        if not cfg_path.with_suffix(".safetensors").exists():
            continue
        try:
            cfg = read_config(cfg_path)
        except PerceptLabError:
            continue
        yield cfg_path, cfg


def config_problem(cfg_path: Path, cfg: dict | None = None) -> str | None:
    """Why a model config cannot be used (None: it looks usable). Checks the weights file named by
    ``file`` stays beside the config (no path), the architecture is known and ``arch_config`` names
    only parameters of that architecture."""
    if cfg is None:
        try:
            cfg = read_config(cfg_path)
        except PerceptLabError as exc:
            return str(exc)
    if not isinstance(cfg, dict):
        return "the config is not a JSON object"
    file = cfg.get("file", cfg_path.with_suffix(".safetensors").name)
    if (not isinstance(file, str) or not file or "/" in file or "\\" in file or file in (".", "..")
            or Path(file).is_absolute()):
        return (f"'file' must name a weights file beside the config, got {file!r} "
                "(a path outside the models folder is refused)")
    if not (cfg_path.parent / file).is_file():
        return f"its weights file {file} is missing"
    arch = cfg.get("arch")
    if arch != "dit" and arch not in ARCHITECTURES:
        return f"unknown architecture {arch!r} (known: dit, {', '.join(sorted(ARCHITECTURES))})"
    arch_config = cfg.get("arch_config", {})
    if not isinstance(arch_config, dict):
        return "'arch_config' must be a JSON object"
    if arch in ARCHITECTURES:
        params = inspect.signature(ARCHITECTURES[arch]).parameters
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            unknown = sorted(set(arch_config) - set(params) - {"num_outputs"})
            if unknown:
                return (f"arch_config has keys {unknown} that architecture {arch!r} does not take "
                        f"(it takes {', '.join(params)})")
    return None


def model_problems(folder: Path) -> list[tuple[Path, str]]:
    """(config path, why) of each model config in ``folder`` that the registry cannot use."""
    out: list[tuple[Path, str]] = []
    if not folder.is_dir():
        return out
    for cfg_path in sorted(folder.glob("*.json")):
        why = config_problem(cfg_path)
        if why is not None:
            out.append((cfg_path, why))
    return out


@dataclass(frozen=True)
class Entry:
    name: str
    kind: str  # "prior" | "classifier" | "judge"
    arch: str
    config_path: Path
    builtin: bool

    @property
    def weights_path(self) -> Path:
        return self.config_path.with_suffix(".safetensors")


class Registry:
    """Lists and loads models by name."""

    def __init__(self, builtin_dir: Path | None = None, user_dir: Path | None = None):
        self.builtin_dir = Path(builtin_dir) if builtin_dir else builtin_weights_dir()
        self.user_dir = Path(user_dir) if user_dir else user_models_dir()
        self._cache: dict[tuple[str, str], torch.nn.Module] = {}

    def entries(self) -> dict[str, Entry]:
        found: dict[str, Entry] = {}
        for folder, builtin in ((self.builtin_dir, True), (self.user_dir, False)):
            for cfg_path, cfg in model_configs(folder):
                if not builtin and config_problem(cfg_path, cfg) is not None:
                    continue  # listed by problems(), never loaded
                name = cfg.get("name", cfg_path.stem)
                if name in found and found[name].builtin and not builtin:
                    continue  # a user model never shadows a built-in one
                found[name] = Entry(name, cfg.get("kind", "classifier"), cfg["arch"], cfg_path, builtin)
        return found

    def problems(self) -> list[tuple[Path, str]]:
        """User model configs that cannot be used, with the reason (``perceptlab models`` lists them)."""
        return model_problems(self.user_dir)

    def names(self, kind: str | None = None) -> list[str]:
        return [n for n, e in self.entries().items() if kind is None or e.kind == kind]

    def entry(self, name: str, kind: str | None = None) -> Entry:
        entries = self.entries()
        if name not in entries:
            avail = ", ".join(self.names(kind)) or "none"
            what = kind or "model"
            raise PerceptLabError(
                f"unknown {what} {name!r}",
                fix=f"choose one of: {avail} (see 'perceptlab models')",
            )
        e = entries[name]
        if kind is not None and e.kind != kind:
            raise PerceptLabError(f"{name!r} is a {e.kind}, not a {kind}", fix=f"choose one of: {', '.join(self.names(kind))}")
        return e

    def weight_hash(self, name: str) -> str:
        e = self.entry(name)
        return read_config(e.config_path).get("sha256") or sha256_file(e.weights_path)

    def config(self, name: str) -> dict:
        return read_config(self.entry(name).config_path)

    def load(self, name: str, device: torch.device | str = "cpu", kind: str | None = None) -> torch.nn.Module:
        """The model in eval mode with frozen parameters (cached)."""
        key = (name, str(device))
        if key in self._cache:
            return self._cache[key]
        e = self.entry(name, kind)
        why = config_problem(e.config_path)
        if why is not None:
            raise PerceptLabError(f"model {name!r} ({e.config_path}): {why}",
                                  fix="correct or remove the config")
        state, cfg = load_weights(e.config_path)
        if e.arch == "dit":
            model = DiTPrior(PriorConfig.from_dict(cfg.get("arch_config", {})))
        elif e.arch in ARCHITECTURES:
            arch_config = dict(cfg.get("arch_config", {}))
            if e.kind == "judge":
                arch_config["num_outputs"] = 1
            try:
                model = build(e.arch, arch_config)
            except TypeError as exc:
                raise PerceptLabError(f"{e.config_path}: arch_config does not fit {e.arch!r}: {exc}",
                                      fix="correct or remove the config") from None
        else:
            raise PerceptLabError(f"{e.config_path}: unknown architecture {e.arch!r}", fix="update PerceptLab")
        load_into(model, state, e.weights_path)
        model.to(device).eval().requires_grad_(False)
        self._cache[key] = model
        return model

    def clear_cache(self) -> None:
        self._cache.clear()


_default: Registry | None = None


def default_registry() -> Registry:
    global _default
    if _default is None:
        _default = Registry()
    return _default


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, 28, 28) or float [-1, 1] (N, 1, 28, 28) -> float tensor in [-1, 1], (N, 1, 28, 28)."""
    arr = np.asarray(images)
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float32) / 127.5 - 1.0
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)).reshape(-1, 1, 28, 28)


@torch.no_grad()
def predict_probs(model_name: str, images: np.ndarray, registry: Registry | None = None, batch_size: int = 1000) -> np.ndarray:
    """Class probabilities (N, 10) of a zoo classifier on images (uint8 (N, 28, 28) or float in [-1, 1])."""
    reg = registry or default_registry()
    model = reg.load(model_name, kind="classifier")
    x = images_to_tensor(images)
    out = [torch.softmax(model(x[s : s + batch_size]), dim=1) for s in range(0, len(x), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros((0, 10), dtype=np.float32)


@torch.no_grad()
def judge_scores(images: np.ndarray, registry: Registry | None = None, name: str = BUILTIN_JUDGE) -> np.ndarray:
    """Digit-likeness scores in [0, 1] from the digit judge."""
    reg = registry or default_registry()
    model = reg.load(name, kind="judge")
    x = images_to_tensor(images)
    out = [torch.sigmoid(model(x[s : s + 1000]))[:, 0] for s in range(0, len(x), 1000)]
    return torch.cat(out).numpy() if out else np.zeros(0, dtype=np.float32)
