"""Batch selection for the Bayesian-optimisation layer: the paper's ``SelectBatch``.

A scheduler decides *when* experiments start; a :class:`Selector` decides *which* inputs they
test.  Given a :class:`~labsched.envs.bo.gp.GaussianProcess` fitted on the completed observations
``O`` and the ``(p, d)`` array of inputs still running (``A``, the pending experiments), a
selector returns ``k`` new inputs::

    selector = make_selector("simulation-matching")
    X_new = selector.select(gp, X_pending, k, rng)        # shape (k, d), inside gp.bounds
    X_new, scores = selector.select(gp, X_pending, k, rng, return_scores=True)

Every selector returns ``k`` points inside ``gp.bounds`` that are pairwise distinct and distinct
from the observed and pending inputs: no two of them, and no new point and old point, are closer
than ``min_distance`` (Euclidean distance in the unit cube, ``u = (x - low) / (high - low)``;
default ``1e-4``).  All randomness comes from the ``numpy.random.Generator`` passed to
:meth:`Selector.select`, so the same seed gives the same batch.  Functions are **maximised**.
Each decision is kept for auditing in ``selector.last_scores``
(:class:`~labsched.envs.bo.scores.SelectionScores`: per returned input its score and the best
candidates of that pick with their values).

Selectors
---------
``"kb-ei"`` (:class:`KrigingBelieverEI`, alias ``"ei"``)
    Greedy expected improvement with fantasy observations (kriging believer or constant liar).
``"thompson"`` (:class:`ThompsonSampling`, alias ``"ts"``)
    Argmax of joint posterior draws over a candidate set.
``"simulation-matching"`` (:class:`SimulationMatching`, alias ``"sm"``)
    The paper's choice (Azimi, Fern & Fern 2010): simulate a sequential policy on posterior
    draws and pick the batch as the weighted k-medoids of the simulated points, with the
    pending inputs as fixed medoids.
``"mes"`` (:class:`MaxValueEntropySearch`, alias ``"max-value-entropy"``)
    Max-value entropy search (Wang & Jegelka 2017), greedy fantasised batches, optionally
    cost-aware (:mod:`labsched.envs.bo.selectors.information`).
``"ivr"`` (:class:`IntegratedVarianceSelector`, alias ``"integrated-variance"``)
    Integrated variance reduction: learn the function everywhere, same batch and cost rules.
``"random"`` (:class:`RandomSelector`)
    Uniform in the box; a floor for comparisons.

Candidates
----------
The model-based selectors search a finite candidate set, drawn afresh on every call (unit-cube
coordinates): a scrambled Sobol' set seeded from ``rng`` (``n_candidates`` points) plus
``n_local`` Gaussian perturbations around the ``n_best`` best observed inputs (standard deviation
``local_scale`` times the GP lengthscale, clipped to the box).  Candidates closer than
``min_distance`` to an observed or pending input, or to another candidate, are dropped.  The
expected-improvement selectors then polish the best few candidates with L-BFGS-B on the
acquisition (analytic gradient), inside the box (:mod:`labsched.envs.bo.candidates`).

Threads
-------
:meth:`Selector.select` runs under a one-thread BLAS limit (``threadpoolctl``) whenever the GP
has ``limit_threads`` set (see :mod:`labsched.envs.bo.linalg`).
"""

from __future__ import annotations

from typing import Any

from labsched.envs._lib.registry import Registry
from labsched.envs.bo.acquisition import expected_improvement
from labsched.envs.bo.kmedoids import KMedoidsResult, k_medoids
from labsched.envs.bo.scores import CandidateScore, PickScores, SelectionScores
from labsched.envs.bo.selectors.base import CandidateSelector, Selector
from labsched.envs.bo.selectors.ei import KrigingBelieverEI
from labsched.envs.bo.selectors.information import (
    InformationSelector,
    IntegratedVarianceSelector,
    MaxValueEntropySearch,
)
from labsched.envs.bo.selectors.simulation_matching import SimulationMatching
from labsched.envs.bo.selectors.thompson import ThompsonSampling
from labsched.envs.bo.selectors.uniform import RandomSelector

__all__ = [
    "SELECTORS",
    "CandidateScore",
    "CandidateSelector",
    "InformationSelector",
    "IntegratedVarianceSelector",
    "KMedoidsResult",
    "KrigingBelieverEI",
    "MaxValueEntropySearch",
    "PickScores",
    "RandomSelector",
    "SelectionScores",
    "Selector",
    "SimulationMatching",
    "ThompsonSampling",
    "expected_improvement",
    "k_medoids",
    "make_selector",
]

#: The registered selector classes by name (case-insensitive; ``_`` and blanks read as ``-``).
SELECTORS: Registry[type[Selector]] = Registry("selector")
SELECTORS.add("kb-ei", KrigingBelieverEI, aliases=("ei",))
SELECTORS.add("thompson", ThompsonSampling, aliases=("ts",))
SELECTORS.add("simulation-matching", SimulationMatching, aliases=("sm",))
SELECTORS.add("mes", MaxValueEntropySearch, aliases=("max-value-entropy",))
SELECTORS.add("ivr", IntegratedVarianceSelector, aliases=("integrated-variance",))
SELECTORS.add("random", RandomSelector)


def make_selector(spec: Any, **options: Any) -> Selector:
    """A selector from a registered name, a :class:`Selector` subclass or an instance.

    Names are case-insensitive, with ``_`` or spaces read as ``-``: ``"kb-ei"`` (alias ``"ei"``),
    ``"thompson"`` (``"ts"``), ``"simulation-matching"`` (``"sm"``), ``"mes"``, ``"ivr"`` and
    ``"random"``.  ``options`` go to the constructor.  An instance is returned as is (options are
    then an error).  An unknown name raises ``ValueError`` listing the known names and the
    closest ones.
    """
    if isinstance(spec, Selector):
        if options:
            raise ValueError("options cannot be given together with a Selector instance")
        return spec
    if isinstance(spec, type) and issubclass(spec, Selector):
        return spec(**options)
    if not isinstance(spec, str):
        raise TypeError(f"spec must be a selector name or a Selector, got {type(spec).__name__}")
    key = "-".join(spec.strip().lower().replace("_", "-").split())
    try:
        cls = SELECTORS.get(key)
    except ValueError as exc:
        raise ValueError(str(exc).replace(repr(key), repr(spec), 1)) from None
    return cls(**options)
