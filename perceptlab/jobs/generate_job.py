"""A generation job split into tasks that run anywhere: in-process, on a local or a remote Dask cluster.

**The description** (:class:`GenerateJob`) is plain JSON: sampler and filter settings (base seed
resolved), the target list, the regeneration policy, the device, torch threads per task, the weight
hashes every worker must have, and the reference image of the pixel constraint if any. Its ``job_id``
is a hash of it.

**Deterministic sharding.** A task is one batch of ``settings.batch_size`` targets, cut from the
target list in order — the same cut whatever the number of workers. The seeds of a batch are the
job's: image k of a round gets ``base seed + images generated before it``, exactly as in
:func:`perceptlab.engine.generate.fill_targets`; with ``regenerate`` the rejected targets of a round
(known once every batch of the round is back) form the next round. Each task sets torch to
``threads`` threads (part of the description, because the thread count can change the last bits of a
float sum). So the images, their seeds and their probabilities depend only on the description: the
same with 1, 2 or 100 workers, in any task order, byte-identical on the same hardware and software.
Across hardware (another CPU's vector units, a GPU) float results drift in the last bits and an image
on the edge of the filter can flip verdict; the weight hashes are still checked, on every worker.

**Commit.** Results are committed to the library in batch order (a batch that finishes early waits
for the ones before it), so a fresh library gets the same ids (s000001, ...) every time; each commit
goes through :class:`perceptlab.data.library_merge.ShardCommitter`, keyed on (settings, seed), so a
task that ran twice, or a job run again into the same library, never stores a stimulus twice. Every
stored record's ``settings["provenance"]`` names the job, the task, the attempt and the worker.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from perceptlab.data.images import uint8_to_float
from perceptlab.data.library import Stimulus, StimulusLibrary
from perceptlab.data.library_merge import ShardCommitter
from perceptlab.errors import PerceptLabError
from perceptlab.jobs.cluster import worker_name
from perceptlab.jobs.tasks import Task, run_tasks
from perceptlab.jobs.threads import torch_threads

Pair = tuple[int, int]


@dataclass
class GenerateJob:
    """Everything that decides what a generation job makes; round-trips through JSON."""

    settings: dict[str, Any]  # SamplerSettings.to_dict(), seed resolved
    filters: dict[str, Any]  # FilterSettings.to_dict()
    targets: list[list[int]]  # one [a, b] per asked stimulus
    regenerate: bool = False
    max_rounds: int = 10
    keep_rejects: bool | None = None  # None: keep rejects unless regenerate
    device: str = "cpu"  # resolved on each worker: "auto" = its GPU if it has one
    threads: int = 1  # torch threads per task
    weight_hashes: dict[str, str] = field(default_factory=dict)  # every worker must have these weights
    builtin_dir: str | None = None  # registry folders; a worker without them uses its own defaults
    user_dir: str | None = None
    reference_image: list[list[int]] | None = None  # 28x28 uint8 of settings.reference

    @classmethod
    def build(
        cls,
        settings: Any,
        targets: Sequence[Pair],
        *,
        filters: Any = None,
        registry: Any = None,
        library: StimulusLibrary | None = None,
        regenerate: bool = False,
        max_rounds: int = 10,
        keep_rejects: bool | None = None,
        device: str = "cpu",
        threads: int = 1,
    ) -> GenerateJob:
        """A job from engine objects (SamplerSettings, FilterSettings, Registry); resolves the seed."""
        from perceptlab.engine.filters import FilterSettings  # noqa: PLC0415
        from perceptlab.engine.generate import resolve_seed  # noqa: PLC0415
        from perceptlab.engine.registry import default_registry  # noqa: PLC0415

        registry = registry or default_registry()
        settings = settings.replace(seed=resolve_seed(settings.seed)).validate()
        filters = (filters or FilterSettings()).validate()
        if max_rounds < 1:
            raise PerceptLabError(f"max rounds = {max_rounds}", "use at least 1 round")
        if threads < 1:
            raise PerceptLabError(f"threads per task = {threads}", "use at least 1 thread")
        reference = None
        if settings.reference is not None:
            if library is None or settings.reference not in library:
                raise PerceptLabError(f"no stimulus {settings.reference!r} for the pixel constraint",
                                      "generate into the library that holds it")  # fmt: skip
            reference = library.image(settings.reference).tolist()
        names = {settings.prior, settings.classifier, settings.judge} | (
            {settings.classifier2} if settings.mode == "controversial" else set()
        )
        names |= {n for n, e in registry.entries().items() if e.kind == "classifier" and e.builtin}
        names = {n for n in names if n in registry.entries()}
        return cls(
            settings=settings.to_dict(),
            filters=filters.to_dict(),
            targets=[[int(a), int(b)] for a, b in targets],
            regenerate=regenerate,
            max_rounds=max_rounds,
            keep_rejects=keep_rejects,
            device=str(device),
            threads=threads,
            weight_hashes={n: registry.weight_hash(n) for n in sorted(names)},
            builtin_dir=str(registry.builtin_dir),
            user_dir=str(registry.user_dir),
            reference_image=reference,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GenerateJob:
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @property
    def job_id(self) -> str:
        """A hash of what the job makes (not of where the models are found)."""
        what = {k: v for k, v in self.to_dict().items() if k not in ("builtin_dir", "user_dir")}
        return "gen-" + hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def base_seed(self) -> int:
        return int(self.settings["seed"])

    @property
    def batch_size(self) -> int:
        return int(self.settings["batch_size"])

    @property
    def keep(self) -> bool:
        return (not self.regenerate) if self.keep_rejects is None else bool(self.keep_rejects)


# --------------------------------------------------------------------------- the worker side

_RUNNERS: dict[str, Any] = {}  # job_id -> batch runner, per worker process (models loaded once)
_RUNNERS_LOCK = threading.Lock()
_KEEP_RUNNERS = 2


def _folder(path: str | None) -> Path | None:
    return Path(path) if path and Path(path).is_dir() else None


def _runner(job: GenerateJob):
    with _RUNNERS_LOCK:
        if job.job_id in _RUNNERS:
            return _RUNNERS[job.job_id]
        import torch  # noqa: PLC0415

        from perceptlab.engine.filters import FilterSettings  # noqa: PLC0415
        from perceptlab.engine.generate import make_batch_runner  # noqa: PLC0415
        from perceptlab.engine.registry import Registry  # noqa: PLC0415
        from perceptlab.engine.sampler import SamplerSettings  # noqa: PLC0415

        registry = Registry(_folder(job.builtin_dir), _folder(job.user_dir))
        for name, expected in job.weight_hashes.items():
            have = registry.weight_hash(name) if name in registry.entries() else None
            if have != expected:
                raise PerceptLabError(
                    f"worker {worker_name()} has {'other' if have else 'no'} weights for {name!r} "
                    f"(sha256 {str(have)[:12]}, the job needs {expected[:12]})",
                    "install the same PerceptLab and models on every worker (or share the model folder)",
                )
        reference = None
        if job.reference_image is not None:
            arr = uint8_to_float(np.asarray(job.reference_image, dtype=np.uint8))
            reference = torch.from_numpy(arr).reshape(1, 1, 28, 28)  # as engine.generate._reference_tensor
        settings = SamplerSettings.from_dict(job.settings).validate()
        filters = FilterSettings.from_dict(job.filters).validate()
        from perceptlab.engine.device import pick_device  # noqa: PLC0415

        runner = make_batch_runner(settings, filters, registry, pick_device(job.device), reference, job.keep)
        while len(_RUNNERS) >= _KEEP_RUNNERS:
            _RUNNERS.pop(next(iter(_RUNNERS)))
        _RUNNERS[job.job_id] = runner
        return runner


def run_generate_task(job_dict: dict[str, Any], pairs: list[Pair], seeds: list[int]) -> dict[str, Any]:
    """One batch of a job, on whichever worker runs it: sample, score, filter. Returns plain data."""
    job = GenerateJob.from_dict(job_dict)
    t0, c0 = time.perf_counter(), time.thread_time()
    with torch_threads(job.threads):
        gen = _runner(job)([tuple(p) for p in pairs], list(seeds))
        try:
            while True:
                next(gen)
        except StopIteration as stop:
            outcome = stop.value
    return {
        "passed": list(outcome.passed),
        "records": [r.to_dict() for r in outcome.records],
        "images": np.asarray(outcome.images, dtype=np.uint8),
        "invalid": list(outcome.invalid),
        "worker": worker_name(),
        "pid": os.getpid(),
        "seconds": time.perf_counter() - t0,
        "cpu_seconds": time.thread_time() - c0,  # this thread's CPU time: the cost without contention
    }


# --------------------------------------------------------------------------- the driver side


def _batches(job: GenerateJob, pending: list[int], generated: int) -> list[tuple[list[int], list[int]]]:
    """(slots, seeds) of the batches of one round — the cut of fill_targets."""
    out = []
    for start in range(0, len(pending), job.batch_size):
        slots = pending[start : start + job.batch_size]
        first = job.base_seed + generated + start
        out.append((slots, [first + k for k in range(len(slots))]))
    return out


def run_generate_job(
    job: GenerateJob,
    cluster: Any,
    library: StimulusLibrary | None = None,
    *,
    retries: int = 2,
    task_fn: Callable[..., dict[str, Any]] = run_generate_task,
    poll: float = 0.5,
) -> Generator[dict[str, Any], None, Any]:
    """Run ``job`` on ``cluster``, committing into ``library`` (if given) in batch order.

    Yields the task runner's ``{"kind": "job", ...}`` records with ``round``, ``generated``,
    ``accepted`` and ``stored`` added, and ``{"kind": "batch", ...}`` after each commit. Returns a
    :class:`perceptlab.engine.generate.GenerateSummary` (with ``repeats`` — records already in the
    library —, ``workers`` — which worker made how many images — and ``cpu_seconds`` — the tasks' CPU
    time — set on it as attributes).
    """
    from perceptlab.engine.generate import GenerateSummary  # noqa: PLC0415

    t0 = time.perf_counter()
    job_dict = job.to_dict()
    summary = GenerateSummary(asked=len(job.targets), base_seed=job.base_seed)
    committer = ShardCommitter(library) if library is not None else None
    by_worker: dict[str, int] = {}
    cpu = [0.0]  # task CPU seconds (the calling thread's; with threads=1 that is the sampling work)
    pending = list(range(len(job.targets)))
    rounds = job.max_rounds if job.regenerate else 1
    for rnd in range(1, rounds + 1):
        if not pending:
            break
        summary.rounds = rnd
        batches = _batches(job, pending, summary.generated)
        before = summary.generated
        results: dict[int, tuple[dict[str, Any], int, str]] = {}
        committed = [0]
        still: list[int] = []

        def commit_ready(rnd=rnd, batches=batches, results=results, committed=committed, still=still):
            """Commit every batch that is next in order, all of them in one library transaction (a
            commit costs a fixed ~0.1-0.3 s plus an fsync per image: fewer, larger ones keep up)."""
            ready_now = []
            while committed[0] in results:
                j = committed[0]
                res, attempt, key = results.pop(j)
                ready_now.append((j, res, [Stimulus.from_dict(r) for r in res["records"]],
                                  {"task": key, "attempt": attempt, "worker": res["worker"]}))  # fmt: skip
                committed[0] += 1
            pairs: list[tuple[str, bool]] = []
            if committer is not None and ready_now:
                recs = [r for _, _, rs, _ in ready_now for r in rs]
                if recs:
                    images = np.concatenate([np.asarray(res["images"], np.uint8).reshape(-1, 28, 28)
                                             for _, res, _, _ in ready_now])  # fmt: skip
                    per = [prov for _, _, rs, prov in ready_now for _ in rs]
                    pairs = committer.commit(recs, images, per, job=job.job_id)
            out = []
            k = 0
            for j, res, records, _ in ready_now:
                slots, seeds = batches[j]
                summary.generated += len(slots)
                summary.accepted += sum(res["passed"])
                summary.invalid_reasons += res["invalid"]
                still.extend(s for s, ok in zip(slots, res["passed"]) if not ok)
                by_worker[res["worker"]] = by_worker.get(res["worker"], 0) + len(slots)
                cpu[0] += res.get("cpu_seconds", 0.0)
                new_ids = []
                if committer is not None:
                    for rec, (sid, new) in zip(records, pairs[k : k + len(records)]):
                        rec.id = sid
                        if new:
                            new_ids.append(sid)
                    k += len(records)
                summary.ids += new_ids
                summary.records += records
                out.append({"kind": "batch", "round": rnd, "batch": j + 1, "batches": len(batches),
                            "slots": slots, "seeds": seeds, "stored": len(new_ids), "ids": new_ids,
                            "worker": res["worker"], "generated": summary.generated,
                            "accepted": summary.accepted})  # fmt: skip
            return out

        tasks = [
            Task(f"r{rnd}b{j}", task_fn, (job_dict, [tuple(job.targets[s]) for s in slots], seeds), len(slots))
            for j, (slots, seeds) in enumerate(batches)
        ]
        ready: list[dict[str, Any]] = []

        def on_result(j: int, res: dict[str, Any], attempt: int, rnd=rnd, results=results, ready=ready) -> None:
            results[j] = (res, attempt, f"{job.job_id}-r{rnd}b{j}-a{attempt}")
            ready.extend(commit_ready())

        runner = run_tasks(cluster, tasks, on_result, retries=retries, poll=poll, prefix=job.job_id,
                           extra={"round": rnd, "rounds": rounds})  # fmt: skip
        try:
            while True:
                try:
                    rec = next(runner)
                except StopIteration:
                    break
                yield from ready
                ready.clear()
                yield {**rec, "generated": summary.generated, "accepted": summary.accepted,
                       "stored": len(summary.ids), "asked": summary.asked,
                       "images_done": before + rec["units_done"], "images_planned": before + rec["units_total"]}  # fmt: skip
        finally:
            runner.close()
        yield from ready
        pending = sorted(still)
    summary.unfilled = len(pending)
    summary.seconds = time.perf_counter() - t0
    summary.repeats = committer.repeats if committer is not None else 0
    summary.workers = by_worker
    summary.cpu_seconds = cpu[0]
    return summary
