"""Sampler settings: every choice that decides what the guided sampler makes, the presets, and the
checks that refuse a bad value with a message naming it and the fix. Round-trips through JSON.

``perceptlab.engine.sampler`` re-exports every name here; the loop itself lives there.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from perceptlab.engine.guidance import MODES
from perceptlab.engine.guidance.pixel import DEFAULT_ALPHA
from perceptlab.errors import PerceptLabError
from perceptlab.names import BUILTIN_JUDGE, BUILTIN_PRIOR

GRAD_MODES = ("full", "x0")
# Timestep spacing: "trailing" = evenly spaced, first step t = 999 (the paper's DDPM schedule);
# "quadratic" = t_k = 999 (1 - k/N)^2, dense near t = 0 where the boundary is decided;
# "leading" = diffusers' default, 980, 960, ..., 0 for 50 steps (the public reference code).
SPACINGS = ("trailing", "quadratic", "leading")
# Step size of the normalised gradient, sqrt(784) * sigma_t: "marginal" sigma_t = sqrt(1 - ab_t), the
# noise level of x_t; "posterior" sigma_t = the DDPM posterior std of the strided step (the reference
# code's choice: about half of the marginal one for most of the run, 7.7x smaller near t = 20).
STEP_SIZES = ("marginal", "posterior")
# Re-noising between rounds: "sqrt_beta" x_t = sqrt(1 - beta) x + sqrt(beta) eps (the forward process);
# "beta" uses beta as the noise scale, as the reference code does (0.18 instead of 0.42 at t = 500).
RENOISES = ("sqrt_beta", "beta")
# Clamp of x0_hat: "straight_through" passes the gradient through clipped pixels; "clip" gives them
# zero gradient, as the reference code's clip_sample does.
CLAMPS = ("straight_through", "clip")
CONDITIONS = (None, "a", "b", "either", "pair", *"0123456789")
MAX_STEPS = 1000  # the prior's training steps
MAX_SMOOTH = 4.0  # pixels: a wider blur of the guidance gradient would wash out a 28x28 stroke

PRESETS: dict[str, dict[str, Any]] = {
    # The paper's settings (ICML 2025): 50 steps, 5 resampling rounds, gamma 0.1, gradient through the denoiser.
    "paper": {"steps": 50, "resample": 5, "gamma": 0.1, "grad": "full", "spacing": "trailing"},
    # Interactive default: 20 steps packed near t = 0. Whether an image ends on the
    # boundary is decided in the last few steps: with evenly spaced steps the guided previews stay
    # one-sided until the end and the final jump (t = 49 -> 0 at 20 steps) throws most images off the
    # boundary (~35% pass); quadratic spacing spends the steps where the balance is set.
    # The prior is conditioned on one class of the pair and guidance pushes the image onto the boundary
    # with the other. In controversial mode on b: on a it drew knotted 2-8s (a 2 pushed toward 8), while
    # an 8 pushed toward 2 stays a looped digit, and b also transferred as well at a higher yield. In
    # uncertainty mode on a: b transferred worse to obs-resnet (1-7, 3-5). Conditioning halfway between
    # the pair transferred well but drew crossed scrawls for 2-8.
    # Since issue #12 (third round), chosen by observer transfer and by eye over an ablation (README,
    # "Clean-stroke check and the new default"): one round per step with the gradient taken at x0_hat
    # (no backpropagation through the denoiser), the reference code's posterior step size (a small
    # step near t = 0) at gamma 0.25 (uncertainty) or 0.2 (controversial), cornet co-guiding in
    # uncertainty mode; and a stricter filter: the other zoo classifiers must agree (2 of them in
    # uncertainty mode, 3 in controversial mode; never the independent observers) and the image must
    # pass the clean-stroke check (no detached specks, knots or blots, analysis/strokes).
    # The judge filters but does not guide (as in the reference code's uncertainty loss): its gradient
    # cost a third of the sampling time and changed neither acceptance nor transfer for the better.
    "fast": {
        "steps": 20, "resample": 1, "gamma": 0.2, "grad": "x0", "spacing": "quadratic", "condition": "b",
        "step_size": "posterior", "judge_weight": 0.0,
        "filter": {"agree": 2, "strokes": True},
        "mode_overrides": {
            "uncertainty": {"ensemble": ["cornet"], "gamma": 0.25, "condition": "a"},
            "controversial": {"filter": {"agree": 3}},
        },
    },
    # Quick look: 10 steps, no resampling.
    "draft": {"steps": 10, "resample": 1, "gamma": 0.2, "grad": "full", "spacing": "quadratic"},
    # The loop of the public BAM code (EAterminator/HumanPerceptualVariability, pipeWguidance.py) re-done
    # faithfully, for comparison inside the tool: its step size, its re-noising (beta as the noise
    # scale), its clamp (no gradient through clipped pixels), diffusers' "leading" timesteps and all R
    # rounds at the last step; its uncertainty loss has no judge penalty (its controversial loss has).
    # Kept only by the epsilon in the gradient normalisation, which turns its NaN images into zero steps.
    "reference": {
        "steps": 50, "resample": 5, "gamma": 0.1, "grad": "full", "spacing": "leading",
        "step_size": "posterior", "renoise": "beta", "clamp": "clip", "final_rounds": True,
        "mode_overrides": {"uncertainty": {"judge_weight": 0.0}},
    },
}
DEFAULT_PRESET = "fast"


def _check(ok: bool, message: str, fix: str) -> None:
    if not ok:
        raise PerceptLabError(message, fix)


def _preset(name: str, mode: str) -> dict[str, Any]:
    _check(name in PRESETS, f"unknown preset {name!r}", f"choose one of: {', '.join(PRESETS)}")
    values = {k: v for k, v in PRESETS[name].items() if k != "mode_overrides"}
    override = dict(PRESETS[name].get("mode_overrides", {}).get(mode, {}))
    values["filter"] = {**values.get("filter", {}), **override.pop("filter", {})}
    return {**values, **override}


def preset_values(name: str, mode: str = "uncertainty") -> dict[str, Any]:
    """The sampler settings a preset sets in ``mode`` (its mode overrides applied)."""
    return {k: v for k, v in _preset(name, mode).items() if k != "filter"}


def preset_filter(name: str, mode: str = "uncertainty") -> dict[str, Any]:
    """The acceptance-filter values (``FilterSettings`` fields) a preset sets in ``mode``; {} = the
    paper's filter. Callers apply them under the user's explicit choices."""
    return dict(_preset(name, mode)["filter"])


LOOP_FIELDS = ("step_size", "renoise", "clamp", "final_rounds")  # the reference code's loop vs this project's


@dataclass
class SamplerSettings:
    """Everything that decides what the sampler makes; round-trips through JSON.

    ``pairs`` are the target pairs (a, b), cycled over the images of a job; ``seed`` is the base seed
    (``None``: a random one is drawn when a job starts); ``reference`` is the id of a library stimulus
    for the pixel constraint (strength ``alpha``); ``condition`` conditions the prior on a class: ``None``
    (unconditional), ``"a"`` or ``"b"`` (the image's own target class), ``"pair"`` (the mean of the two
    classes' embeddings, see ``prior.pair_conditioning``) or a digit ``"0"``..``"9"``. ``ensemble`` names
    more classifiers that guide with ``classifier`` in uncertainty mode (the loss is their mean; the
    filter still judges ``classifier``). ``smooth`` > 0 blurs the guidance gradient with a Gaussian of
    that standard deviation in pixels before it is normalised (0 = off, the paper); the last
    ``free_steps`` steps run unguided, one round each, so that the denoiser cleans up what guidance
    left (0 = every step guided, the paper). ``step_size``, ``renoise``, ``clamp`` and ``final_rounds`` switch
    the loop between this project's choices (the defaults) and the public reference code's (``reference``).
    The field defaults are the paper's values; ``from_preset()`` gives the interactive default (``fast``).
    """

    mode: str = "uncertainty"
    pairs: list[tuple[int, int]] = field(default_factory=lambda: [(3, 5)])
    classifier: str = "vgg"
    classifier2: str | None = None
    gamma: float = 0.1
    steps: int = 50
    resample: int = 5
    judge_weight: float = 1.0
    grad: str = "full"
    spacing: str = "trailing"
    batch_size: int = 64
    seed: int | None = None
    reference: str | None = None
    alpha: float = DEFAULT_ALPHA
    condition: str | None = None
    prior: str = BUILTIN_PRIOR
    judge: str = BUILTIN_JUDGE
    preset: str | None = None
    step_size: str = "marginal"
    renoise: str = "sqrt_beta"
    clamp: str = "straight_through"
    final_rounds: bool = False
    ensemble: list[str] = field(default_factory=list)
    smooth: float = 0.0
    free_steps: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (pairs as lists)."""
        d = asdict(self)
        d["pairs"] = [list(p) for p in self.pairs]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SamplerSettings:
        """Inverse of ``to_dict``; unknown keys (from newer versions) are ignored."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in d.items() if k in known}
        if "pairs" in values:
            values["pairs"] = [(int(a), int(b)) for a, b in values["pairs"]]
        return cls(**values)

    @classmethod
    def from_preset(cls, name: str = DEFAULT_PRESET, **changes: Any) -> SamplerSettings:
        """Settings of a preset (``PRESETS``) with ``changes`` applied on top."""
        values = preset_values(name, changes.get("mode", cls.mode))
        return cls(**{**values, "preset": name, **changes})

    def replace(self, **changes: Any) -> SamplerSettings:
        """A copy with some fields changed."""
        return replace(self, **changes)

    def validate(self) -> SamplerSettings:
        """Raise a PerceptLabError naming the first bad value; returns self."""
        _check(self.mode in MODES, f"unknown mode {self.mode!r}", f"use one of: {', '.join(MODES)}")
        _check(bool(self.pairs), "no target pairs", "give at least one pair a-b")
        for a, b in self.pairs:
            _check(
                0 <= a <= 9 and 0 <= b <= 9 and a != b,
                f"bad pair {a}-{b}",
                "a pair is a-b with two different digits 0-9",
            )
        if self.mode == "controversial":
            _check(
                bool(self.classifier2),
                "controversial mode needs a second classifier",
                "name it with --classifier2 (classifier 1 is pushed toward a, classifier 2 toward b)",
            )
        _check(
            1 <= self.steps <= MAX_STEPS, f"steps = {self.steps}", f"use 1 to {MAX_STEPS} inference steps (paper: 50)"
        )
        _check(
            0 <= self.free_steps < self.steps,
            f"free steps = {self.free_steps} of {self.steps}",
            "use 0 (every step guided) up to steps - 1 unguided final steps",
        )
        _check(self.resample >= 1, f"resample = {self.resample}", "use at least 1 round per step (paper: 5)")
        _check(
            math.isfinite(self.gamma) and self.gamma >= 0,
            f"gamma = {self.gamma}",
            "use a finite guidance strength >= 0 (paper: 0.1)",
        )
        _check(
            math.isfinite(self.judge_weight) and self.judge_weight >= 0,
            f"judge weight = {self.judge_weight}",
            "use a finite weight >= 0 (1 = paper, 0 = off)",
        )
        _check(
            math.isfinite(self.alpha) and self.alpha >= 0,
            f"alpha = {self.alpha}",
            "use a finite pixel-constraint strength >= 0 (paper: 50)",
        )
        _check(
            math.isfinite(self.smooth) and 0 <= self.smooth <= MAX_SMOOTH,
            f"gradient smoothing = {self.smooth}",
            f"use a Gaussian width of 0 (off) to {MAX_SMOOTH:g} pixels",
        )
        for name, value, allowed in (
            ("step size", self.step_size, STEP_SIZES),
            ("re-noising", self.renoise, RENOISES),
            ("clamp", self.clamp, CLAMPS),
        ):
            _check(value in allowed, f"unknown {name} {value!r}", f"use one of: {', '.join(allowed)}")
        _check(
            not self.ensemble or self.mode == "uncertainty",
            "ensemble guidance is for uncertainty mode",
            "leave the ensemble empty in controversial mode (two classifiers guide there already)",
        )
        _check(
            self.spacing in SPACINGS, f"unknown timestep spacing {self.spacing!r}", f"use one of: {', '.join(SPACINGS)}"
        )
        _check(self.grad in GRAD_MODES, f"unknown gradient mode {self.grad!r}", f"use one of: {', '.join(GRAD_MODES)}")
        _check(self.batch_size >= 1, f"batch size = {self.batch_size}", "use a batch size >= 1")
        _check(
            self.condition in CONDITIONS,
            f"unknown prior condition {self.condition!r}",
            "use none, a, b (the image's own target class), either (a or b, by the image's seed), pair (halfway "
            "between a and b) or a digit 0-9",
        )
        return self
