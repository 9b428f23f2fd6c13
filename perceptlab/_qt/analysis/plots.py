"""pyqtgraph views of the analyses. Each view draws what ``perceptlab.analysis`` computed and, when a
bar, cell or point is clicked, emits ``stimuliRequested(title, keys)`` (stimulus keys of the trial
table) or ``pairRequested`` so the panel can show the stimuli behind it.

No stale plots: ``set_analysis(None, why)`` (or :meth:`_View.not_computed`) empties a view and titles
it "not computed: <why>", so a view never shows an earlier data set's result."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, Signal

from perceptlab.analysis.outcomes import OUTCOMES

OUTCOME_COLORS = {"success": "#55a868", "bias": "#dd8452", "failure": "#c44e52"}
NAN_RGBA = (215, 215, 215, 255)


def matrix_rgba(values: np.ndarray, cmap_name: str, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
    """An RGBA image of a matrix through a colour map; NaN cells light grey."""
    cmap = pg.colormap.get(cmap_name)
    v = np.asarray(values, dtype=float)
    scaled = np.clip((np.nan_to_num(v, nan=lo) - lo) / max(hi - lo, 1e-12), 0, 1)
    rgba = cmap.map(scaled, mode="byte").reshape(*v.shape, 4)
    rgba[~np.isfinite(v)] = NAN_RGBA
    return rgba


def _cell_at(item: pg.ImageItem, scene_pos) -> tuple[int, int] | None:
    """(row, col) of the image pixel under a scene position (row-major images)."""
    if item.image is None or not item.sceneBoundingRect().contains(scene_pos):
        return None
    p = item.mapFromScene(scene_pos)
    row, col = int(math.floor(p.y())), int(math.floor(p.x()))
    h, w = item.image.shape[:2]
    return (row, col) if 0 <= row < h and 0 <= col < w else None


class _View(QObject):
    stimuliRequested = Signal(str, list)

    def __init__(self):
        super().__init__()
        self.widget = pg.GraphicsLayoutWidget()
        self.widget.setMinimumSize(360, 220)
        self.widget.scene().sigMouseClicked.connect(self._scene_clicked)
        self.analysis = None

    def _scene_clicked(self, ev) -> None:  # overridden where a click means something
        pass

    def title(self) -> str:
        """The title now shown (plain text)."""
        return self.plot.titleLabel.text if hasattr(self, "plot") else ""

    def not_computed(self, name: str, why: str) -> None:
        """Empty the view and say why (every subclass draws nothing after this)."""
        self.analysis = None
        self._clear()
        self.plot.setTitle(f"{name}: not computed: {why}")

    def _clear(self) -> None:  # pragma: no cover - each view clears its own items
        raise NotImplementedError


_EMPTY = np.zeros(0)

class EntropyView(_View):
    """Histogram of human choice entropy (bins adjustable); a click on a bar lists its stimuli."""

    def __init__(self):
        super().__init__()
        self.plot = self.widget.addPlot()
        self.plot.setLabel("bottom", "choice entropy (bits)")
        self.plot.setLabel("left", "stimuli")
        self.bars = pg.BarGraphItem(x0=[], x1=[], height=[], brush="#4c72b0", pen="w")
        self.plot.addItem(self.bars)
        self.bins = 20
        self.edges = np.zeros(0)
        self.counts = np.zeros(0, dtype=int)

    def _clear(self) -> None:
        self.bars.setOpts(x0=_EMPTY, x1=_EMPTY, height=_EMPTY)
        self.edges = np.zeros(0)
        self.counts = np.zeros(0, dtype=int)

    def set_analysis(self, analysis, bins: int | None = None, why: str = "no trials loaded") -> None:
        if bins:
            self.bins = bins
        if analysis is None:
            self.not_computed("Human choice entropy", why)
            return
        if "entropy" in analysis.skipped:
            self.not_computed("Human choice entropy", analysis.skipped["entropy"])
            return
        self.analysis = analysis
        e = analysis.choices.entropy.to_numpy(dtype=float)
        hi = float(np.log2(len(analysis.table.classes)))
        self.counts, self.edges = np.histogram(e, bins=self.bins, range=(0.0, hi))
        self.bars.setOpts(x0=self.edges[:-1], x1=self.edges[1:], height=self.counts)
        share = float((e > 0).mean()) if len(e) else float("nan")
        synth = "[SYNTHETIC] " if analysis.table.synthetic else ""
        self.plot.setTitle(f"{synth}Human choice entropy (n = {len(e)}, {share:.0%} > 0)")
        self.plot.setXRange(0, hi, padding=0.02)

    def keys_in_bin(self, i: int) -> list[str]:
        ent = self.analysis.choices.entropy
        lo, hi = self.edges[i], self.edges[i + 1]
        last = i == len(self.edges) - 2
        mask = (ent >= lo) & ((ent <= hi) if last else (ent < hi))
        return [str(k) for k in ent.index[mask.to_numpy()]]

    def click_at(self, x: float) -> list[str]:
        if self.analysis is None or len(self.edges) < 2 or not self.edges[0] <= x <= self.edges[-1]:
            return []
        i = min(int(np.searchsorted(self.edges, x, side="right")) - 1, len(self.edges) - 2)
        keys = self.keys_in_bin(i)
        self.stimuliRequested.emit(f"entropy {self.edges[i]:.2f}–{self.edges[i + 1]:.2f} bits", keys)
        return keys

    def _scene_clicked(self, ev) -> None:
        vb = self.plot.vb
        if vb.sceneBoundingRect().contains(ev.scenePos()):
            self.click_at(vb.mapSceneToView(ev.scenePos()).x())


class OutcomeView(_View):
    """Stacked outcome rates (all stimuli and per mode) and the 10x10 per-pair success heatmap."""

    def __init__(self):
        super().__init__()
        self.rates = self.widget.addPlot(row=0, col=0)
        self.rates.setLabel("left", "share of stimuli")
        self.rates.setYRange(0, 1)
        self.rates.addLegend(offset=(-5, 5))
        self.bar_items = {o: pg.BarGraphItem(x=[], height=[], width=0.6, brush=OUTCOME_COLORS[o], name=o)
                          for o in OUTCOMES}
        for item in self.bar_items.values():
            self.rates.addItem(item)
        self.heat = self.widget.addPlot(row=0, col=1)
        self.heat.setAspectLocked(True)
        self.heat.invertY(True)
        self.heat.setLabel("bottom", "class b")
        self.heat.setLabel("left", "class a")
        self.image = pg.ImageItem()
        self.heat.addItem(self.image)
        self.colorbar = pg.ColorBarItem(values=(0, 1), colorMap=pg.colormap.get("magma"), interactive=False,
                                        label="success rate")
        self.widget.addItem(self.colorbar, row=0, col=2)
        self.labels: list[pg.TextItem] = []
        self.groups: list[str] = []
        self.message = ""
        self.plot = self.rates

    def _clear(self) -> None:
        for t in self.labels:
            self.heat.removeItem(t)
        self.labels = []
        for item in self.bar_items.values():
            item.setOpts(x=_EMPTY, height=_EMPTY, y0=_EMPTY, width=0.6)
        self.rates.getAxis("bottom").setTicks(None)
        self.image.clear()
        self.heat.setTitle("")
        self.groups = []

    def set_analysis(self, analysis, why: str = "no trials loaded") -> None:
        oc = None if analysis is None else analysis.outcomes
        if oc is None:
            self.message = analysis.skipped.get("outcomes", "not computed") if analysis is not None else why
            self.not_computed("Guidance outcomes", self.message)
            return
        self._clear()
        self.analysis = analysis
        groups = {"all": oc.overall, **oc.per_mode}
        self.groups = list(groups)
        x = np.arange(len(groups))
        bottom = np.zeros(len(groups))
        for o in OUTCOMES:
            vals = np.array([g[o] or 0.0 for g in groups.values()])
            self.bar_items[o].setOpts(x=x, height=vals, y0=bottom.copy(), width=0.6)
            bottom += vals
        self.rates.getAxis("bottom").setTicks([[(i, f"{k} (n={g['n']})") for i, (k, g) in enumerate(groups.items())]])
        self.rates.setXRange(-0.5, len(groups) - 0.5 + 0.7, padding=0)  # room on the right for the legend
        synth = "[SYNTHETIC] " if analysis.table.synthetic else ""
        self.rates.setTitle(f"{synth}Guidance outcomes (n = {oc.overall['n']} stimuli)")
        c = len(oc.classes)
        self.image.setImage(matrix_rgba(oc.pair_success, "magma"))
        self.image.setRect(0, 0, c, c)
        ticks = [[(i + 0.5, str(name)) for i, name in enumerate(oc.classes)]]
        self.heat.getAxis("bottom").setTicks(ticks)
        self.heat.getAxis("left").setTicks(ticks)
        self.heat.setRange(xRange=(0, c), yRange=(0, c), padding=0.02)
        self.heat.setTitle("Success rate per target pair (n stimuli in every cell)")
        for i in range(c):  # every off-diagonal cell says how many stimuli it holds, 0 included
            for j in range(c):
                if i == j:
                    continue
                rate = oc.pair_success[i, j]
                dark = np.isfinite(rate) and rate < 0.6  # magma is dark below ~0.6
                t = pg.TextItem(str(int(oc.pair_counts[i, j])), color="#ffffff" if dark else "#222222",
                                anchor=(0.5, 0.5))
                t.setPos(j + 0.5, i + 0.5)
                self.heat.addItem(t)
                self.labels.append(t)

    def pair_keys(self, a: int, b: int) -> list[str]:
        ps = self.analysis.outcomes.per_stimulus
        mask = ((ps["class_a"] == a) & (ps["class_b"] == b)) | ((ps["class_a"] == b) & (ps["class_b"] == a))
        return [str(k) for k in ps.index[mask.to_numpy()]]

    def click_cell(self, a: int, b: int) -> list[str]:
        if self.analysis is None or self.analysis.outcomes is None or a == b:
            return []
        keys = self.pair_keys(a, b)
        names = self.analysis.outcomes.classes
        self.stimuliRequested.emit(f"target pair {names[a]}-{names[b]}", keys)
        return keys

    def click_bar(self, group: int, y: float) -> list[str]:
        oc = None if self.analysis is None else self.analysis.outcomes
        if oc is None or not 0 <= group < len(self.groups):
            return []
        name = self.groups[group]
        rates = oc.overall if name == "all" else oc.per_mode[name]
        cum = 0.0
        outcome = OUTCOMES[-1]
        for o in OUTCOMES:
            cum += rates[o] or 0.0
            if y <= cum:
                outcome = o
                break
        ps = oc.per_stimulus
        mask = ps["outcome"] == outcome
        if name != "all":
            mask &= ps["mode"].astype(str) == name
        keys = [str(k) for k in ps.index[mask.to_numpy()]]
        self.stimuliRequested.emit(f"{outcome} ({name})", keys)
        return keys

    def _scene_clicked(self, ev) -> None:
        cell = _cell_at(self.image, ev.scenePos())
        if cell is not None:
            self.click_cell(*cell)
            return
        vb = self.rates.vb
        if vb.sceneBoundingRect().contains(ev.scenePos()):
            p = vb.mapSceneToView(ev.scenePos())
            g = int(round(p.x()))
            if abs(p.x() - g) <= 0.3 and 0 <= p.y() <= 1:
                self.click_bar(g, p.y())


class ScatterView(_View):
    """A scatter of per-stimulus values with Spearman's rho in the title; a click lists the point."""

    def __init__(self, xlabel: str, ylabel: str, color: str):
        super().__init__()
        self.plot = self.widget.addPlot()
        self.plot.setLabel("bottom", xlabel)
        self.plot.setLabel("left", ylabel)
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.scatter = pg.ScatterPlotItem(size=7, pen=None, brush=pg.mkBrush(color + "99"), hoverable=True)
        self.scatter.sigClicked.connect(self._points_clicked)
        self.plot.addItem(self.scatter)
        self.keys: list[str] = []

    def set_points(self, x: np.ndarray, y: np.ndarray, keys: list[str], title: str) -> None:
        x, y = np.asarray(x, float), np.asarray(y, float)
        ok = np.isfinite(x) & np.isfinite(y)
        self.keys = [k for k, good in zip(keys, ok) if good]
        self.scatter.setData(x=x[ok], y=y[ok], data=self.keys)
        self.plot.setTitle(title)

    def _clear(self) -> None:
        self.keys = []
        self.scatter.setData(x=_EMPTY, y=_EMPTY)

    def _points_clicked(self, _item, points, _ev=None) -> None:
        keys = [str(p.data()) for p in points]
        if keys:
            self.stimuliRequested.emit(keys[0] if len(keys) == 1 else f"{len(keys)} stimuli", keys)

    def click_point(self, i: int) -> list[str]:
        key = self.keys[i]
        self.stimuliRequested.emit(key, [key])
        return [key]


def _rho_text(res) -> str:
    return f"ρ = {res.rho:.2f} (p = {res.p:.2g}, n = {res.n})" if res.defined else f"ρ not defined: {res.reason}"


class RtView(ScatterView):
    def __init__(self):
        super().__init__("choice entropy (bits)", "median RT (ms)", "#4c72b0")

    def set_analysis(self, analysis, why: str = "no trials loaded") -> None:
        if analysis is None or not analysis.table.has_rt or "entropy" in analysis.skipped:
            why = why if analysis is None else analysis.skipped.get(
                "entropy", analysis.skipped.get("rt_entropy", "no reaction times in the trial table"))
            self.not_computed("RT vs entropy", why)
            return
        self.analysis = analysis
        per = analysis.rt.per_stimulus
        synth = "[SYNTHETIC] " if analysis.table.synthetic else ""
        self.set_points(per["entropy_bits"].to_numpy(), per["median_rt_ms"].to_numpy(), [str(k) for k in per.index],
                        f"{synth}RT vs entropy: {_rho_text(analysis.rt.spearman)}")


class ModelHumanView(ScatterView):
    def __init__(self):
        super().__init__("model entropy (bits)", "human choice entropy (bits)", "#dd8452")
        self.model: str | None = None

    def set_analysis(self, analysis, model: str | None = None, why: str = "no trials loaded") -> None:
        self.model = model
        res = None if analysis is None or model is None else analysis.model_human.get(model)
        if res is None:
            if analysis is not None:
                why = (analysis.skipped.get(f"model_human:{model}") or analysis.skipped.get("model_human")
                       or "no model chosen")
            self.not_computed("Model vs human entropy", why)
            return
        self.analysis = analysis
        sc = res.scatter
        synth = "[SYNTHETIC] " if analysis.table.synthetic else ""
        self.set_points(sc["model_entropy_bits"].to_numpy(), sc["human_entropy_bits"].to_numpy(),
                        [str(k) for k in sc.index], f"{synth}Model ({model}) vs human entropy: {_rho_text(res.spearman)}")


class AgreementView(_View):
    """Pairwise participant agreement ordered by clustering, with cluster boundaries."""

    participantsRequested = Signal(str, str)

    def __init__(self):
        super().__init__()
        self.plot = self.widget.addPlot(row=0, col=0)
        self.plot.invertY(True)  # no aspect lock: the axes span the participants, 0..N, whatever the window
        self.plot.setLabel("bottom", "participants (dendrogram order)")
        self.plot.setLabel("left", "participants (dendrogram order)")
        self.image = pg.ImageItem()
        self.plot.addItem(self.image)
        self.colorbar = pg.ColorBarItem(values=(0, 1), colorMap=pg.colormap.get("viridis"), interactive=False,
                                        label="agreement")
        self.widget.addItem(self.colorbar, row=0, col=1)
        self.lines: list[pg.PlotCurveItem] = []

    def _clear(self) -> None:
        for ln in self.lines:
            self.plot.removeItem(ln)
        self.lines = []
        self.image.clear()

    def set_analysis(self, analysis, why: str = "no trials loaded") -> None:
        cl = None if analysis is None else analysis.clusters
        if cl is None:
            why = analysis.skipped.get("clusters", "not computed") if analysis is not None else why
            self.not_computed("Participant agreement", why)
            return
        self._clear()
        self.analysis = analysis
        shown = np.array(cl.ordered_agreement, dtype=float)
        np.fill_diagonal(shown, np.nan)
        finite = shown[np.isfinite(shown)]
        lo = float(finite.min()) if finite.size else 0.0
        hi = float(finite.max()) if finite.size else 1.0
        self.colorbar.setLevels((lo, hi))
        self.image.setImage(matrix_rgba(shown, "viridis", lo, hi))
        n = len(cl.order)
        self.image.setRect(0, 0, n, n)
        self.plot.setLimits(xMin=0, xMax=n, yMin=0, yMax=n)
        self.plot.setRange(xRange=(0, n), yRange=(0, n), padding=0)
        for b in cl.boundaries if cl.reliable or cl.k_given else ():
            for xs, ys in (([b, b], [0, n]), ([0, n], [b, b])):
                ln = pg.PlotCurveItem(xs, ys, pen=pg.mkPen("w", width=2))
                self.plot.addItem(ln)
                self.lines.append(ln)
        synth = "[SYNTHETIC] " if analysis.table.synthetic else ""
        self.plot.setTitle(f"{synth}Pairwise agreement of n = {n} participants: {cl.verdict}")

    def click_cell(self, i: int, j: int) -> tuple[str, str] | None:
        cl = None if self.analysis is None else self.analysis.clusters
        if cl is None or not (0 <= i < len(cl.order) and 0 <= j < len(cl.order)):
            return None
        a, b = cl.order[i], cl.order[j]
        self.participantsRequested.emit(a, b)
        return a, b

    def _scene_clicked(self, ev) -> None:
        cell = _cell_at(self.image, ev.scenePos())
        if cell is not None:
            self.click_cell(*cell)
