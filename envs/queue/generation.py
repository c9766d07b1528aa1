"""Generating the synthetic experiment dataset: a world, its assessor labels, the click model
of its historical log, then candidate experiments until the dataset is full (see
:func:`generate_dataset`)."""

from __future__ import annotations

import functools
import sys
import threading
import time
from typing import NamedTuple

import numpy as np

from labsched.envs._lib.validation import check_generator
from labsched.envs.queue.click_model import SDBNModel, train_sdbn
from labsched.envs.queue.dataset import ExperimentDataset, readonly_copy
from labsched.envs.queue.feature_vectors import feature_context, feature_names, features_of
from labsched.envs.queue.records import CandidateRanker, InterleavingTable
from labsched.envs.queue.search_world import SearchWorld
from labsched.envs.queue.significance import (
    ABOutcome,
    InterleavingOutcome,
    ab_power,
    ab_test,
    interleaving_power,
    interleaving_test,
)
from labsched.envs.queue.world_spec import QueueWorldSpec

__all__ = ["SLOW_GENERATION_SECONDS", "cached_dataset", "generate_dataset"]

_MAX_CANDIDATES_PER_EXPERIMENT = 200


class _Drawn(NamedTuple):
    """One candidate experiment with its deployment size, outcome law and realised run."""

    candidate: CandidateRanker
    interactions: int
    probs: np.ndarray
    run: InterleavingOutcome | ABOutcome
    table: InterleavingTable | None


def _draw_interactions(spec: QueueWorldSpec, rng: np.random.Generator) -> int:
    n = spec.interactions_median * np.exp(spec.interactions_sigma * rng.standard_normal())
    return int(np.clip(np.rint(n), spec.interactions_min, spec.interactions_max))


def _frozen_sdbn(world: SearchWorld, rng: np.random.Generator) -> SDBNModel:
    """The sDBN trained on a fresh historical click log of ``world`` (arrays read-only)."""
    log = world.simulate_log(world.spec.log_sessions, rng)
    sdbn = train_sdbn(log, world.n_queries, world.n_docs)
    for arr in (sdbn.attractiveness, sdbn.satisfaction, sdbn.a_num, sdbn.a_den, sdbn.s_num, sdbn.s_den):
        arr.flags.writeable = False
    sdbn.query_sessions.flags.writeable = False
    return sdbn


def _draw_one(world: SearchWorld, ctr_a: float, rng: np.random.Generator) -> _Drawn:
    """A candidate, its deployment size, its exact session law and one full-size run."""
    spec = world.spec
    alpha = spec.significance_level
    cand = world.draw_candidate(rng)
    n = _draw_interactions(spec, rng)
    table = None
    if spec.experiment_type == "interleaving":
        table = world.interleaving_table(cand.ranking)
        probs = world.interleaving_probabilities(cand.ranking, table=table)
        probs = probs / probs.sum()
        c = rng.multinomial(n, probs)
        run = interleaving_test(c[0], c[1], c[2], alpha)
    else:
        probs = np.array([ctr_a, world.click_through_rate(cand.ranking)])
        na = n // 2
        run = ab_test(na, rng.binomial(na, probs[0]), n - na, rng.binomial(n - na, probs[1]), alpha)
    return _Drawn(cand, n, probs, run, table)


def _draw_experiments(world: SearchWorld, rng: np.random.Generator) -> list[_Drawn]:
    """Candidates until the dataset is full (stratified by success with ``fix_success_count``)."""
    spec = world.spec
    ctr_a = world.click_through_rate(world.production_ranking)
    n_exp = spec.n_experiments
    quota = {True: spec.n_successful, False: n_exp - spec.n_successful} if spec.fix_success_count else None
    kept: list[_Drawn] = []
    tried = 0
    while len(kept) < n_exp:
        if tried >= _MAX_CANDIDATES_PER_EXPERIMENT * n_exp:
            raise RuntimeError(
                f"generated {tried} candidate experiments without filling the quotas of "
                f"{spec.n_successful} successful / {n_exp - spec.n_successful} unsuccessful experiments; "
                "adjust QueueWorldSpec.success_share or the effect distribution (effect_mean, effect_sd)"
            )
        tried += 1
        drawn = _draw_one(world, ctr_a, rng)
        ok = bool(drawn.run.success)
        if quota is not None:
            if quota[ok] == 0:
                continue
            quota[ok] -= 1
        kept.append(drawn)
    return kept


def _assemble(
    world: SearchWorld, labels: np.ndarray, sdbn: SDBNModel, kept: list[_Drawn]
) -> ExperimentDataset:
    """The dataset of the kept experiments (in that order), with features and ground truth."""
    spec = world.spec
    interleaving = spec.experiment_type == "interleaving"
    alpha = spec.significance_level
    ctx = feature_context(world, labels, sdbn)
    features = np.stack([features_of(ctx, k.candidate.ranking, spec.experiment_type, k.table) for k in kept])
    interactions = np.array([k.interactions for k in kept], dtype=np.int64)
    probs = np.stack([k.probs for k in kept])
    effect = 0.5 * (probs[:, 1] - probs[:, 0]) if interleaving else probs[:, 1] - probs[:, 0]
    power = (
        interleaving_power(probs, interactions, alpha)
        if interleaving
        else ab_power(probs, interactions, alpha)
    )
    cls = InterleavingOutcome if interleaving else ABOutcome
    fields = list(zip(*(k.run for k in kept), strict=True))
    return ExperimentDataset(
        spec=spec,
        world=world,
        labels=labels,
        sdbn=sdbn,
        candidates=tuple(k.candidate for k in kept),
        features=readonly_copy(features),
        feature_names=feature_names(spec.experiment_type),
        interactions=readonly_copy(interactions),
        session_probs=readonly_copy(probs),
        effect=readonly_copy(effect),
        success_probability=readonly_copy(power),
        outcome=cls(*(readonly_copy(np.asarray(f)) for f in fields)),
        indices=readonly_copy(np.arange(len(kept))),
    )


def generate_dataset(spec: QueueWorldSpec | None = None, *, rng: np.random.Generator) -> ExperimentDataset:
    """Generate a synthetic experiment dataset from ``spec`` (default ``QueueWorldSpec()``).

    Steps (all randomness from ``rng``): draw the world; the assessor labels; the historical
    click log and its sDBN (Algorithm 1); then candidate experiments one at a time, each with a
    deployment size, its exact session-outcome law and one realised full-size run. With
    ``spec.fix_success_count`` candidates are kept while the quota of their class (successful
    or not) has room, until both quotas are full; otherwise the first ``n_experiments`` are
    kept. The kept experiments are put in random order and their features computed.

    Raises:
        RuntimeError: if ``200 * n_experiments`` candidates do not fill the quotas (the success
            share is unreachable under the spec's effect distribution).
    """
    spec = QueueWorldSpec() if spec is None else spec
    if not isinstance(spec, QueueWorldSpec):
        raise TypeError(f"spec must be a QueueWorldSpec, got {type(spec).__name__}")
    check_generator("rng", rng)
    world = SearchWorld.generate(spec, rng)
    labels = world.judge(rng)
    sdbn = _frozen_sdbn(world, rng)
    kept = _draw_experiments(world, rng)
    order = rng.permutation(spec.n_experiments)
    return _assemble(world, labels, sdbn, [kept[i] for i in order])


#: Seconds after which :func:`cached_dataset` says on stderr that it is generating a world.
SLOW_GENERATION_SECONDS = 1.0


@functools.lru_cache(maxsize=8)
def cached_dataset(spec: QueueWorldSpec | None = None, seed: int = 0) -> ExperimentDataset:
    """``generate_dataset(spec, rng=np.random.default_rng(seed))``, memoised (datasets are
    immutable, so environments built from the same ``(spec, seed)`` share one).

    A generation that takes longer than :data:`SLOW_GENERATION_SECONDS` (the default
    interleaving world takes a few seconds) says so on stderr, once when it is still running
    and once when it is done; later calls in the process return the cached dataset at once.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    kind = (
        (spec or QueueWorldSpec()).experiment_type
        if isinstance(spec, QueueWorldSpec) or spec is None
        else "?"
    )
    said = threading.Event()

    def announce() -> None:
        said.set()
        print(
            f"labsched: generating the synthetic {kind} experiment world (dataset seed {seed}); "
            "done once per process ...",
            file=sys.stderr,
            flush=True,
        )

    timer = threading.Timer(SLOW_GENERATION_SECONDS, announce)
    timer.daemon = True
    t0 = time.perf_counter()
    timer.start()
    try:
        return generate_dataset(spec, rng=np.random.default_rng(int(seed)))
    finally:
        timer.cancel()
        if said.is_set():
            print(
                f"labsched: world generated in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True
            )
