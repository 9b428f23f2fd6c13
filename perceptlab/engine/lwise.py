"""L-WISE's mechanisms on library stimuli (seed 003): difficulty from the robust model's logits, and
enhancement (or the reverse) by projected gradient steps on the true class's logit.

**Difficulty.** The robust model's pre-softmax logits of a stimulus are stored in its ``settings`` under
``"difficulty"``: ``{"model", "weights", "logits": [one per class], "classes": [true classes],
"logit": ground-truth logit}``. The true class(es) of a stimulus (``true_classes``):

- real digits (modes ``mnist``, ``imported``) and enhanced images: their label ``class_a``;
- boundary stimuli with a target pair (a, b): both a and b; the ground-truth logit is the *mean* of the
  two logits (how strongly the model sees either target; both are stored), and a trial that names its
  true label is scored with that class's logit (``logit_for``).

A low ground-truth logit means a hard stimulus.

**Enhancement.** ``enhance`` moves images by PGD *ascent* of the true class's logit within an ε-ball
(L2 or L∞, in [-1, 1] pixel units), or by descent (``harder``). ``enhance_library`` stores the results
as new stimuli of mode ``enhanced`` with their provenance in ``settings["enhancement"]`` (source id, ε,
norm, steps, step size, direction, model) and the zoo's probabilities.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch

from perceptlab.data.images import float_to_uint8
from perceptlab.data.library import Stimulus, StimulusLibrary
from perceptlab.engine.registry import Registry, default_registry, images_to_tensor
from perceptlab.engine.robust import check_norm, logit_objective, pgd
from perceptlab.data.difficulty import difficulty_of, logit_for, true_classes  # noqa: F401  (re-exported)
from perceptlab.errors import PerceptLabError

ROBUST_MODEL = "robust"
ENHANCED_MODE = "enhanced"


@torch.no_grad()
def model_logits(model: torch.nn.Module, images: np.ndarray, device="cpu", batch_size: int = 500) -> np.ndarray:
    """Pre-softmax outputs (N, classes) of ``model`` on uint8 (N, 28, 28) or [-1, 1] images."""
    x = images_to_tensor(images)
    out = [model(x[s : s + batch_size].to(device)).cpu() for s in range(0, len(x), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros((0, 0), dtype=np.float32)


def compute_difficulty(library: StimulusLibrary, ids: Iterable[str] | None = None, registry: Registry | None = None,
                       model: str = ROBUST_MODEL, device="cpu") -> dict[str, float]:
    """Compute and store the robust logits of stimuli (default: all); returns {id: ground-truth logit}.
    Stimuli without a class (no label, no target pair) have no ground truth and are left out."""
    reg = registry or default_registry()
    net = reg.load(model, device, kind="classifier")
    weights = reg.weight_hash(model)
    ids = list(ids) if ids is not None else library.ids()
    records = {i: library.get(i) for i in ids}
    ids = [i for i in ids if records[i].class_a is not None or records[i].class_b is not None]
    if not ids:
        return {}
    images = np.stack([library.image(i) for i in ids])
    logits = model_logits(net, images, device)
    out: dict[str, float] = {}
    values: dict[str, dict] = {}
    for i, row in zip(ids, logits):
        classes = true_classes(records[i])
        gt = float(np.mean([row[c] for c in classes]))
        values[i] = {"difficulty": {"model": model, "weights": weights, "logits": [float(v) for v in row],
                                    "classes": classes, "logit": gt}}
        out[i] = gt
    library.merge_settings(values)
    return out


def enhance(model: torch.nn.Module, images: np.ndarray, labels: Sequence[int], eps: float, norm: str = "l2",
            steps: int = 10, step_size: float | None = None, harder: bool = False, device="cpu") -> np.ndarray:
    """Images moved by projected gradient ascent (``harder``: descent) of the ``labels`` logits within
    ε (``norm``, [-1, 1] pixel units); float32 (N, 1, 28, 28) in [-1, 1]."""
    check_norm(norm)
    if eps < 0 or steps < 0:
        raise PerceptLabError(f"ε {eps} and steps {steps} must be >= 0", "e.g. --eps 2 --steps 10")
    x = images_to_tensor(images).to(device)
    y = torch.as_tensor(np.asarray(labels, dtype=np.int64), device=device)
    out = pgd(model, x, logit_objective(y, -1.0 if harder else 1.0), eps, norm, steps, step_size)
    return out.cpu().numpy()


def to_uint8(x: np.ndarray) -> np.ndarray:
    """[-1, 1] float (N, 1, 28, 28) -> uint8 (N, 28, 28), as the library stores images."""
    return float_to_uint8(np.asarray(x).reshape(-1, 28, 28))


def enhance_library(library: StimulusLibrary, ids: Sequence[str], eps: float, norm: str = "l2", steps: int = 10,
                    step_size: float | None = None, harder: bool = False, registry: Registry | None = None,
                    model: str = ROBUST_MODEL, device="cpu", label: int | None = None) -> list[str]:
    """New library stimuli: each of ``ids`` enhanced (or made harder) on its true class (``label``, else
    the source's ``class_a``); returns the new ids. Their zoo probabilities and robust difficulty are
    stored with them."""
    from perceptlab.engine.generate import Scorer  # noqa: PLC0415  (imports the sampler stack)

    reg = registry or default_registry()
    if not ids:
        raise PerceptLabError("no stimuli to enhance", "select stimuli or pass --ids")
    net = reg.load(model, device, kind="classifier")
    sources = {i: library.get(i) for i in ids}
    labels = [label if label is not None else true_classes(sources[i])[0] for i in ids]
    images = np.stack([library.image(i) for i in ids])
    moved = to_uint8(enhance(net, images, labels, eps, norm, steps, step_size, harder, device))
    judge = "judge" if "judge" in reg.names("judge") else None
    probs, judged = Scorer(reg, torch.device(device), judge)(moved)
    hashes = {n: reg.weight_hash(n) for n in [*probs, model]}
    direction = "harder" if harder else "enhance"
    records = []
    for k, (i, y) in enumerate(zip(ids, labels)):
        src = sources[i]
        p = {n: v[k].tolist() for n, v in probs.items()}
        records.append(Stimulus(
            mode=ENHANCED_MODE, class_a=int(y), classifier=model, steps=steps,
            settings={"enhancement": {"source": i, "source_mode": src.mode, "eps": eps, "norm": norm,
                                      "steps": steps, "step_size": step_size if step_size is not None else 2.5 * eps / max(1, steps),
                                      "direction": direction, "model": model, "label": int(y),
                                      "source_pair": [src.class_a, src.class_b]}},
            weight_hashes=hashes, probs=p, p_a=p[model][int(y)] if model in p else None,
            judge=None if judged is None else float(judged[k]),
            tags=[f"{direction}:eps{eps:g}", f"source:{i}"],
            note=f"{direction} of {i}: {norm} ε={eps:g}, {steps} steps on class {y}",
        ))
    new_ids = library.add(records, moved)
    compute_difficulty(library, new_ids, reg, model, device)
    return new_ids


def zoo_true_probability(images: np.ndarray, labels: np.ndarray, names: Sequence[str], registry: Registry | None = None,
                         device="cpu") -> dict[str, float]:
    """Mean probability of the true class under each named classifier (or independent observer)."""
    reg = registry or default_registry()
    x = images_to_tensor(images)
    y = torch.as_tensor(np.asarray(labels, dtype=np.int64))
    out = {}
    for n in names:
        m = reg.load(n, device)
        with torch.no_grad():
            p = torch.cat([torch.softmax(m(x[s : s + 500].to(device)), 1).cpu() for s in range(0, len(x), 500)])
        out[n] = float(p.gather(1, y.view(-1, 1)).mean())
    return out


def enhancement_table(images: np.ndarray, labels: np.ndarray, eps_list: Sequence[float], norm: str, steps: int,
                      registry: Registry | None = None, model: str = ROBUST_MODEL, device="cpu",
                      harder: bool = False) -> dict:
    """{"zoo": names, "rows": [{"eps", "probs": {name: mean true-class probability}}]} for images
    enhanced at each ε (ε = 0: unmodified); every builtin classifier of the registry is measured, and the
    independent observers (never used to make the images), listed in "observers"."""
    reg = registry or default_registry()
    entries = reg.entries()
    zoo = [n for n, e in entries.items() if e.kind == "classifier" and e.builtin]
    observers = [n for n, e in entries.items() if e.kind == "observer" and e.builtin]
    names = zoo + observers
    net = reg.load(model, device, kind="classifier")
    rows = []
    for eps in eps_list:
        x = enhance(net, images, labels, eps, norm, steps, harder=harder, device=device)
        x = to_uint8(x)  # measured as stored: 8-bit PNG pixels
        rows.append({"eps": float(eps), "probs": zoo_true_probability(x, labels, names, reg, device)})
    return {"zoo": names, "observers": observers, "norm": norm, "steps": steps, "model": model, "harder": harder, "n": int(len(labels)),
            "rows": rows}
