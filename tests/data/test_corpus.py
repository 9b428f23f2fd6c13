"""The corpus of real-world-shaped and malformed trial files (tests/data/corpus): every file gets its
expected verdict — loads with the stated rows used and set aside by kind, or is refused with a
message saying why. Zero silent losses (rows in = used + set aside, and the rows used are the ones
expected), zero tracebacks (only PerceptLabError), zero hangs (a timeout per file)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from perceptlab.data.trials import load_trials
from perceptlab.errors import PerceptLabError

CORPUS = Path(__file__).parent / "corpus"
CASES = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))
TIMEOUT_S = 20


class Hang(Exception):
    pass


def _alarm(_sig, _frame):
    raise Hang(f"no verdict within {TIMEOUT_S} s")


def _special(name: str, tmp: Path) -> Path:
    path = tmp / name
    if name == "symlink_to_dev_zero.csv":
        path.symlink_to("/dev/zero")
    elif name == "fifo.csv":
        os.mkfifo(path)
    elif name == "broken_symlink.csv":
        path.symlink_to(tmp / "gone.csv")
    elif name == "folder_without_trials":
        path.mkdir()
        (path / "readme.md").write_text("no trials\n")
    return path


def _load(path: Path, kwargs: dict):
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(TIMEOUT_S)
    try:
        return load_trials(path, **kwargs)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def test_corpus_is_large_and_varied():
    assert len(CASES) >= 80
    verdicts = [c["verdict"] for c in CASES]
    assert verdicts.count("loads") >= 50 and verdicts.count("refused") >= 25


@pytest.mark.parametrize("case", CASES, ids=[c["file"] for c in CASES])
def test_corpus_verdict(case, tmp_path):
    path = _special(case["file"], tmp_path) if case.get("special") else CORPUS / "files" / case["file"]
    kwargs = case.get("kwargs", {})
    if case["verdict"] == "refused":
        with pytest.raises(PerceptLabError) as info:
            _load(path, kwargs)
        message = str(info.value)
        for words in case["message"]:
            assert words in message, message
        assert "catch trials" not in message, message  # never blamed on catch trials
        return
    table = _load(path, kwargs)
    rep = table.report
    assert rep.rows_used + rep.rows_rejected == rep.rows_total
    assert len(table.df) == rep.rows_used == case["used"], rep.summary()
    assert rep.rejected_by_kind() == case["set_aside"], rep.summary()
    assert rep.rows_total == case["used"] + sum(case["set_aside"].values()), rep.summary()
    assert rep.rejected["line"].notna().all() and (rep.rejected["reason"].str.len() > 0).all()
    notes = " | ".join(rep.notes)
    for words in case.get("notes", []):
        assert words in notes, notes
    if "classes" in case:
        assert list(table.classes) == case["classes"]
    if "catch" in case:
        assert int(table.df["is_catch"].sum()) == case["catch"]
    if "participants" in case:
        assert table.df["participant"].tolist() == case["participants"]
    if "stimuli" in case:
        assert table.df["stimulus"].tolist()[: len(case["stimuli"])] == case["stimuli"]
    if "responses" in case:
        assert table.df["response"].tolist() == case["responses"]
    if "rt_max" in case:
        assert table.df["rt_ms"].max() == pytest.approx(case["rt_max"])
    if "synthetic" in case:
        assert table.synthetic is case["synthetic"]
    if "files_refused" in case:
        assert sum(1 for f in rep.files if f.get("error")) == case["files_refused"]
