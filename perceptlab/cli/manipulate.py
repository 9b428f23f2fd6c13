"""``perceptlab manipulate``: stimuli that should split two particular participants (BAM §5).

Generate: controversial guidance with participant 1's IndivNet toward class a and participant 2's
toward b for every pair a-b, plus (unless ``--no-control``) a control arm made by the GroupNet for the
same pairs (uncertainty guidance toward a/b 50:50, same seeds). The stimuli go into the library with
mode ``manipulation`` and tags ``p1:<id>``, ``p2:<id>``, ``arm:indiv|group`` and ``run:<tag>``.

Score (``--score RESPONSES``): once the two people have answered, the success rate (participant 1
chose a and participant 2 chose b) and the directional ratio of both arms.

Parsers import no torch; the work is imported when the command runs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from perceptlab.cli._common import drive, given, registry_from_args
from perceptlab.errors import PerceptLabError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "manipulate",
        help="controversial stimuli between two participants' individual models, and their scoring",
        description="Generate stimuli on which participant 1 should answer a and participant 2 should answer b "
        "(controversial guidance: P1's IndivNet -> a, P2's IndivNet -> b), with a control arm from the GroupNet "
        "for the same pairs; or, with --score, score the two participants' responses to them. The IndivNets are "
        "found in the user model folder by participant (or named with --model1/--model2).",
    )
    p.add_argument("--library", required=True, metavar="DIR", help="stimulus library to add to (created if missing)")
    p.add_argument("--p1", required=True, metavar="ID", help="participant 1 (pushed toward a)")
    p.add_argument("--p2", required=True, metavar="ID", help="participant 2 (pushed toward b)")
    p.add_argument(
        "--models-dir", metavar="DIR", help="user model folder with the IndivNets (default $PERCEPTLAB_MODELS)"
    )
    p.add_argument("--model1", help="participant 1's model (default: their IndivNet in the user folder)")
    p.add_argument("--model2", help="participant 2's model (default: their IndivNet in the user folder)")
    p.add_argument("--group", help="GroupNet of the control arm (default: the IndivNets' base)")
    p.add_argument("--no-control", action="store_true", help="generate the IndivNet arm only")
    p.add_argument("--pairs", help="ordered pairs a-b, comma separated (a: participant 1's class), e.g. 3-5,4-9")
    p.add_argument("--per-pair", type=int, default=8, help="stimuli per pair and arm (default 8)")
    p.add_argument("--preset", default="fast", help="sampler preset: paper, fast or draft (default fast)")
    p.add_argument("--steps", type=int, help="inference steps (override the preset)")
    p.add_argument("--gamma", type=float, help="guidance strength (override the preset)")
    p.add_argument("--resample", type=int, help="resampling rounds (override the preset)")
    p.add_argument("--batch-size", type=int, help="images per sampler batch")
    p.add_argument("--seed", type=int, help="base seed (default: random, recorded)")
    p.add_argument("--regenerate", action="store_true", help="re-sample rejected images (up to 10 rounds)")
    p.add_argument("--run", help="run tag (default: random); stored as tag run:<tag>")
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda")
    p.add_argument(
        "--score",
        metavar="RESPONSES",
        help="score a response table (participant, stimulus, response) instead of generating",
    )
    p.add_argument("--out", metavar="JSON", help="write the plan or the scores to this file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.score:
        return _score(args)
    if not args.pairs:
        raise PerceptLabError("no pairs given", fix="e.g. --pairs 3-5,4-9 (a is participant 1's class)")
    from perceptlab.align.manipulate import parse_pairs  # noqa: PLC0415

    pairs = parse_pairs(args.pairs)
    from perceptlab.align.manipulate import (  # noqa: PLC0415
        ManipulationPlan,
        generate_manipulation,
        group_of,
        resolve_individual,
    )
    from perceptlab.data.library import StimulusLibrary  # noqa: PLC0415
    from perceptlab.engine.device import describe, pick_device  # noqa: PLC0415
    from perceptlab.engine.sampler import SamplerSettings  # noqa: PLC0415

    registry = registry_from_args(args)
    model1 = args.model1 or resolve_individual(args.p1, registry)
    model2 = args.model2 or resolve_individual(args.p2, registry)
    group = None
    if not args.no_control:
        group = args.group or group_of(model1, registry)
        if group is None:
            raise PerceptLabError(
                f"the GroupNet {model1!r} was fine-tuned from is not in the registry",
                fix="name the control model with --group, or pass --no-control",
            )
    changes = given(args, ("steps", "gamma", "resample", "batch_size", "seed"))
    sampler = SamplerSettings.from_preset(args.preset, **changes)
    plan = ManipulationPlan(
        p1=args.p1,
        p2=args.p2,
        model1=model1,
        model2=model2,
        pairs=pairs,
        per_pair=args.per_pair,
        group=group,
        sampler=sampler,
        regenerate=args.regenerate,
        run=args.run or "",
    ).validate()
    device = pick_device(args.device)
    print(
        f"device: {describe(device)}; participant {args.p1} -> a with {model1}, "
        f"participant {args.p2} -> b with {model2}"
        + (f"; control: {group}" if group else "; no control arm")
    )
    library = StimulusLibrary.open_or_create(args.library)
    try:
        made = drive(generate_manipulation(library, plan, registry=registry, device=device), "manipulation")
    finally:
        library.close()
    counts = made.groupby("arm").agg(
        stored=("stimulus_id", "size"), passed=("passed", lambda s: int(s.fillna(False).sum()))
    )
    for arm, row in counts.iterrows():
        print(f"arm {arm}: {row['stored']} stimuli stored, {row['passed']} passed the filter")
    print(
        f"run tag: run:{plan.run} (tags p1:{args.p1}, p2:{args.p2}); export them and collect the two people's "
        f"responses, then: perceptlab manipulate --library {args.library} --p1 {args.p1} --p2 {args.p2} "
        f"--run {plan.run} --score RESPONSES.csv"
    )
    if args.out:
        from perceptlab.engine.weights import write_json  # noqa: PLC0415

        write_json(Path(args.out), {"plan": plan.to_dict(), "stimuli": made.astype(object).to_dict("records")})
    return 0


def _score(args: argparse.Namespace) -> int:
    from perceptlab.align.manipulate import format_scores, manipulation_stimuli, score_manipulation  # noqa: PLC0415
    from perceptlab.data.library import StimulusLibrary  # noqa: PLC0415
    from perceptlab.data.trials import load_trials  # noqa: PLC0415

    path = Path(args.score)
    if not path.is_file():
        raise PerceptLabError(f"response file {path} does not exist", fix="check the --score path")
    library = StimulusLibrary.open(args.library)
    try:
        stimuli = manipulation_stimuli(library, args.p1, args.p2, args.run)
    finally:
        library.close()
    if stimuli.empty:
        raise PerceptLabError(
            f"no manipulation stimuli for p1:{args.p1} / p2:{args.p2} in {args.library}"
            + (f" with run:{args.run}" if args.run else ""),
            fix="generate them first with perceptlab manipulate --pairs ...",
        )
    table = load_trials(path)
    df = table.df.copy()
    # trial stimulus keys may be ids, file names or paths: reduce to the id (file stem)
    df["stimulus"] = (
        df["stimulus"].astype(str).str.rsplit("/", n=1).str[-1].str.replace(r"\.[A-Za-z0-9]+$", "", regex=True)
    )
    for pid in (args.p1, args.p2):
        if pid not in set(df["participant"].astype(str)):
            raise PerceptLabError(f"participant {pid!r} is not in {path}", fix="check --p1/--p2")
    scores = score_manipulation(stimuli, df, args.p1, args.p2, len(table.classes))
    print(format_scores(scores))
    if args.out:
        from perceptlab.engine.weights import write_json  # noqa: PLC0415

        write_json(Path(args.out), json.loads(json.dumps(scores, default=str)))
        print(f"wrote {args.out}")
    return 0
