"""``perceptlab demo-project``: build the demo project the app opens on first start.

Generates a small stimulus library with the engine (boundary sampling for a few pairs), then lets
simulated observers (clearly labelled SYNTHETIC) answer it, and writes the layout described in
:mod:`perceptlab.data.demo`. The lead runs it once the shipped weights are final::

    perceptlab demo-project --out resources/demo
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from perceptlab.cli._common import drive_generation, require_at_least_one
from perceptlab.data.demo import INFO_FILE, LIBRARY_DIR, TRIALS_FILE, TRUTH_FILE
from perceptlab.errors import PerceptLabError

DEFAULT_PAIRS = "4-9,3-5,3-8,1-7,2-7,0-6,5-6,7-9"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo-project",
        help="build the demo project (generated library + simulated SYNTHETIC trials) the app opens first",
        description=(
            "Generate a small stimulus library with the shipped models and simulate clearly labelled "
            "synthetic observers answering it. Writes OUT/library/, OUT/trials.csv, OUT/trials_truth.csv, "
            "OUT/trials_truth.json and OUT/demo.json."
        ),
    )
    p.add_argument("--out", required=True, type=Path, help="folder to write (new or empty; see --force)")
    p.add_argument("--pairs", default=DEFAULT_PAIRS, metavar="A-B,...", help=f"target pairs (default {DEFAULT_PAIRS})")
    p.add_argument("--per-pair", type=int, default=12, metavar="N", help="images per pair (default 12)")
    p.add_argument("--mode", choices=("uncertainty", "controversial"), default="uncertainty")
    p.add_argument("--classifier", help="guiding classifier (default: vgg, else the first in the registry)")
    p.add_argument("--classifier2", help="controversial mode: classifier pushed toward b")
    p.add_argument("--preset", default="fast", help="sampler preset (default fast)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0, help="base seed of generation and simulation (default 0)")
    p.add_argument("--participants", type=int, default=40, help="simulated observers (default 40)")
    p.add_argument("--trials-per-participant", type=int, default=0,
                   help="stimuli each observer answers (default: 60%% of the library, at most 200)")
    p.add_argument("--clusters", type=int, default=4, help="observer clusters (default 4)")
    p.add_argument("--observer-model", help="classifier the observers answer through (default: the guiding one)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--force", action="store_true", help="replace an existing demo project in --out")
    p.set_defaults(func=run)


def _check_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise PerceptLabError(f"{out} is a file", "pick a folder for the demo project")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise PerceptLabError(f"{out} is not empty", "pick a new folder, or pass --force to replace it")
        for name in (LIBRARY_DIR,):
            if (out / name).exists():
                shutil.rmtree(out / name)
        for name in (TRIALS_FILE, TRUTH_FILE, INFO_FILE, "trials_truth.json"):
            (out / name).unlink(missing_ok=True)


def run(args: argparse.Namespace) -> int:
    import numpy as np  # noqa: PLC0415

    from perceptlab.analysis.simulate import SYNTHETIC_NOTE, simulate_observers  # noqa: PLC0415
    from perceptlab.cli.generate import parse_pairs  # noqa: PLC0415
    from perceptlab.data.library import StimulusLibrary  # noqa: PLC0415
    from perceptlab.engine.device import describe, pick_device  # noqa: PLC0415
    from perceptlab.engine.filters import FilterSettings  # noqa: PLC0415
    from perceptlab.engine.generate import expand_targets, generate  # noqa: PLC0415
    from perceptlab.engine.registry import default_registry, predict_probs  # noqa: PLC0415
    from perceptlab.engine.sampler import SamplerSettings  # noqa: PLC0415

    out: Path = args.out
    require_at_least_one("--per-pair", args.per_pair, "ask for at least 1 image per pair")
    pairs = parse_pairs(args.pairs)
    registry = default_registry()
    classifiers = registry.names("classifier")
    if not classifiers:
        raise PerceptLabError("no classifier in the registry", "train or install the classifier zoo first")
    classifier = args.classifier or ("vgg" if "vgg" in classifiers else classifiers[0])
    registry.entry(classifier, "classifier")
    registry.entry("dit", "prior")
    observer_model = args.observer_model or classifier
    registry.entry(observer_model, "classifier")
    judge_weight = None if "judge" in registry.names("judge") else 0.0
    _check_out(out, args.force)
    out.mkdir(parents=True, exist_ok=True)
    device = pick_device(args.device)
    extra = {} if judge_weight is None else {"judge_weight": judge_weight}
    settings = SamplerSettings.from_preset(
        args.preset, mode=args.mode, pairs=pairs, classifier=classifier, classifier2=args.classifier2,
        batch_size=args.batch_size, seed=args.seed, **extra,
    ).validate()
    filters = FilterSettings(min_judge=0.5 if judge_weight is None else None)
    targets = expand_targets(pairs, args.per_pair)
    print(f"demo project: {len(targets)} stimuli ({len(pairs)} pairs x {args.per_pair}), {settings.mode} guidance "
          f"with {classifier}, preset {args.preset}, {describe(device)}")
    with StimulusLibrary.create(out / LIBRARY_DIR) as lib:
        job = generate(settings, targets, filters=filters, registry=registry, library=lib, device=device,
                       keep_rejects=True)
        summary = drive_generation(job, len(targets), rounds=False)
        records = lib.records()
        if not records:
            raise PerceptLabError("every generated image diverged; nothing to simulate", "try another --seed or preset")
        images = np.stack([lib.image(r.id) for r in records])
        files = [f"{LIBRARY_DIR}/images/{r.id}.png" for r in records]
        ids = [r.id for r in records]
    probs = np.asarray(predict_probs(observer_model, images, registry), dtype=float)
    per = args.trials_per_participant or max(1, min(200, round(0.6 * len(ids))))
    per = min(per, len(ids))
    trials, truth = simulate_observers(ids, probs, args.participants, per, args.clusters, args.seed, stimuli=files)
    trials.to_csv(out / TRIALS_FILE, index=False)
    truth.to_csv(out / TRUTH_FILE, index=False)
    (out / "trials_truth.json").write_text(json.dumps({
        "synthetic": True, "note": SYNTHETIC_NOTE, "model": observer_model, "stimuli": len(ids),
        "trials_file": TRIALS_FILE, "settings": truth.attrs["settings"],
    }, indent=2) + "\n", encoding="utf-8")
    info = {
        "synthetic": True,
        "note": "Demo project: stimuli generated by PerceptLab; trials are SYNTHETIC (simulated observers), not human data.",
        "pairs": [list(p) for p in pairs], "per_pair": args.per_pair, "mode": settings.mode,
        "classifier": classifier, "classifier2": args.classifier2, "observer_model": observer_model,
        "preset": args.preset, "seed": args.seed, "stimuli": len(ids), "accepted_by_filter": summary.accepted,
        "participants": args.participants, "trials_per_participant": per, "clusters": args.clusters,
        "sampler": settings.to_dict(), "filter": filters.to_dict(),
        "weights": {n: registry.weight_hash(n) for n in sorted({"dit", classifier, observer_model})},
    }
    (out / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    print(f"{summary.generated} generated ({summary.accepted} passed the filter), {len(ids)} stored; "
          f"SYNTHETIC: {len(trials)} trials from {args.participants} simulated observers")
    print(f"wrote {out.resolve()}")
    return 0
