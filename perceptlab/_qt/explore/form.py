"""The Explore settings: sampler settings (``SamplerSettings``) and filter thresholds (``FilterSettings``).

The widgets only read and write the engine's dataclasses; presets come from ``sampler.PRESETS``.
"""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QStyle,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)
from superqt import QLabeledDoubleSlider, QLabeledSlider

from perceptlab._qt.explore.tips import sampler_tips
from perceptlab._qt.widgets.combos import make_filterable, refill_grouped
from perceptlab._qt.widgets.pair_matrix import PairMatrix
from perceptlab.engine.filters import FilterSettings
from perceptlab.engine.generate import DEFAULT_MAX_ROUNDS
from perceptlab.engine.guidance.pixel import DEFAULT_ALPHA
from perceptlab.engine.sampler import (
    DEFAULT_PRESET,
    LOOP_FIELDS,
    PRESETS,
    SamplerSettings,
    preset_filter,
    preset_values,
)

PRESET_LABELS = {
    "paper": "paper (ICML 2025)", "fast": "interactive (fast)", "draft": "draft",
    "reference": "reference code (public BAM loop)",
}  # fmt: skip
CONDITIONS = [("none (unconditional)", None), ("halfway between a and b", "pair"), ("class a", "a"), ("class b", "b"),
              ("a or b, by the image's seed", "either")] + [
    (f"digit {d}", str(d)) for d in range(10)
]
_LOOP_DEFAULTS = {f: SamplerSettings.__dataclass_fields__[f].default for f in LOOP_FIELDS}
_LOOP_NAMES = {"step_size": "step size", "renoise": "re-noising", "clamp": "clamp", "final_rounds": "last-step rounds"}
SEED_RANDOM = -1


class _PageClicks(QObject):
    """A click on a slider's track moves it one page towards the click, as QSlider does, instead of
    superqt's jump to the click position (two clicks took γ from 0.10 to 1.00)."""

    def eventFilter(self, slider, event) -> bool:  # noqa: N802
        if event.type() != QEvent.Type.MouseButtonPress or event.button() != Qt.MouseButton.LeftButton:
            return False
        opt = slider._styleOption  # noqa: SLF001 - superqt's style option of the slider
        handle = slider.style().subControlRect(QStyle.ComplexControl.CC_Slider, opt,
                                               QStyle.SubControl.SC_SliderHandle, slider)
        pos = event.position().toPoint()
        if handle.contains(pos):
            return False  # drag the handle as usual
        step = -slider.pageStep() if pos.x() < handle.center().x() else slider.pageStep()
        slider.setValue(min(slider.maximum(), max(slider.minimum(), slider.value() + step)))
        return True


_PAGE_CLICKS = None


def _page_clicks(widget) -> None:
    global _PAGE_CLICKS
    if _PAGE_CLICKS is None:
        _PAGE_CLICKS = _PageClicks()
    widget._slider.installEventFilter(_PAGE_CLICKS)  # noqa: SLF001


def _dslider(lo: float, hi: float, value: float, decimals: int = 2, page: float | None = None) -> QLabeledDoubleSlider:
    """A float slider whose value is always what its label shows: a drag lands on a multiple of the
    step (0.01 for two decimals) instead of a float such as 0.995215 shown as "1.00"; a click on the
    track moves by ``page`` (default a tenth of the range)."""
    s = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
    s.setRange(lo, hi)
    s.setDecimals(decimals)
    s.setSingleStep(10 ** -decimals)
    s.setPageStep(page if page is not None else (hi - lo) / 10)
    s.setValue(value)

    def snap(v: float) -> None:
        r = round(v, decimals)
        if abs(r - v) > 1e-12:
            s.setValue(r)

    s.valueChanged.connect(snap)
    _page_clicks(s)
    return s


def _islider(lo: int, hi: int, value: int) -> QLabeledSlider:
    s = QLabeledSlider(Qt.Orientation.Horizontal)
    s.setRange(lo, hi)
    s.setValue(value)
    return s


class SamplerForm(QWidget):
    """Pairs, mode, classifiers, preset, gamma, steps, rounds, judge weight, seed, batch size."""

    changed = Signal()
    presetApplied = Signal(str, str)  # preset name, mode: the filter form takes the preset's filter values

    def __init__(self, classifiers: list[str], has_judge: bool, parent: QWidget | None = None):
        super().__init__(parent)
        self._updating = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)

        pairs_box = QGroupBox("Target pairs (rows a, columns b)")
        pl = QVBoxLayout(pairs_box)
        self.matrix = PairMatrix(symmetric=True)
        pl.addWidget(self.matrix, 0, Qt.AlignmentFlag.AlignHCenter)
        row = QHBoxLayout()
        self.pairs_label = QLabel()
        clear = QPushButton("Clear")
        clear.clicked.connect(self.matrix.clear)
        row.addWidget(self.pairs_label, 1)
        row.addWidget(clear)
        pl.addLayout(row)
        self.matrix.changed.connect(self._pairs_changed)
        layout.addWidget(pairs_box)
        # the settings below the pair matrix as tabs: the whole form fits a 1400x900 window unscrolled
        self.sections = QTabWidget()
        self.sections.setDocumentMode(True)
        layout.addWidget(self.sections)

        box = QWidget()
        form = QFormLayout(box)
        self.mode = QComboBox()
        self.mode.addItem("uncertainty", "uncertainty")
        self.mode.addItem("controversial", "controversial")
        self.mode.setItemData(0, "one classifier, 50/50 between a and b", Qt.ItemDataRole.ToolTipRole)
        self.mode.setItemData(1, "classifier 1 says a, classifier 2 says b", Qt.ItemDataRole.ToolTipRole)
        form.addRow("Mode", self.mode)
        self.classifier = QComboBox()
        self.classifier2 = QComboBox()
        for combo in (self.classifier, self.classifier2):
            make_filterable(combo)
            combo.setMinimumContentsLength(14)
        refill_grouped(self.classifier, [("classifiers", list(classifiers))], preferred="vgg")
        refill_grouped(self.classifier2, [("classifiers", list(classifiers))], default=1)
        form.addRow("Classifier 1", self.classifier)
        form.addRow("Classifier 2", self.classifier2)
        self.preset = QComboBox()
        for name in PRESETS:
            self.preset.addItem(PRESET_LABELS.get(name, name), name)
        self.preset.addItem("custom", None)
        form.addRow("Preset", self.preset)
        self.gamma = _dslider(0.0, 2.0, 0.1, page=0.05)
        self.gamma.setToolTip("guidance strength gamma (paper 0.1)")
        form.addRow("γ strength", self.gamma)
        self.steps = _islider(1, 200, 50)
        self.steps.setToolTip("inference steps (paper 50)")
        form.addRow("Steps", self.steps)
        self.resample = _islider(1, 10, 5)
        self.resample.setToolTip("resampling rounds per step (paper 5)")
        form.addRow("Resampling R", self.resample)
        self.full_grad = QCheckBox("through the denoiser (paper; slower)")
        form.addRow("Gradient", self.full_grad)
        self.spacing = QComboBox()
        self.spacing.addItem("even (paper)", "trailing")
        self.spacing.addItem("dense near the end", "quadratic")
        self.spacing.addItem("leading, 980 … 0 (reference code)", "leading")
        self.spacing.setToolTip(
            "where the inference steps fall: evenly from t = 999 (paper), or packed near t = 0 where the "
            "boundary is decided (fast presets)"
        )
        form.addRow("Step spacing", self.spacing)
        self.judge_weight = _dslider(0.0, 5.0, 1.0 if has_judge else 0.0)
        self.judge_weight.setToolTip("weight of the digit-judge penalty (1 = paper, 0 = off)")
        self.judge_weight.setEnabled(has_judge)
        form.addRow("Judge weight", self.judge_weight)
        self.condition = QComboBox()
        for label, value in CONDITIONS:
            self.condition.addItem(label, value)
        form.addRow("Prior condition", self.condition)
        self.ensemble = QLineEdit()
        self.ensemble.setPlaceholderText("none")
        self.ensemble.setToolTip(
            "ensemble guidance (uncertainty mode): more classifiers, comma-separated, that guide together with "
            "classifier 1 - the loss is their mean, so the image lands on a boundary they share, which transfers "
            "better to other observers. The filter still judges classifier 1. The fast preset co-guides with cornet."
        )
        form.addRow("Co-guides", self.ensemble)
        self._loop = dict(_LOOP_DEFAULTS)
        self.loop_label = QLabel()
        self.loop_label.setWordWrap(True)
        self.loop_label.setToolTip(
            "the reference preset re-does the public BAM code's loop: gradient normalised with the DDPM posterior "
            "std, re-noising with beta as the noise scale, no gradient through clipped pixels, all R rounds at the "
            "last step; every other preset uses this project's loop"
        )
        form.addRow("Loop", self.loop_label)
        self._show_loop()
        self.sections.addTab(box, "Guidance")

        run = QWidget()
        rf = QFormLayout(run)
        self.batch_form = rf
        self.per_pair = QSpinBox()
        self.per_pair.setRange(1, 10_000)
        self.per_pair.setValue(8)
        rf.addRow("Images per pair", self.per_pair)
        self.batch_size = QSpinBox()
        self.batch_size.setRange(1, 1024)
        self.batch_size.setValue(16)
        rf.addRow("Batch size", self.batch_size)
        self.seed = QSpinBox()
        self.seed.setRange(SEED_RANDOM, 2**31 - 1)
        self.seed.setSpecialValueText("random")
        self.seed.setValue(SEED_RANDOM)
        rf.addRow("Seed", self.seed)
        self.alpha = _dslider(0.0, 200.0, DEFAULT_ALPHA, 1)
        self.alpha.setToolTip("pixel-constraint strength alpha (paper 50), used with a reference image")
        rf.addRow("Reference α", self.alpha)
        again = QHBoxLayout()
        self.regenerate = QCheckBox("sample again, up to")
        self.regenerate.setToolTip("sample the rejected images again (new seeds) until each passes the filter "
                                   "or the rounds are spent (the reference implementation gives up after 10)")
        self.max_rounds = QSpinBox()
        self.max_rounds.setRange(2, 100)
        self.max_rounds.setValue(DEFAULT_MAX_ROUNDS)
        self.max_rounds.setSuffix(" rounds")
        self.max_rounds.setEnabled(False)
        self.regenerate.toggled.connect(self.max_rounds.setEnabled)
        again.addWidget(self.regenerate)
        again.addWidget(self.max_rounds)
        rf.addRow("Rejects", again)
        self.sections.addTab(run, "Batch")

        self.mode.currentIndexChanged.connect(self._mode_changed)
        self.preset.currentIndexChanged.connect(self._preset_chosen)
        for w in (self.gamma, self.steps, self.resample):
            w.valueChanged.connect(self._value_edited)
        self.full_grad.toggled.connect(self._value_edited)
        self.spacing.currentIndexChanged.connect(self._value_edited)
        self.condition.currentIndexChanged.connect(self._value_edited)
        self.ensemble.editingFinished.connect(self._value_edited)
        for w in (self.classifier, self.classifier2):
            w.currentIndexChanged.connect(self.changed)
        for w in (self.per_pair, self.batch_size, self.seed):
            w.valueChanged.connect(self.changed)
        self.judge_weight.valueChanged.connect(self.changed)
        self._set_tooltips()
        self.apply_preset(DEFAULT_PRESET)
        self._mode_changed()
        self._pairs_changed()

    def _set_tooltips(self) -> None:
        """Each setting's tooltip names the paper's term and what turning it up or down does."""
        for widget, tip in sampler_tips(self).items():
            widget.setToolTip(tip)

    def set_classifiers(self, names) -> None:
        """Refill both classifier pickers (models were added, renamed or deleted), keeping the current
        choices where they still exist. ``names``: a list, or (title, names) groups (built-in, GroupNets,
        IndivNets: :func:`~perceptlab._qt.widgets.combos.classifier_groups`)."""
        names = list(names)
        groups = names if names and isinstance(names[0], tuple) else [("classifiers", names)]
        refill_grouped(self.classifier, groups, preferred="vgg")
        refill_grouped(self.classifier2, groups, default=1)
        self.changed.emit()

    # ---- presets

    def _show_loop(self) -> None:
        ref = preset_values("reference")
        borrowed = [f for f, d in _LOOP_DEFAULTS.items() if self._loop[f] != d]
        if not borrowed:
            text = "this project's"
        elif all(self._loop[f] == ref.get(f, d) for f, d in _LOOP_DEFAULTS.items()):
            text = "the public reference code's"
        else:
            text = "this project's, with the reference code's " + ", ".join(_LOOP_NAMES[f] for f in borrowed)
        self.loop_label.setText(text)

    def _ensemble(self) -> list[str]:
        if self.mode.currentData() != "uncertainty":
            return []
        return [n.strip() for n in self.ensemble.text().split(",") if n.strip()]

    def apply_preset(self, name: str) -> None:
        values = preset_values(name, self.mode.currentData())
        self._updating = True
        try:
            self.condition.setCurrentIndex(max(0, self.condition.findData(values.get("condition"))))
            self.ensemble.setText(", ".join(values.get("ensemble", [])))
            self._loop = {f: values.get(f, d) for f, d in _LOOP_DEFAULTS.items()}
            self._show_loop()
            if self.judge_weight.isEnabled():
                self.judge_weight.setValue(values.get("judge_weight", 1.0))
            self.gamma.setValue(values["gamma"])
            self.steps.setValue(values["steps"])
            self.resample.setValue(values["resample"])
            self.full_grad.setChecked(values["grad"] == "full")
            self.spacing.setCurrentIndex(self.spacing.findData(values.get("spacing", "trailing")))
            self.preset.setCurrentIndex(self.preset.findData(name))
        finally:
            self._updating = False
        self.presetApplied.emit(name, self.mode.currentData())
        self.changed.emit()

    def _preset_chosen(self) -> None:
        name = self.preset.currentData()
        if name is not None and not self._updating:
            self.apply_preset(name)

    def _matching_preset(self) -> str | None:
        for name in PRESETS:
            v = preset_values(name, self.mode.currentData())
            if (abs(self.gamma.value() - v["gamma"]) < 1e-9 and self.steps.value() == v["steps"]
                    and self.resample.value() == v["resample"] and (v["grad"] == "full") == self.full_grad.isChecked()
                    and v.get("spacing", "trailing") == self.spacing.currentData()
                    and v.get("condition") == self.condition.currentData()
                    and v.get("ensemble", []) == self._ensemble()
                    and all(v.get(f, d) == self._loop[f] for f, d in _LOOP_DEFAULTS.items())):
                return name
        return None

    def _value_edited(self) -> None:
        if self._updating:
            return
        self._updating = True
        try:
            self.preset.setCurrentIndex(self.preset.findData(self._matching_preset()))
        finally:
            self._updating = False
        self.changed.emit()

    # ---- mode and pairs

    def _mode_changed(self) -> None:
        controversial = self.mode.currentData() == "controversial"
        self.classifier2.setEnabled(controversial)
        self.ensemble.setEnabled(not controversial)
        preset = self.preset.currentData()
        if preset is not None and not self._updating:
            self.apply_preset(preset)  # a preset may differ by mode (the fast preset co-guides in uncertainty only)
        self.matrix.set_symmetric(not controversial)
        self.changed.emit()

    def _pairs_changed(self) -> None:
        pairs = self.matrix.pairs()
        shown = ", ".join(f"{a}-{b}" for a, b in pairs[:8]) + (" …" if len(pairs) > 8 else "")
        self.pairs_label.setText(f"{len(pairs)} pair(s): {shown}" if pairs else "no pair chosen")
        self.changed.emit()

    # ---- dataclass round trip

    def rounds(self) -> int:
        """Sampling rounds per asked image: 1, or the rounds of 'sample rejects again'."""
        return self.max_rounds.value() if self.regenerate.isChecked() else 1

    def set_rounds(self, rounds: int) -> None:
        self.regenerate.setChecked(rounds > 1)
        if rounds > 1:
            self.max_rounds.setValue(rounds)

    def settings(self) -> SamplerSettings:
        """The sampler settings shown (``seed=None`` when random)."""
        seed = self.seed.value()
        return SamplerSettings(
            mode=self.mode.currentData(),
            pairs=self.matrix.pairs(),
            classifier=self.classifier.currentData() or "",
            classifier2=self.classifier2.currentData() if self.mode.currentData() == "controversial" else None,
            gamma=round(self.gamma.value(), 6),
            steps=int(self.steps.value()),
            resample=int(self.resample.value()),
            judge_weight=round(self.judge_weight.value(), 6) if self.judge_weight.isEnabled() else 0.0,
            grad="full" if self.full_grad.isChecked() else "x0",
            spacing=self.spacing.currentData(),
            batch_size=self.batch_size.value(),
            seed=None if seed == SEED_RANDOM else seed,
            alpha=round(self.alpha.value(), 6),
            condition=self.condition.currentData(),
            ensemble=self._ensemble(),
            preset=self._matching_preset(),
            **self._loop,
        )

    def set_settings(self, s: SamplerSettings, per_pair: int | None = None) -> None:
        self._updating = True
        try:
            self.mode.setCurrentIndex(max(0, self.mode.findData(s.mode)))
            self.matrix.set_symmetric(s.mode != "controversial")
            self.matrix.set_pairs(s.pairs)
            for combo, name in ((self.classifier, s.classifier), (self.classifier2, s.classifier2)):
                i = combo.findData(name)
                if i >= 0:
                    combo.setCurrentIndex(i)
            self.gamma.setValue(s.gamma)
            self.steps.setValue(s.steps)
            self.resample.setValue(s.resample)
            self.full_grad.setChecked(s.grad == "full")
            self.spacing.setCurrentIndex(max(0, self.spacing.findData(s.spacing)))
            if self.judge_weight.isEnabled():
                self.judge_weight.setValue(s.judge_weight)
            self.batch_size.setValue(s.batch_size)
            self.seed.setValue(SEED_RANDOM if s.seed is None else int(s.seed))
            self.alpha.setValue(s.alpha)
            self.condition.setCurrentIndex(max(0, self.condition.findData(s.condition)))
            self.ensemble.setText(", ".join(s.ensemble))
            self._loop = {f: getattr(s, f) for f in LOOP_FIELDS}
            self._show_loop()
            if per_pair is not None:
                self.per_pair.setValue(per_pair)
            self.preset.setCurrentIndex(self.preset.findData(self._matching_preset()))
        finally:
            self._updating = False
        self._mode_changed()
        self._pairs_changed()


class FilterForm(QGroupBox):
    """Acceptance thresholds; every edit re-judges the current batch (no re-sampling)."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Edits re-judge the batch without sampling again", parent)
        form = QFormLayout(self)
        kind_row = QHBoxLayout()
        self.kind = QComboBox()
        self.kind.addItem("paper thresholds", "paper")
        self.kind.addItem("percentile over MNIST", "percentile")
        self.kind.setToolTip("paper: the fixed thresholds below (DESIGN §2). percentile (varEmotion): the pair's "
                             "probabilities must exceed their q-th percentile over the MNIST images in use")
        self.percentile = QDoubleSpinBox()
        self.percentile.setRange(0.0, 100.0)
        self.percentile.setDecimals(1)
        self.percentile.setSingleStep(5.0)
        self.percentile.setPrefix("q = ")
        self.percentile.setToolTip("percentile filter: q (varEmotion uses 75)")
        kind_row.addWidget(self.kind, 1)
        kind_row.addWidget(self.percentile)
        form.addRow("Filter", kind_row)
        self.min_prob = QDoubleSpinBox()
        self.min_prob.setRange(0.0, 1.0)
        self.min_prob.setSingleStep(0.05)
        self.min_prob.setDecimals(2)
        self.min_prob.setToolTip("uncertainty: p(a) and p(b) must both exceed this (paper 0.4)")
        form.addRow("Min p(a), p(b)", self.min_prob)
        self.top_two = QCheckBox("a and b are the two most likely classes")
        form.addRow("", self.top_two)
        self.min_conf = QDoubleSpinBox()
        self.min_conf.setRange(0.0, 1.0)
        self.min_conf.setSingleStep(0.05)
        self.min_conf.setDecimals(2)
        self.min_conf.setToolTip("controversial: each classifier's top probability must exceed this (paper 0.9)")
        form.addRow("Min confidence", self.min_conf)
        judge_row = QHBoxLayout()
        self.use_judge = QCheckBox("judge score above")
        self.min_judge = QDoubleSpinBox()
        self.min_judge.setRange(0.0, 1.0)
        self.min_judge.setSingleStep(0.05)
        self.min_judge.setDecimals(2)
        self.min_judge.setToolTip("digit judge (surrogate) score s must exceed this (paper 0.5): drops images "
                                  "that no longer look like a digit")
        self.use_judge.setToolTip(self.min_judge.toolTip())
        self.top_two.setToolTip("uncertainty: a and b must be the guiding classifier's two most probable classes")
        judge_row.addWidget(self.use_judge)
        judge_row.addWidget(self.min_judge)
        form.addRow("Digit judge", judge_row)
        self.agree = QSpinBox()
        self.agree.setRange(0, 20)
        self.agree.setSpecialValueText("off")
        self.agree.setSuffix(" other zoo classifiers")
        self.agree.setToolTip("zoo agreement: this many zoo classifiers besides the guides must also put a and b in "
                              "their top two (the independent observers never count). The fast preset asks 2 in "
                              "uncertainty mode and 3 in controversial mode; off in the paper")
        form.addRow("Zoo agreement", self.agree)
        self.strokes = QCheckBox("no detached specks, knots or blots")
        self.strokes.setToolTip("clean-stroke check, measured on the image against real digits (it rejects about 2% "
                                "of MNIST digits). On in the fast preset; off in the paper")
        form.addRow("Clean strokes", self.strokes)
        self.summary = QLabel()
        form.addRow(self.summary)
        self._agree_with: list[str] = []
        self.set_filters(FilterSettings())
        for w in (self.min_prob, self.min_conf, self.min_judge, self.percentile, self.agree):
            w.valueChanged.connect(self.changed)
        for w in (self.top_two, self.use_judge, self.strokes):
            w.toggled.connect(self.changed)
        self.kind.currentIndexChanged.connect(self._kind_changed)
        self.kind.currentIndexChanged.connect(self.changed)
        self.use_judge.toggled.connect(self.min_judge.setEnabled)

    def _kind_changed(self) -> None:
        """The paper's thresholds apply to the paper filter only; q to the percentile filter only."""
        paper = self.kind.currentData() == "paper"
        for w in (self.min_prob, self.top_two, self.min_conf):
            w.setEnabled(paper)
        self.percentile.setEnabled(not paper)

    def filters(self) -> FilterSettings:
        """The filter shown; a percentile filter has no thresholds yet (they depend on the classifiers)."""
        return FilterSettings(
            kind=self.kind.currentData(),
            percentile=round(self.percentile.value(), 6),
            min_prob=round(self.min_prob.value(), 6),
            require_top_two=self.top_two.isChecked(),
            min_confidence=round(self.min_conf.value(), 6),
            min_judge=round(self.min_judge.value(), 6) if self.use_judge.isChecked() else None,
            agree=self.agree.value(),
            agree_with=list(self._agree_with),
            strokes=self.strokes.isChecked(),
        )

    def apply_preset(self, name: str, mode: str) -> None:
        """Show a preset's filter values (zoo agreement, stroke check) for ``mode``; thresholds stay."""
        preset = FilterSettings(**preset_filter(name, mode))
        current = self.filters()
        if (current.agree, current.strokes, current.agree_with) != (preset.agree, preset.strokes, preset.agree_with):
            self.set_filters(replace(current, agree=preset.agree, strokes=preset.strokes, agree_with=preset.agree_with))

    def set_filters(self, f: FilterSettings) -> None:
        widgets = (self.min_prob, self.min_conf, self.min_judge, self.top_two, self.use_judge, self.kind,
                   self.percentile, self.agree, self.strokes)
        for w in widgets:
            w.blockSignals(True)
        self.kind.setCurrentIndex(max(0, self.kind.findData(f.kind)))
        self.percentile.setValue(f.percentile)
        self._kind_changed()
        self.min_prob.setValue(f.min_prob)
        self.min_conf.setValue(f.min_confidence)
        self.top_two.setChecked(f.require_top_two)
        self.use_judge.setChecked(f.min_judge is not None)
        self.min_judge.setValue(f.min_judge if f.min_judge is not None else 0.5)
        self.min_judge.setEnabled(f.min_judge is not None)
        self.agree.setValue(f.agree)
        self._agree_with = list(f.agree_with)
        self.strokes.setChecked(f.strokes)
        for w in widgets:
            w.blockSignals(False)
        self.changed.emit()
