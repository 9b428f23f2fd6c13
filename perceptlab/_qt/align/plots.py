"""pyqtgraph views of an alignment evaluation (:func:`perceptlab.align.evaluate.evaluate_alignment`).

Each view has a ``widget`` (a ``GraphicsLayoutWidget``, exportable like the Analysis plots) and a
``set_report(evaluation, synthetic)`` that draws it, or says in the title why there is nothing to draw.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg

from perceptlab._qt.align.runner import gains

GAIN_UP, GAIN_DOWN, GAIN_TIE = "#55a868", "#c44e52", "#9a9a9a"
BEFORE, AFTER = "#4c72b0", "#dd8452"
MAX_TICK_LABELS = 12  # participant names on the axis; more would run into one another


def _synth(synthetic: bool) -> str:
    return "[SYNTHETIC] " if synthetic else ""


def _rho(d: dict | None) -> str:
    if not d:
        return "ρ n/a"
    if d.get("rho") is None:
        return f"ρ not defined ({d.get('reason', '')})"
    return f"ρ = {d['rho']:.2f}"


def sparse_ticks(labels: list[str], most: int = MAX_TICK_LABELS) -> list[list[tuple[int, str]]]:
    """Major ticks with every k-th label (at most ``most``), minor ticks unlabelled at every position."""
    step = max(1, math.ceil(len(labels) / most))
    return [[(i, str(labels[i])) for i in range(0, len(labels), step)], [(i, "") for i in range(len(labels))]]


class _View:
    def __init__(self, bottom: str, left: str):
        self.widget = pg.GraphicsLayoutWidget()
        self.widget.setMinimumSize(360, 180)
        self.plot = self.widget.addPlot()
        self.plot.setLabel("bottom", bottom)
        self.plot.setLabel("left", left)
        for name in ("left", "bottom"):  # no '(x0.001)' scale prefixes: the axes are in points or bits
            self.plot.getAxis(name).enableAutoSIPrefix(False)
        self.plot.showGrid(y=True, alpha=0.2)

    def title(self) -> str:
        return self.plot.titleLabel.text

    def empty(self, title: str, y=(-10.0, 10.0)) -> None:
        """Before a run: a plain frame, no ticks on the category axis, and the title saying why."""
        self.plot.getAxis("bottom").setTicks([[], []])
        self.plot.setXRange(0, 1, padding=0)
        self.plot.setYRange(*y, padding=0)
        self.plot.setTitle(title)


class GainView(_View):
    """IndivNet minus GroupNet accuracy on each participant's own test trials, largest gain first."""

    def __init__(self):
        super().__init__("participants (largest gain first)", "gain (accuracy points)")
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.8, brushes=[])
        self.plot.addItem(self.bars)
        self.zero = pg.InfiniteLine(pos=0, angle=0, pen=pg.mkPen("#555", width=1))
        self.plot.addItem(self.zero)
        # a dot on top of each bar, so that a participant without gain (a tie) shows too
        self.dots = pg.ScatterPlotItem(size=7, pen=pg.mkPen(None))
        self.plot.addItem(self.dots)
        self.frame = gains({})

    def set_report(self, evaluation: dict | None, synthetic: bool = False) -> None:
        self.frame = gains(evaluation or {})
        f = self.frame
        if f.empty:
            self.bars.setOpts(x=[], height=[], brushes=[])
            self.dots.setData(x=[], y=[])
            why = "no run yet" if evaluation is None else "no IndivNets in this run (level group)"
            self.empty(f"IndivNet − GroupNet per participant: {why}")
            return
        g = 100 * f["gain"].to_numpy()
        colors = [GAIN_UP if v > 0 else GAIN_DOWN if v < 0 else GAIN_TIE for v in g]
        x = np.arange(len(f))
        self.bars.setOpts(x=x, height=g, width=0.8, brushes=colors, pens=[pg.mkPen(None)] * len(f))
        self.dots.setData(x=x, y=g, brush=[pg.mkBrush(c) for c in colors])
        self.plot.getAxis("bottom").setTicks(sparse_ticks(list(f["participant"])))
        lim = max(5.0, float(np.abs(g).max()) * 1.1)
        self.plot.setYRange(-lim, lim, padding=0)
        self.plot.setXRange(-0.6, len(f) - 0.4, padding=0)
        better, ties = int((g > 0).sum()), int((g == 0).sum())
        self.plot.setTitle(f"{_synth(synthetic)}IndivNet − GroupNet on own test trials: better for {better} of "
                           f"{len(f)}, {ties} ties (mean {np.mean(g):+.1f} points)")


class EntropyScatterView(_View):
    """Model entropy vs human choice entropy per test stimulus: base (before) and GroupNet (after)."""

    def __init__(self):
        super().__init__("model entropy (bits)", "human choice entropy (bits)")
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.legend = self.plot.addLegend(offset=(-10, 10))
        self.before = pg.ScatterPlotItem(size=8, pen=pg.mkPen(None), brush=pg.mkBrush(BEFORE + "b0"), name="base")
        self.after = pg.ScatterPlotItem(size=8, pen=pg.mkPen(None), brush=pg.mkBrush(AFTER + "c0"), name="group")
        self.plot.addItem(self.before)
        self.plot.addItem(self.after)
        self.n_points = {"base": 0, "group": 0}

    def _set_label(self, item, text: str) -> None:
        label = self.legend.getLabel(item) if self.legend is not None else None
        if label is not None:
            label.setText(text)

    def set_report(self, evaluation: dict | None, synthetic: bool = False) -> None:
        pts = (evaluation or {}).get("entropy_points")
        sp = (evaluation or {}).get("entropy_spearman", {})
        models = (evaluation or {}).get("models", {})
        self.n_points = {"base": 0, "group": 0}
        if not pts or not pts.get("human"):
            for item in (self.before, self.after):
                item.setData(x=[], y=[])
            why = ("no run yet" if evaluation is None else
                   "no per-stimulus entropies in these results" if not pts else
                   f"no test stimulus has {sp.get('min_responses', 3)} or more responses")
            self.plot.setTitle(f"Model vs human entropy: {why}")
            hi = math.log2(10)
            self.plot.setXRange(0, hi, padding=0.03)
            self.plot.setYRange(0, hi, padding=0.03)
            return
        human = np.asarray(pts["human"], dtype=float)
        for key, item, when in (("base", self.before, "before"), ("group", self.after, "after")):
            if key in pts:
                item.setData(x=np.asarray(pts[key], dtype=float), y=human)
                self.n_points[key] = len(human)
                self._set_label(item, f"{models.get(key, key)} ({when}): {_rho(sp.get(key))}")
            else:
                item.setData(x=[], y=[])
                self._set_label(item, f"{key}: not evaluated")
        hi = math.log2(10)
        self.plot.setXRange(0, hi, padding=0.03)
        self.plot.setYRange(0, hi, padding=0.03)
        parts = [f"{w} {_rho(sp.get(k))}" for k, w in (("base", "before"), ("group", "after")) if k in pts]
        self.plot.setTitle(f"{_synth(synthetic)}Model vs human entropy, {len(human)} test stimuli: " + ", ".join(parts))


class BinGainView(_View):
    """IndivNet minus GroupNet accuracy by the human choice entropy of the stimulus (pooled own trials)."""

    def __init__(self):
        super().__init__("human choice entropy (bits)", "gain (accuracy points)")
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.7, brushes=[])
        self.plot.addItem(self.bars)
        self.plot.addItem(pg.InfiniteLine(pos=0, angle=0, pen=pg.mkPen("#555", width=1)))
        self.dots = pg.ScatterPlotItem(size=7, pen=pg.mkPen(None))
        self.plot.addItem(self.dots)
        self.labels: list[pg.TextItem] = []
        self.bins: list[dict] = []

    def set_report(self, evaluation: dict | None, synthetic: bool = False) -> None:
        for t in self.labels:
            self.plot.removeItem(t)
        self.labels = []
        gb = (evaluation or {}).get("gain_by_entropy")
        self.bins = list(gb["bins"]) if gb else []
        if not self.bins:
            self.bars.setOpts(x=[], height=[], brushes=[])
            self.dots.setData(x=[], y=[])
            why = "no run yet" if evaluation is None else "needs IndivNets and a GroupNet"
            self.empty(f"IndivNet − GroupNet by human entropy: {why}")
            return
        g = np.array([100 * b["gain"] if b["gain"] is not None else 0.0 for b in self.bins])
        colors = [GAIN_TIE if b["gain"] is None else GAIN_UP if v > 0 else GAIN_DOWN if v < 0 else GAIN_TIE
                  for b, v in zip(self.bins, g)]
        x = np.arange(len(self.bins))
        self.bars.setOpts(x=x, height=g, width=0.7, brushes=colors, pens=[pg.mkPen(None)] * len(g))
        has = np.array([b["gain"] is not None for b in self.bins])
        self.dots.setData(x=x[has], y=g[has], brush=[pg.mkBrush(c) for c, h in zip(colors, has) if h])
        self.plot.getAxis("bottom").setTicks([[(i, b["bin"]) for i, b in enumerate(self.bins)]])
        lim = max(5.0, float(np.abs(g).max()) * 1.25)
        self.plot.setYRange(-lim, lim, padding=0)
        self.plot.setXRange(-0.6, len(self.bins) - 0.4, padding=0)
        for i, (b, v) in enumerate(zip(self.bins, g)):
            t = pg.TextItem(f"n={b['n_trials']}", color="#333", anchor=(0.5, 1.0 if v >= 0 else 0.0))
            t.setPos(i, v)
            self.plot.addItem(t)
            self.labels.append(t)
        self.plot.setTitle(f"{_synth(synthetic)}IndivNet − GroupNet by human entropy (own test trials, pooled)")
