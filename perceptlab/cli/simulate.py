"""``perceptlab simulate``: synthetic observers answering a stimulus library through a classifier.

Writes the trials (variMNIST layout + ``rt`` in ms + ``synthetic``), ``<stem>_truth.csv`` (each
participant's cluster, temperature, lapse rate, speed and bias vector) and ``<stem>_truth.json``
(the parameters). Everything is labelled synthetic.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from perceptlab.cli._common import engine_probs
from perceptlab.errors import PerceptLabError


def _predict(model_name: str, images: np.ndarray) -> np.ndarray:
    """Class probabilities from the engine (imported here so that the data layer stays torch-free)."""
    return engine_probs(model_name, images, "simulated observers need",
                        fix="install the engine's dependencies (torch)")


def run(args: argparse.Namespace) -> int:
    from perceptlab.analysis.simulate import SYNTHETIC_NOTE, simulate_observers  # noqa: PLC0415
    from perceptlab.data.trials import load_manifest, load_stimulus_images  # noqa: PLC0415

    manifest = load_manifest(args.library)
    if "status" in manifest.columns:
        rejected = manifest["status"].astype(str).str.lower().eq("rejected")
        manifest = manifest[~rejected]
        if rejected.any():
            print(f"left out {int(rejected.sum())} stimuli curated as rejected")
    if manifest.empty:
        raise PerceptLabError(f"{args.library}: the library has no usable stimuli")
    images = load_stimulus_images(manifest["path"].tolist())
    probs = np.asarray(_predict(args.model, images), dtype=float)
    trials, truth = simulate_observers(
        manifest["stimulus_id"].astype(str).tolist(), probs, args.participants,
        args.trials_per_participant, args.clusters, args.seed,
        stimuli=manifest["file"].astype(str).tolist(),
    )
    out = Path(args.out)
    if out.is_dir():
        raise PerceptLabError(f"--out {out} is a folder; it names the trials CSV to write",
                              fix=f"name a file, e.g. --out {out / 'trials.csv'}")
    out.parent.mkdir(parents=True, exist_ok=True)
    truth_csv = out.with_name(f"{out.stem}_truth.csv")
    truth_json = out.with_name(f"{out.stem}_truth.json")
    trials.to_csv(out, index=False)
    truth.to_csv(truth_csv, index=False)
    overlap = args.trials_per_participant ** 2 / len(manifest)
    truth_json.write_text(json.dumps({
        "synthetic": True, "note": SYNTHETIC_NOTE, "library": str(Path(args.library).resolve()),
        "model": args.model, "stimuli": int(len(manifest)), "trials_file": out.name,
        "expected_coviewed_stimuli_per_pair": overlap, "settings": truth.attrs["settings"],
    }, indent=2) + "\n", encoding="utf-8")
    print(f"SYNTHETIC: {len(trials)} trials from {args.participants} simulated observers in "
          f"{args.clusters} clusters over {len(manifest)} stimuli (model {args.model}, seed {args.seed})")
    print(f"expected co-viewed stimuli per participant pair: {overlap:.1f}")
    print(f"wrote {out}, {truth_csv.name}, {truth_json.name}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "simulate", help="synthetic observers answering a stimulus library through a classifier",
        description="Simulate clearly labelled synthetic participants whose answers follow a "
        "classifier's probabilities plus a cluster-specific bias, temperature and lapse rate.",
    )
    p.add_argument("--library", required=True, help="stimulus library folder (manifest.csv, images/)")
    p.add_argument("--participants", type=int, default=40, help="number of observers (default 40)")
    p.add_argument("--trials-per-participant", type=int, default=200,
                   help="stimuli each observer sees (default 200)")
    p.add_argument("--clusters", type=int, default=4, help="number of observer clusters (default 4)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--model", default="vgg", help="classifier giving the probabilities (default vgg)")
    p.add_argument("--out", required=True, help="trials CSV to write")
    p.set_defaults(func=run)
