"""A public-dataset-shaped file (CIFAR-10S-like: subject_id, stimulus, stimulus_id, response as class
names, rt, true_label on every row) analyses with no mapping, and its per-stimulus entropies equal an
independent scipy.stats.entropy(base=2) recomputation; the CLI reads several files and folders and
reports the class set, catch decision and clustering verdict."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import entropy

import perceptlab.cli
from perceptlab.analysis.clustering import MIN_SILHOUETTE, cluster_participants
from perceptlab.analysis.report import analyze_table
from perceptlab.data.trials import load_trials
from perceptlab.errors import PerceptLabError
from tests.conftest import CIFAR10_NAMES
from tests.conftest import cifar10s_like as _cifar10s_like

NAMES = CIFAR10_NAMES


def cifar10s_like(path, n_sub=40, n_img=120, per=45, seed=7):
    return _cifar10s_like(path, n_sub, n_img, per, seed, p_correct=0.6, rt_ms=(350, 2200))


def test_cifar10s_shaped_file_analyses_without_mapping(tmp_path):
    path = tmp_path / "cifar10s.csv"
    frame = cifar10s_like(path)
    table = load_trials(path)
    assert table.classes == tuple(NAMES)  # alphabetical, which is CIFAR-10's own order
    assert table.report.rows_used == len(frame) and table.report.rows_rejected == 0
    assert not table.df["is_catch"].any()  # true_label on every row is ground truth
    a = analyze_table(table)
    assert len(a.exclusions.trials) == len(frame) and not a.exclusions.excluded
    ours = a.choices.per_stimulus["entropy_bits"]
    theirs = frame.groupby("stimulus")["response"].apply(
        lambda r: entropy(r.value_counts().to_numpy(), base=2))
    assert len(ours) == frame["stimulus"].nunique()
    np.testing.assert_allclose(ours.sort_index().to_numpy(), theirs.sort_index().to_numpy(), atol=1e-9, rtol=0)
    assert "model_human" in a.skipped and "ten digits" in a.skipped["model_human"]
    # per_stimulus.csv counts by class name
    per = a.per_stimulus()
    assert [f"count_{n}" for n in NAMES] == [c for c in per.columns if c.startswith("count_")]
    s = a.summary()
    assert s["classes"] == NAMES
    assert "catch trials: none" in s["decisions"]["catch_trials"]
    assert "ground truth" in s["decisions"]["true_label"]


def test_random_answers_have_no_reliable_cluster_structure():
    rng = np.random.default_rng(0)
    trials = pd.DataFrame({"participant": np.repeat([f"p{i}" for i in range(30)], 60),
                           "stimulus": np.tile([f"s{j}" for j in range(60)], 30),
                           "response": rng.integers(0, 10, 1800)})
    cl = cluster_participants(trials)
    assert cl.silhouette < MIN_SILHOUETTE and not cl.reliable
    assert cl.verdict.startswith("no reliable cluster structure")
    given = cluster_participants(trials, k=3)
    assert given.k == 3 and not given.reliable and "k = 3 as asked" in given.verdict


def test_cli_reads_a_folder_and_several_files(tmp_path, capsys):
    folder = tmp_path / "data"
    folder.mkdir()
    frame = cifar10s_like(tmp_path / "all.csv", n_sub=6, n_img=20, per=15)
    for sub, part in frame.groupby("subject_id"):
        part.to_csv(folder / f"{sub}.csv", index=False)
    (folder / "notes.txt.bak").write_text("x")
    out = tmp_path / "report"
    assert perceptlab.cli.main(["analyze", str(folder), "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["trials_valid"] == len(frame)
    assert len(summary["validation"]["files"]) == 6
    assert all(f["rows_total"] == f["rows_used"] == 15 for f in summary["validation"]["files"])
    per = pd.read_csv(out / "per_stimulus.csv")
    assert "count_deer" in per.columns
    files = sorted(folder.glob("*.csv"))[:2]
    assert perceptlab.cli.main(["analyze", *map(str, files), "--out", str(tmp_path / "two"),
                                "--min-responses", "1"]) == 0
    two = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert two["counts"]["trials_valid"] == 30
    capsys.readouterr()


def test_cli_out_naming_a_file_is_refused(tmp_path, capsys):
    frame = cifar10s_like(tmp_path / "t.csv", n_sub=4, n_img=10, per=8)
    taken = tmp_path / "taken.txt"
    taken.write_text("x")
    assert perceptlab.cli.main(["analyze", str(tmp_path / "t.csv"), "--out", str(taken)]) == 2
    err = capsys.readouterr().err
    assert "is an existing file, not a folder" in err and "Traceback" not in err
    assert len(frame)


def test_whole_file_rejections_name_the_real_cause(tmp_path):
    path = tmp_path / "pp.csv"
    path.write_text("image,key_resp.keys,key_resp.rt,participant\n"
                    "a.png,\"['1', '2']\",\"[0.5, 0.6]\",P1\nb.png,\"['3', '1']\",\"[0.4, 0.9]\",P1\n")
    with pytest.raises(PerceptLabError) as info:
        load_trials(path)
    assert "several keys pressed" in str(info.value) and "catch" not in str(info.value)


def test_min_responses_not_library_is_named(tmp_path):
    path = tmp_path / "one.csv"
    path.write_text("participant,stimulus,response\n" + "".join(f"p1,s{i}.png,{i % 10}\n" for i in range(12)))
    a = analyze_table(load_trials(path))
    assert "--min-responses" in a.skipped["outcomes"] and "library" not in a.skipped["outcomes"]
