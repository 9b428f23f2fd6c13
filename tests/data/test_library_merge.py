"""Library merge: ids never collide, provenance and curation survive, repeats are de-duplicated or refused.

The property tests run under hypothesis when it is installed, otherwise over seeded random cases."""

from __future__ import annotations

import random

import numpy as np
import pytest

from perceptlab.data.library import Stimulus, StimulusLibrary
from perceptlab.data.library_merge import (
    PROVENANCE,
    ShardCommitter,
    combine_status,
    merge_libraries,
    stimulus_key,
)
from perceptlab.errors import PerceptLabError

TAGS = ("good", "odd", "p1:a", "blurry")


def _record(pair, seed, variant, status="new", tags=(), note="") -> Stimulus:
    probs = np.full(10, 0.05)
    probs[list(pair)] = [0.4, 0.4]
    return Stimulus(
        mode="uncertainty",
        class_a=pair[0],
        class_b=pair[1],
        classifier="vgg",
        gamma=0.1 * (variant + 1),
        steps=20,
        resample=2,
        seed=seed,
        settings={"sampler": {"gamma": 0.1 * (variant + 1), "seed": 7 + variant}, "filter": {"kind": "paper"}},
        weight_hashes={"dit": "aa" * 32, "vgg": "bb" * 32},
        probs={"vgg": probs.tolist()},
        p_a=0.4,
        p_b=0.4,
        passed=True,
        status=status,
        tags=list(tags),
        note=note,
    )


def _image(pair, seed, variant) -> np.ndarray:
    return np.random.default_rng([pair[0], pair[1], seed, variant]).integers(0, 256, (28, 28), dtype=np.uint8)


def _make_case(rng: random.Random) -> list[list[tuple]]:
    """Up to 3 libraries, each a list of (pair, seed, variant, status, tags), drawn from a small pool so
    that repeats across (and within) libraries are common."""
    pool = [((a, b), s, v) for (a, b) in ((3, 5), (4, 9)) for s in (0, 1, 2) for v in (0, 1)]
    libs = []
    for _ in range(rng.randint(1, 3)):
        items = []
        for _ in range(rng.randint(0, 5)):
            pair, seed, variant = rng.choice(pool)
            status = rng.choice(("new", "new", "accepted", "rejected"))
            tags = tuple(rng.sample(TAGS, rng.randint(0, 2)))
            items.append((pair, seed, variant, status, tags))
        libs.append(items)
    return libs


def _build(tmp_path, case) -> list:
    paths = []
    for i, items in enumerate(case):
        path = tmp_path / f"lib{i}"
        with StimulusLibrary.create(path) as lib:
            if items:
                recs = [_record(p, s, v, st, tg) for p, s, v, st, tg in items]
                lib.add(recs, np.stack([_image(p, s, v) for p, s, v, _, _ in items]))
        paths.append(path)
    return paths


def check_merge_properties(tmp_path, case) -> None:
    paths = _build(tmp_path, case)
    report = merge_libraries(paths, tmp_path / "out", on_conflict="first")
    # Every copy of a stimulus, in merge order.
    copies: dict[str, list[tuple[str, Stimulus]]] = {}
    for path in paths:
        with StimulusLibrary.open(path) as lib:
            for rec in lib.records():
                copies.setdefault(stimulus_key(rec), []).append((str(path.resolve()), rec))
    with StimulusLibrary.open(tmp_path / "out") as out:
        merged = out.records()
        ids = [r.id for r in merged]
        # Ids unique; one stimulus per distinct (settings, seed); all images present.
        assert len(ids) == len(set(ids))
        assert sorted(stimulus_key(r) for r in merged) == sorted(copies)
        assert report.added == len(merged)
        assert report.added + len(report.repeats) == sum(len(c) for c in copies.values())
        assert {new for _, _, new in report.id_map} == set(ids)
        for rec in merged:
            group = copies[stimulus_key(rec)]
            first_lib, first = group[0]
            # Provenance: the first copy's settings, seed, hashes, probabilities, image; its origin recorded.
            assert {k: v for k, v in rec.settings.items() if k != PROVENANCE} == first.settings
            assert (rec.seed, rec.weight_hashes, rec.probs, rec.created) == (
                first.seed, first.weight_hashes, first.probs, first.created,
            )  # fmt: skip
            sources = rec.settings[PROVENANCE]["sources"]
            assert sources[0] == {"library": first_lib, "id": first.id}
            assert len(sources) == len(group)
            with StimulusLibrary.open(first_lib) as src:
                assert np.array_equal(out.image(rec.id), src.image(first.id))
            # Curation: every tag of every copy survives; the status is the combination in order.
            assert set(rec.tags) == {t for _, c in group for t in c.tags}
            status = first.status
            for _, c in group[1:]:
                status = combine_status(status, c.status) or status
            assert rec.status == status


def test_merge_properties(tmp_path_factory):
    try:
        from hypothesis import HealthCheck, given, settings
        from hypothesis import strategies as st
    except ImportError:  # seeded random cases instead
        for seed in range(15):
            check_merge_properties(tmp_path_factory.mktemp(f"case{seed}"), _make_case(random.Random(seed)))
        return

    @settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.randoms(use_true_random=False))
    def prop(rng):
        check_merge_properties(tmp_path_factory.mktemp("case"), _make_case(rng))

    prop()


def test_repeat_refused_and_target_untouched(tmp_path):
    paths = _build(tmp_path, [[((3, 5), 0, 0, "new", ())], [((3, 5), 0, 0, "new", ("x",))]])
    with pytest.raises(PerceptLabError, match="repeats .*same settings and seed.*nothing was written"):
        merge_libraries(paths, tmp_path / "out", on_repeat="refuse")
    with StimulusLibrary.open(tmp_path / "out") as out:
        assert len(out) == 0


def test_status_conflict_refused_before_writing(tmp_path):
    paths = _build(tmp_path, [[((3, 5), 0, 0, "accepted", ())], [((3, 5), 0, 0, "rejected", ())]])
    with pytest.raises(PerceptLabError, match="status conflict.*--on-conflict first"):
        merge_libraries(paths, tmp_path / "out")
    with StimulusLibrary.open(tmp_path / "out") as out:
        assert len(out) == 0
    report = merge_libraries(paths, tmp_path / "out2", on_conflict="first")
    assert len(report.conflicts) == 1
    with StimulusLibrary.open(tmp_path / "out2") as out:
        assert [r.status for r in out.records()] == ["accepted"]


def test_merge_into_existing_library_folds_curation_into_its_copy(tmp_path):
    a, b = _build(tmp_path, [[((3, 5), 0, 0, "new", ("a",)), ((4, 9), 1, 0, "new", ())],
                             [((3, 5), 0, 0, "accepted", ("b",))]])  # fmt: skip
    report = merge_libraries([b], a)
    assert (report.added, len(report.repeats), report.curation_updates) == (0, 1, 1)
    with StimulusLibrary.open(a) as lib:
        rec = lib.get("s000001")
        assert (rec.status, rec.tags) == ("accepted", ["a", "b"])


def test_base_seed_does_not_make_a_different_stimulus_but_settings_do():
    r = _record((3, 5), 4, 0)
    other_base = _record((3, 5), 4, 0)
    other_base.settings["sampler"]["seed"] = 99
    assert stimulus_key(r) == stimulus_key(other_base)
    assert stimulus_key(r) != stimulus_key(_record((3, 5), 4, 1))  # other gamma
    assert stimulus_key(r) != stimulus_key(_record((3, 5), 5, 0))  # other seed
    assert stimulus_key(r) != stimulus_key(_record((4, 9), 4, 0))  # other pair
    seedless = _record((3, 5), None, 0)
    assert stimulus_key(seedless) is None
    assert stimulus_key(seedless, _image((3, 5), 0, 0)) != stimulus_key(seedless, _image((3, 5), 1, 0))


def test_bad_arguments(tmp_path):
    (path,) = _build(tmp_path, [[]])
    with pytest.raises(PerceptLabError, match="both a source and the target"):
        merge_libraries([path], path)
    with pytest.raises(PerceptLabError, match="given twice"):
        merge_libraries([path, path], tmp_path / "out")
    with pytest.raises(PerceptLabError, match="does not exist"):
        merge_libraries([tmp_path / "nope"], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_shard_committer_is_idempotent(tmp_path):
    with StimulusLibrary.create(tmp_path / "lib") as lib:
        committer = ShardCommitter(lib)
        recs = [_record((3, 5), s, 0) for s in range(3)]
        imgs = np.stack([_image((3, 5), s, 0) for s in range(3)])
        first = committer.commit(recs, imgs, job="j1", worker="w1")
        assert [new for _, new in first] == [True, True, True]
        again = committer.commit(recs[1:], imgs[1:], job="j1", worker="w2")
        assert again == [(first[1][0], False), (first[2][0], False)]
        assert len(lib) == 3 and committer.repeats == 2
        assert lib.get(first[0][0]).settings[PROVENANCE] == {"job": "j1", "worker": "w1"}
    with StimulusLibrary.open(tmp_path / "lib") as lib:  # a resumed job sees what is there
        assert ShardCommitter(lib).commit(recs, imgs)[0] == (first[0][0], False)


def test_cli_merge(tmp_path, capsys):
    import argparse

    from perceptlab.cli import library as library_cli

    paths = _build(tmp_path, [[((3, 5), 0, 0, "accepted", ("a",))], [((3, 5), 0, 0, "new", ("b",)),
                                                                      ((4, 9), 2, 1, "rejected", ())]])  # fmt: skip
    parser = argparse.ArgumentParser(prog="perceptlab")
    library_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["library", "merge", *map(str, paths), "--out", str(tmp_path / "c"),
                              "--id-map", str(tmp_path / "map.csv")])  # fmt: skip
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "2 stimuli added, 1 repeats de-duplicated" in out
    lines = (tmp_path / "map.csv").read_text().splitlines()
    assert lines[0] == "source,old_id,new_id" and lines[1].endswith(",s000001,s000001")
    assert lines[2].endswith(",s000002,s000002")
    with StimulusLibrary.open(tmp_path / "c") as lib:
        assert [(r.status, r.tags) for r in lib.records()] == [("accepted", ["a", "b"]), ("rejected", [])]


def test_merge_keeps_the_job_provenance_of_generated_stimuli(tmp_path):
    """A job's shard (job, task, worker recorded by the engine) merged with another: all of it survives."""
    for name, worker in (("a", "tcp://node1:4001"), ("b", "tcp://node2:4002")):
        with StimulusLibrary.create(tmp_path / name) as lib:
            seeds = (0, 1) if name == "a" else (1, 2)  # seed 1 is in both
            ShardCommitter(lib).commit([_record((3, 5), s, 0) for s in seeds],
                                       np.stack([_image((3, 5), s, 0) for s in seeds]),
                                       [{"task": f"t{s}"} for s in seeds], job="gen-1", worker=worker)  # fmt: skip
    report = merge_libraries([tmp_path / "a", tmp_path / "b"], tmp_path / "c")
    assert (report.added, len(report.repeats)) == (3, 1)
    with StimulusLibrary.open(tmp_path / "c") as lib:
        prov = {r.seed: r.settings[PROVENANCE] for r in lib.records()}
    assert prov[0]["worker"] == prov[1]["worker"] == "tcp://node1:4001" and prov[2]["worker"] == "tcp://node2:4002"
    assert prov[1]["job"] == "gen-1" and prov[1]["task"] == "t1"
    assert [s["library"].endswith("/a") for s in prov[1]["sources"]] == [True, False]  # kept copy, then its repeat
    assert prov[1]["sources"][1] == {"library": str((tmp_path / "b").resolve()), "id": "s000001", "repeat": True}
