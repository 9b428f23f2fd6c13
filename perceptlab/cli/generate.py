"""``perceptlab generate``: boundary stimuli into a library, headless, with a progress bar."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from perceptlab.cli._common import drive_generation, given, require_at_least_one
from perceptlab.cli._jobs import add_cluster_args, drive_job, open_cluster_from_args, wants_cluster
from perceptlab.data.library import StimulusLibrary
from perceptlab.errors import PerceptLabError

# Copies of engine constants, so that building the parser (every `perceptlab` call) imports no torch;
# tests/test_cli_generate.py checks that they match perceptlab.engine.sampler.
MODES = ("uncertainty", "controversial")
GRAD_MODES = ("full", "x0")
SPACINGS = ("trailing", "quadratic", "leading")
PRESETS = ("paper", "fast", "draft", "reference")
DEFAULT_PRESET = "fast"

_PAIR_RE = re.compile(r"^\s*(\d)\s*-\s*(\d)\s*$")
_PAIR_FIX = "write pairs as a-b with two different digits 0-9, separated by commas, e.g. --pairs 3-5,4-9"


def parse_pairs(text: str) -> list[tuple[int, int]]:
    """'3-5,4-9' -> [(3, 5), (4, 9)]; anything else is a PerceptLabError naming the bad item."""
    pairs = []
    for item in text.split(","):
        m = _PAIR_RE.match(item)
        if not m or m.group(1) == m.group(2):
            raise PerceptLabError(f"bad pair {item.strip()!r}", _PAIR_FIX)
        pair = (int(m.group(1)), int(m.group(2)))
        if pair not in pairs:
            pairs.append(pair)
    return pairs


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate",
        help="generate images on classifier decision boundaries into a stimulus library",
        description=(
            "Classifier-guided diffusion (BAM): sample images for target pairs a-b, score them with every "
            "zoo classifier and the digit judge, apply the acceptance filter and store them in a library. "
            "Explicit options override the preset."
        ),
    )
    p.add_argument("--mode", choices=MODES, default="uncertainty", help="guidance mode (default uncertainty)")
    p.add_argument("--classifier", required=True, metavar="NAME", help="guiding classifier (classifier 1)")
    p.add_argument("--classifier2", metavar="NAME", help="controversial mode: classifier pushed toward b")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--pairs", metavar="A-B,...", help="target pairs, e.g. 3-5,4-9")
    which.add_argument(
        "--all-pairs", action="store_true", help="all 45 pairs (all 90 ordered pairs in controversial mode)"
    )
    p.add_argument("--per-pair", type=int, default=1, metavar="N", help="stimuli asked per pair (default 1)")
    p.add_argument(
        "--library", required=True, type=Path, metavar="DIR", help="library folder (created if new or empty)"
    )
    p.add_argument("--preset", choices=PRESETS, default=DEFAULT_PRESET, help=f"default {DEFAULT_PRESET}")
    p.add_argument("--gamma", type=float, help="guidance strength (paper 0.1)")
    p.add_argument("--steps", type=int, help="inference steps (paper 50)")
    p.add_argument("--resample", type=int, help="resampling rounds per step (paper 5)")
    p.add_argument("--grad", choices=GRAD_MODES, help="full: through the denoiser (paper); x0: cheaper")
    p.add_argument(
        "--spacing", choices=SPACINGS, help="timesteps: trailing = even from t=999 (paper); quadratic = dense near t=0"
    )
    p.add_argument("--judge-weight", type=float, help="weight of the judge penalty (1 = paper, 0 = off)")
    p.add_argument("--reference", metavar="ID", help="library stimulus to stay close to (pixel constraint)")
    p.add_argument("--alpha", type=float, help="pixel-constraint strength (paper 50)")
    p.add_argument(
        "--condition",
        help="condition the prior: a, b (the target class), either (a or b by the image's seed), pair (halfway "
        "between a and b), a digit 0-9 or none",
    )
    p.add_argument(
        "--ensemble",
        metavar="NAMES",
        help="uncertainty: more classifiers that guide with --classifier (comma list; the loss is their mean)",
    )
    p.add_argument("--seed", type=int, help="base seed (default: random, recorded with every stimulus)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--batch-size", type=int, help="images sampled together (default 64)")
    p.add_argument("--regenerate-rejects", action="store_true", help="re-sample rejected targets until they pass")
    p.add_argument("--max-rounds", type=int, default=10, help="regeneration rounds at most (default 10)")
    p.add_argument(
        "--keep-rejects",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="store rejected images too (passed=false); default: yes, but no with --regenerate-rejects",
    )
    f = p.add_argument_group("acceptance filter")
    f.add_argument("--filter", choices=("paper", "percentile"), default="paper", help="default paper (DESIGN §2)")
    f.add_argument("--min-prob", type=float, default=0.4, help="uncertainty: both pair probabilities above (0.4)")
    f.add_argument("--min-confidence", type=float, default=0.9, help="controversial: max probabilities above (0.9)")
    f.add_argument("--min-judge", type=float, default=0.5, help="judge score above (0.5); negative: no judge check")
    f.add_argument("--percentile", type=float, default=75.0, help="percentile filter: q (75, as varEmotion)")
    f.add_argument("--mnist", metavar="DIR", help="percentile filter: reference MNIST folder (default built-in subset)")
    f.add_argument(
        "--agree",
        type=int,
        metavar="K",
        help="also require K zoo classifiers other than the guides to put the pair in their top two (0 = off, the "
        "paper; default: the preset's, fast: 2 in uncertainty, 3 in controversial mode; the independent observers "
        "never count)",
    )
    f.add_argument("--agree-with", metavar="NAMES", help="--agree: the zoo classifiers to ask (comma list; default all)")
    f.add_argument(
        "--strokes",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="clean-stroke check: reject images with detached specks, knots or blots (default: the preset's; fast: on)",
    )
    add_cluster_args(p).add_argument(
        "--save-job", type=Path, metavar="JSON", help="write the job description instead of running it ('perceptlab job run')"
    )
    p.set_defaults(func=run)


def _settings(args: argparse.Namespace):
    from perceptlab.engine.generate import all_pairs  # noqa: PLC0415
    from perceptlab.engine.sampler import SamplerSettings  # noqa: PLC0415

    pairs = all_pairs(ordered=args.mode == "controversial") if args.all_pairs else parse_pairs(args.pairs)
    overrides = given(
        args, ("gamma", "steps", "resample", "grad", "spacing", "judge_weight", "reference", "alpha", "batch_size", "seed")
    )
    if args.condition is not None:
        overrides["condition"] = None if args.condition == "none" else args.condition
    if args.ensemble is not None:
        overrides["ensemble"] = [n.strip() for n in args.ensemble.split(",") if n.strip()]
    settings = SamplerSettings.from_preset(
        args.preset, mode=args.mode, pairs=pairs, classifier=args.classifier, classifier2=args.classifier2, **overrides
    ).validate()
    if settings.mode == "controversial" and settings.classifier2 == settings.classifier:
        raise PerceptLabError(
            "controversial mode needs two different classifiers", "pick another --classifier2 (see 'perceptlab models')"
        )
    require_at_least_one("--per-pair", args.per_pair, "ask for at least 1 stimulus per pair")
    return settings


def _filters(args: argparse.Namespace, settings, registry):
    from perceptlab.engine.filters import FilterSettings, with_thresholds  # noqa: PLC0415
    from perceptlab.engine.sampler import preset_filter  # noqa: PLC0415

    preset = preset_filter(args.preset, settings.mode)
    filters = FilterSettings(
        kind=args.filter,
        min_prob=args.min_prob,
        min_confidence=args.min_confidence,
        min_judge=None if args.min_judge < 0 else args.min_judge,
        percentile=args.percentile,
        agree=preset.get("agree", 0) if args.agree is None else args.agree,
        agree_with=[n.strip() for n in (args.agree_with or "").split(",") if n.strip()],
        strokes=preset.get("strokes", False) if args.strokes is None else args.strokes,
    ).validate()
    if filters.kind == "percentile":
        from perceptlab.data.mnist import load_mnist  # noqa: PLC0415
        from perceptlab.engine.registry import predict_probs  # noqa: PLC0415

        data = load_mnist(args.mnist)
        names = {settings.classifier, settings.classifier2} - {None}
        filters = with_thresholds(filters, {n: predict_probs(n, data.images, registry) for n in sorted(names)})
        print(f"percentile filter: {filters.percentile:g}th percentiles over {data.source}")
    return filters


def run(args: argparse.Namespace) -> int:
    from perceptlab.engine.device import describe, pick_device  # noqa: PLC0415
    from perceptlab.engine.generate import expand_targets, generate, resolve_seed  # noqa: PLC0415
    from perceptlab.engine.registry import default_registry  # noqa: PLC0415

    settings = _settings(args)
    require_at_least_one("--max-rounds", args.max_rounds, "use at least 1 round")
    registry = default_registry()
    registry.entry(settings.classifier, "classifier")
    for name in settings.ensemble:
        registry.entry(name, "classifier")
    if settings.mode == "controversial":
        registry.entry(settings.classifier2, "classifier")
    registry.entry(settings.prior, "prior")
    if settings.judge_weight > 0 or args.min_judge >= 0:
        registry.entry(settings.judge, "judge")
    on_cluster = wants_cluster(args)
    if args.save_job:
        return _save_job(args, settings, expand_targets(settings.pairs, args.per_pair), registry)
    device = None if on_cluster else pick_device(args.device)  # on a cluster each worker resolves --device
    settings = settings.replace(seed=resolve_seed(settings.seed))
    targets = expand_targets(settings.pairs, args.per_pair)
    with StimulusLibrary.open_or_create(args.library) as lib:
        if settings.reference is not None and settings.reference not in lib:
            raise PerceptLabError(
                f"no stimulus {settings.reference!r} in the library {lib.path}",
                "pass the id of a stimulus of this library as --reference (manifest.csv lists them, e.g. s000001)",
            )
        filters = _filters(args, settings, registry)
        who = settings.classifier + (f" vs {settings.classifier2}" if settings.mode == "controversial" else "")
        print(
            f"{settings.mode} guidance with {who}: {len(targets)} stimuli ({len(settings.pairs)} pair(s) x "
            f"{args.per_pair}); preset {settings.preset} - {settings.steps} steps, R={settings.resample}, "
            f"gamma {settings.gamma:g}, grad {settings.grad}; base seed {settings.seed}; "
            + (f"device {args.device} on every worker" if on_cluster else describe(device))
        )
        print(f"filter: {filters.describe()}")
        if on_cluster:
            summary = _run_on_cluster(args, settings, targets, filters, registry, lib, args.device)
        else:
            job = generate(
                settings,
                targets,
                filters=filters,
                registry=registry,
                library=lib,
                device=device,
                regenerate=args.regenerate_rejects,
                max_rounds=args.max_rounds,
                keep_rejects=args.keep_rejects,
            )
            summary = drive_generation(job, len(targets))
        print(
            f"generated {summary.generated} images in {summary.seconds:.1f} s ({summary.seconds_per_image:.2f} s/image); "
            f"accepted {summary.accepted} ({summary.acceptance_rate:.1%}); "
            f"stored {len(summary.ids)} in {lib.path}"
        )
    _print_transfer(summary.records)
    _print_rejections(summary.records)
    if summary.invalid:
        print(f"{summary.invalid} images diverged and were dropped (first: {summary.invalid_reasons[0]})")
    if summary.unfilled:
        hint = "; more --max-rounds or a larger --gamma may help" if args.regenerate_rejects else ""
        print(f"{summary.unfilled} of {summary.asked} asked stimuli have no accepted image{hint}")
    return 0


def _print_rejections(records) -> None:
    """How many stored rejects each part of the filter turned down (one image may fail several)."""
    from collections import Counter  # noqa: PLC0415

    from perceptlab.engine.filters import rejection_kinds  # noqa: PLC0415

    counts = Counter(k for r in records if r.passed is False for k in rejection_kinds(r.reason))
    if counts:
        print("rejected by: " + ", ".join(f"{kind} {n}" for kind, n in counts.most_common()))


def _print_transfer(records) -> None:
    """Observer transfer of the accepted images: which of them only fool the guide."""
    from perceptlab.analysis.transfer import summarize  # noqa: PLC0415

    accepted = [r for r in records if r.passed]
    per = summarize(accepted)
    if not per:
        return
    parts = [f"{n} {v['confirmed']}/{v['n']} ({v['rate']:.0%})" for n, v in per.items() if n != "all"]
    if "all" in per:
        parts.append(f"all observers {per['all']['rate']:.0%}")
    print("observer transfer of accepted images (independent observers, never guide or filter): " + ", ".join(parts))


def _save_job(args, settings, targets, registry) -> int:
    """``--save-job``: the job description as JSON, to run anywhere with ``perceptlab job run``."""
    from perceptlab.jobs.generate_job import GenerateJob  # noqa: PLC0415

    lib = StimulusLibrary.open(args.library) if settings.reference is not None else None
    try:
        job = GenerateJob.build(
            settings, targets, filters=_filters(args, settings, registry), registry=registry, library=lib,
            regenerate=args.regenerate_rejects, max_rounds=args.max_rounds, keep_rejects=args.keep_rejects,
            device=args.device, threads=args.threads_per_task,
        )  # fmt: skip
    finally:
        if lib is not None:
            lib.close()
    args.save_job.write_text(job.to_json() + "\n", encoding="utf-8")
    print(f"wrote job {job.job_id} ({len(targets)} stimuli, base seed {job.base_seed}) to {args.save_job}; "
          f"run it with: perceptlab job run {args.save_job} --library {args.library}")
    return 0


def _run_on_cluster(args, settings, targets, filters, registry, lib, device):
    """The same job, split into batch tasks on a Dask cluster (perceptlab.jobs.generate_job)."""
    from perceptlab.jobs.generate_job import GenerateJob, run_generate_job  # noqa: PLC0415

    job = GenerateJob.build(
        settings, targets, filters=filters, registry=registry, library=lib, regenerate=args.regenerate_rejects,
        max_rounds=args.max_rounds, keep_rejects=args.keep_rejects, device=str(device),
        threads=args.threads_per_task,
    )  # fmt: skip
    cluster = open_cluster_from_args(args)
    try:
        summary = drive_job(run_generate_job(job, cluster, lib, retries=args.retries), "generating")
    finally:
        cluster.close()
    made = ", ".join(f"{w} {n}" for w, n in sorted(summary.workers.items()))
    print(f"job {job.job_id}: images per worker: {made}")
    if summary.repeats:
        print(f"{summary.repeats} stimuli were already in the library (same settings and seed) and were not stored again")
    return summary
