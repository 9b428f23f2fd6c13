"""Experiment designs: the ``perceptlab-design/1`` JSON file that the in-app runner, the jsPsych exports
and the analyses share.

A design lists trials of three kinds:

- ``choice``: fixation, the image, then a separate choice screen with one button per class (number keys
  too); ``options`` may hold ``"classes"`` (a subset of the design's classes shown as buttons).
- ``pick`` (mixup 50/50 point): ``options`` = ``{"images": [...], "stimuli": [...], "lambdas": [...],
  "class_a": str, "class_b": str}``; the participant picks the image that looks half one, half the other.
- ``slider`` (mixup coefficient): ``options`` = ``{"class_a": str, "class_b": str, "lambda": float,
  "confidence": bool}``; a slider from 0 (all class_a) to 1 (all class_b), then a confidence rating 1-5.

Every trial has an ``id`` unique in the design, a ``block`` number, a ``phase`` (``main``, ``train`` with
feedback in a learning experiment, ``test``), the ``stimulus`` id it records, the ``image`` path relative
to the design file (or null), ``is_catch`` / ``true_label`` (catch trials are real digits with known
labels), and ``feedback`` (show correct/incorrect after the answer). ``order_seed`` and ``shuffle`` make
the presentation order reproducible: :func:`presentation_order` returns it, and runners record the seed
on every output row.

An optional ``adaptive`` block (``{"method": "bald", "n_trials": int, "pool": [stimulus ids]}``) asks the
runner to choose the next stimulus from the pool one trial at a time instead of following ``trials``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from perceptlab.errors import PerceptLabError

FORMAT = "perceptlab-design/1"
KINDS = ("choice", "pick", "slider")
PHASES = ("main", "train", "test")
SHUFFLES = ("none", "all", "within_block")
DEFAULT_TIMING = {"fixation_ms": 300, "stimulus_ms": 200}

# Columns every runner and export writes, in this order (DESIGN.md's canonical layout plus the design's).
OUTPUT_COLUMNS = (
    "participant", "stimulus", "response", "rt_ms", "trial_index", "is_catch", "true_label", "kind",
    "block", "phase", "feedback", "correct", "order_seed", "intended_fixation_ms", "measured_fixation_ms",
    "intended_stimulus_ms", "measured_stimulus_ms", "confidence", "session_id", "timestamp_utc",
)


@dataclass
class DesignTrial:
    id: str
    stimulus: str
    kind: str = "choice"
    block: int = 0
    phase: str = "main"
    image: str | None = None
    is_catch: bool = False
    true_label: str | None = None
    feedback: bool = False
    options: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Design:
    classes: list[str]
    trials: list[DesignTrial]
    name: str = "experiment"
    library: str | None = None
    order_seed: int = 0
    shuffle: str = "all"
    timing: dict = field(default_factory=lambda: dict(DEFAULT_TIMING))
    break_every: int = 0
    instructions: str = ""
    synthetic: bool = False
    adaptive: dict | None = None

    def to_dict(self) -> dict:
        out = {"format": FORMAT}
        out.update(asdict(self))
        return out

    @property
    def fixation_ms(self) -> float:
        return float(self.timing.get("fixation_ms", DEFAULT_TIMING["fixation_ms"]))

    @property
    def stimulus_ms(self) -> float:
        return float(self.timing.get("stimulus_ms", DEFAULT_TIMING["stimulus_ms"]))


def validate(design: Design, where: str = "design", base: Path | None = None) -> None:
    """Raise :class:`PerceptLabError` naming the trial and the fix for the first problem found.

    With ``base`` (the design file's folder) the images must exist too."""
    if not design.classes or len(set(design.classes)) != len(design.classes):
        raise PerceptLabError(f"{where}: 'classes' must list distinct class names", "e.g. [\"0\", \"1\", ...]")
    if design.shuffle not in SHUFFLES:
        raise PerceptLabError(f"{where}: shuffle {design.shuffle!r} is not one of {', '.join(SHUFFLES)}")
    for key in ("fixation_ms", "stimulus_ms"):
        value = design.timing.get(key, DEFAULT_TIMING[key])
        if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise PerceptLabError(f"{where}: timing.{key} must be a number of milliseconds >= 0, not {value!r}")
    if design.break_every < 0:
        raise PerceptLabError(f"{where}: break_every must be >= 0 (0 = no breaks)")
    if not design.trials and not design.adaptive:
        raise PerceptLabError(f"{where}: the design has no trials", "add trials or an 'adaptive' block")
    classes = set(design.classes)
    seen: set[str] = set()
    for i, t in enumerate(design.trials):
        at = f"{where}: trial {i + 1} (id {t.id!r})"
        if t.id in seen:
            raise PerceptLabError(f"{at}: the id is used twice", "give every trial its own id")
        seen.add(t.id)
        if t.kind not in KINDS:
            raise PerceptLabError(f"{at}: kind {t.kind!r} is not one of {', '.join(KINDS)}")
        if t.phase not in PHASES:
            raise PerceptLabError(f"{at}: phase {t.phase!r} is not one of {', '.join(PHASES)}")
        if t.true_label is not None and t.kind == "choice" and str(t.true_label) not in classes:
            raise PerceptLabError(f"{at}: true_label {t.true_label!r} is not a class of the design")
        if t.is_catch and t.true_label is None:
            raise PerceptLabError(f"{at}: a catch trial needs its true_label")
        if (t.feedback or t.is_catch) and t.kind == "choice" and t.true_label is None:
            raise PerceptLabError(f"{at}: feedback needs the trial's true_label")
        if t.kind == "choice":
            sub = t.options.get("classes")
            if sub is not None and not set(map(str, sub)) <= classes:
                raise PerceptLabError(f"{at}: options.classes names classes the design does not have")
            images = [t.image] if t.image else []
        elif t.kind == "pick":
            images = list(t.options.get("images") or [])
            stimuli = list(t.options.get("stimuli") or [])
            if len(images) < 2 or len(stimuli) != len(images):
                raise PerceptLabError(f"{at}: a pick trial needs options.images and options.stimuli of equal "
                                      "length (two or more)")
            _check_pair(at, t.options)
        else:  # slider
            _check_pair(at, t.options)
            lam = t.options.get("lambda")
            if lam is not None and not (isinstance(lam, (int, float)) and 0.0 <= lam <= 1.0):
                raise PerceptLabError(f"{at}: options.lambda must be in [0, 1], not {lam!r}")
            images = [t.image] if t.image else []
        if base is not None:
            for rel in images:
                if not (base / rel).is_file():
                    raise PerceptLabError(f"{at}: image {rel} is missing in {base}",
                                          "images are relative to the design file's folder")
    if design.adaptive is not None:
        ad = design.adaptive
        if not isinstance(ad, dict) or not ad.get("pool") or int(ad.get("n_trials", 0)) < 1:
            raise PerceptLabError(f"{where}: 'adaptive' needs a non-empty 'pool' of stimulus ids and n_trials >= 1")


def _check_pair(at: str, options: dict) -> None:
    a, b = options.get("class_a"), options.get("class_b")
    if a is None or b is None or str(a) == str(b):
        raise PerceptLabError(f"{at}: options.class_a and options.class_b must name two different classes")


def design_from_dict(data: dict, where: str = "design") -> Design:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise PerceptLabError(f"{where}: not a PerceptLab design (expected \"format\": \"{FORMAT}\")")
    try:
        trials = [DesignTrial(**{k: v for k, v in t.items()}) for t in data.get("trials", [])]
        kwargs = {k: v for k, v in data.items() if k not in ("format", "trials")}
        design = Design(trials=trials, **kwargs)
    except TypeError as exc:
        raise PerceptLabError(f"{where}: unexpected or missing field ({exc})") from exc
    design.classes = [str(c) for c in design.classes]
    for t in design.trials:
        t.stimulus, t.id = str(t.stimulus), str(t.id)
        t.true_label = None if t.true_label is None else str(t.true_label)
    return design


def load_design(path: str | Path) -> Design:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise PerceptLabError(f"{path}: no such design file") from exc
    except json.JSONDecodeError as exc:
        raise PerceptLabError(f"{path}, line {exc.lineno}: not valid JSON ({exc.msg})") from exc
    design = design_from_dict(data, str(path))
    validate(design, str(path), base=path.parent)
    return design


def save_design(design: Design, path: str | Path) -> Path:
    """Write atomically (a temporary file renamed over the target)."""
    path = Path(path)
    validate(design, str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(design.to_dict(), indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def presentation_order(design: Design) -> list[DesignTrial]:
    """The trials in the order a participant sees them: seeded by ``order_seed``; ``within_block`` keeps
    blocks (and phases within them: train before test) in order and shuffles inside each."""
    trials = list(design.trials)
    if design.shuffle == "none":
        return trials
    rng = np.random.default_rng(design.order_seed)
    if design.shuffle == "all":
        return [trials[i] for i in rng.permutation(len(trials))]
    phase_rank = {p: i for i, p in enumerate(("train", "main", "test"))}
    groups: dict[tuple[int, int], list[DesignTrial]] = {}
    for t in trials:
        groups.setdefault((t.block, phase_rank[t.phase]), []).append(t)
    out: list[DesignTrial] = []
    for key in sorted(groups):
        g = groups[key]
        out.extend(g[i] for i in rng.permutation(len(g)))
    return out
