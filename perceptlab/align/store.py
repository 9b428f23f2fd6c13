"""Fine-tuned models on disk: ``<name>.safetensors`` + ``<name>.json`` in the user model folder.

The folder is ``$PERCEPTLAB_MODELS`` (default ``~/.local/share/perceptlab/models``, see
:func:`perceptlab.engine.registry.user_models_dir`) or one given explicitly; models saved there appear
in the registry next to the built-ins. The JSON holds ``name``, ``kind`` ("classifier"), ``arch``,
``arch_config``, ``level`` (group | individual), ``base`` and ``base_sha256`` (the model it started
from), ``lineage``, ``participants``, ``data_hash`` (of the trials and images), ``split``, ``recipe``,
``metrics`` and the SHA-256 of the weights, which loading checks.

Writing is atomic (temporary file, then rename); a cancelled fine-tuning writes nothing because saving
happens only here, after training returned. Renaming never clobbers: the new name is created with
hard links that fail if it exists, and the old name is removed only afterwards, so at every moment each
name is either absent or complete. Built-in models are never renamed, deleted or shadowed.

Names: letters, digits and ``. _ + -``; defaults ``<zoo model>-group`` and
``<zoo model>-indiv-<participant>`` (e.g. ``vgg-group``, ``vgg-indiv-P012``).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from perceptlab.align.finetune import FinetuneResult
from perceptlab.engine.classifiers import ARCHITECTURES, build
from perceptlab.engine.registry import Registry, builtin_weights_dir, model_configs, user_models_dir
from perceptlab.engine.weights import load_into, load_weights, save_weights
from perceptlab.errors import PerceptLabError

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$")


def check_name(name: str) -> str:
    name = str(name)
    if not NAME_RE.match(name) or name.endswith((".json", ".safetensors")):
        raise PerceptLabError(
            f"{name!r} is not a usable model name",
            fix="use letters, digits and . _ + - (at most 100 characters), e.g. vgg-indiv-P012",
        )
    return name


def participant_slug(participant: str) -> str:
    """A participant id made safe for a model name (other characters become ``_``)."""
    slug = re.sub(r"[^A-Za-z0-9._+-]", "_", str(participant)).strip("._-") or "participant"
    return slug[:60]


def default_name(level: str, root: str, participant: str | None = None) -> str:
    """``<root>-group`` or ``<root>-indiv-<participant>``."""
    if level == "group":
        return check_name(f"{root}-group")
    if participant is None:
        raise ValueError("an individual model's default name needs the participant")
    return check_name(f"{root}-indiv-{participant_slug(participant)}")


def models_folder(folder: str | Path | None = None) -> Path:
    return Path(folder) if folder is not None else user_models_dir()


def _builtin_names(registry: Registry | None) -> set[str]:
    builtin_dir = registry.builtin_dir if registry is not None else builtin_weights_dir()
    return set(Registry(builtin_dir, user_dir=Path(builtin_dir) / ".none").entries())


def _refuse_builtin(name: str, folder: Path, registry: Registry | None, what: str) -> None:
    builtin_dir = registry.builtin_dir if registry is not None else builtin_weights_dir()
    if folder.resolve() == Path(builtin_dir).resolve():
        raise PerceptLabError(f"{folder} is the folder of the built-in weights", fix=f"{what} only user models")
    if name in _builtin_names(registry):
        raise PerceptLabError(
            f"{name!r} is a built-in model", fix=f"{what} only user (fine-tuned) models; pick another name"
        )


def _paths(folder: Path, name: str) -> tuple[Path, Path]:
    return folder / f"{name}.safetensors", folder / f"{name}.json"


@dataclass
class StoredModel:
    """One model of the user folder, as listed."""

    name: str
    config_path: Path
    level: str | None = None
    base: str | None = None
    participants: list[str] = field(default_factory=list)
    created: str | None = None
    arch: str = ""
    metrics: dict = field(default_factory=dict)

    @property
    def weights_path(self) -> Path:
        return self.config_path.with_suffix(".safetensors")

    def to_dict(self) -> dict:
        m = {k: v for k, v in self.metrics.items() if k != "history"}
        return {
            "name": self.name,
            "level": self.level,
            "base": self.base,
            "participants": self.participants,
            "created": self.created,
            "arch": self.arch,
            "file": str(self.weights_path),
            "metrics": m,
        }


def save_model(
    result: FinetuneResult,
    name: str,
    folder: str | Path | None = None,
    *,
    registry: Registry | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a fine-tuned model (weights + JSON, atomically); returns the JSON path. Records the name
    and hash on ``result`` so models fine-tuned from it name it as their base."""
    name = check_name(name)
    folder = models_folder(folder)
    _refuse_builtin(name, folder, registry, "save")
    weights, config = _paths(folder, name)
    if not overwrite and config.exists():  # weights without a config are a leftover: replaced
        raise PerceptLabError(
            f"a model named {name!r} already exists in {folder}",
            fix="choose another name (--name), or delete or rename the old one",
        )
    try:
        saved = save_weights(result.model.state_dict(), weights, result.config(name))
    except OSError as exc:
        raise PerceptLabError(
            f"cannot write {weights}: {exc.strerror or exc}", fix="check free space and permissions"
        ) from exc
    result.saved_name = name
    result.saved_sha256 = saved["sha256"]
    if registry is not None:
        registry.clear_cache()
    return config


def load_model(name: str, folder: str | Path | None = None) -> tuple[nn.Module, dict]:
    """A stored model (eval mode) and its config; the weights' SHA-256 is checked first."""
    folder = models_folder(folder)
    _, config_path = _paths(folder, check_name(name))
    if not config_path.exists():
        raise PerceptLabError(f"no model named {name!r} in {folder}", fix="see 'perceptlab models-user list'")
    state, cfg = load_weights(config_path)
    arch = cfg.get("arch")
    if arch not in ARCHITECTURES:
        raise PerceptLabError(f"{config_path}: unknown architecture {arch!r}", fix="update PerceptLab")
    model = build(arch, cfg.get("arch_config", {}))
    load_into(model, state, config_path.with_suffix(".safetensors"))
    return model.eval().requires_grad_(False), cfg


def list_models(folder: str | Path | None = None, *, aligned_only: bool = False) -> list[StoredModel]:
    """The models of a user folder (``aligned_only``: only fine-tuned ones), newest first."""
    folder = models_folder(folder)
    out = []
    for cfg_path, cfg in model_configs(folder):
        if aligned_only and "level" not in cfg:
            continue
        out.append(
            StoredModel(
                name=cfg.get("name", cfg_path.stem),
                config_path=cfg_path,
                level=cfg.get("level"),
                base=cfg.get("base"),
                participants=[str(p) for p in cfg.get("participants", [])],
                created=cfg.get("created"),
                arch=cfg.get("arch", ""),
                metrics=cfg.get("metrics", {}),
            )
        )
    out.sort(key=lambda m: (m.created or "", m.name), reverse=True)
    return out


def _existing(name: str, folder: Path) -> tuple[Path, Path]:
    weights, config = _paths(folder, check_name(name))
    if not config.exists() or not weights.exists():
        names = ", ".join(m.name for m in list_models(folder)) or "none"
        raise PerceptLabError(f"no model named {name!r} in {folder}", fix=f"user models there: {names}")
    return weights, config


def delete_model(name: str, folder: str | Path | None = None, *, registry: Registry | None = None) -> list[Path]:
    """Remove a user model (its JSON first, so the registry never sees a half-deleted model)."""
    folder = models_folder(folder)
    _refuse_builtin(name, folder, registry, "delete")
    weights, config = _existing(name, folder)
    config.unlink()
    weights.unlink(missing_ok=True)
    if registry is not None:
        registry.clear_cache()
    return [config, weights]


def _link_no_clobber(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)  # fails with FileExistsError when dst exists: never clobbers
    except FileExistsError:
        raise
    except OSError:  # file system without hard links: check, then rename a copy
        if dst.exists():
            raise FileExistsError(dst) from None
        tmp = dst.with_name(f".{dst.name}.partial")
        tmp.write_bytes(src.read_bytes())
        os.replace(tmp, dst)


def rename_model(old: str, new: str, folder: str | Path | None = None, *, registry: Registry | None = None) -> Path:
    """Rename a user model: both files and the ``name`` in its JSON. Refuses to overwrite anything."""
    folder = models_folder(folder)
    new = check_name(new)
    _refuse_builtin(old, folder, registry, "rename")
    _refuse_builtin(new, folder, registry, "rename")
    old_weights, old_config = _existing(old, folder)
    new_weights, new_config = _paths(folder, new)
    if new_weights.exists() or new_config.exists():
        raise PerceptLabError(
            f"a model named {new!r} already exists in {folder}", fix="choose another name or delete that model first"
        )
    cfg = json.loads(old_config.read_text())
    cfg["name"] = new
    cfg["file"] = new_weights.name
    tmp = folder / f".{new}.json.partial"
    try:
        _link_no_clobber(old_weights, new_weights)
    except FileExistsError:
        raise PerceptLabError(
            f"a model named {new!r} appeared in {folder} meanwhile", fix="choose another name"
        ) from None
    try:
        tmp.write_text(json.dumps(cfg, indent=2) + "\n")
        _link_no_clobber(tmp, new_config)
    except BaseException:
        new_weights.unlink(missing_ok=True)
        raise
    finally:
        tmp.unlink(missing_ok=True)
    old_config.unlink()
    old_weights.unlink()
    if registry is not None:
        registry.clear_cache()
    return new_config


def find_models(
    participant: str | None = None, level: str | None = None, folder: str | Path | None = None
) -> list[StoredModel]:
    """Fine-tuned models of a level and/or one participant (individual: ``participants == [p]``)."""
    out = []
    for m in list_models(folder, aligned_only=True):
        if level is not None and m.level != level:
            continue
        if participant is not None and (m.level != "individual" or m.participants != [str(participant)]):
            continue
        out.append(m)
    return out
