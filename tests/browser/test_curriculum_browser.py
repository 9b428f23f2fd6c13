"""The L-WISE learning experiment run for real in headless Chromium (jsPsych 8 from npm): feedback after
every train choice, none in the test phase, and the saved CSV read back by the learning analysis.
Skips like the other browser tests when Chromium, Playwright or the npm packages are missing."""

from __future__ import annotations

import pandas as pd

from tests.browser.test_jspsych_browser import _ensure_jspsych, _Server, browser  # noqa: F401  (fixture)
from tests.test_lwise_curriculum import built  # noqa: F401  (fixture: a tiny curriculum and its control)
from tests.test_lwise_engine import tiny_lwise_registry  # noqa: F401


def test_curriculum_runs_in_chromium(browser, built, tmp_path):  # noqa: F811
    from perceptlab.analysis.curriculum import learning_summary, learning_table
    from perceptlab.data.export_curriculum import export_curriculum_jspsych, timeline_trials

    lib, _, cur, _ = built
    npm = _ensure_jspsych()
    out = export_curriculum_jspsych(cur, lib, tmp_path / "exp", jspsych_from=npm).parent
    trials = timeline_trials(cur)
    with _Server(out) as server:
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
        page.close()
    assert len(feedback) == sum(t["feedback"] for t in trials) == 9
    rows = pd.read_csv(path)
    assert len(rows) == len(trials) and list(rows["trial_id"]) == [t["trial_id"] for t in trials]
    assert (rows["response_label"].astype(str) == "0").all()
    assert list(rows["correct"]) == [t["true_label"] == "0" for t in trials]
    for text, (_, row) in zip(feedback, rows[rows["phase"] == "train"].iterrows()):
        assert text.startswith("Correct") == bool(row["correct"])
    s = learning_summary(learning_table(rows))
    assert set(s["test"]) == {"curriculum"} and [c["block"] for c in s["curves"]["curriculum"]] == [0, 1, 2]
