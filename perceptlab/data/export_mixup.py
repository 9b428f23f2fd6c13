"""A mixup design (pick / slider / choice trials) as a ready-to-run jsPsych 8 experiment, and its data read
back in the canonical trial layout.

Plugins (jsPsych 8): ``@jspsych/plugin-html-keyboard-response`` (instructions, fixation, the choice
trials' image), ``@jspsych/plugin-html-button-response`` (the pick trial: the pair's images are the
buttons; the confidence rating 1-5; choice trials' class buttons), ``@jspsych/plugin-image-slider-response``
(the slider trial: labels class_a / class_b, 0..100 mapped to lambda 0..1), ``@jspsych/plugin-preload``.
The export folder holds ``index.html``, ``timeline.js`` (the settings and the trials as JSON, in the
design's order), the runtime ``perceptlab-mixup.js`` on the shared ``perceptlab-save.js`` (localStorage
after every trial, save hooks, frame-locked fixation and image: see :mod:`perceptlab.data.jspsych_kit`),
``recover.html``, ``images/``, ``design.json``, ``README.md`` and ``jspsych/`` (filled with
``jspsych_from``, else README says how).

Every response trial records ``perceptlab_kind``, ``perceptlab_trial`` (the design trial id),
``stimulus_id`` and ``perceptlab_response`` (chosen stimulus id for pick, lambda for slider, class name
for choice); confidence rows record ``perceptlab_confidence``. :func:`read_mixup_results` turns a jsPsych
CSV/JSON (the download, or a session recover.html saved) or the in-app runner's canonical CSV into one
row per response trial.
"""

from __future__ import annotations

import html
import json
import shutil
from pathlib import Path

import pandas as pd

from perceptlab import __version__
from perceptlab.data.export import image_problem
from perceptlab.data.jspsych_kit import (
    check_save_hook,
    experiment_id,
    files_text,
    hook_text,
    jspsych_files,
    readme_sections,
    response_keys,
    save_settings,
    timeline_js,
    write_runtime,
)
from perceptlab.errors import PerceptLabError
from perceptlab.experiment.design import (
    OUTPUT_COLUMNS,
    Design,
    load_design,
    presentation_order,
    save_design,
)

LAYOUT = "mixup"  # the jsPsych file set of jspsych_kit
PLUGINS = tuple((f.package, f.global_name, f.name) for f in jspsych_files(LAYOUT) if f.global_name)
"""(npm package, global, file in jspsych/) of the scripts index.html loads."""
RUNTIME = "perceptlab-mixup.js"
README = "README.md"
MARKER = "perceptlab-mixup-export.json"
KIND_TASKS = {"pick": "mixup-pick", "slider": "mixup-slider", "choice": "mixup-choice"}


def timeline_trials(design: Design) -> list[dict]:
    """The design's trials in presentation order as the plain records ``timeline.js`` holds."""
    out = []
    for t in presentation_order(design):
        rec = {"id": t.id, "kind": t.kind, "stimulus": t.stimulus, "block": t.block, "phase": t.phase,
               "is_catch": t.is_catch, "true_label": t.true_label}
        if t.kind == "pick":
            rec.update(images=list(t.options["images"]), stimuli=list(t.options["stimuli"]),
                       lambdas=list(t.options["lambdas"]), class_a=t.options["class_a"], class_b=t.options["class_b"])
        else:
            rec.update(image=t.image, class_a=t.options.get("class_a"), class_b=t.options.get("class_b"),
                       confidence=bool(t.options.get("confidence", t.kind == "slider")))
            if t.kind == "choice" and t.options.get("classes"):
                rec["classes"] = list(t.options["classes"])
                rec["keys"] = response_keys(rec["classes"])
        out.append(rec)
    return out


def export_mixup_jspsych(
    design_path: str | Path,
    out_dir: str | Path,
    image_px: int = 168,
    *,
    save_hook: str = "none",
    save_url: str | None = None,
    download: bool = True,
    jspsych_from: str | Path | None = None,
) -> Path:
    """Write a jsPsych 8 experiment for the design at ``design_path`` into ``out_dir``; returns index.html.

    Lab-safe as the library export (:func:`perceptlab.data.export.export_jspsych`): every answered trial
    goes to localStorage at once (``recover.html`` gets interrupted sessions back), the CSV download at
    the end stays unless ``download=False``, ``save_hook`` sends the rows on (``"post"`` to
    ``save_url``, ``"jatos"``, ``"pavlovia"``); fixation and image are frame-locked. ``jspsych_from``
    fills ``jspsych/`` from an npm install."""
    design_path = Path(design_path)
    design = load_design(design_path)
    if isinstance(image_px, bool) or not isinstance(image_px, int) or image_px <= 0:
        raise PerceptLabError(f"--image-px {image_px}", "use a positive size in pixels")
    check_save_hook(save_hook, save_url)
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise PerceptLabError(f"{out} is not empty and is not a previous mixup export (no {MARKER})",
                              "pick a new or empty folder")
    images = _design_images(design)
    for rel in images:
        why = image_problem(design_path.parent / rel)
        if why:
            raise PerceptLabError(f"{design_path.parent / rel}: {why}", "re-write the design with `perceptlab mixup design`")
    _remove_previous_images(out)
    config = _config(design, image_px, save_hook, save_url, download)
    write_runtime(out, _timeline_js(design, config), title=design.name, layout=LAYOUT, save_hook=save_hook,
                  runtime=RUNTIME, runner="PerceptLabMixup", readme=README, pixelated="img", jspsych_from=jspsych_from)
    for rel in images:
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(design_path.parent / rel, out / rel)
    save_design(design, out / "design.json")
    (out / README).write_text(_readme(design, config), encoding="utf-8")
    (out / MARKER).write_text(json.dumps({"design": design.name, "trials": len(design.trials),
                                          "experiment_id": config["experiment_id"], "perceptlab": __version__},
                                         indent=2) + "\n", encoding="utf-8")
    return out / "index.html"


def _design_images(design: Design) -> list[str]:
    """Every image a design shows (trial images and pick options), relative to its folder, once each."""
    return sorted({p for t in design.trials for p in ([t.image] if t.image else []) + list(t.options.get("images") or [])})


def _remove_previous_images(out: Path) -> None:
    """A re-export into a previous mixup export's folder first removes the images that export listed
    (its ``design.json``), so that no stale image of another design stays beside the new ones."""
    old = out / "design.json"
    if not ((out / MARKER).is_file() and old.is_file()):
        return
    try:
        previous = load_design(old)
    except PerceptLabError:
        return  # not readable: leave its files alone rather than guess
    root = out.resolve()
    folders = set()
    for rel in _design_images(previous):
        path = (out / rel).resolve()
        if root in path.parents and path.is_file():
            path.unlink()
            folders.add(path.parent)
    for folder in sorted(folders, key=lambda f: len(f.parts), reverse=True):
        while folder != root and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
            folder = folder.parent


def _config(design: Design, image_px: int, save_hook: str, save_url: str | None, download: bool) -> dict:
    return {
        "experiment_id": experiment_id("mixup-" + design.name, [t.id for t in design.trials], design.order_seed,
                                       design.fixation_ms, design.stimulus_ms),
        "title": design.name,
        "design": design.name,
        "classes": list(design.classes),
        "keys": response_keys(list(design.classes)),
        "fixation_ms": int(design.fixation_ms),
        "stimulus_ms": int(design.stimulus_ms),
        "image_px": image_px,
        "order_seed": design.order_seed,
        **save_settings(save_hook, save_url, download, "perceptlab_mixup"),
        "instructions_html": html.escape(design.instructions),
        "choice_prompt_html": "<p>Which class was it?</p>",
    }


def _timeline_js(design: Design, config: dict) -> str:
    return timeline_js(f"""Generated by PerceptLab {__version__} from design {json.dumps(design.name)} (order_seed {design.order_seed}):
the settings and the trials in presentation order; perceptlab-mixup.js builds the jsPsych trials.
Mixing convention: lambda = share of class_b (slider 0 = all class_a, 100 = all class_b).""", config,
                       "PERCEPTLAB_TRIALS", timeline_trials(design))


def _readme(design: Design, config: dict) -> str:
    kinds = pd.Series([t.kind for t in design.trials]).value_counts().to_dict()
    fx, st = config["fixation_ms"], config["stimulus_ms"]
    return f"""PerceptLab mixup experiment (jsPsych 8)
=======================================

Design `{design.name}` (exported by PerceptLab {__version__}): {", ".join(f"{n} {k} trials" for k, n in kinds.items())},
in the design's order (order_seed {design.order_seed}). Lambda = share of class_b. Experiment id
`{config['experiment_id']}`; save hook {hook_text(config)}; download at the end: {"yes" if config["download"] else "no"}.

- pick: the pair's mixed images are the buttons; the participant picks the one that looks 50/50.
- slider: a fixation cross for {fx} ms, then the image (hidden after {st} ms) with a slider 0..100
  (-> lambda 0..1) labelled class_a / class_b; then a confidence rating 1-5.
- choice: a fixation cross for {fx} ms, the image alone for {st} ms, then one button per class (the
  number keys answer too: {_keys_text(config)}).
The fixation and the image are frame-locked (each ends on the display frame nearest its intended end;
`measured_*_ms` record what the frames showed).

{files_text(RUNTIME, "`design.json`")}

{readme_sections(config, LAYOUT, _ROWS_TEXT, "perceptlab mixup export")}
Read the data (the download, or what recover.html saved) with
`perceptlab mixup analyze FILE --design design.json --out DIR`.
"""


def _keys_text(config: dict) -> str:
    return ", ".join(f"{k} = {c}" for k, c in zip(config["keys"], config["classes"], strict=True) if k)


_ROWS_TEXT = (
    "Rows: one per answered pick / slider / choice trial and per confidence rating, with `subject`, "
    "`session_id`, `experiment_id`, `design`, `perceptlab_kind` (pick, slider, choice, confidence), "
    "`perceptlab_trial` (the design's trial id), `stimulus_id`, `perceptlab_response` (the chosen "
    "stimulus id for pick, lambda for slider, the class name for choice), `perceptlab_lambda` (pick), "
    "`perceptlab_confidence` (1-5), `response` and `rt` (jsPsych's), `response_via` (choice: click or key), "
    "`block`, `phase`, `is_catch`, "
    "`true_label`, `class_a`, `class_b`, `order_seed`, `intended_fixation_ms`, `measured_fixation_ms`, "
    "`intended_stimulus_ms`, `measured_stimulus_ms`, `timestamp_utc`."
)


# --------------------------------------------------------------------------- reading results back


def _read_table(path: Path) -> pd.DataFrame:
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, dict):
                data = data.get("trials", data.get("data", []))
            return pd.DataFrame(data)
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise PerceptLabError(f"{path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise PerceptLabError(f"{path}, line {exc.lineno}: not valid JSON ({exc.msg})") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise PerceptLabError(f"{path}: not a readable CSV ({exc})", "save the data as CSV or JSON") from None


def read_mixup_results(path: str | Path) -> pd.DataFrame:
    """Response trials of a mixup experiment, one row each, in the canonical layout (``participant,
    stimulus, response, rt_ms, trial_index, kind, block, phase, confidence, ...``): from a jsPsych export
    of :func:`export_mixup_jspsych` (CSV or JSON) or from the runner's canonical CSV. ``response`` is the
    chosen stimulus id (pick), lambda (slider, as text) or the class name (choice)."""
    path = Path(path)
    raw = _read_table(path)
    if raw.empty:
        raise PerceptLabError(f"{path}: no rows")
    if "perceptlab_kind" in raw.columns:
        out = _from_jspsych(raw.astype(object).where(raw.notna(), ""), path)
    elif {"participant", "stimulus", "response", "kind"} <= set(raw.columns):
        out = raw.copy()
        out["line"] = range(2, len(out) + 2)
    else:
        raise PerceptLabError(f"{path}: neither a mixup jsPsych export (no perceptlab_kind column) nor a "
                              "canonical trial file (participant, stimulus, response, kind)",
                              "export the experiment with `perceptlab mixup export`, or use the runner's CSV")
    for col in OUTPUT_COLUMNS:
        if col not in out.columns:
            out[col] = ""
    out = out[out["kind"].isin(["pick", "slider", "choice"])].reset_index(drop=True)
    if out.empty:
        raise PerceptLabError(f"{path}: no pick, slider or choice trials", "is this a mixup experiment's data?")
    out["confidence"] = pd.to_numeric(out["confidence"].replace("", None), errors="coerce")
    out["rt_ms"] = pd.to_numeric(out["rt_ms"].replace("", None), errors="coerce")
    out["participant"] = out["participant"].astype(str)
    out["stimulus"] = out["stimulus"].astype(str)
    out["response"] = out["response"].astype(str)
    out.attrs["source"] = str(path)
    return out


_PASSED_ON = ("session_id", "timestamp_utc", "intended_fixation_ms", "measured_fixation_ms", "intended_stimulus_ms",
              "measured_stimulus_ms")


def _from_jspsych(raw: pd.DataFrame, path: Path) -> pd.DataFrame:
    rows, pending = [], {}
    for i, r in enumerate(raw.to_dict("records")):
        line = i + 2 if path.suffix.lower() != ".json" else i + 1
        kind = str(r.get("perceptlab_kind", ""))
        if kind == "confidence":
            key = (str(r.get("subject", "")), str(r.get("perceptlab_trial", "")))
            if key in pending:
                pending.pop(key)["confidence"] = r.get("perceptlab_confidence", "")
            continue
        if kind not in KIND_TASKS:
            continue
        if str(r.get("perceptlab_response", "")) == "":
            raise PerceptLabError(f"{path}, line {line}: a {kind} trial without perceptlab_response",
                                  "the data were not written by a PerceptLab mixup export")
        row = {"participant": str(r.get("subject", "")), "stimulus": str(r.get("stimulus_id", "")),
               "response": str(r["perceptlab_response"]), "rt_ms": r.get("rt", ""), "trial_index": r.get("trial_index", ""),
               "kind": kind, "block": r.get("block", ""), "phase": r.get("phase", ""),
               "is_catch": r.get("is_catch", ""), "true_label": r.get("true_label", ""),
               "order_seed": r.get("order_seed", ""), "confidence": "", "line": line,
               **{k: r.get(k, "") for k in _PASSED_ON}}
        rows.append(row)
        pending[(row["participant"], str(r.get("perceptlab_trial", "")))] = row
    return pd.DataFrame(rows)
