"""L-WISE curriculum designs (seed 003, mechanism 3): a learning experiment in the perceptlab-design/1 format.

Train phase: ``len(eps)`` blocks of ``per_block`` choice trials with feedback after each choice. The
training digits are ordered easy → hard by the robust model's ground-truth logit of the unmodified
digit (the easiest ``len(eps) * per_block`` are used); block b shows the next ``per_block`` of them
enhanced at ``eps[b]`` (decreasing block by block; ε = 0 is the unmodified digit), and within a block
the trials are ordered by the enhanced image's logit (highest first). Test phase (the last block): unmodified held-out digits, no feedback.

The shuffled control has exactly the same train and test trials; the train trials are dealt to the
train blocks in a random (seeded) order, so each control block mixes all ε. Both designs keep their
presentation order fixed (``shuffle: none``), which is what the curriculum is.

Each train trial's ``options`` hold ``eps``, ``norm``, ``source`` (the unmodified stimulus) and
``condition``; the designs' names are ``<name>-curriculum`` and ``<name>-control``.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from perceptlab import CLASSES
from perceptlab.data.library import StimulusLibrary
from perceptlab.errors import PerceptLabError
from perceptlab.experiment.design import Design, DesignTrial, save_design, validate

CONDITIONS = ("curriculum", "control")


@dataclass
class CurriculumSpec:
    eps: list[float] = field(default_factory=lambda: [6.0, 4.0, 2.0, 0.0])
    norm: str = "l2"
    steps: int = 10
    per_block: int = 20
    seed: int = 0
    model: str = "robust"
    name: str = "lwise"

    def check(self) -> "CurriculumSpec":
        if not self.eps or any(e < 0 for e in self.eps):
            raise PerceptLabError(f"curriculum ε list {self.eps} is empty or has a negative value",
                                  "e.g. --eps 3,2,1,0 (one ε per train block)")
        if any(b > a for a, b in zip(self.eps, self.eps[1:])):
            raise PerceptLabError(f"curriculum ε list {self.eps} does not decrease block by block",
                                  "list the ε values from the easiest block to the hardest, e.g. 3,2,1,0")
        if self.per_block < 1 or self.steps < 0:
            raise PerceptLabError("per_block must be >= 1 and steps >= 0")
        return self

    def to_dict(self) -> dict:
        return asdict(self)


def _label(rec) -> int:
    if rec.class_a is None:
        raise PerceptLabError(f"stimulus {rec.id} has no label (class_a)", "curricula need labelled digits")
    return int(rec.class_a)


def build_curriculum(library: StimulusLibrary, train_ids: Sequence[str], test_ids: Sequence[str],
                     spec: CurriculumSpec | None = None, classes: Sequence[str] = CLASSES, registry=None,
                     device="cpu") -> tuple[Design, Design]:
    """(curriculum design, shuffled control design). Enhanced training images are added to ``library``
    (mode ``enhanced``, provenance in their settings); every stimulus used gets its difficulty."""
    from perceptlab.engine.lwise import compute_difficulty, difficulty_of, enhance_library  # noqa: PLC0415

    spec = (spec or CurriculumSpec()).check()
    n_blocks = len(spec.eps)
    need = n_blocks * spec.per_block
    if len(train_ids) < need:
        raise PerceptLabError(f"{len(train_ids)} training stimuli for {n_blocks} blocks of {spec.per_block}",
                              f"give at least {need} training ids or lower --per-block")
    if not test_ids:
        raise PerceptLabError("no test stimuli", "give the unmodified digits of the test phase")
    if set(train_ids) & set(test_ids):
        raise PerceptLabError("the train and test stimuli overlap", "test on digits the participant never trained on")
    classes = [str(c) for c in classes]
    clarity = compute_difficulty(library, [*train_ids, *test_ids], registry, spec.model, device)
    pool = sorted(train_ids, key=lambda i: -clarity[i])[:need]  # the set ordered easy -> hard
    train: list[DesignTrial] = []
    for b, eps in enumerate(spec.eps):
        sources = pool[b * spec.per_block : (b + 1) * spec.per_block]
        shown = (enhance_library(library, sources, eps, spec.norm, spec.steps, registry=registry, model=spec.model,
                                 device=device) if eps > 0 else sources)
        recs = [library.get(i) for i in shown]
        order = sorted(range(len(recs)), key=lambda k: -(difficulty_of(recs[k]) or 0.0))
        for k in order:
            rec = recs[k]
            train.append(DesignTrial(
                id=f"train-{b}-{sources[k]}", stimulus=rec.id, kind="choice", block=b, phase="train",
                image=f"images/{rec.id}.png", true_label=classes[_label(rec)], feedback=True,
                options={"eps": float(eps), "norm": spec.norm, "source": sources[k]}))
    test = []
    for i in test_ids:
        rec = library.get(i)
        test.append(DesignTrial(id=f"test-{i}", stimulus=i, kind="choice", block=n_blocks, phase="test",
                                image=f"images/{i}.png", true_label=classes[_label(rec)], feedback=False,
                                options={"eps": 0.0, "source": i}))
    rng = np.random.default_rng(spec.seed)
    test = [test[k] for k in rng.permutation(len(test))]
    dealt = [train[k] for k in rng.permutation(len(train))]
    control = [DesignTrial(**{**asdict(t), "block": pos // spec.per_block}) for pos, t in enumerate(dealt)]
    designs = []
    for condition, trials in zip(CONDITIONS, (train, control)):
        trials = [DesignTrial(**{**asdict(t), "options": {**t.options, "condition": condition}})
                  for t in [*trials, *test]]
        d = Design(classes=classes, trials=trials, name=f"{spec.name}-{condition}", library=str(library.path),
                   order_seed=spec.seed, shuffle="none",
                   instructions=("A digit flashes after a cross. Click the digit you saw. While you learn, "
                                 "you are told after each answer whether it was right; in the last part you are not."))
        validate(d, d.name)
        designs.append(d)
    return designs[0], designs[1]


def condition_of(design: Design) -> str:
    """``curriculum`` or ``control`` (from the trials' options, else the design's name)."""
    for t in design.trials:
        c = t.options.get("condition")
        if c:
            return str(c)
    return "control" if design.name.endswith("control") else "curriculum"


def write_design_folder(design: Design, library: StimulusLibrary, out_dir: str | Path) -> Path:
    """``out_dir/design.json`` with the design's images copied to ``out_dir/images/`` (paths in the
    design are relative to it): the file the app's experiment runner opens. Returns the design path."""
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    for t in design.trials:
        if t.image:
            shutil.copyfile(library.image_path(t.stimulus), out / t.image)
    return save_design(design, out / "design.json")
