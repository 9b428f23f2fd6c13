"""The experiment runner window: instructions, then per trial a fixation cross, the stimulus, a separate
response screen (no answer is taken while the stimulus is on), optional feedback, breaks, the end screen.

Timing against the display: every screen change is a synchronous ``repaint()`` of the page shown (painted
and flushed to the window system before it returns); the onset of a screen is the ``perf_counter`` time
taken right after that repaint, never the time a timer fired. A transition is scheduled with a precise
``QTimer`` a few milliseconds early and then waits out the rest on the clock; it starts painting as long
before its target as that page's repaints usually take (a running estimate, at most 8 ms), and the response
screen is built and rendered off screen while the stimulus is on. The measured durations (stimulus onset to
the response screen's onset, fixation onset to stimulus onset) are stored beside the intended ones for
every trial. With a known refresh rate the intended durations are whole frames. Python's garbage collector
is off from the fixation onset to the response screen (a collection can take tens of milliseconds).

Responses: one button per class with its key (a class named by one character is its own key, e.g. the
digits; otherwise 1..9), ``pick`` = a row of images (keys 1..n), ``slider`` = a slider (arrows) and a
confidence rating 1-5 (keys). Every answer goes through :meth:`ExperimentSession.record`, which has it on
disk before the next screen. Esc pauses (the trial on screen is shown again afterwards; Q quits, nothing
answered is lost). Adaptive designs choose the next stimulus in a worker thread during the fixation.

``auto_respond`` (``perceptlab run-experiment --auto-respond``) answers by itself after a random delay:
a pilot / timing check with no participant.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QImage, QKeyEvent, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSlider,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from perceptlab._qt import gui_gc
from perceptlab._qt.workers import Job
from perceptlab.experiment.design import DesignTrial
from perceptlab.experiment.session import ExperimentSession

BACKGROUND = "#000000"
FOREGROUND = "#e6e6e6"
FEEDBACK_MS = 800
# Timers fire this early; the rest is waited out on the clock. Short: a long spin makes the process look
# CPU-bound to the scheduler, and on a loaded machine it is then preempted more often (measured: 10 ms
# spins left 97% of stimuli within a frame under load, 2-3 ms spins 98.5-100%).
EARLY_MS = 3.0
STYLE = (f"QWidget {{ background: {BACKGROUND}; color: {FOREGROUND}; }}"
         "QPushButton { background: #2b2b2b; border: 1px solid #666; border-radius: 6px; padding: 10px; "
         "font-size: 22px; min-width: 56px; }"
         "QPushButton:hover { background: #3d3d3d; } QPushButton:pressed { background: #555; }"
         "QToolButton { background: #2b2b2b; border: 1px solid #666; border-radius: 6px; padding: 8px; "
         "font-size: 20px; } QToolButton:hover { background: #3d3d3d; }"
         "QLabel { font-size: 18px; } QLabel#prompt { font-size: 28px; } QLabel#screenText { font-size: 26px; }"
         "QSlider::groove:horizontal { height: 8px; background: #444; border-radius: 4px; }"
         "QSlider::handle:horizontal { width: 22px; margin: -8px 0; background: #e6e6e6; border-radius: 11px; }")


def now_ms() -> float:
    return time.perf_counter() * 1000.0


def key_map(classes: list[str]) -> dict[str, str]:
    """Key text -> class: a class named by one character is its own key, else 1..9 in order."""
    if all(len(c) == 1 for c in classes) and len(set(c.lower() for c in classes)) == len(classes):
        return {c.lower(): c for c in classes}
    return {str(i + 1): c for i, c in enumerate(classes[:9])}


def frames(ms: float, refresh_hz: float | None) -> float:
    """``ms`` rounded to whole frames of the display (unchanged when the rate is unknown)."""
    if not refresh_hz or refresh_hz < 20:
        return ms
    frame = 1000.0 / refresh_hz
    return max(1, round(ms / frame)) * frame


class Stage(QWidget):
    """Fixation cross, the stimulus (scaled with square pixels) or nothing, on black."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.content: str = "blank"
        self.pixmap: QPixmap | None = None
        self._cache, self._cache_key = None, None
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)

    def scaled(self) -> QPixmap:
        """The stimulus at its display size (square pixels), cached: the onset repaint only copies it."""
        side = self.image_side()
        key = (self.pixmap.cacheKey(), side)
        if self._cache_key != key:
            self._cache = self.pixmap.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio,
                                             Qt.TransformationMode.FastTransformation)
            self._cache_key = key
        return self._cache

    def image_side(self) -> int:
        return max(56, int(min(self.width(), self.height()) * 0.5) // 28 * 28)

    def paintEvent(self, _event) -> None:  # noqa: N802
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(BACKGROUND))
        c = self.rect().center()
        if self.content == "cross":
            arm = max(10, min(self.width(), self.height()) // 30)
            p.setPen(QPen(QColor(FOREGROUND), max(2, arm // 5)))
            p.drawLine(c.x() - arm, c.y(), c.x() + arm, c.y())
            p.drawLine(c.x(), c.y() - arm, c.x(), c.y() + arm)
        elif self.content == "image" and self.pixmap is not None:
            scaled = self.scaled()
            p.drawPixmap(c.x() - scaled.width() // 2, c.y() - scaled.height() // 2, scaled)
        p.end()


def _button(text: str, slot) -> QPushButton:
    b = QPushButton(text)
    b.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys go to the window, never to a focused button
    b.clicked.connect(slot)
    return b


class RunnerWindow(QWidget):
    """Runs an :class:`ExperimentSession` on screen (see the module docstring)."""

    finishedSession = Signal(object)  # the trial file (Path), when the window closes
    trialRecorded = Signal(dict)

    def __init__(self, session: ExperimentSession, base: Path, *, auto_respond: bool = False,
                 auto_seed: int = 0, parent: QWidget | None = None):
        super().__init__(parent)
        self.session, self.base = session, Path(base)
        self.auto_respond = auto_respond
        self._rng = np.random.default_rng(auto_seed)
        self.state = "instructions"
        self.trial: DesignTrial | None = None
        self._token = 0  # bumps on every pause: stale timers do nothing
        self._times: dict[str, float] = {}
        self._pixmaps: dict[str, QPixmap] = {}
        self._job: Job | None = None
        self._emitted = False
        self._paint_ms: dict[str, float] = {}  # running estimate of each page's repaint time
        self._timer = QTimer(self)  # the one timed transition (fixation -> stimulus -> response screen)
        self._timer.setSingleShot(True)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._tick)
        self.setWindowTitle(f"PerceptLab experiment — {session.design.name} — {session.participant}")
        self.setStyleSheet(STYLE)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.stack = QStackedWidget(self)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.stack)
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.text.setObjectName("screenText")
        self.text.setContentsMargins(80, 40, 80, 40)
        self.stage = Stage()
        self.response = QWidget()
        self.response_layout = QVBoxLayout(self.response)
        for w in (self.text, self.stage, self.response):
            self.stack.addWidget(w)
        self.resize(1000, 700)
        screen = self.screen()
        rate = screen.refreshRate() if screen is not None else None
        self.refresh_hz = rate
        self.fixation_ms = frames(session.design.fixation_ms, rate)
        self.stimulus_ms = frames(session.design.stimulus_ms, rate)
        self.notes = list(session.notes)

    # ---- screens

    def _swap(self, widget: QWidget) -> float:
        """Show ``widget`` now; returns the time right after it was painted and flushed to the window system
        (``repaint`` of the page itself: a repaint of the window alone leaves an unchanged child as it was)."""
        self.stack.setCurrentWidget(widget)
        start = now_ms()
        widget.repaint()
        end = now_ms()
        name = "stage" if widget is self.stage else "response" if widget is self.response else "text"
        old = self._paint_ms.get(name)
        self._paint_ms[name] = end - start if old is None else 0.8 * old + 0.2 * (end - start)
        return end

    def _lead(self, name: str) -> float:
        """How long painting ``name`` usually takes: a screen change starts that much before its onset time,
        so that it is on screen at the intended time (at most 8 ms, half a frame at 60 Hz)."""
        return min(self._paint_ms.get(name, 0.0), 8.0)

    def _show_text(self, text: str) -> float:
        self.text.setText(text)
        return self._swap(self.text)

    def _at(self, target_ms: float, fn, token: int) -> None:
        """Call ``fn`` at ``target_ms`` (a timer to EARLY_MS before, then the clock)."""
        if token != self._token:
            return
        left = target_ms - now_ms()
        if left > EARLY_MS + 1:
            self._scheduled = (target_ms, fn, token)
            self._timer.start(int(left - EARLY_MS))
            return
        while now_ms() < target_ms:
            pass
        fn()

    def _tick(self) -> None:
        target_ms, fn, token = self._scheduled
        self._at(target_ms, fn, token)

    def start(self) -> None:
        """The instructions (or, when resuming, where the participant stands)."""
        done, total = self.session.progress
        intro = self.session.design.instructions or "Answer each trial as accurately as you can."
        if done:
            intro = f"Welcome back. {done} of {total} trials are done; the experiment continues where it stopped."
        self.state = "instructions"
        self._show_text(f"{intro}\n\nPress Space to start.")
        self._auto(300, self._continue)

    def _continue(self) -> None:
        if self.state in ("instructions", "break", "paused"):
            self._next_trial()

    def _next_trial(self) -> None:
        if self.session.done:
            self._finish()
            return
        if self.state != "break" and self.session.is_break_due() and self.state != "paused":
            done, total = self.session.progress
            self.state = "break"
            self._show_text(f"Break: {done} of {total} trials done.\n\nRest your eyes; press Space to go on.")
            self._auto(200, self._continue)
            return
        self._token += 1
        token = self._token
        gui_gc.hold(self)  # no collector pause between the fixation onset and the response screen
        self.state = "fixation"
        self.trial = None
        self.stage.content = "cross"
        self._times = {"fixation": self._swap(self.stage)}
        if self.session.design.adaptive and not self.session.has_pending:
            if self._job is None or not self._job.is_running():  # after a pause the last one may still run
                self._job = Job(self.session.next_trial, name="next-stimulus", parent=self)
                self._job.errored.connect(self._failed)
                self._job.start()
            self._job.returned.connect(lambda t, token=token: self._trial_ready(t, token))
        else:
            self._trial_ready(self.session.next_trial(), token)
        self._at(self._times["fixation"] + self.fixation_ms - self._lead("stage"), lambda: self._fixation_over(token),
                 token)

    def _trial_ready(self, trial: DesignTrial, token: int) -> None:
        if token != self._token:
            return
        self.trial = trial
        if trial.image and trial.image not in self._pixmaps:
            self._pixmaps[trial.image] = QPixmap.fromImage(QImage(str(self.base / trial.image)))
        if trial.image:
            self.stage.pixmap = self._pixmaps[trial.image]
            self.stage.scaled()  # scaled during the fixation
        if self.state == "waiting":  # the fixation ended before the selector answered
            self._fixation_over(token)

    def _fixation_over(self, token: int) -> None:
        if token != self._token:
            return
        if self.trial is None:
            self.state = "waiting"  # the cross stays until the next stimulus is known
            return
        if self.trial.image:
            self.state = "stimulus"
            self.stage.pixmap = self._pixmaps[self.trial.image]
            self.stage.content = "image"
            self._times["stimulus"] = self._swap(self.stage)
            self._prepare_response(self.trial)  # while the stimulus is on: the swap itself is then quick
            self._at(self._times["stimulus"] + self.stimulus_ms - self._lead("response"),
                     lambda: self._respond_screen(token), token)
        else:  # pick trials: the images are the response screen
            self._prepare_response(self.trial)
            self._times["stimulus"] = now_ms()
            self._respond_screen(token, has_stimulus=False)

    def _respond_screen(self, token: int, has_stimulus: bool = True) -> None:
        if token != self._token:
            return
        self.state = "respond"
        self._times["respond"] = self._swap(self.response)
        gui_gc.release(self)
        self._times["has_stimulus"] = has_stimulus
        if self.auto_respond:
            QTimer.singleShot(int(self._rng.uniform(150, 400)), self, lambda: self._auto_answer(token))

    # ---- response screens

    def _prepare_response(self, trial: DesignTrial) -> None:
        """Build, lay out and render the response screen off screen, so that showing it is one repaint."""
        self._build_response(trial)
        self.response.resize(self.stack.size())
        self.response_layout.activate()
        self.response.grab()

    def _clear_response(self) -> None:
        while self.response_layout.count():
            item = self.response_layout.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
            elif item.layout() is not None:
                _delete_layout(item.layout())

    def _build_response(self, trial: DesignTrial) -> None:
        self._clear_response()
        self._keys: dict[str, object] = {}
        self.slider = None
        prompt = QLabel()
        prompt.setObjectName("prompt")
        prompt.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.response_layout.addStretch(1)
        self.response_layout.addWidget(prompt)
        row = QHBoxLayout()
        row.addStretch(1)
        self.response_buttons: list[QPushButton | QToolButton] = []
        if trial.kind == "choice":
            classes = [str(c) for c in (trial.options.get("classes") or self.session.design.classes)]
            by_key = key_map(classes)
            keys = {c: k for k, c in by_key.items()}
            prompt.setText("Which did you see?")
            grid = QGridLayout()
            per_row = 10 if len(classes) <= 10 else 8
            for i, c in enumerate(classes):
                label = c if keys.get(c) == c.lower() else (f"{keys[c]}: {c}" if c in keys else c)
                b = _button(label, lambda _=False, c=c: self._answer(c))
                grid.addWidget(b, i // per_row, i % per_row)
                self.response_buttons.append(b)
            self._keys.update(by_key)
            row.addLayout(grid)
        elif trial.kind == "pick":
            opts = trial.options
            prompt.setText(f"Which image looks half {opts['class_a']}, half {opts['class_b']}?")
            side = max(84, min(self.width() // (len(opts["images"]) + 1), 224)) // 28 * 28
            for i, (rel, sid) in enumerate(zip(opts["images"], opts["stimuli"])):
                pix = QPixmap.fromImage(QImage(str(self.base / rel))).scaled(
                    side, side, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation)
                b = QToolButton()
                b.setText(str(i + 1))
                b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
                b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
                b.clicked.connect(lambda _=False, sid=str(sid): self._answer(sid))
                b.setIcon(pix)
                b.setIconSize(pix.size())
                row.addWidget(b)
                self.response_buttons.append(b)
                if i < 9:
                    self._keys[str(i + 1)] = str(sid)
        else:  # slider
            opts = trial.options
            prompt.setText(f"How much {opts['class_b']} (right) versus {opts['class_a']} (left) was it?")
            box = QVBoxLayout()
            ends = QHBoxLayout()
            ends.addWidget(QLabel(f"all {opts['class_a']}"))
            ends.addStretch(1)
            ends.addWidget(QLabel(f"all {opts['class_b']}"))
            self.slider = QSlider(Qt.Orientation.Horizontal)
            self.slider.setRange(0, 100)
            self.slider.setValue(50)
            self.slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            self.slider.setMinimumWidth(500)
            box.addLayout(ends)
            box.addWidget(self.slider)
            rate = QHBoxLayout()
            if opts.get("confidence", True):
                rate.addWidget(QLabel("How sure? (1 = guess, 5 = certain)"))
                for k in range(1, 6):
                    b = _button(str(k), lambda _=False, k=k: self._answer(self._lambda(), k))
                    rate.addWidget(b)
                    self.response_buttons.append(b)
                    self._keys[str(k)] = k
            else:
                b = _button("Continue (Enter)", lambda: self._answer(self._lambda()))
                rate.addWidget(b)
                self.response_buttons.append(b)
                self._keys["enter"] = None
            box.addLayout(rate)
            row.addLayout(box)
        row.addStretch(1)
        self.response_layout.addLayout(row)
        self.response_layout.addStretch(1)
        done, total = self.session.progress
        progress = QLabel(f"{done + 1} / {total}")
        progress.setAlignment(Qt.AlignmentFlag.AlignRight)
        self.response_layout.addWidget(progress)

    def _lambda(self) -> float:
        return self.slider.value() / 100.0 if self.slider is not None else 0.5

    def _answer(self, response, confidence: int | None = None) -> None:
        if self.state != "respond" or self.trial is None:
            return  # nothing is taken during the fixation or the stimulus
        rt = now_ms() - self._times["respond"]
        trial = self.trial
        t = self._times
        measured_stim = (t["respond"] - t["stimulus"]) if t.get("has_stimulus") else None
        row = self.session.record(response, rt, t["stimulus"] - t["fixation"], measured_stim, confidence,
                                  intended_fixation_ms=self.fixation_ms,
                                  intended_stimulus_ms=self.stimulus_ms if t.get("has_stimulus") else None)
        self.state = "recorded"
        self.trialRecorded.emit(row)
        if trial.feedback and row["correct"] is not None:
            self.state = "feedback"
            truth = trial.true_label if trial.kind == "choice" else trial.options.get("correct")
            self._show_text("Correct" if row["correct"] else f"Incorrect — it was {truth}")
            token = self._token
            QTimer.singleShot(FEEDBACK_MS, self, lambda: self._after_feedback(token))
        else:
            self._next_trial()

    def _after_feedback(self, token: int) -> None:
        if token == self._token and self.state == "feedback":
            self._next_trial()

    def _auto_answer(self, token: int) -> None:
        if token != self._token or self.state != "respond":
            return
        trial = self.trial
        if trial.kind == "choice":
            classes = trial.options.get("classes") or self.session.design.classes
            self._answer(str(self._rng.choice(classes)))
        elif trial.kind == "pick":
            self._answer(str(self._rng.choice(trial.options["stimuli"])))
        else:
            self.slider.setValue(int(self._rng.integers(0, 101)))
            self._answer(self._lambda(), 3 if trial.options.get("confidence", True) else None)

    def _auto(self, ms: int, fn) -> None:
        if self.auto_respond:
            QTimer.singleShot(ms, self, fn)

    # ---- keys, pause, end

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        key, text = event.key(), event.text().lower()
        if key == Qt.Key.Key_Escape:
            if self.state == "paused":
                self._continue()
            elif self.state == "end":
                self.close()
            else:
                self.pause()
            return
        if self.state == "paused" and key == Qt.Key.Key_Q:
            self.close()
            return
        if self.state in ("instructions", "break", "paused") and key in (Qt.Key.Key_Space, Qt.Key.Key_Return,
                                                                         Qt.Key.Key_Enter):
            self._continue()
            return
        if self.state == "end" and key in (Qt.Key.Key_Space, Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.close()
            return
        if self.state != "respond":
            return
        if self.slider is not None and key in (Qt.Key.Key_Left, Qt.Key.Key_Right):
            step = 10 if event.modifiers() & Qt.KeyboardModifier.ShiftModifier else 1
            self.slider.setValue(self.slider.value() + (step if key == Qt.Key.Key_Right else -step))
            return
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and "enter" in self._keys:
            self._answer(self._lambda())
            return
        if text in self._keys:
            value = self._keys[text]
            if self.trial.kind == "slider":
                self._answer(self._lambda(), value)
            else:
                self._answer(value)
            return
        super().keyPressEvent(event)

    def pause(self) -> None:
        if self.state in ("end", "paused"):
            return
        gui_gc.release(self)
        self._token += 1  # the trial on screen (not answered) is shown again after the pause
        self.state = "paused"
        done, total = self.session.progress
        self._show_text(f"Paused. {done} of {total} answers are saved.\n\n"
                        "Space: continue    Q: quit (you can resume later with the same participant id)")

    def _failed(self, exc) -> None:
        gui_gc.release(self)
        self._token += 1
        self.state = "paused"
        self._show_text(f"The next stimulus could not be chosen: {exc}\n\nQ: quit (the answers so far are saved)")

    def _finish(self) -> None:
        self.state = "end"
        done, _ = self.session.progress
        self._show_text(f"Thank you! All {done} trials are done and saved.\n\nPress Space to close.")
        self._auto(200, self.close)

    def event(self, ev) -> bool:
        if ev.type() == QEvent.Type.ShortcutOverride and isinstance(ev, QKeyEvent):
            ev.accept()  # number keys belong to the participant, never to an application shortcut
            return True
        return super().event(ev)

    def closeEvent(self, event) -> None:  # noqa: N802
        gui_gc.release(self)
        self._token += 1
        if self._job is not None and self._job.is_running():
            self._job.wait(10_000)
        self.session.close()
        if not self._emitted:
            self._emitted = True
            self.finishedSession.emit(self.session.path)
        super().closeEvent(event)


def _delete_layout(layout) -> None:
    while layout.count():
        item = layout.takeAt(0)
        if item.widget() is not None:
            item.widget().deleteLater()
        elif item.layout() is not None:
            _delete_layout(item.layout())
    layout.deleteLater()


def show_runner(window: RunnerWindow, fullscreen: bool) -> RunnerWindow:
    window.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
    if fullscreen:
        screen = window.screen()
        if screen is not None:  # without a window manager (a kiosk X server) full screen is only a geometry
            window.setGeometry(screen.geometry())
        window.showFullScreen()
    else:
        window.show()
    window.activateWindow()
    window.setFocus()
    window.start()
    return window
