"""Supervised training of the classifier zoo (and of the digit judge, see ``train_judge``).

``train_classifier`` is a generator yielding a record per step and per epoch; it checkpoints each epoch
(resumable) and exports the final weights with their config. The hold-out digits are never used here:
``evaluate_accuracy`` reports on them afterwards.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from perceptlab.data.mnist import MnistData
from perceptlab.engine.augment import random_affine
from perceptlab.engine.classifiers import build
from perceptlab.engine.robust import ROBUST_EPS, ROBUST_NORM, ROBUST_TRAIN_STEPS, adversarial_examples
from perceptlab.engine.supervised import supervised_loop
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
    kind: str = "classifier"  # or "observer" (engine/observers.py)
    data_split: str = "train"  # "train": the training digits; "holdout_a": half A of the hold-out only
    # Adversarial training (engine/robust.py): PGD-adv_steps examples within adv_eps (adv_norm, [-1, 1]
    # pixel units) replace each batch; 0 steps = standard training.
    adv_eps: float = 0.0
    adv_norm: str = "l2"
    adv_steps: int = 0


# Registry name -> recipe of the shipped weights.
RECIPES: dict[str, ClassifierRecipe] = {
    "vgg": ClassifierRecipe("smallvgg", epochs=4),
    "cornet": ClassifierRecipe("cornet_z", epochs=15),
    "mlp": ClassifierRecipe("mlp", epochs=30),
    "lrm": ClassifierRecipe("logreg", epochs=30, lr=3e-3, weight_decay=0.0, augment=False),
    "vit": ClassifierRecipe("vit", epochs=16, lr=5e-4, weight_decay=0.05),
    "robust": ClassifierRecipe(
        "robust_cnn", epochs=16, adv_eps=ROBUST_EPS, adv_norm=ROBUST_NORM, adv_steps=ROBUST_TRAIN_STEPS
    ),
}

# The independent observers (never guide, never filter): other architectures and seeds than the zoo;
# obs-resnet learns from half A of the hold-out only, digits no other shipped model has seen.
OBSERVER_RECIPES: dict[str, ClassifierRecipe] = {
    "obs-cnn": ClassifierRecipe("lenet", epochs=8, seed=7, kind="observer"),
    "obs-resnet": ClassifierRecipe("resnet_s", epochs=40, seed=13, kind="observer", data_split="holdout_a"),
}


def observer_split(data: MnistData) -> tuple[MnistData, MnistData]:
    """Halves A and B of the fixed hold-out (every other held-out digit): an observer may learn from A;
    B is the evaluation set no model ever trains on."""
    held = data.held_out()
    half_a = np.arange(len(held)) % 2 == 0
    return held.subset(half_a), held.subset(~half_a)


def recipe_data(recipe: ClassifierRecipe, data: MnistData) -> MnistData:
    """The digits a recipe trains on (``data`` holds every digit, the hold-out included)."""
    if recipe.data_split == "holdout_a":
        return observer_split(data)[0]
    return data.train()


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
    recipe = recipe or {**RECIPES, **OBSERVER_RECIPES}[name]
    torch.manual_seed(recipe.seed)
    gen = torch.Generator().manual_seed(recipe.seed)
    model = build(recipe.arch).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    images, labels = data.tensors()

    def prepare(x: torch.Tensor, y: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        return (random_affine(x, gen) if recipe.augment else x), y

    def loss_fn(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x, y = x.to(device), y.to(device)
        if recipe.adv_steps > 0:
            x = adversarial_examples(model, x, y, recipe.adv_eps, recipe.adv_norm, recipe.adv_steps, gen)
        return F.cross_entropy(model(x), y, label_smoothing=recipe.label_smoothing)

    elapsed = yield from supervised_loop(
        model,
        opt,
        Path(run_dir) / f"{name}_checkpoint.safetensors",
        images,
        labels,
        epochs=recipe.epochs,
        batch_size=recipe.batch_size,
        generator=gen,
        lr_at=lambda step, total: _lr_at(step, total, recipe),
        loss_fn=loss_fn,
        prepare=prepare,
    )
    model.eval()
    config = {
        "name": name,
        "kind": recipe.kind,
        "arch": recipe.arch,
        "arch_config": {},
        "num_classes": 10,
        "training": {
            **asdict(recipe),
            "train_seconds": round(elapsed),
            "data": data.source,
            "data_fingerprint": data.fingerprint(),
            "n_train": len(labels),
        },
    }
    save_weights(model.state_dict(), out_path, config)
    return out_path
