"""The L-WISE learning experiment run for real in headless Chromium (jsPsych 8 from npm): feedback after
every train choice, none in the test phase, and the saved CSV read back by the learning analysis.
Skips like the other browser tests when Chromium, Playwright or the npm packages are missing."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tests.browser.test_jspsych_browser import FRAME_MS, _ensure_jspsych, _Server, browser  # noqa: F401  (fixture)
from tests.test_lwise_curriculum import built  # noqa: F401  (fixture: a tiny curriculum and its control)
from tests.test_lwise_engine import tiny_lwise_registry  # noqa: F401


def test_curriculum_runs_in_chromium(browser, built, tmp_path):  # noqa: F811
    from perceptlab.analysis.curriculum import learning_summary, learning_table
    from perceptlab.data.export_curriculum import export_curriculum_jspsych, timeline_trials

    lib, _, cur, _ = built
    npm = _ensure_jspsych()
    out = export_curriculum_jspsych(cur, lib, tmp_path / "exp", jspsych_from=npm, save_hook="post",
                                    save_url="/save").parent  # the download and the post hook
    trials = timeline_trials(cur)
    with _Server(out, fail_first=1) as server:
        page = browser.new_page(accept_downloads=True)
        page.goto(f"{server.url}/index.html?subject=P01")
        page.wait_for_selector("text=Press any key to start", timeout=15_000)
        page.keyboard.press("Space")
        feedback = []
        for k, t in enumerate(trials):
            if t["phase"] == "test" and trials[k - 1]["phase"] != "test":
                page.wait_for_selector("text=Now the test", timeout=10_000)
                page.keyboard.press("Space")
            page.wait_for_selector("#jspsych-image-button-response-btngroup button", timeout=10_000)
            last = k == len(trials) - 1
            if last:
                with page.expect_download(timeout=15_000) as download:
                    page.click('#jspsych-image-button-response-btngroup [data-choice="0"]')
            else:
                page.click('#jspsych-image-button-response-btngroup [data-choice="0"]')
            if t["feedback"]:
                page.wait_for_selector("text=/^(Correct|Incorrect — it was .)$/", timeout=5_000)
                feedback.append(page.inner_text("#jspsych-content"))
            elif not last:
                assert page.locator("text=Correct").count() == 0
        path = tmp_path / "data.csv"
        download.value.save_as(path)
        page.wait_for_selector("#perceptlab-saved", timeout=30_000)
        page.close()
    by_id = {i["id"]: i for i in server.received}
    posted = [i["row"] for i in by_id.values() if i["kind"] == "row"]
    finals = [i for i in by_id.values() if i["kind"] == "final"]
    assert server.failures == 1 and len(posted) == len(trials) and len(finals) == 1
    assert [r["trial_id"] for r in finals[0]["rows"]] == [t["trial_id"] for t in trials]
    assert len(feedback) == sum(t["feedback"] for t in trials) == 9
    rows = pd.read_csv(path)
    assert len(rows) == len(trials) and list(rows["trial_id"]) == [t["trial_id"] for t in trials]
    assert (rows["response_label"].astype(str) == "0").all()
    assert list(rows["correct"]) == [t["true_label"] == "0" for t in trials]
    for text, (_, row) in zip(feedback, rows[rows["phase"] == "train"].iterrows()):
        assert text.startswith("Correct") == bool(row["correct"])
    s = learning_summary(learning_table(rows))
    assert set(s["test"]) == {"curriculum"} and [c["block"] for c in s["curves"]["curriculum"]] == [0, 1, 2]


_HIDDEN = ("(() => { const el = document.querySelector('#jspsych-image-button-response-stimulus');"
           " return el !== null && el.style.visibility === 'hidden'; })()")


def _answer_curriculum(page, trials, n, choice="0", hidden_first=False, via_key=False):
    """Answer the first ``n`` trials (button ``choice``; ``via_key``: every second one with its number key),
    pressing through the test-phase message."""
    for k, t in enumerate(trials[:n]):
        if t["phase"] == "test" and trials[k - 1]["phase"] != "test":
            page.wait_for_selector("text=Now the test", timeout=10_000)
            page.keyboard.press("Space")
        page.wait_for_selector("#jspsych-image-button-response-btngroup button", timeout=10_000)
        if hidden_first:  # answer once the image is hidden (else it stays up to the answer, measured null)
            page.wait_for_function(_HIDDEN, timeout=5_000)
        before = page.evaluate("perceptlabSession.jsPsych.data.get().count()")
        if via_key and k % 2 == 1:  # digit classes: the key is the digit
            page.keyboard.press(choice)
        else:
            page.click(f'#jspsych-image-button-response-btngroup [data-choice="{choice}"]')
        page.wait_for_function(f"perceptlabSession.jsPsych.data.get().count() > {before}", timeout=5_000)
        if t["feedback"]:
            page.wait_for_selector("text=/^(Correct|Incorrect — it was .)$/", timeout=5_000)


def test_curriculum_tab_closed_mid_session_is_recovered(browser, built, tmp_path):  # noqa: F811
    """Lab safety: every choice is in localStorage at once; a tab closed in the second train block leaves
    its answered trials for recover.html, whose CSV the learning analysis reads."""
    import json

    from perceptlab.analysis.curriculum import learning_table
    from perceptlab.data.export_curriculum import export_curriculum_jspsych, timeline_trials

    lib, _, cur, _ = built
    out = export_curriculum_jspsych(cur, lib, tmp_path / "exp", jspsych_from=_ensure_jspsych()).parent
    trials = timeline_trials(cur)
    with _Server(out) as server:
        context = browser.new_context(accept_downloads=True)
        page = context.new_page()
        page.goto(f"{server.url}/index.html?subject=L01")
        page.wait_for_selector("text=Press any key to start", timeout=15_000)
        page.keyboard.press("Space")
        # the image is hidden after the stimulus time (frame-locked), the buttons stay
        _answer_curriculum(page, trials, 5, hidden_first=True, via_key=True)
        stored = page.evaluate("JSON.parse(localStorage.getItem(perceptlabSession.key))")
        assert len(stored["rows"]) == 5 and stored["finished"] is False
        page.close()
        recover = context.new_page()
        recover.goto(f"{server.url}/recover.html")
        row = recover.locator("#perceptlab-sessions tr[data-key]")
        assert row.count() == 1 and row.locator("td.n").inner_text() == "5" and "L01" in row.inner_text()
        with recover.expect_download() as info:
            row.locator("button.csv").click()
        path = tmp_path / info.value.suggested_filename
        info.value.save_as(path)
        with recover.expect_download() as info:
            row.locator("button.json").click()
        rows_json = json.loads(Path(info.value.path()).read_text())
        context.close()
    assert path.name.endswith("_partial.csv")
    rows = pd.read_csv(path)
    assert list(rows["trial_id"]) == [t["trial_id"] for t in trials[:5]]
    assert set(rows["participant"]) == {"L01"} and rows["session_id"].nunique() == 1
    table = learning_table(rows)
    assert len(table) == 5 and set(table["condition"]) == {"curriculum"}
    assert table["correct"].tolist() == [t["true_label"] == "0" for t in trials[:5]]
    assert list(rows["response_via"]) == ["click", "key", "click", "key", "click"]
    stim = [r["measured_stimulus_ms"] for r in rows_json]
    fix = [r["measured_fixation_ms"] for r in rows_json]
    print(f"\ncurriculum measured fixation ms {fix}; stimulus ms {stim}")
    assert all(abs(s - cur.stimulus_ms) <= 2 * FRAME_MS for s in stim)
    assert all(abs(f - cur.fixation_ms) <= 2 * FRAME_MS for f in fix)
