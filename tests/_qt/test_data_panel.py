"""Data: validation report, rejected rows, column mapping, exclusions, sortable tables, big tables."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from PySide6.QtCore import Qt

from perceptlab._qt.mapping_dialog import MappingDialog
from perceptlab._qt.widgets.pandas_model import PandasModel


def _load(w, qtbot, path):
    job = w.data.load(path)
    qtbot.waitUntil(lambda: not job.is_running(), timeout=30_000)
    return job


def test_unknown_layout_opens_the_mapping_dialog_and_reports_rejected_rows(make_window, qtbot, tmp_path, monkeypatch,
                                                                           dialogs):
    f = tmp_path / "my_experiment.csv"
    f.write_text("subj,img,key,time_s\nA,s1.png,3,0.5\nA,s2.png,5,0.7\nB,s1.png,x,0.4\nB,s2.png,5,0.6\n"
                 "C,s1.png,3,0.5\nC,s2.png,4,0.9\n")
    seen = {}

    def fake_exec(dlg: MappingDialog):
        seen["columns"] = dlg.columns
        dlg.combos["participant"].setCurrentIndex(dlg.combos["participant"].findData("subj"))
        dlg.combos["stimulus"].setCurrentIndex(dlg.combos["stimulus"].findData("img"))
        dlg.combos["response"].setCurrentIndex(dlg.combos["response"].findData("key"))
        dlg.combos["rt"].setCurrentIndex(dlg.combos["rt"].findData("time_s"))
        dlg.rt_unit.setCurrentIndex(dlg.rt_unit.findData("s"))
        return 1

    monkeypatch.setattr(MappingDialog, "exec", fake_exec)
    w = make_window()
    w.data.load(f)
    qtbot.waitUntil(lambda: w.session.trials is not None, timeout=30_000)
    assert seen["columns"] == ["subj", "img", "key", "time_s"]
    table = w.session.trials
    rep = table.report
    assert rep.layout == "mapping" and rep.rows_used == 5 and rep.rows_rejected == 1
    assert "5</b> of 6 rows used" in w.data.report_label.text()
    rej = w.data.rejected_model.frame()
    assert rej.loc[0, "line"] == 4 and "x" in str(rej.iloc[0].to_dict())
    assert table.df["rt_ms"].max() == 900
    assert w.data.mapping_button.isEnabled() and w.session.mapping.rt_unit == "s"
    assert not [c for c in dialogs.calls if c[0] == "critical"]


def test_bad_files_reach_the_user_in_plain_words(make_window, qtbot, tmp_path, dialogs):
    w = make_window()
    empty = tmp_path / "empty.csv"
    empty.write_text("participant,stimulus,response\n")
    _load(w, qtbot, empty)
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"participant,stimulus,response\n\x00\xff\x00\xfe\x81\n")
    _load(w, qtbot, binary)
    text = dialogs.texts()
    assert "no data rows" in text and "binary data" in text and "What to do:" in text
    assert all(kind == "warning" for kind, _, _ in dialogs.calls)
    assert w.session.trials is None
    latin = tmp_path / "latin.csv"  # not UTF-8: decoded as Windows-1252, and the report says so
    latin.write_bytes("participant,stimulus,response\nJos\xe9,a.png,3\n".encode("latin-1"))
    _load(w, qtbot, latin)
    assert w.session.trials is not None and w.session.trials.df["participant"].tolist() == ["José"]
    assert "not UTF-8" in w.data.report_label.text()


def test_exclusions_and_participant_summary(make_window, qtbot, tmp_path):
    rows = ["participant,stimulus,response,is_catch,true_label,rt_ms"]
    rng = np.random.default_rng(0)
    for p in ("p1", "p2", "p3", "p4"):
        for s in range(8):
            rows.append(f"{p},s{s}.png,{rng.integers(0, 10)},false,,{500 + s}")
        for k in range(4):
            answer = 7 if p != "p4" or k == 0 else 1  # p4 gets 1 of 4 catch trials right
            rows.append(f"{p},catch{k}.png,{answer},true,7,400")
    f = tmp_path / "trials.csv"
    f.write_text("\n".join(rows) + "\n")
    w = make_window()
    _load(w, qtbot, f)
    qtbot.waitUntil(lambda: w.session.analysis is not None, timeout=30_000)
    parts = w.data.participants_model.frame().set_index("participant")
    assert bool(parts.loc["p4", "excluded"]) and not bool(parts.loc["p1", "excluded"])
    assert "p4: 1/4 correct" in w.data.exclusion_label.text()
    w.data.catch.setValue(0.2)
    qtbot.mouseClick(w.data.apply_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.session.analysis is not None and w.session.analysis.exclusions.threshold == 0.2,
                    timeout=30_000)
    assert not w.session.analysis.exclusions.excluded
    view = w.data.trials_view
    col = list(w.data.trials_model.frame().columns).index("rt_ms")
    view.sortByColumn(col, Qt.SortOrder.DescendingOrder)
    shown = [w.data.trials_model.index(r, col).data() for r in range(3)]
    assert shown == ["507", "507", "507"]


def test_pandas_model_handles_100k_rows():
    n = 100_000
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"participant": rng.integers(0, 300, n).astype(str), "stimulus": rng.integers(0, 5000, n),
                          "response": rng.integers(0, 10, n), "rt_ms": rng.normal(800, 200, n)})
    t0 = time.perf_counter()
    model = PandasModel(frame)
    model.sort(3, Qt.SortOrder.AscendingOrder)
    elapsed = time.perf_counter() - t0
    assert model.rowCount() == n and model.columnCount() == 4
    values = [float(model.index(r, 3).data()) for r in (0, 1, n - 1)]
    assert values[0] <= values[1] <= values[2]
    assert elapsed < 3.0
