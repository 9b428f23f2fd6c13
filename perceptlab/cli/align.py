"""``perceptlab align``, ``perceptlab models-user`` and ``perceptlab bench-align``.

- ``align``: fine-tune a GroupNet and/or IndivNets on a trial table (BAM §4), write ``metrics.json``
  and the models into ``--out`` and (unless ``--no-register``) into the user model folder, where they
  join the registry.
- ``models-user list | rename OLD NEW | delete NAME``: the fine-tuned models of the user folder.
- ``bench-align``: the whole pipeline on simulated observers, with timings (SYNTHETIC data).

Parsers import no torch; the work is imported when a command runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from perceptlab.cli._common import registry_from_args, require_at_least_one
from perceptlab.cli._jobs import add_cluster_args, format_eta, open_cluster_from_args, wants_cluster
from perceptlab.errors import PerceptLabError

TRAINABLE_CHOICES = ("auto", "all", "head", "readout", "calibration")


def register(sub: argparse._SubParsersAction) -> None:
    _register_align(sub)
    _register_models_user(sub)
    _register_bench(sub)


# --------------------------------------------------------------------------- shared options


def _recipe_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("fine-tuning recipe (defaults: the paper's)")
    g.add_argument(
        "--recipe", metavar="JSON", help="a recipe file (FinetuneRecipe JSON); the options below override it"
    )
    g.add_argument("--epochs", type=int, help="epochs (default 16)")
    g.add_argument("--lr", type=float, help="AdamW learning rate (default 1e-3)")
    g.add_argument("--batch-size", type=int, help="batch size (default 128)")
    g.add_argument("--weight-decay", type=float, help="AdamW weight decay (default 0.01)")
    g.add_argument(
        "--train-layers",
        choices=TRAINABLE_CHOICES,
        help="GroupNet: which layers train: all (paper), head (frozen trunk, cached features: fast on a CPU), "
        "readout (last layer), calibration (per-class logit offset + scale); auto = all on a GPU, "
        "head on a CPU (default auto)",
    )
    g.add_argument(
        "--indiv-train-layers",
        choices=TRAINABLE_CHOICES,
        help="IndivNets: the same choices; auto = calibration (robust with a few hundred trials; "
        "'all' = the paper's full fine-tuning)",
    )
    g.add_argument(
        "--soft-labels",
        action="store_true",
        help="targets = per-stimulus human choice distributions instead of single responses",
    )
    g.add_argument(
        "--soft-confidence",
        type=float,
        metavar="W",
        help="soft labels: W * distribution + (1 - W) * uniform (default 1)",
    )
    g.add_argument("--select-by", choices=("val_loss", "val_accuracy"), help="best-epoch criterion (default val_loss)")
    g.add_argument("--seed", type=int, help="random seed of the fine-tuning (default 0)")
    g.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda")
    g.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")


def _recipe_from_args(args: argparse.Namespace):
    from perceptlab.align.finetune import FinetuneRecipe  # noqa: PLC0415

    recipe = FinetuneRecipe.from_json(args.recipe) if getattr(args, "recipe", None) else FinetuneRecipe()
    changes = {}
    for opt, fld in (
        ("epochs", "epochs"),
        ("lr", "lr"),
        ("batch_size", "batch_size"),
        ("weight_decay", "weight_decay"),
        ("train_layers", "trainable"),
        ("indiv_train_layers", "indiv_trainable"),
        ("soft_confidence", "soft_confidence"),
        ("select_by", "select_by"),
        ("seed", "seed"),
    ):
        v = getattr(args, opt, None)
        if v is not None:
            changes[fld] = v
    if getattr(args, "soft_labels", False):
        changes["soft_labels"] = True
    return recipe.replace(**changes).validate()


def _setup_torch(args: argparse.Namespace):
    import torch  # noqa: PLC0415

    from perceptlab.engine.device import describe, pick_device  # noqa: PLC0415

    if getattr(args, "threads", None):
        require_at_least_one("--threads", args.threads, "use at least 1 thread")
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    print(f"device: {describe(device)}")
    return device


class _Progress:
    """A tqdm bar per model (steps), epoch lines, feature-extraction and evaluation notes."""

    def __init__(self) -> None:
        self.bar = None
        self.model = None

    def __call__(self, rec: dict) -> None:
        from tqdm import tqdm  # noqa: PLC0415

        kind = rec.get("kind")
        if kind == "step":
            label = (
                rec.get("model")
                or (f"manipulation ({rec['arm']})" if "arm" in rec else None)
                or rec.get("stage")
                or "work"
            )
            if "round" in rec:  # a sampler step: one bar per batch
                label = f"{label} batch {rec.get('batch')}/{rec.get('batches')}"
            if self.bar is None or label != self.model or rec["step"] < self.bar.n:
                self.close()
                self.model = label
                self.bar = tqdm(total=rec["total"], desc=label, dynamic_ncols=True, leave=False)
            self.bar.update(rec["step"] - self.bar.n)
            post = {k: rec[k] for k in ("epoch",) if k in rec}
            if isinstance(rec.get("loss"), float):
                post["loss"] = f"{rec['loss']:.4f}"
            self.bar.set_postfix(post, refresh=False)
        elif kind == "epoch":
            who = rec.get("model") or rec.get("stage") or ""
            line = (
                f"{who} epoch {rec['epoch']}/{rec['epochs']}: "
                + (f"train loss {rec['train_loss']:.4f}, " if rec.get("train_loss") is not None else "start: ")
                + f"val loss {rec['val_loss']:.4f}, val accuracy {rec['val_accuracy']:.3f} "
                + f"(best epoch {rec['best_epoch']})"
            )
            self.write(line)
        elif kind == "features" and rec["done"] == rec["total"]:
            self.write(f"features cached: {rec['total']} images ({rec.get('what', '')})")
        elif kind == "saved":
            self.close()
            self.write(f"saved {rec['model']}: " + ", ".join(rec["paths"]))
        elif kind == "note":
            self.write(f"note: {rec['message']}")
        elif kind == "arm":
            self.close()
            self.write(
                f"manipulation arm {rec['arm']}: {rec['stored']} stored, {rec['accepted']} of {rec['generated']} "
                f"passed the filter ({rec['seconds']:.1f} s)"
            )
        elif kind == "job":  # a fan-out on a cluster: one bar over its tasks
            from tqdm import tqdm  # noqa: PLC0415

            if self.bar is None or self.model != "job":
                self.close()
                self.model = "job"
                self.bar = tqdm(total=rec["total"], desc=f"{rec.get('stage', 'job')} tasks", dynamic_ncols=True)
            self.bar.set_postfix(running=rec["running"], failed=rec["failed"], eta=format_eta(rec["eta_s"]),
                                 refresh=False)  # fmt: skip
            self.bar.update(rec["done"] - self.bar.n)
        elif kind == "stage":
            self.write(
                f"[{rec['stage']}] " + ", ".join(f"{k}={v}" for k, v in rec.items() if k not in ("kind", "stage"))
            )

    def write(self, text: str) -> None:
        from tqdm import tqdm  # noqa: PLC0415

        if self.bar is not None:
            self.bar.write(text)
        else:
            tqdm.write(text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _drive(gen, progress: _Progress):
    try:
        while True:
            progress(next(gen))
    except StopIteration as stop:
        return stop.value
    finally:
        progress.close()
        gen.close()


# --------------------------------------------------------------------------- align


def _register_align(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "align",
        help="fine-tune group (GroupNet) and individual (IndivNet) models on human choices",
        description="Fine-tune a zoo model on a trial table: GroupNet = base + MNIST + trials (1:1 per batch); "
        "IndivNet = GroupNet + one participant's trials + all trials + MNIST (2:1:1). Trials are split by "
        "stimulus into train/validation/test (no stimulus in two parts); the best validation epoch is kept; "
        "the models are evaluated on the test part. Writes metrics.json and the models into --out and "
        "registers them in the user model folder (see 'perceptlab models-user'). "
        "Simulated benchmark: 'perceptlab bench-align'.",
    )
    p.add_argument(
        "--trials",
        required=True,
        metavar="CSV",
        help="trial table (CSV/TSV/JSON; variMNIST and jsPsych layouts load as they are)",
    )
    p.add_argument("--mapping", metavar="JSON", help="column mapping for other layouts")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--library", metavar="DIR", help="stimulus library holding the images of the trials")
    src.add_argument("--images", metavar="DIR", help="plain folder of the stimulus images")
    p.add_argument("--base", required=True, help="start model: a zoo model (group/both) or a GroupNet (individual)")
    p.add_argument(
        "--level",
        choices=("group", "individual", "both"),
        default="group",
        help="group: one GroupNet; individual: IndivNets from --base; both: GroupNet then IndivNets (default group)",
    )
    p.add_argument(
        "--participants",
        nargs="+",
        metavar="ID",
        help="individual/both: whose IndivNets (default everybody); group: whose trials (default all)",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="folder for metrics.json and copies of the models")
    p.add_argument(
        "--name", help="name of the GroupNet (default <base>-group); IndivNets are <root>-indiv-<participant>"
    )
    p.add_argument("--no-register", action="store_true", help="do not add the models to the user model folder")
    p.add_argument(
        "--models-dir",
        metavar="DIR",
        help="user model folder (default $PERCEPTLAB_MODELS or ~/.local/share/perceptlab/models)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace models of the same name")
    p.add_argument("--no-eval", action="store_true", help="skip the evaluation on the test part")
    p.add_argument("--val-fraction", type=float, default=0.1, help="share of stimuli for validation (default 0.1)")
    p.add_argument(
        "--test-fraction", type=float, default=0.2, help="share of stimuli held out for testing (default 0.2)"
    )
    p.add_argument("--split-seed", type=int, default=0, help="seed of the stimulus split (default 0)")
    p.add_argument(
        "--use-is-train", action="store_true", help="use the table's is_train column as the train/held-out split"
    )
    p.add_argument("--include-catch", action="store_true", help="keep catch (attention-check) trials")
    p.add_argument(
        "--skip-unmatched", action="store_true", help="leave out trials whose stimulus has no image (counted)"
    )
    p.add_argument("--mnist", metavar="DIR", help="MNIST folder (IDX/.npz) to mix in; default: the built-in subset")
    p.add_argument("--soft-targets", metavar="FILE",
                   help="a soft-label set (CSV/npz of 'perceptlab mixup soft-labels'): train toward its per-stimulus "
                   "targets (implies --soft-labels)")
    _recipe_args(p)
    add_cluster_args(p)  # --workers / --scheduler: the IndivNets as parallel tasks
    p.set_defaults(func=run_align)


def run_align(args: argparse.Namespace) -> int:
    trials_path = Path(args.trials)
    if not trials_path.is_file():
        raise PerceptLabError(f"trial file {trials_path} does not exist", fix="check the --trials path")
    if not args.library and not args.images:
        raise PerceptLabError("no images for the trials", fix="pass --library DIR or --images DIR")
    recipe = _recipe_from_args(args)
    device = _setup_torch(args)

    from perceptlab.align.datasets import build_align_data  # noqa: PLC0415
    from perceptlab.align.evaluate import format_report  # noqa: PLC0415
    from perceptlab.align.pipeline import AlignJob, run_alignment  # noqa: PLC0415
    from perceptlab.align.split import SplitSettings  # noqa: PLC0415
    from perceptlab.data.mnist import load_mnist  # noqa: PLC0415
    from perceptlab.data.trials import load_trials  # noqa: PLC0415

    registry = registry_from_args(args)
    registry.entry(args.base, kind="classifier")  # unknown base: one-line error before any loading
    table = load_trials(trials_path, mapping=args.mapping)
    print(table.report.summary())
    known = set(table.df["participant"].astype(str))
    for pid in args.participants or []:
        if pid not in known:
            shown = ", ".join(sorted(known)[:8]) + (", …" if len(known) > 8 else "")
            raise PerceptLabError(f"participant {pid!r} is not in {trials_path}", fix=f"choose from: {shown}")
    if table.synthetic:
        print("note: SYNTHETIC trials (simulated observers)")
    split = SplitSettings(args.val_fraction, args.test_fraction, args.split_seed, args.use_is_train)
    data = build_align_data(
        table,
        library=args.library,
        images_dir=args.images,
        split=split,
        include_catch=args.include_catch,
        skip_unmatched=args.skip_unmatched,
    )
    for pid in args.participants or []:
        data.check_participant(pid)  # still there after catch / unmatched trials were left out
    if getattr(args, "soft_targets", None):
        from perceptlab.analysis.soft_labels import attach_soft_targets  # noqa: PLC0415

        data = attach_soft_targets(data, args.soft_targets)
        recipe = recipe.replace(soft_labels=True)
        print(f"soft targets: {args.soft_targets} ({len(data.stimuli)} stimuli)")
    s = data.summary()["split"]
    print(
        f"split by stimulus: train {s['train']['trials']} trials / {s['train']['stimuli']} stimuli, "
        f"validation {s['val']['trials']} / {s['val']['stimuli']}, test {s['test']['trials']} / {s['test']['stimuli']}"
    )
    for note in data.notes:
        print(f"note: {note}")
    mnist = load_mnist(args.mnist)
    job = AlignJob(
        base=args.base,
        level=args.level,
        participants=args.participants,
        recipe=recipe,
        out_dir=Path(args.out),
        register=not args.no_register,
        models_dir=Path(args.models_dir) if args.models_dir else None,
        group_name=args.name,
        overwrite=args.overwrite,
        evaluate=not args.no_eval,
    )
    print(f"recipe: {json.dumps(recipe.to_dict())}")
    cluster = open_cluster_from_args(args) if wants_cluster(args) else None
    try:
        metrics = _drive(
            run_alignment(job, data, mnist, registry=registry, device=device, cluster=cluster,
                          threads_per_task=args.threads_per_task, retries=args.retries),
            _Progress(),
        )  # fmt: skip
    finally:
        if cluster is not None:
            cluster.close()
    if metrics.get("evaluation"):
        print(format_report(metrics["evaluation"]))
    print(f"wrote {Path(args.out) / 'metrics.json'} ({metrics['seconds']['total']:.1f} s)")
    return 0


# --------------------------------------------------------------------------- models-user


def _register_models_user(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "models-user",
        help="list, rename or delete fine-tuned (user) models",
        description="Manage the models of the user model folder ($PERCEPTLAB_MODELS, default "
        "~/.local/share/perceptlab/models): 'list', 'rename OLD NEW' (both files and the name in the JSON; "
        "never overwrites), 'delete NAME'. Built-in models cannot be renamed or deleted.",
    )
    p.add_argument("action", choices=("list", "rename", "delete"))
    p.add_argument("names", nargs="*", metavar="NAME", help="rename: OLD NEW; delete: NAME")
    p.add_argument("--models-dir", metavar="DIR", help="user model folder (default $PERCEPTLAB_MODELS)")
    p.add_argument("--json", action="store_true", help="list: print JSON")
    p.set_defaults(func=run_models_user)


def run_models_user(args: argparse.Namespace) -> int:
    from perceptlab.align.store import delete_model, list_models, models_folder, rename_model  # noqa: PLC0415

    folder = models_folder(args.models_dir)
    want = {"list": 0, "rename": 2, "delete": 1}[args.action]
    if len(args.names) != want:
        usage = {
            "list": "models-user list",
            "rename": "models-user rename OLD NEW",
            "delete": "models-user delete NAME",
        }
        raise PerceptLabError(
            f"'{args.action}' takes {want} name(s), got {len(args.names)}",
            fix=f"usage: perceptlab {usage[args.action]}",
        )
    if args.action == "list":
        models = list_models(folder)
        if args.json:
            print(json.dumps([m.to_dict() for m in models], indent=2))
            return 0
        if not models:
            print(f"no user models in {folder}")
            return 0
        print(f"user models in {folder}:")
        for m in models:
            if m.level == "individual":
                who = f"participant {','.join(m.participants)}"
            elif m.participants:
                who = f"{len(m.participants)} participants"
            else:
                who = ""
            acc = m.metrics.get("val_accuracy")
            acc_text = f"  val accuracy {acc:.3f}" if isinstance(acc, float) else ""
            print(f"  {m.name:28s} {m.level or '-':10s} base {m.base or '-':16s} {who}{acc_text}")
        return 0
    if args.action == "rename":
        path = rename_model(args.names[0], args.names[1], folder)
        print(f"renamed {args.names[0]} -> {args.names[1]} ({path})")
        return 0
    removed = delete_model(args.names[0], folder)
    print(f"deleted {args.names[0]} ({', '.join(str(p) for p in removed)})")
    return 0


# --------------------------------------------------------------------------- bench-align


def _register_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench-align",
        help="alignment pipeline on SIMULATED observers: accuracies, Spearman, manipulation, timings",
        description="Simulate observers answering a stimulus library through an observer zoo model, fine-tune a "
        "GroupNet and a few IndivNets, evaluate, try manipulation between two simulated participants, and "
        "print the numbers and timings (GroupNet on the whole table, IndivNet on one participant). "
        "Without --library the stimuli are mixup stand-ins made from MNIST digits. SYNTHETIC data.",
    )
    p.add_argument("--library", metavar="DIR", help="stimulus library (default: mixup stand-ins)")
    p.add_argument(
        "--observer", default="cornet", help="zoo model the simulated observers answer through (default cornet)"
    )
    p.add_argument("--base", default="vgg", help="zoo model to fine-tune (default vgg)")
    p.add_argument("--sim-participants", type=int, default=40, help="simulated participants (default 40)")
    p.add_argument("--trials-per-participant", type=int, default=500, help="default 500 (40 x 500 = 20,000 trials)")
    p.add_argument("--clusters", type=int, default=4, help="observer clusters (default 4)")
    p.add_argument(
        "--individuals", type=int, help="IndivNets to fine-tune, for random participants (default: everybody)"
    )
    p.add_argument("--no-manipulation", action="store_true", help="skip the manipulation step (it needs the prior)")
    p.add_argument("--per-pair", type=int, default=8, help="manipulation stimuli per pair and arm (default 8)")
    p.add_argument("--manipulation-pairs", type=int, default=3, help="class pairs for manipulation (default 3)")
    p.add_argument(
        "--preset", default="fast", help="sampler preset for manipulation (paper, fast, draft; default fast)"
    )
    p.add_argument("--work-dir", metavar="DIR", help="keep the models and the manipulation library here")
    p.add_argument("--out", metavar="JSON", help="also write the report to this file")
    p.add_argument("--sim-seed", type=int, default=0, help="seed of the simulation (default 0)")
    _recipe_args(p)
    p.set_defaults(func=run_bench)


def run_bench(args: argparse.Namespace) -> int:
    recipe = _recipe_from_args(args)
    device = _setup_torch(args)
    from perceptlab.align.evaluate import format_report  # noqa: PLC0415
    from perceptlab.align.experiment import ExperimentSettings, simulated_experiment  # noqa: PLC0415
    from perceptlab.align.manipulate import format_scores  # noqa: PLC0415

    settings = ExperimentSettings(
        observer_model=args.observer,
        base=args.base,
        participants=args.sim_participants,
        trials_per_participant=args.trials_per_participant,
        clusters=args.clusters,
        individuals=args.individuals,
        seed=args.sim_seed,
        manipulation=not args.no_manipulation,
        manipulation_pairs=args.manipulation_pairs,
        per_pair=args.per_pair,
        sampler_preset=args.preset,
    )
    print("SYNTHETIC: simulated observers, not human data")
    report = _drive(
        simulated_experiment(args.library, settings, recipe=recipe, work_dir=args.work_dir, device=device), _Progress()
    )
    print(format_report(report["evaluation"]))
    t = report["timing"]
    print(
        f"timing: GroupNet {t['group_seconds']:.1f} s on {t['group_trials']} training trials "
        f"({t['group_table_trials']} in the table; features {t['group_feature_seconds']:.1f} s), "
        f"IndivNet {t['indiv_seconds_cold']:.1f} s cold / {t['indiv_seconds_mean']:.1f} s with the session cache "
        f"({t['indiv_trials_per_participant']} trials per participant); layers trained: GroupNet {t['trainable']}, "
        f"IndivNet {t['indiv_trainable']}; "
        f"{t['torch_threads']} threads on {t['device']}"
    )
    a = report["acceptance"]
    if a.get("nontrivial_participants"):
        print(
            f"participants with non-trivial simulated bias: {a['nontrivial_participants']}; IndivNet beats GroupNet "
            f"on own test trials for {a['indiv_beats_group_share_nontrivial']:.0%} of them "
            f"({a['indiv_beats_group_share_nontrivial_by_nll']:.0%} by log-likelihood); ceiling: the simulated "
            f"people's true choice rules beat the true group rule on the same trials for "
            f"{a['oracle_beats_group_share_nontrivial']:.0%}"
        )
    m = report["manipulation"]
    if "scores" in m:
        print(f"manipulation between {m['p1']} and {m['p2']} on pairs {m['pairs']}:")
        print(format_scores(m["scores"]))
        for arm, e in m.get("expected", {}).items():
            print(
                f"  {arm:5s} expected success under the simulated people's true choice rules {e['success']:.3f} "
                f"(reverse {e['reverse']:.3f}, n={e['n']})"
            )
    else:
        print(f"manipulation skipped: {m['skipped']}")
    print("acceptance: " + json.dumps(report["acceptance"]))
    if args.out:
        from perceptlab.engine.weights import write_json  # noqa: PLC0415

        write_json(Path(args.out), json.loads(json.dumps(report, default=str)))
        print(f"wrote {args.out}")
    sys.stdout.flush()
    return 0
