"""Block-wise reading gives the same table as reading in one piece: records cut at block edges,
quoted line breaks across an edge, a reordered repeated header carried into later blocks, and line
numbers that stay the file's."""

from __future__ import annotations

import pandas as pd
import pytest

from perceptlab.data.trials import load_trials


def _text(n: int) -> str:
    rows = ["participant,stimulus,response,rt_ms,trial_index"]
    reordered = False
    for i in range(n):
        stim = f'"multi\nline {i}.png"' if i % 97 == 5 else f"s{i % 37}.png"
        p, r, rt = f"p{i % 11}", str(i % 10), str(300 + i % 700)
        rows.append(f"{stim},{p},{r},{rt},{i}" if reordered else f"{p},{stim},{r},{rt},{i}")
        if i == n // 2:
            rows.append("stimulus,participant,response,rt_ms,trial_index")  # rows now in this order
            rows.append(f"s{i}.png,p{i % 11},bad,400,{i + 10**6}")  # set aside: outside the classes
            reordered = True
    return "\n".join(rows) + "\n"


@pytest.mark.parametrize("block_chars", [50, 333, 4096])
def test_blocks_equal_one_piece(tmp_path, block_chars):
    path = tmp_path / "t.csv"
    path.write_text(_text(600), encoding="utf-8")
    whole = load_trials(path)
    parts = load_trials(path, block_chars=block_chars)
    pd.testing.assert_frame_equal(whole.df, parts.df)
    pd.testing.assert_frame_equal(whole.report.rejected, parts.report.rejected)
    assert parts.report.rows_total == whole.report.rows_total
    assert parts.report.rejected_by_kind() == {"repeated header row": 1, "response outside the classes": 1}
    assert parts.df["participant"].str.startswith("p").all() and parts.df["stimulus"].str.contains(".png").all()
    with_breaks = parts.df[parts.df["stimulus"].str.contains("\n")]
    assert len(with_breaks) == sum(1 for i in range(600) if i % 97 == 5)
