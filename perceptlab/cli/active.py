"""``perceptlab active next``: rank a library's stimuli by expected information about one participant.

The participant's trials so far (from a trial file) update a posterior over candidate observer models
(the named models x cluster prototypes learnt from the file's other participants x temperatures); the
remaining stimuli are ranked by BALD, the expected information gain in nats (see
:mod:`perceptlab.experiment.active`).
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from perceptlab.cli.bench_active import number_list
from perceptlab.errors import PerceptLabError


def run_next(args: argparse.Namespace) -> int:
    from perceptlab.cli._common import registry_from_args  # noqa: PLC0415
    from perceptlab.data.trial_stimuli import library_stimuli, resolve_stimuli  # noqa: PLC0415
    from perceptlab.data.trials import load_trials  # noqa: PLC0415
    from perceptlab.experiment.active import (  # noqa: PLC0415
        ActiveSelector,
        learn_prototypes,
        library_model_probs,
    )

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    registry = registry_from_args(args) if args.models_dir else None
    ids, model_probs = library_model_probs(args.library, models, registry)
    c = next(iter(model_probs.values())).shape[1]
    table = load_trials(args.trials)
    classes = tuple(table.classes)
    if len(classes) != c:
        raise PerceptLabError(f"{args.trials}: {len(classes)} classes ({', '.join(classes)}) but the models give "
                              f"{c} probabilities per stimulus", fix="use a trial file of this library's classes")
    index = resolve_stimuli(table, manifest=library_stimuli(args.library))
    key_to_id = index.table["stimulus_id"].astype(str).to_dict()
    df = table.df.assign(stimulus_id=table.df["stimulus"].map(key_to_id))
    known = set(ids)
    usable = df[df["stimulus_id"].isin(known)]
    notes = []
    if len(usable) < len(df):
        notes.append(f"{len(df) - len(usable)} of {len(df)} trials name stimuli outside the library's usable set")
    mine = usable[usable["participant"].astype(str) == args.participant]
    if (df["participant"].astype(str) == args.participant).sum() == 0:
        raise PerceptLabError(f"{args.trials}: no trials of participant {args.participant!r}",
                              fix="participants in the file: " + ", ".join(map(str, table.participants[:10])))
    others = usable[usable["participant"].astype(str) != args.participant]
    protos = None
    if not args.no_prototypes and others["participant"].nunique() >= 3:
        ref = model_probs[models[0]]
        try:
            learnt = learn_prototypes(others.assign(stimulus=others["stimulus_id"]), ref, ids, k=args.clusters)
            protos = learnt.prototypes
            notes.append(f"cluster prototypes from {len(learnt.labels)} other participants: {learnt.verdict}")
        except PerceptLabError as exc:
            notes.append(f"no cluster prototypes ({exc})")
    elif not args.no_prototypes:
        notes.append("no cluster prototypes: fewer than 3 other participants in the trial file")
    sel = ActiveSelector.from_model_probs(model_probs, ids, classes, prototypes=protos, temperatures=args.temperatures,
                                          lapse=args.lapse, seed=args.seed, method=args.method)
    for sid, r in zip(mine["stimulus_id"], mine["response"]):
        sel.observe(str(sid), classes[int(r)])
    top = sel.ranked(args.top)
    if args.method == "random":
        draws = []
        shown: set[str] = set()
        for _ in range(min(args.top, len(top) if top else 0)):
            sid, g = sel.next(exclude=shown)
            shown.add(sid)
            draws.append((sid, g))
        top = draws
    cluster = sel.marginal("cluster")
    model = sel.marginal("model")
    out = {
        "participant": args.participant, "trials_used": len(mine), "method": args.method,
        "hypotheses": len(sel.hypotheses), "posterior_entropy_nats": sel.posterior_entropy(),
        "model_posterior": {str(k): v for k, v in model.items()},
        "cluster_posterior": {str(k): v for k, v in cluster.items()},
        "next": [{"stimulus_id": s, "gain_nats": g,
                  "predicted": dict(zip(classes, np.round(sel.predict([s])[0], 4).tolist()))} for s, g in top],
        "notes": notes,
    }
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    for n in notes:
        print(f"note: {n}")
    print(f"participant {args.participant}: {len(mine)} trials, {len(sel.hypotheses)} hypotheses, "
          f"posterior entropy {out['posterior_entropy_nats']:.3f} nats")
    print("models: " + ", ".join(f"{k} {v:.2f}" for k, v in model.items()))
    print("clusters: " + ", ".join(f"{k} {v:.2f}" for k, v in cluster.items()))
    print(f"{'rank':>4}  {'stimulus':<12} gain (nats)")
    for i, (s, g) in enumerate(top, 1):
        print(f"{i:>4}  {s:<12} {g:.4f}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("active", help="active stimulus design: the most informative next stimuli",
                              description="Active stimulus design over candidate observer models (BALD).")
    sub = p.add_subparsers(dest="active_command", metavar="ACTION", required=True)
    n = sub.add_parser("next", help="rank a library's stimuli by expected information about one participant",
                       description=__doc__.split("\n\n", 1)[1])
    n.add_argument("--library", required=True, help="stimulus library folder")
    n.add_argument("--trials", required=True, help="trial file or folder (the participant's trials so far, "
                   "and earlier participants' for the cluster prototypes)")
    n.add_argument("--participant", required=True, help="participant id in the trial file")
    n.add_argument("--models", default="vgg,cornet,mlp",
                   help="candidate observer models, comma-separated; the first is the reference for the "
                   "prototypes (default vgg,cornet,mlp)")
    n.add_argument("--models-dir", help="user model folder (default: the registry's)")
    n.add_argument("--top", type=int, default=10, help="how many stimuli to list (default 10)")
    n.add_argument("--method", choices=("bald", "random"), default="bald", help="selection (default bald)")
    n.add_argument("--clusters", type=int, help="number of cluster prototypes (default: by silhouette)")
    n.add_argument("--no-prototypes", action="store_true", help="no cluster prototypes (zero bias only)")
    n.add_argument("--temperatures", type=number_list(float), default=(0.7, 0.9, 1.1, 1.4),
                   help="temperature grid (default 0.7,0.9,1.1,1.4)")
    n.add_argument("--lapse", type=float, default=0.02, help="lapse rate of every hypothesis (default 0.02)")
    n.add_argument("--seed", type=int, default=0, help="seed of ties and random draws (default 0)")
    n.add_argument("--json", action="store_true", help="print JSON")
    n.set_defaults(func=run_next)
