"""Screenshots of every panel, taken offscreen on a demo project (for the README and the AppStream
metadata)::

    python -m perceptlab._qt.screenshots --demo resources/demo --out docs/screenshots

Opens the app with throw-away settings on a temporary copy of the demo project (the demo folder is
only read), runs a short generation for the pair 4-9 in Explore, makes a few curation decisions in the
copy so that the status colours show, fine-tunes a GroupNet and a few IndivNets on the demo trials (into a
throw-away model folder), and saves ``explore.png``, ``curate.png``, ``data.png``, ``data-trials.png``,
one ``analysis-<plot>.png`` per analysis, one ``align-<plot>.png`` per alignment plot,
``align-manipulate.png`` and ``explore-manipulate.png`` (a manipulation between two of them in Explore).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path


def take_screenshots(demo_dir: str | Path | None, out_dir: str | Path, *, registry=None, pair=(4, 9),
                     preset: str = "fast", per_pair: int = 16, batch_size: int = 16, size=(1400, 900),
                     device=None, timeout_s: float = 900.0, align_epochs: int = 4,
                     align_participants: int = 3) -> list[Path]:
    """Save one PNG per panel (and per analysis plot) into ``out_dir``; returns the paths."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QSettings, Qt  # noqa: PLC0415
    from PySide6.QtGui import QGuiApplication  # noqa: PLC0415
    from PySide6.QtWidgets import QApplication  # noqa: PLC0415

    from perceptlab._qt.app import ensure_app  # noqa: PLC0415

    ensure_app()
    from perceptlab._qt.main_window import MainWindow  # noqa: PLC0415
    from perceptlab._qt.workers import wait_ms, wait_until  # noqa: PLC0415

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="perceptlab-shots-"))
    written: list[Path] = []
    timeout_ms = int(timeout_s * 1000)
    window = None
    try:
        if registry is None:  # fine-tuned models go to a throw-away folder, never the user's
            from perceptlab.engine.registry import Registry  # noqa: PLC0415

            registry = Registry(user_dir=tmp / "models")
        settings = QSettings(str(tmp / "settings.ini"), QSettings.Format.IniFormat)
        window = MainWindow(registry=registry, settings=settings, device=device, data_dir=tmp / "data",
                            demo_dir=Path(demo_dir) if demo_dir else None)
        window.resize(*size)
        window.show()
        s = window.session
        wait_until(lambda: s.mnist is not None, 60_000)
        if s.trials_path is not None or window.data.load_job is not None:
            wait_until(lambda: s.analysis is not None, timeout_ms)

        def shot(name: str) -> None:
            wait_ms(250)
            path = out / f"{name}.png"
            if QGuiApplication.platformName() == "xcb":  # the pixels the X server shows
                QApplication.processEvents()
                window.screen().grabWindow(window.winId()).save(str(path))
            else:
                window.grab().save(str(path))
            written.append(path)

        # Explore: a short generation for one pair
        ex = window.explore
        window.tabs.setCurrentWidget(ex)
        ex.form.matrix.set_pairs([tuple(pair)])
        ex.form.apply_preset(preset)
        ex.form.per_pair.setValue(per_pair)
        ex.form.batch_size.setValue(batch_size)
        ex.form.seed.setValue(0)
        if ex.generate():
            wait_until(lambda: not ex.is_running(), timeout_ms)
            tiles = ex.controller.tiles
            best = next((i for i, t in enumerate(tiles) if t.final and t.passed), 0)
            if tiles:
                ex.view.setCurrentIndex(ex.model.index(best))
        shot("explore")

        # Curate: a few decisions in the copy, so that accepted / rejected frames show
        cur = window.curate
        window.tabs.setCurrentWidget(cur)
        if s.library is not None and len(s.library):
            recs = s.library.records()
            good = [r.id for r in recs if r.passed][:4]
            bad = [r.id for r in recs if r.passed is False][:2]
            if good:
                cur.select_ids(good)
                cur.curate_key("accept")
            if bad:
                cur.select_ids(bad)
                cur.curate_key("reject")
            cur.select_ids([recs[0].id])
            cur.view.setCurrentIndex(cur.proxy.index(0, 0))
        shot("curate")

        # Data: the validation report and the trial table
        window.tabs.setCurrentWidget(window.data)
        window.data.tabs.setCurrentIndex(0)
        shot("data")
        window.data.tabs.setCurrentIndex(1)
        shot("data-trials")
        window.data.tabs.setCurrentIndex(2)
        shot("data-participants")

        # Analysis: one screenshot per plot
        an = window.analysis
        window.tabs.setCurrentWidget(an)
        for i, key in enumerate(an.views):
            an.tabs.setCurrentIndex(i)
            shot(f"analysis-{key.replace('_', '-')}")

        # Align: a short GroupNet + IndivNets run on the demo trials, one screenshot per plot
        al = window.align
        window.tabs.setCurrentWidget(al)
        al.tabs.setCurrentIndex(0)
        if al.people.count():
            al.level.setCurrentIndex(al.level.findData("both"))
            ids = [al.people.item(i).data(Qt.ItemDataRole.UserRole) for i in range(al.people.count())]
            al.set_checked_participants(ids[:align_participants])
            al.epochs.setValue(align_epochs)
            if al.run():
                wait_until(lambda: not al.is_running(), timeout_ms)
        for i, key in enumerate(al.views):
            al.plots.setCurrentIndex(i)
            shot(f"align-{key.replace('_', '-')}")
        al.tabs.setCurrentIndex(1)
        shot("align-manipulate")

        # Manipulate: two participants' IndivNets watched live in Explore
        man = al.manipulate
        if man.p1.count() >= 2:
            man.set_participants(man.p1.itemData(0), man.p2.itemData(1))
            man.matrix.set_pairs([tuple(pair)])
            man.per_pair.setValue(per_pair)
            man.run_tag.setText("demo")
            if man.watch():
                wait_until(lambda: not ex.is_running(), timeout_ms)
            shot("explore-manipulate")
    finally:
        if window is not None:
            window.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m perceptlab._qt.screenshots", description=__doc__.split("\n\n")[0])
    p.add_argument("--demo", default=None, help="demo project folder (default: resources/demo)")
    p.add_argument("--out", required=True, help="folder for the PNGs")
    p.add_argument("--pair", default="4-9", help="pair generated in Explore (default 4-9)")
    p.add_argument("--preset", default="fast", help="sampler preset (default fast)")
    p.add_argument("--per-pair", type=int, default=16)
    p.add_argument("--device", default=None, help="auto, cpu or cuda")
    args = p.parse_args(argv)
    if args.demo is None:
        from perceptlab._qt.demo import shipped_demo_dir  # noqa: PLC0415

        args.demo = shipped_demo_dir()
    a, b = (int(c) for c in args.pair.split("-"))
    paths = take_screenshots(args.demo, args.out, pair=(a, b), preset=args.preset, per_pair=args.per_pair,
                             device=args.device)
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
