"""Supervised training of the classifier zoo (and of the digit judge, see ``train_judge``).

``train_classifier`` is a generator yielding a record per step and per epoch; it checkpoints each epoch
(resumable) and exports the final weights with their config. The hold-out digits are never used here:
``evaluate_accuracy`` reports on them afterwards.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import torch
import torch.nn.functional as F

from perceptlab.data.mnist import MnistData
from perceptlab.engine.augment import random_affine
from perceptlab.engine.checkpoint import has_checkpoint, load_checkpoint, save_checkpoint
from perceptlab.engine.classifiers import build
from perceptlab.engine.weights import save_weights


@dataclass
class ClassifierRecipe:
    arch: str
    epochs: int
    lr: float = 1e-3
    batch_size: int = 128
    weight_decay: float = 5e-4
    augment: bool = True
    label_smoothing: float = 0.0
    warmup_steps: int = 100
    seed: int = 0


# Registry name -> recipe of the shipped weights.
RECIPES: dict[str, ClassifierRecipe] = {
    "vgg": ClassifierRecipe("smallvgg", epochs=4),
    "cornet": ClassifierRecipe("cornet_z", epochs=15),
    "mlp": ClassifierRecipe("mlp", epochs=30),
    "lrm": ClassifierRecipe("logreg", epochs=30, lr=3e-3, weight_decay=0.0, augment=False),
    "vit": ClassifierRecipe("vit", epochs=12, lr=5e-4, weight_decay=0.05),
}


def _lr_at(step: int, total: int, recipe: ClassifierRecipe) -> float:
    if step < recipe.warmup_steps:
        return recipe.lr * (step + 1) / recipe.warmup_steps
    progress = (step - recipe.warmup_steps) / max(1, total - recipe.warmup_steps)
    return recipe.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


@torch.no_grad()
def evaluate_accuracy(model: torch.nn.Module, data: MnistData, device="cpu", batch_size: int = 1000) -> float:
    model.eval()
    images, labels = data.tensors()
    correct = 0
    for s in range(0, len(labels), batch_size):
        logits = model(images[s : s + batch_size].to(device))
        correct += (logits.argmax(1).cpu() == labels[s : s + batch_size]).sum().item()
    return correct / max(1, len(labels))


def train_classifier(
    name: str,
    data: MnistData,
    run_dir: Path,
    out_path: Path,
    recipe: ClassifierRecipe | None = None,
    device: torch.device | str = "cpu",
) -> Iterator[dict]:
    """Train registry model ``name`` on ``data`` (the training digits); yields step/epoch records."""
    recipe = recipe or RECIPES[name]
    torch.manual_seed(recipe.seed)
    gen = torch.Generator().manual_seed(recipe.seed)
    model = build(recipe.arch).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    ckpt = Path(run_dir) / f"{name}_checkpoint.safetensors"
    images, labels = data.tensors()
    n = len(labels)
    steps_per_epoch = math.ceil(n / recipe.batch_size)
    total = steps_per_epoch * recipe.epochs
    epoch, elapsed = 0, 0.0
    if has_checkpoint(ckpt):
        scalars = load_checkpoint(ckpt, model, opt, generator=gen)
        epoch, elapsed = scalars["epoch"], scalars["elapsed_s"]
    t0 = time.monotonic() - elapsed
    while epoch < recipe.epochs:
        model.train()
        perm = torch.randperm(n, generator=gen)
        running, seen = 0.0, 0
        for i in range(steps_per_epoch):
            step = epoch * steps_per_epoch + i
            idx = perm[i * recipe.batch_size : (i + 1) * recipe.batch_size]
            x, y = images[idx], labels[idx]
            if recipe.augment:
                x = random_affine(x, gen)
            for g in opt.param_groups:
                g["lr"] = _lr_at(step, total, recipe)
            loss = F.cross_entropy(model(x.to(device)), y.to(device), label_smoothing=recipe.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            running += loss.detach().item() * len(idx)
            seen += len(idx)
            yield {"kind": "step", "step": step + 1, "total": total, "loss": running / seen}
        epoch += 1
        elapsed = time.monotonic() - t0
        save_checkpoint(ckpt, model, opt, {"epoch": epoch, "elapsed_s": elapsed}, generator=gen)
        yield {"kind": "epoch", "epoch": epoch, "epochs": recipe.epochs, "loss": running / seen}
    model.eval()
    config = {
        "name": name,
        "kind": "classifier",
        "arch": recipe.arch,
        "arch_config": {},
        "num_classes": 10,
        "training": {
            **asdict(recipe),
            "train_seconds": round(elapsed),
            "data": data.source,
            "data_fingerprint": data.fingerprint(),
            "n_train": n,
        },
    }
    save_weights(model.state_dict(), out_path, config)
    return out_path
