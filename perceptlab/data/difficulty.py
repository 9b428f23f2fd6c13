"""The L-WISE fields of library records, without torch: the true class(es) of a stimulus, its stored
difficulty (the robust model's ground-truth logit, ``settings["difficulty"]``) and its enhancement
provenance (``settings["enhancement"]``). Computed by :mod:`perceptlab.engine.lwise`."""

from __future__ import annotations

from perceptlab.data.library_records import Stimulus
from perceptlab.errors import PerceptLabError


def true_classes(rec: Stimulus) -> list[int]:
    """The class(es) whose logit measures a stimulus's difficulty (see the module docstring)."""
    classes = [c for c in (rec.class_a, rec.class_b) if c is not None]
    if not classes:
        raise PerceptLabError(f"stimulus {rec.id} has no class (class_a is empty)",
                              "difficulty needs the stimulus's label or its target pair")
    return list(dict.fromkeys(classes))


def difficulty_of(rec: Stimulus) -> float | None:
    """The stored ground-truth logit (None: not computed yet)."""
    d = rec.settings.get("difficulty") if isinstance(rec.settings, dict) else None
    return None if not d else d.get("logit")


def logit_for(rec: Stimulus, label: int | None = None) -> float | None:
    """The stored robust logit of ``label`` (default: the ground-truth logit)."""
    d = rec.settings.get("difficulty") if isinstance(rec.settings, dict) else None
    if not d:
        return None
    if label is None:
        return d.get("logit")
    logits = d.get("logits") or []
    return float(logits[label]) if 0 <= label < len(logits) else None


def enhancement_of(rec: Stimulus) -> dict | None:
    """The provenance of an enhanced (or harder) stimulus, None for others."""
    e = rec.settings.get("enhancement") if isinstance(rec.settings, dict) else None
    return e or None


def describe(rec: Stimulus) -> str:
    """One line for the detail pane: difficulty and, for enhanced stimuli, their provenance."""
    parts = []
    d = rec.settings.get("difficulty") if isinstance(rec.settings, dict) else None
    if d:
        classes = d.get("classes") or []
        each = ", ".join(f"{c}: {d['logits'][c]:.2f}" for c in classes if c < len(d.get("logits", [])))
        parts.append(f"difficulty ({d.get('model')} logit) {d.get('logit'):.2f}" + (f" ({each})" if len(classes) > 1 else ""))
    e = enhancement_of(rec)
    if e:
        parts.append(f"{e.get('direction')} of {e.get('source')}: {e.get('norm')} ε = {e.get('eps'):g}, {e.get('steps')} steps")
    return "; ".join(parts)
