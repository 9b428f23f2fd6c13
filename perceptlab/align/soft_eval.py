"""Soft-label GroupNets and their evaluation on held-out stimuli, like seeds/004's Table 1.

From human relabelings of mixup stimuli (:func:`perceptlab.analysis.soft_labels.relabel_rows`) this
fine-tunes one base zoo model several ways — on hard labels (each trial's choice, slider trials
rounded to the nearer class), on soft-label sets (averaged relabelings, with and without confidence
smoothing omega), and optionally on the generating mixup labels (1 - lambda, lambda) — with the same
split, recipe and MNIST mix (:func:`perceptlab.align.finetune.finetune_group`), and scores every model
and the base on the *test* stimuli (never trained on) against the held-out people's averaged
relabelings h:

- ``ce``: cross-entropy -sum_c h_c log p_c, averaged over test stimuli (nats);
- ``ece``: expected calibration error, 15 equal-width bins of the model's top probability, where a
  stimulus's "accuracy" is h at the model's top class (the chance a person agrees);
- ``agreement``: mean h at the model's top class.
Repeating with several seeds (split and training) gives mean ± sd.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import torch

from perceptlab.align.datasets import build_align_data
from perceptlab.align.features import FeatureCache
from perceptlab.align.finetune import FinetuneRecipe, finetune_group
from perceptlab.align.split import SplitSettings
from perceptlab.analysis.soft_labels import targets_matrix
from perceptlab.data.mnist import MnistData
from perceptlab.engine.registry import Registry, default_registry

ECE_BINS = 15


def calibration_metrics(probs: np.ndarray, human: np.ndarray, bins: int = ECE_BINS) -> dict:
    """CE, ECE and agreement of model probabilities (N, C) against human distributions (N, C)."""
    p = np.clip(np.asarray(probs, float), 1e-12, 1.0)
    h = np.asarray(human, float)
    ce = float(-(h * np.log(p)).sum(axis=1).mean())
    top = p.argmax(axis=1)
    conf = p[np.arange(len(p)), top]
    acc = h[np.arange(len(h)), top]
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            ece += sel.mean() * abs(acc[sel].mean() - conf[sel].mean())
    return {"ce": ce, "ece": float(ece), "agreement": float(acc.mean()), "n": int(len(p))}


@torch.no_grad()
def _probs(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    model.eval()
    return torch.softmax(model(x), dim=1).double().numpy()


def soft_label_table(
    rows: pd.DataFrame,
    images: np.ndarray,
    stimuli: list[str],
    classes: list[str],
    targets: Mapping[str, pd.DataFrame],
    reference: pd.DataFrame,
    base: str = "vgg",
    mnist: MnistData | None = None,
    recipe: FinetuneRecipe | None = None,
    seeds: tuple[int, ...] = (0,),
    test_fraction: float = 0.3,
    val_fraction: float = 0.15,
    registry: Registry | None = None,
) -> Generator[dict[str, Any], None, dict]:
    """Fine-tune ``base`` on hard labels and on each soft-label set of ``targets`` (name -> table of
    :func:`perceptlab.analysis.soft_labels.soft_label_set`), evaluate all on the test stimuli against
    ``reference`` (unsmoothed averaged relabelings); returns {"rows": [...], "table": [...]}. A generator
    (yields the fine-tuning records)."""
    registry = registry or default_registry()
    recipe = recipe or FinetuneRecipe()
    cache = FeatureCache()
    trials = pd.DataFrame({"participant": rows["participant"].astype(str).to_numpy(),
                           "stimulus": rows["stimulus"].astype(str).to_numpy(),
                           "response": rows["label"].to_numpy(np.int64)})
    results = []
    for seed in seeds:
        data = build_align_data(trials, images=images, stimuli=stimuli,
                                split=SplitSettings(val_fraction=val_fraction, test_fraction=test_fraction, seed=seed))
        data = replace(data, classes=tuple(classes))
        test = data.rows("test")
        test_sidx = np.sort(test["sidx"].unique())
        keys = data.stimuli[test_sidx]
        human = targets_matrix(reference, classes, keys)
        x = data.image_tensor[torch.as_tensor(test_sidx)]
        base_model = registry.load(base, kind="classifier")
        results.append({"seed": seed, "model": "base (no fine-tuning)", **calibration_metrics(_probs(base_model, x), human)})
        runs = {"hard labels": (data, recipe.replace(seed=seed, soft_labels=False))}
        for name, table in targets.items():
            soft = replace(data, soft_targets=targets_matrix(table, classes, data.stimuli))
            runs[name] = (soft, recipe.replace(seed=seed, soft_labels=True))
        for name, (d, r) in runs.items():
            yield {"kind": "run", "model": name, "seed": seed}
            res = yield from finetune_group(base, d, mnist, r, registry=registry, cache=cache)
            results.append({"seed": seed, "model": name, **calibration_metrics(_probs(res.model, x), human),
                            "best_epoch": res.best_epoch})
    df = pd.DataFrame(results)
    order = list(dict.fromkeys(df["model"]))
    agg = df.groupby("model", sort=False)[["ce", "ece", "agreement"]].agg(["mean", "std"])
    table = []
    for m in order:
        row = {"model": m, "seeds": int((df["model"] == m).sum()), "test_stimuli": int(df.loc[df["model"] == m, "n"].iloc[0])}
        for k in ("ce", "ece", "agreement"):
            row[k] = float(agg.loc[m, (k, "mean")])
            row[f"{k}_sd"] = None if pd.isna(agg.loc[m, (k, "std")]) else float(agg.loc[m, (k, "std")])
        table.append(row)
    return {"rows": results, "table": table}


def format_table(table: list[dict]) -> str:
    """The table as Markdown (mean ± sd over seeds)."""
    def cell(r, k):
        sd = r.get(f"{k}_sd")
        return f"{r[k]:.3f}" + (f" ± {sd:.3f}" if sd is not None else "")
    lines = ["| labels | CE (nats) | ECE | agreement |", "|---|---|---|---|"]
    lines += [f"| {r['model']} | {cell(r, 'ce')} | {cell(r, 'ece')} | {cell(r, 'agreement')} |" for r in table]
    return "\n".join(lines)
