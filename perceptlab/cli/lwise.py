"""L-WISE commands (seed 003): ``difficulty``, ``difficulty-analysis``, ``enhance`` and ``curriculum``
(build / simulate / analyze); ``perceptlab eval robust`` is measured by :func:`eval_robust`.

Parsers import no torch; the work is imported when a command runs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from perceptlab.cli._common import add_jspsych_save_args, add_mnist_args, mnist_from_args
from perceptlab.errors import PerceptLabError

GRADIENT_MODELS = ("vgg", "cornet")


def _floats(text: str, flag: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise PerceptLabError(f"{flag} {text!r}: not a comma list of numbers", "e.g. 3,2,1,0") from None


def _ids_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ids", help="stimulus ids, comma separated (default: every stimulus, or see --tag/--status)")
    p.add_argument("--tag", help="only stimuli with this tag")
    p.add_argument("--status", choices=["new", "accepted", "rejected"], help="only stimuli with this status")
    p.add_argument("--mode", help="only stimuli of this mode (e.g. mnist)")


def _select(library, args) -> list[str]:
    if args.ids:
        ids = [i.strip() for i in args.ids.split(",") if i.strip()]
        for i in ids:
            library.get(i)  # unknown ids raise, naming the library
        return ids
    return library.ids(status=args.status, mode=args.mode, tag=args.tag)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("difficulty", help="store the robust model's ground-truth logits (L-WISE difficulty) in a library")
    p.add_argument("library", metavar="LIB")
    _ids_args(p)
    p.add_argument("--model", default="robust", help="the robust classifier (default robust)")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=_difficulty)

    p = sub.add_parser("difficulty-analysis",
                       help="per-stimulus error rate vs robust difficulty (Spearman) from trials with true labels")
    p.add_argument("trials", metavar="TRIALS", nargs="+", help="trial file(s) or folder")
    p.add_argument("--library", required=True, metavar="LIB", help="the library with the stored difficulty")
    p.add_argument("--out", metavar="DIR", help="write difficulty.csv, difficulty.json and the figure here")
    p.set_defaults(func=_difficulty_analysis)

    p = sub.add_parser("enhance", help="L-WISE enhancement (or harder images): PGD on the true class's logit")
    p.add_argument("library", metavar="LIB")
    _ids_args(p)
    p.add_argument("--eps", type=float, default=2.0, help="radius of the ball, [-1, 1] pixel units (default 2)")
    p.add_argument("--norm", choices=["l2", "linf"], default="l2")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--step-size", type=float, help="default 2.5 ε / steps")
    p.add_argument("--harder", action="store_true", help="descend the true logit instead (harder images)")
    p.add_argument("--label", type=int, help="class to enhance (default: each stimulus's class_a)")
    p.add_argument("--model", default="robust")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=_enhance)

    p = sub.add_parser("enhance-table", help="true-class probability of hold-out digits under every zoo model, "
                                             "before/after enhancement; and grids at each ε")
    add_mnist_args(p)
    p.add_argument("--eps", default="0,1,2,4", help="ε values, comma separated (default 0,1,2,4)")
    p.add_argument("--norm", choices=["l2", "linf"], default="l2")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("-n", type=int, default=500, help="hold-out digits (default 500)")
    p.add_argument("--harder", action="store_true")
    p.add_argument("--grid", metavar="PNG", help="a grid of 20 digits, one column per ε")
    p.add_argument("--json", metavar="FILE")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=_enhance_table)

    p = sub.add_parser("curriculum", help="L-WISE learning experiments: build, simulate (SYNTHETIC), analyze")
    csub = p.add_subparsers(dest="action", required=True)
    b = csub.add_parser("build", help="curriculum and shuffled-control designs (+ jsPsych exports)")
    b.add_argument("library", metavar="LIB", help="library (created if missing)")
    b.add_argument("--out", required=True, metavar="DIR", help="writes curriculum/, control/ (design.json) and jspsych-*/")
    b.add_argument("--train-ids", help="labelled training stimuli, comma separated")
    b.add_argument("--test-ids", help="labelled test stimuli (shown unmodified)")
    b.add_argument("--from-holdout", metavar="N_TEST", type=int,
                   help="add hold-out MNIST digits to the library instead: the train ones and N_TEST test ones")
    add_mnist_args(b)
    b.add_argument("--eps", default="6,4,2,0", help="ε per train block, decreasing ([-1, 1] pixel units; default 6,4,2,0)")
    b.add_argument("--norm", choices=["l2", "linf"], default="l2")
    b.add_argument("--steps", type=int, default=10)
    b.add_argument("--per-block", type=int, default=20)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--name", default="lwise")
    b.add_argument("--no-jspsych", action="store_true", help="write the designs only")
    add_jspsych_save_args(b, "jspsych: ")
    b.add_argument("--device", default="auto")
    b.set_defaults(func=_curriculum_build)
    s = csub.add_parser("simulate", help="SYNTHETIC learners on the two designs of a build")
    s.add_argument("build", metavar="DIR", help="the --out folder of curriculum build")
    s.add_argument("--participants", type=int, default=20)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", required=True, metavar="CSV")
    s.set_defaults(func=_curriculum_simulate)
    a = csub.add_parser("analyze", help="learning curves and test accuracy by condition")
    a.add_argument("--trials", action="append", required=True, metavar="[CONDITION=]FILE",
                   help="trial rows; CONDITION=FILE per condition, or one file with a condition column")
    a.add_argument("--out", metavar="DIR", help="write learning.json and the figure here")
    a.set_defaults(func=_curriculum_analyze)


def _device(name: str):
    from perceptlab.engine.device import pick_device  # noqa: PLC0415

    return pick_device(name)


def _difficulty(args: argparse.Namespace) -> int:
    from perceptlab.data.library import StimulusLibrary  # noqa: PLC0415
    from perceptlab.engine.lwise import compute_difficulty  # noqa: PLC0415

    with StimulusLibrary.open(args.library) as lib:
        ids = _select(lib, args)
        got = compute_difficulty(lib, ids, model=args.model, device=_device(args.device))
    if len(got) < len(ids):
        print(f"{len(ids) - len(got)} stimuli without a class (no label or target pair) left out")
    if got:
        v = list(got.values())
        print(f"difficulty ({args.model} ground-truth logit) stored for {len(got)} stimuli: "
              f"min {min(v):.2f}, median {sorted(v)[len(v) // 2]:.2f}, max {max(v):.2f}")
    else:
        print("no stimuli selected")
    return 0


def _difficulty_analysis(args: argparse.Namespace) -> int:
    from perceptlab.analysis.difficulty import difficulty_summary, difficulty_table, format_difficulty  # noqa: PLC0415
    from perceptlab.data.library import StimulusLibrary  # noqa: PLC0415
    from perceptlab.data.trials import load_trials  # noqa: PLC0415

    trials = load_trials(args.trials if len(args.trials) > 1 else args.trials[0])
    synthetic = bool(trials.synthetic)
    with StimulusLibrary.open(args.library) as lib:
        table = difficulty_table(trials.df, lib)
    summary = difficulty_summary(table)
    print(format_difficulty(summary, synthetic))
    if args.out:
        from perceptlab.analysis.lwise_figures import difficulty_figure  # noqa: PLC0415

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        table.to_csv(out / "difficulty.csv", index=False)
        (out / "difficulty.json").write_text(json.dumps({**summary, "synthetic": synthetic}, indent=2))
        for f in difficulty_figure(table, summary, out, synthetic):
            print(f"wrote {f}")
    return 0


def _enhance(args: argparse.Namespace) -> int:
    from perceptlab.data.library import StimulusLibrary  # noqa: PLC0415
    from perceptlab.engine.lwise import difficulty_of, enhance_library  # noqa: PLC0415

    with StimulusLibrary.open(args.library) as lib:
        ids = _select(lib, args)
        new = enhance_library(lib, ids, args.eps, args.norm, args.steps, args.step_size, args.harder,
                              model=args.model, device=_device(args.device), label=args.label)
        for src, i in zip(ids, new):
            rec = lib.get(i)
            print(f"{src} -> {i}: class {rec.class_a}, {args.model} p = {rec.p_a:.3f}, logit {difficulty_of(rec):.2f}")
    print(f"{len(new)} {'harder' if args.harder else 'enhanced'} stimuli added ({args.norm} ε = {args.eps:g}, "
          f"{args.steps} steps)")
    return 0


def _holdout_digits(args, n: int):
    import numpy as np  # noqa: PLC0415

    held = mnist_from_args(args).held_out()
    if n > len(held):
        raise PerceptLabError(f"-n {n}: the hold-out has {len(held)} digits")
    # an even spread over the hold-out (its sources alternate blocks)
    pick = np.linspace(0, len(held) - 1, n).round().astype(int)
    return held.images[pick], held.labels[pick]


def _enhance_table(args: argparse.Namespace) -> int:
    from perceptlab.engine.lwise import enhance, enhancement_table  # noqa: PLC0415
    from perceptlab.engine.registry import default_registry  # noqa: PLC0415

    eps = _floats(args.eps, "--eps")
    device = _device(args.device)
    images, labels = _holdout_digits(args, args.n)
    table = enhancement_table(images, labels, eps, args.norm, args.steps, device=device, harder=args.harder)
    names = table["zoo"]
    print(f"mean true-class probability of {table['n']} hold-out digits, {'harder' if args.harder else 'enhanced'} "
          f"by {table['model']} ({args.norm}, {args.steps} steps, ε in [-1, 1] pixel units)")
    print("| ε | " + " | ".join(names) + " |")
    print("| --- |" + " --- |" * len(names))
    for row in table["rows"]:
        print(f"| {row['eps']:g} | " + " | ".join(f"{row['probs'][n]:.3f}" for n in names) + " |")
    if args.grid:
        from perceptlab.analysis.lwise_figures import image_grid  # noqa: PLC0415

        import numpy as np  # noqa: PLC0415

        net = default_registry().load(table["model"], device, kind="classifier")
        sel = np.linspace(0, len(images) - 1, min(20, len(images))).round().astype(int)  # every class
        cols = [enhance(net, images[sel], labels[sel], e, args.norm, args.steps, harder=args.harder, device=device)
                for e in eps]
        print(f"wrote {image_grid(cols, [False] * len(cols), args.grid)} (columns: ε = {', '.join(map(str, eps))})")
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=2))
    return 0


def eval_robust(args: argparse.Namespace, reg, folder: Path, device) -> dict:
    """``perceptlab eval robust``: clean and PGD accuracy on the hold-out; ``--grid``: input gradients of
    the true-class logit of 20 hold-out digits, robust vs the standard zoo models."""
    import numpy as np  # noqa: PLC0415

    from perceptlab.engine.robust import ROBUST_EPS, ROBUST_EVAL_STEPS, ROBUST_NORM, input_gradients, robust_accuracy  # noqa: PLC0415

    data = mnist_from_args(args)
    held = data.held_out()
    if getattr(args, "attack_n", None):
        held = held.subset(np.arange(len(held)) < args.attack_n)
    model = reg.load("robust", device, kind="classifier")
    x, y = held.tensors()
    clean, robust = robust_accuracy(model, x.to(device), y.to(device), ROBUST_EPS, ROBUST_NORM, ROBUST_EVAL_STEPS)
    result = {"clean_accuracy": clean, "robust_accuracy": robust, "eps": ROBUST_EPS, "norm": ROBUST_NORM,
              "pgd_steps": ROBUST_EVAL_STEPS, "attack": "PGD, cross-entropy ascent, random start, step 2.5 ε / steps",
              "eps_units": "[-1, 1] pixel range", "n": len(held), "data": data.source}
    print(f"robust: clean accuracy {clean:.4f}, robust accuracy {robust:.4f} under PGD-{ROBUST_EVAL_STEPS} "
          f"({ROBUST_NORM}, ε = {ROBUST_EPS} in [-1, 1] units) on {len(held):,} hold-out digits")
    for name in [n for n in GRADIENT_MODELS if n in reg.names("classifier")]:
        other = reg.load(name, device, kind="classifier")
        c, r = robust_accuracy(other, x.to(device), y.to(device), ROBUST_EPS, ROBUST_NORM, ROBUST_EVAL_STEPS)
        result[f"{name}_reference"] = {"clean_accuracy": c, "robust_accuracy": r}
        print(f"{name} (standard training, same attack): clean {c:.4f}, robust {r:.4f}")
    if args.grid:
        from perceptlab.analysis.lwise_figures import image_grid  # noqa: PLC0415

        pick = np.linspace(0, len(held) - 1, 20).round().astype(int)
        xs, ys = x[pick].to(device), y[pick].to(device)
        names = [n for n in GRADIENT_MODELS if n in reg.names("classifier")]
        grads = [input_gradients(model, xs, ys).cpu().numpy()]
        grads += [input_gradients(reg.load(n, device, kind="classifier"), xs, ys).cpu().numpy() for n in names]
        path = image_grid([xs.cpu().numpy(), *grads], [False, *[True] * len(grads)], args.grid)
        print(f"wrote {path} (columns: digit, robust, {', '.join(names)}; red +, blue -)")
    return result


def _curriculum_build(args: argparse.Namespace) -> int:
    from perceptlab.data.library import Stimulus, StimulusLibrary  # noqa: PLC0415
    from perceptlab.experiment.curriculum import CurriculumSpec, build_curriculum, write_design_folder  # noqa: PLC0415

    spec = CurriculumSpec(eps=_floats(args.eps, "--eps"), norm=args.norm, steps=args.steps,
                          per_block=args.per_block, seed=args.seed, name=args.name).check()
    if not args.no_jspsych:
        from perceptlab.data.jspsych_kit import check_save_hook  # noqa: PLC0415

        check_save_hook(args.save_hook, args.save_url)  # before the (slow) build
    device = _device(args.device)
    out = Path(args.out)
    with StimulusLibrary.open_or_create(args.library) as lib:
        if args.from_holdout:
            from perceptlab.engine.lwise import to_uint8  # noqa: PLC0415

            n_train = len(spec.eps) * spec.per_block
            images, labels = _holdout_digits(args, n_train + args.from_holdout)
            recs = [Stimulus(mode="mnist", class_a=int(c), note="MNIST hold-out digit", tags=["lwise:holdout"])
                    for c in labels]
            ids = lib.add(recs, to_uint8(images))
            train_ids, test_ids = ids[:n_train], ids[n_train:]
        else:
            if not (args.train_ids and args.test_ids):
                raise PerceptLabError("no train/test stimuli given", "pass --train-ids and --test-ids, or --from-holdout N")
            train_ids = [i.strip() for i in args.train_ids.split(",") if i.strip()]
            test_ids = [i.strip() for i in args.test_ids.split(",") if i.strip()]
        cur, ctl = build_curriculum(lib, train_ids, test_ids, spec, device=device)
        for d, cond in ((cur, "curriculum"), (ctl, "control")):
            path = write_design_folder(d, lib, out / cond)
            print(f"{cond}: {path} ({len(d.trials)} trials)")
            if not args.no_jspsych:
                from perceptlab.data.export_curriculum import export_curriculum_jspsych  # noqa: PLC0415

                index = export_curriculum_jspsych(d, lib, out / f"jspsych-{cond}", jspsych_from=args.jspsych_from,
                                                  save_hook=args.save_hook, save_url=args.save_url,
                                                  download=not args.no_download)
                print(f"  jsPsych: {index}")
    return 0


def _build_designs(folder: Path):
    from perceptlab.experiment.design import load_design  # noqa: PLC0415

    designs = []
    for cond in ("curriculum", "control"):
        path = folder / cond / "design.json"
        if not path.is_file():
            raise PerceptLabError(f"{path} is missing", "give the --out folder of `perceptlab curriculum build`")
        designs.append(load_design(path))
    return designs


def _curriculum_simulate(args: argparse.Namespace) -> int:
    from perceptlab.analysis.curriculum import (  # noqa: PLC0415
        LEARNER_NOTE,
        LearnerSettings,
        format_learning,
        learning_summary,
        learning_table,
        simulate_learners,
    )
    from perceptlab.data.library import StimulusLibrary  # noqa: PLC0415
    from perceptlab.data.difficulty import difficulty_of  # noqa: PLC0415  (torch-free)

    designs = _build_designs(Path(args.build))
    lib_path = designs[0].library
    if not lib_path:
        raise PerceptLabError(f"{args.build}: the designs name no library", "rebuild them with perceptlab curriculum build")
    with StimulusLibrary.open(lib_path) as lib:
        logits = {t.stimulus: difficulty_of(lib.get(t.stimulus)) for d in designs for t in d.trials}
    logits = {k: v for k, v in logits.items() if v is not None}
    rows = simulate_learners(designs, logits, LearnerSettings(participants=args.participants, seed=args.seed))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows.to_csv(out, index=False)
    print(LEARNER_NOTE)
    print(f"wrote {out} ({len(rows)} rows)")
    print(format_learning(learning_summary(learning_table(rows))))
    return 0


def _curriculum_analyze(args: argparse.Namespace) -> int:
    from perceptlab.analysis.curriculum import format_learning, learning_summary, load_learning  # noqa: PLC0415

    table = load_learning(args.trials)
    synthetic = bool(table.attrs.get("synthetic"))
    summary = learning_summary(table)
    print(format_learning(summary, synthetic))
    if args.out:
        from perceptlab.analysis.lwise_figures import learning_figure  # noqa: PLC0415

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "learning.json").write_text(json.dumps({**summary, "synthetic": synthetic}, indent=2))
        for f in learning_figure(summary, out, synthetic):
            print(f"wrote {f}")
    return 0
