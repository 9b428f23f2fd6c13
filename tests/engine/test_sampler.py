"""The guided sampler on tiny random models: normalisation, clipping, NaN, seeding, cancelling, re-noising."""

import json
import math

import pytest
import torch

from perceptlab.engine import sampler
from perceptlab.engine.classifiers import build
from perceptlab.engine.guidance import build_guidance
from perceptlab.engine.sampler import (
    DEFAULT_PRESET,
    PRESETS,
    SamplerSettings,
    condition_labels,
    guided_gradient,
    guided_sample,
    inference_timesteps,
    normalize_per_image,
    renoise,
    step_beta,
)
from perceptlab.errors import PerceptLabError
from tests.conftest import run_gen

A = torch.tensor([3, 4, 1, 7])
B = torch.tensor([5, 9, 7, 2])
SEEDS = [11, 12, 13, 14]


@pytest.fixture(scope="module")
def guidance():
    torch.manual_seed(1)
    clf = build("logreg")
    judge = build("logreg", {"num_outputs": 1})
    return build_guidance("uncertainty", A, B, clf, judge=judge)


def test_normalize_per_image_sets_the_norm_and_keeps_zero_at_zero():
    g = torch.randn(3, 1, 28, 28)
    g[1] = 0
    out = normalize_per_image(g, 2.5)
    norms = out.flatten(1).norm(dim=1)
    torch.testing.assert_close(norms[[0, 2]], torch.full((2,), 2.5))
    assert norms[1] == 0 and torch.isfinite(out).all()


@pytest.mark.parametrize("mode", ["full", "x0"])
def test_guided_gradient_norm_is_sqrt784_sigma_t(prior, guidance, mode):
    sched = prior.make_scheduler()
    t = torch.tensor(500)
    ab = sched.alphas_cumprod[t]
    x = torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    out = guided_gradient(prior, guidance, x, t, ab, grad=mode)
    expected = math.sqrt(784) * math.sqrt(1 - float(ab))
    torch.testing.assert_close(out.grad.flatten(1).norm(dim=1), torch.full((4,), expected), rtol=1e-4, atol=1e-4)
    assert out.x0.abs().max() <= 1
    # eps is consistent with the clamped x0 the DDPM update uses
    torch.testing.assert_close((x - (1 - ab).sqrt() * out.eps) / ab.sqrt(), out.x0, rtol=1e-4, atol=1e-4)


def test_x0_mode_is_the_x0_gradient_without_the_denoiser(prior, guidance):
    sched = prior.make_scheduler()
    t = torch.tensor(300)
    ab = sched.alphas_cumprod[t]
    x = 0.3 * torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    out = guided_gradient(prior, guidance, x, t, ab, grad="x0")
    x0 = out.x0.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(guidance(x0).sum(), x0)
    torch.testing.assert_close(out.grad, normalize_per_image(g, math.sqrt(784 * (1 - float(ab)))), rtol=1e-4, atol=1e-5)


def test_fully_clipped_x0_still_gets_a_finite_gradient(prior, guidance):
    sched = prior.make_scheduler()
    t = torch.tensor(20)
    ab = sched.alphas_cumprod[t]
    x = torch.full((4, 1, 28, 28), 50.0)  # x0_hat far outside [-1, 1] everywhere
    out = guided_gradient(prior, guidance, x, t, ab, grad="full")
    assert (out.x0 == 1).all()
    assert torch.isfinite(out.grad).all()
    assert (out.grad.flatten(1).norm(dim=1) > 0).all()


def test_step_beta_is_the_strided_beta(prior):
    sched = prior.make_scheduler()
    sched.set_timesteps(50)
    ab = sched.alphas_cumprod
    assert sched.timesteps[0] == 999  # trailing spacing: the chain starts from pure noise
    assert float(step_beta(sched, 519)) == pytest.approx(1 - float(ab[519] / ab[499]))
    assert math.sqrt(float(step_beta(sched, 519))) == pytest.approx(0.42, abs=0.02)  # DESIGN §2: ~0.42 at t ~ 500
    last = int(sched.timesteps[-1])
    assert float(step_beta(sched, last)) == pytest.approx(1 - float(ab[last]))


def test_renoise_uses_sqrt_beta_as_noise_scale():
    gens = [torch.Generator().manual_seed(s) for s in range(8)]
    beta = 0.18
    out = renoise(torch.zeros(8, 1, 28, 28), beta, gens)
    assert out.std().item() == pytest.approx(math.sqrt(beta), rel=0.05)  # 0.42, not beta = 0.18
    out = renoise(torch.ones(8, 1, 28, 28), beta, gens)
    assert out.mean().item() == pytest.approx(math.sqrt(1 - beta), abs=0.02)


def test_loop_renoises_with_each_steps_beta_and_skips_the_last_step(prior, guidance, monkeypatch):
    calls = []
    real = sampler.renoise

    def spy(x, beta, gens, noise_var=None):
        calls.append(float(beta))
        return real(x, beta, gens, noise_var)

    monkeypatch.setattr(sampler, "renoise", spy)
    records, result = run_gen(guided_sample(prior, guidance, SEEDS, steps=3, resample=3, gamma=0.1, grad="x0"))
    sched = prior.make_scheduler()
    sched.set_timesteps(3)
    t0, t1, _ = sched.timesteps
    expected = [float(step_beta(sched, t0))] * 2 + [float(step_beta(sched, t1))] * 2
    assert calls == pytest.approx(expected)
    assert [r["step"] for r in records] == [1, 2, 3] and records[-1]["total"] == 3
    rec = records[-1]
    assert rec["x0"].shape == (4, 1, 28, 28) and rec["probs"]["classifier"].shape == (4, 10)
    assert rec["judge"].shape == (4,) and rec["valid"].all()
    assert result.images.shape == (4, 1, 28, 28) and result.images.abs().max() <= 1
    assert result.seeds == SEEDS


def test_quadratic_spacing_is_distinct_decreasing_and_dense_near_zero():
    assert inference_timesteps(50, "trailing") is None
    ts = inference_timesteps(20, "quadratic")
    assert ts[0] == 999 and ts[-1] <= 5 and len(ts) == 20
    assert all(a > b for a, b in zip(ts, ts[1:]))
    gaps = [a - b for a, b in zip(ts, ts[1:])]
    assert gaps[-1] < gaps[0] / 10  # fine steps at the end, coarse ones at the start
    every = inference_timesteps(1000, "quadratic")
    assert every == list(range(999, -1, -1))


def test_loop_follows_the_quadratic_timesteps(prior, guidance):
    records, result = run_gen(
        guided_sample(prior, guidance, SEEDS, steps=4, resample=1, gamma=0.1, grad="x0", spacing="quadratic")
    )
    assert [r["t"] for r in records] == inference_timesteps(4, "quadratic")
    assert result.valid.all() and torch.isfinite(result.images).all()


def test_seeding_same_seed_same_images_and_image_alone(prior, guidance):
    kw = {"steps": 3, "resample": 2, "gamma": 0.2, "grad": "full"}
    _, r1 = run_gen(guided_sample(prior, guidance, SEEDS, **kw))
    _, r2 = run_gen(guided_sample(prior, guidance, SEEDS, **kw))
    assert torch.equal(r1.images, r2.images)
    _, r3 = run_gen(guided_sample(prior, guidance, [21, 22, 23, 24], **kw))
    assert not torch.allclose(r1.images, r3.images)
    # image 2 alone, from its recorded seed and its own pair
    clf = guidance.terms[0][1].classifier
    judge = guidance.terms[1][1].judge
    alone = build_guidance("uncertainty", A[2:3], B[2:3], clf, judge=judge)
    _, r4 = run_gen(guided_sample(prior, alone, [r1.seeds[2]], **kw))
    torch.testing.assert_close(r4.images[0], r1.images[2], rtol=1e-4, atol=1e-4)


class _NaNForImage:
    """A guidance term whose loss and gradient are NaN for one image."""

    def __init__(self, index: int):
        self.index = index

    def evaluate(self, x0):
        weight = torch.zeros(len(x0))
        weight[self.index] = float("nan")
        return weight * x0.flatten(1).sum(1), {}


def test_nan_in_one_image_drops_only_that_image(prior, guidance):
    kw = {"steps": 3, "resample": 2, "gamma": 0.2, "grad": "x0"}
    poisoned = type(guidance)([*guidance.terms, (1.0, _NaNForImage(1))])
    records, result = run_gen(guided_sample(prior, poisoned, SEEDS, **kw))
    assert result.valid.tolist() == [True, False, True, True]
    assert "non-finite" in result.reasons[1] and result.reasons[0] == ""
    assert torch.isfinite(result.images).all() and (result.images[1] == 0).all()
    assert records[0]["valid"].tolist() == [True, False, True, True]
    _, clean = run_gen(guided_sample(prior, guidance, SEEDS, **kw))
    torch.testing.assert_close(result.images[[0, 2, 3]], clean.images[[0, 2, 3]], rtol=1e-5, atol=1e-5)


class _Counting(torch.nn.Module):
    def __init__(self, prior):
        super().__init__()
        self.prior, self.calls = prior, 0

    def forward(self, *args):
        self.calls += 1
        return self.prior(*args)

    def make_scheduler(self):
        return self.prior.make_scheduler()


def test_closing_the_generator_stops_at_once_and_consumer_grad_mode_is_kept(prior, guidance):
    counting = _Counting(prior)
    gen = guided_sample(counting, guidance, SEEDS, steps=5, resample=2, grad="full")
    with torch.no_grad():  # the sampler takes its own gradients; the caller's mode is untouched
        first = next(gen)
        assert not torch.is_grad_enabled()
    assert first["step"] == 1
    calls = counting.calls
    gen.close()
    with pytest.raises(StopIteration):
        next(gen)
    assert counting.calls == calls == 2


def test_settings_json_round_trip_presets_and_validation():
    s = SamplerSettings.from_preset("paper", pairs=[(3, 5), (4, 9)], seed=7, reference="s000001", condition="a")
    back = SamplerSettings.from_dict(json.loads(json.dumps(s.to_dict())))
    assert back == s and back.pairs == [(3, 5), (4, 9)]
    assert (s.steps, s.resample, s.gamma, s.grad, s.spacing) == (50, 5, 0.1, "full", "trailing")
    assert DEFAULT_PRESET == "fast" and "fast" in PRESETS
    fast = SamplerSettings.from_preset()
    assert fast.preset == "fast" and fast.steps < 50 and fast.resample < 5 and fast.spacing == "quadratic"
    assert fast.condition == "a" and fast.ensemble == ["cornet"]
    controversial = SamplerSettings.from_preset(mode="controversial", classifier2="cornet")
    assert controversial.ensemble == [] and controversial.condition == "b"
    with pytest.raises(PerceptLabError, match="spacing"):
        SamplerSettings(spacing="cosine").validate()
    with pytest.raises(PerceptLabError, match="--classifier2"):
        SamplerSettings(mode="controversial").validate()
    with pytest.raises(PerceptLabError, match="two different digits"):
        SamplerSettings(pairs=[(3, 3)]).validate()
    with pytest.raises(PerceptLabError, match="preset"):
        SamplerSettings.from_preset("turbo")
    assert condition_labels(s, [(3, 5), (4, 9)]).tolist() == [3, 4]
    assert condition_labels(s.replace(condition="7"), [(3, 5)]).tolist() == [7]
    assert condition_labels(s.replace(condition=None), [(3, 5)]) is None


def test_presets_carry_filter_values_by_mode():
    from perceptlab.engine.filters import FilterSettings
    from perceptlab.engine.sampler import preset_filter, preset_values

    assert preset_filter("fast", "uncertainty") == {"agree": 2, "strokes": True}
    assert preset_filter("fast", "controversial") == {"agree": 3, "strokes": True}
    for name in ("paper", "reference", "draft"):
        assert preset_filter(name) == {} and preset_filter(name, "controversial") == {}
    assert "filter" not in preset_values("fast") and "filter" not in preset_values("fast", "controversial")
    FilterSettings(**preset_filter("fast")).validate()  # every value is a FilterSettings field
    fast = SamplerSettings.from_preset()
    assert (fast.resample, fast.grad, fast.step_size, fast.judge_weight, fast.gamma) == (1, "x0", "posterior", 0.0, 0.25)
    assert SamplerSettings.from_preset(mode="controversial", classifier2="cornet").gamma == 0.2


def test_gradient_smoothing_keeps_the_norm_and_removes_pixel_scale_detail(prior, guidance):
    from perceptlab.engine.sampler import gaussian_blur

    x = torch.zeros(1, 1, 28, 28)
    x[0, 0, 14, 14] = 1.0
    blurred = gaussian_blur(x, 1.0)
    assert math.isclose(blurred.sum().item(), 1.0, rel_tol=1e-5) and blurred.max() < 0.2
    assert torch.equal(gaussian_blur(x, 0.0), x)
    ab = prior.make_scheduler().alphas_cumprod[500]
    x_t = torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    t = torch.tensor(500)
    sharp = sampler.guided_gradient(prior, guidance, x_t, t, ab, "x0")
    smooth = sampler.guided_gradient(prior, guidance, x_t, t, ab, "x0", smooth=1.5)
    assert torch.allclose(smooth.grad.flatten(1).norm(dim=1), sharp.grad.flatten(1).norm(dim=1), rtol=1e-4)
    lap = lambda g: (g[..., 1:, :] - g[..., :-1, :]).abs().sum()  # noqa: E731
    assert lap(smooth.grad) < lap(sharp.grad)
    with pytest.raises(PerceptLabError, match="smoothing"):
        SamplerSettings(smooth=9.0).validate()


def test_free_steps_run_unguided_at_the_end(prior, guidance):
    seeds = SEEDS
    kw = dict(steps=4, resample=2, gamma=5.0, grad="x0", spacing="quadratic")
    _, guided = run_gen(sampler.guided_sample(prior, guidance, seeds, **kw))
    _, free_last = run_gen(sampler.guided_sample(prior, guidance, seeds, free_steps=1, **kw))
    _, free_all = run_gen(sampler.guided_sample(prior, guidance, seeds, free_steps=4, **kw))
    _, unguided = run_gen(sampler.guided_sample(prior, guidance, seeds, **{**kw, "gamma": 0.0, "resample": 1}))
    assert not torch.allclose(guided.images, free_last.images)
    assert torch.allclose(free_all.images, unguided.images, atol=1e-6)
    with pytest.raises(PerceptLabError, match="free steps"):
        SamplerSettings(steps=4, free_steps=4).validate()


def test_condition_either_picks_a_or_b_by_the_images_seed():
    from perceptlab.engine.sampler import either_class

    pairs = [(4, 9), (3, 5), (1, 7), (2, 8)] * 16
    seeds = list(range(64))
    labels = condition_labels(SamplerSettings(condition="either"), pairs, seeds).tolist()
    assert all(lab in p for lab, p in zip(labels, pairs))
    assert labels == [p[either_class(s)] for p, s in zip(pairs, seeds)]  # image alone: the same class
    for k in range(4):  # both classes of every pair occur, although the pairs cycle with the seeds
        assert set(labels[k::4]) == set(pairs[k])
    with pytest.raises(ValueError, match="one seed per image"):
        condition_labels(SamplerSettings(condition="either"), pairs)
