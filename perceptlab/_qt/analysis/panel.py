"""Analysis: every analysis of the loaded trials as an interactive pyqtgraph plot.

Entropy histogram (bins), outcome rates + per-pair success heatmap, RT vs entropy, participant
agreement ordered by clustering (k), model vs human entropy (model). Clicking a bar, cell or point
opens the stimuli behind it (image and choice distribution); every plot exports to PNG, SVG and PDF.
"""

from __future__ import annotations

import html

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from perceptlab._qt.analysis.lwise import LwisePage
from perceptlab._qt.analysis.mixup import MixupView
from perceptlab._qt.analysis.plots import AgreementView, EntropyView, ModelHumanView, OutcomeView, RtView
from perceptlab._qt.analysis.runner import recluster
from perceptlab._qt.messages import show_error
from perceptlab._qt.widgets.combos import refill_combo
from perceptlab._qt.widgets.plot_export import ExportButton
from perceptlab._qt.widgets.stimulus_browser import StimulusBrowser, StimulusItem
from perceptlab._qt.workers import Job


class AnalysisPanel(QWidget):
    message = Signal(str)

    def __init__(self, session, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.browser: StimulusBrowser | None = None
        self.cluster_job: Job | None = None
        self.banner = QLabel("Load a trial file (Data panel) to see the analyses.")
        self.banner.setWordWrap(True)
        self.entropy = EntropyView()
        self.outcomes = OutcomeView()
        self.rt = RtView()
        self.agreement = AgreementView()
        self.model_human = ModelHumanView()
        self.views = {"entropy": self.entropy, "outcomes": self.outcomes, "rt_entropy": self.rt,
                      "agreement": self.agreement, "model_human": self.model_human}

        self.bins = QSpinBox()
        self.bins.setRange(2, 200)
        self.bins.setValue(session.analysis_options.get("bins", 20))
        self.bins.valueChanged.connect(lambda v: self.entropy.set_analysis(self.session.analysis, v))
        self.k = QSpinBox()
        self.k.setRange(0, 50)
        self.k.setSpecialValueText("auto (silhouette)")
        self.k.setValue(0)
        self.k.valueChanged.connect(self.set_k)
        self.model = QComboBox()
        self.model.currentIndexChanged.connect(self._model_chosen)

        self.tabs = QTabWidget()
        self.notes: dict[str, QLabel] = {}
        specs = (
            ("entropy", "Entropy", [("Bins", self.bins)]),
            ("outcomes", "Outcomes", []),
            ("rt_entropy", "RT vs entropy", []),
            ("agreement", "Participants", [("Clusters k", self.k)]),
            ("model_human", "Model vs human", [("Model", self.model)]),
        )
        for key, title, controls in specs:
            view = self.views[key]
            page = QWidget()
            pl = QVBoxLayout(page)
            row = QHBoxLayout()
            for label, w in controls:
                row.addWidget(QLabel(label))
                row.addWidget(w)
            hint = QLabel("Click a bar, cell or point to see its stimuli.")
            hint.setStyleSheet("color: #666")
            row.addWidget(hint, 1)
            row.addWidget(ExportButton(view.widget, key, self, on_error=lambda e: show_error(self, "Export", e),
                                       on_exported=lambda p: self.message.emit(f"Exported {p}")))
            pl.addLayout(row)
            pl.addWidget(view.widget, 1)
            note = QLabel()
            note.setWordWrap(True)
            note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.notes[key] = note
            pl.addWidget(note)
            self.tabs.addTab(page, title)
            view.stimuliRequested.connect(self.show_stimuli)
        self.agreement.participantsRequested.connect(self.show_participant_pair)
        self.mixup = MixupView(self)  # its own trials and design (pick / slider trials), seeds/004
        self.mixup.message.connect(self.message)
        self.tabs.addTab(self.mixup, "Mixup")
        self.lwise = LwisePage(session, self)  # L-WISE: difficulty vs error, learning curves
        self.lwise.message.connect(self.message)
        self.tabs.addTab(self.lwise, "L-WISE")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.banner)
        layout.addWidget(self.tabs, 1)
        session.analysisChanged.connect(self.refresh)
        self.refresh()

    # ---- drawing

    def _why_none(self) -> str:
        """Why there is no analysis to show (a failed load or analysis says what failed)."""
        failure = getattr(self.session, "analysis_failure", None)
        if failure:
            return failure
        return "no trials loaded (Data panel: Open trial file…)" if self.session.trials is None else "analysing…"

    def refresh(self) -> None:
        a = self.session.analysis
        why = self._why_none()
        if a is None:
            self.banner.setText(html.escape(why[:1].upper() + why[1:]))
        else:
            synth = ("<span style='color:#c8323c'><b>SYNTHETIC data</b> (simulated observers, not human "
                     "responses)</span> — " if a.table.synthetic else "")
            c = a.summary()["counts"]
            self.banner.setText(f"{synth}{c['trials_analysed']} trials, {c['participants_analysed']} participants "
                                f"({c['participants_excluded']} excluded), {c['stimuli_analysed']} stimuli analysed"
                                + (f" — {html.escape(a.stimuli.summary())}" if a.stimuli is not None else ""))
        names = {"entropy": "Human choice entropy", "outcomes": "Guidance outcomes",
                 "rt_entropy": "RT vs entropy", "agreement": "Participant agreement",
                 "model_human": "Model vs human entropy"}
        try:
            refill_combo(self.model, [(name, name) for name in (a.model_human if a is not None else {})])
        except Exception:  # noqa: BLE001 - the model list must never stop the plots from updating
            pass
        draw = {
            "entropy": lambda: self.entropy.set_analysis(a, self.bins.value(), why=why),
            "outcomes": lambda: self.outcomes.set_analysis(a, why=why),
            "rt_entropy": lambda: self.rt.set_analysis(a, why=why),
            "agreement": lambda: self.agreement.set_analysis(a, why=why),
            "model_human": lambda: self.model_human.set_analysis(a, self.model.currentData(), why=why),
        }
        self.failed: dict[str, str] = {}
        for key, fn in draw.items():  # one view failing never leaves another showing old data
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 - shown in the view itself, not swallowed
                self.failed[key] = f"{type(exc).__name__}: {exc}"
                try:
                    self.views[key].not_computed(names[key], f"drawing failed ({self.failed[key]})")
                except Exception:  # noqa: BLE001
                    pass
        self._notes()

    def _notes(self) -> None:
        a = self.session.analysis
        skipped = {} if a is None else a.skipped
        for key, label in self.notes.items():
            if a is None:
                label.setText(html.escape(f"not computed: {self._why_none()}"))
                continue
            reasons = [f"{k}: {v}" for k, v in skipped.items() if k == key or k.startswith(key + ":")]
            if key in getattr(self, "failed", {}):
                reasons.append(f"drawing failed: {self.failed[key]}")
            if key == "agreement" and "clusters" in skipped:
                reasons.append(f"clusters: {skipped['clusters']}")
            if key == "agreement" and a is not None and a.clusters is not None:
                cl = a.clusters
                reasons += [cl.verdict, *cl.notes]
                if cl.reliable or cl.k_given:
                    reasons.append(f"cluster sizes: {cl.sizes()}")
            if key == "entropy" and a is not None:
                e = a.choices.to_dict()
                if e["mean_bits"] is not None:
                    reasons.append(f"{html.unescape(a.table.report.source)}: mean {e['mean_bits']:.3f} bits, "
                                   f"median {e['median_bits']:.3f} over n = {e['stimuli_included']} stimuli; "
                                   f"{e['stimuli_below_min_responses']} stimuli below {e['min_responses']} responses")
            label.setText("<br>".join(html.escape(r) for r in reasons))

    def _model_chosen(self) -> None:
        self.model_human.set_analysis(self.session.analysis, self.model.currentData())

    def set_k(self, k: int) -> Job | None:
        a = self.session.analysis
        if a is None:
            return None
        if self.cluster_job is not None and self.cluster_job.is_running():
            self.cluster_job.disconnect_all()
            self.cluster_job.cancel()
        self.session.analysis_options["k"] = k or None
        job = Job(recluster, a, k or None, name="cluster", parent=self)
        job.returned.connect(self.session.set_analysis)
        job.errored.connect(self._cluster_failed)
        self.cluster_job = job.start()
        return job

    def _cluster_failed(self, exc) -> None:
        self.agreement.not_computed("Participant agreement", str(exc))
        show_error(self, "Clustering", exc)

    # ---- stimuli behind a plot element

    def _item(self, key: str, info: str = "") -> StimulusItem:
        a = self.session.analysis
        per = a.choices.per_stimulus
        counts = None
        lines = []
        if key in per.index:
            row = per.loc[key]
            counts = row[[f"count_{c}" for c in a.table.classes]].to_numpy(dtype=float)
            lines.append(f"entropy {row['entropy_bits']:.2f} bits")
        if a.outcomes is not None and key in a.outcomes.per_stimulus.index:
            o = a.outcomes.per_stimulus.loc[key]
            names = a.table.classes
            lines.append(f"target pair {names[int(o['class_a'])]}-{names[int(o['class_b'])]}: p_a {o['p_a']:.2f}, p_b {o['p_b']:.2f} → "
                         f"<b>{o['outcome']}</b>")
        if a.rt is not None and key in a.rt.per_stimulus.index:
            lines.append(f"median RT {a.rt.per_stimulus.loc[key, 'median_rt_ms']:.0f} ms")
        for name, res in a.model_human.items():
            if key in res.scatter.index:
                lines.append(f"{name} entropy {res.scatter.loc[key, 'model_entropy_bits']:.2f} bits")
        if info:
            lines.append(info)
        return StimulusItem(key, self.session.image_path_of(key), counts, "<br>".join(lines))

    def _browser(self) -> StimulusBrowser:
        if self.browser is None:
            self.browser = StimulusBrowser(self)
        return self.browser

    def show_stimuli(self, title: str, keys: list[str]) -> None:
        a = self.session.analysis
        if a is None:
            return
        items = [self._item(k) for k in keys]
        self._browser().show_stimuli(title, items, a.table.classes)
        self.message.emit(f"{title}: {len(items)} stimuli")

    def show_participant_pair(self, p1: str, p2: str) -> None:
        a = self.session.analysis
        if a is None:
            return
        t = a.exclusions.trials.drop_duplicates(["participant", "stimulus"])
        r1 = t[t["participant"].astype(str) == p1].set_index("stimulus")["response"]
        r2 = t[t["participant"].astype(str) == p2].set_index("stimulus")["response"]
        both = r1.index.intersection(r2.index)
        classes = a.table.classes
        items = [self._item(str(k), f"{html.escape(p1)} answered {classes[int(r1[k])]}, "
                                    f"{html.escape(p2)} answered {classes[int(r2[k])]}") for k in both]
        agree = float(np.mean(r1[both].to_numpy() == r2[both].to_numpy())) if len(both) else float("nan")
        title = f"{p1} and {p2}: {len(both)} stimuli seen by both, agreement {agree:.0%}"
        self._browser().show_stimuli(title, items, classes)
        self.message.emit(title)

    def shutdown(self) -> None:
        if self.browser is not None:
            self.browser.close()
