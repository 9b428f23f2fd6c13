"""Exclusions: catch-trial accuracy per participant and the minimum responses per stimulus.

Catch (sentinel) trials are rows with ``is_catch``; their accuracy is scored against ``true_label``.
A participant is kept when their catch accuracy is greater than the threshold (varEmotion kept
participants "with sentinel trial accuracy greater than 70%"), i.e. excluded at ``accuracy <=
threshold``. Participants without scored catch trials are kept and listed. Catch trials never enter
the behavioural analyses. Stimuli with fewer than ``min_responses`` responses are listed; the
entropy statistics leave them out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass
class ExclusionResult:
    """Who and what was excluded, and the trials left for the analyses."""

    catch: pd.DataFrame  # index participant: n_catch, n_scored, n_correct, accuracy, excluded
    threshold: float
    trials: pd.DataFrame  # non-catch trials of the kept participants
    min_responses: int
    stimuli_below_min: pd.Series  # stimulus -> number of responses, for stimuli under the minimum
    notes: list[str] = field(default_factory=list)

    @property
    def excluded(self) -> list[str]:
        return self.catch.index[self.catch["excluded"]].tolist()

    def summary(self) -> str:
        out = [f"catch trials: {int(self.catch['n_catch'].sum())}; participants excluded at catch "
               f"accuracy <= {self.threshold:g}: {len(self.excluded)}"]
        for p in self.excluded[:10]:
            row = self.catch.loc[p]
            out.append(f"  {p}: {int(row['n_correct'])}/{int(row['n_scored'])} correct "
                       f"({row['accuracy']:.0%})")
        out.append(f"stimuli with fewer than {self.min_responses} responses: "
                   f"{len(self.stimuli_below_min)} (left out of the entropy statistics)")
        out.extend(f"note: {n}" for n in self.notes)
        return "\n".join(out)

    def to_dict(self) -> dict:
        exc = self.catch[self.catch["excluded"]]
        return {
            "catch_trials": int(self.catch["n_catch"].sum()),
            "catch_threshold": self.threshold,
            "rule": f"participants with catch accuracy <= {self.threshold:g} are excluded",
            "excluded_participants": [
                {"participant": str(p), "accuracy": float(r["accuracy"]),
                 "correct": int(r["n_correct"]), "scored": int(r["n_scored"])}
                for p, r in exc.iterrows()
            ],
            "trials_analysed": int(len(self.trials)),
            "min_responses": self.min_responses,
            "stimuli_below_min_responses": int(len(self.stimuli_below_min)),
            "stimuli_below_min_examples": [str(s) for s in self.stimuli_below_min.index[:20]],
            "notes": list(self.notes),
        }


def apply_exclusions(trials: pd.DataFrame, catch_threshold: float = 0.7,
                     min_responses: int = 3) -> ExclusionResult:
    """Score catch trials, exclude participants at or below the threshold, drop catch trials."""
    is_catch = trials["is_catch"].to_numpy(dtype=bool)
    true_label = trials["true_label"]
    scored = is_catch & true_label.notna().to_numpy()
    correct = scored & (trials["response"].to_numpy() == true_label.fillna(-1).to_numpy(dtype=np.int64))
    by = trials["participant"]
    catch = pd.DataFrame({"n_catch": is_catch, "n_scored": scored, "n_correct": correct}).groupby(
        by.to_numpy(), sort=False).sum().astype(np.int64)
    catch.index.name = "participant"
    with np.errstate(invalid="ignore", divide="ignore"):
        catch["accuracy"] = catch["n_correct"] / catch["n_scored"].where(catch["n_scored"] > 0)
    catch["excluded"] = (catch["accuracy"] <= catch_threshold).fillna(False).astype(bool)
    notes = []
    unscored = int((is_catch & ~scored).sum())
    if unscored:
        notes.append(f"{unscored} catch trials have no true_label and are not scored")
    if is_catch.any():
        without = int((catch["n_scored"] == 0).sum())
        if without:
            notes.append(f"{without} participants have no scored catch trials and are kept")
    else:
        notes.append("no catch trials: no participant excluded on accuracy")
    keep = ~is_catch & ~by.isin(catch.index[catch["excluded"]]).to_numpy()
    kept = trials[keep]
    n = kept["stimulus"].value_counts()
    below = n[n < min_responses].sort_index()
    return ExclusionResult(catch, catch_threshold, kept, min_responses, below, notes)
