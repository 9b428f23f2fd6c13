"""Data returned by the jsPsych export (a real headless-Chromium run, tests/browser/capture_returned.py):
one file per participant, the end-of-session CSV download and a JSON recovered from localStorage,
load from their folder as one data set, catch trials recognised and scored."""

from __future__ import annotations

import json
from pathlib import Path

from perceptlab.analysis.exclusions import apply_exclusions
from perceptlab.cli import main
from perceptlab.data.trials import load_trials

RETURNED = Path(__file__).with_name("jspsych_returned")


def test_folder_of_participant_files_is_one_data_set():
    table = load_trials(RETURNED)
    df = table.df
    assert table.report.rows_total == 22 and table.report.rows_used == 22  # 12 rows + 10 (two unanswered)
    assert sorted(df["participant"].unique()) == ["P01", "P02"]
    assert int(df["is_catch"].sum()) == 4
    catch = df[df["is_catch"].astype(bool)]
    assert catch["stimulus"].str.startswith("catch/").all() and catch["true_label"].notna().all()
    assert df.loc[~df["is_catch"].astype(bool), "true_label"].isna().all()
    assert df["rt_ms"].notna().all()
    result = apply_exclusions(df, catch_threshold=0.7)
    assert result.excluded == ["P02"]
    assert result.catch.loc["P01", "accuracy"] == 1.0 and result.catch.loc["P02", "accuracy"] == 0.0
    assert len(result.trials) == 10


def test_analyze_cli_takes_the_folder(tmp_path, capsys):
    assert main(["analyze", str(RETURNED), "--out", str(tmp_path / "report"), "--min-responses", "1"]) == 0
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["exclusions"]["catch_trials"] == 4
    assert [p["participant"] for p in summary["exclusions"]["excluded_participants"]] == ["P02"]
    assert "2 files" in capsys.readouterr().out
