"""Regenerate tests/data/jspsych_returned/ from a real run: the export in headless Chromium with jsPsych 8.

P01 answers every trial (catch trials correctly; the CSV is the download at the end); P02 answers all
but two, catch trials wrongly, and closes the tab: its JSON comes from recover.html. From the
repository root: ``python -m tests.browser.capture_returned OUT_DIR 10``, then copy OUT_DIR/returned/*.
It prints the measured fixation and stimulus durations of P02's trials (``N`` = 200 for a timing run).
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
from collections import Counter
from pathlib import Path

from playwright.sync_api import sync_playwright

from perceptlab.data.export import export_jspsych
from tests.browser.test_jspsych_browser import CHROMIUM, _answer, _ensure_jspsych, _library, _Server, _start


def main(argv: list[str]) -> None:
    tmp, n = Path(argv[0]), int(argv[1])
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    out = tmp / "returned"
    out.mkdir()
    lib = _library(tmp, n)
    export_jspsych(lib, tmp / "exp", catch_rate=0.2, catch_seed=5, jspsych_from=_ensure_jspsych())
    with sync_playwright() as pw, _Server(tmp / "exp") as server:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        for subject, correct, fmt in (("P01", True, "csv"), ("P02", False, "json")):
            ctx = b.new_context(accept_downloads=True)
            page = ctx.new_page()
            _start(page, f"{server.url}/index.html?subject={subject}&seed=fixture-{subject}")
            total = page.evaluate("PERCEPTLAB_STIMULI.length")
            for k in range(total if fmt == "csv" else total - 2):
                if fmt == "csv" and k == total - 1:
                    with page.expect_download() as info:
                        _answer(page, k, correct_catch=correct, via_key=k % 3 == 0)
                    info.value.save_as(out / f"{subject}.csv")
                else:
                    _answer(page, k, correct_catch=correct, via_key=k % 3 == 0)
            if fmt == "json":
                page.close()
                recover = ctx.new_page()
                recover.goto(f"{server.url}/recover.html")
                with recover.expect_download() as info:
                    recover.locator("#perceptlab-sessions tr[data-key] button.json").click()
                info.value.save_as(out / f"{subject}.json")
            ctx.close()
        b.close()
    rows = json.loads((out / "P02.json").read_text())
    for name in ("measured_fixation_ms", "measured_stimulus_ms"):
        values = [r[name] for r in rows]
        print(f"P02 {name}: median {statistics.median(values)}; counts {sorted(Counter(values).items())}")
    print(sorted(p.name for p in out.iterdir()))


if __name__ == "__main__":
    main(sys.argv[1:])
