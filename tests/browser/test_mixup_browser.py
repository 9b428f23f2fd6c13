"""The mixup export run for real: headless Chromium, jsPsych 8 from npm (the image-slider plugin too), a
local server; pick, slider and confidence screens answered with Playwright, the tab closed mid-session,
the answered trials recovered from recover.html and analysed. Skips as tests/browser/test_jspsych_browser.py
does (no Playwright, no Chromium, no jsPsych and no npm)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from perceptlab.data.export_mixup import export_mixup_jspsych, read_mixup_results
from perceptlab.experiment.design import load_design, presentation_order
from tests.browser.test_jspsych_browser import (  # noqa: F401  (browser: the fixture)
    FRAME_MS,
    _ensure_jspsych,
    _Server,
    _start,
    browser,
)


@pytest.fixture()
def design_path(tmp_path, builtin_mnist):
    """One category pair (3-8), one source pair, lambdas 0 / 0.5 / 1: a pick trial (three images), three
    slider trials (each with a confidence rating) and three choice trials."""
    from perceptlab.data.library import StimulusLibrary
    from perceptlab.data.mixup import add_to_library, make_mixup
    from perceptlab.experiment.mixup import write_design

    mixset = make_mixup(builtin_mnist, [(3, 8)], per_pair=1, lambdas=(0.0, 0.5, 1.0), seed=1)
    with StimulusLibrary.create(tmp_path / "lib") as lib:
        add_to_library(lib, mixset)
        return write_design(lib, tmp_path / "design", kinds=("pick", "slider", "choice"), seed=3)


def _count(page) -> int:
    return page.evaluate("perceptlabSession.jsPsych.data.get().count()")


def _answered(page, before: int) -> None:
    page.wait_for_function(f"perceptlabSession.jsPsych.data.get().count() > {before}", timeout=5_000)


def _pick(page, trial) -> None:
    """Click the image whose lambda is nearest 0.5."""
    page.wait_for_selector("button.perceptlab-pick", timeout=10_000)
    lambdas = trial.options["lambdas"]
    best = min(range(len(lambdas)), key=lambda i: abs(lambdas[i] - 0.5))
    before = _count(page)
    page.click(f'#jspsych-html-button-response-btngroup [data-choice="{best}"]')
    _answered(page, before)


def _slider(page, value: int) -> dict:
    """Wait for the slider screen, check the image is hidden after stimulus_ms, set ``value`` (0..100)."""
    page.wait_for_selector("#jspsych-image-slider-response-response", timeout=10_000)
    button = page.locator("#jspsych-image-slider-response-next")
    assert button.is_disabled()  # require_movement
    page.wait_for_function(
        "document.querySelector('#jspsych-image-slider-response-stimulus').style.visibility === 'hidden'",
        timeout=5_000)
    before = _count(page)
    page.evaluate("""(v) => {
        const el = document.querySelector('#jspsych-image-slider-response-response');
        el.value = v; el.dispatchEvent(new Event('input')); el.dispatchEvent(new Event('change'));
    }""", value)
    button.click()
    _answered(page, before)
    return page.evaluate("perceptlabSession.jsPsych.data.get().last(1).values()[0]")


def _confidence(page, rating: int) -> None:
    page.wait_for_selector("text=How confident are you?", timeout=10_000)
    before = _count(page)
    page.click(f'#jspsych-html-button-response-btngroup [data-choice="{rating - 1}"]')
    _answered(page, before)


def _choice(page, label: str, classes: list[str], via_key: bool) -> None:
    page.wait_for_selector("button.perceptlab-choice", timeout=10_000)
    assert page.locator("#perceptlab-mixup-image").count() == 0  # the image alone came first, then went
    before = _count(page)
    if via_key:  # the digit classes: the key is the digit
        page.keyboard.press(label)
    else:
        page.click(f'#jspsych-html-button-response-btngroup [data-choice="{classes.index(label)}"]')
    _answered(page, before)


def _run(page, design, n_choice: int) -> None:
    """Answer the design's trials in order: the pick, every slider with its generating lambda (rated 4),
    then ``n_choice`` choice trials (the class the image mostly is; every second one with its number key)."""
    done_choice = 0
    for t in presentation_order(design):
        if t.kind == "pick":
            _pick(page, t)
        elif t.kind == "slider":
            row = _slider(page, round(100 * t.options["lambda"]))
            assert row["perceptlab_response"] == t.options["lambda"]
            _confidence(page, 4)
        elif done_choice < n_choice:
            lam = t.options["lambda"]
            _choice(page, t.options["class_b"] if lam > 0.5 else t.options["class_a"], design.classes,
                    via_key=done_choice % 2 == 1)
            done_choice += 1
        else:
            return


def test_mixup_tab_closed_mid_session_is_recovered_and_analysed(browser, tmp_path, design_path):  # noqa: F811
    from perceptlab.analysis.mixup import analyze_mixup
    from perceptlab.experiment.mixup import stimulus_info

    npm = _ensure_jspsych()
    design = load_design(design_path)
    kinds = [t.kind for t in presentation_order(design)]
    assert kinds == ["pick"] + ["slider"] * 3 + ["choice"] * 3
    export_mixup_jspsych(design_path, tmp_path / "exp", jspsych_from=npm)
    with _Server(tmp_path / "exp") as server:
        context = browser.new_context(accept_downloads=True)
        page = context.new_page()
        _start(page, f"{server.url}/index.html?subject=M01")
        _run(page, design, n_choice=1)
        stored = page.evaluate("JSON.parse(localStorage.getItem(perceptlabSession.key))")
        assert len(stored["rows"]) == 1 + 3 * 2 + 1 and stored["finished"] is False
        page.close()  # mid-session: 2 choice trials left, no download happened

        recover = context.new_page()
        recover.goto(f"{server.url}/recover.html")
        row = recover.locator("#perceptlab-sessions tr[data-key]")
        assert row.count() == 1 and row.locator("td.n").inner_text() == "8"
        assert "interrupted" in row.inner_text() and "M01" in row.inner_text()
        back = tmp_path / "back"
        back.mkdir()
        for kind in ("csv", "json"):
            with recover.expect_download() as info:
                row.locator(f"button.{kind}").click()
            info.value.save_as(back / info.value.suggested_filename)
        context.close()
    csv_path, json_path = sorted(back.glob("*.csv"))[0], sorted(back.glob("*.json"))[0]
    assert csv_path.name.startswith("perceptlab_M01_") and csv_path.name.endswith("_partial.csv")

    trials = read_mixup_results(json_path)
    assert trials["kind"].tolist() == ["pick", "slider", "slider", "slider", "choice"]
    assert set(trials["participant"]) == {"M01"} and trials["session_id"].nunique() == 1
    from_csv = read_mixup_results(csv_path)
    assert from_csv[["stimulus", "response", "kind"]].equals(trials[["stimulus", "response", "kind"]])
    assert from_csv["confidence"].fillna(0).tolist() == trials["confidence"].fillna(0).tolist()
    sliders = trials[trials["kind"] == "slider"]
    assert sliders["confidence"].tolist() == [4.0, 4.0, 4.0]
    pick = trials[trials["kind"] == "pick"].iloc[0]
    options = next(t.options for t in design.trials if t.kind == "pick")
    assert options["lambdas"][options["stimuli"].index(pick["response"])] == 0.5

    result = analyze_mixup(from_csv, stimulus_info(design))
    assert result["summary"]["by_kind"] == {"slider": 3, "pick": 1, "choice": 1}
    assert result["summary"]["slider_mae"] == pytest.approx(0.0)  # answered with the generating lambdas
    assert result["participants"]["mean_confidence"].iloc[0] == 4.0
    assert result["summary"]["pick_mean_abs_bias"] == pytest.approx(0.0)

    # frame-locked fixation and image on the slider and choice trials
    timed = trials[trials["kind"] != "pick"]
    fix = [float(v) for v in timed["measured_fixation_ms"]]
    stim = [float(v) for v in timed["measured_stimulus_ms"]]
    print(f"\nmixup measured fixation ms {fix}; stimulus ms {stim}")
    assert set(timed["intended_fixation_ms"].astype(float)) == {design.fixation_ms}
    assert all(abs(f - design.fixation_ms) <= 2 * FRAME_MS for f in fix)
    assert all(abs(s - design.stimulus_ms) <= 2 * FRAME_MS for s in stim)
    assert abs(statistics.median(stim) - design.stimulus_ms) <= FRAME_MS
    assert (trials.loc[trials["kind"] == "pick", "measured_stimulus_ms"] == "").all()


def test_mixup_full_run_posts_every_row_and_downloads(browser, tmp_path, design_path):  # noqa: F811
    npm = _ensure_jspsych()
    design = load_design(design_path)
    export_mixup_jspsych(design_path, tmp_path / "exp", save_hook="post", save_url="/save", jspsych_from=npm)
    with _Server(tmp_path / "exp", fail_first=2) as server:
        context = browser.new_context(accept_downloads=True)
        page = context.new_page()
        _start(page, f"{server.url}/index.html?subject=M02")
        with page.expect_download(timeout=60_000) as info:  # the download comes after the last trial
            _run(page, design, n_choice=3)
        info.value.save_as(tmp_path / "M02.csv")
        page.wait_for_selector("#perceptlab-saved", timeout=30_000)
        assert page.evaluate("localStorage.getItem(perceptlabSession.post.key)") == "[]"
        assert page.evaluate("JSON.parse(localStorage.getItem(perceptlabSession.key)).finished") is True
        context.close()
        assert server.failures == 2
    by_id = {item["id"]: item for item in server.received}
    rows = [i["row"] for i in by_id.values() if i["kind"] == "row"]
    finals = [i for i in by_id.values() if i["kind"] == "final"]
    assert len(rows) == 10 and len(finals) == 1 and len(finals[0]["rows"]) == 10
    (tmp_path / "final.json").write_text(json.dumps(finals[0]["rows"]))
    posted = read_mixup_results(tmp_path / "final.json")
    downloaded = read_mixup_results(tmp_path / "M02.csv")
    assert posted["kind"].value_counts().to_dict() == {"slider": 3, "choice": 3, "pick": 1}
    assert downloaded[["stimulus", "response", "kind"]].equals(posted[["stimulus", "response", "kind"]])
    choice = downloaded[downloaded["kind"] == "choice"]
    assert set(choice["response"]) <= {"3", "8"}
    assert [r["response_via"] for r in rows if r["perceptlab_kind"] == "choice"] == ["click", "key", "click"]
    assert Path(tmp_path / "M02.csv").read_text().count("\n") == 11  # header + 10 rows
