"""``perceptlab bench-cluster``: the same generation job on 1, 2, ... local Dask workers — wall time,
speedup, parallel efficiency, and whether the libraries are identical (ids, seeds, probabilities, PNGs)."""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from pathlib import Path

from perceptlab.cli.generate import PRESETS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench-cluster",
        help="time one generation job on 1, 2, ... local Dask workers and check the results are identical",
        description="Uncertainty guidance on the shipped models, the same job description on local clusters of "
        "each --workers count (workers warmed up first, so start-up is not timed). Each run writes a library "
        "under --out; the manifests (without the creation time) and PNG bytes are compared with the first run.",
    )
    p.add_argument("--images", type=int, default=32, help="stimuli in the job (default 32)")
    p.add_argument("--preset", choices=PRESETS, default="fast", help="sampler preset (default fast)")
    p.add_argument("--batch-size", type=int, default=8, help="images per task (default 8)")
    p.add_argument("--workers", default="1,2", help="comma-separated worker counts (default 1,2)")
    p.add_argument("--pairs", default="3-5,4-9", help="target pairs (default 3-5,4-9)")
    p.add_argument("--classifier", default="vgg", help="guiding classifier (default vgg)")
    p.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    p.add_argument("--out", type=Path, required=True, help="folder for the libraries (w1/, w2/, ...)")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the figures as JSON")
    p.set_defaults(func=run)


def _load() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "?"


def _manifest(path: Path) -> list[dict]:
    with open(path / "manifest.csv", newline="") as fh:
        return [{k: v for k, v in row.items() if k != "created"} for row in csv.DictReader(fh)]


def _pngs(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((path / "images").glob("*.png"))}


def run(args: argparse.Namespace) -> int:
    from perceptlab.cli.generate import parse_pairs  # noqa: PLC0415
    from perceptlab.data.library import StimulusLibrary  # noqa: PLC0415
    from perceptlab.engine.generate import expand_targets  # noqa: PLC0415
    from perceptlab.engine.sampler import SamplerSettings  # noqa: PLC0415
    from perceptlab.errors import PerceptLabError  # noqa: PLC0415
    from perceptlab.jobs.cluster import DaskCluster  # noqa: PLC0415
    from perceptlab.jobs.generate_job import GenerateJob, run_generate_job  # noqa: PLC0415

    counts = [int(w) for w in args.workers.split(",")]
    pairs = parse_pairs(args.pairs)
    per_pair = -(-args.images // len(pairs))
    targets = expand_targets(pairs, per_pair)[: args.images]
    settings = SamplerSettings.from_preset(args.preset, pairs=pairs, classifier=args.classifier,
                                           batch_size=args.batch_size, seed=args.seed)  # fmt: skip
    job = GenerateJob.build(settings, targets)
    rows = []
    for n in counts:
        path = args.out / f"w{n}"
        if path.exists():
            raise PerceptLabError(f"{path} exists", "pick a new --out folder")
        load = _load()
        cluster = DaskCluster(workers=n)
        try:
            cluster.warm_up()
            t0 = time.perf_counter()
            with StimulusLibrary.create(path) as lib:
                gen = run_generate_job(job, cluster, lib)
                try:
                    while True:
                        next(gen)
                except StopIteration as stop:
                    summary = stop.value
            seconds = time.perf_counter() - t0
        finally:
            cluster.close()
        rows.append({"workers": n, "seconds": seconds, "images": summary.generated, "accepted": summary.accepted,
                     "s_per_image": seconds / summary.generated, "cpu_s_per_image": summary.cpu_seconds / summary.generated,
                     "busy": summary.cpu_seconds / (seconds * n), "per_worker": summary.workers, "path": path,
                     "load_before": load})  # fmt: skip
        print(f"{n} worker(s): {summary.generated} images in {seconds:.1f} s ({seconds / summary.generated:.2f} s/image, "
              f"{summary.cpu_seconds / summary.generated:.2f} CPU-s/image); load average before: {load}")
    first = rows[0]
    ref_manifest, ref_pngs = _manifest(first["path"]), _pngs(first["path"])
    cores = os.cpu_count()
    print(f"\njob {job.job_id}: {args.images} images, preset {args.preset}, {args.batch_size} per task; {cores} cores, "
          "shared with whatever else runs (see the load averages)")
    print("CPU share = task CPU time / (wall time x workers): below 100% the workers waited for a core")
    print("workers  seconds  s/image  CPU-s/image  CPU share  speedup  efficiency  identical to first")
    for row in rows:
        row["speedup"] = first["seconds"] * first["workers"] / row["seconds"] if first["workers"] == 1 else None
        row["efficiency"] = row["speedup"] / row["workers"] if row["speedup"] else None
        row["identical"] = _manifest(row["path"]) == ref_manifest and _pngs(row["path"]) == ref_pngs
        sp = f"{row['speedup']:.2f}" if row["speedup"] else "-"
        ef = f"{row['efficiency']:.0%}" if row["efficiency"] else "-"
        print(f"{row['workers']:7d}  {row['seconds']:7.1f}  {row['s_per_image']:7.2f}  {row['cpu_s_per_image']:11.2f}  "
              f"{row['busy']:9.0%}  {sp:>7}  {ef:>10}  {row['identical']}")
        row["path"] = str(row["path"])
    if args.json:
        args.json.write_text(json.dumps({"job": job.job_id, "preset": args.preset, "runs": rows}, indent=2))
    return 0
