"""Active stimulus design: which stimulus teaches most about this participant next.

The participant model is a finite set of M *hypotheses* about how this person answers; each is a
candidate observer model h = (base model, cluster prototype, temperature, lapse) and gives, for every
stimulus s, a choice distribution p(r | s, h) over the C classes — the same observer equation that
:mod:`perceptlab.analysis.simulate` uses for synthetic participants (softmax((log p_model + bias) / T)
mixed with a uniform lapse; :func:`~perceptlab.analysis.simulate.choice_probabilities`). The state is a
posterior w over the hypotheses (uniform prior), updated by Bayes' rule after every answer.

Selection (``method="bald"``): the stimulus with the largest expected information gain about the
hypothesis, I(r; h | s) = H(sum_h w_h p(.|s,h)) - sum_h w_h H(p(.|s,h)) (nats) — the mutual information
between the next response and the hypothesis, i.e. the expected reduction of the posterior's entropy
(BALD). Stimuli where every plausible hypothesis predicts the same answer score ~0, however ambiguous
they are to the models. ``method="random"`` draws uniformly from the remaining pool (the baseline;
its gain is still reported). Both are seeded.

Where the hypotheses come from:

- the zoo models' probabilities stored in a stimulus library (``Stimulus.probs``; computed with the
  registry for stimuli that lack a model) — :meth:`ActiveSelector.from_library`;
- cluster prototypes (bias vectors over the classes) learnt from earlier participants' trials:
  :func:`learn_prototypes` clusters them by agreement (:mod:`perceptlab.analysis.clustering`) and fits one
  bias vector per cluster by maximum likelihood; without prototypes a single zero bias is used;
- a grid of personal temperatures (:data:`DEFAULT_TEMPERATURES`) and one lapse rate.

New stimuli can be generated on demand where the candidate observer models disagree:
:func:`generate_candidates` runs the controversial sampler between the two base models the posterior is
most torn between and adds the images to the pool (needs the engine, i.e. torch).

Python API for the experiment runner (call from a worker thread — the methods hold a lock; no Qt here)::

    sel = ActiveSelector.from_library("lib/", ["vgg", "cornet", "mlp"], prototypes=protos)
    for sid, resp in answered_so_far:
        sel.observe(sid, resp)              # resp: class name (or class index)
    sid, gain = sel.next(exclude=shown)     # < 200 ms for 2,000 stimuli x 50 hypotheses
    sel.ranked(10)                          # [(id, gain), ...] best first
    sel = ActiveSelector.from_design(design)  # a perceptlab-design/1 "adaptive" block: pool, method
    sel.predict([sid])                      # posterior-predictive choice probabilities (n, C)
    sel.posterior(); sel.marginal("cluster")

``next`` never returns an observed stimulus (each stimulus is shown once) nor one outside ``candidates``
(the selection pool; other stimuli can still be predicted, e.g. held-out ones).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import entr

from perceptlab.analysis.simulate import choice_probabilities
from perceptlab.errors import PerceptLabError

METHODS = ("bald", "random")
DEFAULT_TEMPERATURES = (0.7, 0.9, 1.1, 1.4)
DEFAULT_LAPSE = 0.02
_EPS = 1e-12


@dataclass(frozen=True)
class Hypothesis:
    """One candidate observer model: base model, cluster (None = no bias), temperature and lapse."""

    model: str
    cluster: int | None
    temperature: float
    lapse: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def hypothesis_probs(model_probs: Mapping[str, np.ndarray], prototypes: np.ndarray | None = None,
                     temperatures: Sequence[float] = DEFAULT_TEMPERATURES,
                     lapse: float = DEFAULT_LAPSE) -> tuple[np.ndarray, list[Hypothesis]]:
    """Choice probabilities (N, M, C) of the hypotheses models x clusters x temperatures, and their
    labels. ``model_probs``: model name -> (N, C) class probabilities of the same N stimuli;
    ``prototypes``: (K, C) cluster bias vectors (clusters numbered 1..K), or None for one zero bias."""
    if not model_probs:
        raise PerceptLabError("no candidate observer models given", fix="name at least one model")
    shapes = {name: np.shape(p) for name, p in model_probs.items()}
    if len({s for s in shapes.values()}) != 1 or len(next(iter(shapes.values()))) != 2:
        raise PerceptLabError(f"the models' probabilities differ in shape: {shapes}",
                              fix="give every model an (N stimuli, C classes) array over the same stimuli")
    c = next(iter(shapes.values()))[1]
    if prototypes is None:
        biases: list[tuple[int | None, np.ndarray]] = [(None, np.zeros(c))]
    else:
        prototypes = np.asarray(prototypes, dtype=float)
        if prototypes.ndim != 2 or prototypes.shape[1] != c:
            raise PerceptLabError(f"prototypes of shape {prototypes.shape} for {c} classes",
                                  fix=f"give a (K, {c}) array of bias vectors")
        biases = [(k + 1, prototypes[k]) for k in range(len(prototypes))]
    if not temperatures or min(temperatures) <= 0:
        raise PerceptLabError(f"temperatures {list(temperatures)}", fix="give positive temperatures")
    if not 0 <= lapse < 1:
        raise PerceptLabError(f"lapse rate {lapse}", fix="give a lapse rate in [0, 1)")
    out, labels = [], []
    for name, p in model_probs.items():
        for k, bias in biases:
            for t in temperatures:
                out.append(choice_probabilities(p, bias, float(t), float(lapse)))
                labels.append(Hypothesis(str(name), k, float(t), float(lapse)))
    return np.stack(out, axis=1), labels


def _entropy(p: np.ndarray, axis: int = -1) -> np.ndarray:
    """Shannon entropy in nats along ``axis``."""
    return entr(p).sum(axis=axis)


class ActiveSelector:
    """Posterior over candidate observer models and BALD/random selection (see the module docstring).

    ``pool_probs``: (N stimuli, M hypotheses, C classes) choice probabilities; ``stimulus_ids``: the N
    ids; ``classes``: the C class names; ``hypotheses``: M labels (default: ``h1..hM``); ``prior``: (M,)
    weights (default uniform); ``candidates``: the ids ``next`` may pick (default all).
    """

    def __init__(self, pool_probs: np.ndarray, stimulus_ids: Sequence[str], classes: Sequence[str],
                 seed: int = 0, method: str = "bald", *, hypotheses: Sequence[Any] | None = None,
                 prior: np.ndarray | None = None, candidates: Iterable[str] | None = None):
        if method not in METHODS:
            raise PerceptLabError(f"unknown selection method {method!r}", fix=f"use one of {', '.join(METHODS)}")
        probs = np.asarray(pool_probs, dtype=float)
        if probs.ndim != 3:
            raise PerceptLabError(f"pool probabilities of shape {probs.shape}",
                                  fix="give an (N stimuli, M hypotheses, C classes) array")
        n, m, c = probs.shape
        ids = [str(s) for s in stimulus_ids]
        if len(ids) != n:
            raise PerceptLabError(f"{len(ids)} stimulus ids for {n} rows of probabilities")
        if len(set(ids)) != n:
            raise PerceptLabError("stimulus ids repeat", fix="give each stimulus one row")
        self.classes = tuple(str(x) for x in classes)
        if len(self.classes) != c:
            raise PerceptLabError(f"{len(self.classes)} class names for {c} columns of probabilities")
        self.hypotheses = list(hypotheses) if hypotheses is not None else [f"h{i + 1}" for i in range(m)]
        if len(self.hypotheses) != m:
            raise PerceptLabError(f"{len(self.hypotheses)} hypothesis labels for {m} hypotheses")
        self.method = method
        self.seed = seed
        # set by from_model_probs (what generate_candidates needs to score new stimuli)
        self.prototypes: np.ndarray | None = None
        self.temperatures: tuple[float, ...] | None = None
        self.lapse: float | None = None
        self._rng = np.random.default_rng(seed)
        self._ids: list[str] = []
        self._index: dict[str, int] = {}
        self._pt = np.zeros((0, c, m))  # (N, C, M): pbar = pt @ w
        self._logp = np.zeros((0, m, c))
        self._h = np.zeros((0, m))
        self._pool = np.zeros(0, dtype=bool)
        self._seen = np.zeros(0, dtype=bool)
        if prior is None:
            self._logw = np.full(m, -np.log(m))
        else:
            w = np.asarray(prior, dtype=float)
            if w.shape != (m,) or (w < 0).any() or w.sum() <= 0:
                raise PerceptLabError(f"prior of shape {w.shape}", fix=f"give {m} non-negative weights")
            self._logw = np.log(np.clip(w / w.sum(), 1e-300, None))
        self.observed: list[tuple[str, str]] = []
        self._lock = threading.RLock()  # observe/next/add_stimuli from a worker thread and the GUI
        self.add_stimuli(ids, probs, candidate=True)
        if candidates is not None:
            self.set_candidates(candidates)

    # ------------------------------------------------------------------ the pool

    def add_stimuli(self, stimulus_ids: Sequence[str], pool_probs: np.ndarray, candidate: bool = True) -> None:
        """Append stimuli (ids new to the selector) with their (n, M, C) probabilities."""
        probs = np.asarray(pool_probs, dtype=float)
        m, c = len(self.hypotheses), len(self.classes)
        ids = [str(s) for s in stimulus_ids]
        if probs.shape != (len(ids), m, c):
            raise PerceptLabError(f"probabilities of shape {probs.shape} for {len(ids)} stimuli",
                                  fix=f"give an ({len(ids)}, {m}, {c}) array")
        if not np.isfinite(probs).all() or (probs < 0).any():
            raise PerceptLabError("the choice probabilities hold negative or non-finite values")
        dup = [s for s in ids if s in self._index]
        if dup or len(set(ids)) != len(ids):
            raise PerceptLabError(f"stimulus ids already in the pool or repeated: {', '.join((dup or ids)[:5])}")
        probs = np.clip(probs, _EPS, None)
        probs /= probs.sum(axis=2, keepdims=True)
        with self._lock:
            self._append(ids, probs, candidate)

    def _append(self, ids: list[str], probs: np.ndarray, candidate: bool) -> None:
        start = len(self._ids)
        self._ids += ids
        self._index.update({s: start + i for i, s in enumerate(ids)})
        self._pt = np.concatenate([self._pt, probs.transpose(0, 2, 1)])
        self._logp = np.concatenate([self._logp, np.log(probs)])
        self._h = np.concatenate([self._h, _entropy(probs)])
        self._pool = np.concatenate([self._pool, np.full(len(ids), bool(candidate))])
        self._seen = np.concatenate([self._seen, np.zeros(len(ids), dtype=bool)])

    def set_candidates(self, stimulus_ids: Iterable[str]) -> None:
        """Restrict ``next`` to these ids (the selection pool)."""
        with self._lock:
            idx = self._indices(stimulus_ids)
            self._pool[:] = False
            self._pool[idx] = True

    @property
    def stimulus_ids(self) -> list[str]:
        return list(self._ids)

    def _indices(self, stimulus_ids: Iterable[str]) -> np.ndarray:
        ids = [str(s) for s in stimulus_ids]
        unknown = [s for s in ids if s not in self._index]
        if unknown:
            raise PerceptLabError(f"unknown stimulus id(s): {', '.join(unknown[:5])}"
                                  + (f" (+{len(unknown) - 5} more)" if len(unknown) > 5 else ""),
                                  fix="use ids of the selector's pool (e.g. the library's stimulus ids)")
        return np.fromiter((self._index[s] for s in ids), dtype=np.int64, count=len(ids))

    # ------------------------------------------------------------------ the posterior

    def class_index(self, response: str | int) -> int:
        """A response as a class index: a class name, or an integer index into the classes."""
        name = str(response).strip()
        if name in self.classes:
            return self.classes.index(name)
        if isinstance(response, (int, np.integer)) and 0 <= int(response) < len(self.classes):
            return int(response)
        raise PerceptLabError(f"response {response!r} is not one of the classes {', '.join(self.classes)}",
                              fix="answer with a class name of the design/library")

    def observe(self, stimulus_id: str, response: str | int) -> None:
        """Bayes update with one answer (``response``: class name or index)."""
        c = self.class_index(response)
        with self._lock:
            i = int(self._indices([stimulus_id])[0])
            logw = self._logw + self._logp[i, :, c]
            self._logw = logw - np.logaddexp.reduce(logw)
            self._seen[i] = True
            self.observed.append((str(stimulus_id), self.classes[c]))

    def posterior(self) -> np.ndarray:
        """Posterior weights over the M hypotheses (sum 1)."""
        return np.exp(self._logw)

    def marginal(self, field: str) -> dict[Any, float]:
        """Posterior summed over the hypotheses sharing ``field`` (e.g. "model", "cluster", "temperature");
        needs :class:`Hypothesis` labels."""
        out: dict[Any, float] = {}
        for h, w in zip(self.hypotheses, self.posterior()):
            if not isinstance(h, Hypothesis):
                raise PerceptLabError("the hypotheses carry no labels", fix="build the selector with Hypothesis labels")
            key = getattr(h, field)
            out[key] = out.get(key, 0.0) + float(w)
        return out

    def posterior_entropy(self) -> float:
        """Entropy of the posterior over hypotheses (nats)."""
        w = self.posterior()
        return float(_entropy(w))

    def predict(self, stimulus_ids: Sequence[str]) -> np.ndarray:
        """Posterior-predictive choice probabilities (n, C) of the participant on these stimuli."""
        with self._lock:
            idx = self._indices(stimulus_ids)
            return self._pt[idx] @ self.posterior()

    # ------------------------------------------------------------------ selection

    def gains(self) -> np.ndarray:
        """Expected information gain (nats) of every stimulus of the selector, in ``stimulus_ids`` order."""
        w = self.posterior()
        pbar = self._pt @ w  # (N, C)
        return np.maximum(_entropy(pbar) - self._h @ w, 0.0)

    def _available(self, exclude: Iterable[str]) -> np.ndarray:
        ok = self._pool & ~self._seen
        ex = [s for s in exclude if s in self._index]
        if ex:
            ok[self._indices(ex)] = False
        return ok

    def next(self, exclude: Iterable[str] = ()) -> tuple[str, float]:
        """The next stimulus and its expected information gain (nats); observed and excluded ids are
        never returned. BALD breaks ties at random (seeded); random draws uniformly."""
        with self._lock:
            avail = np.flatnonzero(self._available(exclude))
            if not len(avail):
                raise PerceptLabError("no stimulus left in the pool", fix="add stimuli or allow repeats via a new pool")
            g = self.gains()[avail]
            if self.method == "random":
                j = int(self._rng.integers(len(avail)))
            else:
                best = np.flatnonzero(g >= g.max() - 1e-12)
                j = int(best[self._rng.integers(len(best))]) if len(best) > 1 else int(best[0])
            return self._ids[int(avail[j])], float(g[j])

    def ranked(self, k: int | None = None, exclude: Iterable[str] = ()) -> list[tuple[str, float]]:
        """The remaining pool ranked by expected information gain, best first (``k`` best)."""
        with self._lock:
            avail = np.flatnonzero(self._available(exclude))
            g = self.gains()[avail]
        order = np.argsort(-g, kind="stable")[: len(g) if k is None else k]
        return [(self._ids[int(avail[j])], float(g[j])) for j in order]

    # ------------------------------------------------------------------ constructors

    @classmethod
    def from_model_probs(cls, model_probs: Mapping[str, np.ndarray], stimulus_ids: Sequence[str],
                         classes: Sequence[str], *, prototypes: np.ndarray | None = None,
                         temperatures: Sequence[float] = DEFAULT_TEMPERATURES, lapse: float = DEFAULT_LAPSE,
                         seed: int = 0, method: str = "bald", candidates: Iterable[str] | None = None,
                         ) -> ActiveSelector:
        """Hypotheses models x prototypes x temperatures from each model's (N, C) probabilities."""
        probs, labels = hypothesis_probs(model_probs, prototypes, temperatures, lapse)
        sel = cls(probs, stimulus_ids, classes, seed, method, hypotheses=labels, candidates=candidates)
        sel.prototypes = None if prototypes is None else np.asarray(prototypes, dtype=float)
        sel.temperatures, sel.lapse = tuple(temperatures), float(lapse)
        return sel

    @classmethod
    def from_library(cls, library: str | os.PathLike[str] | Any, model_names: Sequence[str],
                     registry: Any = None, classes: Sequence[str] | None = None, *,
                     prototypes: np.ndarray | None = None, temperatures: Sequence[float] = DEFAULT_TEMPERATURES,
                     lapse: float = DEFAULT_LAPSE, seed: int = 0, method: str = "bald",
                     include_rejected: bool = False) -> ActiveSelector:
        """A selector over a library's stimuli (rejected ones left out unless asked): the probabilities
        the library stores per model, computed with ``registry`` (default: the default registry; needs
        torch) for stimuli that lack a model. ``classes`` default to "0".."C-1"."""
        ids, model_probs = library_model_probs(library, model_names, registry, include_rejected)
        c = next(iter(model_probs.values())).shape[1]
        classes = tuple(classes) if classes is not None else tuple(str(i) for i in range(c))
        return cls.from_model_probs(model_probs, ids, classes, prototypes=prototypes, temperatures=temperatures,
                                    lapse=lapse, seed=seed, method=method)

    @classmethod
    def from_design(cls, design: Any, library: str | os.PathLike[str] | Any | None = None,
                    models: Sequence[str] | None = None, registry: Any = None, *,
                    prototypes: np.ndarray | None = None, temperatures: Sequence[float] = DEFAULT_TEMPERATURES,
                    lapse: float = DEFAULT_LAPSE) -> ActiveSelector:
        """The selector of a design's ``adaptive`` block (perceptlab-design/1): the design's library
        (or ``library``) and classes, the block's ``pool`` as the candidates, its ``method`` (default
        bald), ``models`` (the block's "models" key, else vgg, cornet, mlp) and the design's
        ``order_seed``. The runner calls ``observe`` after each answer and ``next`` for the next trial."""
        ad = getattr(design, "adaptive", None)
        if not ad:
            raise PerceptLabError(f"design {getattr(design, 'name', '')!r} has no 'adaptive' block",
                                  fix='add "adaptive": {"method": "bald", "n_trials": N, "pool": [ids]}')
        lib = library if library is not None else design.library
        if lib is None:
            raise PerceptLabError("the adaptive design names no library", fix="set the design's 'library'")
        names = list(models or ad.get("models") or ("vgg", "cornet", "mlp"))
        sel = cls.from_library(lib, names, registry, list(design.classes), prototypes=prototypes,
                               temperatures=temperatures, lapse=lapse, seed=int(design.order_seed),
                               method=str(ad.get("method", "bald")))
        missing = [s for s in ad["pool"] if s not in sel._index]
        if missing:
            raise PerceptLabError(f"the adaptive pool names {len(missing)} stimuli the library does not hold "
                                  f"(or holds as rejected): {', '.join(map(str, missing[:5]))}",
                                  fix="use ids of the library's usable stimuli")
        sel.set_candidates(ad["pool"])
        return sel


def library_model_probs(library: str | os.PathLike[str] | Any, model_names: Sequence[str], registry: Any = None,
                        include_rejected: bool = False) -> tuple[list[str], dict[str, np.ndarray]]:
    """(ids, {model: (N, C) probabilities}) of a library's stimuli: stored probabilities where every
    stimulus has them, else computed for the missing ones with the registry (imports the engine)."""
    from perceptlab.data.library import StimulusLibrary  # noqa: PLC0415

    if not model_names:
        raise PerceptLabError("no models named", fix="name the candidate observer models (e.g. --models vgg,cornet)")
    own = not isinstance(library, StimulusLibrary)
    lib = StimulusLibrary.open(Path(library)) if own else library
    try:
        recs = [r for r in lib.records() if include_rejected or r.status != "rejected"]
        if not recs:
            raise PerceptLabError(f"{lib.path}: the library has no usable stimuli",
                                  fix="generate or import stimuli first (rejected ones are left out)")
        ids = [r.id for r in recs]
        out: dict[str, np.ndarray] = {}
        for name in model_names:
            missing = [i for i, r in enumerate(recs) if name not in r.probs]
            rows = [r.probs.get(name) for r in recs]
            if missing:
                try:
                    from perceptlab.engine.registry import predict_probs  # noqa: PLC0415
                except ImportError as exc:
                    raise PerceptLabError(f"{len(missing)} stimuli lack stored probabilities of {name!r} and "
                                          f"the engine cannot be loaded: {exc}", fix="install torch") from None
                images = np.stack([lib.image(ids[i]) for i in missing])
                computed = predict_probs(name, images, registry)
                for j, i in enumerate(missing):
                    rows[i] = computed[j]
            out[name] = np.asarray(rows, dtype=float)
        return ids, out
    finally:
        if own:
            lib.close()


# ---------------------------------------------------------------------- prototypes from earlier participants


def fit_bias(probs: np.ndarray, responses: np.ndarray, l2: float = 1e-3) -> np.ndarray:
    """The zero-mean bias vector b maximising sum log softmax(log p_s + b)[r_s] - l2 |b|^2 (L-BFGS)."""
    from scipy.optimize import minimize  # noqa: PLC0415

    logp = np.log(np.clip(np.asarray(probs, float), _EPS, None))
    r = np.asarray(responses, dtype=np.int64)
    n, c = logp.shape
    onehot = np.zeros((n, c))
    onehot[np.arange(n), r] = 1.0

    def f(b: np.ndarray) -> tuple[float, np.ndarray]:
        z = logp + b
        z -= z.max(axis=1, keepdims=True)
        lse = np.log(np.exp(z).sum(axis=1))
        q = np.exp(z - lse[:, None])
        nll = -(z[np.arange(n), r] - lse).sum() + l2 * n * (b @ b)
        return float(nll), (q - onehot).sum(axis=0) + 2 * l2 * n * b

    b = minimize(f, np.zeros(c), jac=True, method="L-BFGS-B").x
    return b - b.mean()


@dataclass
class Prototypes:
    """Cluster bias vectors (K, C) learnt from earlier participants, and who is in which cluster."""

    prototypes: np.ndarray
    labels: dict[str, int]  # participant -> cluster 1..K
    verdict: str


def learn_prototypes(trials: Any, probs: Mapping[str, np.ndarray] | np.ndarray, stimulus_ids: Sequence[str],
                     k: int | None = None, min_overlap: int = 5) -> Prototypes:
    """Cluster earlier participants by agreement and fit one bias vector per cluster against ``probs``
    (the reference model's (N, C) probabilities over ``stimulus_ids``). ``trials``: a frame with
    ``participant, stimulus, response`` (stimulus = an id of ``stimulus_ids``, response = class index).
    An unreliable clustering (silhouette below the floor) raises: use no prototypes then."""
    import pandas as pd  # noqa: PLC0415

    from perceptlab.analysis.clustering import cluster_participants  # noqa: PLC0415

    df = pd.DataFrame(trials)[["participant", "stimulus", "response"]].copy()
    df["stimulus"] = df["stimulus"].astype(str)
    index = {str(s): i for i, s in enumerate(stimulus_ids)}
    df = df[df["stimulus"].isin(index)]
    res = cluster_participants(df, k=k, min_overlap=min_overlap)
    if not res.reliable and k is None:
        raise PerceptLabError(f"earlier participants: {res.verdict}",
                              fix="select without cluster prototypes, or collect more overlapping trials")
    p = np.asarray(probs, dtype=float)
    labels = {str(a): int(b) for a, b in res.labels.items()}
    df = df[df["participant"].astype(str).isin(labels)]
    cl = df["participant"].astype(str).map(labels).to_numpy()
    rows = df["stimulus"].map(index).to_numpy()
    resp = df["response"].to_numpy(dtype=np.int64)
    protos = np.stack([fit_bias(p[rows[cl == c]], resp[cl == c]) for c in range(1, res.k + 1)])
    return Prototypes(protos, labels, res.verdict)


# ---------------------------------------------------------------------- generated on demand


def torn_models(selector: ActiveSelector) -> tuple[str, str]:
    """The two base models with the largest posterior mass (the pair the posterior is most torn between)."""
    marg = selector.marginal("model")
    if len(marg) < 2:
        raise PerceptLabError("controversial candidates need two candidate observer models; the selector has "
                              f"{len(marg)} ({', '.join(map(str, marg))})", fix="build it with --models a,b,...")
    a, b = sorted(marg, key=lambda name: -marg[name])[:2]
    return str(a), str(b)


def generate_candidates(selector: ActiveSelector, k: int, *, registry: Any = None, library: Any = None,
                        pair: tuple[int, int] | None = None, settings: Any = None, seed: int = 0,
                        device: str = "cpu") -> list[str]:
    """Generate ``k`` new stimuli (one batch, no filtering rounds) with the controversial sampler between
    the two models the posterior is most torn between (:func:`torn_models`) for ``pair`` (default: the
    two most probable classes of the best pool stimulus under the posterior predictive), score them with
    every hypothesis model and add them to the pool as candidates. With ``library`` (an open
    :class:`~perceptlab.data.library.StimulusLibrary`) they are stored there and keep their library ids;
    otherwise the ids are ``gen-<seed>-<i>``. ``settings``: :class:`~perceptlab.engine.sampler.SamplerSettings`
    to start from (default: the ``fast`` preset); mode, classifiers, pair and seed are set here. Needs
    the engine (torch). Returns the new ids."""
    from perceptlab.engine.filters import FilterSettings  # noqa: PLC0415
    from perceptlab.engine.generate import make_batch_runner  # noqa: PLC0415
    from perceptlab.engine.registry import default_registry, predict_probs  # noqa: PLC0415
    from perceptlab.engine.sampler import SamplerSettings  # noqa: PLC0415

    if selector.temperatures is None:
        raise PerceptLabError("the selector was not built from model probabilities",
                              fix="build it with ActiveSelector.from_model_probs or from_library")
    if k < 1:
        raise PerceptLabError(f"{k} candidates asked", fix="ask for at least one")
    registry = registry or default_registry()
    m1, m2 = torn_models(selector)
    if pair is None:
        (best, _), = selector.ranked(1)  # the most informative stimulus; next() would draw (random method)
        top = np.argsort(-selector.predict([best])[0])[:2]
        pair = (int(top[0]), int(top[1]))
    pair = (int(pair[0]), int(pair[1]))
    base = settings if settings is not None else SamplerSettings.from_preset()
    settings = base.replace(mode="controversial", classifier=m1, classifier2=m2, pairs=[pair], seed=seed,
                            batch_size=k).validate()
    run_batch = make_batch_runner(settings, FilterSettings(), registry, device, None, keep=True)
    gen = run_batch([pair] * k, [seed + i for i in range(k)])
    try:
        while True:
            next(gen)
    except StopIteration as stop:
        outcome = stop.value
    if not outcome.records:
        raise PerceptLabError(f"the controversial sampler ({m1} vs {m2}) produced no valid image",
                              fix="try another seed or more sampling steps")
    if library is not None:
        ids = library.add(outcome.records, outcome.images)
    else:
        ids = [f"gen-{seed}-{i}" for i in range(len(outcome.records))]
    models = list(dict.fromkeys(h.model for h in selector.hypotheses))
    mp = {name: np.asarray(predict_probs(name, outcome.images, registry), dtype=float) for name in models}
    probs, labels = hypothesis_probs(mp, selector.prototypes, selector.temperatures, selector.lapse)
    if labels != selector.hypotheses:
        raise PerceptLabError("the generated stimuli's hypotheses do not match the selector's")
    selector.add_stimuli(ids, probs)
    return list(ids)
