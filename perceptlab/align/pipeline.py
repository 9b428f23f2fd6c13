"""One alignment run: fine-tune (group, individuals or both), save, evaluate, write ``metrics.json``.

:func:`run_alignment` is what ``perceptlab align`` and the app's Align panel drive. It is a generator:
every record of the fine-tuning and evaluation generators is re-yielded with ``model`` (the name
being trained) and ``stage`` added. Each model is written only after its training returned, so
closing the generator (cancel) leaves the models already finished — complete — and nothing of the one
in flight. Names are checked before any training starts, so a clash costs no training time. With a
``cluster`` the IndivNets are parallel tasks (:mod:`perceptlab.jobs.align_job`), saved as they arrive.
"""

from __future__ import annotations

import json
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from perceptlab.align.datasets import AlignData
from perceptlab.align.evaluate import evaluate_alignment
from perceptlab.align.features import FeatureCache
from perceptlab.align.finetune import FinetuneRecipe, FinetuneResult, finetune_group, finetune_individual
from perceptlab.align.store import _paths, check_name, default_name, save_model
from perceptlab.data.mnist import MnistData, load_mnist
from perceptlab.engine.registry import Registry, default_registry
from perceptlab.engine.weights import write_json
from perceptlab.errors import PerceptLabError

LEVELS = ("group", "individual", "both")


@dataclass
class AlignJob:
    """What to fine-tune and where the models go."""

    base: str  # zoo model (group/both) or GroupNet (individual)
    level: str = "group"
    # level individual/both: whose IndivNets (default everybody); level group: whose trials (default all)
    participants: Sequence[str] | None = None
    recipe: FinetuneRecipe = field(default_factory=FinetuneRecipe)
    out_dir: Path | None = None  # metrics.json + copies of the models
    register: bool = True  # also save into the user model folder (registry)
    models_dir: Path | None = None  # user model folder (default $PERCEPTLAB_MODELS)
    group_name: str | None = None
    overwrite: bool = False
    evaluate: bool = True

    def validate(self) -> AlignJob:
        if self.level not in LEVELS:
            raise PerceptLabError(f"unknown level {self.level!r}", fix=f"use one of: {', '.join(LEVELS)}")
        if self.out_dir is None and not self.register:
            raise PerceptLabError("the models would go nowhere", fix="give --out DIR or leave out --no-register")
        self.recipe.validate()
        return self


def _root_of(base: str, registry: Registry) -> str:
    cfg = registry.config(base)
    lineage = cfg.get("lineage") or []
    return lineage[0]["name"] if lineage else base


def _destinations(job: AlignJob, user_folder: Path) -> list[Path]:
    out = []
    if job.out_dir is not None:
        out.append(Path(job.out_dir))
    if job.register:
        out.append(user_folder)
    return out


def _check_free(names: list[str], folders: list[Path], overwrite: bool) -> None:
    if overwrite:
        return
    for folder in folders:
        for name in names:
            if _paths(folder, name)[1].exists():
                raise PerceptLabError(
                    f"a model named {name!r} already exists in {folder}",
                    fix="pass --overwrite, choose --name, or rename/delete it ('perceptlab models-user')",
                )


def _tagged(gen: Generator, **extra: Any) -> Generator[dict[str, Any], None, Any]:
    try:
        while True:
            try:
                rec = next(gen)
            except StopIteration as stop:
                return stop.value
            yield {**rec, **extra}
    finally:
        gen.close()


def run_alignment(
    job: AlignJob,
    data: AlignData,
    mnist: MnistData | None = None,
    *,
    registry: Registry | None = None,
    device: torch.device | str = "cpu",
    cache: FeatureCache | None = None,
    cluster: Any = None,
    threads_per_task: int = 1,
    retries: int = 2,
) -> Generator[dict[str, Any], None, dict]:
    """Run an alignment job (see the module docstring); returns the metrics dict. With a ``cluster``
    (:mod:`perceptlab.jobs.cluster`) the IndivNets are fine-tuned as parallel tasks on it
    (:mod:`perceptlab.jobs.align_job`); the GroupNet is trained here, once."""
    job.validate()
    if registry is None:
        registry = Registry(user_dir=job.models_dir) if job.models_dir else default_registry()
    user_folder = Path(job.models_dir) if job.models_dir else registry.user_dir
    cache = cache or FeatureCache()
    mnist = mnist if mnist is not None else load_mnist()
    registry.entry(job.base, kind="classifier")
    root = _root_of(job.base, registry)
    pids = data.participants if job.participants is None else [data.check_participant(p) for p in job.participants]
    do_group = job.level in ("group", "both")
    do_indiv = job.level in ("individual", "both")
    group_name = check_name(job.group_name) if job.group_name else default_name("group", root)
    indiv_names = {p: default_name("individual", root, p) for p in pids} if do_indiv else {}
    folders = _destinations(job, user_folder)
    _check_free(([group_name] if do_group else []) + list(indiv_names.values()), folders, job.overwrite)
    if job.level == "individual" and registry.config(job.base).get("level") != "group":
        yield {"kind": "note", "message": f"{job.base!r} is not a GroupNet; the IndivNets start from it anyway"}

    t0 = time.perf_counter()
    results: dict[str, FinetuneResult] = {}
    saved: dict[str, list[str]] = {}

    def store(result: FinetuneResult, name: str) -> None:
        paths = []
        for folder in folders:
            paths.append(str(save_model(result, name, folder, registry=registry, overwrite=job.overwrite)))
        saved[name] = paths

    group: str | FinetuneResult = job.base
    if do_group:
        res = yield from _tagged(
            finetune_group(
                job.base,
                data,
                mnist,
                job.recipe,
                participants=job.participants if job.level == "group" else None,
                registry=registry,
                device=device,
                cache=cache,
            ),
            model=group_name,
            stage="group",
        )
        store(res, group_name)
        results[group_name] = res
        group = res
        yield {"kind": "saved", "model": group_name, "paths": saved[group_name]}
    indiv: dict[str, FinetuneResult] = {}
    if cluster is not None and indiv_names:
        from perceptlab.jobs.align_job import fan_out_individuals  # noqa: PLC0415

        def arrived(pid: str, res: FinetuneResult, worker: str) -> dict[str, Any]:
            store(res, indiv_names[pid])
            indiv[pid] = res
            return {"kind": "saved", "model": indiv_names[pid], "paths": saved[indiv_names[pid]], "worker": worker}

        yield from fan_out_individuals(cluster, group, data, list(indiv_names), mnist, job.recipe, registry=registry,
                                       device=device, on_result=arrived, threads=threads_per_task, retries=retries)  # fmt: skip
        indiv = {pid: indiv[pid] for pid in indiv_names}  # participant order, whatever order they came in
        results.update({indiv_names[pid]: res for pid, res in indiv.items()})
    for i, pid in enumerate(indiv_names if cluster is None else {}, start=1):
        name = indiv_names[pid]
        res = yield from _tagged(
            finetune_individual(group, data, pid, mnist, job.recipe, registry=registry, device=device, cache=cache),
            model=name,
            stage="individual",
            index=i,
            of=len(indiv_names),
        )
        store(res, name)
        results[name] = res
        indiv[pid] = res
        yield {"kind": "saved", "model": name, "paths": saved[name]}
    train_seconds = time.perf_counter() - t0

    evaluation = None
    if job.evaluate:
        base_for_eval = root if root in registry.entries() else None
        evaluation = yield from _tagged(
            evaluate_alignment(data, base_for_eval, group, indiv, mnist, registry=registry, device=device, cache=cache),
            stage="evaluate",
        )
    metrics = {
        "job": {
            "base": job.base,
            "root": root,
            "level": job.level,
            "participants": pids,
            "recipe": job.recipe.to_dict(),
            "device": str(device),
        },
        "data": data.summary(),
        "models": {
            name: {
                **{k: v for k, v in r.config(name).items() if k in ("level", "base", "participants", "recipe")},
                "metrics": r.metrics(),
                "files": saved.get(name, []),
            }
            for name, r in results.items()
        },
        "evaluation": evaluation,
        "seconds": {"training": round(train_seconds, 2), "total": round(time.perf_counter() - t0, 2)},
    }
    if job.out_dir is not None:
        out = Path(job.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "metrics.json", json.loads(json.dumps(metrics, default=_json_default)))
    return metrics


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
