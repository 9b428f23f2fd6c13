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
JSPSYCH_DIR = "jspsych"
JSPSYCH_FILES = (
    "jspsych.js",
    "jspsych.css",
    "plugin-html-keyboard-response.js",
    "plugin-image-button-response.js",
    "plugin-preload.js",
)
_OUR_FILES = (STIMULI_CSV, "index.html", "timeline.js", "README.md", MARKER)

# npm package, major version, file inside the package -> file name in jspsych/
_JSPSYCH_SOURCES = (
    ("jspsych", "8", "dist/index.browser.min.js", "jspsych.js"),
    ("jspsych", "8", "css/jspsych.css", "jspsych.css"),
    ("@jspsych/plugin-html-keyboard-response", "2", "dist/index.browser.min.js", "plugin-html-keyboard-response.js"),
    ("@jspsych/plugin-image-button-response", "2", "dist/index.browser.min.js", "plugin-image-button-response.js"),
    ("@jspsych/plugin-preload", "2", "dist/index.browser.min.js", "plugin-preload.js"),
)
# global name each script defines, checked by index.html before starting
_JSPSYCH_GLOBALS = (
    ("initJsPsych", "jspsych.js"),
    ("jsPsychHtmlKeyboardResponse", "plugin-html-keyboard-response.js"),
    ("jsPsychImageButtonResponse", "plugin-image-button-response.js"),
    ("jsPsychPreload", "plugin-preload.js"),
)


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
) -> Path:
    """Write a jsPsych 8 experiment folder (see the README.md it contains); returns its index.html.

    Per stimulus: a fixation cross for ``fixation_ms``, then the image for ``stimulus_ms`` (drawn
    ``image_px`` pixels square, unsmoothed) with ten buttons 0..9 that stay until the response.
    Trial order is shuffled by jsPsych for every participant.
    """
    for name, value in (("fixation_ms", fixation_ms), ("stimulus_ms", stimulus_ms), ("image_px", image_px)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise PerceptLabError(f"{name} must be a positive whole number, got {value!r}")
    records = _select(library, status)
    out = _prepare(library, out_dir, "jspsych", status, len(records))
    with _write_errors(out):
        (out / JSPSYCH_DIR).mkdir(exist_ok=True)
        (out / "timeline.js").write_text(_timeline_js(records, fixation_ms, stimulus_ms, image_px), encoding="utf-8")
        (out / "index.html").write_text(_index_html(title), encoding="utf-8")
        (out / "README.md").write_text(_readme(library, records, status, fixation_ms, stimulus_ms), encoding="utf-8")
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
        if (out / IMAGES_DIR).is_dir():
            shutil.rmtree(out / IMAGES_DIR)
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


def _timeline_js(records: list[Stimulus], fixation_ms: int, stimulus_ms: int, image_px: int) -> str:
    stimuli = [
        {
            "stimulus": f"{IMAGES_DIR}/{rec.id}.png",
            "stimulus_id": rec.id,
            "class_a": rec.class_a,
            "class_b": rec.class_b,
            "mode": rec.mode,
        }
        for rec in records
    ]
    lines = ",\n".join("  " + json.dumps(s) for s in stimuli)
    choices = json.dumps(list(CLASSES))
    return f"""// Generated by PerceptLab {__version__}: one trial per stimulus, order shuffled per participant.
// Each trial: fixation cross {fixation_ms} ms, then the digit for {stimulus_ms} ms; the ten buttons stay
// until the participant answers. The button index (0-9) is the digit chosen.

const PERCEPTLAB_STIMULI = [
{lines}
];

function perceptlabTimeline(jsPsych) {{
  const preload = {{
    type: jsPsychPreload,
    images: PERCEPTLAB_STIMULI.map((s) => s.stimulus),
    show_detailed_errors: true,
    record_data: false,
  }};

  const instructions = {{
    type: jsPsychHtmlKeyboardResponse,
    stimulus:
      "<p>A digit will flash briefly after a cross in the middle of the screen.</p>" +
      "<p>Click the button of the digit you saw. If unsure, give your best guess.</p>" +
      "<p>Press any key to start.</p>",
    record_data: false,
  }};

  const fixation = {{
    type: jsPsychHtmlKeyboardResponse,
    stimulus: '<div style="font-size: 60px;">+</div>',
    choices: "NO_KEYS",
    trial_duration: {fixation_ms},
    record_data: false,
  }};

  const digit = {{
    type: jsPsychImageButtonResponse,
    stimulus: jsPsych.timelineVariable("stimulus"),
    stimulus_duration: {stimulus_ms},
    stimulus_height: {image_px},
    stimulus_width: {image_px},
    render_on_canvas: false,
    choices: {choices},
    button_html: (choice) => `<button class="jspsych-btn">${{choice}}</button>`,
    button_layout: "grid",
    grid_rows: 1,
    grid_columns: {N_CLASSES},
    response_ends_trial: true,
    data: {{
      task: "digit",
      stimulus_id: jsPsych.timelineVariable("stimulus_id"),
      class_a: jsPsych.timelineVariable("class_a"),
      class_b: jsPsych.timelineVariable("class_b"),
      mode: jsPsych.timelineVariable("mode"),
    }},
  }};

  const trials = {{
    timeline: [fixation, digit],
    timeline_variables: PERCEPTLAB_STIMULI,
    randomize_order: true,
  }};

  return [preload, instructions, trials];
}}
"""


def _index_html(title: str) -> str:
    scripts = "\n".join(
        f'    <script src="{JSPSYCH_DIR}/{name}"></script>' for name in JSPSYCH_FILES if name.endswith(".js")
    )
    checks = ",\n".join(f'        ["{g}", "{JSPSYCH_DIR}/{f}"]' for g, f in _JSPSYCH_GLOBALS)
    return f"""<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <title>{html.escape(title)}</title>
{scripts}
    <link rel="stylesheet" href="{JSPSYCH_DIR}/jspsych.css" />
    <script src="timeline.js"></script>
    <style>
      #jspsych-image-button-response-stimulus {{ image-rendering: pixelated; }}
      #perceptlab-missing {{ font-family: sans-serif; max-width: 40em; margin: 3em auto; }}
    </style>
  </head>
  <body>
    <script>
      const missing = [
{checks}
      ].filter(([name]) => typeof window[name] === "undefined").map(([, file]) => file);
      if (typeof initJsPsych === "undefined" || missing.length > 0) {{
        document.body.innerHTML =
          '<div id="perceptlab-missing"><h2>jsPsych is not installed in this folder yet</h2>' +
          "<p>Missing: <code>" + missing.join("</code>, <code>") + "</code></p>" +
          "<p>Fill the <code>{JSPSYCH_DIR}/</code> folder next to this page as README.md explains " +
          "(jsPsych 8 and three plugins), then reload.</p></div>";
      }} else {{
        const subject =
          new URLSearchParams(window.location.search).get("subject") ||
          "p" + Math.random().toString(36).slice(2, 10);
        const jsPsych = initJsPsych({{
          on_finish: () => {{
            const stamp = new Date().toISOString().replace(/[:.]/g, "-");
            jsPsych.data.get().localSave("csv", `perceptlab_${{subject}}_${{stamp}}.csv`);
            document.body.innerHTML =
              '<div id="perceptlab-missing"><h2>Thank you!</h2>' +
              "<p>Your responses were saved as a CSV file by your browser.</p></div>";
          }},
        }});
        jsPsych.data.addProperties({{ subject: subject }});
        jsPsych.run(perceptlabTimeline(jsPsych));
      }}
    </script>
  </body>
</html>
"""


def _readme(
    library: StimulusLibrary, records: list[Stimulus], status: str | None, fixation_ms: int, stimulus_ms: int
) -> str:
    unpkg = "\n".join(
        f"curl -fL -o {JSPSYCH_DIR}/{dest} https://unpkg.com/{pkg}@{major}/{path}"
        for pkg, major, path, dest in _JSPSYCH_SOURCES
    )
    jsdelivr = "\n".join(
        f"- `https://cdn.jsdelivr.net/npm/{pkg}@{major}/{path}` → `{JSPSYCH_DIR}/{dest}`"
        for pkg, major, path, dest in _JSPSYCH_SOURCES
    )
    packs = " ".join(f"{pkg}@{major}" for pkg, major in dict.fromkeys((p, m) for p, m, _, _ in _JSPSYCH_SOURCES))
    copies = "\n".join(
        f"cp node_modules/{pkg}/{path} {JSPSYCH_DIR}/{dest}" for pkg, _major, path, dest in _JSPSYCH_SOURCES
    )
    selection = f"status {status}" if status else "all statuses"
    return f"""# PerceptLab digit experiment (jsPsych 8)

Exported by PerceptLab {__version__} from `{library.path}` ({len(records)} stimuli, {selection}).

Each trial shows a fixation cross for {fixation_ms} ms, then the 28x28 digit image for {stimulus_ms} ms;
ten buttons `0`..`9` stay on screen until the participant clicks one. Trial order is shuffled by jsPsych
(`randomize_order`) for every participant; all images are preloaded first.

## Files

- `index.html`: open it in a browser to run the experiment (works offline, straight from disk).
- `timeline.js`: the stimulus list and the trial definitions.
- `images/`: the stimulus PNGs; `stimuli.csv`: their metadata and every classifier's probabilities.
- `{JSPSYCH_DIR}/`: **empty on export — fill it with jsPsych 8 before running** (below).

## Filling `{JSPSYCH_DIR}/`

The page loads these files from `{JSPSYCH_DIR}/` (relative paths, so nothing is fetched at run time):
{", ".join(f"`{name}`" for name in JSPSYCH_FILES)}. If any is missing, the page says which.

From npm (in this folder):

```sh
npm install --no-save {packs}
{copies}
```

(or `npm pack {packs}`, unpack each `.tgz` with `tar -xzf`, and copy the same files from `package/`).

From the official CDN (unpkg):

```sh
mkdir -p {JSPSYCH_DIR}
{unpkg}
```

or the same files from jsDelivr:

{jsdelivr}

## Running and collecting data

Open `index.html?subject=P01` to set the participant id (without it a random id is used). At the end
the data are saved as CSV through `jsPsych.data.get().localSave('csv', ...)`, file
`perceptlab_<subject>_<time>.csv` in the browser's download folder. Only the digit trials are
recorded: `subject`, `stimulus` (image path), `response` (button index = digit chosen), `rt` (ms),
`trial_index`, `trial_type`, plus `stimulus_id`, `class_a`, `class_b`, `mode` and `task`. These files
load into PerceptLab's trial table without a column mapping.

To put the experiment online, upload the whole folder (with `{JSPSYCH_DIR}/` filled) to any static
web host, and replace `localSave` in `index.html` with your server's save call.
"""
