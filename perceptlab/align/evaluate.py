"""How well Base, Group and Individual models predict human choices (the paper's Table and §5).

:func:`evaluate_alignment` reports, on data no model was trained on:

- accuracy (and mean negative log-likelihood) of Base / Group / Indiv on the MNIST hold-out digits,
  on the test part of all trials, and on each participant's own test trials; "Indiv" on all trials
  is the mean over the IndivNets (each predicting everybody's choices, as in the paper's table);
- the share of participants whose IndivNet beats the GroupNet on their own test trials (strictly
  higher accuracy; ties are counted separately; also by log-likelihood, which is less noisy);
- model–human entropy agreement (DESIGN §3): Spearman of the per-stimulus human choice entropy
  (test stimuli with at least ``min_responses`` responses) against the entropy of the model's softmax,
  through :func:`perceptlab.analysis.correlation.spearman_or_reason`; the per-stimulus entropies
  behind it are in ``entropy_points`` (``stimulus``, ``human`` and one list per model, bits);
- the gain of IndivNet over GroupNet by human-entropy bin (pooled over the participants' own test
  trials): the paper finds it concentrated on high-entropy images.

Model outputs go through the cached trunk features of :mod:`perceptlab.align.features`, so models
sharing a frozen trunk (a base, its GroupNet and IndivNets fine-tuned with ``trainable="head"``) cost
one forward pass per image in total.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from perceptlab.align.datasets import AlignData
from perceptlab.align.features import FeatureCache, ImageBank
from perceptlab.align.finetune import FinetuneResult
from perceptlab.align.layers import module_hash, split_model
from perceptlab.analysis.choices import entropy_bits
from perceptlab.analysis.correlation import spearman_or_reason
from perceptlab.data.mnist import MnistData, load_mnist
from perceptlab.engine.registry import Registry, default_registry

DEFAULT_BINS = (0.0, 0.5, 1.0, 1.5, float("inf"))
CHUNK = 4096


@dataclass
class ModelSpec:
    """A model to evaluate: a display name, the module (eval mode) and its architecture."""

    name: str
    model: nn.Module
    arch: str


def as_spec(model: str | FinetuneResult | ModelSpec, registry: Registry, device: torch.device) -> ModelSpec:
    if isinstance(model, ModelSpec):
        return model
    if isinstance(model, FinetuneResult):
        return ModelSpec(model.saved_name or f"<{model.level}>", model.model.to(device).eval(), model.arch)
    entry = registry.entry(str(model), kind="classifier")
    return ModelSpec(entry.name, registry.load(entry.name, device, kind="classifier"), entry.arch)


def model_probs(
    spec: ModelSpec, bank: ImageBank, rows: np.ndarray, cache: FeatureCache, device: torch.device | str = "cpu"
) -> Generator[dict[str, Any], None, np.ndarray]:
    """Softmax probabilities (len(rows), C) of a model on rows of an image bank."""
    try:
        trunk, top = split_model(spec.model, spec.arch, "head")
    except ValueError:
        trunk, top = None, spec.model
    rows = np.asarray(rows, dtype=np.int64)
    feats = yield from cache.ensure(
        trunk,
        module_hash(trunk) if trunk is not None else None,
        bank,
        rows,
        device,
        what=f"{bank.key.split(':')[0]} features",
    )
    idx = torch.tensor(rows)
    was = top.training
    top.eval()
    out = []
    with torch.no_grad():
        for s in range(0, len(idx), CHUNK):
            out.append(torch.softmax(top(feats[idx[s : s + CHUNK].to(feats.device)]), dim=1).cpu())
    top.train(was)
    return torch.cat(out).numpy().astype(np.float64) if out else np.zeros((0, 10))


def _acc_nll(probs_rows: np.ndarray, responses: np.ndarray) -> tuple[float | None, float | None]:
    if len(responses) == 0:
        return None, None
    acc = float((probs_rows.argmax(1) == responses).mean())
    nll = float(-np.log(np.clip(probs_rows[np.arange(len(responses)), responses], 1e-12, None)).mean())
    return acc, nll


def _bin_labels(edges: Sequence[float]) -> list[str]:
    return [f"[{lo:g}, {hi:g})" if np.isfinite(hi) else f">= {lo:g}" for lo, hi in zip(edges[:-1], edges[1:])]


def evaluate_alignment(
    data: AlignData,
    base: str | FinetuneResult | ModelSpec | None,
    group: str | FinetuneResult | ModelSpec | None,
    individuals: Mapping[str, str | FinetuneResult | ModelSpec] | None = None,
    mnist: MnistData | None = None,
    *,
    registry: Registry | None = None,
    device: torch.device | str = "cpu",
    cache: FeatureCache | None = None,
    entropy_bins: Sequence[float] = DEFAULT_BINS,
    min_responses: int = 3,
    part: str = "test",
) -> Generator[dict[str, Any], None, dict]:
    """Evaluate on the ``part`` (default test) trials; a generator returning a JSON-ready dict (see the
    module docstring). ``individuals`` maps participant -> their IndivNet."""
    registry = registry or default_registry()
    device = torch.device(device)
    cache = cache or FeatureCache()
    individuals = {data.check_participant(p): m for p, m in (individuals or {}).items()}
    specs: dict[str, ModelSpec] = {}
    if base is not None:
        specs["base"] = as_spec(base, registry, device)
    if group is not None:
        specs["group"] = as_spec(group, registry, device)
    indiv_specs = {p: as_spec(m, registry, device) for p, m in individuals.items()}

    test = data.rows(part)
    sidx = test["sidx"].to_numpy(np.int64)
    resp = test["response"].to_numpy(np.int64)
    test_rows = np.unique(sidx)
    stim_bank = ImageBank(f"stimuli:{data.image_hash}", data.image_tensor)
    full = np.zeros((len(data.stimuli), data.n_classes))

    def on_stimuli(spec: ModelSpec) -> Generator[dict, None, np.ndarray]:
        p = full.copy()
        p[test_rows] = yield from model_probs(spec, stim_bank, test_rows, cache, device)
        return p

    probs: dict[str, np.ndarray] = {}
    for key, spec in specs.items():
        probs[key] = yield from on_stimuli(spec)
        yield {"kind": "eval", "model": spec.name}
    indiv_probs: dict[str, np.ndarray] = {}
    for p, spec in indiv_specs.items():
        indiv_probs[p] = yield from on_stimuli(spec)
        yield {"kind": "eval", "model": spec.name}

    report: dict[str, Any] = {
        "part": part,
        "models": {k: s.name for k, s in specs.items()},
        "individual_models": {p: s.name for p, s in indiv_specs.items()},
        "n_trials": int(len(test)),
        "n_stimuli": int(len(test_rows)),
    }

    # MNIST hold-out
    mnist_acc: dict[str, float | None] = {}
    held = (mnist if mnist is not None else load_mnist()).held_out()
    if len(held):
        bank = ImageBank(f"mnist-heldout:{held.fingerprint()}", held.tensors()[0])
        rows = np.arange(len(held))
        for key, spec in specs.items():
            pr = yield from model_probs(spec, bank, rows, cache, device)
            mnist_acc[key] = float((pr.argmax(1) == held.labels).mean())
        if indiv_specs:
            accs = []
            for spec in indiv_specs.values():
                pr = yield from model_probs(spec, bank, rows, cache, device)
                accs.append(float((pr.argmax(1) == held.labels).mean()))
            mnist_acc["indiv_mean"] = float(np.mean(accs))
    report["mnist_heldout_accuracy"] = mnist_acc
    report["mnist_heldout_digits"] = int(len(held))

    # all trials' test part
    all_trials: dict[str, Any] = {}
    for key, pr in probs.items():
        acc, nll = _acc_nll(pr[sidx], resp)
        all_trials[key] = {"accuracy": acc, "nll": nll}
    if indiv_probs:
        accs = [_acc_nll(pr[sidx], resp) for pr in indiv_probs.values()]
        all_trials["indiv_mean"] = {
            "accuracy": float(np.mean([a for a, _ in accs])),
            "nll": float(np.mean([n for _, n in accs])),
        }
    report["trials_accuracy"] = all_trials

    # each participant's own test trials
    people = []
    pid_col = test["participant"].to_numpy()
    for pid in list(indiv_specs) or data.participants:
        mask = pid_col == pid
        row: dict[str, Any] = {"participant": pid, "n": int(mask.sum())}
        for key, pr in probs.items():
            row[key], row[f"{key}_nll"] = _acc_nll(pr[sidx[mask]], resp[mask])
        if pid in indiv_probs:
            row["indiv"], row["indiv_nll"] = _acc_nll(indiv_probs[pid][sidx[mask]], resp[mask])
        people.append(row)
    report["participants"] = people
    if indiv_probs and "group" in probs:
        scored = [r for r in people if r["n"] > 0 and r.get("indiv") is not None]
        better = sum(r["indiv"] > r["group"] for r in scored)
        ties = sum(r["indiv"] == r["group"] for r in scored)
        better_nll = sum(r["indiv_nll"] < r["group_nll"] for r in scored)
        report["indiv_vs_group"] = {
            "participants": len(scored),
            "better": better,
            "ties": ties,
            "worse": len(scored) - better - ties,
            "share_better": better / len(scored) if scored else None,
            "share_better_nll": better_nll / len(scored) if scored else None,
            "mean_gain": float(np.mean([r["indiv"] - r["group"] for r in scored])) if scored else None,
        }
        if "base" in probs:
            report["indiv_vs_group"]["mean_own_accuracy"] = {
                k: float(np.mean([r[k] for r in scored])) if scored else None for k in ("base", "group", "indiv")
            }

    # model-human entropy agreement on the test stimuli
    counts = data.choice_counts(test)[test_rows]
    n_resp = counts.sum(1)
    keep = n_resp >= min_responses
    human_h = entropy_bits(counts[keep]) if keep.any() else np.zeros(0)
    spear: dict[str, Any] = {"n_stimuli": int(keep.sum()), "min_responses": min_responses}
    points: dict[str, list] = {
        "stimulus": [str(k) for k in data.stimuli[test_rows[keep]]],
        "human": [float(v) for v in human_h],
    }
    for key, pr in probs.items():
        model_h = entropy_bits(pr[test_rows][keep]) if keep.any() else np.zeros(0)
        spear[key] = spearman_or_reason(
            human_h, model_h, x_label="human entropies", y_label="model entropies"
        ).to_dict()
        points[key] = [float(v) for v in model_h]
    report["entropy_spearman"] = spear
    report["entropy_points"] = points

    # IndivNet - GroupNet by human entropy bin (own test trials, pooled)
    if indiv_probs and "group" in probs:
        h_by_row = np.full(len(data.stimuli), np.nan)
        h_by_row[test_rows[keep]] = human_h
        edges = list(entropy_bins)
        labels = _bin_labels(edges)
        g_correct, i_correct, bins = [], [], []
        for pid, pr in indiv_probs.items():
            mask = pid_col == pid
            s, r = sidx[mask], resp[mask]
            g_correct.append(probs["group"][s].argmax(1) == r)
            i_correct.append(pr[s].argmax(1) == r)
            bins.append(np.digitize(h_by_row[s], edges[1:-1], right=False))
            bins[-1] = np.where(np.isnan(h_by_row[s]), -1, bins[-1])
        g = np.concatenate(g_correct) if g_correct else np.zeros(0, bool)
        i = np.concatenate(i_correct) if i_correct else np.zeros(0, bool)
        b = np.concatenate(bins) if bins else np.zeros(0, int)
        table = []
        for k, label in enumerate(labels):
            m = b == k
            table.append(
                {
                    "bin": label,
                    "n_trials": int(m.sum()),
                    "group_accuracy": float(g[m].mean()) if m.any() else None,
                    "indiv_accuracy": float(i[m].mean()) if m.any() else None,
                    "gain": float(i[m].mean() - g[m].mean()) if m.any() else None,
                }
            )
        report["gain_by_entropy"] = {"bins": table, "trials_without_entropy": int((b == -1).sum())}
    return report


def format_report(report: dict) -> str:
    """A short text version of :func:`evaluate_alignment`'s report."""

    def pct(v: float | None) -> str:
        return "   n/a" if v is None else f"{100 * v:5.1f}%"

    lines = [f"evaluation on the {report['part']} part: {report['n_trials']} trials on {report['n_stimuli']} stimuli"]
    keys = [k for k in ("base", "group") if k in report["models"]]
    header = "".join(f"{k:>9s}" for k in keys) + ("    indiv" if report["individual_models"] else "")
    lines.append(f"{'accuracy':28s}{header}")
    mn = report.get("mnist_heldout_accuracy", {})
    lines.append(
        f"{'MNIST hold-out':28s}"
        + "".join(f"{pct(mn.get(k)):>9s}" for k in keys)
        + (f"{pct(mn.get('indiv_mean')):>9s}" if report["individual_models"] else "")
    )
    tr = report["trials_accuracy"]
    lines.append(
        f"{'all trials (test)':28s}"
        + "".join(f"{pct(tr[k]['accuracy']):>9s}" for k in keys)
        + (f"{pct(tr['indiv_mean']['accuracy']):>9s}" if "indiv_mean" in tr else "")
    )
    ivg = report.get("indiv_vs_group")
    if ivg:
        own = ivg.get("mean_own_accuracy", {})
        lines.append(
            f"{'own test trials (mean)':28s}"
            + "".join(f"{pct(own.get(k)):>9s}" for k in keys)
            + f"{pct(own.get('indiv')):>9s}"
        )
        lines.append(
            f"IndivNet beats GroupNet on own test trials: {ivg['better']}/{ivg['participants']} participants "
            f"({ivg['ties']} ties; by log-likelihood {pct(ivg['share_better_nll']).strip()})"
        )
    sp = report["entropy_spearman"]
    for k in keys:
        r = sp[k]
        txt = f"rho = {r['rho']:.3f}" if r["rho"] is not None else f"not defined ({r['reason']})"
        lines.append(f"model-human entropy Spearman ({k}): {txt} over {sp['n_stimuli']} stimuli")
    gb = report.get("gain_by_entropy")
    if gb:

        def gain(b: dict) -> str:
            return "n/a" if b["gain"] is None else f"{100 * b['gain']:+.1f} points"

        lines.append(
            "IndivNet - GroupNet by human entropy (bits): "
            + ", ".join(f"{b['bin']}: {gain(b)} (n={b['n_trials']})" for b in gb["bins"])
        )
    return "\n".join(lines)
