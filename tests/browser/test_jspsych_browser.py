"""The exported jsPsych experiment run for real: headless Chromium, jsPsych 8 from npm, a local server.

Needs Playwright (the ``test`` extra), a Chromium (``/usr/bin/chromium``, or ``PERCEPTLAB_CHROMIUM``)
and the npm packages in ``~/.cache/perceptlab/jspsych`` (installed here with npm when missing and npm
can reach its registry); each test skips with the reason otherwise. ``.ci/run`` installs all three.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from perceptlab.analysis.exclusions import apply_exclusions
from perceptlab.data.export import export_jspsych
from perceptlab.data.jspsych_kit import jspsych_files
from perceptlab.data.library import StimulusLibrary
from perceptlab.data.trials import load_trials
from tests.data.test_library import make_images, make_records

CHROMIUM = Path(os.environ.get("PERCEPTLAB_CHROMIUM", "/usr/bin/chromium"))
NPM_DIR = Path(os.environ.get("PERCEPTLAB_JSPSYCH_NPM", Path.home() / ".cache" / "perceptlab" / "jspsych"))
FRAME_MS = 1000 / 60


def _npm_packages() -> list[str]:
    files = jspsych_files("choice-screen") + jspsych_files("buttons-with-image") + jspsych_files("mixup")
    return list(dict.fromkeys(f"{f.package}@{f.major}" for f in files))


def _ensure_jspsych() -> Path:
    """The npm install of jsPsych 8 and the plugins (installed into NPM_DIR when missing)."""
    needed = [p.rsplit("@", 1)[0] for p in _npm_packages()]
    if all((NPM_DIR / "node_modules" / p / "package.json").is_file() for p in needed):
        return NPM_DIR
    if shutil.which("npm") is None:
        pytest.skip(f"jsPsych is not installed in {NPM_DIR} and npm is missing")
    NPM_DIR.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["npm", "install", "--no-save", "--no-audit", "--no-fund", *_npm_packages()],
                          cwd=NPM_DIR, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        pytest.skip(f"npm install of jsPsych into {NPM_DIR} failed: {done.stderr.strip()[-300:]}")
    return NPM_DIR


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    if not CHROMIUM.is_file():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set PERCEPTLAB_CHROMIUM)")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield b
        b.close()


class _Server:
    """Serves a folder; POST /save fails the first ``fail_first`` times (503), then stores the body."""

    def __init__(self, root: Path, fail_first: int = 0):
        self.received: list[dict] = []
        self.failures = 0
        self.fail_first = fail_first
        server = self

        class Handler(SimpleHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path != "/save":
                    self.send_error(404)
                    return
                if server.failures < server.fail_first:
                    server.failures += 1
                    self.send_error(503, "test server: failing on purpose")
                    return
                server.received.append(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"ok": true}')

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def _library(tmp_path: Path, n: int) -> StimulusLibrary:
    lib = StimulusLibrary.create(tmp_path / "lib")
    lib.add(make_records(n, pair=(3, 5)), make_images(n))
    return lib


def _answer(page, k: int, *, correct_catch: bool = True, via_key: bool = False) -> None:
    """Wait for the choice screen and answer it: catch trials with their true label, others k % 10."""
    page.wait_for_selector("#jspsych-html-button-response-btngroup button", timeout=10_000)
    assert page.locator("#jspsych-image-keyboard-response-stimulus").count() == 0  # image gone first
    label = page.evaluate("perceptlabSession.jsPsych.evaluateTimelineVariable('true_label')")
    answer = str(label) if (label is not None and correct_catch) else str(k % 10)
    before = page.evaluate("perceptlabSession.jsPsych.data.get().count()")
    if via_key:
        page.keyboard.press(answer)
    else:
        page.click(f'#jspsych-html-button-response-btngroup [data-choice="{answer}"]')
    page.wait_for_function(f"perceptlabSession.jsPsych.data.get().count() > {before}", timeout=5_000)


def _start(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("text=Press any key to start", timeout=15_000)
    page.keyboard.press("Space")


def _stored(page) -> dict:
    return page.evaluate("JSON.parse(localStorage.getItem(perceptlabSession.key))")


def test_tab_closed_mid_session_is_recovered(browser, tmp_path):
    npm = _ensure_jspsych()
    lib = _library(tmp_path, 8)
    export_jspsych(lib, tmp_path / "exp", catch_rate=0.2, catch_seed=3, jspsych_from=npm)  # 2 of 10 trials
    with _Server(tmp_path / "exp") as server:
        context = browser.new_context(accept_downloads=True)
        page = context.new_page()
        _start(page, f"{server.url}/index.html?subject=P01&seed=s1")
        # the image is shown alone: no choice buttons while it is on screen
        page.wait_for_selector("#jspsych-image-keyboard-response-stimulus", state="attached", timeout=10_000)
        assert page.locator("#jspsych-html-button-response-btngroup").count() == 0
        for k in range(4):
            _answer(page, k, via_key=k % 2 == 1)
        stored = _stored(page)
        assert len(stored["rows"]) == 4 and stored["finished"] is False
        page.close()  # mid-session: 4 of 10 answered, no download happened

        recover = context.new_page()
        recover.goto(f"{server.url}/recover.html")
        row = recover.locator("#perceptlab-sessions tr[data-key]")
        assert row.count() == 1
        assert row.locator("td.n").inner_text() == "4"
        assert "interrupted" in row.inner_text() and "P01" in row.inner_text()
        with recover.expect_download() as info:
            row.locator("button.csv").click()
        csv_path = tmp_path / "back" / info.value.suggested_filename
        csv_path.parent.mkdir()
        info.value.save_as(csv_path)
        with recover.expect_download() as info:
            row.locator("button.json").click()
        json_rows = json.loads(Path(info.value.path()).read_text())
        context.close()
    assert csv_path.name.startswith("perceptlab_P01_") and csv_path.name.endswith("_partial.csv")
    assert len(json_rows) == 4 and [r["response_via"] for r in json_rows] == ["click", "key", "click", "key"]
    table = load_trials(csv_path)
    assert len(table.df) == 4 and table.report.rows_total == 4
    assert set(table.df["participant"]) == {"P01"}
    assert json_rows[0]["order_seed"] == "s1" and json_rows[0]["layout"] == "choice-screen"


def test_full_run_posts_with_retry_and_catch_trials_drive_exclusion(browser, tmp_path):
    npm = _ensure_jspsych()
    lib = _library(tmp_path, 4)
    export_jspsych(lib, tmp_path / "exp", catch_rate=1 / 3, catch_seed=3, save_hook="post", save_url="/save",
                   download=False, jspsych_from=npm)
    config = (tmp_path / "exp" / "timeline.js").read_text()
    assert '"save_hook": "post"' in config and '"download": false' in config
    data = tmp_path / "returned"
    data.mkdir()
    with _Server(tmp_path / "exp", fail_first=3) as server:
        for subject, correct in (("good", True), ("bad", False)):
            context = browser.new_context()
            page = context.new_page()
            _start(page, f"{server.url}/index.html?subject={subject}")
            for k in range(6):
                _answer(page, k, correct_catch=correct)
            page.wait_for_selector("#perceptlab-saved", timeout=30_000)
            rows = page.evaluate("perceptlabSession.jsPsych.data.get().values()")
            assert page.evaluate("localStorage.getItem(perceptlabSession.post.key)") == "[]"
            context.close()
            (data / f"{subject}.json").write_text(json.dumps(rows))
        assert server.failures == 3
    by_id = {item["id"]: item for item in server.received}
    rows_posted = [i for i in by_id.values() if i["kind"] == "row"]
    finals = [i for i in by_id.values() if i["kind"] == "final"]
    assert len(rows_posted) == 12 and len(finals) == 2
    assert all(len(f["rows"]) == 6 for f in finals)
    for f in finals:
        posted = sorted((i["row"]["trial_index"], i["row"]["stimulus"]) for i in rows_posted
                        if i["session_id"] == f["session_id"])
        assert posted == sorted((r["trial_index"], r["stimulus"]) for r in f["rows"])

    table = load_trials(data)  # one file per participant, one data set
    trials = table.df
    assert len(trials) == 12 and set(trials["participant"]) == {"good", "bad"}
    assert int(trials["is_catch"].sum()) == 4
    result = apply_exclusions(trials, catch_threshold=0.7)
    assert result.excluded == ["bad"]
    assert len(result.trials) == 4 and set(result.trials["participant"]) == {"good"}

    measured = [(r["measured_fixation_ms"], r["measured_stimulus_ms"])
                for p in data.iterdir() for r in json.loads(p.read_text())]
    fix = [m[0] for m in measured]
    stim = [m[1] for m in measured]
    print(f"\nmeasured fixation ms: median {statistics.median(fix):.1f} min {min(fix)} max {max(fix)}; "
          f"stimulus ms: median {statistics.median(stim):.1f} min {min(stim)} max {max(stim)} (n={len(stim)})")
    # frame-locked screens: the median is the intended duration (to rounding), every trial within a frame
    # (a busy machine can drop a frame now and then)
    assert abs(statistics.median(stim) - 200) <= 2 and abs(statistics.median(fix) - 300) <= 2
    assert sum(abs(s - 200) <= FRAME_MS + 1 for s in stim) >= 0.9 * len(stim)


def test_buttons_with_image_layout_runs(browser, tmp_path):
    npm = _ensure_jspsych()
    lib = _library(tmp_path, 3)
    export_jspsych(lib, tmp_path / "exp", layout="buttons-with-image", jspsych_from=npm, download=False)
    with _Server(tmp_path / "exp") as server:
        context = browser.new_context()
        page = context.new_page()
        _start(page, f"{server.url}/index.html?subject=Q")
        for _ in range(3):
            page.wait_for_selector("#jspsych-image-button-response-btngroup button", timeout=10_000)
            before = page.evaluate("perceptlabSession.jsPsych.data.get().count()")
            page.wait_for_timeout(300)  # let the image be hidden, so that its duration is measured
            page.click('#jspsych-image-button-response-btngroup [data-choice="4"]')
            page.wait_for_function(f"perceptlabSession.jsPsych.data.get().count() > {before}")
        page.wait_for_selector("#perceptlab-saved", state="attached", timeout=10_000)
        rows = _stored(page)["rows"]
        context.close()
    assert len(rows) == 3 and {r["response"] for r in rows} == {4} and {r["trial_type"] for r in rows} == {
        "image-button-response"}
    assert all(abs(r["measured_stimulus_ms"] - 200) <= 2 * FRAME_MS for r in rows)


_FAKE_JATOS = """// a stand-in for the jatos.js that JATOS serves: records the calls the export makes
window.jatos = { workerId: 42, calls: [], onLoad(cb) { this.calls.push(["onLoad"]); cb(); },
  appendResultData(s) { this.calls.push(["append", s]); return Promise.resolve(); },
  submitResultData(s) { this.calls.push(["submit", s]); return Promise.resolve(); },
  endStudy() { this.calls.push(["endStudy"]); return Promise.resolve(); } };
"""


def test_jatos_hook_calls(browser, tmp_path):
    """The calls the jatos hook makes, against a stand-in jatos.js (JATOS itself is not run here)."""
    npm = _ensure_jspsych()
    lib = _library(tmp_path, 2)
    export_jspsych(lib, tmp_path / "exp", save_hook="jatos", download=False, jspsych_from=npm)
    (tmp_path / "exp" / "jatos.js").write_text(_FAKE_JATOS)
    with _Server(tmp_path / "exp") as server:
        context = browser.new_context()
        page = context.new_page()
        _start(page, f"{server.url}/index.html")
        for k in range(2):
            _answer(page, k)
        page.wait_for_function("jatos.calls.some((c) => c[0] === 'endStudy')", timeout=10_000)
        calls = page.evaluate("jatos.calls")
        subject = page.evaluate("perceptlabSession.subject")
        context.close()
    assert [c[0] for c in calls] == ["onLoad", "append", "append", "submit", "endStudy"]
    assert [json.loads(c[1])["response"] for c in calls[1:3]] == [0, 1]
    assert len(json.loads(calls[3][1])) == 2 and subject == "jatos42"


def test_post_queue_left_by_a_closed_tab_is_sent_on_the_next_visit(browser, tmp_path):
    npm = _ensure_jspsych()
    lib = _library(tmp_path, 4)
    export_jspsych(lib, tmp_path / "exp", save_hook="post", save_url="/save", download=False, jspsych_from=npm)
    with _Server(tmp_path / "exp", fail_first=10**6) as server:  # the server is down
        context = browser.new_context()
        page = context.new_page()
        _start(page, f"{server.url}/index.html?subject=late")
        for k in range(2):
            _answer(page, k)
        session = page.evaluate("perceptlabSession.session")
        queued = page.evaluate("JSON.parse(localStorage.getItem(perceptlabSession.post.key))")
        assert [q["row"]["response"] for q in queued] == [0, 1] and server.received == []
        page.close()
        server.fail_first = 0  # back up
        page = context.new_page()
        page.goto(f"{server.url}/index.html?subject=next")
        page.wait_for_function("localStorage.getItem(perceptlabSession.post.key) === '[]'", timeout=15_000)
        context.close()
    assert [(i["session_id"], i["row"]["response"]) for i in server.received] == [(session, 0), (session, 1)]


def test_runs_from_disk_and_recovers_there(browser, tmp_path):
    """Opened straight from the folder (file://, no server): trials stored and recovered all the same."""
    npm = _ensure_jspsych()
    lib = _library(tmp_path, 3)
    index = export_jspsych(lib, tmp_path / "exp", jspsych_from=npm)
    context = browser.new_context()
    page = context.new_page()
    _start(page, index.as_uri() + "?subject=disk")
    for k in range(2):
        _answer(page, k)
    page.close()
    recover = context.new_page()
    recover.goto((tmp_path / "exp" / "recover.html").as_uri())
    rows = recover.locator("#perceptlab-sessions tr[data-key]")
    assert rows.count() == 1 and rows.locator("td.n").inner_text() == "2" and "disk" in rows.inner_text()
    context.close()
