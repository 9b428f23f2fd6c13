"""The pieces of the jsPsych export beyond the library's own files: layouts, save hooks, catch
trials of real MNIST digits, response keys, and filling ``jspsych/`` from an npm install.

The experiment logic itself is plain JavaScript shipped in ``jspsych_assets/`` and copied into every
export: ``perceptlab-save.js`` (localStorage after every trial, the save hooks, frame-locked timing and the
trial pieces every runtime is built from: opening trials, fixation, timed image, choice screen; shared by
every export), the trials of the library export (``perceptlab-run.js``), of the mixup export
(``perceptlab-mixup.js``) or of the learning export (``perceptlab-curriculum.js``), and ``recover.html``.
:mod:`perceptlab.data.export`, :mod:`perceptlab.data.export_mixup` and
:mod:`perceptlab.data.export_curriculum` make the per-export configuration and trials; ``timeline.js``,
``index.html``, the README's file list and data sections are written here for all three
(:func:`write_runtime`, :func:`timeline_js`, :func:`files_text`, :func:`readme_sections`).
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import shutil
import textwrap
from dataclasses import dataclass
from pathlib import Path

from perceptlab.data.catch import CATCH_SOURCE, pick_catch_digits
from perceptlab.errors import PerceptLabError

ASSETS = Path(__file__).with_name("jspsych_assets")
RUNTIME_JS = "perceptlab-run.js"
SAVE_JS = "perceptlab-save.js"
RECOVER_HTML = "recover.html"
CATCH_DIR = "catch"
CATCH_CSV = "catch.csv"

LAYOUTS = ("choice-screen", "buttons-with-image")
"""``choice-screen`` (default, the papers' protocol): fixation, the image alone (no response
accepted), then a separate choice screen with one button per class and number keys.
``buttons-with-image``: the class buttons are shown with the image and accept clicks at once."""
SAVE_HOOKS = ("none", "post", "jatos", "pavlovia")

# npm package, major version, file inside the package -> file name in jspsych/, global it defines
_SOURCES = {
    "jspsych.js": ("jspsych", "8", "dist/index.browser.min.js", "initJsPsych"),
    "jspsych.css": ("jspsych", "8", "css/jspsych.css", None),
    "plugin-html-keyboard-response.js": ("@jspsych/plugin-html-keyboard-response", "2",
                                         "dist/index.browser.min.js", "jsPsychHtmlKeyboardResponse"),
    "plugin-html-button-response.js": ("@jspsych/plugin-html-button-response", "2",
                                       "dist/index.browser.min.js", "jsPsychHtmlButtonResponse"),
    "plugin-image-keyboard-response.js": ("@jspsych/plugin-image-keyboard-response", "2",
                                          "dist/index.browser.min.js", "jsPsychImageKeyboardResponse"),
    "plugin-image-button-response.js": ("@jspsych/plugin-image-button-response", "2",
                                        "dist/index.browser.min.js", "jsPsychImageButtonResponse"),
    "plugin-image-slider-response.js": ("@jspsych/plugin-image-slider-response", "2",
                                        "dist/index.browser.min.js", "jsPsychImageSliderResponse"),
    "plugin-preload.js": ("@jspsych/plugin-preload", "2", "dist/index.browser.min.js", "jsPsychPreload"),
}
_LAYOUT_FILES = {
    "choice-screen": ("jspsych.js", "jspsych.css", "plugin-html-keyboard-response.js",
                      "plugin-image-keyboard-response.js", "plugin-html-button-response.js",
                      "plugin-preload.js"),
    "buttons-with-image": ("jspsych.js", "jspsych.css", "plugin-html-keyboard-response.js",
                           "plugin-image-button-response.js", "plugin-preload.js"),
    # the mixup export (perceptlab.data.export_mixup): pick / slider / choice trials
    "mixup": ("jspsych.js", "jspsych.css", "plugin-html-keyboard-response.js", "plugin-html-button-response.js",
              "plugin-image-slider-response.js", "plugin-preload.js"),
}
ALL_JSPSYCH_FILES = tuple(n for n in _SOURCES if any(n in _LAYOUT_FILES[lay] for lay in LAYOUTS))
"""The files the library export's layouts load (the mixup export's are in ``jspsych_files("mixup")``)."""
PAVLOVIA_FILE = "jspsych-pavlovia.js"
JSPSYCH_DIR = "jspsych"


@dataclass(frozen=True)
class JsPsychFile:
    name: str  # file name in jspsych/
    package: str
    major: str
    path: str  # inside the npm package
    global_name: str | None  # what the script defines (None: a stylesheet)


def jspsych_files(layout: str) -> list[JsPsychFile]:
    """The jsPsych files an export of ``layout`` (or ``"mixup"``: the mixup export's) loads from
    ``jspsych/``, in loading order."""
    if layout not in _LAYOUT_FILES:
        check_layout(layout)
    return [JsPsychFile(name, *_SOURCES[name]) for name in _LAYOUT_FILES[layout]]


def check_layout(layout: str) -> None:
    if layout not in LAYOUTS:
        raise PerceptLabError(f"unknown jsPsych layout {layout!r}", f"use one of: {', '.join(LAYOUTS)}")


def check_save_hook(save_hook: str, save_url: str | None) -> None:
    if save_hook not in SAVE_HOOKS:
        raise PerceptLabError(f"unknown save hook {save_hook!r}", f"use one of: {', '.join(SAVE_HOOKS)}")
    if save_hook == "post" and not save_url:
        raise PerceptLabError("the 'post' save hook needs a save URL",
                              "give --save-url (e.g. https://lab.example.org/save or /save on the same server)")
    if save_url and save_hook != "post":
        raise PerceptLabError(f"a save URL is only used by the 'post' save hook, not {save_hook!r}",
                              "add --save-hook post, or leave --save-url out")


def response_keys(classes: list[str]) -> list[str | None]:
    """The key that answers each class on the choice screen: the digit itself when the classes are
    distinct single digits (MNIST: key 3 = class "3"), else keys 1..9 in class order (classes after
    the ninth have none: buttons only)."""
    if len(set(classes)) == len(classes) and all(len(c) == 1 and c.isdigit() for c in classes):
        return list(classes)
    return [str(i + 1) if i < 9 else None for i in range(len(classes))]


def write_catch_trials(out: Path, n: int, seed: int, classes: list[str]) -> list[dict]:
    """Write ``n`` real MNIST digits (the built-in subset's hold-out digits, balanced over the classes
    in a seeded order) as 28x28 PNGs in ``out/catch/`` plus ``out/catch.csv``; their timeline entries."""
    from perceptlab.data.images import write_png  # noqa: PLC0415
    from perceptlab.data.library import csv_text  # noqa: PLC0415

    digits = pick_catch_digits(n, classes, seed)
    if not digits:
        return []
    (out / CATCH_DIR).mkdir(exist_ok=True)
    entries, rows = [], []
    for k, (index, label, pixels) in enumerate(digits):
        cid = f"catch{k + 1:04d}"
        rel = f"{CATCH_DIR}/{cid}.png"
        write_png(out / rel, pixels)
        entries.append({"stimulus": rel, "stimulus_id": cid, "class_a": None, "class_b": None, "mode": "catch",
                        "is_catch": True, "true_label": label})
        rows.append([cid, rel, label, index, CATCH_SOURCE])
    (out / CATCH_CSV).write_text(csv_text(["stimulus_id", "file", "true_label", "mnist_index", "source"], rows),
                                 encoding="utf-8")
    return entries


def _package_dir(root: Path, package: str) -> Path | None:
    for base in (root / "node_modules", root):
        if (base / package / "package.json").is_file():
            return base / package
    return None


def fill_jspsych(dest: Path, source: str | Path, layout: str) -> list[str]:
    """Copy the jsPsych files of ``layout`` from an npm install (the folder holding ``node_modules``,
    or ``node_modules`` itself) into ``dest``; returns the names copied."""
    root = Path(source).expanduser()
    if not root.is_dir():
        raise PerceptLabError(f"--jspsych-from {root}: not a folder",
                              "point at the folder where you ran: npm install jspsych@8 @jspsych/plugin-...")
    files = jspsych_files(layout)
    packs = " ".join(dict.fromkeys(f"{f.package}@{f.major}" for f in files))
    copied = []
    for f in files:
        pkg = _package_dir(root, f.package)
        if pkg is None:
            raise PerceptLabError(f"--jspsych-from {root}: the npm package {f.package} is not installed there",
                                  f"in {root} run: npm install {packs}")
        try:
            version = str(json.loads((pkg / "package.json").read_text(encoding="utf-8")).get("version", ""))
        except (OSError, ValueError) as exc:
            raise PerceptLabError(f"{pkg / 'package.json'} cannot be read: {exc}",
                                  f"reinstall it: npm install {f.package}@{f.major}") from exc
        if version.split(".")[0] != f.major:
            raise PerceptLabError(f"{pkg}: version {version}, but the export needs {f.package}@{f.major}",
                                  f"in {root} run: npm install {f.package}@{f.major}")
        src = pkg / f.path
        if not src.is_file():
            raise PerceptLabError(f"{src} is missing from the npm package {f.package} {version}",
                                  f"reinstall it: npm install {f.package}@{f.major}")
        shutil.copyfile(src, dest / f.name)
        copied.append(f.name)
    return copied


def copy_assets(out: Path, runtime: str = RUNTIME_JS) -> None:
    """The data handling, the experiment runtime and the recovery page, the same in every export."""
    for name in (SAVE_JS, runtime, RECOVER_HTML):
        shutil.copyfile(ASSETS / name, out / name)


def write_runtime(out: Path, timeline_js: str, *, title: str, layout: str, save_hook: str, runtime: str,
                  runner: str, readme: str, pixelated: str, jspsych_from: str | Path | None) -> None:
    """What every export writes alike: ``jspsych/`` (filled from the npm install ``jspsych_from`` when
    given), ``timeline.js`` (``timeline_js``), ``index.html`` (:func:`index_html`) and the shared assets
    (:func:`copy_assets`)."""
    (out / JSPSYCH_DIR).mkdir(parents=True, exist_ok=True)
    if jspsych_from is not None:
        fill_jspsych(out / JSPSYCH_DIR, jspsych_from, layout)
    (out / "timeline.js").write_text(timeline_js, encoding="utf-8")
    (out / "index.html").write_text(index_html(title, layout, save_hook, runtime, runner, readme, pixelated),
                                    encoding="utf-8")
    copy_assets(out, runtime)


def timeline_js(comment: str, config: dict, name: str, items: list[dict]) -> str:
    """An export's ``timeline.js``: ``comment`` (each line a ``//`` line), ``PERCEPTLAB_CONFIG`` (``config``)
    and the array ``name`` of ``items``, one JSON line each."""
    head = "\n".join("// " + line for line in comment.splitlines())
    lines = ",\n".join("  " + json.dumps(item) for item in items)
    return f"""{head}

const PERCEPTLAB_CONFIG = {json.dumps(config, indent=2)};

const {name} = [
{lines}
];
"""


def files_text(runtime: str, data_files: str) -> str:
    """The README's list of an export's files (``data_files``: those beside ``images/``, as Markdown)."""
    return f"""Files: `index.html` (open it; `index.html?subject=P01` sets the participant id), `timeline.js` (the
settings and the trials), `{runtime}` (the trials' screens), `{SAVE_JS}` (the data handling and the
timing), `{RECOVER_HTML}` (sessions stored in this browser, as CSV / JSON), `images/`, {data_files},
`{JSPSYCH_DIR}/` (jsPsych 8, empty unless `--jspsych-from` filled it)."""


def index_html(title: str, layout: str, save_hook: str, runtime: str, runner: str, readme: str,
               pixelated: str) -> str:
    """The export's ``index.html``: jsPsych and its plugins from ``jspsych/`` (the page says which are
    missing), ``timeline.js``, the shared data handling, ``runtime`` (which defines ``runner.run``), the
    save hook's script (``jatos.js`` served by JATOS, or Pavlovia's plugin); ``pixelated`` is the CSS
    selector of the stimulus images (drawn unsmoothed)."""
    files = jspsych_files(layout)
    scripts = "\n".join(f'    <script src="{JSPSYCH_DIR}/{f.name}"></script>' for f in files if f.global_name)
    css = next(f.name for f in files if f.global_name is None)
    checks = [(f.global_name, f"{JSPSYCH_DIR}/{f.name}") for f in files if f.global_name]
    if save_hook == "pavlovia":
        scripts += f'\n    <script src="{JSPSYCH_DIR}/{PAVLOVIA_FILE}"></script>'
        checks.append(("jsPsychPavlovia", f"{JSPSYCH_DIR}/{PAVLOVIA_FILE} (from Pavlovia, see {readme})"))
    if save_hook == "jatos":
        scripts = '    <script src="jatos.js"></script>\n' + scripts
    check_js = ",\n".join(f'        ["{g}", "{f}"]' for g, f in checks)
    # without JATOS (the folder opened from disk for a pilot) jatos.js is absent: start at once
    start = ("window.jatos ? jatos.onLoad(perceptlabStart) : perceptlabStart()" if save_hook == "jatos"
             else "perceptlabStart()")
    return f"""<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <title>{html.escape(title)}</title>
{scripts}
    <link rel="stylesheet" href="{JSPSYCH_DIR}/{css}" />
    <script src="timeline.js"></script>
    <script src="{SAVE_JS}"></script>
    <script src="{runtime}"></script>
    <style>
      {pixelated} {{ image-rendering: pixelated; }}
      #perceptlab-missing, .perceptlab-message {{ font-family: sans-serif; max-width: 40em; margin: 3em auto; }}
    </style>
  </head>
  <body>
    <script>
      const missing = [
{check_js}
      ].filter(([name]) => typeof window[name] === "undefined").map(([, file]) => file);
      function perceptlabStart() {{
        const params = new URLSearchParams(window.location.search);
        const subject = params.get("subject") || params.get("PROLIFIC_PID") ||
          (window.jatos && jatos.workerId ? "jatos" + jatos.workerId : null) ||
          "p" + Math.random().toString(36).slice(2, 10);
        {runner}.run({{ subject: subject, seed: params.get("seed") }});
      }}
      if (typeof initJsPsych === "undefined" || missing.length > 0) {{
        document.body.innerHTML =
          '<div id="perceptlab-missing"><h2>jsPsych is not installed in this folder yet</h2>' +
          "<p>Missing: <code>" + missing.join("</code>, <code>") + "</code></p>" +
          "<p>Fill the <code>{JSPSYCH_DIR}/</code> folder next to this page as {readme} explains " +
          "(jsPsych 8 and its plugins), then reload.</p></div>";
      }} else {{
        {start};
      }}
    </script>
  </body>
</html>
"""


def readme_sections(config: dict, layout: str, rows_text: str, command: str) -> str:
    """The README's sections on filling ``jspsych/``, the data (localStorage, recover.html, the download;
    ``rows_text`` describes the rows) and the save hooks, the same for every export; ``command`` is the
    CLI command that exports with ``--jspsych-from``."""
    files = jspsych_files(layout)
    unpkg = "\n".join(f"curl -fL -o {JSPSYCH_DIR}/{f.name} https://unpkg.com/{f.package}@{f.major}/{f.path}"
                      for f in files)
    jsdelivr = "\n".join(f"- `https://cdn.jsdelivr.net/npm/{f.package}@{f.major}/{f.path}` → `{JSPSYCH_DIR}/{f.name}`"
                         for f in files)
    packs = " ".join(dict.fromkeys(f"{f.package}@{f.major}" for f in files))
    copies = "\n".join(f"cp node_modules/{f.package}/{f.path} {JSPSYCH_DIR}/{f.name}" for f in files)
    prefix = config.get("file_prefix", "perceptlab")
    return f"""Filling `{JSPSYCH_DIR}/`
-------------------

The page loads {", ".join(f"`{f.name}`" for f in files)} from `{JSPSYCH_DIR}/` (relative paths, nothing
is fetched at run time). If any is missing, the page says which. From npm (in this folder):

    npm install --no-save {packs}
    {copies.replace(chr(10), chr(10) + "    ")}

or export with `{command} ... --jspsych-from DIR`, DIR being where you ran that
`npm install`. From the official CDN (unpkg):

    mkdir -p {JSPSYCH_DIR}
    {unpkg.replace(chr(10), chr(10) + "    ")}

or the same files from jsDelivr:

{jsdelivr}

Data: nothing is lost when a tab closes
---------------------------------------

- After every trial its row is appended to the browser's `localStorage` under the key
  `perceptlab:<experiment id>:<subject>:<session id>` (a JSON object with a `rows` list). If the tab is
  closed early, the download is blocked or the "where to save?" prompt is dismissed, open
  `{RECOVER_HTML}` in the same browser from the same address (the same folder, or the same web
  server): it lists every stored session (finished or interrupted) with CSV and JSON downloads.
  Firefox gives every file opened from disk its own storage, so there recover.html cannot see what
  index.html stored: serve the folder instead (`python3 -m http.server 8000` in this folder, then
  open http://localhost:8000/index.html and http://localhost:8000/recover.html). Chrome, Chromium and
  Edge share the storage of pages opened from one folder.
- At the end the data are downloaded as CSV (`jsPsych.data.get().localSave('csv', ...)`, file
  `{prefix}_<subject>_<time>.csv`), unless the export was made with `--no-download`.
{textwrap.fill(rows_text, 102, initial_indent='- ', subsequent_indent='  ')}

Save hooks (sending the data to a server)
-----------------------------------------

- `none`: only localStorage and the download.
- `post`: each row, and at the end the whole data, are sent with a plain `fetch` POST to the save URL
  (`Content-Type: application/json`), body
  `{{"id": "<unique id>", "kind": "row"|"final", "experiment_id", "subject", "session_id", "row": {{...}}}}`
  (`"rows": [...]` for the final item). Items wait in a queue in localStorage (key
  `perceptlab-queue:<experiment id>`) until the server answers 2xx; failures are retried (0.5 s,
  doubling, at most every 30 s), and a queue left by a closed tab is sent when the page is opened
  again. The server should store each `id` once (a retry can repeat an item whose answer was lost).
  The thank-you page says "All responses were received by the server" when the queue is empty. A
  save URL on another origin needs CORS headers (`Access-Control-Allow-Origin`, and
  `Access-Control-Allow-Headers: Content-Type`, answering the OPTIONS preflight).
- `jatos`: for a JATOS study (JATOS 3.8 or later). Make this folder the study assets of a
  component whose HTML file is `index.html`; JATOS serves `jatos.js` (loaded by index.html) and the
  experiment starts in `jatos.onLoad`. Each row is added with `jatos.appendResultData` (as a JSON
  line); at the end `jatos.submitResultData` stores the whole data (a JSON array) and `jatos.endStudy()`
  ends the study. The participant id is `subject` from the URL or `jatos<workerId>`.
- `pavlovia`: for Pavlovia, which saves through its jsPsych plugin: copy the Pavlovia plugin for
  jsPsych 8 (from Pavlovia's documentation; it is not on npm) to `{JSPSYCH_DIR}/{PAVLOVIA_FILE}`.
  The timeline starts with `{{type: jsPsychPavlovia, command: "init"}}` and ends with
  `{{type: jsPsychPavlovia, command: "finish"}}`, which uploads the CSV to the project's data. This
  hook cannot be tested offline; PerceptLab has not run it against Pavlovia.

With every hook the localStorage copy and `{RECOVER_HTML}` stay as the fallback.
"""


def hook_text(config: dict) -> str:
    """The save hook in a README's first lines."""
    return {
        "none": "none (the data stay in the browser: the download at the end and recover.html)",
        "post": f"post, to `{config['save_url']}`",
        "jatos": "jatos",
        "pavlovia": "pavlovia",
    }[config["save_hook"]]


def save_settings(save_hook: str, save_url: str | None, download: bool, file_prefix: str = "perceptlab") -> dict:
    """The settings perceptlab-save.js reads from PERCEPTLAB_CONFIG (besides experiment_id and title),
    after :func:`check_save_hook`."""
    check_save_hook(save_hook, save_url)
    return {"save_hook": save_hook, "save_url": save_url, "retry_base_ms": 500, "retry_max_ms": 30000,
            "download": bool(download), "file_prefix": file_prefix}


def experiment_id(name: str, *parts: object) -> str:
    """``name`` made safe for a localStorage key, plus a digest of ``parts`` (what makes the export)."""
    digest = hashlib.sha1(json.dumps([name, *parts]).encode()).hexdigest()[:8]
    return re.sub(r"[^A-Za-z0-9_-]+", "_", name) + "-" + digest
