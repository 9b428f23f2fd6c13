"""Manipulation: stimuli meant to split two particular people (BAM §5, DESIGN §2 "Manipulation").

**Treatment arm** (``arm:indiv``): controversial guidance with participant 1's IndivNet as classifier 1
(pushed toward class a) and participant 2's IndivNet as classifier 2 (pushed toward b), for each
chosen ordered pair (a, b). A stimulus *succeeds* when participant 1 chooses a and participant 2
chooses b.

**Control arm** (``arm:group``): the paper compares the IndivNet stimuli with variMNIST, the stimuli
made from models that know nothing about the two people ("variMNIST -> IndivNet": success rate +3%,
directional ratio +12%). Controversial guidance needs two *different* models, so the GroupNet cannot
play both roles; the control here is the group model's own boundary for the same pairs: uncertainty
guidance of the GroupNet toward 50/50 between a and b, same sampler settings, same seeds. It is
shown to the same two people and scored with the same direction (participant 1 -> a, participant 2
-> b). Any set of existing library stimuli on the same pairs (e.g. a variMNIST import) can be scored as
the control instead (:func:`score_manipulation` takes any ``arm`` labels).

Scores per arm (:func:`score_manipulation`), with P1(c), P2(c) the share of each person's responses
to a stimulus that were c (one response each: 0 or 1):

- ``success_rate``: mean of P1(a) * P2(b);
- ``reverse_rate``: mean of P1(b) * P2(a) (split across the pair, the wrong way round);
- ``directional_ratio``: success / (success + reverse), summed over stimuli — among the stimuli on
  which the two split across the pair, the share split in the intended direction (0.5 = no control
  over direction);
- ``disagreement_rate``: mean probability that the two give different answers.

Stimuli go into the library with mode ``manipulation`` and tags ``p1:<id>``, ``p2:<id>``,
``arm:indiv`` / ``arm:group`` and ``run:<tag>``; the settings stored with each say which guidance made it.
"""

from __future__ import annotations

import secrets
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from perceptlab.data.library import Stimulus, StimulusLibrary
from perceptlab.engine.filters import FilterSettings
from perceptlab.engine.generate import GenerateSummary, expand_targets, generate
from perceptlab.engine.registry import Registry, default_registry
from perceptlab.engine.sampler import SamplerSettings
from perceptlab.engine.weights import read_config
from perceptlab.errors import PerceptLabError

ARMS = ("indiv", "group")
MODE = "manipulation"


def parse_pairs(text: str | Sequence) -> list[tuple[int, int]]:
    """``"3-5,4-9"`` (or a list of pairs) -> [(3, 5), (4, 9)]; a is participant 1's class."""
    if not isinstance(text, str):
        pairs = [tuple(int(v) for v in p) for p in text]
    else:
        pairs = []
        for part in (p.strip() for p in text.split(",") if p.strip()):
            bits = part.replace(":", "-").split("-")
            try:
                pairs.append((int(bits[0]), int(bits[1])) if len(bits) == 2 else ())
            except ValueError:
                pairs.append(())
    for p in pairs:
        if len(p) != 2 or not (0 <= p[0] <= 9 and 0 <= p[1] <= 9) or p[0] == p[1]:
            raise PerceptLabError(
                f"bad pair in {text!r}", fix="write pairs as a-b with two different digits, e.g. 3-5,4-9"
            )
    if not pairs:
        raise PerceptLabError("no pairs given", fix="e.g. --pairs 3-5,4-9")
    return [(int(a), int(b)) for a, b in pairs]


def tags_for(p1: str, p2: str, arm: str, run: str) -> list[str]:
    return [f"p1:{p1}", f"p2:{p2}", f"arm:{arm}", f"run:{run}"]


def resolve_individual(participant: str, registry: Registry) -> str:
    """The registry name of a participant's IndivNet (the newest if there are several)."""
    found = []
    for name, e in registry.entries().items():
        if e.builtin or e.kind != "classifier":
            continue
        try:
            cfg = read_config(e.config_path)
        except PerceptLabError:
            continue
        if cfg.get("level") == "individual" and [str(p) for p in cfg.get("participants", [])] == [str(participant)]:
            found.append((cfg.get("created", ""), name))
    if not found:
        raise PerceptLabError(
            f"no individual model for participant {participant!r} in {registry.user_dir}",
            fix="fine-tune one with 'perceptlab align --level individual --participants ID', "
            "or name it with --model1/--model2",
        )
    return sorted(found)[-1][1]


def group_of(model: str, registry: Registry) -> str | None:
    """The GroupNet an IndivNet was fine-tuned from (its base), when the registry has it."""
    base = registry.config(model).get("base")
    return base if base in registry.entries() else None


@dataclass
class ManipulationPlan:
    """Who, with which models, on which pairs; round-trips through ``to_dict``."""

    p1: str
    p2: str
    model1: str
    model2: str
    pairs: list[tuple[int, int]]
    per_pair: int = 8
    group: str | None = None  # GroupNet for the control arm (None: no control arm)
    sampler: SamplerSettings = field(default_factory=lambda: SamplerSettings.from_preset("fast"))
    filters: FilterSettings = field(default_factory=FilterSettings)
    regenerate: bool = False
    run: str = ""

    def validate(self) -> ManipulationPlan:
        if str(self.p1) == str(self.p2):
            raise PerceptLabError(
                "participant 1 and participant 2 are the same person", fix="pick two different participants"
            )
        if self.model1 == self.model2:
            raise PerceptLabError(
                f"both participants use the model {self.model1!r}",
                fix="controversial guidance needs the two participants' own IndivNets",
            )
        if self.per_pair < 1:
            raise PerceptLabError(f"{self.per_pair} stimuli per pair", fix="ask for at least 1")
        self.pairs = parse_pairs(self.pairs)
        if not self.run:
            self.run = f"{secrets.token_hex(3)}"
        return self

    @classmethod
    def from_dict(cls, d: dict) -> ManipulationPlan:
        return cls(
            p1=str(d["p1"]),
            p2=str(d["p2"]),
            model1=d["model1"],
            model2=d["model2"],
            pairs=[tuple(p) for p in d["pairs"]],
            per_pair=int(d.get("per_pair", 8)),
            group=d.get("group"),
            sampler=SamplerSettings.from_dict(d.get("sampler", {})),
            filters=FilterSettings.from_dict(d.get("filters", {})),
            regenerate=bool(d.get("regenerate", False)),
            run=d.get("run", ""),
        )

    def to_dict(self) -> dict:
        return {
            "p1": self.p1,
            "p2": self.p2,
            "model1": self.model1,
            "model2": self.model2,
            "pairs": [list(p) for p in self.pairs],
            "per_pair": self.per_pair,
            "group": self.group,
            "sampler": self.sampler.to_dict(),
            "filters": self.filters.to_dict(),
            "regenerate": self.regenerate,
            "run": self.run,
        }


class _TaggingLibrary:
    """A library whose ``add`` stores records as manipulation stimuli with the run's tags."""

    def __init__(self, library: StimulusLibrary, tags: list[str]):
        self._library = library
        self._tags = tags

    def add(self, records: list[Stimulus], images: np.ndarray) -> list[str]:
        for rec in records:
            rec.settings = {**rec.settings, "guidance_mode": rec.mode}
            rec.mode = MODE
            rec.tags = [*rec.tags, *self._tags]
        return self._library.add(records, images)

    def __contains__(self, item: object) -> bool:
        return item in self._library

    def __getattr__(self, name: str) -> Any:
        return getattr(self._library, name)


def generate_manipulation(
    library: StimulusLibrary,
    plan: ManipulationPlan,
    *,
    registry: Registry | None = None,
    device: torch.device | str = "cpu",
) -> Generator[dict[str, Any], None, pd.DataFrame]:
    """Generate both arms into ``library`` (treatment first); yields the generation records with
    ``arm`` added and returns a table ``stimulus_id, class_a, class_b, arm, passed``."""
    plan.validate()
    registry = registry or default_registry()
    for name in (plan.model1, plan.model2, *([plan.group] if plan.group else [])):
        registry.entry(name, kind="classifier")
    seed = plan.sampler.seed if plan.sampler.seed is not None else secrets.randbelow(2**31)
    targets = expand_targets(plan.pairs, plan.per_pair)
    arms = [
        (
            "indiv",
            plan.sampler.replace(
                mode="controversial", classifier=plan.model1, classifier2=plan.model2, pairs=list(plan.pairs), seed=seed,
                ensemble=[],
            ),
        )
    ]
    if plan.group:
        arms.append(
            (
                "group",
                plan.sampler.replace(
                    mode="uncertainty", classifier=plan.group, classifier2=None, pairs=list(plan.pairs), seed=seed,
                    ensemble=[],  # the control is the GroupNet's own boundary: no co-guide (the fast preset's cornet)
                ),
            )
        )
    frames = []
    for arm, settings in arms:
        tagged = _TaggingLibrary(library, tags_for(plan.p1, plan.p2, arm, plan.run))
        job = generate(
            settings,
            targets,
            filters=plan.filters,
            registry=registry,
            library=tagged,
            device=device,
            regenerate=plan.regenerate,
        )
        summary: GenerateSummary = yield from _with_arm(job, arm)
        frames.append(
            pd.DataFrame(
                {
                    "stimulus_id": summary.ids,
                    "class_a": [r.class_a for r in summary.records],
                    "class_b": [r.class_b for r in summary.records],
                    "arm": arm,
                    "passed": [r.passed for r in summary.records],
                }
            )
        )
        yield {
            "kind": "arm",
            "arm": arm,
            "generated": summary.generated,
            "accepted": summary.accepted,
            "stored": len(summary.ids),
            "seconds": summary.seconds,
        }
    return pd.concat(frames, ignore_index=True)


def _with_arm(job: Generator, arm: str) -> Generator[dict, None, Any]:
    """Re-yield a job's records with ``arm`` added and return its value (closing it when closed)."""
    try:
        while True:
            try:
                rec = next(job)
            except StopIteration as stop:
                return stop.value
            yield {**rec, "arm": arm}
    finally:
        job.close()


def manipulation_stimuli(library: StimulusLibrary, p1: str, p2: str, run: str | None = None) -> pd.DataFrame:
    """The manipulation stimuli of a participant pair in a library (``stimulus_id, class_a, class_b,
    arm, run, passed``), read back from their tags."""
    rows = []
    for rec in library.records(tag=f"p1:{p1}"):
        tags = set(rec.tags)
        if f"p2:{p2}" not in tags:
            continue
        rec_run = next((t[4:] for t in rec.tags if t.startswith("run:")), "")
        if run is not None and rec_run != run:
            continue
        arm = next((t[4:] for t in rec.tags if t.startswith("arm:")), "")
        rows.append(
            {
                "stimulus_id": rec.id,
                "class_a": rec.class_a,
                "class_b": rec.class_b,
                "arm": arm,
                "run": rec_run,
                "passed": rec.passed,
            }
        )
    return pd.DataFrame(rows, columns=["stimulus_id", "class_a", "class_b", "arm", "run", "passed"])


def _shares(responses: pd.DataFrame, participant: str, n_classes: int) -> pd.DataFrame:
    """Per stimulus, the share of one person's responses that were each class (C columns)."""
    r = responses[responses["participant"].astype(str) == str(participant)]
    counts = pd.crosstab(r["stimulus"].astype(str), r["response"].astype(int)).reindex(
        columns=range(n_classes), fill_value=0
    )
    return counts.div(counts.sum(axis=1), axis=0)


def _arm_scores(df: pd.DataFrame) -> dict:
    n = len(df)
    if n == 0:
        return {
            "n": 0,
            "success_rate": None,
            "reverse_rate": None,
            "directional_ratio": None,
            "disagreement_rate": None,
        }
    succ, rev = df["success"].sum(), df["reverse"].sum()
    return {
        "n": int(n),
        "success_rate": float(succ / n),
        "reverse_rate": float(rev / n),
        "directional_ratio": float(succ / (succ + rev)) if succ + rev > 0 else None,
        "disagreement_rate": float(df["disagree"].mean()),
        "successes": float(succ),
    }


def score_manipulation(stimuli: pd.DataFrame, responses: pd.DataFrame, p1: str, p2: str, n_classes: int = 10) -> dict:
    """Score manipulation stimuli from the two people's responses (see the module docstring).

    ``stimuli``: ``stimulus_id, class_a, class_b, arm``; ``responses``: ``participant, stimulus,
    response`` (``stimulus`` = the stimulus id). Stimuli without a response from both are counted and
    left out.
    """
    need = {"participant", "stimulus", "response"} - set(responses.columns)
    if need:
        raise PerceptLabError(
            f"the response table has no column(s) {', '.join(sorted(need))}",
            fix="columns: participant, stimulus, response",
        )
    s1, s2 = _shares(responses, p1, n_classes), _shares(responses, p2, n_classes)
    ids = stimuli["stimulus_id"].astype(str)
    both = ids.isin(s1.index) & ids.isin(s2.index)
    df = stimuli[both.to_numpy()].copy()
    sid = df["stimulus_id"].astype(str).to_numpy()
    a = df["class_a"].astype(int).to_numpy()
    b = df["class_b"].astype(int).to_numpy()
    m1 = s1.loc[sid].to_numpy()
    m2 = s2.loc[sid].to_numpy()
    rows = np.arange(len(df))
    df["p1_a"], df["p1_b"] = m1[rows, a], m1[rows, b]
    df["p2_a"], df["p2_b"] = m2[rows, a], m2[rows, b]
    df["success"] = df["p1_a"] * df["p2_b"]
    df["reverse"] = df["p1_b"] * df["p2_a"]
    df["disagree"] = 1.0 - (m1 * m2).sum(axis=1)
    out: dict[str, Any] = {
        "p1": str(p1),
        "p2": str(p2),
        "stimuli": int(len(stimuli)),
        "without_both_responses": int((~both).sum()),
        "arms": {},
    }
    for arm in sorted(df["arm"].unique(), key=lambda x: (x not in ARMS, ARMS.index(x) if x in ARMS else 0, x)):
        part = df[df["arm"] == arm]
        scores = _arm_scores(part)
        scores["by_pair"] = {f"{pa}-{pb}": _arm_scores(g) for (pa, pb), g in part.groupby(["class_a", "class_b"])}
        out["arms"][arm] = scores
    ind, grp = out["arms"].get("indiv"), out["arms"].get("group")
    if ind and grp and ind["n"] and grp["n"]:
        comp: dict[str, Any] = {"success_rate_gain": ind["success_rate"] - grp["success_rate"]}
        if ind["directional_ratio"] is not None and grp["directional_ratio"] is not None:
            comp["directional_ratio_gain"] = ind["directional_ratio"] - grp["directional_ratio"]
        try:
            from scipy.stats import fisher_exact  # noqa: PLC0415

            si, sg = int(round(ind["successes"])), int(round(grp["successes"]))
            comp["fisher_p_success"] = float(
                fisher_exact([[si, ind["n"] - si], [sg, grp["n"] - sg]], alternative="greater")[1]
            )
        except (ImportError, ValueError):
            pass
        out["comparison"] = comp
    out["per_stimulus"] = df[["stimulus_id", "arm", "class_a", "class_b", "success", "reverse", "disagree"]].to_dict(
        "records"
    )
    return out


def format_scores(scores: dict) -> str:
    def f(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.3f}"

    lines = [
        f"participants {scores['p1']} (-> a) and {scores['p2']} (-> b): {scores['stimuli']} stimuli, "
        f"{scores['without_both_responses']} without responses from both"
    ]
    for arm, s in scores["arms"].items():
        lines.append(
            f"  {arm:6s} n={s['n']:4d}  success {f(s['success_rate'])}  reverse {f(s['reverse_rate'])}  "
            f"directional ratio {f(s['directional_ratio'])}  disagreement {f(s['disagreement_rate'])}"
        )
    comp = scores.get("comparison")
    if comp:
        lines.append(
            f"  indiv - group: success {comp['success_rate_gain']:+.3f}"
            + (f", directional ratio {comp['directional_ratio_gain']:+.3f}" if "directional_ratio_gain" in comp else "")
            + (f" (one-sided Fisher p = {comp['fisher_p_success']:.3g})" if "fisher_p_success" in comp else "")
        )
    return "\n".join(lines)
