import csv
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from perceptlab.data import library as library_module
from perceptlab.data.library import (
    DB_NAME,
    MANIFEST_COLUMNS,
    Stimulus,
    StimulusLibrary,
    format_cell,
    manifest_values,
)
from perceptlab.errors import PerceptLabError

REPO = Path(__file__).resolve().parents[2]
REQUIRED = [
    "stimulus_id", "file", "mode", "class_a", "class_b", "classifier", "classifier2", "gamma", "steps",
    "resample", "seed", "p_a", "p_b", "judge", "passed", "status",
]  # fmt: skip


def make_records(n: int, mode: str = "uncertainty", pair: tuple[int, int] = (3, 5), **kw) -> list[Stimulus]:
    """n plausible generated stimuli."""
    recs = []
    for i in range(n):
        probs = np.full(10, 0.02)
        probs[list(pair)] = [0.45, 0.39]
        recs.append(
            Stimulus(
                mode=mode,
                class_a=pair[0],
                class_b=pair[1],
                classifier="vgg",
                classifier2="vit" if mode == "controversial" else None,
                gamma=0.1,
                steps=50,
                resample=5,
                seed=1000 + i,
                settings={"gamma": 0.1, "steps": 50, "resample": 5, "terms": ["uncertainty", "judge"]},
                weight_hashes={"vgg": "ab" * 32, "judge": "cd" * 32},
                probs={"vgg": probs.tolist(), "mlp": np.full(10, 0.1).tolist()},
                p_a=0.45,
                p_b=0.39,
                judge=0.8,
                passed=i % 2 == 0,
                reason="" if i % 2 == 0 else "surrogate 0.31 <= 0.5",
                **kw,
            )
        )
    return recs


def make_images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 28, 28), dtype=np.uint8)


def assert_manifest_in_step(lib: StimulusLibrary) -> None:
    with open(lib.manifest_path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert tuple(rows[0]) == MANIFEST_COLUMNS
    assert rows[0][: len(REQUIRED)] == REQUIRED
    expected = [[format_cell(manifest_values(r)[c]) for c in MANIFEST_COLUMNS] for r in lib.records()]
    assert rows[1:] == expected


def assert_consistent(lib: StimulusLibrary) -> None:
    """Every row has its image, no orphan or temporary file, manifest matches the table."""
    ids = lib.ids()
    files = sorted(p.name for p in lib.images_dir.iterdir())
    assert files == sorted(f"{i}.png" for i in ids)
    assert not list(lib.path.glob(".*tmp*"))
    assert_manifest_in_step(lib)


@pytest.fixture()
def lib(tmp_path):
    with StimulusLibrary.create(tmp_path / "lib") as library:
        yield library


# ----------------------------------------------------------------------------- records


def test_round_trip_of_every_field(lib):
    rec = make_records(1, mode="controversial", pair=(4, 9), tags=["batch1", "nice"], note="a, b\nc")[0]
    rec.created = "2025-01-02T03:04:05+00:00"
    rec.status = "accepted"
    rec.seed = 2**63 - 1
    img = make_images(1)
    [sid] = lib.add([rec], img)
    assert sid == "s000001"
    got = lib.get(sid)
    expected = Stimulus.from_dict({**rec.to_dict(), "id": sid})
    assert got == expected
    assert rec.id == ""  # the caller's record is not modified
    assert Stimulus.from_dict(json.loads(json.dumps(got.to_dict()))) == got
    np.testing.assert_array_equal(lib.image(sid), img[0])
    assert lib.image_path(sid) == lib.path / "images" / "s000001.png"
    assert got.pair == (4, 9)
    lib.close()
    with StimulusLibrary.open(lib.path) as again:
        assert again.get(sid) == expected
        assert_manifest_in_step(again)


def test_numpy_values_and_defaults(lib):
    rec = Stimulus(
        mode="mnist",
        class_a=np.int64(7),
        gamma=np.float32(0.5),
        passed=np.bool_(False),
        probs={"vgg": np.linspace(0, 1, 10, dtype=np.float32)},
        settings={"x": np.arange(3)},
    )
    [sid] = lib.add([rec], make_images(1))
    got = lib.get(sid)
    assert got.class_a == 7 and got.gamma == 0.5 and got.passed is False
    assert got.settings == {"x": [0, 1, 2]} and len(got.probs["vgg"]) == 10
    assert got.status == "new" and got.tags == [] and got.class_b is None and got.created.endswith("+00:00")


def test_from_dict_refuses_unknown_fields():
    with pytest.raises(PerceptLabError, match="unknown stimulus field"):
        Stimulus.from_dict({"mode": "mnist", "colour": 1})
    with pytest.raises(PerceptLabError, match="no 'mode'"):
        Stimulus.from_dict({"class_a": 1})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"mode": "guided"}, "unknown mode"),
        ({"class_a": 10}, "class_a = 10"),
        ({"probs": {"vgg": [0.5, 0.5]}}, "has 2 values"),
        ({"p_a": float("nan")}, "p_a is NaN"),
        ({"status": "maybe"}, "unknown status"),
        ({"tags": ["a;b"]}, "invalid tag"),
        ({"settings": {"f": object()}}, "cannot be stored as JSON"),
    ],
)
def test_invalid_records_add_nothing(lib, change, message):
    good, bad = make_records(2)
    for key, value in change.items():
        setattr(bad, key, value)
    with pytest.raises(PerceptLabError, match=message):
        lib.add([good, bad], make_images(2))
    assert len(lib) == 0 and not list(lib.images_dir.iterdir())


def test_image_batch_checks(lib):
    with pytest.raises(PerceptLabError, match="expected uint8"):
        lib.add(make_records(1), np.zeros((1, 28, 28), np.float32))
    with pytest.raises(PerceptLabError, match=r"expected \(N, 28, 28\)"):
        lib.add(make_records(1), np.zeros((1, 1, 28, 28), np.uint8))
    with pytest.raises(PerceptLabError, match="2 records but 1 images"):
        lib.add(make_records(2), make_images(1))
    assert lib.add([], np.zeros((0, 28, 28), np.uint8)) == []


def test_ids_continue_after_reopen_and_are_never_reused(lib):
    assert lib.add(make_records(3), make_images(3)) == ["s000001", "s000002", "s000003"]
    lib.delete(["s000003"])
    lib.close()
    with StimulusLibrary.open(lib.path) as again:
        assert again.add(make_records(2), make_images(2)) == ["s000004", "s000005"]
        assert again.ids() == ["s000001", "s000002", "s000004", "s000005"]
        assert len(again) == 4 and "s000003" not in again and "s000004" in again
        assert_consistent(again)


def test_filters_summary_and_dataframe(lib):
    lib.add(make_records(3, pair=(3, 5)), make_images(3))
    lib.add(make_records(2, mode="controversial", pair=(1, 7)), make_images(2))
    lib.set_status(["s000001", "s000004"], "accepted")
    lib.add_tags(["s000002", "s000004"], "keep")
    assert lib.ids(status="accepted") == ["s000001", "s000004"]
    assert lib.ids(mode="controversial") == ["s000004", "s000005"]
    assert lib.ids(pair=(3, 5)) == ["s000001", "s000002", "s000003"]
    assert lib.ids(pair=(5, 3)) == []
    assert [r.id for r in lib.records(tag="keep", status="accepted")] == ["s000004"]
    assert lib.summary() == {
        "total": 5,
        "by_status": {"new": 3, "accepted": 2, "rejected": 0},
        "by_mode": {"controversial": 2, "uncertainty": 3},
        "by_pair": {"1-7": 2, "3-5": 3},
        "missing_images": [],
    }
    df = lib.to_dataframe()
    assert list(df.columns) == list(MANIFEST_COLUMNS)
    assert df["stimulus_id"].tolist() == lib.ids()
    assert df["class_a"].dtype == "Int64" and df["passed"].tolist() == [True, False, True, True, False]
    assert df.loc[3, "tags"] == "keep" and df.loc[0, "file"] == "images/s000001.png"
    with pytest.raises(PerceptLabError, match="unknown mode"):
        lib.ids(mode="bogus")


# ----------------------------------------------------------------------------- curation


def test_curation_returns_previous_values_and_keeps_manifest_in_step(lib):
    ids = lib.add(make_records(3, tags=["t0"]), make_images(3))
    assert_manifest_in_step(lib)

    assert lib.set_status(ids[:2], "accepted") == {ids[0]: "new", ids[1]: "new"}
    assert_manifest_in_step(lib)
    assert lib.set_status(ids[0], "rejected") == {ids[0]: "accepted"}

    assert lib.add_tags(ids, ["a", "t0"]) == {i: ["t0"] for i in ids}
    assert lib.get(ids[0]).tags == ["t0", "a"]
    assert_manifest_in_step(lib)
    assert lib.remove_tags(ids[1:], "t0") == {ids[1]: ["t0", "a"], ids[2]: ["t0", "a"]}
    assert lib.get(ids[1]).tags == ["a"]
    assert lib.set_tags(ids[2], ["x", " y ", "x"]) == ["a"]
    assert lib.get(ids[2]).tags == ["x", "y"]
    assert lib.set_note(ids[2], "odd stroke") == ""
    assert lib.set_note(ids[2], "ok") == "odd stroke"
    assert_manifest_in_step(lib)

    # undo / redo through revert
    previous = lib.set_status(ids, "rejected")
    redo = lib.revert("status", previous)
    assert [lib.get(i).status for i in ids] == ["rejected", "accepted", "new"]
    assert redo == {i: "rejected" for i in ids}
    old_tags = lib.add_tags(ids, "z")
    lib.revert("tags", old_tags)
    assert lib.get(ids[0]).tags == ["t0", "a"]
    lib.revert("note", {ids[2]: ""})
    assert lib.get(ids[2]).note == ""
    with pytest.raises(PerceptLabError, match="cannot revert 'mode'"):
        lib.revert("mode", {ids[0]: "mnist"})
    assert_manifest_in_step(lib)


def test_unknown_ids_are_named_and_change_nothing(lib):
    ids = lib.add(make_records(2), make_images(2))
    with pytest.raises(PerceptLabError, match="no stimulus 's999999'"):
        lib.set_status([ids[0], "s999999"], "accepted")
    assert lib.get(ids[0]).status == "new"
    for call in (
        lambda: lib.get("s000077"),
        lambda: lib.image("s000077"),
        lambda: lib.add_tags(["s000077"], "x"),
        lambda: lib.set_note("s000077", "x"),
        lambda: lib.delete(["s000077", ids[1]]),
    ):
        with pytest.raises(PerceptLabError, match="s000077"):
            call()
    assert lib.ids() == ids
    with pytest.raises(PerceptLabError, match="unknown status"):
        lib.set_status(ids, "approved")


def test_delete_removes_rows_and_files(lib):
    ids = lib.add(make_records(3), make_images(3))
    assert lib.delete(ids[:2]) == 2
    assert lib.ids() == ids[2:]
    assert_consistent(lib)


def test_failed_image_write_adds_nothing(lib, monkeypatch):
    calls = []
    real_fsync = os.fsync

    def flaky_fsync(fd):
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(library_module.os, "fsync", flaky_fsync)
    with pytest.raises(PerceptLabError, match=r"cannot write images into .*: No space left on device"):
        lib.add(make_records(3), make_images(3))
    monkeypatch.undo()
    assert len(lib) == 0 and not list(lib.images_dir.iterdir())
    assert lib.add(make_records(1), make_images(1)) == ["s000001"]
    assert_consistent(lib)


def test_missing_image_file_is_a_clear_error(lib):
    [sid] = lib.add(make_records(1), make_images(1))
    lib.image_path(sid).unlink()
    with pytest.raises(PerceptLabError, match=f"image .*{sid}.png of stimulus {sid} is missing"):
        lib.image(sid)


def test_closed_library(lib):
    lib.close()
    lib.close()
    with pytest.raises(PerceptLabError, match="is closed"):
        len(lib)


# ----------------------------------------------------------------------------- opening


def test_open_refuses_folders_that_are_not_libraries(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(PerceptLabError, match=r"empty is not a PerceptLab library \(no library.sqlite\)") as err:
        StimulusLibrary.open(tmp_path / "empty")
    assert "pick the folder that contains library.sqlite" in str(err.value)
    with pytest.raises(PerceptLabError, match="does not exist"):
        StimulusLibrary.open(tmp_path / "nowhere")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(PerceptLabError, match="is a file"):
        StimulusLibrary.open(tmp_path / "file.txt")
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "notes.txt").write_text("x")
    with pytest.raises(PerceptLabError, match="not empty and is not a PerceptLab library"):
        StimulusLibrary.open_or_create(tmp_path / "stuff")
    with pytest.raises(PerceptLabError, match="is not empty"):
        StimulusLibrary.create(tmp_path / "stuff")


def test_open_or_create(tmp_path):
    with StimulusLibrary.open_or_create(tmp_path / "new" / "lib") as lib:
        lib.add(make_records(1), make_images(1))
    (tmp_path / "empty").mkdir()
    with StimulusLibrary.open_or_create(tmp_path / "empty") as lib:
        assert len(lib) == 0
    with StimulusLibrary.open_or_create(tmp_path / "new" / "lib") as lib:
        assert lib.ids() == ["s000001"]
    with pytest.raises(PerceptLabError, match="already a PerceptLab library"):
        StimulusLibrary.create(tmp_path / "new" / "lib")


def test_newer_schema_is_refused(lib):
    lib.close()
    with sqlite3.connect(lib.path / DB_NAME) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(PerceptLabError, match=r"newer PerceptLab \(library schema 99"):
        StimulusLibrary.open(lib.path)


def test_damaged_database_is_a_clear_error(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / DB_NAME).write_bytes(b"garbage" * 100)
    with pytest.raises(PerceptLabError, match=r"library\.sqlite"):
        StimulusLibrary.open(tmp_path / "lib")


def test_interrupted_create_is_finished_on_open(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / DB_NAME).write_bytes(b"")  # killed before the first commit
    with StimulusLibrary.open(tmp_path / "lib") as lib:
        assert lib.add(make_records(1), make_images(1)) == ["s000001"]
        assert_consistent(lib)


def test_read_only_folder_simulated(tmp_path, monkeypatch):
    with StimulusLibrary.create(tmp_path / "lib"):
        pass
    real_access = os.access
    monkeypatch.setattr(
        library_module.os, "access", lambda p, mode: False if Path(p) == tmp_path / "lib" else real_access(p, mode)
    )
    with pytest.raises(PerceptLabError, match=r"library folder .*lib is read-only — make it writable"):
        StimulusLibrary.open(tmp_path / "lib")


def test_read_only_folder_when_creating_a_file_fails(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)  # the module check_writable probes with
    with pytest.raises(PerceptLabError, match="ro is read-only"):
        StimulusLibrary.create(tmp_path / "ro")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores permissions")
def test_read_only_folder_real(tmp_path):
    with StimulusLibrary.create(tmp_path / "lib"):
        pass
    os.chmod(tmp_path / "lib", 0o555)
    try:
        with pytest.raises(PerceptLabError, match="read-only"):
            StimulusLibrary.open(tmp_path / "lib")
    finally:
        os.chmod(tmp_path / "lib", 0o755)


# ----------------------------------------------------------------------------- crash safety


def test_orphans_and_temporary_files_are_cleaned_on_open(lib):
    ids = lib.add(make_records(2), make_images(2))
    lib.close()
    images = lib.path / "images"
    (images / ".tmp-s000003.png").write_bytes(b"half")
    (images / "s000003.png").write_bytes((images / f"{ids[0]}.png").read_bytes())  # renamed, never committed
    (images / "user-notes.png").write_bytes(b"not ours")  # not an id name: left alone
    (lib.path / ".manifest.csv.tmp").write_text("partial")
    (lib.path / "manifest.csv").write_text("stale")
    with StimulusLibrary.open(lib.path) as again:
        names = sorted(p.name for p in images.iterdir())
        assert names == ["s000001.png", "s000002.png", "user-notes.png"]
        assert not (lib.path / ".manifest.csv.tmp").exists()
        assert_manifest_in_step(again)
        assert again.add(make_records(1), make_images(1)) == ["s000003"]


_CHILD = r"""
import sys
import numpy as np
from perceptlab.data.library import Stimulus, StimulusLibrary

lib = StimulusLibrary.open_or_create(sys.argv[1])
rng = np.random.default_rng(int(sys.argv[2]))
print("ready", flush=True)
while True:
    n = int(rng.integers(1, 6))
    seeds = [int(s) for s in rng.integers(0, 2**31, n)]
    recs = [Stimulus(mode="uncertainty", class_a=1, class_b=7, seed=s, probs={"vgg": [0.1] * 10}) for s in seeds]
    imgs = np.stack([np.random.default_rng(s).integers(0, 256, (28, 28), dtype=np.uint8) for s in seeds])
    ids = lib.add(recs, imgs)
    print(" ".join(ids), flush=True)
    lib.set_status(ids[:1], "accepted")
    lib.add_tags(ids, "crash-test")
"""


def test_kill_9_at_random_moments_leaves_a_consistent_library(tmp_path):
    path = tmp_path / "lib"
    rnd = random.Random(1234)
    committed: list[str] = []
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    for round_ in range(5):
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(path), str(round_)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO,
        )
        assert child.stdout.readline().strip() == "ready", child.stderr.read()
        time.sleep(rnd.uniform(0.02, 0.4))
        os.kill(child.pid, signal.SIGKILL)
        out, _ = child.communicate()
        assert child.returncode == -signal.SIGKILL
        committed += [i for line in out.splitlines() for i in line.split()]

    with StimulusLibrary.open(path) as lib:
        ids = lib.ids()
        assert ids, "the child never committed anything"
        assert set(committed) <= set(ids)  # everything add() returned before the kill is there
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        for rec in lib.records():
            expected = np.random.default_rng(rec.seed).integers(0, 256, (28, 28), dtype=np.uint8)
            np.testing.assert_array_equal(lib.image(rec.id), expected)
        assert_consistent(lib)
        [new] = lib.add(make_records(1), make_images(1))
        assert int(new[1:]) > int(ids[-1][1:])
