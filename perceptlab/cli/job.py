"""``perceptlab job show|run FILE``: a generation job description (``generate --save-job``), shown or run
in-process, on local Dask workers (``--workers N``) or on a running scheduler (``--scheduler ADDRESS``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from perceptlab.cli._jobs import add_cluster_args, drive_job, open_cluster_from_args, wants_cluster
from perceptlab.errors import PerceptLabError


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "job",
        help="show or run a saved generation job description (perceptlab generate --save-job)",
        description="A job description fixes what a generation job makes (settings, targets, seeds, weight "
        "hashes, threads per task); run it in-process, on local workers or on a cluster and the library gets "
        "the same stimuli. Run it again into the same library and only what is missing is made.",
    )
    actions = parser.add_subparsers(dest="job_command", metavar="ACTION", required=True)
    p = actions.add_parser("show", help="what a job description asks for")
    p.add_argument("file", type=Path, help="job description (JSON)")
    p.set_defaults(func=_show)
    p = actions.add_parser("run", help="run a job description into a library")
    p.add_argument("file", type=Path, help="job description (JSON)")
    p.add_argument("--library", type=Path, required=True, metavar="DIR", help="library folder (created if new or empty)")
    add_cluster_args(p, threads=False)
    p.set_defaults(func=_run)


def _load(path: Path):
    from perceptlab.jobs.generate_job import GenerateJob  # noqa: PLC0415

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PerceptLabError(f"cannot read {path} ({exc.strerror or exc})", "check the path") from None
    except json.JSONDecodeError as exc:
        raise PerceptLabError(f"{path} line {exc.lineno}: not valid JSON ({exc.msg})",
                              "write it with perceptlab generate --save-job") from None  # fmt: skip
    try:
        return GenerateJob.from_dict(data)
    except TypeError as exc:
        raise PerceptLabError(f"{path} is not a generation job description ({exc})",
                              "write it with perceptlab generate --save-job") from None  # fmt: skip


def _show(args: argparse.Namespace) -> int:
    job = _load(args.file)
    s = job.settings
    pairs = sorted({tuple(t) for t in job.targets})
    print(f"job {job.job_id}: {len(job.targets)} stimuli over {len(pairs)} pair(s), {s['mode']} guidance with "
          f"{s['classifier']}{' vs ' + s['classifier2'] if s.get('classifier2') else ''}")  # fmt: skip
    print(f"  {s['steps']} steps, R={s['resample']}, gamma {s['gamma']:g}, base seed {s['seed']}, "
          f"{s['batch_size']} per task, {job.threads} torch thread(s) per task, device {job.device}")
    print(f"  regenerate rejects: {'up to ' + str(job.max_rounds) + ' rounds' if job.regenerate else 'no'}")
    print("  weights: " + ", ".join(f"{n} {h[:12]}" for n, h in job.weight_hashes.items()))
    return 0


def _run(args: argparse.Namespace) -> int:
    from perceptlab.data.library import StimulusLibrary  # noqa: PLC0415
    from perceptlab.jobs.cluster import InProcessCluster  # noqa: PLC0415
    from perceptlab.jobs.generate_job import run_generate_job  # noqa: PLC0415

    job = _load(args.file)
    cluster = open_cluster_from_args(args) if wants_cluster(args) else InProcessCluster()
    try:
        with StimulusLibrary.open_or_create(args.library) as lib:
            summary = drive_job(run_generate_job(job, cluster, lib, retries=args.retries), "generating")
    finally:
        cluster.close()
    print(f"job {job.job_id}: generated {summary.generated} images in {summary.seconds:.1f} s; accepted "
          f"{summary.accepted}; stored {len(summary.ids)} in {args.library}"
          + (f"; {summary.repeats} were already there" if summary.repeats else ""))  # fmt: skip
    return 0
