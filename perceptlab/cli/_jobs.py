"""Cluster options shared by the subcommands that can fan out (``generate``, ``align``) and the
progress bar of a distributed job. Imports no torch and no Dask (both load when a job starts)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from tqdm import tqdm

from perceptlab.errors import PerceptLabError


def add_cluster_args(p: argparse.ArgumentParser, threads: bool = True):
    """--workers, --scheduler, --retries and (``threads``) --threads-per-task; returns the group."""
    g = p.add_argument_group("cluster (Dask distributed; pip install 'perceptlab[cluster]')")
    g.add_argument(
        "--workers", type=int, metavar="N", help="run the job's tasks on a local Dask cluster of N worker processes"
    )
    g.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run the job's tasks on a running Dask scheduler, e.g. tcp://10.0.0.5:8786 (see the README)",
    )
    if threads:
        g.add_argument(
            "--threads-per-task",
            type=int,
            default=1,
            metavar="T",
            help="torch threads of each task (part of the job: the thread count can change float bits; default 1)",
        )
    g.add_argument("--retries", type=int, default=2, help="re-runs of a failed task before the job stops (default 2)")
    return g


def wants_cluster(args: argparse.Namespace) -> bool:
    if args.workers is not None and args.workers < 1:
        raise PerceptLabError(f"--workers {args.workers}", "use at least 1 worker")
    if getattr(args, "threads_per_task", 1) < 1:
        raise PerceptLabError(f"--threads-per-task {args.threads_per_task}", "use at least 1 thread")
    if args.retries < 0:
        raise PerceptLabError(f"--retries {args.retries}", "use 0 or more retries")
    return bool(args.workers or args.scheduler)


def open_cluster_from_args(args: argparse.Namespace):
    from perceptlab.jobs.cluster import open_cluster  # noqa: PLC0415

    cluster = open_cluster(args.workers, args.scheduler)
    print(f"cluster: {cluster.describe()}")
    if cluster.workers() == 0:
        print("note: no worker is connected yet; the tasks wait until one joins ('dask worker ADDRESS')")
    return cluster


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"{seconds // 60}:{seconds % 60:02d}"


def drive_job(job: Iterator[dict], desc: str = "job", unit: str = "img"):
    """Run a distributed job with a bar over its units: tasks done / running / failed and the ETA."""
    bar = tqdm(total=0, desc=desc, unit=unit, dynamic_ncols=True)
    try:
        while True:
            rec = next(job)
            if rec.get("kind") != "job":
                continue
            done, total = rec.get("images_done", rec["units_done"]), rec.get("images_planned", rec["units_total"])
            bar.total = round(total)
            if "round" in rec and rec.get("rounds", 1) > 1:
                bar.set_description(f"{desc} (round {rec['round']})")
            bar.set_postfix(
                done=f"{rec['done']}/{rec['total']}",
                running=rec["running"],
                failed=rec["failed"],
                eta=format_eta(rec["eta_s"]),
                refresh=False,
            )
            bar.update(round(done) - bar.n)
    except StopIteration as stop:
        return stop.value
    finally:
        bar.close()
        job.close()
