"""Generation jobs: sample -> score with every zoo classifier and the judge -> filter -> regenerate
rejects -> stimulus records, committed to a library batch by batch.

A job asks for one stimulus per *target* (a pair (a, b); ``expand_targets`` makes per-pair lists).
Every generated image gets its own seed (base seed + running index) and is scored on its stored 8-bit
form, so re-scoring or re-judging a stored stimulus gives the same numbers. With ``regenerate`` the
targets whose image was rejected are sampled again, for at most ``max_rounds`` rounds (the reference
code's 10); the acceptance rate is accepted / generated.

Which images are stored (``keep_rejects``): by default, with ``regenerate`` only the accepted ones
(the rejects were replaced), without it every valid image, rejects marked ``passed=False`` so they can
be re-judged later. Images that diverged (NaN) are never stored; they count as generated and rejected.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from perceptlab.data.images import float_to_uint8, uint8_to_float
from perceptlab.data.library import Stimulus, StimulusLibrary
from perceptlab.engine.filters import FilterSettings, verdicts
from perceptlab.engine.registry import Registry, default_registry
from perceptlab.engine.sampler import SampleResult, SamplerSettings, load_models, sample_batch
from perceptlab.errors import PerceptLabError
from perceptlab.names import OBSERVERS

DEFAULT_MAX_ROUNDS = 10
Pair = tuple[int, int]


@dataclass
class BatchOutcome:
    """What one sampled batch gave: per image whether it passed, and what to store."""

    passed: list[bool]
    records: list[Stimulus]
    images: np.ndarray  # uint8 (len(records), 28, 28)
    invalid: list[str] = field(default_factory=list)  # why each dropped (NaN) image was dropped


BatchRunner = Callable[[list[Pair], list[int]], Generator[dict[str, Any], None, BatchOutcome]]


@dataclass
class GenerateSummary:
    """The outcome of a job."""

    asked: int
    generated: int = 0
    accepted: int = 0
    invalid_reasons: list[str] = field(default_factory=list)  # one per image dropped for NaN/inf
    rounds: int = 0
    seconds: float = 0.0
    base_seed: int = 0
    ids: list[str] = field(default_factory=list)  # library ids of the stored stimuli
    records: list[Stimulus] = field(default_factory=list)  # the stored (or kept) records
    unfilled: int = 0  # targets still without an accepted image

    @property
    def invalid(self) -> int:
        return len(self.invalid_reasons)

    @property
    def acceptance_rate(self) -> float:
        return self.accepted / self.generated if self.generated else 0.0

    @property
    def seconds_per_image(self) -> float:
        return self.seconds / self.generated if self.generated else 0.0

    @property
    def accepted_per_minute(self) -> float:
        return 60.0 * self.accepted / self.seconds if self.seconds else 0.0


def all_pairs(ordered: bool = False) -> list[Pair]:
    """The 45 unordered digit pairs (a < b), or all 90 ordered ones."""
    return [(a, b) for a in range(10) for b in range(10) if (a != b if ordered else a < b)]


def expand_targets(pairs: Sequence[Pair], per_pair: int) -> list[Pair]:
    """``per_pair`` targets of every pair, interleaved so each batch mixes the pairs."""
    return [tuple(p) for _ in range(per_pair) for p in pairs]


def resolve_seed(seed: int | None) -> int:
    """The job's base seed: the given one, or a fresh random one (recorded with every stimulus)."""
    return int(seed) if seed is not None else secrets.randbelow(2**31)


def fill_targets(
    targets: Sequence[Pair],
    run_batch: BatchRunner,
    *,
    batch_size: int,
    base_seed: int,
    regenerate: bool = False,
    max_rounds: int = DEFAULT_MAX_ROUNDS,
    store: Callable[[BatchOutcome], list[str]] | None = None,
) -> Generator[dict[str, Any], None, GenerateSummary]:
    """Sample every target once, then (``regenerate``) re-sample rejected targets until each passes or
    ``max_rounds`` rounds are spent. ``store`` commits a batch as soon as it completes and returns ids.

    Re-yields the sampler's step records with ``round``, ``batch``, ``slots`` (the indices into
    ``targets`` of the batch's images), ``seeds``, ``done``/``planned`` (progress in images),
    ``generated`` and ``accepted`` added, and yields ``{"kind": "batch", ...}`` after each batch.
    """
    if max_rounds < 1:
        raise PerceptLabError(f"max rounds = {max_rounds}", "use at least 1 round")
    t0 = time.perf_counter()
    summary = GenerateSummary(asked=len(targets), base_seed=base_seed)
    pending = list(range(len(targets)))
    planned = float(len(pending))
    rounds = max_rounds if regenerate else 1
    for rnd in range(1, rounds + 1):
        if not pending:
            break
        if rnd > 1:
            planned += len(pending)
        summary.rounds = rnd
        still: list[int] = []
        batches = [pending[i : i + batch_size] for i in range(0, len(pending), batch_size)]
        for j, slots in enumerate(batches, start=1):
            pairs = [targets[s] for s in slots]
            seeds = [base_seed + summary.generated + k for k in range(len(slots))]
            done_before = summary.generated
            gen = run_batch(pairs, seeds)
            try:
                rec = next(gen)
                while True:
                    frac = rec.get("step", 0) / max(rec.get("total", 1), 1)
                    yield {
                        **rec,
                        "round": rnd,
                        "batch": j,
                        "batches": len(batches),
                        "slots": slots,
                        "seeds": seeds,
                        "done": done_before + frac * len(slots),
                        "planned": planned,
                        "generated": summary.generated,
                        "accepted": summary.accepted,
                    }
                    rec = next(gen)
            except StopIteration as stop:
                outcome: BatchOutcome = stop.value
            finally:
                gen.close()
            summary.generated += len(slots)
            summary.invalid_reasons += outcome.invalid
            summary.accepted += sum(outcome.passed)
            still += [s for s, ok in zip(slots, outcome.passed) if not ok]
            ids = store(outcome) if store is not None and outcome.records else []
            summary.ids += ids
            summary.records += outcome.records
            yield {
                "kind": "batch",
                "round": rnd,
                "batch": j,
                "batches": len(batches),
                "slots": slots,
                "seeds": seeds,
                "generated": summary.generated,
                "accepted": summary.accepted,
                "stored": len(ids),
                "done": float(summary.generated),
                "planned": planned,
            }
        pending = still
    summary.unfilled = len(pending)
    summary.seconds = time.perf_counter() - t0
    return summary


def _to_model_range(images: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(uint8_to_float(images)).reshape(-1, 1, 28, 28).to(device)


def _reference_tensor(settings: SamplerSettings, library: StimulusLibrary | None) -> torch.Tensor | None:
    if settings.reference is None:
        return None
    if library is None:
        raise PerceptLabError(
            f"reference stimulus {settings.reference!r} needs a library", "generate into the library that holds it"
        )
    if settings.reference not in library:
        raise PerceptLabError(
            f"no stimulus {settings.reference!r} in the library {library.path}",
            "use an id from the library (its manifest.csv lists them, e.g. s000001)",
        )
    return _to_model_range(library.image(settings.reference)[None], torch.device("cpu"))


class Scorer:
    """Scores stored images with every built-in zoo classifier, the guiding classifiers (``extra``, e.g.
    fine-tuned user models), the built-in independent observers (engine/observers.py: stored beside the
    zoo's probabilities, never used by guidance or filter) and the judge. Other user models are left
    out: a folder of hundreds of IndivNets would otherwise be run on every batch."""

    def __init__(self, registry: Registry, device: torch.device, judge: str | None, extra: Sequence[str] = ()):
        self.device = device
        entries = registry.entries()
        names = [n for n, e in entries.items() if e.kind == "classifier" and e.builtin]
        names += [n for n in extra if n and n not in names]
        self.classifiers = {n: registry.load(n, device, kind="classifier") for n in names}
        observers = [n for n, e in entries.items() if e.kind == "observer" and e.builtin]
        self.classifiers.update({n: registry.load(n, device, kind="observer") for n in observers})
        self.judge_name = judge
        self.judge = registry.load(judge, device, kind="judge") if judge else None

    @torch.no_grad()
    def __call__(self, images: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
        """uint8 (N, 28, 28) -> ({classifier: probs (N, 10)}, judge scores (N,) or None)."""
        x = _to_model_range(images, self.device)
        probs = {n: torch.softmax(m(x), dim=1).cpu().numpy() for n, m in self.classifiers.items()}
        judge = torch.sigmoid(self.judge(x)[:, 0]).cpu().numpy() if self.judge is not None else None
        return probs, judge


def make_records(
    settings: SamplerSettings,
    filters: FilterSettings,
    pairs: Sequence[Pair],
    seeds: Sequence[int],
    probs: dict[str, np.ndarray],
    judge: np.ndarray | None,
    weight_hashes: dict[str, str],
    images: np.ndarray | None = None,
) -> list[Stimulus]:
    """Stimulus records (filter verdicts included) for scored images (uint8 (N, 28, 28), for the
    stroke check), one per pair/seed."""
    names = (settings.classifier, settings.classifier2 or "")
    p1 = probs[names[0]]
    p2 = probs[names[1]] if settings.mode == "controversial" else None
    others = {n: p for n, p in probs.items() if n not in OBSERVERS}  # the observers never filter
    verdict_list = verdicts(
        settings.mode, pairs, p1, judge, filters, p2, names, others, tuple(settings.ensemble), images
    )
    stored_settings = {"sampler": settings.to_dict(), "filter": filters.to_dict()}
    records = []
    for i, ((a, b), v) in enumerate(zip(pairs, verdict_list)):
        records.append(
            Stimulus(
                mode=settings.mode,
                class_a=a,
                class_b=b,
                classifier=settings.classifier,
                classifier2=settings.classifier2 if settings.mode == "controversial" else None,
                gamma=settings.gamma,
                steps=settings.steps,
                resample=settings.resample,
                seed=int(seeds[i]),
                settings=stored_settings,
                weight_hashes=weight_hashes,
                probs={n: p[i].tolist() for n, p in probs.items()},
                p_a=float(p1[i, a]),
                p_b=float((p2 if p2 is not None else p1)[i, b]),
                judge=None if judge is None else float(judge[i]),
                passed=v.passed,
                reason=v.reason,
            )
        )
    return records


def make_batch_runner(
    settings: SamplerSettings,
    filters: FilterSettings,
    registry: Registry,
    device: torch.device | str,
    reference: torch.Tensor | None,
    keep: bool,
) -> BatchRunner:
    """The sample -> score -> filter step of a job for one batch, with the models loaded once: what
    ``generate`` runs in-process and a distributed job's tasks run on the workers (``keep``: store
    rejects too). ``reference``: the pixel-constraint image in model range, or None."""
    device = torch.device(device)
    models = load_models(settings, registry, device)
    # The judge scores every image when the filter or the guidance needs it, or simply when there is one.
    with_judge = filters.min_judge is not None or settings.judge_weight > 0 or settings.judge in registry.names("judge")
    guiding = [settings.classifier, *settings.ensemble, *([settings.classifier2] if settings.mode == "controversial" else [])]
    scorer = Scorer(registry, device, settings.judge if with_judge else None, extra=guiding)
    used = [settings.prior, *scorer.classifiers, *([settings.judge] if with_judge else [])]
    hashes = {name: registry.weight_hash(name) for name in used}
    ref = None if reference is None else reference.to(device)

    def run_batch(pairs: list[Pair], seeds: list[int]) -> Generator[dict[str, Any], None, BatchOutcome]:
        result: SampleResult = yield from sample_batch(settings, models, pairs, seeds, ref)
        kept = [i for i, v in enumerate(result.valid.tolist()) if v]
        dropped = [r for r in result.reasons if r]
        if not kept:
            return BatchOutcome([False] * len(pairs), [], np.zeros((0, 28, 28), np.uint8), invalid=dropped)
        images = float_to_uint8(result.images[result.valid].numpy()[:, 0])
        probs, judge = scorer(images)
        records = make_records(
            settings, filters, [pairs[i] for i in kept], [seeds[i] for i in kept], probs, judge, hashes, images
        )
        passed = [False] * len(pairs)
        for i, rec in zip(kept, records):
            passed[i] = bool(rec.passed)
        keep_mask = np.array([keep or rec.passed for rec in records], dtype=bool)
        return BatchOutcome(
            passed=passed,
            records=[rec for rec, k in zip(records, keep_mask) if k],
            images=images[keep_mask],
            invalid=dropped,
        )

    return run_batch


def generate(
    settings: SamplerSettings,
    targets: Sequence[Pair],
    *,
    filters: FilterSettings | None = None,
    registry: Registry | None = None,
    library: StimulusLibrary | None = None,
    device: torch.device | str = "cpu",
    regenerate: bool = False,
    max_rounds: int = DEFAULT_MAX_ROUNDS,
    keep_rejects: bool | None = None,
) -> Generator[dict[str, Any], None, GenerateSummary]:
    """Run a generation job (see the module docstring); a generator like ``fill_targets``.

    With a ``library`` each batch is committed as it completes (a killed job loses at most the batch in
    flight). ``settings.seed = None`` draws a random base seed, recorded in the stored settings.
    """
    settings = settings.replace(seed=resolve_seed(settings.seed)).validate()
    filters = (filters or FilterSettings()).validate()
    keep = (not regenerate) if keep_rejects is None else keep_rejects
    registry = registry or default_registry()
    reference = _reference_tensor(settings, library)
    run_batch = make_batch_runner(settings, filters, registry, device, reference, keep)

    def store(outcome: BatchOutcome) -> list[str]:
        ids = library.add(outcome.records, outcome.images)
        for rec, sid in zip(outcome.records, ids):
            rec.id = sid
        return ids

    return (
        yield from fill_targets(
            targets,
            run_batch,
            batch_size=settings.batch_size,
            base_seed=settings.seed,
            regenerate=regenerate,
            max_rounds=max_rounds,
            store=None if library is None else store,
        )
    )
