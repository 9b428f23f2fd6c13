"""The measured alignment pipeline, end to end, on simulated observers (clearly SYNTHETIC).

:func:`simulated_experiment` (a generator) / :func:`run_simulated_experiment` (returns the dict):

1. stimuli: a stimulus library (its non-rejected entries), arrays, or — when none is given — a
   stand-in set of mixup images of two MNIST training digits of different classes (lambda in
   [0.35, 0.65]); real boundary stimuli make a better test;
2. observers: :func:`perceptlab.analysis.simulate.simulate_observers` answering through an *observer*
   zoo model's probabilities plus personal bias / temperature / lapse (default: CORnet-Z observers,
   a SmallVGG base, so the base model does not already share the observers' uncertainty);
3. GroupNet from the base, IndivNets for every participant or a random few (timed: GroupNet on the
   whole table, every IndivNet, the first one also with a cold feature cache as a separate process
   would have it);
4. evaluation (:func:`perceptlab.align.evaluate.evaluate_alignment`), and the share of IndivNets
   beating the GroupNet among participants whose simulated bias is non-trivial (RMS deviation of
   their bias vector from the mean bias, centred over classes, >= ``nontrivial_bias`` nats);
5. manipulation (when the registry has a prior): the two simulated participants the IndivNets tell
   apart most, on the class pairs where their IndivNets disagree most, IndivNet-controversial vs
   GroupNet-uncertainty stimuli (:mod:`perceptlab.align.manipulate`), answered by those two simulated
   people with their ground-truth parameters, scored.

The returned dict has ``acceptance`` with the checks of the alignment issue.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Generator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from perceptlab.align.datasets import build_align_data
from perceptlab.align.evaluate import as_spec, evaluate_alignment, model_probs
from perceptlab.align.features import FeatureCache, ImageBank
from perceptlab.align.finetune import FinetuneRecipe, finetune_group, finetune_individual
from perceptlab.align.manipulate import ManipulationPlan, generate_manipulation, score_manipulation
from perceptlab.align.split import SplitSettings
from perceptlab.align.store import default_name, save_model
from perceptlab.analysis.simulate import SYNTHETIC_NOTE, choice_probabilities, simulate_observers
from perceptlab.data.library import StimulusLibrary
from perceptlab.data.mnist import MnistData, load_mnist
from perceptlab.engine.filters import FilterSettings
from perceptlab.engine.registry import Registry, default_registry, images_to_tensor
from perceptlab.engine.sampler import SamplerSettings
from perceptlab.errors import PerceptLabError


@dataclass
class ExperimentSettings:
    """Knobs of the simulated experiment (defaults: 40 x 500 = 20,000 trials, as in the issue)."""

    observer_model: str = "cornet"
    base: str = "vgg"
    participants: int = 40
    trials_per_participant: int = 500
    clusters: int = 4
    individuals: int | None = None  # IndivNets to fine-tune (None: every participant)
    seed: int = 0
    bias_strength: float = 1.5
    nontrivial_bias: float = 0.5
    max_stimuli: int | None = None
    mixup_stimuli: int = 2000
    manipulation: bool = True
    manipulation_pairs: int = 3
    per_pair: int = 8
    sampler_preset: str = "fast"
    responses_per_stimulus: int = 1

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ExperimentSettings:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


def mixup_stimuli(mnist: MnistData, n: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Stand-in ambiguous stimuli: lambda * digit_i + (1 - lambda) * digit_j of different classes."""
    rng = np.random.default_rng(seed)
    x, y = mnist.images[:, 0], mnist.labels
    i = rng.integers(0, len(y), n)
    j = rng.integers(0, len(y), n)
    same = y[i] == y[j]
    while same.any():
        j[same] = rng.integers(0, len(y), int(same.sum()))
        same = y[i] == y[j]
    lam = rng.uniform(0.35, 0.65, n)[:, None, None]
    mixed = lam * x[i] + (1 - lam) * x[j]
    images = np.clip(np.round((mixed + 1) * 127.5), 0, 255).astype(np.uint8)
    return [f"mix{k:05d}" for k in range(n)], images


def _library_stimuli(library: str | Path | StimulusLibrary) -> tuple[list[str], np.ndarray]:
    lib = library if isinstance(library, StimulusLibrary) else StimulusLibrary.open(library)
    try:
        ids = [r.id for r in lib.records() if r.status != "rejected"]
        if not ids:
            raise PerceptLabError(f"{lib.path}: the library has no usable stimuli")
        return ids, np.stack([lib.image(i) for i in ids])
    finally:
        if not isinstance(library, StimulusLibrary):
            lib.close()


@torch.no_grad()
def _probs(model: torch.nn.Module, images: np.ndarray, device) -> np.ndarray:
    x = images_to_tensor(images)
    out = [torch.softmax(model(x[s : s + 512].to(device)), 1).cpu() for s in range(0, len(x), 512)]
    return torch.cat(out).numpy().astype(np.float64)


def _respond(probs: np.ndarray, truth: pd.Series, n_classes: int, rng: np.random.Generator) -> np.ndarray:
    """One simulated answer per row of ``probs`` from a simulated participant (the response model of
    :func:`perceptlab.analysis.simulate.simulate_observers`: (log p + bias) / temperature, Gumbel-max,
    uniform lapses)."""
    p = _truth_probs(probs, truth, n_classes)
    u = rng.random((len(p), 1))
    return np.minimum((p.cumsum(axis=1) < u).sum(axis=1), n_classes - 1)


def bias_deviation(truth: pd.DataFrame, n_classes: int = 10) -> pd.Series:
    """RMS deviation (nats) of each participant's bias from the mean bias, centred over classes."""
    b = truth[[f"bias_{c}" for c in range(n_classes)]].to_numpy(float)
    d = b - b.mean(axis=0, keepdims=True)
    d -= d.mean(axis=1, keepdims=True)
    return pd.Series(np.sqrt((d**2).mean(axis=1)), index=truth["participant"].astype(str))


def oracle_accuracies(
    data, keys: Sequence[str], probs: np.ndarray, truth: pd.DataFrame, participants: Sequence[str]
) -> dict[str, dict[str, float | int]]:
    """The measurement ceiling: on each participant's own test trials, the accuracy of the simulated
    person's own ground-truth choice rule (argmax of observer log p + their bias) and of the ground-truth
    group rule (argmax of observer log p + the mean bias). With ~100 test trials even the true model
    does not always beat the true group model; an IndivNet cannot do better than this."""
    pos = {str(k): i for i, k in enumerate(keys)}
    n_classes = probs.shape[1]
    bias = truth.set_index(truth["participant"].astype(str))[[f"bias_{c}" for c in range(n_classes)]]
    mean_bias = bias.to_numpy(float).mean(axis=0)
    logp = np.log(np.clip(probs, 1e-12, None))
    out = {}
    for pid in participants:
        rows = data.rows("test", pid)
        if rows.empty:
            continue
        idx = np.array([pos[str(k)] for k in data.stimuli[rows["sidx"].to_numpy()]])
        resp = rows["response"].to_numpy()
        own = np.argmax(logp[idx] + bias.loc[pid].to_numpy(float), axis=1)
        grp = np.argmax(logp[idx] + mean_bias, axis=1)
        out[pid] = {"n": int(len(resp)), "indiv": float((own == resp).mean()), "group": float((grp == resp).mean())}
    return out


def _pick_manipulation(
    indiv_probs: dict[str, np.ndarray], k: int, eligible: Sequence[str]
) -> tuple[str, str, list[tuple[int, int]]]:
    """The ordered participant pair and ``k`` class pairs with the largest predicted directional gap,
    mean over stimuli of [log P1(a) - log P1(b)] - [log P2(a) - log P2(b)] (greedy, no class twice on
    the same side)."""
    best = None
    logs = {p: np.log(np.clip(indiv_probs[p], 1e-9, None)).mean(axis=0) for p in eligible}
    for p in eligible:
        for q in eligible:
            if p == q:
                continue
            d = logs[p] - logs[q]  # per class
            gap = d[:, None] - d[None, :]  # gap[a, b]
            np.fill_diagonal(gap, -np.inf)
            picked: list[tuple[int, int]] = []
            for a, b in np.dstack(np.unravel_index(np.argsort(gap, axis=None)[::-1], gap.shape))[0]:
                if len(picked) == k:
                    break
                if all(a != x and b != y for x, y in picked):  # diverse: no class twice on the same side
                    picked.append((int(a), int(b)))
            score = float(np.mean([gap[a, b] for a, b in picked]))
            if best is None or score > best[0]:
                best = (score, p, q, picked)
    if best is None:
        raise PerceptLabError("manipulation needs at least two IndivNets", fix="fine-tune two or more individuals")
    return best[1], best[2], best[3]


def _timed(gen: Generator, box: dict, key: str) -> Generator[dict, None, Any]:
    t = time.perf_counter()
    try:
        while True:
            try:
                rec = next(gen)
            except StopIteration as stop:
                box[key] = time.perf_counter() - t
                return stop.value
            yield {**rec, "stage": key}
    finally:
        gen.close()


def simulated_experiment(
    library: str | Path | StimulusLibrary | None = None,
    settings: ExperimentSettings | None = None,
    *,
    stimuli: tuple[Sequence[str], np.ndarray] | None = None,
    recipe: FinetuneRecipe | None = None,
    split: SplitSettings | None = None,
    mnist: MnistData | None = None,
    registry: Registry | None = None,
    work_dir: str | Path | None = None,
    device: torch.device | str = "cpu",
    sampler: SamplerSettings | None = None,
) -> Generator[dict[str, Any], None, dict]:
    """The whole pipeline on simulated observers (see the module docstring); returns the report."""
    s = settings or ExperimentSettings()
    recipe = (recipe or FinetuneRecipe()).validate()
    registry = registry or default_registry()
    device = torch.device(device)
    mnist = mnist if mnist is not None else load_mnist()
    tmp = None
    if work_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="perceptlab-sim-")
        work_dir = tmp.name
    work = Path(work_dir)
    try:
        models_dir = work / "models"
        models_dir.mkdir(parents=True, exist_ok=True)
        reg = Registry(registry.builtin_dir, models_dir)
        for name in (s.observer_model, s.base):
            reg.entry(name, kind="classifier")
        timing: dict[str, Any] = {}
        notes = [SYNTHETIC_NOTE]
        if s.observer_model == s.base:
            notes.append("the observers answer through the base model itself: its entropy already matches theirs")

        # 1. stimuli
        if stimuli is not None:
            keys, images = list(map(str, stimuli[0])), np.asarray(stimuli[1])
            source = "given arrays"
        elif library is not None:
            keys, images = _library_stimuli(library)
            source = f"library {getattr(library, 'path', library)}"
        else:
            keys, images = mixup_stimuli(mnist.train(), s.mixup_stimuli, s.seed)
            source = f"stand-in: {len(keys)} mixup images of two MNIST training digits"
            notes.append("stimuli are mixup stand-ins, not boundary stimuli from a library")
        if s.max_stimuli is not None and len(keys) > s.max_stimuli:
            keys, images = keys[: s.max_stimuli], images[: s.max_stimuli]
        yield {"kind": "stage", "stage": "stimuli", "n": len(keys)}

        # 2. observers
        observer = reg.load(s.observer_model, device, kind="classifier")
        probs = _probs(observer, images, device)
        trials, truth = simulate_observers(
            keys, probs, s.participants, s.trials_per_participant, s.clusters, s.seed, bias_strength=s.bias_strength
        )
        table = pd.DataFrame(
            {
                "participant": trials["subject_id"].astype(str),
                "stimulus": trials["stimulus_id"].astype(str),
                "response": trials["response"].astype(np.int64),
            }
        )
        data = build_align_data(table, images, keys, split=split)
        dev = bias_deviation(truth)
        yield {"kind": "stage", "stage": "observers", "trials": len(table)}

        # 3. fine-tuning
        cache = FeatureCache()
        group = yield from _timed(
            finetune_group(s.base, data, mnist, recipe, registry=reg, device=device, cache=cache), timing, "group"
        )
        save_model(group, default_name("group", s.base), models_dir, registry=reg)
        rng = np.random.default_rng(s.seed)
        n_indiv = len(data.participants) if s.individuals is None else min(s.individuals, len(data.participants))
        chosen = [str(p) for p in rng.choice(data.participants, size=n_indiv, replace=False)]
        indiv = {}
        indiv_seconds = []
        for i, pid in enumerate(chosen):
            if i == 0:  # cold: what a separate process fine-tuning one participant pays
                _ = yield from _timed(
                    finetune_individual(
                        group, data, pid, mnist, recipe, registry=reg, device=device, cache=FeatureCache()
                    ),
                    timing,
                    "indiv_cold",
                )
            res = yield from _timed(
                finetune_individual(group, data, pid, mnist, recipe, registry=reg, device=device, cache=cache),
                timing,
                "indiv",
            )
            indiv_seconds.append(timing["indiv"])
            save_model(res, default_name("individual", s.base, pid), models_dir, registry=reg)
            indiv[pid] = res
        n_own = [int(len(data.rows("train", p))) for p in chosen]
        timing = {
            "group_seconds": round(timing["group"], 2),
            "group_feature_seconds": round(group.feature_seconds, 2),
            "group_trials": int(len(data.rows("train"))),
            "group_table_trials": int(len(data.trials)),
            "indiv_seconds_cold": round(timing.get("indiv_cold", float("nan")), 2),
            "indiv_seconds_mean": round(float(np.mean(indiv_seconds)), 2) if indiv_seconds else None,
            "indiv_trials_per_participant": int(s.trials_per_participant),
            "indiv_own_train_trials_mean": float(np.mean(n_own)) if n_own else None,
            "trainable": group.recipe.trainable,
            "indiv_trainable": group.recipe.indiv_trainable,
            "torch_threads": torch.get_num_threads(),
            "device": str(device),
        }

        # 4. evaluation
        report = yield from _timed(
            evaluate_alignment(data, s.base, group, indiv, mnist, registry=reg, device=device, cache=cache),
            timing,
            "evaluate",
        )
        timing["evaluate_seconds"] = round(timing.pop("evaluate"), 2)
        people = {r["participant"]: r for r in report["participants"]}
        nontrivial = [p for p in chosen if dev[p] >= s.nontrivial_bias]
        beats = [p for p in nontrivial if people[p]["n"] and people[p]["indiv"] > people[p]["group"]]
        oracle = oracle_accuracies(data, keys, probs, truth, chosen)
        oracle_beats = [p for p in nontrivial if p in oracle and oracle[p]["indiv"] > oracle[p]["group"]]
        sp = report["entropy_spearman"]
        tr = report["trials_accuracy"]
        acceptance = {
            "group_raises_entropy_spearman": (
                sp["group"]["rho"] is not None
                and sp["base"]["rho"] is not None
                and sp["group"]["rho"] > sp["base"]["rho"]
            ),
            "group_raises_trial_accuracy": tr["group"]["accuracy"] > tr["base"]["accuracy"],
            "nontrivial_participants": len(nontrivial),
            "indiv_beats_group_share_nontrivial": len(beats) / len(nontrivial) if nontrivial else None,
            "indiv_beats_group_at_least_80pct": (len(beats) / len(nontrivial) >= 0.8) if nontrivial else None,
            # the ceiling: the simulated people's own true rules against the true group rule, same trials
            "oracle_beats_group_share_nontrivial": len(oracle_beats) / len(nontrivial) if nontrivial else None,
            "indiv_beats_group_share_nontrivial_by_nll": (
                sum(people[p]["indiv_nll"] < people[p]["group_nll"] for p in nontrivial if people[p]["n"])
                / len(nontrivial)
                if nontrivial
                else None
            ),
        }

        # 5. manipulation
        manip: dict[str, Any]
        if not s.manipulation:
            manip = {"skipped": "turned off"}
        elif len(indiv) < 2:
            manip = {"skipped": "needs at least two IndivNets"}
        elif not reg.names("prior"):
            manip = {"skipped": f"no diffusion prior in {reg.builtin_dir}"}
        else:
            manip = yield from _manipulation(s, data, indiv, group, truth, reg, work, device, cache, sampler, timing)
            ind, grp = manip["scores"]["arms"].get("indiv", {}), manip["scores"]["arms"].get("group", {})
            if ind.get("n") and grp.get("n"):
                acceptance["manipulation_success_indiv_gt_group"] = ind["success_rate"] > grp["success_rate"]
            exp = manip.get("expected", {})
            if "indiv" in exp and "group" in exp:
                acceptance["manipulation_expected_success_indiv_gt_group"] = (
                    exp["indiv"]["success"] > exp["group"]["success"]
                )
        return {
            "synthetic": True,
            "notes": notes,
            "settings": s.to_dict(),
            "recipe": group.recipe.to_dict(),
            "stimuli": {"source": source, "n": len(keys)},
            "data": data.summary(),
            "individuals": {
                p: {
                    "bias_deviation": float(dev[p]),
                    "nontrivial": p in nontrivial,
                    "best_epoch": indiv[p].best_epoch,
                    **{k: people[p].get(k) for k in ("n", "base", "group", "indiv")},
                    "oracle_indiv": oracle.get(p, {}).get("indiv"),
                    "oracle_group": oracle.get(p, {}).get("group"),
                }
                for p in chosen
            },
            "group_model": group.metrics() | {"history": None},
            "evaluation": report,
            "timing": timing,
            "acceptance": acceptance,
            "manipulation": manip,
        }
    finally:
        if tmp is not None:
            tmp.cleanup()


def _manipulation(
    s, data, indiv, group, truth, reg, work, device, cache, sampler, timing
) -> Generator[dict, None, dict]:
    test_rows = np.unique(data.rows("test")["sidx"].to_numpy())
    bank = ImageBank(f"stimuli:{data.image_hash}", data.image_tensor)
    iprobs = {}
    for pid, res in indiv.items():
        iprobs[pid] = yield from model_probs(as_spec(res, reg, device), bank, test_rows, cache, device)
    p1, p2, pairs = _pick_manipulation(iprobs, s.manipulation_pairs, list(indiv))
    settings = sampler or SamplerSettings.from_preset(s.sampler_preset, seed=s.seed)
    filters = FilterSettings()
    if not reg.names("judge"):
        settings = settings.replace(judge_weight=0.0)
        filters = FilterSettings(min_judge=None)
    plan = ManipulationPlan(
        p1=p1,
        p2=p2,
        model1=indiv[p1].saved_name,
        model2=indiv[p2].saved_name,
        pairs=pairs,
        per_pair=s.per_pair,
        group=group.saved_name,
        sampler=settings,
        filters=filters,
        run=f"sim{s.seed}",
    )
    lib = StimulusLibrary.create(work / "manipulation_library")
    try:
        t = time.perf_counter()
        made = yield from generate_manipulation(lib, plan, registry=reg, device=device)
        timing["manipulation_generate_seconds"] = round(time.perf_counter() - t, 2)
        images = np.stack([lib.image(i) for i in made["stimulus_id"]]) if len(made) else np.zeros((0, 28, 28), np.uint8)
    finally:
        lib.close()
    observer = reg.load(s.observer_model, device, kind="classifier")
    probs = _probs(observer, images, device) if len(images) else np.zeros((0, data.n_classes))
    rng = np.random.default_rng(s.seed + 1)
    truth_by = truth.set_index(truth["participant"].astype(str))
    rows = []
    for pid in (p1, p2):
        for _ in range(s.responses_per_stimulus):
            resp = _respond(probs, truth_by.loc[pid], data.n_classes, rng)
            rows.append(
                pd.DataFrame({"participant": pid, "stimulus": made["stimulus_id"].astype(str), "response": resp})
            )
    responses = (
        pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=["participant", "stimulus", "response"])
    )
    scores = score_manipulation(made, responses, p1, p2, data.n_classes)
    scores.pop("per_stimulus", None)
    expected = _expected_success(made, probs, truth_by.loc[p1], truth_by.loc[p2], data.n_classes)
    return {
        "p1": p1,
        "p2": p2,
        "pairs": [list(p) for p in pairs],
        "plan": plan.to_dict(),
        "passed": {arm: int(g["passed"].fillna(False).sum()) for arm, g in made.groupby("arm")},
        "scores": scores,
        "expected": expected,
    }


def _truth_probs(probs: np.ndarray, truth: pd.Series, n_classes: int) -> np.ndarray:
    bias = np.array([truth[f"bias_{c}"] for c in range(n_classes)], dtype=float)
    return choice_probabilities(probs, bias, float(truth["temperature"]), float(truth["lapse"]))


def _expected_success(made: pd.DataFrame, probs: np.ndarray, t1: pd.Series, t2: pd.Series, n_classes: int) -> dict:
    """Per arm, the success rate the two simulated people would have on average over infinitely many
    answers: mean over stimuli of P1(a) * P2(b) from their ground-truth choice distributions (and the
    reverse, P1(b) * P2(a)). Free of the sampling noise of one answer per stimulus."""
    if not len(made):
        return {}
    q1, q2 = _truth_probs(probs, t1, n_classes), _truth_probs(probs, t2, n_classes)
    idx = np.arange(len(made))
    a, b = made["class_a"].to_numpy(int), made["class_b"].to_numpy(int)
    success, reverse = q1[idx, a] * q2[idx, b], q1[idx, b] * q2[idx, a]
    arms = made["arm"].to_numpy()
    return {
        arm: {"n": int((arms == arm).sum()), "success": float(success[arms == arm].mean()),
              "reverse": float(reverse[arms == arm].mean())}
        for arm in sorted(set(arms))
    }  # fmt: skip


def run_simulated_experiment(*args: Any, progress: Any = None, **kwargs: Any) -> dict:
    """Drive :func:`simulated_experiment` to the end and return its report; ``progress(record)`` is
    called with every record."""
    gen = simulated_experiment(*args, **kwargs)
    try:
        while True:
            rec = next(gen)
            if progress is not None:
                progress(rec)
    except StopIteration as stop:
        return stop.value
    finally:
        gen.close()
