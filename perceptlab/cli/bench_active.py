"""``perceptlab bench-active``: active (BALD) vs random stimulus selection on SYNTHETIC observers with a
known truth — trials to a held-out prediction accuracy and to the observer's cluster, several seeds, with
the ceiling (see :mod:`perceptlab.experiment.bench_active`). Writes ``bench_active.json``,
``bench_active_table.csv``, ``bench_active_curves.csv`` and ``bench_active.png`` under ``--out``."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def number_list(kind: type = float):
    """An argparse type: a comma-separated list of ``kind`` (int or float) as a tuple."""

    def parse(text: str) -> tuple:
        try:
            return tuple(kind(x) for x in text.split(",") if x.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of {kind.__name__}s") from None

    return parse


def _records(frame) -> list[dict]:
    return json.loads(frame.to_json(orient="records"))


def run(args: argparse.Namespace) -> int:
    from perceptlab.errors import PerceptLabError  # noqa: PLC0415
    from perceptlab.experiment.bench_active import BenchSettings, plot_bench, run_bench  # noqa: PLC0415

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise PerceptLabError(f"--out {out} is a file", fix="name a folder for the benchmark's files")
    models = tuple(m.strip() for m in (args.models or "").split(",") if m.strip())
    settings = BenchSettings(seeds=args.seeds, pool=args.pool, library=args.library, models=models,
                             stimuli=args.stimuli, heldout=args.heldout, observers=args.observers,
                             trials=args.trials, prototypes=args.prototypes, clusters=args.clusters,
                             train_participants=args.train_participants, targets=args.targets,
                             bias_strength=args.bias_strength)
    t0, c0 = time.perf_counter(), time.process_time()
    result = run_bench(settings)
    cpu = time.process_time() - c0
    out.mkdir(parents=True, exist_ok=True)
    result.table.to_csv(out / "bench_active_table.csv", index=False)
    result.curves.to_csv(out / "bench_active_curves.csv", index=False)
    plot_bench(result, out / "bench_active.png")
    summary = dict(result.summary, table=_records(result.table), cluster=_records(result.cluster_table),
                   cpu_seconds=round(cpu, 1), wall_seconds=round(time.perf_counter() - t0, 1))
    (out / "bench_active.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(f"SYNTHETIC: {len(settings.seeds)} seeds x {settings.observers} observers, pool {settings.pool}, "
          f"prototypes {settings.prototypes}, {result.summary['runs'][0]['hypotheses']} hypotheses, "
          f"{settings.trials} trials each ({cpu:.0f} s CPU)")
    allrows = result.table[result.table["seed"] == "all"]
    print(f"ceiling {summary['ceiling']:.4f}, best hypothesis {summary['best_hypothesis']:.4f}")
    print(allrows.drop(columns=["seed"]).to_string(index=False))
    print(result.cluster_table.to_string(index=False))
    nm = summary["next_ms"]
    print(f"next(): median {nm['median']:.2f} ms, p99 {nm['p99']:.2f} ms, max {nm['max']:.2f} ms over {nm['calls']} calls")
    print(f"wrote {out}/bench_active.json, bench_active_table.csv, bench_active_curves.csv, bench_active.png")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench-active", help="active vs random stimulus selection on simulated observers (SYNTHETIC)",
                       description=__doc__.split("\n\n", 1)[0])
    p.add_argument("--seeds", type=number_list(int), default=(0, 1, 2, 3, 4), help="seeds (default 0,1,2,3,4)")
    p.add_argument("--pool", choices=("dirichlet", "library"), default="dirichlet",
                   help="synthetic Dirichlet-like pool (default) or a library's stored model probabilities")
    p.add_argument("--library", help="library folder (with --pool library)")
    p.add_argument("--models", help="models of a library pool, comma-separated (first = reference)")
    p.add_argument("--stimuli", type=int, default=2500, help="synthetic stimuli, pool + held-out (default 2500)")
    p.add_argument("--heldout", type=int, default=500, help="held-out stimuli, never selected (default 500)")
    p.add_argument("--observers", type=int, default=10, help="test observers per seed (default 10)")
    p.add_argument("--trials", type=int, default=150, help="trials per observer (default 150)")
    p.add_argument("--clusters", type=int, default=4, help="observer clusters (default 4)")
    p.add_argument("--bias-strength", type=float, default=1.5,
                   help="spread of the cluster prototypes' biases (simulate's default 1.5; lower = clusters "
                   "harder to tell apart)")
    p.add_argument("--train-participants", type=int, default=40,
                   help="earlier participants the prototypes are learnt from (default 40)")
    p.add_argument("--prototypes", choices=("learnt", "known"), default="learnt",
                   help="cluster prototypes learnt from earlier participants (default) or the true ones")
    p.add_argument("--targets", type=number_list(float), default=(0.5, 0.8, 0.9, 0.95),
                   help="targets as fractions of the gap from the prior accuracy to the best hypothesis's "
                   "(default 0.5,0.8,0.9,0.95)")
    p.add_argument("--out", required=True, help="folder for the results")
    p.set_defaults(func=run)
