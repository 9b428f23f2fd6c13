"""Manipulate: stimuli meant to split two particular participants, watched live in Explore.

Participant 1's IndivNet guides toward class a and participant 2's toward b (controversial guidance,
BAM §5); the run goes to the Explore panel (its sampler settings, filters and live previews), and the
stimuli added to the library from that run carry the tags of
:func:`perceptlab.align.manipulate.tags_for` (``p1:``, ``p2:``, ``arm:indiv``, ``run:``), as
``perceptlab manipulate`` writes them. Once the two people have answered them (their trials loaded in
the Data tab), Score shows :func:`perceptlab.align.manipulate.score_manipulation`.
"""

from __future__ import annotations

import html
import secrets

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from perceptlab._qt.align.runner import individual_models, run_seed, scores_table, stimulus_ids
from perceptlab._qt.messages import show_error
from perceptlab._qt.widgets.combos import classifier_groups, refill_combo
from perceptlab._qt.widgets.pair_matrix import PairMatrix
from perceptlab._qt.widgets.pandas_model import PandasModel
from perceptlab.align.manipulate import manipulation_stimuli, resolve_individual, score_manipulation, tags_for
from perceptlab.data.library_records import clean_tags
from perceptlab.errors import PerceptLabError

ARM = "indiv"
NO_MODELS = ("No participant has an IndivNet yet: fine-tune at level <b>individual</b> or <b>both</b> in the "
             "Fine-tune tab (at least two participants).")


class ManipulateView(QWidget):
    message = Signal(str)
    showExplore = Signal()

    def __init__(self, session, explore=None, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.explore = explore
        self.models: dict[str, str] = {}
        self.scores: dict | None = None
        self.last_run: str | None = None

        intro = QLabel(
            "Make stimuli on which <b>participant 1</b> should answer <b>a</b> and <b>participant 2</b> should "
            "answer <b>b</b>: controversial guidance with participant 1's IndivNet toward a and participant 2's "
            "toward b. The run goes to <b>Explore</b>, where you watch it and add the good ones to the library; "
            "they are tagged <tt>p1:…</tt>, <tt>p2:…</tt>, <tt>arm:indiv</tt> and <tt>run:…</tt>. Sampler settings "
            "(preset, steps, γ) and filters are those of the Explore form.")
        intro.setWordWrap(True)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.p1 = QComboBox()
        self.p2 = QComboBox()
        self.model1 = QLabel()
        self.model2 = QLabel()
        for lab in (self.model1, self.model2):
            lab.setStyleSheet("color: #555")
        who = QGroupBox("Participants")
        wf = QFormLayout(who)
        wf.addRow("Participant 1 (→ a)", self.p1)
        wf.addRow("", self.model1)
        wf.addRow("Participant 2 (→ b)", self.p2)
        wf.addRow("", self.model2)

        self.matrix = PairMatrix(symmetric=False)
        self.pairs_label = QLabel()
        pairs_box = QGroupBox("Target pairs (rows a: participant 1, columns b: participant 2)")
        pb = QVBoxLayout(pairs_box)
        pb.addWidget(self.matrix, 0, Qt.AlignmentFlag.AlignHCenter)
        pb.addWidget(self.pairs_label)

        self.per_pair = QSpinBox()
        self.per_pair.setRange(1, 10_000)
        self.per_pair.setValue(8)
        self.run_tag = QLineEdit()
        self.run_tag.setPlaceholderText("random")
        self.run_tag.setToolTip("stored as the tag run:<tag>; it also fixes the sampler seed")
        new_tag = QPushButton("New")
        new_tag.setToolTip("a fresh random run tag")
        new_tag.clicked.connect(lambda: self.run_tag.setText(secrets.token_hex(3)))
        tag_row = QHBoxLayout()
        tag_row.addWidget(self.run_tag, 1)
        tag_row.addWidget(new_tag)
        run_box = QGroupBox("Run")
        rf = QFormLayout(run_box)
        rf.addRow("Images per pair", self.per_pair)
        rf.addRow("Run tag", tag_row)
        self.watch_button = QPushButton("Watch in Explore")
        self.watch_button.setObjectName("manipulate_watch")
        self.watch_button.setToolTip("fill the Explore form with this manipulation and start it there")
        rf.addRow(self.watch_button)

        self.score_button = QPushButton("Score")
        self.score_button.setToolTip("score the two participants' responses (loaded trials) to their "
                                     "manipulation stimuli in the open library")
        self.this_run_only = QCheckBox("only the run tag above")
        self.scores_model = PandasModel()
        self.scores_view = QTableView()
        self.scores_view.setModel(self.scores_model)
        self.scores_view.verticalHeader().setVisible(False)
        self.scores_view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.scores_view.horizontalHeader().setStretchLastSection(True)
        self.scores_label = QLabel("Success: participant 1 chose a and participant 2 chose b; directional ratio: "
                                   "the share of splits across the pair in the intended direction.")
        self.scores_label.setWordWrap(True)
        self.scores_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        score_box = QGroupBox("Score (once both have answered)")
        sb = QVBoxLayout(score_box)
        srow = QHBoxLayout()
        srow.addWidget(self.score_button)
        srow.addWidget(self.this_run_only)
        srow.addStretch(1)
        sb.addLayout(srow)
        sb.addWidget(self.scores_label)
        sb.addWidget(self.scores_view, 1)

        left = QVBoxLayout()
        left.addWidget(who)
        left.addWidget(run_box)
        left.addStretch(1)
        cols = QHBoxLayout()
        cols.addLayout(left, 1)
        cols.addWidget(pairs_box, 0, Qt.AlignmentFlag.AlignTop)
        cols.addWidget(score_box, 2)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.status)
        layout.addLayout(cols, 1)

        self.p1.currentIndexChanged.connect(self._people_changed)
        self.p2.currentIndexChanged.connect(self._people_changed)
        self.matrix.changed.connect(self._pairs_changed)
        self.watch_button.clicked.connect(self.watch)
        self.score_button.clicked.connect(self.score)
        session.modelsChanged.connect(self.refresh)
        session.trialsChanged.connect(self._update_buttons)
        session.libraryChanged.connect(self._update_buttons)
        if explore is not None:
            explore.runningChanged.connect(lambda *_: self._update_buttons())
        self.matrix.set_pairs([(3, 5)])
        self.refresh()

    # ---- state

    def refresh(self) -> None:
        """Refill the participant pickers from the IndivNets in the registry."""
        self.models = individual_models(self.session.registry)
        people = list(self.models)
        for combo, fallback in ((self.p1, 0), (self.p2, 1)):
            refill_combo(combo, [(p, p) for p in people], default=fallback)
        if len(people) < 2:
            self.status.setText(NO_MODELS if not people else
                                f"Only {html.escape(people[0])} has an IndivNet: fine-tune one more participant at "
                                "level <b>individual</b> in the Fine-tune tab.")
        else:
            self.status.setText(f"{len(people)} participants have an IndivNet.")
        self._people_changed()

    def set_participants(self, p1: str, p2: str) -> None:
        self.p1.setCurrentIndex(self.p1.findData(p1))
        self.p2.setCurrentIndex(self.p2.findData(p2))

    def _people_changed(self) -> None:
        for combo, lab in ((self.p1, self.model1), (self.p2, self.model2)):
            p = combo.currentData()
            lab.setText(f"IndivNet: {self.models[p]}" if p in self.models else "")
        self._update_buttons()

    def _pairs_changed(self) -> None:
        pairs = self.matrix.pairs()
        self.pairs_label.setText(", ".join(f"{a}-{b}" for a, b in pairs) if pairs else "no pair chosen")
        self._update_buttons()

    def _update_buttons(self) -> None:
        p1, p2 = self.p1.currentData(), self.p2.currentData()
        two = p1 is not None and p2 is not None and p1 != p2
        busy = self.explore is not None and self.explore.is_running()
        self.watch_button.setEnabled(two and bool(self.matrix.pairs()) and self.explore is not None and not busy)
        self.score_button.setEnabled(two and self.session.library is not None and self.session.trials is not None)

    # ---- watch in Explore

    def watch(self) -> bool:
        """Fill the Explore form (controversial, IndivNets, pairs, seed of the run tag) and start it there."""
        ex = self.explore
        p1, p2 = self.p1.currentData(), self.p2.currentData()
        try:
            if ex is None:
                raise PerceptLabError("no Explore panel to run in", "open the main window")
            if p1 is None or p2 is None or p1 == p2:
                raise PerceptLabError("choose two different participants", "pick participant 1 and participant 2")
            if ex.is_running():
                raise PerceptLabError("Explore is already generating", "stop that run first (Run › Stop)")
            pairs = self.matrix.pairs()
            if not pairs:
                raise PerceptLabError("no target pair is chosen", "click one or more cells of the pair matrix")
            reg = self.session.registry
            model1, model2 = resolve_individual(p1, reg), resolve_individual(p2, reg)
            run = self.run_tag.text().strip() or secrets.token_hex(3)
            tags = clean_tags(tags_for(p1, p2, ARM, run))
        except PerceptLabError as exc:
            show_error(self, "Cannot start the manipulation", exc)
            return False
        form = ex.form
        form.set_classifiers(classifier_groups(reg))
        settings = form.settings().replace(mode="controversial", classifier=model1, classifier2=model2,
                                           pairs=list(pairs), seed=run_seed(run))
        ex.set_reference(None)  # manipulation stimuli are not tied to a reference image
        form.set_settings(settings, self.per_pair.value())
        note = (f"Manipulation run <b>{html.escape(run)}</b>: participant {html.escape(p1)} → a ({html.escape(model1)}), "
                f"participant {html.escape(p2)} → b ({html.escape(model2)}). Stimuli you add to the library are tagged "
                + " ".join(f"<tt>{html.escape(t)}</tt>" for t in tags) + ".")
        if not ex.generate(tags=tags, note=note):
            return False
        self.run_tag.setText(run)
        self.last_run = run
        self.message.emit(f"Manipulation run {run} between {p1} and {p2} started in Explore.")
        self.showExplore.emit()
        return True

    # ---- scoring

    def score(self) -> dict | None:
        """Score the two participants' responses (loaded trials) to their manipulation stimuli."""
        s = self.session
        p1, p2 = self.p1.currentData(), self.p2.currentData()
        run = self.run_tag.text().strip() if self.this_run_only.isChecked() else None
        try:
            if s.library is None or s.trials is None:
                raise PerceptLabError("scoring needs the library with the stimuli and the trials with the responses",
                                      "open the library (File menu) and load the trial file (Data tab)")
            stimuli = manipulation_stimuli(s.library, p1, p2, run or None)
            if stimuli.empty:
                raise PerceptLabError(
                    f"no manipulation stimuli for p1:{p1} / p2:{p2} in {s.library.path.name}"
                    + (f" with run:{run}" if run else ""),
                    "run one with Watch in Explore and add its stimuli to the library")
            df = s.trials.df.copy()
            df["stimulus"] = stimulus_ids(df["stimulus"])
            known = set(df["participant"].astype(str))
            for pid in (p1, p2):
                if pid not in known:
                    raise PerceptLabError(f"participant {pid!r} is not in the loaded trials",
                                          "load the trial file with the two participants' responses (Data tab)")
            scores = score_manipulation(stimuli, df, p1, p2, len(s.trials.classes))
        except PerceptLabError as exc:
            show_error(self, "Cannot score", exc)
            return None
        self.scores = scores
        self.scores_model.set_frame(scores_table(scores))
        self.scores_view.resizeColumnsToContents()
        text = (f"{scores['stimuli']} manipulation stimuli of {html.escape(p1)} and {html.escape(p2)}; "
                f"{scores['without_both_responses']} without responses from both.")
        comp = scores.get("comparison")
        if comp:
            text += f" IndivNet − GroupNet success: {comp['success_rate_gain']:+.3f}."
        self.scores_label.setText(text)
        self.message.emit(f"Scored {scores['stimuli'] - scores['without_both_responses']} manipulation stimuli.")
        return scores
