"""Generation jobs: the regenerate-rejects loop with fake samplers, and real (tiny) jobs into a library."""

import itertools

import numpy as np
import pytest

from perceptlab.data.images import float_to_uint8
from perceptlab.data.library import Stimulus, StimulusLibrary
from perceptlab.engine.filters import FilterSettings, rejudge
from perceptlab.engine.generate import (
    BatchOutcome,
    all_pairs,
    expand_targets,
    fill_targets,
    generate,
)
from perceptlab.engine.registry import Registry
from perceptlab.engine.sampler import SamplerSettings, load_models, sample_batch
from perceptlab.errors import PerceptLabError
from tests.conftest import build_tiny_registry, run_gen


def _fake_runner(passes):
    """A batch runner that passes image i when ``passes(seed)``, with one progress record per batch."""
    batches = []

    def run(pairs, seeds):
        batches.append(list(seeds))
        yield {"kind": "step", "step": 1, "total": 1}
        ok = [passes(s) for s in seeds]
        recs = [
            Stimulus(mode="uncertainty", class_a=a, class_b=b, seed=s, passed=p)
            for (a, b), s, p in zip(pairs, seeds, ok)
        ]
        images = np.zeros((len(recs), 28, 28), np.uint8)
        return BatchOutcome(passed=ok, records=recs, images=images)

    return run, batches


def test_always_failing_sampler_respects_the_budget():
    run, batches = _fake_runner(lambda s: False)
    targets = expand_targets([(3, 5), (4, 9)], 3)
    records, summary = run_gen(fill_targets(targets, run, batch_size=4, base_seed=100, regenerate=True, max_rounds=3))
    assert summary.rounds == 3 and summary.generated == 18 and summary.accepted == 0
    assert summary.unfilled == 6 and summary.acceptance_rate == 0.0
    seeds = [s for b in batches for s in b]
    assert seeds == list(range(100, 118))  # every generated image has its own seed
    assert [r["kind"] for r in records].count("batch") == len(batches) == 6
    assert records[-1]["planned"] == 18


def test_sometimes_passing_sampler_fills_every_target():
    run, batches = _fake_runner(lambda s: s % 3 == 0)
    targets = expand_targets(all_pairs()[:5], 2)
    stored = []
    records, summary = run_gen(
        fill_targets(
            targets,
            run,
            batch_size=4,
            base_seed=0,
            regenerate=True,
            max_rounds=10,
            store=lambda o: stored.append(o) or [],
        )
    )
    assert summary.unfilled == 0 and summary.accepted == 10 and summary.rounds > 1
    assert summary.acceptance_rate == pytest.approx(10 / summary.generated)
    # each record names the targets (slots) and seeds of its batch, so a GUI can put every attempt in
    # its target's place; a target is sampled again until its seed passes, and then never again
    by_slot: dict[int, list[int]] = {}
    for rec in records:
        assert len(rec["slots"]) == len(rec["seeds"]) <= 4
        if rec["kind"] == "batch":
            for slot, seed in zip(rec["slots"], rec["seeds"]):
                by_slot.setdefault(slot, []).append(seed)
    assert sorted(by_slot) == list(range(10))
    for seeds in by_slot.values():
        assert seeds[-1] % 3 == 0 and all(x % 3 for x in seeds[:-1])
    assert len(stored) == len(batches)  # committed batch by batch
    # each round samples exactly the targets rejected in the round before
    ends = {0: {"generated": 0, "accepted": 0}} | {r["round"]: r for r in records if r["kind"] == "batch"}
    per_round = [
        (ends[r]["generated"] - ends[r - 1]["generated"], ends[r]["accepted"] - ends[r - 1]["accepted"])
        for r in range(1, summary.rounds + 1)
    ]
    assert per_round[0][0] == 10
    for (gen, acc), (next_gen, _) in itertools.pairwise(per_round):
        assert next_gen == gen - acc


def test_without_regeneration_there_is_one_round():
    run, batches = _fake_runner(lambda s: False)
    _, summary = run_gen(fill_targets([(3, 5)] * 5, run, batch_size=2, base_seed=0, max_rounds=10))
    assert summary.rounds == 1 and summary.generated == 5 and len(batches) == 3


def test_a_crash_keeps_the_batches_already_committed(tmp_path):
    calls = []

    def run(pairs, seeds):
        calls.append(seeds)
        if len(calls) == 2:
            raise RuntimeError("killed")
        yield {"kind": "step", "step": 1, "total": 1}
        recs = [
            Stimulus(mode="uncertainty", class_a=a, class_b=b, seed=s, passed=True) for (a, b), s in zip(pairs, seeds)
        ]
        return BatchOutcome([True] * len(recs), recs, np.zeros((len(recs), 28, 28), np.uint8))

    with StimulusLibrary.open_or_create(tmp_path / "lib") as lib:
        with pytest.raises(RuntimeError):
            run_gen(
                fill_targets([(3, 5)] * 4, run, batch_size=2, base_seed=0, store=lambda o: lib.add(o.records, o.images))
            )
        assert len(lib) == 2


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    folder = build_tiny_registry(tmp_path_factory.mktemp("weights"))
    return Registry(builtin_dir=folder, user_dir=folder / "u")


SETTINGS = SamplerSettings(classifier="vgg", steps=3, resample=2, gamma=0.2, grad="x0", batch_size=4, seed=42)


def test_generate_into_a_library_and_read_back(registry, tmp_path):
    targets = expand_targets([(3, 5), (4, 9)], 3)
    with StimulusLibrary.open_or_create(tmp_path / "lib") as lib:
        records, summary = run_gen(generate(SETTINGS, targets, registry=registry, library=lib))
        assert summary.generated == 6 and summary.rounds == 1
        assert len(lib) == len(summary.ids) == 6 - summary.invalid  # without regeneration rejects are kept
        stored = lib.records()
        images = np.stack([lib.image(i) for i in summary.ids])
    assert {r["kind"] for r in records} == {"step", "batch"}
    assert [r.seed for r in stored] == list(range(42, 48))
    hashes = {n: registry.weight_hash(n) for n in ("dit", "vgg", "lrm", "cornet", "vit", "mlp", "judge")}
    for rec in stored:
        assert rec.settings["sampler"]["seed"] == 42 and rec.settings["sampler"]["steps"] == 3
        assert rec.settings["filter"]["min_prob"] == 0.4
        assert rec.weight_hashes == hashes
        assert set(rec.probs) == {"vgg", "lrm", "cornet", "vit", "mlp"}  # the built-in zoo of this registry
        assert rec.p_a == pytest.approx(rec.probs["vgg"][rec.class_a])
        assert rec.p_b == pytest.approx(rec.probs["vgg"][rec.class_b])
        assert 0 <= rec.judge <= 1 and rec.status == "new"
        v = rejudge(rec, FilterSettings())
        assert (v.passed, v.reason) == (rec.passed, rec.reason)

    # the same settings and seed make the same images; one image is remade alone from its seed
    with StimulusLibrary.open_or_create(tmp_path / "lib2") as lib2:
        _, again = run_gen(generate(SETTINGS, targets, registry=registry, library=lib2))
        np.testing.assert_array_equal(images, np.stack([lib2.image(i) for i in again.ids]))
    rec = stored[4]
    models = load_models(SETTINGS, registry, "cpu")
    _, alone = run_gen(sample_batch(SETTINGS, models, [(rec.class_a, rec.class_b)], [rec.seed]))
    diff = np.abs(float_to_uint8(alone.images.numpy()[0, 0]).astype(int) - images[4].astype(int))
    assert diff.max() <= 1


def test_regenerate_stores_only_accepted_and_reference_is_checked(registry, tmp_path):
    lenient = FilterSettings(min_prob=0.0, require_top_two=False, min_judge=None)
    strict = FilterSettings(min_prob=0.99)
    with StimulusLibrary.open_or_create(tmp_path / "lib") as lib:
        _, ok = run_gen(generate(SETTINGS, [(3, 5)] * 2, filters=lenient, registry=registry, library=lib, regenerate=True))
        assert ok.accepted == 2 and ok.unfilled == 0 and len(lib) == 2
        _, bad = run_gen(
            generate(
                SETTINGS, [(3, 5)] * 2, filters=strict, registry=registry, library=lib, regenerate=True, max_rounds=2
            )
        )
        assert bad.generated == 4 and bad.accepted == 0 and bad.unfilled == 2 and len(lib) == 2
        ref = lib.ids()[0]
        _, with_ref = run_gen(generate(SETTINGS.replace(reference=ref), [(3, 5)], registry=registry, library=lib))
        assert lib.get(with_ref.ids[0]).settings["sampler"]["reference"] == ref
        with pytest.raises(PerceptLabError, match="no stimulus"):
            run_gen(generate(SETTINGS.replace(reference="s999999"), [(3, 5)], registry=registry, library=lib))


def test_records_score_the_zoo_and_the_guiding_models_but_not_every_user_model(tmp_path):
    from perceptlab.engine.classifiers import build
    from tests.conftest import save_model

    weights = build_tiny_registry(tmp_path / "w")
    for name in ("indiv_a", "indiv_b", "indiv_unused"):
        save_model(tmp_path / "user", name, "classifier", "mlp", build("mlp"))
    reg = Registry(weights, tmp_path / "user")
    settings = SamplerSettings(
        mode="controversial", classifier="indiv_a", classifier2="indiv_b", steps=2, resample=1, grad="x0",
        batch_size=2, seed=5, pairs=[(3, 5)],
    )  # fmt: skip
    _, summary = run_gen(generate(settings, [(3, 5)], registry=reg, keep_rejects=True))
    [rec] = summary.records
    assert set(rec.probs) == {"vgg", "lrm", "cornet", "vit", "mlp", "indiv_a", "indiv_b"}
    assert set(rec.weight_hashes) >= {"vgg", "lrm", "indiv_a", "indiv_b", "dit"}
    assert "indiv_unused" not in rec.weight_hashes
