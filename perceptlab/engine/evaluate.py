"""Measurements of the shipped models: classifier accuracy, prior sample quality, judge AUC."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from perceptlab.data.mnist import MnistData
from perceptlab.engine.prior import sample
from perceptlab.engine.registry import Registry
from perceptlab.engine.train_classifiers import evaluate_accuracy
from perceptlab.engine.train_judge import auc, judge_score_tensor

CONFIDENT_PROB = 0.9
JUDGE_PASS = 0.5


def eval_classifiers(reg: Registry, data: MnistData, names: list[str], device="cpu") -> dict[str, dict]:
    held = data.held_out()
    return {
        name: {"heldout_accuracy": evaluate_accuracy(reg.load(name, device), held, device), "n": len(held)}
        for name in names
    }


def grid_image(x: torch.Tensor, rows: int, cols: int, scale: int = 1) -> np.ndarray:
    """(rows*cols, 1, 28, 28) in [-1, 1] -> uint8 (rows*28*scale, cols*28*scale) with 1-px gaps."""
    x = ((x[: rows * cols].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu().numpy()[:, 0]
    tile = 28 * scale + 2
    out = np.full((rows * tile, cols * tile), 40, dtype=np.uint8)
    for i, img in enumerate(x):
        r, c = divmod(i, cols)
        big = np.kron(img, np.ones((scale, scale), dtype=np.uint8))
        out[r * tile + 1 : r * tile + 1 + 28 * scale, c * tile + 1 : c * tile + 1 + 28 * scale] = big
    return out


def eval_prior(
    reg: Registry,
    n: int = 1000,
    per_class: int = 100,
    steps: int = 50,
    seed: int = 0,
    device="cpu",
    classifier: str = "vgg",
    judge: str = "judge",
    grid_path: Path | None = None,
) -> dict:
    """Quality of unconditional and class-conditional prior samples, judged by a classifier and the judge."""
    prior = reg.load("dit", device, kind="prior")
    clf = reg.load(classifier, device, kind="classifier")
    jdg = reg.load(judge, device, kind="judge")
    g = torch.Generator(device=device).manual_seed(seed)
    x = sample(prior, n, steps=steps, generator=g, device=device)
    with torch.no_grad():
        probs = torch.cat([torch.softmax(clf(x[s : s + 500]), 1) for s in range(0, n, 500)])
    scores = judge_score_tensor(jdg, x)
    conf = probs.max(1).values
    ok = (conf > CONFIDENT_PROB) & (scores > JUDGE_PASS)
    pred = probs.argmax(1)
    shares = torch.bincount(pred, minlength=10).float() / n
    result = {
        "n_unconditional": n,
        "steps": steps,
        "share_confident_and_judged_digit": ok.float().mean().item(),
        "share_confident": (conf > CONFIDENT_PROB).float().mean().item(),
        "share_judged_digit": (scores > JUDGE_PASS).float().mean().item(),
        "class_shares": [round(v, 4) for v in shares.tolist()],
        "classifier": classifier,
    }
    if per_class:
        labels = torch.arange(10).repeat_interleave(per_class)
        xc = sample(prior, len(labels), steps=steps, class_labels=labels, generator=g, device=device)
        with torch.no_grad():
            pc = torch.cat([clf(xc[s : s + 500]).argmax(1) for s in range(0, len(xc), 500)])
        result["conditional_per_class"] = per_class
        result["conditional_accuracy"] = (pc.cpu() == labels).float().mean().item()
        result["conditional_accuracy_by_class"] = [
            round((pc.cpu()[labels == k] == k).float().mean().item(), 3) for k in range(10)
        ]
    if grid_path is not None:
        from PIL import Image  # noqa: PLC0415

        Image.fromarray(grid_image(x[:100], 10, 10, scale=2)).save(grid_path)
        result["grid"] = str(grid_path)
    return result


def eval_judge(reg: Registry, data: MnistData, n_per_kind: int = 1000, seed: int = 12345, device="cpu") -> dict:
    """AUC of held-out real digits against fresh non-digits of each kind (a seed not used in training)."""
    from perceptlab.engine.nondigits import make_nondigits  # noqa: PLC0415

    jdg = reg.load("judge", device, kind="judge")
    held, _ = data.held_out().tensors()
    prior = reg.load("dit", device, kind="prior") if "dit" in reg.names("prior") else None
    neg, kinds = make_nondigits(n_per_kind, seed, held, prior=prior)
    pos_scores = judge_score_tensor(jdg, held.to(device)).cpu().numpy()
    neg_scores = judge_score_tensor(jdg, neg.to(device)).cpu().numpy()
    kinds_arr = np.array(kinds)
    per_kind = {k: auc(pos_scores, neg_scores[kinds_arr == k]) for k in dict.fromkeys(kinds)}
    return {
        "n_real": len(pos_scores),
        "n_per_kind": n_per_kind,
        "auc_by_kind": per_kind,
        "auc_all": auc(pos_scores, neg_scores),
        "real_share_above_0.5": float((pos_scores > JUDGE_PASS).mean()),
    }
