"""One participant's run through a design: the presentation order, the trial file, resume after a crash.

``ExperimentSession(design, participant, out_dir)`` keeps ``<out_dir>/<participant>_<session>.csv`` in
the canonical layout (:data:`perceptlab.experiment.design.OUTPUT_COLUMNS`) and a sidecar
``<participant>_<session>.json`` (the design's fingerprint, the order, when it started). Every response is
appended as one CSV line, flushed and ``os.fsync``-ed by :meth:`record` before it returns, so a process
killed at any moment loses at most the trial on screen. Opened again for the same participant and design
(no ``session_id`` given), the session RESUMES after the last answered trial; a last line cut off by a kill
mid-write is removed and reported in :attr:`notes`.

The order is :func:`~perceptlab.experiment.design.presentation_order` (seeded by the design's
``order_seed``, recorded on every row). With ``design.adaptive`` the next stimulus comes from a selector
(``.observe(stimulus_id, response)``, ``.next(exclude=set()) -> (id, gain)``, e.g.
:class:`perceptlab.experiment.active.ActiveSelector`) choosing among the pool's trials; answered trials are
replayed into it on resume. :meth:`next_trial` may run in a worker thread (the Qt runner calls it during
the fixation); :meth:`record` runs on the caller's thread.

No Qt here: the Qt runner (:mod:`perceptlab._qt.experiment`) and the CLI drive this class.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from perceptlab.data.library_storage import fsync_dir
from perceptlab.errors import PerceptLabError
from perceptlab.experiment.design import (
    OUTPUT_COLUMNS,
    Design,
    DesignTrial,
    load_design,
    presentation_order,
)

_PARTICIPANT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def design_fingerprint(design: Design) -> str:
    """A short hash of the design (trials, order, timing): a trial file belongs to one design."""
    text = json.dumps(design.to_dict(), sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def check_participant(participant: str) -> str:
    participant = str(participant).strip()
    if not _PARTICIPANT_RE.match(participant):
        raise PerceptLabError(f"participant id {participant!r} cannot name a trial file",
                              "use letters, digits, '_', '-' or '.' (up to 64), starting with a letter or digit")
    return participant


def _new_session_id() -> str:
    now = datetime.now(timezone.utc)
    return now.strftime("%Y%m%dT%H%M%S") + f"{now.microsecond // 1000:03d}Z"


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if value == value else ""
    return str(value)


@dataclass
class Answer:
    """One answered trial as read back from the trial file."""

    trial_index: int
    stimulus: str
    response: str
    kind: str


class ExperimentSession:
    """See the module docstring."""

    def __init__(self, design: Design, participant: str, out_dir: str | Path, session_id: str | None = None,
                 *, selector=None, resume: bool = True):
        self.design = design
        self.participant = check_participant(participant)
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.fingerprint = design_fingerprint(design)
        self.selector = selector
        self.notes: list[str] = []
        self._pending: DesignTrial | None = None
        self._by_stimulus = {t.stimulus: t for t in design.trials}
        if design.adaptive:
            if selector is None:
                raise PerceptLabError(f"design {design.name!r} is adaptive: the session needs a selector",
                                      "build one with perceptlab.experiment.active (see make_selector)")
            missing = [s for s in design.adaptive["pool"] if str(s) not in self._by_stimulus]
            if missing:
                raise PerceptLabError(f"design {design.name!r}: adaptive pool ids without a trial: {missing[:5]}",
                                      "every pool id needs a trial in 'trials' (its image and kind)")
            self.order: list[DesignTrial] = []
            self.n_trials = min(int(design.adaptive["n_trials"]), len(design.adaptive["pool"]))
        else:
            self.order = presentation_order(design)
            self.n_trials = len(self.order)
        if session_id is None and resume:
            session_id = self._find_resumable()
        self.resumed = session_id is not None and self._csv_path(session_id).exists()
        self.session_id = session_id or _new_session_id()
        self.path = self._csv_path(self.session_id)
        self.answers: list[Answer] = []
        if not self.resumed:
            self._create()
        self._fh = open(self.path, "a", encoding="utf-8", newline="")  # noqa: SIM115 - kept open for the session
        self._lock()  # before reading (and maybe repairing) the file
        if self.resumed:
            try:
                self._read_existing()
            except BaseException:
                self._fh.close()
                raise

    # ---- files

    def _csv_path(self, session_id: str) -> Path:
        return self.out_dir / f"{self.participant}_{session_id}.csv"

    @property
    def sidecar(self) -> Path:
        return self.path.with_suffix(".json")

    def _find_resumable(self) -> str | None:
        """The latest unfinished session of this participant on this design, if any."""
        found = []
        for side in sorted(self.out_dir.glob(f"{self.participant}_*.json")):
            try:
                meta = json.loads(side.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                continue
            if meta.get("participant") != self.participant or meta.get("design_fingerprint") != self.fingerprint:
                continue
            csv_path = side.with_suffix(".csv")
            if csv_path.exists():
                found.append((meta.get("started_utc", ""), meta["session_id"], csv_path))
        for _, sid, csv_path in sorted(found, reverse=True):
            n = sum(1 for line in csv_path.read_bytes().split(b"\n")[1:-1] if line.strip())  # complete lines
            if n < self.n_trials:
                return sid
            raise PerceptLabError(f"participant {self.participant} has completed this design already ({csv_path})",
                                  "use a new participant id, or move that file away to run it again")
        return None

    def _create(self) -> None:
        meta = {"format": "perceptlab-session/1", "participant": self.participant, "session_id": self.session_id,
                "design": self.design.name, "design_fingerprint": self.fingerprint,
                "order_seed": self.design.order_seed, "adaptive": bool(self.design.adaptive),
                "order": [t.id for t in self.order], "n_trials": self.n_trials, "started_utc": _utc_now()}
        tmp = self.sidecar.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
        tmp.replace(self.sidecar)
        with open(self.path, "x", encoding="utf-8", newline="") as fh:
            csv.writer(fh, lineterminator="\n").writerow(OUTPUT_COLUMNS)
            fh.flush()
            os.fsync(fh.fileno())
        fsync_dir(self.out_dir)

    def _read_existing(self) -> None:
        raw = self.path.read_bytes()
        if not raw.endswith(b"\n"):
            cut = raw.rfind(b"\n") + 1
            if cut == 0:  # not even the header survived: start the file again
                raw = (",".join(OUTPUT_COLUMNS) + "\n").encode()
                self.path.write_bytes(raw)
            else:
                self.notes.append(f"{self.path.name}: the last line was cut off (a kill while it was written) "
                                  f"and is removed; that trial is asked again")
                with open(self.path, "r+b") as fh:
                    fh.truncate(cut)
                    fh.flush()
                    os.fsync(fh.fileno())
                raw = raw[:cut]
        rows = list(csv.reader(io.StringIO(raw.decode("utf-8"))))
        if not rows or tuple(rows[0]) != OUTPUT_COLUMNS:
            raise PerceptLabError(f"{self.path}, line 1: not a PerceptLab trial file (the header differs)",
                                  "move the file away or choose another output folder")
        col = {c: i for i, c in enumerate(OUTPUT_COLUMNS)}
        for lineno, row in enumerate(rows[1:], start=2):
            if not row:
                continue
            if len(row) != len(OUTPUT_COLUMNS):
                raise PerceptLabError(f"{self.path}, line {lineno}: {len(row)} fields, expected "
                                      f"{len(OUTPUT_COLUMNS)}", "repair or move the file away")
            k = len(self.answers)
            ans = Answer(k, row[col["stimulus"]], row[col["response"]], row[col["kind"]])
            if not self.design.adaptive:
                if k >= len(self.order) or self.order[k].stimulus != ans.stimulus:
                    raise PerceptLabError(f"{self.path}, line {lineno}: stimulus {ans.stimulus!r} is not trial "
                                          f"{k + 1} of design {self.design.name!r} in its order",
                                          "the file belongs to another design: choose another output folder")
            else:
                self.selector.observe(ans.stimulus, self._selector_response(ans.kind, ans.response))
            self.answers.append(ans)
        if self.answers:
            self.notes.append(f"resumed session {self.session_id} of {self.participant} after "
                              f"{len(self.answers)} answered trials")

    def _lock(self) -> None:
        """One runner per trial file: an exclusive lock, released by the system when the process ends
        (also by kill -9)."""
        try:
            import fcntl  # noqa: PLC0415 - POSIX only
        except ImportError:  # pragma: no cover - Windows: no lock
            return
        try:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            self._fh.close()
            raise PerceptLabError(f"{self.path} is open in another runner (participant {self.participant})",
                                  "finish or quit that runner first; its answers are saved") from exc

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()

    def __enter__(self) -> ExperimentSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- progress

    @property
    def n_answered(self) -> int:
        return len(self.answers)

    @property
    def done(self) -> bool:
        return self.n_answered >= self.n_trials

    @property
    def progress(self) -> tuple[int, int]:
        return self.n_answered, self.n_trials

    @property
    def has_pending(self) -> bool:
        """The trial on screen is chosen already (``next_trial`` returns at once)."""
        return self._pending is not None

    # ---- trials

    def next_trial(self) -> DesignTrial | None:
        """The trial to show now (the same one until it is recorded); None when the session is done.

        Adaptive designs ask the selector (may take a while: call it off the display thread)."""
        if self.done:
            return None
        if self._pending is not None:
            return self._pending
        if self.design.adaptive:
            seen = {a.stimulus for a in self.answers}
            stim, _gain = self.selector.next(exclude=seen)
            trial = self._by_stimulus[str(stim)]
        else:
            trial = self.order[self.n_answered]
        self._pending = trial
        return trial

    def is_break_due(self) -> bool:
        """A break before the next trial (every ``break_every`` answered trials)."""
        every = int(self.design.break_every or 0)
        return every > 0 and 0 < self.n_answered < self.n_trials and self.n_answered % every == 0

    def correct(self, trial: DesignTrial, response) -> bool | None:
        if trial.kind == "choice" and trial.true_label is not None:
            return str(response) == str(trial.true_label)
        if trial.kind == "pick" and trial.options.get("correct") is not None:
            return str(response) == str(trial.options["correct"])
        return None

    @staticmethod
    def _selector_response(kind: str, response: str):
        return response if kind == "choice" else None

    def record(self, response, rt_ms: float, measured_fixation_ms: float | None,
               measured_stimulus_ms: float | None, confidence: int | None = None, *,
               intended_fixation_ms: float | None = None, intended_stimulus_ms: float | None = None) -> dict:
        """Append the answer to the trial on screen; it is on disk (fsync) when this returns.

        The intended durations default to the design's (a runner that rounds them to whole display frames
        passes what it aimed at)."""
        trial = self.next_trial()
        if trial is None:
            raise PerceptLabError(f"session {self.session_id}: all {self.n_trials} trials are answered already")
        if trial.kind == "slider":
            lam = float(response)
            if not 0.0 <= lam <= 1.0:
                raise PerceptLabError(f"slider response {lam} is outside [0, 1]")
            response_text = f"{lam:.3f}"
        else:
            response_text = str(response)
        if confidence is not None and not 1 <= int(confidence) <= 5:
            raise PerceptLabError(f"confidence {confidence} is outside 1-5")
        row = {
            "participant": self.participant, "stimulus": trial.stimulus, "response": response_text,
            "rt_ms": float(rt_ms), "trial_index": self.n_answered, "is_catch": bool(trial.is_catch),
            "true_label": trial.true_label, "kind": trial.kind, "block": trial.block, "phase": trial.phase,
            "feedback": bool(trial.feedback), "correct": self.correct(trial, response_text),
            "order_seed": self.design.order_seed,
            "intended_fixation_ms": self.design.fixation_ms if intended_fixation_ms is None else intended_fixation_ms,
            "measured_fixation_ms": None if measured_fixation_ms is None else float(measured_fixation_ms),
            "intended_stimulus_ms": self.design.stimulus_ms if intended_stimulus_ms is None else intended_stimulus_ms,
            "measured_stimulus_ms": None if measured_stimulus_ms is None else float(measured_stimulus_ms),
            "confidence": None if confidence is None else int(confidence),
            "session_id": self.session_id, "timestamp_utc": _utc_now(),
        }
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow([_fmt(row[c]) for c in OUTPUT_COLUMNS])
        self._fh.write(buf.getvalue())
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.answers.append(Answer(self.n_answered, trial.stimulus, response_text, trial.kind))
        self._pending = None
        if self.design.adaptive:
            self.selector.observe(trial.stimulus, self._selector_response(trial.kind, response_text))
        return row


def design_library(design: Design, base: Path | None = None) -> Path | None:
    """The design's library folder (relative paths are relative to the design file's folder)."""
    if not design.library:
        return None
    lib = Path(design.library)
    return base / lib if base is not None and not lib.is_absolute() else lib


def complete_adaptive_pool(design: Design, base: Path | None = None) -> Design:
    """Give every adaptive pool id without a trial a ``choice`` trial showing the library's image of it."""
    if not design.adaptive:
        return design
    have = {t.stimulus for t in design.trials}
    lib = design_library(design, base)
    for sid in map(str, design.adaptive["pool"]):
        if sid in have:
            continue
        if lib is None:
            raise PerceptLabError(f"design {design.name!r}: adaptive pool id {sid!r} has no trial and the design "
                                  "names no library", "add its trial, or set 'library'")
        image = lib / "images" / f"{sid}.png"
        if not image.is_file():
            raise PerceptLabError(f"design {design.name!r}: adaptive pool id {sid!r}: no image {image}",
                                  "use ids of the library's stimuli")
        rel = os.path.relpath(image, base) if base is not None else str(image)
        design.trials.append(DesignTrial(id=f"pool-{sid}", stimulus=sid, image=Path(rel).as_posix()))
        have.add(sid)
    return design


def make_selector(design: Design, base: Path | None = None):
    """The active selector of an adaptive design (:meth:`perceptlab.experiment.active.ActiveSelector.
    from_design`: the library's stored model probabilities, the pool as candidates, seeded by order_seed)."""
    from perceptlab.experiment import active  # noqa: PLC0415
    lib = design_library(design, base)
    if lib is None:
        raise PerceptLabError(f"design {design.name!r} is adaptive but names no library",
                              "set 'library' to the stimulus library whose probabilities drive the choice")
    return active.ActiveSelector.from_design(design, library=lib)


def open_session(design_path: str | Path, participant: str, out_dir: str | Path | None = None,
                 session_id: str | None = None) -> tuple[ExperimentSession, Path]:
    """The session for a design file (resuming an unfinished one) and the folder its images are relative
    to; trial files go to ``out_dir`` (default: ``trials/`` beside the design)."""
    design_path = Path(design_path)
    design = load_design(design_path)
    base = design_path.parent
    selector = None
    if design.adaptive:
        complete_adaptive_pool(design, base)
        selector = make_selector(design, base)
    out = Path(out_dir) if out_dir else base / "trials"
    return ExperimentSession(design, participant, out, session_id, selector=selector), base
