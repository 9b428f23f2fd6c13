"""Acceptance filters: a verdict, with the reason, for every generated image.

A verdict is a pure function of the stored classifier probabilities and judge score, so a batch (or a
whole library) can be re-judged with new thresholds without sampling again. numpy only.

- ``paper`` (DESIGN §2): uncertainty: the two largest probabilities are the pair and both exceed
  ``min_prob`` (0.4); controversial: classifier 1's argmax is a and classifier 2's argmax is b, each
  with max probability > ``min_confidence`` (0.9). Both: judge score > ``min_judge`` (0.5).
- ``percentile`` (varEmotion, seeds/002 §III-C): the pair's probabilities exceed the ``percentile``-th
  percentile of their distribution over a reference image set (``percentile_thresholds``; for
  controversial mode p_a from classifier 1 and p_b from classifier 2); judge as above.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np

from perceptlab.analysis.strokes import stroke_reasons, stroke_stats
from perceptlab.analysis.transfer import top2_on_pair
from perceptlab.errors import PerceptLabError
from perceptlab.names import OBSERVERS

FILTER_KINDS = ("paper", "percentile")
N_CLASSES = 10


@dataclass
class FilterSettings:
    """Thresholds of the acceptance filter (every one editable); round-trips through JSON.

    ``min_judge = None`` skips the judge check. ``thresholds`` (percentile filter) maps a classifier
    name to its 10 per-class thresholds, as computed by ``percentile_thresholds``. ``agree`` = k > 0:
    at least k zoo classifiers other than the guides (``agree_with``, default: every one scored) must
    also put the pair in their top two; 0 = off (the paper). ``strokes``: the image must pass the
    clean-stroke check (``analysis.strokes``); off in the paper.
    """

    kind: str = "paper"
    min_prob: float = 0.4
    require_top_two: bool = True
    min_confidence: float = 0.9
    min_judge: float | None = 0.5
    percentile: float = 75.0
    thresholds: dict[str, list[float]] = field(default_factory=dict)
    agree: int = 0
    agree_with: list[str] = field(default_factory=list)
    strokes: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FilterSettings:
        """Inverse of ``to_dict``; unknown keys are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def describe(self) -> str:
        """One line for logs: 'paper thresholds, judge > 0.5, zoo agreement 2, clean strokes'."""
        parts = ["paper thresholds" if self.kind == "paper" else f"{self.percentile:g}th-percentile thresholds"]
        parts.append("no judge check" if self.min_judge is None else f"judge > {self.min_judge:g}")
        if self.agree:
            parts.append(f"zoo agreement {self.agree}" + (f" of {', '.join(self.agree_with)}" if self.agree_with else ""))
        if self.strokes:
            parts.append("clean strokes")
        return ", ".join(parts)

    def validate(self) -> FilterSettings:
        """Raise a PerceptLabError on a bad value; returns self."""
        if self.kind not in FILTER_KINDS:
            raise PerceptLabError(f"unknown filter {self.kind!r}", f"use one of: {', '.join(FILTER_KINDS)}")
        for name, value, fix in (
            ("min prob", self.min_prob, "use a probability in [0, 1] (paper: 0.4)"),
            ("min confidence", self.min_confidence, "use a probability in [0, 1] (paper: 0.9)"),
        ):
            if not (isinstance(value, (int, float)) and 0 <= value <= 1):  # NaN fails both comparisons
                raise PerceptLabError(f"{name} = {value}", fix)
        if self.min_judge is not None and not (self.min_judge <= 1 and self.min_judge == self.min_judge):
            raise PerceptLabError(f"min judge = {self.min_judge}", "use a score below 1 (paper: 0.5), or none")
        if not 0 <= self.percentile <= 100:
            raise PerceptLabError(f"percentile {self.percentile} is outside 0-100", "use e.g. 75 (varEmotion)")
        for name, th in self.thresholds.items():
            if len(th) != N_CLASSES:
                raise PerceptLabError(f"thresholds for {name!r} have {len(th)} values", "give one per class (10)")
        if not (isinstance(self.agree, int) and self.agree >= 0):
            raise PerceptLabError(f"agree = {self.agree}", "use a whole number of zoo classifiers >= 0 (0 = off)")
        observers = sorted(set(self.agree_with) & set(OBSERVERS))
        if observers:
            raise PerceptLabError(
                f"the zoo-agreement filter names the independent observer(s) {', '.join(observers)}",
                "observers never filter: name zoo classifiers (see 'perceptlab models', kind classifier)",
            )
        return self


def agreement_panel(scored: Sequence[str], guides: Sequence[str], settings: FilterSettings) -> list[str]:
    """The classifiers whose top two the zoo-agreement filter counts: ``settings.agree_with`` (or every
    ``scored`` name) minus the guides and minus the independent observers, which never filter."""
    names = settings.agree_with or scored
    return [n for n in names if n not in guides and n not in OBSERVERS]


def _agreement_reasons(
    a: int, b: int, others: Mapping[str, np.ndarray] | None, guides: Sequence[str], settings: FilterSettings
) -> list[str]:
    if settings.agree <= 0:
        return []
    others = others or {}
    panel = agreement_panel(list(others), guides, settings)
    missing = [n for n in panel if n not in others]
    if missing or len(panel) < settings.agree:
        raise PerceptLabError(
            f"the zoo-agreement filter needs {settings.agree} classifier(s) besides the guides; "
            + (f"no probabilities of {', '.join(missing)}" if missing else f"only {len(panel)} scored ({', '.join(panel)})"),
            "lower --agree, or name scored zoo classifiers with --agree-with",
        )
    hits = [n for n in panel if top2_on_pair(others[n], a, b)]
    if len(hits) >= settings.agree:
        return []
    return [f"{len(hits)} of {len(panel)} other zoo classifiers put {a}-{b} in their top two, fewer than {settings.agree}"]


REJECTION_KINDS = {  # the part of the filter a reason comes from, by its wording (see the reason texts here)
    "zoo agreement": ("other zoo classifiers",),
    "stroke check": ("speck", "enclosed loops", "ink pixels", "px wide", "filled area"),
    "judge": ("judge",),
}


def rejection_kinds(reason: str) -> list[str]:
    """The parts of the filter that a verdict's reason names: "zoo agreement", "stroke check", "judge"
    and "thresholds" (the guide's own probabilities), each at most once."""
    kinds = []
    for clause in filter(None, (c.strip() for c in reason.split(";"))):
        kind = next((k for k, words in REJECTION_KINDS.items() if any(w in clause for w in words)), "thresholds")
        if kind not in kinds:
            kinds.append(kind)
    return kinds


@dataclass(frozen=True)
class Verdict:
    """Whether an image passed and, if not, every reason it failed (joined with "; ")."""

    passed: bool
    reason: str = ""


def percentile_thresholds(reference_probs: np.ndarray, q: float = 75.0) -> np.ndarray:
    """Per-class thresholds k_c: the q-th percentile of p(c) over the reference images (N, 10) -> (10,)."""
    probs = np.asarray(reference_probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] != N_CLASSES or len(probs) == 0:
        raise PerceptLabError(
            f"reference probabilities have shape {probs.shape}", "pass (N, 10) probabilities of N >= 1 images"
        )
    return np.percentile(probs, q, axis=0)


def with_thresholds(settings: FilterSettings, reference_probs: Mapping[str, np.ndarray]) -> FilterSettings:
    """A copy of ``settings`` whose percentile thresholds for each named classifier come from its
    probabilities (N, 10) on the reference images (e.g. MNIST), at ``settings.percentile``."""
    computed = {name: percentile_thresholds(p, settings.percentile).tolist() for name, p in reference_probs.items()}
    return replace(settings, thresholds={**settings.thresholds, **computed})


def _fmt(x: float) -> str:
    return f"{x:.2f}"


def _judge_reasons(judge: float | None, settings: FilterSettings) -> list[str]:
    if settings.min_judge is None:
        return []
    if judge is None or not np.isfinite(judge):
        return ["no judge score"]
    return [] if judge > settings.min_judge else [f"judge {_fmt(judge)} <= {settings.min_judge:g}"]


def _thresholds(settings: FilterSettings, name: str) -> np.ndarray:
    if name not in settings.thresholds:
        raise PerceptLabError(
            f"the percentile filter has no thresholds for classifier {name!r}",
            "compute them from reference images with perceptlab.engine.filters.percentile_thresholds "
            "(the CLI does this with --filter percentile)",
        )
    return np.asarray(settings.thresholds[name], dtype=np.float64)


def _percentile_reason(p: np.ndarray, c: int, k: np.ndarray, settings: FilterSettings, who: str) -> list[str]:
    if p[c] > k[c]:
        return []
    return [f"{who}p({c})={_fmt(p[c])} <= {settings.percentile:g}th percentile {k[c]:.3g}"]


def verdict(
    mode: str,
    a: int,
    b: int,
    probs: np.ndarray,
    judge: float | None,
    settings: FilterSettings,
    probs2: np.ndarray | None = None,
    names: tuple[str, str] = ("classifier", "classifier2"),
    others: Mapping[str, np.ndarray] | None = None,
    guides: Sequence[str] = (),
    image: np.ndarray | None = None,
) -> Verdict:
    """The verdict on one image. ``probs`` (10,) come from the (first) guiding classifier, ``probs2``
    from classifier 2 (controversial mode); ``names`` name them in reasons and thresholds. ``others``:
    probabilities (10,) of further classifiers, for the zoo-agreement check; ``guides`` (with
    ``names``) are never counted there. ``image``: the uint8 (28, 28) image, for the stroke check."""
    p = np.asarray(probs, dtype=np.float64)
    reasons: list[str] = []
    if mode == "uncertainty":
        if settings.kind == "paper":
            top2 = [int(c) for c in np.argsort(-p, kind="stable")[:2]]
            if settings.require_top_two and set(top2) != {a, b}:
                reasons.append(f"top-two classes are {top2[0]} and {top2[1]}, not the pair {a}-{b}")
            reasons += [f"p({c})={_fmt(p[c])} <= {settings.min_prob:g}" for c in (a, b) if p[c] <= settings.min_prob]
        else:
            k = _thresholds(settings, names[0])
            reasons += _percentile_reason(p, a, k, settings, "") + _percentile_reason(p, b, k, settings, "")
    elif mode == "controversial":
        if probs2 is None:
            raise ValueError("controversial verdicts need the probabilities of classifier 2")
        p2 = np.asarray(probs2, dtype=np.float64)
        if settings.kind == "paper":
            for name, q, target in ((names[0], p, a), (names[1], p2, b)):
                top = int(np.argmax(q))
                if top != target:
                    reasons.append(f"{name} predicts {top}, not {target}")
                if q[top] <= settings.min_confidence:
                    reasons.append(f"{name} max p={_fmt(q[top])} <= {settings.min_confidence:g}")
        else:
            reasons += _percentile_reason(p, a, _thresholds(settings, names[0]), settings, f"{names[0]} ")
            reasons += _percentile_reason(p2, b, _thresholds(settings, names[1]), settings, f"{names[1]} ")
    else:
        raise ValueError(f"no acceptance filter for mode {mode!r}")
    reasons += _agreement_reasons(a, b, others, (*names, *guides), settings)
    if settings.strokes:
        if image is None:
            raise PerceptLabError(
                "the clean-stroke check needs the image", "pass the stimulus image (library.image(id)) to the verdict"
            )
        reasons += stroke_reasons(stroke_stats(image))
    reasons += _judge_reasons(judge, settings)
    return Verdict(not reasons, "; ".join(reasons))


def verdicts(
    mode: str,
    pairs: Sequence[tuple[int, int]],
    probs: np.ndarray,
    judge: np.ndarray | None,
    settings: FilterSettings,
    probs2: np.ndarray | None = None,
    names: tuple[str, str] = ("classifier", "classifier2"),
    others: Mapping[str, np.ndarray] | None = None,
    guides: Sequence[str] = (),
    images: np.ndarray | None = None,
) -> list[Verdict]:
    """Verdicts for a batch: ``pairs[i]``, ``probs[i]`` (N, 10), ``judge[i]`` (N,), ``others[name][i]``
    (N, 10), ``images[i]`` uint8 (N, 28, 28) per image."""
    out = []
    for i, (a, b) in enumerate(pairs):
        score = None if judge is None else float(judge[i])
        other_i = None if others is None else {n: p[i] for n, p in others.items()}
        p2 = None if probs2 is None else probs2[i]
        image = None if images is None else images[i]
        out.append(verdict(mode, a, b, probs[i], score, settings, p2, names, other_i, guides, image))
    return out


def rejudge(record: Any, settings: FilterSettings, image: np.ndarray | None = None) -> Verdict:
    """Re-judge a stored stimulus (``perceptlab.data.library.Stimulus``) from its stored probabilities
    and judge score, with new thresholds; nothing is sampled again. ``image`` (uint8 (28, 28)) is needed
    when ``settings.strokes`` is on."""
    if record.mode not in ("uncertainty", "controversial"):
        raise PerceptLabError(
            f"stimulus {record.id} ({record.mode}) was not made by boundary sampling", "re-judge generated stimuli only"
        )
    names = (record.classifier, record.classifier2 or "")
    missing = [n for n in names[: 2 if record.mode == "controversial" else 1] if n not in record.probs]
    if missing:
        raise PerceptLabError(
            f"stimulus {record.id} has no stored probabilities of {', '.join(missing)}",
            "regenerate it, or re-score the library with that classifier",
        )
    ensemble = ((record.settings or {}).get("sampler") or {}).get("ensemble") or []
    return verdict(
        record.mode,
        record.class_a,
        record.class_b,
        np.asarray(record.probs[names[0]]),
        record.judge,
        settings,
        np.asarray(record.probs[names[1]]) if record.mode == "controversial" else None,
        names,
        {n: np.asarray(p) for n, p in record.probs.items() if n not in OBSERVERS},
        tuple(ensemble),
        image,
    )
