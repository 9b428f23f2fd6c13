"""``perceptlab library``: create, inspect, curate and export stimulus libraries headless."""

from __future__ import annotations

import argparse
from pathlib import Path

from perceptlab.cli._common import add_jspsych_save_args, report_jspsych_export
from perceptlab.data.export import export_csv, export_jspsych
from perceptlab.data.jspsych_kit import LAYOUTS
from perceptlab.data.library import STATUSES, StimulusLibrary
from perceptlab.errors import PerceptLabError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``library`` command and its subcommands."""
    parser = subparsers.add_parser(
        "library",
        help="create, inspect, curate and export a stimulus library",
        description="Work with a stimulus library folder (library.sqlite + images/ + manifest.csv).",
    )
    sub = parser.add_subparsers(dest="library_command", metavar="ACTION", required=True)

    p = sub.add_parser("create", help="create an empty library in a new or empty folder")
    p.add_argument("dir", type=Path, help="library folder")
    p.set_defaults(func=_create)

    p = sub.add_parser("info", help="counts by status, mode and target pair")
    p.add_argument("dir", type=Path, help="library folder")
    p.set_defaults(func=_info)

    p = sub.add_parser("export", help="export stimuli as CSV + PNGs or as a jsPsych experiment")
    p.add_argument("dir", type=Path, help="library folder")
    p.add_argument("--format", choices=("csv", "jspsych"), required=True, help="what to write")
    p.add_argument("--out", type=Path, required=True, help="output folder (new, empty, or a previous export)")
    p.add_argument("--status", choices=STATUSES, help="only stimuli with this curation status")
    p.add_argument("--fixation-ms", type=int, default=300, help="jspsych: fixation cross duration (300)")
    p.add_argument("--stimulus-ms", type=int, default=200, help="jspsych: image duration (200)")
    p.add_argument("--layout", choices=LAYOUTS, default="choice-screen",
                   help="jspsych: choice-screen (default: fixation, image alone, then a choice screen with "
                   "buttons and number keys) or buttons-with-image (buttons shown with the image)")
    p.add_argument("--catch-rate", type=float, default=0.0,
                   help="jspsych: share of catch trials among all trials (real MNIST digits, known labels), 0 up to 1; "
                   "0.1 = one trial in ten (default 0)")
    p.add_argument("--catch-seed", type=int, default=0, help="jspsych: seed choosing the catch digits (0)")
    add_jspsych_save_args(p, "jspsych: ")
    p.set_defaults(func=_export)

    p = sub.add_parser("set-status", help="set the curation status of stimuli")
    p.add_argument("dir", type=Path, help="library folder")
    p.add_argument("ids", nargs="+", metavar="ID", help="stimulus ids, e.g. s000001")
    p.add_argument("--status", choices=STATUSES, required=True, help="new curation status")
    p.set_defaults(func=_set_status)

    p = sub.add_parser("tag", help="add or remove tags on stimuli")
    p.add_argument("dir", type=Path, help="library folder")
    p.add_argument("ids", nargs="+", metavar="ID", help="stimulus ids, e.g. s000001")
    p.add_argument("--add", action="append", default=[], metavar="TAG", help="tag to add (repeatable)")
    p.add_argument("--remove", action="append", default=[], metavar="TAG", help="tag to remove (repeatable)")
    p.set_defaults(func=_tag)

    p = sub.add_parser("sheet", help="a PNG contact sheet of stimuli, captioned with their target pairs")
    p.add_argument("dir", type=Path, help="library folder")
    p.add_argument("--out", type=Path, required=True, help="PNG file to write")
    p.add_argument("--status", choices=STATUSES, help="only stimuli with this curation status")
    verdict = p.add_mutually_exclusive_group()
    verdict.add_argument("--passed", dest="passed", action="store_const", const=True, help="only filter passes")
    verdict.add_argument("--rejected", dest="passed", action="store_const", const=False, help="only filter rejects")
    p.add_argument("--mode", choices=("uncertainty", "controversial", "manipulation"), help="only this mode")
    p.add_argument("--tag", help="only stimuli with this tag")
    p.add_argument("--max", type=int, default=100, help="at most this many stimuli, in library order (100)")
    p.add_argument("--cols", type=int, default=10, help="images per row (10)")
    p.add_argument("--scale", type=int, default=2, help="pixels per image pixel (2)")
    p.set_defaults(func=_sheet)

    p = sub.add_parser(
        "merge",
        help="merge libraries into one, keeping provenance and curation, de-duplicating repeats",
        description="Copy the stimuli of libraries A B ... into --out (new, empty, or an existing library). "
        "Every stimulus gets a fresh id (old ids are kept in its provenance; --id-map writes old -> new); "
        "settings, seeds, weight hashes and curation (status, tags, notes) are kept. Two copies of the same "
        "(settings, seed) are one stimulus: by default the first is kept and the tags and decisions of the "
        "others are folded into it; an accepted copy against a rejected one is refused unless "
        "--on-conflict first.",
    )
    p.add_argument("sources", nargs="+", type=Path, metavar="LIBRARY", help="libraries to merge, in order")
    p.add_argument("--out", type=Path, required=True, help="target library folder")
    p.add_argument(
        "--on-repeat",
        choices=("skip", "refuse"),
        default="skip",
        help="repeats of the same (settings, seed): skip = de-duplicate (default), refuse = stop",
    )
    p.add_argument(
        "--on-conflict",
        choices=("refuse", "first"),
        default="refuse",
        help="accepted vs rejected copies of one stimulus: refuse (default) or keep the first one's status",
    )
    p.add_argument("--id-map", type=Path, metavar="CSV", help="write source,old_id,new_id for every copied stimulus")
    p.set_defaults(func=_merge)


def _create(args: argparse.Namespace) -> int:
    with StimulusLibrary.create(args.dir) as lib:
        print(f"created an empty library in {lib.path}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from perceptlab.analysis.transfer import summarize  # noqa: PLC0415

    with StimulusLibrary.open(args.dir) as lib:
        info = lib.summary()
        transfer = summarize(r for r in lib.records() if r.passed)
    print(f"library {args.dir}: {info['total']} stimuli")
    for title, key in (("status", "by_status"), ("mode", "by_mode"), ("pair (a-b)", "by_pair")):
        counts = ", ".join(f"{k} {v}" for k, v in info[key].items()) or "-"
        print(f"  {title}: {counts}")
    if transfer:
        parts = ", ".join(f"{n} {v['confirmed']}/{v['n']} ({v['rate']:.0%})" for n, v in transfer.items())
        print(f"  observer transfer of stimuli that passed the filter: {parts}")
    missing = info.get("missing_images", [])
    if missing:
        print(f"  MISSING IMAGES: {len(missing)} stimuli have no images/<id>.png "
              f"({', '.join(missing[:10])}{', …' if len(missing) > 10 else ''})")
        return 1
    return 0


_JSPSYCH_ONLY = (("layout", "choice-screen"), ("catch_rate", 0.0), ("catch_seed", 0), ("save_hook", "none"),
                 ("save_url", None), ("no_download", False), ("jspsych_from", None))


def _export(args: argparse.Namespace) -> int:
    if args.format == "csv":
        given = [f"--{name.replace('_', '-')}" for name, default in _JSPSYCH_ONLY if getattr(args, name) != default]
        if given:
            raise PerceptLabError(f"{', '.join(given)} only apply to --format jspsych",
                                  "drop them, or export with --format jspsych")
    with StimulusLibrary.open(args.dir) as lib:
        if args.format == "csv":
            path = export_csv(lib, args.out, status=args.status)
        else:
            path = export_jspsych(
                lib, args.out, status=args.status, fixation_ms=args.fixation_ms, stimulus_ms=args.stimulus_ms,
                layout=args.layout, catch_rate=args.catch_rate, catch_seed=args.catch_seed,
                save_hook=args.save_hook, save_url=args.save_url, download=not args.no_download,
                jspsych_from=args.jspsych_from,
            )
    if args.format == "jspsych":
        report_jspsych_export(path, "README.txt", args.jspsych_from)
    else:
        print(f"wrote {path}")
    return 0


def _set_status(args: argparse.Namespace) -> int:
    with StimulusLibrary.open(args.dir) as lib:
        old = lib.set_status(args.ids, args.status)
    changed = sum(v != args.status for v in old.values())
    print(f"{len(old)} stimuli now {args.status} ({changed} changed)")
    return 0


def _tag(args: argparse.Namespace) -> int:
    if not args.add and not args.remove:
        raise PerceptLabError("nothing to do", "give --add TAG and/or --remove TAG")
    with StimulusLibrary.open(args.dir) as lib:
        if args.add:
            lib.add_tags(args.ids, args.add)
        if args.remove:
            lib.remove_tags(args.ids, args.remove)
    print(f"updated the tags of {len(set(args.ids))} stimuli")
    return 0


def _sheet(args: argparse.Namespace) -> int:
    from perceptlab.data.contact_sheet import select_stimuli, write_contact_sheet  # noqa: PLC0415

    with StimulusLibrary.open(args.dir) as lib:
        recs = select_stimuli(lib, status=args.status, passed=args.passed, mode=args.mode, tag=args.tag, limit=args.max)
        path = write_contact_sheet(lib, args.out, recs, cols=args.cols, scale=args.scale)
    print(f"wrote {path} ({len(recs)} stimuli)")
    return 0


def _merge(args: argparse.Namespace) -> int:
    from perceptlab.data.library_merge import merge_libraries  # noqa: PLC0415

    report = merge_libraries(args.sources, args.out, on_repeat=args.on_repeat, on_conflict=args.on_conflict)
    print(report.summary())
    for msg in report.conflicts[:5]:
        print(f"  conflict: {msg}")
    if args.id_map:
        print(f"wrote {report.write_id_map(args.id_map)}")
    return 0
