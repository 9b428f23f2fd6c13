"""Mixup stimuli (seeds/004): two digits of different classes mixed pixel-wise on a grid of coefficients.

Convention, used everywhere in PerceptLab: for a source pair (x_a of class ``class_a``, x_b of class
``class_b``) and a coefficient lambda in [0, 1],

    x = (1 - lambda) * x_a + lambda * x_b          (lambda = the share of class_b)

so lambda 0 is the class_a digit, 1 the class_b digit and 0.5 the even mix. The mix is computed on pixel
intensities in [0, 1] and rounded to 8-bit.

:func:`make_mixup` draws the source digits (by default from the fixed MNIST hold-out, which no shipped
model trained on) and builds every (pair, lambda) image; :func:`add_to_library` stores them as library
stimuli of mode ``mixup`` with their provenance in ``settings["mixup"]`` (lambda, the pair id, the source
digits' indices and their source) and the tags ``mixup`` and ``mixup-pair:<pair id>``;
:func:`mixup_table` reads them back. No torch here: the zoo probabilities are passed in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from perceptlab.data.images import float_to_uint8
from perceptlab.data.library import Stimulus, StimulusLibrary
from perceptlab.data.mnist import MnistData
from perceptlab.errors import PerceptLabError

MODE = "mixup"
TAG = "mixup"
PAIR_TAG = "mixup-pair:"
CONVENTION = "x = (1 - lambda) * x_a + lambda * x_b (lambda = share of class_b)"
DEFAULT_LAMBDAS = tuple(round(k / 10, 2) for k in range(11))
TABLE_COLUMNS = ("stimulus", "pair", "class_a", "class_b", "lambda", "source_a", "source_b", "file")


@dataclass
class MixupSet:
    """Mixed images (uint8 (N, 28, 28)) and one row per image: ``pair`` (id of the source pair),
    ``class_a``, ``class_b``, ``lambda``, ``source_a`` / ``source_b`` (indices into the MNIST data)."""

    images: np.ndarray
    table: pd.DataFrame
    source: str
    seed: int

    def __len__(self) -> int:
        return len(self.table)


def check_lambdas(lambdas: Sequence[float]) -> list[float]:
    values = sorted({round(float(v), 6) for v in lambdas})
    if len(values) < 2 or values[0] < 0 or values[-1] > 1:
        raise PerceptLabError(f"mixing coefficients {list(lambdas)}",
                              "give two or more distinct values in [0, 1], e.g. 0,0.1,...,1")
    return values


def parse_pairs(text: str | None, n_classes: int = 10) -> list[tuple[int, int]] | None:
    """``"3-8,1-7"`` -> [(3, 8), (1, 7)]; None/empty -> None (all ordered pairs a < b)."""
    if not text:
        return None
    out = []
    for part in text.split(","):
        try:
            a, b = (int(v) for v in part.strip().split("-"))
        except ValueError:
            raise PerceptLabError(f"pair {part.strip()!r} is not CLASS_A-CLASS_B", "write pairs like 3-8,1-7") from None
        if a == b or not (0 <= a < n_classes and 0 <= b < n_classes):
            raise PerceptLabError(f"pair {part.strip()!r}: two different classes 0..{n_classes - 1} are needed")
        out.append((a, b))
    return out


def mix(x_a: np.ndarray, x_b: np.ndarray, lam: float) -> np.ndarray:
    """uint8 images mixed as (1 - lam) * x_a + lam * x_b (the PerceptLab convention)."""
    a = np.asarray(x_a, dtype=np.float64)
    b = np.asarray(x_b, dtype=np.float64)
    return np.clip(np.rint((1.0 - lam) * a + lam * b), 0, 255).astype(np.uint8)


def make_mixup(
    data: MnistData,
    pairs: Sequence[tuple[int, int]] | None = None,
    per_pair: int = 2,
    lambdas: Sequence[float] = DEFAULT_LAMBDAS,
    seed: int = 0,
    digits: str = "holdout",
) -> MixupSet:
    """``per_pair`` source pairs for each category pair (default: every a < b), each mixed at every
    lambda. ``digits``: ``holdout`` (default), ``train`` or ``all`` MNIST digits as sources."""
    if digits not in ("holdout", "train", "all"):
        raise PerceptLabError(f"unknown digit source {digits!r}", "use holdout, train or all")
    if per_pair < 1:
        raise PerceptLabError(f"--per-pair {per_pair}", "use at least one source pair per category pair")
    lams = check_lambdas(lambdas)
    n_classes = int(data.labels.max()) + 1 if len(data) else 0
    if pairs is None:
        pairs = [(a, b) for a in range(n_classes) for b in range(a + 1, n_classes)]
    mask = {"holdout": data.holdout, "train": ~data.holdout, "all": np.ones(len(data), bool)}[digits]
    if len(mask) != len(data):  # data without a hold-out mask
        mask = np.ones(len(data), bool)
    pool = np.flatnonzero(mask)
    rng = np.random.default_rng(seed)
    rows, images = [], []
    for a, b in pairs:
        ia = pool[data.labels[pool] == a]
        ib = pool[data.labels[pool] == b]
        if len(ia) < per_pair or len(ib) < per_pair:
            raise PerceptLabError(f"pair {a}-{b}: only {len(ia)} / {len(ib)} {digits} digits of class {a} / {b}",
                                  "lower --per-pair or use --digits all")
        for k, (sa, sb) in enumerate(zip(rng.choice(ia, per_pair, replace=False), rng.choice(ib, per_pair, replace=False))):
            pid = f"{a}-{b}-{k:02d}"
            xa, xb = float_to_uint8(data.images[sa, 0]), float_to_uint8(data.images[sb, 0])  # only the digits mixed
            for lam in lams:
                images.append(mix(xa, xb, lam))
                rows.append({"pair": pid, "class_a": a, "class_b": b, "lambda": lam,
                             "source_a": int(sa), "source_b": int(sb)})
    table = pd.DataFrame(rows, columns=["pair", "class_a", "class_b", "lambda", "source_a", "source_b"])
    return MixupSet(np.stack(images) if images else np.zeros((0, 28, 28), np.uint8), table, data.source, seed)


def add_to_library(
    library: StimulusLibrary,
    mixset: MixupSet,
    probs: Mapping[str, np.ndarray] | None = None,
    weight_hashes: Mapping[str, str] | None = None,
) -> list[str]:
    """Store the mixed images as library stimuli (mode ``mixup``); ``probs`` maps zoo model names to
    (N, 10) probabilities (the first model gives ``p_a`` / ``p_b``). Returns the new ids."""
    probs = {k: np.asarray(v) for k, v in (probs or {}).items()}
    first = next(iter(probs), None)
    records = []
    for i, row in enumerate(mixset.table.itertuples(index=False)):
        p = {name: v[i].tolist() for name, v in probs.items()}
        records.append(Stimulus(
            mode=MODE,
            class_a=int(row.class_a),
            class_b=int(row.class_b),
            classifier=first,
            seed=mixset.seed,
            settings={"mixup": {"lambda": float(row[3]), "pair": row.pair, "source_a": int(row.source_a),
                                "source_b": int(row.source_b), "digits": mixset.source, "convention": CONVENTION}},
            weight_hashes=dict(weight_hashes or {}),
            probs=p,
            p_a=float(p[first][row.class_a]) if first else None,
            p_b=float(p[first][row.class_b]) if first else None,
            tags=[TAG, f"{PAIR_TAG}{row.pair}"],
        ))
    return library.add(records, mixset.images)


def mixup_table(library: StimulusLibrary) -> pd.DataFrame:
    """One row per mixup stimulus of the library (columns ``TABLE_COLUMNS``, ``file`` relative to the
    library folder), in library order."""
    rows = []
    for rec in library.records(mode=MODE):
        info = rec.settings.get("mixup") or {}
        if "lambda" not in info:
            raise PerceptLabError(f"{library.path}: stimulus {rec.id} has mode mixup but no settings.mixup.lambda",
                                  "re-create it with `perceptlab mixup make`")
        rows.append({"stimulus": rec.id, "pair": str(info.get("pair", f"{rec.class_a}-{rec.class_b}")),
                     "class_a": rec.class_a, "class_b": rec.class_b, "lambda": float(info["lambda"]),
                     "source_a": info.get("source_a"), "source_b": info.get("source_b"),
                     "file": f"images/{rec.id}.png"})
    if not rows:
        raise PerceptLabError(f"the library {library.path} holds no mixup stimuli", "make some with `perceptlab mixup make`")
    return pd.DataFrame(rows, columns=list(TABLE_COLUMNS))


def stimulus_table(library: StimulusLibrary) -> pd.DataFrame:
    """Every stimulus of the library in the layout of :func:`mixup_table` (lambda NaN for stimuli that are
    not mixup images, pair ``a-b`` from their target pair): what relabelings of boundary stimuli need."""
    rows = []
    for rec in library.records():
        info = rec.settings.get("mixup") or {} if rec.mode == MODE else {}
        pair = f"{'' if rec.class_a is None else rec.class_a}-{'' if rec.class_b is None else rec.class_b}"
        rows.append({"stimulus": rec.id, "pair": str(info.get("pair", pair)), "class_a": rec.class_a,
                     "class_b": rec.class_b, "lambda": float(info.get("lambda", np.nan)),
                     "source_a": info.get("source_a"), "source_b": info.get("source_b"), "file": f"images/{rec.id}.png"})
    if not rows:
        raise PerceptLabError(f"the library {library.path} holds no stimuli")
    return pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
