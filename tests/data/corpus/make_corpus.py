"""Write the trial-file corpus (``files/``) and its expected verdicts (``expected.json``).

Each case is a file (or folder) a researcher might hand PerceptLab, with the verdict decided by hand:
``loads`` with the rows used and set aside by kind (and notes or classes that must be reported), or
``refused`` with words the message must contain. Run ``python tests/data/corpus/make_corpus.py`` to
rewrite the corpus; ``tests/data/test_corpus.py`` checks every verdict. Cases marked ``special``
(a symlink to /dev/zero, a FIFO, a broken link) are made by the test itself: git cannot hold them.
"""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

HERE = Path(__file__).parent
FILES = HERE / "files"
NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
H = "participant,stimulus,response"
CASES: list[dict] = []


def case(name, content, verdict="loads", **expect):
    CASES.append({"file": name, "content": content, "verdict": verdict, **expect})


def ok(name, content, used, aside=None, **expect):
    case(name, content, "loads", used=used, set_aside=aside or {}, **expect)


def bad(name, content, *words, **expect):
    case(name, content, "refused", message=list(words), **expect)


def rows(n, fmt):
    return "".join(fmt.format(i=i, r=i % 10, s=f"s{i}.png") + "\n" for i in range(n))


# ---- canonical and public-dataset shapes
ok("canonical.csv", f"{H},rt_ms\n" + rows(6, "p{i},{s},{r},5{i}0"), 6)
ok("cifar10s_like.csv", "subject_id,stimulus,stimulus_id,response,rt,true_label\n"
   + "".join(f"u{i % 4},img_{i % 5}.png,{i % 5},{NAMES[(i * 3) % 10]},{500 + i},{NAMES[i % 10]}\n"
             for i in range(20)), 20, classes=sorted(NAMES),
   notes=["catch trials: none", "true_label read as the ground truth"], catch=0)
ok("true_label_every_row.csv", f"{H},true_label\n" + rows(8, "p{i},{s},{r},{r}"), 8, catch=0,
   notes=["catch trials: none"])
ok("true_label_is_catch_0.csv", f"{H},is_catch,true_label\n" + rows(5, "p{i},{s},{r},0,{r}"), 5, catch=0)
ok("is_catch_marked.csv", f"{H},is_catch,true_label\np1,a,3,0,3\np1,b,4,1,4\np1,c,5,false,\np2,a,3,,3\n",
   4, catch=1, notes=["the rows marked in 'is_catch'"])
ok("catch_by_condition.csv", f"{H},condition,true_label\np1,a.png,3,main,3\np1,b.png,4,catch,4\n"
   "p1,c.png,5,attention check,5\n", 3, catch=2, notes=["trial type names a catch"])
ok("participant_id_column.csv", "participant_id,stimulus,response\nx,a.png,1\ny,a.png,2\n", 2,
   notes=["participant from 'participant_id'"])
ok("names_lower_upper.csv", f"{H}\np1,a,Cat\np1,b,cat\np1,c,DOG\np2,a,dog\n", 4, classes=["Cat", "DOG"])
ok("names_given_classes.csv", f"{H}\np1,a,deer\np1,b,cat\np1,c,2\n", 3, kwargs={"classes": ["cat", "dog", "deer"]},
   classes=["cat", "dog", "deer"])
ok("names_one_typo_among_indices.csv", f"{H}\np1,a,3\np1,b,4\np1,c,three\n", 2,
   {"response outside the classes": 1})
ok("indices_beyond_nine.csv", f"{H}\np1,a,3\np1,b,12\np1,c,-1\n", 1, {"response outside the classes": 2})
bad("single_class_name.csv", f"{H}\np1,a,cat\np1,b,cat\n", "single class", "--classes")
bad("too_many_names.csv", f"{H}\n" + "".join(f"p1,s{i},word{i}\n" for i in range(80)),
    "80 distinct names", "--classes")
ok("all_catch.csv", f"{H},is_catch,true_label\np1,a,3,1,3\np1,b,4,yes,4\n", 2, catch=2)
# ---- RT units and numbers
ok("rt_ms_holding_seconds.csv", f"{H},rt_ms\n" + rows(5, "p1,{s},{r},0.{r}5"), 5,
   notes=["read as SECONDS"], rt_max=450.0)
ok("rt_seconds.csv", f"{H},rt\n" + rows(4, "p1,{s},{r},0.8{r}"), 4, notes=["read as SECONDS"])
ok("rt_milliseconds.csv", f"{H},rt\n" + rows(4, "p1,{s},{r},8{r}0"), 4, notes=["read as milliseconds"])
ok("rt_zero.csv", f"{H},rt_ms\np1,a,3,0\np1,b,3,500\np1,c,3,0.0\n", 1, {"zero rt": 2})
ok("rt_negative.csv", f"{H},rt_ms\np1,a,3,-20\np1,b,3,500\n", 1, {"negative rt": 1})
ok("rt_non_numeric.csv", f"{H},rt_ms\np1,a,3,fast\np1,b,3,\np1,c,3,400\n", 2, {"non-numeric rt": 1})
ok("rt_infinite.csv", f"{H},rt_ms\np1,a,3,inf\np1,b,3,1e309\np1,c,3,400\n", 1, {"non-finite rt": 2})
ok("rt_implausible.csv", f"{H},rt_ms\np1,a,3,1e300\np1,b,3,400\n", 1, {"implausible rt": 1})
ok("decimal_comma_semicolon.csv", "participant;stimulus;response;rt_ms\np1;a.png;3;512,5\np1;b.png;4;620,25\n"
   "p2;a.png;3;480\n", 3, notes=["decimal comma"], rt_max=620.25)
ok("decimal_comma_tab.tsv", "participant\tstimulus\tresponse\trt\np1\ta.png\t3\t0,512\np1\tb.png\t4\t0,7\n", 2,
   notes=["decimal comma", "read as SECONDS"])
ok("huge_response_number.csv", f"{H}\np1,a,{10 ** 30}\np1,b,2\n", 1, {"response outside the classes": 1})
# ---- jsPsych
JS = '"subject","trial_type","trial_index","stimulus","response","rt"\n'
ok("jspsych7_instructions.csv", JS + '"s1","html-keyboard-response","0","<p>Press 1 to start</p>","1","900"\n'
   '"s1","preload","1","","",""\n"s1","html-keyboard-response","2","<div>+</div>","",""\n'
   '"s1","image-button-response","3","img/a.png","3","512"\n"s1","image-button-response","4","img/b.png","7","640"\n',
   2, {"not a response trial": 3}, notes=["preload 1", "html-keyboard-response 2"])
JSON_ROWS = [{"subject": "A", "trial_type": "instructions", "trial_index": 0, "stimulus": None, "response": None},
             {"subject": "A", "trial_type": "html-keyboard-response", "trial_index": 1,
              "stimulus": "<p>Press 1</p>", "response": "1", "rt": 800},
             {"subject": "A", "trial_type": "image-button-response", "trial_index": 2, "stimulus": "img/a.png",
              "response": 2, "rt": 700.5},
             {"subject": "A", "trial_type": "image-button-response", "trial_index": 3, "stimulus": ["img/b.png"],
              "response": 4, "rt": 610}]
ok("jspsych8_array.json", json.dumps(JSON_ROWS), 2, {"not a response trial": 2})
ok("jspsych_lines.jsonl", "\n".join(json.dumps(r) for r in JSON_ROWS) + "\n", 2, {"not a response trial": 2})
ok("jspsych_trials_object.json", json.dumps({"trials": JSON_ROWS, "meta": {"v": 8}}), 2,
   {"not a response trial": 2}, notes=["'trials' array"])
ok("jspsych_data_object.json", json.dumps({"data": JSON_ROWS}), 2, {"not a response trial": 2})
ok("jspsych_stimulus_list.json", json.dumps([dict(r, stimulus=["img/x.png"]) for r in JSON_ROWS[2:]]), 2,
   stimuli=["img/x.png"])
ok("jspsych_stimulus_list.csv", JS + '"s1","image-button-response","0","[""img/a.png""]","3","500"\n', 1,
   stimuli=["img/a.png"])
ok("jspsych6_button_pressed.csv", '"subject","trial_type","trial_index","stimulus","button_pressed","rt"\n'
   '"s1","instructions","0","","",""\n"s1","image-button-response","1","a.png","2","500"\n'
   '"s1","image-button-response","2","b.png","0","700"\n', 2, {"not a response trial": 1}, notes=["jsPsych 6"])
ok("jspsych6_key_press.csv", '"subject","trial_type","trial_index","stimulus","key_press","rt"\n'
   '"s1","html-keyboard-response","0","<p>Press any key</p>","32","900"\n'
   '"s1","image-keyboard-response","1","a.png","51","500"\n"s1","image-keyboard-response","2","b.png","104","600"\n',
   2, {"not a response trial": 1}, responses=[3, 8])
ok("jspsych_survey_rows.csv", JS + '"s1","survey-text","0","","{""Q0"":""42""}","3000"\n'
   '"s1","survey-likert","1","","{""Q0"":2}","2000"\n"s1","image-button-response","2","a.png","1","600"\n', 1,
   {"not a response trial": 2}, notes=["survey-text 1", "survey-likert 1"])
ok("jspsych_html_img.csv", JS + '"s1","html-button-response","0","<img src=\'img/b.png\'>","4","400"\n', 1,
   stimuli=["img/b.png"])
ok("jspsych_catch_task.csv", '"subject","trial_type","task","stimulus","response","true_label"\n'
   '"s1","image-button-response","main","a.png","3","3"\n"s1","image-button-response","catch","c.png","7","7"\n',
   2, catch=1)
bad("jspsych_no_subject.csv", "trial_type,stimulus,response\nimage-button-response,a.png,1\n",
    "without a participant column", "folder")
ok("jspsych_bad_trial_index.csv", JS + '"s1","image-button-response","x","a.png","3","500"\n'
   '"s1","image-button-response","1","b.png","3","500"\n', 1, {"invalid trial_index": 1})
# ---- Gorilla
GH = "Event Index,Participant Private ID,Trial Number,Zone Type,Response,Reaction Time,Spreadsheet: image\n"
ok("gorilla.csv", GH + "1,1001,1,continue_button,,1200,\n2,1001,2,response_button_text,cat,812.5,c1.png\n"
   "3,1001,3,response_button_text,dog,640,c2.png\n4,1002,1,fixation,,500,\n5,1002,2,response_button_text,cat,700,c1.png\n"
   "END OF FILE,,,,,,\n", 3, {"not a response trial": 2, "end-of-file marker": 1}, classes=["cat", "dog"])
bad("gorilla_no_stimulus.csv", "Participant Private ID,Zone Type,Response,Reaction Time\n1,response_keyboard,a,500\n",
    "Gorilla data without a stimulus column")
# ---- PsychoPy
PH = "image,key_resp.keys,key_resp.rt,trials.thisN,participant\n"
ok("psychopy.csv", PH + ",,,,P1\nstims/a.png,3,0.53,0,P1\nstims/b.png,num_9,0.71,1,P1\nstims/c.png,None,,2,P1\n",
   2, {"not a response trial": 1, "missing response": 1})
bad("psychopy_two_keys.csv", PH + "a.png,\"['1', '2']\",\"[0.5, 0.7]\",0,P1\nb.png,\"['3', '4']\",\"[0.4, 0.6]\",1,P1\n",
    "2 × several keys pressed", "several keys pressed")
ok("psychopy_list_keys.csv", PH + "a.png,['1'],[0.5],0,P1\n", 1, responses=[1])
# ---- variMNIST
ok("varimnist.csv", "subject_id,stimulus,stimulus_id,response,is_train\n"
   "7,dataset_PNG/uncertainty/u1.png,1,3,True\n8,dataset_PNG/controversial/c2.png,2,5,False\n", 2)
ok("varimnist_windows_paths.csv", "subject_id,stimulus,stimulus_id,response,is_train\n"
   "7,dataset_PNG\\uncertainty\\u1.png,1,3,True\n", 1, stimuli=["dataset_PNG/uncertainty/u1.png"])
ok("varimnist_bad_is_train.csv", "subject_id,stimulus,stimulus_id,response,is_train\n7,a.png,1,3,sometimes\n"
   "7,b.png,2,3,1\n", 1, {"invalid is_train": 1})
# ---- encodings and containers
BASIC = f"{H}\np1,a.png,3\np2,b.png,4\n"
ok("utf8_bom.csv", "\ufeff" + BASIC, 2)
ok("utf16_bom.csv", BASIC.encode("utf-16"), 2)
ok("utf16le_no_bom.csv", BASIC.encode("utf-16-le"), 2, notes=["UTF-16-LE without a byte-order mark"])
ok("utf16be_no_bom.csv", BASIC.encode("utf-16-be"), 2, notes=["UTF-16-BE"])
ok("latin1.csv", f"{H}\nJos\xe9,a.png,3\nMa\xebl,b.png,4\n".encode("latin-1"), 2, notes=["not UTF-8"],
   participants=["José", "Maël"])
ok("cp1252_quotes.csv", f"{H}\n\u201cp1\u201d,a.png,3\n".encode("cp1252"), 1, notes=["Windows-1252"])
ok("gzipped.csv.gz", gzip.compress(BASIC.encode()), 2, notes=["gzip"])
ok("gzipped_jsonl.jsonl.gz", gzip.compress(("\n".join(json.dumps(r) for r in JSON_ROWS)).encode()), 2,
   {"not a response trial": 2})
bad("gz_truncated.csv.gz", gzip.compress(BASIC.encode() * 50)[:40], "gzip")
bad("gz_garbage.csv.gz", b"\x1f\x8b" + b"not really gzip data" * 5, "gzip file that cannot be decompressed")
bad("binary.csv", b"participant,stimulus\x00\x01\x02\xff\xfe\x00\x00\x81" * 20, "binary data")
bad("zip_renamed.csv", b"PK\x03\x04" + b"\x00" * 60, "ZIP archive")
bad("workbook.xlsx", b"PK\x03\x04" + b"\x00" * 60, "Excel workbook", "CSV")
bad("old_excel.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 60, "old Excel")
# ---- structure
ok("concat_reordered_header.csv", f"{H}\np1,a.png,3\np1,b.png,4\nstimulus,participant,response\nc.png,p2,5\n"
   "d.png,p2,6\n", 4, {"repeated header row": 1}, participants=["p1", "p1", "p2", "p2"],
   stimuli=["a.png", "b.png", "c.png", "d.png"], notes=["another order"])
ok("concat_same_header.csv", f"{H}\np1,a.png,3\n{H}\np2,a.png,4\n", 2, {"repeated header row": 1})
ok("concat_three_orders.csv", f"{H},rt_ms\np1,a,3,500\nresponse,rt_ms,participant,stimulus\n4,600,p2,b\n"
   f"{H},rt_ms\np3,c,5,700\n", 3, {"repeated header row": 2}, participants=["p1", "p2", "p3"],
   responses=[3, 4, 5])
bad("empty.csv", "", "is empty (0 bytes)")
bad("whitespace.csv", "  \n\n\t\n", "only whitespace")
bad("header_only.csv", f"{H}\n", "has a header but no data rows")
bad("comments_only.csv", "# nothing here\n# at all\n", "has no header row")
ok("comments_then_data.csv", f"# exported 2024-05-01\n# synthetic: no\n{H}\np1,a,3\n", 1)
bad("single_column.csv", "participant stimulus response\np1 a 3\n", "single column")
bad("duplicate_columns.csv", "participant,stimulus,response,response\np1,a,3,4\n", "repeats the column name")
bad("unnamed_column.csv", "participant,,response\np1,a,3\n", "unnamed column")
ok("wrong_field_counts.csv", f"{H}\np1,a,3\np1,b\np1,c,3,extra\np1,d,4\n", 2, {"wrong number of fields": 2})
bad("trailing_commas.csv", f"{H}\np1,a,3,\np1,b,4,\n", "2 × wrong number of fields")
ok("quoted_newline.csv", f'{H}\n"p1","multi\nline.png",3\np2,b.png,4\n', 2)
bad("unterminated_quote.csv", f'{H}\np1,"a.png,3\np2,b.png,4\n', "malformed quoting")
ok("crlf.csv", BASIC.replace("\n", "\r\n"), 2)
ok("cr_only.csv", BASIC.replace("\n", "\r"), 2)
ok("tab.tsv", BASIC.replace(",", "\t"), 2)
ok("pipe.csv", BASIC.replace(",", "|"), 2)
ok("mixed_delimiter_rows.csv", f"{H}\np1;a;3\np2,b,4\n", 1, {"wrong number of fields": 1})
bad("all_responses_missing.csv", f"{H}\np1,a,\np2,b,NA\n", "2 × missing response")
ok("nan_tokens.csv", f"{H}\nNaN,a,3\np1,null,3\np1,b,None\np1,c,3\n", 1,
   {"missing participant": 1, "missing stimulus": 1, "missing response": 1})
ok("empty_rows_of_delimiters.csv", f"{H}\np1,a,3\n,,\n , , \n", 1, {"empty row": 2})
ok("duplicate_trials.csv", f"{H},trial_index\np1,a,3,1\np1,a,3,1\np1,a,3,2\n", 2, {"duplicate trial": 1})
ok("invalid_is_catch.csv", f"{H},is_catch\np1,a,3,maybe\np1,b,3,0\n", 1, {"invalid is_catch": 1})
ok("true_label_outside.csv", f"{H},true_label\np1,a,3,3\np1,b,3,12\n", 1, {"true_label outside the classes": 1})
bad("unknown_layout.csv", "subj,img,key\ns1,a.png,3\n", "no known trial-table layout", "column mapping")
bad("broken_array.json", '[{"participant": "p1",', "not valid JSON")
bad("json_object_without_trials.json", json.dumps({"meta": {"a": 1}, "n": 3}), "without a list of trials")
ok("jsonl_bad_lines.jsonl", '{"participant":"p1","stimulus":"a","response":3}\nnot json\n[1,2]\n'
   '{"participant":"p1","stimulus":"b","response":12}\n', 1,
   {"not valid JSON": 1, "not a JSON object": 1, "response outside the classes": 1})
ok("json_array_non_objects.json", '[{"participant":"p1","stimulus":"a","response":3}, 7, "x"]', 1,
   {"not a JSON object": 2})
ok("very_long_value.csv", f"{H}\np1,{'x' * 100_000}.png,3\n", 1)
ok("unicode_names.csv", f"{H}\n\U0001f600,\u732b.png,3\n\u00e9l\u00e8ve,\u732b.png,4\n", 2)
ok("synthetic_flag.csv", f"{H},synthetic\np1,a,3,True\n", 1, synthetic=True)
bad("all_rows_wrong_delimiter.csv", f"{H}\np1;a;3\np2;b;4\n", "2 × wrong number of fields")
# ---- folders (several files at once)
case("folder_jspsych_per_participant", {
    "alice.csv": '"trial_type","stimulus","response","rt"\n"instructions","","",""\n'
                 '"image-button-response","a.png","3","500"\n',
    "bob.csv": '"trial_type","stimulus","response","rt"\n"image-button-response","a.png","4","650"\n'
               '"image-button-response","b.png","5","700"\n',
    "notes.md": "not a trial file\n"}, "loads", used=3, set_aside={"not a response trial": 1},
    participants=["alice", "bob", "bob"], notes=["no participant column", "1 other files not read"])
case("folder_mixed", {
    "good.csv": BASIC, "reordered.csv": "response,stimulus,participant\n5,c.png,p3\n",
    "broken.csv": b"\x00\x01binary\x00" * 10}, "loads", used=3, set_aside={},
    notes=["1 of 3 files refused", "binary data"], files_refused=1)
case("folder_rt_units_per_file", {
    "lab_seconds.csv": f"{H},rt\np1,a,1,0.5\np1,b,2,0.7\n", "lab_ms.csv": f"{H},rt\np2,a,1,500\np2,b,2,700\n"},
    "loads", used=4, set_aside={}, notes=["read as SECONDS and converted to milliseconds: 1 file(s)"], rt_max=700.0)
case("folder_all_refused", {"a.csv": "", "b.csv": f"{H}\n"}, "refused",
     message=["none of the 2 files could be read"])
# ---- made by the test (git cannot hold them)
for name, words in (("symlink_to_dev_zero.csv", ["character device", "not a regular file"]),
                    ("fifo.csv", ["FIFO"]), ("broken_symlink.csv", ["broken symbolic link"]),
                    ("folder_without_trials", ["holds no trial files"])):
    CASES.append({"file": name, "special": True, "verdict": "refused", "message": words})


def main() -> None:
    if FILES.exists():
        shutil.rmtree(FILES)
    FILES.mkdir()
    table = []
    for c in CASES:
        c = dict(c)
        content = c.pop("content", None)
        if not c.get("special"):
            path = FILES / c["file"]
            if isinstance(content, dict):
                path.mkdir()
                for n, v in content.items():
                    (path / n).write_bytes(v.encode() if isinstance(v, str) else v)
            else:
                path.write_bytes(content.encode() if isinstance(content, str) else content)
        table.append(c)
    (HERE / "expected.json").write_text(json.dumps(table, indent=1, ensure_ascii=False) + "\n",
                                        encoding="utf-8")
    print(f"{len(table)} cases")


if __name__ == "__main__":
    main()
