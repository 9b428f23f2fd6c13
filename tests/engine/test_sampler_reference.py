"""The loop switches that reproduce the public reference code, pair conditioning and ensemble guidance."""

import math

import pytest
import torch

from perceptlab.engine import sampler
from perceptlab.engine.classifiers import build
from perceptlab.engine.guidance import build_guidance
from perceptlab.engine.prior import pair_labels
from perceptlab.engine.sampler import (
    PRESETS,
    SamplerSettings,
    condition_labels,
    guided_gradient,
    guided_sample,
    inference_timesteps,
    posterior_std,
    step_beta,
)
from perceptlab.errors import PerceptLabError
from tests.conftest import run_gen

A = torch.tensor([3, 4])
B = torch.tensor([5, 9])


@pytest.fixture(scope="module")
def clf():
    torch.manual_seed(1)
    return build("logreg")


def test_leading_spacing_is_diffusers_default():
    assert inference_timesteps(50, "leading") == list(range(980, -1, -20))
    assert inference_timesteps(4, "leading") == [750, 500, 250, 0]


def test_posterior_std_is_the_ddpm_posterior_of_the_strided_step(prior):
    sched = prior.make_scheduler()
    sched.set_timesteps(timesteps=inference_timesteps(50, "leading"))
    ab = sched.alphas_cumprod
    t, prev = 500, 480
    beta = 1 - ab[t] / ab[prev]
    expected = math.sqrt((1 - ab[prev]) / (1 - ab[t]) * beta)
    assert float(posterior_std(sched, torch.tensor(t))) == pytest.approx(expected, rel=1e-5)
    # about half of sqrt(1 - ab_t) there, as the issue measured
    assert 0.1 < float(posterior_std(sched, torch.tensor(t))) / math.sqrt(1 - ab[t]) < 0.7


def test_step_size_follows_sigma(prior, clf):
    g = build_guidance("uncertainty", A, B, clf)
    x = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    t = torch.tensor(500)
    ab = prior.make_scheduler().alphas_cumprod[t]
    out = guided_gradient(prior, g, x, t, ab, sigma=torch.tensor(0.05))
    torch.testing.assert_close(out.grad.flatten(1).norm(dim=1), torch.full((2,), 28 * 0.05))


def test_clip_clamp_gives_clipped_pixels_no_gradient(prior, clf):
    g = build_guidance("uncertainty", A, B, clf)
    t = torch.tensor(10)
    ab = prior.make_scheduler().alphas_cumprod[t]
    x = torch.full((2, 1, 28, 28), 5.0)  # x0_hat far outside [-1, 1]: every pixel clipped
    clipped = guided_gradient(prior, g, x, t, ab, clamp="clip")
    through = guided_gradient(prior, g, x, t, ab, clamp="straight_through")
    assert clipped.grad.abs().max() == 0 and torch.isfinite(clipped.grad).all()
    assert through.grad.abs().max() > 0


def test_reference_renoise_uses_beta_as_the_noise_scale(prior, clf, monkeypatch):
    calls = []
    real = sampler.renoise

    def spy(x, beta, gens, noise_var=None):
        calls.append((float(beta), float(noise_var)))
        return real(x, beta, gens, noise_var)

    monkeypatch.setattr(sampler, "renoise", spy)
    g = build_guidance("uncertainty", A, B, clf)
    run_gen(guided_sample(prior, g, [1, 2], steps=2, resample=2, grad="x0", renoise_scale="beta", final_rounds=True))
    assert len(calls) == 2  # one per step: the last step spends its rounds too
    for beta, var in calls:
        assert var == pytest.approx(beta**2)


def test_reference_preset_matches_the_public_loop_and_drops_the_judge_in_uncertainty():
    ref = SamplerSettings.from_preset("reference", mode="uncertainty")
    assert (ref.steps, ref.resample, ref.gamma, ref.spacing) == (50, 5, 0.1, "leading")
    assert (ref.step_size, ref.renoise, ref.clamp, ref.final_rounds) == ("posterior", "beta", "clip", True)
    assert ref.judge_weight == 0.0
    assert SamplerSettings.from_preset("reference", mode="controversial", classifier2="cornet").judge_weight == 1.0
    assert "mode_overrides" not in SamplerSettings.from_preset("reference").to_dict()
    assert SamplerSettings.from_dict(ref.to_dict()) == ref
    assert set(PRESETS) >= {"paper", "fast", "draft", "reference"}


def test_pair_condition_mixes_the_two_class_embeddings(prior):
    labels = condition_labels(SamplerSettings(condition="pair"), [(3, 5), (4, 9)])
    assert labels.tolist() == pair_labels(A, B).tolist()
    table = next(m for n, m in prior.net.named_modules() if n.endswith("class_embedder.embedding_table"))
    mixed = table(labels)
    torch.testing.assert_close(mixed[0], 0.5 * (table.weight[3] + table.weight[5]))
    torch.testing.assert_close(table(torch.tensor([3])), table.weight[3:4])  # plain labels unchanged
    x = torch.randn(2, 1, 28, 28)
    out = prior(x, torch.tensor(500), labels)
    assert out.shape == x.shape and torch.isfinite(out).all()
    assert not torch.allclose(out, prior(x, torch.tensor(500), torch.tensor([3, 4])))


def test_ensemble_guidance_is_the_mean_of_each_classifiers_loss(clf):
    torch.manual_seed(2)
    other = build("mlp")
    x = torch.rand(2, 1, 28, 28) * 2 - 1
    ens = build_guidance("uncertainty", A, B, clf, names=("lrm", ""), ensemble={"mlp": other})
    one = build_guidance("uncertainty", A, B, clf, names=("lrm", ""))
    two = build_guidance("uncertainty", A, B, other, names=("mlp", ""))
    loss, diag = ens.evaluate(x)
    torch.testing.assert_close(loss, 0.5 * (one(x) + two(x)))
    assert set(diag) == {"lrm", "mlp"}
    with pytest.raises(ValueError):
        build_guidance("controversial", A, B, clf, other, ensemble={"mlp": other})


@pytest.mark.parametrize(
    "change",
    [
        {"gamma": math.inf},
        {"gamma": math.nan},
        {"judge_weight": math.inf},
        {"alpha": math.nan},
        {"step_size": "huge"},
        {"renoise": "none"},
        {"clamp": "soft"},
        {"mode": "controversial", "classifier2": "cornet", "ensemble": ["mlp"]},
    ],
)
def test_bad_loop_settings_are_refused(change):
    with pytest.raises(PerceptLabError):
        SamplerSettings(**change).validate()


def test_step_beta_of_the_leading_schedule_ends_at_one_minus_ab0(prior):
    sched = prior.make_scheduler()
    sched.set_timesteps(timesteps=inference_timesteps(5, "leading"))
    assert float(step_beta(sched, torch.tensor(0))) == pytest.approx(float(1 - sched.alphas_cumprod[0]))
