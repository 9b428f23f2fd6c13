"""A corpus of malformed trial files: each gives a specific message, never a crash, and the row
accounting always adds up (rows_used + rejected == rows_total)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from perceptlab.data.trial_layouts import ColumnMapping
from perceptlab.data.trials import load_trials
from perceptlab.errors import PerceptLabError

EMOTIONS = ["surprise", "fear", "disgust", "happiness", "sadness", "anger"]
HEAD = "participant,stimulus,response"


@dataclass
class Case:
    name: str
    content: str | bytes
    expect_error: tuple[str, ...] = ()  # substrings of the PerceptLabError message
    total: int | None = None
    used: int | None = None
    kinds: dict[str, int] = field(default_factory=dict)
    reasons: tuple[str, ...] = ()  # substrings that must appear among rejected reasons
    lines: tuple[int, ...] = ()  # rejected line numbers, in order
    kwargs: dict = field(default_factory=dict)
    filename: str = "trials.csv"


CASES = [
    Case("semicolon", "participant;stimulus;response\np1;a.png;3\np2;a.png;4\n", total=2, used=2),
    Case("tab", "participant\tstimulus\tresponse\np1\ta.png\t3\n", total=1, used=1,
         filename="trials.tsv"),
    Case("pipe", "participant|stimulus|response\np1|a.png|3\n", total=1, used=1),
    Case("row with another delimiter", f"{HEAD}\np1;a.png;3\np2,a.png,4\n", total=2, used=1,
         kinds={"wrong number of fields": 1}, lines=(2,),
         reasons=("1 field where the header has 3 (the row does not use the header's delimiter ','?)",)),
    Case("space delimited", "participant stimulus response\np1 a.png 3\n",
         expect_error=("single column 'participant stimulus response'", "delimiter")),
    Case("missing column", "participant,stimulus,answer\np1,a.png,3\n",
         expect_error=("closest is canonical, which lacks response", "column mapping")),
    Case("unnamed column", "participant,,response\np1,a.png,3\n", expect_error=("unnamed column",)),
    Case("duplicate column", "participant,stimulus,response,response\np1,a,3,4\n",
         expect_error=("repeats the column name(s) ['response']",)),
    Case("BOM", "\ufeff" + f"{HEAD}\np1,a.png,3\n", total=1, used=1),
    Case("CRLF", f"{HEAD}\r\np1,a.png,3\r\np2,b.png,4\r\n", total=2, used=2),
    Case("empty", "", expect_error=("is empty (0 bytes)",)),
    Case("whitespace only", " \n\n \n", expect_error=("is empty (only whitespace)",)),
    Case("comments only", "# exported by hand\n", expect_error=("has no header row",)),
    Case("header only", f"{HEAD}\n\n", expect_error=("has a header but no data rows",)),
    Case("mixed types in response", f"{HEAD}\np1,a,3\np1,b,three\np1,c,3.0\np1,d,3.5\np1,e,-1\n",
         total=5, used=2, kinds={"response outside the classes": 3}, lines=(3, 5, 6),
         reasons=("response 'three' is not one of the classes (0, 1, 2, 3, 4, 5, 6, 7, 8, 9)",
                  "response '3.5'", "response '-1'")),
    Case("huge response", f"{HEAD}\np1,a,{10**30}\np1,b,2\n", total=2, used=1,
         reasons=(f"response '{10**30}' is not one of the classes",)),
    Case("huge rt", f"{HEAD},rt_ms\np1,a,3,1e308\np1,b,3,1e309\np1,c,3,812\n", total=3, used=1,
         kinds={"implausible rt": 1, "non-finite rt": 1},
         reasons=("rt '1e308' ms is implausibly long (> 3.6e+06 ms)", "rt '1e309' is not finite")),
    Case("negative rt", f"{HEAD},rt_ms\np1,a,3,-5\np1,b,3,400\n", total=2, used=1,
         reasons=("negative rt '-5' ms",)),
    Case("non-numeric rt", f"{HEAD},rt_ms\np1,a,3,fast\np1,b,3,\n", total=2, used=2 - 1,
         reasons=("rt 'fast' is not a number",)),
    Case("NaN strings", f"{HEAD},rt_ms\nNaN,a,3,400\np1,nan,3,400\np1,b,NULL,400\np1,c,3,NaN\n",
         total=4, used=1,
         kinds={"missing participant": 1, "missing stimulus": 1, "missing response": 1},
         reasons=("missing participant ('participant' is empty)", "missing stimulus",
                  "missing response ('response' is empty)")),
    Case("empty row of delimiters", f"{HEAD}\np1,a,3\n,,\n", total=2, used=1,
         reasons=("empty row (no values)",)),
    Case("trailing blank lines", f"{HEAD}\np1,a,3\n\n\n   \n\n", total=1, used=1),
    Case("blank line inside", f"{HEAD}\np1,a,3\n\np1,b,x\n", total=2, used=1, lines=(4,)),
    Case("quoted commas and a quoted line break",
         f'{HEAD}\n"p1, jr","a,b.png",3\n"p2","multi\nline.png",4\np3,c.png,11\n',
         total=3, used=2, lines=(5,), reasons=("response '11'",)),
    Case("unterminated quote", f'{HEAD}\np1,"a.png,3\np2,b.png,4\n',
         expect_error=("malformed quoting in the record starting on line 2",)),
    Case("unquoted comma in a value", f"{HEAD}\np1,a,b.png,3\np1,c.png,3\n", total=2, used=1,
         reasons=("4 fields where the header has 3 (an unquoted ',' inside a value?)",)),
    Case("duplicated header row", f"{HEAD}\np1,a,3\n{HEAD}\np1,b,4\n", total=3, used=2,
         kinds={"repeated header row": 1}, lines=(3,)),
    Case("duplicate trial", f"{HEAD},trial_index\np1,a,3,1\np1,a,3,1\np1,a,3,x\np1,a,3,2\n",
         total=4, used=2,
         reasons=("duplicate trial (same participant, stimulus and trial_index as line 2)",
                  "trial_index 'x' is not an integer")),
    Case("catch columns", f"{HEAD},is_catch,true_label\np1,a,3,1,3\np1,b,3,maybe,3\np1,c,3,0,12\n",
         total=3, used=1,
         reasons=("is_catch 'maybe' is not true/false", "true_label '12' is not one of the classes")),
    Case("is_train invalid", f"{HEAD},is_train\np1,a,3,True\np1,b,3,sometimes\n", total=2, used=1,
         reasons=("is_train 'sometimes' is not true/false",)),
    Case("not UTF-8", f"{HEAD}\n".encode() + "Jos\xe9,a.png,3\n".encode("latin-1"), total=1, used=1),
    Case("latin-1 declared", f"{HEAD}\n".encode() + "Jos\xe9,a.png,3\n".encode("latin-1"),
         total=1, used=1, kwargs={"encoding": "latin-1"}),
    Case("UTF-16 with BOM", f"{HEAD}\np1,a.png,3\n".encode("utf-16"), total=1, used=1),
    Case("responses as names", f"{HEAD}\np1,a,anger\np1,b,Fear\np1,c,joy\n", total=3, used=2,
         kwargs={"classes": EMOTIONS},
         reasons=("response 'joy' is not one of the classes (surprise, fear, disgust, happiness, "
                  "sadness, anger) nor a class index 0..5",)),
    Case("jsPsych non-response trials",
         '"subject","trial_type","trial_index","stimulus","response","rt"\n'
         '"s1","preload","0","","",""\n"s1","instructions","1","","","5000"\n'
         '"s1","html-keyboard-response","2","<div>+</div>","",""\n'
         '"s1","image-button-response","3","img/a.png","3","512.3"\n'
         '"s1","html-button-response","4","<img src=\'img/b.png\'>","10","400"\n',
         total=5, used=1, kinds={"not a response trial": 3, "response outside the classes": 1},
         reasons=("not a response trial (trial_type 'preload')",
                  "not a response trial (a screen without an image: instructions or fixation; "
                  "trial_type 'html-keyboard-response')", "response '10' is not one of the classes")),
    Case("jsPsych without subject", "trial_type,stimulus,response\nimage-button-response,a.png,1\n",
         expect_error=("jsPsych export without a participant column", "addProperties")),
    Case("PsychoPy routines", "participant,image,key_resp.keys,key_resp.rt,trials.thisN\n"
         "P1,,,,\nP1,a.png,3,0.532,0\nP1,b.png,None,,1\n", total=3, used=1,
         reasons=("not a response trial (no stimulus and no key: a routine outside the trial loop)",
                  "missing response ('key_resp.keys' is empty)")),
    Case("JSON lines with bad lines",
         '{"participant":"p1","stimulus":"a.png","response":3}\nnot json\n[1,2]\n\n'
         '{"participant":"p1","stimulus":"b.png","response":12}\n', total=4, used=1,
         kinds={"not valid JSON": 1, "not a JSON object": 1, "response outside the classes": 1},
         lines=(2, 3, 5), reasons=("not valid JSON: Expecting value", "a JSON list, not an object",
                                   "response '12'"), filename="trials.jsonl"),
    Case("JSON array with a non-object",
         '[{"participant":"p1","stimulus":"a.png","response":3}, 7]', total=2, used=1,
         reasons=("array element is not an object",), filename="trials.json"),
    Case("broken JSON array", '[{"participant": "p1",', expect_error=("not valid JSON (line 1",),
         filename="trials.json"),
    Case("mapping names an absent column", "subj,img,key\ns1,a.png,3\n",
         expect_error=("the column mapping names columns that are not in the file (response -> 'choice')",),
         kwargs={"mapping": ColumnMapping("subj", "img", "choice")}),
]


def _write(tmp_path, case: Case):
    path = tmp_path / case.filename
    data = case.content.encode("utf-8") if isinstance(case.content, str) else case.content
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_trial_corpus(tmp_path, case: Case):
    path = _write(tmp_path, case)
    if case.expect_error:
        with pytest.raises(PerceptLabError) as info:
            load_trials(path, **case.kwargs)
        message = str(info.value)
        assert str(path) in message
        for text in case.expect_error:
            assert text in message, message
        return
    table = load_trials(path, **case.kwargs)
    rep = table.report
    assert rep.rows_used + rep.rows_rejected == rep.rows_total
    assert len(table.df) == rep.rows_used
    assert (rep.rows_total, rep.rows_used) == (case.total, case.used), rep.summary()
    for kind, count in case.kinds.items():
        assert rep.rejected_by_kind().get(kind) == count, rep.summary()
    reasons = " | ".join(rep.rejected["reason"])
    for text in case.reasons:
        assert text in reasons, reasons
    if case.lines:
        assert tuple(rep.rejected["line"]) == case.lines
    assert list(table.df.columns) == ["participant", "stimulus", "response", "rt_ms", "is_train",
                                      "trial_index", "is_catch", "true_label", "line"]
    assert rep.summary().startswith(str(path))


def test_corpus_is_large_enough():
    assert len(CASES) >= 30


def test_special_values_survive(tmp_path):
    by_name = {c.name: c for c in CASES}
    t = load_trials(_write(tmp_path, by_name["BOM"]))
    assert t.df["participant"].tolist() == ["p1"] and t.report.encoding == "utf-8-sig"
    t = load_trials(_write(tmp_path, by_name["not UTF-8"]))
    assert t.df["participant"].tolist() == ["José"] and t.report.encoding == "cp1252"
    assert "not UTF-8 (byte 0xe9 on line 2)" in " ".join(t.report.notes)
    t = load_trials(_write(tmp_path, by_name["latin-1 declared"]), encoding="latin-1")
    assert t.df["participant"].tolist() == ["José"]
    t = load_trials(_write(tmp_path, by_name["quoted commas and a quoted line break"]))
    assert t.df["participant"].tolist() == ["p1, jr", "p2"]
    assert t.df["stimulus"].tolist() == ["a,b.png", "multi\nline.png"]
    assert t.df["line"].tolist() == [2, 3]
    t = load_trials(_write(tmp_path, by_name["responses as names"]), classes=EMOTIONS)
    assert t.df["response"].tolist() == [5, 1]
    t = load_trials(_write(tmp_path, by_name["PsychoPy routines"]))
    assert t.df["rt_ms"].tolist() == pytest.approx([532.0])
    assert "converted from seconds" in " ".join(t.report.notes)
    t = load_trials(_write(tmp_path, by_name["jsPsych non-response trials"]))
    assert "preload 1" in " ".join(t.report.notes)
    assert t.df["stimulus"].tolist() == ["img/a.png"]


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(PerceptLabError, match="does not exist"):
        load_trials(tmp_path / "nope.csv")
    with pytest.raises(PerceptLabError, match="holds no trial files"):
        load_trials(tmp_path)
