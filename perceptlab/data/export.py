"""Exports of a stimulus library: CSV + PNGs, and a ready-to-run jsPsych 8 experiment folder.

Both write into ``out_dir``, which must be new, empty, or a previous PerceptLab export (recognised by
its ``perceptlab-export.json``); a re-export replaces the files it wrote before and keeps everything
else (notably a filled ``jspsych/`` folder).
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from perceptlab import CLASSES, __version__
from perceptlab.data.catch import catch_count
from perceptlab.data.jspsych_kit import (
    ALL_JSPSYCH_FILES,
    CATCH_CSV,
    CATCH_DIR,
    JSPSYCH_DIR,
    RECOVER_HTML,
    RUNTIME_JS,
    SAVE_JS,
    check_layout,
    check_save_hook,
    experiment_id,
    hook_text,
    readme_sections,
    response_keys,
    save_settings,
    timeline_js,
    write_catch_trials,
    write_runtime,
)
from perceptlab.data.library import (
    IMAGES_DIR,
    MANIFEST_COLUMNS,
    N_CLASSES,
    STATUSES,
    Stimulus,
    StimulusLibrary,
    check_writable,
    csv_text,
    manifest_values,
)
from perceptlab.errors import PerceptLabError

MARKER = "perceptlab-export.json"
STIMULI_CSV = "stimuli.csv"
JSPSYCH_FILES = ALL_JSPSYCH_FILES
README = "README.txt"
_OUR_FILES = (STIMULI_CSV, "index.html", "timeline.js", "README.md", README, RUNTIME_JS, SAVE_JS, RECOVER_HTML, CATCH_CSV,
              MARKER)


def export_csv(library: StimulusLibrary, out_dir: str | os.PathLike[str], status: str | None = None) -> Path:
    """Write ``out_dir/stimuli.csv`` and copy the PNGs to ``out_dir/images/``; returns the CSV path."""
    records = _select(library, status)
    out = _prepare(library, out_dir, "csv", status, len(records))
    with _write_errors(out):
        _write_common(library, out, records, "csv", status)
    return out / STIMULI_CSV


def export_jspsych(
    library: StimulusLibrary,
    out_dir: str | os.PathLike[str],
    status: str | None = None,
    fixation_ms: int = 300,
    stimulus_ms: int = 200,
    image_px: int = 224,
    title: str = "Which digit is this?",
    *,
    layout: str = "choice-screen",
    catch_rate: float = 0.0,
    catch_seed: int = 0,
    save_hook: str = "none",
    save_url: str | None = None,
    download: bool = True,
    jspsych_from: str | os.PathLike[str] | None = None,
) -> Path:
    """Write a jsPsych 8 experiment folder (see the README.txt it contains); returns its index.html.

    Per stimulus: a fixation cross for ``fixation_ms``, then the image for ``stimulus_ms`` (drawn
    ``image_px`` pixels square, unsmoothed); ``layout="choice-screen"`` then shows a separate choice
    screen (one button per class, number keys too), ``"buttons-with-image"`` shows the buttons with
    the image. ``catch_rate`` adds real MNIST digits with known labels (``catch_seed`` picks them);
    every row goes to localStorage as it is made (``recover.html`` gets it back), the CSV download at
    the end stays unless ``download=False``, and ``save_hook`` sends the rows to a server
    (``"post"`` to ``save_url``, ``"jatos"``, ``"pavlovia"``). ``jspsych_from`` fills ``jspsych/``
    from an npm install. Trial order is shuffled (seeded, the seed recorded) for every participant.
    """
    for name, value in (("fixation_ms", fixation_ms), ("stimulus_ms", stimulus_ms), ("image_px", image_px)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise PerceptLabError(f"{name} must be a positive whole number, got {value!r}")
    check_layout(layout)
    check_save_hook(save_hook, save_url)
    records = _select(library, status)
    n_catch = catch_count(len(records), catch_rate)
    out = _prepare(library, out_dir, "jspsych", status, len(records))
    with _write_errors(out):
        catch = write_catch_trials(out, n_catch, catch_seed, list(CLASSES))
        config = _config(library, records, catch, title, layout, fixation_ms, stimulus_ms, image_px,
                         save_hook, save_url, download)
        write_runtime(out, _timeline_js(records, catch, config), title=title, layout=layout, save_hook=save_hook,
                      runtime=RUNTIME_JS, runner="PerceptLab", readme=README,
                      pixelated="#jspsych-image-button-response-stimulus, #jspsych-image-keyboard-response-stimulus",
                      jspsych_from=jspsych_from)
        (out / README).write_text(_readme(library, records, status, config, len(catch)), encoding="utf-8")
        _write_common(library, out, records, "jspsych", status)
    return out / "index.html"


# --------------------------------------------------------------------------- shared steps

_SAFE_ID = re.compile(r"^s\d{6,}$")


def image_problem(path: Path) -> str | None:
    """Why ``path`` is not a library stimulus image (28x28 8-bit grayscale PNG); None when it is."""
    from PIL import Image, UnidentifiedImageError  # noqa: PLC0415

    try:
        with Image.open(path) as img:
            fmt, size, mode = img.format, img.size, img.mode
            img.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        return f"not a readable image ({type(exc).__name__})"
    if fmt != "PNG":
        return f"a {fmt} file, not PNG"
    if size != (28, 28):
        return f"{size[0]}x{size[1]} pixels, not 28x28"
    if mode != "L":
        return f"mode {mode}, not 8-bit grayscale (L)"
    return None


def _select(library: StimulusLibrary, status: str | None) -> list[Stimulus]:
    if status is not None and status not in STATUSES:
        raise PerceptLabError(f"unknown status {status!r}", f"use one of: {', '.join(STATUSES)}")
    records = library.records(status=status)
    bad_ids = [rec.id for rec in records if not _SAFE_ID.match(str(rec.id))]
    if bad_ids:
        raise PerceptLabError(
            f"{len(bad_ids)} stimuli have ids that are not plain library ids (first: {bad_ids[0]!r}); "
            "their image paths are not followed", "repair the library database; nothing was exported")
    missing = [rec.id for rec in records if not (library.images_dir / f"{rec.id}.png").is_file()]
    if missing:
        raise PerceptLabError(
            f"{len(missing)} selected stimuli have no image in {library.images_dir} (first: {missing[0]})",
            "restore the images from a backup, or delete those stimuli; nothing was exported",
        )
    broken = [(rec.id, why) for rec in records
              if (why := image_problem(library.images_dir / f"{rec.id}.png")) is not None]
    if broken:
        shown = "; ".join(f"{i}: {w}" for i, w in broken[:5])
        raise PerceptLabError(
            f"{len(broken)} selected stimuli have images that are not 28x28 8-bit grayscale PNGs ({shown})",
            "restore the images from a backup, or delete those stimuli; nothing was exported")
    if not records:
        if status is None:
            raise PerceptLabError(f"the library {library.path} holds no stimuli", "generate or import some first")
        raise PerceptLabError(
            f"no stimuli with status {status} in {library.path}", f"{_verb(status)} some first or drop --status"
        )
    return records


@contextmanager
def _write_errors(out: Path) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise PerceptLabError(
            f"cannot write the export in {out}: {exc.strerror or exc}",
            "check free disk space and permissions, then export again into the same folder",
        ) from exc


def _verb(status: str) -> str:
    return {"accepted": "accept", "rejected": "reject"}.get(status, "mark")


def _prepare(library: StimulusLibrary, out_dir: str | os.PathLike[str], fmt: str, status: str | None, n: int) -> Path:
    """Check ``out_dir`` may be written, remove the files of a previous export there, and mark it as
    an (incomplete) export of ours, so that a failed export can be redone in the same folder."""
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise PerceptLabError(f"{out} is a file", "pick a new or empty folder for the export")
    lib = library.path.resolve()
    target = out.resolve()
    if target == lib or lib in target.parents:
        raise PerceptLabError(f"{out} is inside the library {library.path}", "export to a folder outside the library")
    if out.exists() and any(out.iterdir()):
        if not (out / MARKER).is_file():
            raise PerceptLabError(
                f"{out} is not empty and is not a previous PerceptLab export (no {MARKER}); nothing was written",
                "pick a new or empty folder for the export",
            )
        check_writable(out, "export folder")
        for name in _OUR_FILES:
            (out / name).unlink(missing_ok=True)
        for folder in (IMAGES_DIR, CATCH_DIR):
            if (out / folder).is_dir():
                shutil.rmtree(out / folder)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PerceptLabError(f"cannot create {out}: {exc.strerror or exc}", "pick a folder you can write to") from exc
    check_writable(out, "export folder")
    _write_marker(library, out, fmt, status, n, complete=False)
    return out


def _write_common(library: StimulusLibrary, out: Path, records: list[Stimulus], fmt: str, status: str | None) -> None:
    """stimuli.csv, images/, then the export marker saying the export is complete."""
    (out / STIMULI_CSV).write_text(stimuli_csv_text(records), encoding="utf-8")
    images = out / IMAGES_DIR
    images.mkdir()
    for rec in records:
        shutil.copyfile(library.images_dir / f"{rec.id}.png", images / f"{rec.id}.png")
    _write_marker(library, out, fmt, status, len(records), complete=True)


def _write_marker(library: StimulusLibrary, out: Path, fmt: str, status: str | None, n: int, *, complete: bool) -> None:
    marker = {
        "format": fmt,
        "complete": complete,
        "library": str(library.path.resolve()),
        "status": status,
        "stimuli": n,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "perceptlab": __version__,
    }
    (out / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")


def prob_columns(records: list[Stimulus]) -> list[str]:
    """``prob_<model>_<k>`` columns for every model that scored any of ``records`` (models sorted)."""
    models = sorted({m for rec in records for m in rec.probs})
    return [f"prob_{m}_{k}" for m in models for k in range(N_CLASSES)]


def stimuli_csv_text(records: list[Stimulus]) -> str:
    """Manifest columns plus every classifier's class probabilities (empty where a model is missing)."""
    probs = prob_columns(records)
    header = [*MANIFEST_COLUMNS, *probs]

    def row(rec: Stimulus) -> list[object]:
        values = manifest_values(rec)
        flat = {f"prob_{m}_{k}": p for m, ps in rec.probs.items() for k, p in enumerate(ps)}
        return [values[c] for c in MANIFEST_COLUMNS] + [flat.get(c) for c in probs]

    return csv_text(header, (row(r) for r in records))


# --------------------------------------------------------------------------- jsPsych files



def _config(library: StimulusLibrary, records: list[Stimulus], catch: list[dict], title: str, layout: str,
            fixation_ms: int, stimulus_ms: int, image_px: int, save_hook: str, save_url: str | None,
            download: bool) -> dict:
    classes = list(CLASSES)
    keys = response_keys(classes)
    exp_id = experiment_id(library.path.name, [r.id for r in records], [c["stimulus_id"] for c in catch], layout,
                           fixation_ms, stimulus_ms)
    key_text = ("the number keys give the digit" if keys == classes else
                "keys 1-9 answer the classes in button order" if any(keys) else "")
    instructions = (
        "<p>A cross appears in the middle of the screen, then an image flashes briefly.</p>"
        + ("<p>Then choose what you saw on the next screen: click its button"
           + (f" ({html.escape(key_text)})" if key_text else "") + ".</p>"
           if layout == "choice-screen" else "<p>Click the button of what you saw.</p>")
        + "<p>If unsure, give your best guess.</p><p>Press any key to start.</p>")
    return {
        "experiment_id": exp_id,
        "title": title,
        "layout": layout,
        "classes": classes,
        "keys": keys,
        "fixation_ms": fixation_ms,
        "stimulus_ms": stimulus_ms,
        "image_px": image_px,
        "n_stimuli": len(records),
        "n_catch": len(catch),
        **save_settings(save_hook, save_url, download),
        "instructions_html": instructions,
        "choice_prompt_html": f"<p>{html.escape(title)}</p>",
    }


def _timeline_js(records: list[Stimulus], catch: list[dict], config: dict) -> str:
    stimuli = [
        {
            "stimulus": f"{IMAGES_DIR}/{rec.id}.png",
            "stimulus_id": rec.id,
            "class_a": rec.class_a,
            "class_b": rec.class_b,
            "mode": rec.mode,
            "task": "digit",
            "is_catch": False,
            "true_label": None,
        }
        for rec in records
    ] + [{**c, "task": "catch"} for c in catch]
    return timeline_js(f"""Generated by PerceptLab {__version__}: the settings and the trial list of this export.
{len(records)} stimuli and {len(catch)} catch trials (real MNIST digits, is_catch true), order shuffled
per participant with a recorded seed; the trials themselves are built by perceptlab-run.js.""", config,
                       "PERCEPTLAB_STIMULI", stimuli)


def _readme(library: StimulusLibrary, records: list[Stimulus], status: str | None, config: dict, n_catch: int) -> str:
    selection = f"status {status}" if status else "all statuses"
    fx, st = config["fixation_ms"], config["stimulus_ms"]
    if config["layout"] == "choice-screen":
        trial = (f"a fixation cross for {fx} ms, the 28x28 image alone for {st} ms (no response accepted), "
                 "then a separate choice screen with one button per class; the number keys answer too "
                 f"({', '.join(f'{k} = {c}' for k, c in zip(config['keys'], config['classes'], strict=True) if k)})")
    else:
        trial = (f"a fixation cross for {fx} ms, then the 28x28 image for {st} ms with one button per class "
                 "shown at once (clicks are accepted while the image is on screen)")
    trial += (" (the fixation and the image are frame-locked: each ends on the display frame nearest "
              "its intended end, and `measured_*_ms` record what the frames showed)")
    return f"""PerceptLab experiment (jsPsych 8)
=================================

Exported by PerceptLab {__version__} from `{library.path}` ({len(records)} stimuli, {selection};
{n_catch} catch trials). Experiment id `{config['experiment_id']}`; layout `{config['layout']}`;
save hook {hook_text(config)}; download at the end: {"yes" if config["download"] else "no"}.

Each trial: {trial}. Trial order is shuffled for every participant with a seeded generator
(`jsPsych.randomization.setSeed`); the seed is recorded in every row (`order_seed`) and
`index.html?seed=...` replays an order. All images are preloaded first.

Catch trials: real MNIST digits (hold-out digits of the built-in subset, listed in `catch.csv`,
images in `catch/`) with known labels, mixed into the order; their rows have `is_catch` true,
`task` "catch" and `true_label`. PerceptLab scores them (`perceptlab analyze --catch-threshold`).

Files
-----

- `index.html`: open it in a browser to run the experiment (works offline, straight from disk).
  `index.html?subject=P01` sets the participant id (also read: `PROLIFIC_PID`; else a random id).
- `timeline.js`: the settings (`PERCEPTLAB_CONFIG`) and the trial list of this export.
- `{RUNTIME_JS}`: the trials; `{SAVE_JS}`: the data handling and the frame-locked timing (the same in
  every export).
- `{RECOVER_HTML}`: lists the sessions stored in this browser and downloads them as CSV or JSON.
- `images/`: the stimulus PNGs; `stimuli.csv`: their metadata and every classifier's probabilities.
- `{JSPSYCH_DIR}/`: jsPsych 8 and its plugins, **empty on export unless `--jspsych-from` filled it**.

{readme_sections(config, config["layout"], _ROWS_TEXT, "perceptlab library export")}"""


_ROWS_TEXT = (
    'Rows (one per answered trial): `subject`, `session_id`, `order_seed`, `experiment_id`, `layout`, '
    '`stimulus` (image path), `stimulus_id`, `response` (button index = class index), `response_label` '
    '(the class name), `response_via` (click or key), `rt` (ms from the choice screen), `trial_index`, '
    '`trial_type`, `time_elapsed`, `task`, `kind`, `is_catch`, `true_label`, `class_a`, `class_b`, `mode`, '
    '`intended_fixation_ms`, `measured_fixation_ms`, `intended_stimulus_ms`, `measured_stimulus_ms` '
    '(measured between requestAnimationFrame stamps of the frames that first show each screen), '
    '`timestamp_utc`. One file per participant: load the folder with `perceptlab analyze FOLDER` or the '
    'Data panel\'s "Open folder…"; no column mapping is needed.'
)
