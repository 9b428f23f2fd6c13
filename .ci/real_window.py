"""The real-window check: start ``perceptlab`` on Qt's xcb platform under Xvfb and check that a window
maps within the time limit and paints (a screenshot of it is not black/uniform), then that the main
window follows and closes cleanly. Prints the times it measured.

    python .ci/real_window.py [--limit-s 2] [--out DIR]

Needs Xvfb, xdotool and ImageMagick's ``import`` (.ci/run installs them); exits 0 with a printed
"SKIP: ..." line when they are missing, 1 when the check fails.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def xdotool(display: str, *args: str) -> list[str]:
    out = subprocess.run(["xdotool", *args], capture_output=True, text=True, env={**os.environ, "DISPLAY": display},
                         timeout=10).stdout
    return out.split()


def grab(display: str, window: str, path: Path) -> tuple[float, float] | None:
    """Screenshot ``window`` into ``path``; (mean, std) of its gray levels, or None when it failed."""
    r = subprocess.run(["import", "-window", window, str(path)], capture_output=True,
                       env={**os.environ, "DISPLAY": display}, timeout=20)
    if r.returncode != 0 or not path.is_file():
        return None
    from PIL import Image, ImageStat  # noqa: PLC0415

    stat = ImageStat.Stat(Image.open(path).convert("L"))
    return stat.mean[0], stat.stddev[0]


def painted(stats: tuple[float, float] | None) -> bool:
    """Painted = not one flat colour (an unpainted X window is black or uniform)."""
    return stats is not None and stats[1] > 8.0 and stats[0] > 20.0


def wait_window(display: str, name: str, deadline: float, proc) -> str | None:
    while time.monotonic() < deadline and proc.poll() is None:
        ids = xdotool(display, "search", "--onlyvisible", "--name", name)
        if ids:
            return ids[-1]
        time.sleep(0.02)
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit-s", type=float, default=float(os.environ.get("PERCEPTLAB_WINDOW_LIMIT_S", 2.0)),
                    help="the most seconds from start to the first painted window")
    ap.add_argument("--main-limit-s", type=float, default=120.0, help="the most seconds until the main window paints")
    ap.add_argument("--out", type=Path, default=None, help="keep the screenshots here")
    args = ap.parse_args()
    tools = [t for t in ("Xvfb", "xdotool", "import") if shutil.which(t) is None]
    if tools:
        print(f"SKIP: real-window check: {', '.join(tools)} not installed (apt-get install xvfb xdotool imagemagick)")
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="perceptlab-window-"))
    out = args.out or tmp
    out.mkdir(parents=True, exist_ok=True)
    read_fd, write_fd = os.pipe()
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1600x1000x24", "-nolisten", "tcp", "-noreset"],
                            pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_fd)
    number = b""
    while not number.endswith(b"\n"):  # read the whole line: closing the pipe early kills the server (EPIPE)
        chunk = os.read(read_fd, 16)
        if not chunk:
            break
        number += chunk
    os.close(read_fd)
    display = ":" + number.decode().strip()
    ready = time.monotonic() + 15  # the display number comes a moment before the server accepts clients
    while not xdotool(display, "getdisplaygeometry") and time.monotonic() < ready and xvfb.poll() is None:
        time.sleep(0.05)
    env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb", "HOME": str(tmp),
           "XDG_CONFIG_HOME": str(tmp / "config"), "XDG_DATA_HOME": str(tmp / "data"),
           "PERCEPTLAB_MODELS": str(tmp / "models"), "PYTHONPATH": str(REPO)}
    env.pop("WAYLAND_DISPLAY", None)
    failures = []
    log = (tmp / "app.log").open("w")
    t0 = time.monotonic()
    app = subprocess.Popen([sys.executable, "-m", "perceptlab"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        first = wait_window(display, "PerceptLab", t0 + 60, app)
        t_map = time.monotonic() - t0
        t_paint = None
        while first is not None and time.monotonic() - t0 < 60 and app.poll() is None:
            if painted(grab(display, first, out / "first-window.png")):
                t_paint = time.monotonic() - t0
                break
            time.sleep(0.02)
        if first is None:
            failures.append(f"no window mapped within 60 s (app rc={app.poll()})")
        elif t_paint is None:
            failures.append("the first window never painted (its screenshot stayed black/uniform)")
        else:
            print(f"first window mapped after {t_map:.2f} s, painted after {t_paint:.2f} s (limit {args.limit_s:.1f} s)")
            if t_paint > args.limit_s:
                failures.append(f"first painted window after {t_paint:.2f} s > {args.limit_s:.1f} s")
        main_id = None
        deadline = t0 + args.main_limit_s
        while time.monotonic() < deadline and app.poll() is None:
            ids = [i for i in xdotool(display, "search", "--onlyvisible", "--name", "^PerceptLab( — .*)?$")]
            names = {i: " ".join(xdotool(display, "getwindowname", i)) for i in ids}
            main_id = next((i for i, n in names.items() if "starting" not in n), None)
            if main_id:
                break
            time.sleep(0.1)
        if main_id is None:
            failures.append(f"the main window did not show within {args.main_limit_s:.0f} s")
        else:
            t_main = time.monotonic() - t0
            stats, grabs = None, 0
            while time.monotonic() < deadline:
                stats = grab(display, main_id, out / "main-window.png")
                grabs += 1
                if painted(stats):
                    break
                time.sleep(0.1)
            if painted(stats):
                print(f"main window mapped after {t_main:.2f} s, painted after {time.monotonic() - t0:.2f} s "
                      f"(screenshot {grabs}; gray mean {stats[0]:.0f}, std {stats[1]:.0f})")
            else:
                failures.append(f"the main window stayed black/uniform ({stats})")
            xdotool(display, "windowfocus", "--sync", main_id)  # no window manager: focus it, then type
            xdotool(display, "key", "ctrl+q")
        try:
            rc = app.wait(timeout=60)
            if rc != 0:
                failures.append(f"the app exited with status {rc}")
        except subprocess.TimeoutExpired:
            failures.append("the app did not quit within 60 s of Ctrl+Q")
    finally:
        if app.poll() is None:
            app.kill()
        xvfb.terminate()
        log.close()
    text = (tmp / "app.log").read_text(errors="replace")
    for bad in ("Ambiguous shortcut", "Traceback", "QPainter::"):
        if bad in text:
            failures.append(f"the app's output has {bad!r}")
    if failures:
        print("real-window check FAILED:\n  " + "\n  ".join(failures) + f"\napp output:\n{text[-3000:]}")
        return 1
    print(f"real-window check passed (screenshots in {out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
