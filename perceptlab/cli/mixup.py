"""``perceptlab mixup``: human percepts of mixup (seeds/004) headless.

  make        mixed-digit stimuli into a library (with every zoo model's probabilities)
  design      a perceptlab-design/1 folder with pick / slider (/ choice) trials over them
  export      the design as a jsPsych 8 experiment
  simulate    SYNTHETIC lambda-perceivers doing the design (runner's canonical CSV + truth JSON)
  analyze     inferred vs generating lambda, logistic fits per pair, misalignment (CSV, JSON, PNG)
  soft-labels a soft-label training set (CSV / npz) from the relabelings, optionally omega-smoothed
  soft-eval   base / hard-label / soft-label GroupNets on held-out stimuli (CE, ECE), seeds/004 Table 1
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from perceptlab.cli._common import (
    add_jspsych_save_args,
    add_mnist_args,
    mnist_from_args,
    report_jspsych_export,
)
from perceptlab.errors import PerceptLabError
from perceptlab.names import BUILTIN_CLASSIFIERS


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise PerceptLabError(f"--lambdas {text!r}", "give numbers separated by commas, e.g. 0,0.25,0.5,0.75,1") from None


def _make(args: argparse.Namespace) -> int:
    from perceptlab.data.library import StimulusLibrary  # noqa: PLC0415
    from perceptlab.data.mixup import (  # noqa: PLC0415
        DEFAULT_LAMBDAS,
        add_to_library,
        make_mixup,
        parse_pairs,
    )

    data = mnist_from_args(args)
    lambdas = _floats(args.lambdas) if args.lambdas else DEFAULT_LAMBDAS
    mixset = make_mixup(data, parse_pairs(args.pairs), args.per_pair, lambdas, args.seed, args.digits)
    probs, hashes = {}, {}
    models = [] if args.no_probs else [m for m in args.models.split(",") if m]
    if models:
        from perceptlab.engine.registry import default_registry, predict_probs  # noqa: PLC0415

        reg = default_registry()
        for m in models:
            probs[m] = predict_probs(m, mixset.images, reg)
            hashes[m] = reg.weight_hash(m)
    with StimulusLibrary.open_or_create(args.library) as lib:
        ids = add_to_library(lib, mixset, probs, hashes)
    n_pairs = mixset.table["pair"].nunique()
    print(f"added {len(ids)} mixup stimuli ({n_pairs} source pairs x {len(set(mixset.table['lambda']))} lambdas) "
          f"to {args.library}; zoo probabilities: {', '.join(models) or 'none'}")
    return 0


def _design(args: argparse.Namespace) -> int:
    from perceptlab.data.library import StimulusLibrary  # noqa: PLC0415
    from perceptlab.experiment.mixup import write_design  # noqa: PLC0415

    kinds = tuple(k for k in args.kinds.split(",") if k)
    with StimulusLibrary.open(args.library) as lib:
        path = write_design(lib, args.out, kinds, seed=args.seed, name=args.name)
    print(f"wrote {path}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from perceptlab.data.export_mixup import export_mixup_jspsych  # noqa: PLC0415

    path = export_mixup_jspsych(args.design, args.out, image_px=args.image_px, save_hook=args.save_hook,
                                save_url=args.save_url, download=not args.no_download, jspsych_from=args.jspsych_from)
    report_jspsych_export(path, "README.md", args.jspsych_from)
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from perceptlab.analysis.mixup_simulate import (  # noqa: PLC0415
        PerceiverSettings,
        simulate_perceivers,
    )
    from perceptlab.experiment.design import load_design  # noqa: PLC0415

    design = load_design(args.design)
    trials, truth = simulate_perceivers(design, PerceiverSettings(participants=args.participants, seed=args.seed,
                                                                   max_bias=args.max_bias))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    trials.to_csv(out, index=False)
    truth_path = out.with_name(f"{out.stem}_truth.json")
    truth_path.write_text(json.dumps({"synthetic": True, **truth}, indent=2) + "\n", encoding="utf-8")
    print(f"SYNTHETIC: {len(trials)} trials from {args.participants} simulated lambda-perceivers; "
          f"wrote {out} and {truth_path.name}")
    return 0


def _info(args: argparse.Namespace, any_stimuli: bool = False):
    """(stimulus info, classes) from --design or --library; ``any_stimuli``: every library stimulus
    (boundary stimuli relabeled by choice trials), not only the mixup ones."""
    if args.design:
        from perceptlab.experiment.design import load_design  # noqa: PLC0415
        from perceptlab.experiment.mixup import stimulus_info  # noqa: PLC0415

        design = load_design(args.design)
        return stimulus_info(design), list(design.classes)
    if args.library:
        import pandas as pd  # noqa: PLC0415

        from perceptlab import CLASSES  # noqa: PLC0415
        from perceptlab.data.library import StimulusLibrary  # noqa: PLC0415
        from perceptlab.data.mixup import mixup_table, stimulus_table  # noqa: PLC0415

        with StimulusLibrary.open(args.library) as lib:
            table = stimulus_table(lib) if any_stimuli else mixup_table(lib)
        for col in ("class_a", "class_b"):
            table[col] = [str(int(v)) if pd.notna(v) else "" for v in table[col]]
        return table.set_index("stimulus", drop=False), list(CLASSES)
    raise PerceptLabError("which stimuli were these trials on?", "give --design DESIGN.json or --library DIR")


def _analyze(args: argparse.Namespace) -> int:
    from perceptlab.analysis.mixup import SUMMARY_KEYS, analyze_mixup, is_synthetic, write_report  # noqa: PLC0415
    from perceptlab.analysis.mixup_simulate import NOTE, recovery  # noqa: PLC0415
    from perceptlab.data.export_mixup import read_mixup_results  # noqa: PLC0415

    trials = read_mixup_results(args.trials)
    info, _classes = _info(args)
    result = analyze_mixup(trials, info)
    synthetic = is_synthetic(trials)
    if args.truth:
        truth = json.loads(Path(args.truth).read_text(encoding="utf-8"))
        result["summary"]["recovery"] = recovery(result["pairs"], truth)
    paths = write_report(result, args.out, NOTE if synthetic else None)
    s = result["summary"]
    print(("SYNTHETIC data. " if synthetic else "") + f"{s['trials']} trials, {s['participants']} participants, "
          f"{s['category_pairs']} category pairs")
    for key in SUMMARY_KEYS:
        if s.get(key) is not None:
            print(f"  {key}: {s[key]:.4f}")
    if "recovery" in s:
        r = s["recovery"]
        print(f"  recovery of the simulated per-pair bias: mean abs error {r['fit_bias_mae']:.4f} (fit), "
              f"{r.get('pick_bias_mae', float('nan')):.4f} (pick), max {r['fit_bias_max_error']:.4f}")
    for note in s["notes"]:
        print(f"  note: {note}")
    print(f"wrote {len(paths)} files to {args.out}")
    return 0


def _relabel(args: argparse.Namespace):
    from perceptlab.analysis.soft_labels import relabel_rows  # noqa: PLC0415
    from perceptlab.data.export_mixup import read_mixup_results  # noqa: PLC0415

    trials = read_mixup_results(args.trials)
    info, classes = _info(args, any_stimuli=True)
    return trials, relabel_rows(trials, info, classes), classes


def _images(args: argparse.Namespace, stimuli: list[str]):
    import numpy as np  # noqa: PLC0415

    from perceptlab.data.images import read_png  # noqa: PLC0415

    folder = Path(args.design).parent / "images" if args.design else Path(args.library) / "images"
    missing = [s for s in stimuli if not (folder / f"{s}.png").is_file()]
    if missing:
        raise PerceptLabError(f"{len(missing)} stimuli have no image in {folder} (first: {missing[0]})",
                              "point --design / --library at the folder the trials were collected with")
    return np.stack([read_png(folder / f"{s}.png") for s in stimuli])


def _soft_labels(args: argparse.Namespace) -> int:
    from perceptlab.analysis.mixup import is_synthetic  # noqa: PLC0415
    from perceptlab.analysis.soft_labels import soft_label_set, write_soft_labels  # noqa: PLC0415

    trials, rows, classes = _relabel(args)
    soft = soft_label_set(rows, classes, args.omega, args.uniform)
    out = Path(args.out)
    images = _images(args, soft["stimulus"].tolist()) if out.suffix.lower() == ".npz" else None
    meta = {"trials": str(args.trials), "omega": args.omega, "uniform": args.uniform,
            "synthetic": is_synthetic(trials)}
    write_soft_labels(soft, classes, out, images, meta)
    if args.relabels:
        keep = [c for c in ("participant", "stimulus", "trial_index", "confidence") if c in rows.columns]
        table = rows[keep].copy()
        table.insert(2, "response", [classes[i] for i in rows["label"]])
        table = table.sort_values(["participant", "trial_index"] if "trial_index" in keep else ["participant"])
        table.to_csv(args.relabels, index=False)
        print(f"wrote {args.relabels} (one hard relabeling per trial, for `perceptlab align --trials ... "
              f"--soft-targets {out}`)")
    print(("SYNTHETIC data. " if meta["synthetic"] else "") + f"soft labels for {len(soft)} stimuli from "
          f"{len(rows)} relabelings (omega {args.omega}, mean {soft['omega_mean'].mean():.3f}); wrote {out}")
    return 0


def _soft_eval(args: argparse.Namespace) -> int:
    import pandas as pd  # noqa: PLC0415

    from perceptlab.align.finetune import FinetuneRecipe  # noqa: PLC0415
    from perceptlab.analysis.mixup import is_synthetic  # noqa: PLC0415
    from perceptlab.align.soft_eval import format_table, soft_label_table  # noqa: PLC0415
    from perceptlab.analysis.soft_labels import soft_label_set  # noqa: PLC0415
    from perceptlab.cli._common import drive  # noqa: PLC0415

    trials, rows, classes = _relabel(args)
    avg = soft_label_set(rows, classes, "none")
    targets = {"soft: averaged relabelings": avg,
               "soft: omega-smoothed (uniform over all)": soft_label_set(rows, classes, "row", "all"),
               "soft: omega-smoothed (uniform over pair)": soft_label_set(rows, classes, "row", "pair")}
    if args.mixup_labels:
        mix = avg.copy()
        for c in classes:
            mix[f"p_{c}"] = 0.0
        for i, r in mix.iterrows():
            mix.loc[i, f"p_{r['class_a']}"] += 1 - r["lambda"]
            mix.loc[i, f"p_{r['class_b']}"] += r["lambda"]
        targets = {"soft: mixup labels (1 - lambda, lambda)": mix, **targets}
    stimuli = avg["stimulus"].tolist()
    images = _images(args, stimuli)
    recipe = FinetuneRecipe(epochs=args.epochs)
    result = drive(soft_label_table(rows, images, stimuli, classes, targets, avg, base=args.base,
                                    mnist=mnist_from_args(args), recipe=recipe,
                                    seeds=tuple(range(args.seeds)), test_fraction=args.test_fraction),
                   "fine-tuning")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    synthetic = is_synthetic(trials)
    head = ("SYNTHETIC data (simulated lambda-perceivers). " if synthetic else "") + \
        f"Base {args.base}, {args.epochs} epochs, {args.seeds} seed(s); test stimuli never trained on."
    md = head + "\n\n" + format_table(result["table"]) + "\n"
    (out / "soft_label_table.md").write_text(md, encoding="utf-8")
    (out / "soft_label_table.json").write_text(json.dumps({"synthetic": synthetic, **result}, indent=2, default=float)
                                               + "\n", encoding="utf-8")
    pd.DataFrame(result["rows"]).to_csv(out / "soft_label_runs.csv", index=False)
    print(md)
    print(f"wrote {out / 'soft_label_table.md'}, .json and soft_label_runs.csv")
    return 0


def _stimuli_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("trials", type=Path, help="trials: the runner's canonical CSV, or a jsPsych CSV/JSON of the export")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--design", type=Path, help="the design.json the trials were collected with")
    g.add_argument("--library", type=Path, help="or the library holding the stimuli (soft labels: any stimuli, "
                   "e.g. boundary stimuli relabeled by choice trials)")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("mixup", help="mixup stimuli, elicitation designs, analysis and soft labels (seeds/004)",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mixup_command", metavar="ACTION", required=True)

    p = sub.add_parser("make", help="mix pairs of MNIST digits at a grid of lambdas into a library")
    p.add_argument("library", type=Path, help="library folder (created when new or empty)")
    p.add_argument("--pairs", help="category pairs a-b, comma separated (default: all a < b)")
    p.add_argument("--per-pair", type=int, default=2, help="source digit pairs per category pair (2)")
    p.add_argument("--lambdas", help="mixing coefficients (share of class_b), default 0,0.1,...,1")
    p.add_argument("--digits", choices=("holdout", "train", "all"), default="holdout",
                   help="which MNIST digits to mix (default: the fixed hold-out)")
    p.add_argument("--models", default=",".join(BUILTIN_CLASSIFIERS), help="zoo models whose probabilities to store")
    p.add_argument("--no-probs", action="store_true", help="store no zoo probabilities (no torch needed)")
    p.add_argument("--seed", type=int, default=0)
    add_mnist_args(p)
    p.set_defaults(func=_make)

    p = sub.add_parser("design", help="write a perceptlab-design/1 folder with pick / slider / choice trials")
    p.add_argument("library", type=Path, help="library with mixup stimuli")
    p.add_argument("--out", type=Path, required=True, help="design folder (design.json + images/)")
    p.add_argument("--kinds", default="pick,slider", help="trial kinds, comma separated: pick, slider, choice")
    p.add_argument("--name", default="mixup")
    p.add_argument("--seed", type=int, default=0, help="order seed")
    p.set_defaults(func=_design)

    p = sub.add_parser("export", help="a jsPsych 8 experiment folder from a mixup design")
    p.add_argument("design", type=Path, help="design.json")
    p.add_argument("--out", type=Path, required=True, help="output folder (new, empty, or a previous mixup export)")
    p.add_argument("--image-px", type=int, default=168, help="image size on screen (168)")
    add_jspsych_save_args(p)
    p.set_defaults(func=_export)

    p = sub.add_parser("simulate", help="SYNTHETIC lambda-perceivers (per-pair bias, per-person noise) doing a design")
    p.add_argument("design", type=Path, help="design.json")
    p.add_argument("--out", type=Path, required=True, help="trials CSV to write (+ <stem>_truth.json)")
    p.add_argument("--participants", type=int, default=30)
    p.add_argument("--max-bias", type=float, default=0.2, help="per-pair bias of the 50/50 point ~ U(-B, B) (0.2)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_simulate)

    p = sub.add_parser("analyze", help="inferred vs generating lambda, logistic fits per pair, misalignment")
    _stimuli_args(p)
    p.add_argument("--out", type=Path, required=True, help="output folder (CSV, summary.json, PNG)")
    p.add_argument("--truth", type=Path, help="a simulation's _truth.json: report how well the fits recover it")
    p.set_defaults(func=_analyze)

    p = sub.add_parser("soft-labels", help="a soft-label training set from human relabelings")
    _stimuli_args(p)
    p.add_argument("--out", type=Path, required=True, help=".csv (table) or .npz (targets + images)")
    p.add_argument("--omega", choices=("none", "row", "person"), default="row",
                   help="smooth toward uniform by confidence: per trial (row), per person, or not (none)")
    p.add_argument("--uniform", choices=("all", "pair"), default="all", help="uniform over all classes or the pair")
    p.add_argument("--relabels", type=Path, metavar="CSV",
                   help="also write the relabelings as a trial table (participant, stimulus, response) for align")
    p.set_defaults(func=_soft_labels)

    p = sub.add_parser("soft-eval", help="fine-tune on hard vs soft labels, evaluate CE / ECE on held-out stimuli")
    _stimuli_args(p)
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--base", default="vgg", help="base zoo model (vgg)")
    p.add_argument("--epochs", type=int, default=16)
    p.add_argument("--seeds", type=int, default=3, help="repeats with different split / training seeds (3)")
    p.add_argument("--test-fraction", type=float, default=0.3)
    p.add_argument("--mixup-labels", action="store_true", help="also train on the generating labels (1 - lambda, lambda)")
    add_mnist_args(p)
    p.set_defaults(func=_soft_eval)
