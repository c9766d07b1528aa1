"""The true users of the queue world (``envs/queue/users.py``): exact laws against brute force
and simulation, order sensitivity of the click-through rate, and the sDBN's imperfect fit."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from labsched.envs.queue.click_model import train_sdbn
from labsched.envs.queue.interleaving import (
    cascade_clicks,
    independent_clicks_outcome_distribution,
    interleaving_outcome_distribution,
)
from labsched.envs.queue.search_world import SearchWorld
from labsched.envs.queue.users import BrowsingModel
from labsched.envs.queue.world_spec import QueueWorldSpec

SMALL = QueueWorldSpec(n_queries=150, docs_per_query=12, log_sessions=5_000, n_experiments=10)


def _brute_force_cascade(a, s, teams, stop_skip, stop_click):
    """Enumerate (attracted, satisfied, quits) at every position of a short list."""
    probs = np.zeros(3)
    m = len(a)
    for events in itertools.product(range(8), repeat=m):
        p, diff, stopped = 1.0, 0, False
        for r, e in enumerate(events):
            attracted, satisfied, quits = e & 1, (e >> 1) & 1, (e >> 2) & 1
            q = stop_click[r] if attracted else stop_skip[r]
            p *= (
                (a[r] if attracted else 1 - a[r])
                * (s[r] if satisfied else 1 - s[r])
                * (q if quits else 1 - q)
            )
            if not stopped:
                diff += teams[r] if attracted else 0
                stopped = bool((attracted and satisfied) or quits)
        probs[0 if diff < 0 else 1 if diff > 0 else 2] += p
    return probs


def _brute_force_independent(p, teams):
    probs = np.zeros(3)
    for clicks in itertools.product([0, 1], repeat=len(p)):
        pr = np.prod([p[r] if c else 1 - p[r] for r, c in enumerate(clicks)])
        diff = sum(t for t, c in zip(teams, clicks, strict=True) if c)
        probs[0 if diff < 0 else 1 if diff > 0 else 2] += pr
    return probs


def test_cascade_with_abandonment_law_matches_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(15):
        a, s, skip, click = rng.random((4, 4))
        teams = rng.choice([-1, 1, 0], size=4)
        exact = interleaving_outcome_distribution(a, s, teams, stop_skip=skip, stop_click=click)
        np.testing.assert_allclose(exact, _brute_force_cascade(a, s, teams, skip, click), atol=1e-12)
        # zero stopping probabilities are the sDBN
        np.testing.assert_allclose(
            interleaving_outcome_distribution(a, s, teams, stop_skip=np.zeros(4), stop_click=np.zeros(4)),
            interleaving_outcome_distribution(a, s, teams),
            atol=1e-15,
        )


def test_independent_clicks_law_matches_brute_force():
    rng = np.random.default_rng(1)
    for _ in range(15):
        p = rng.random(5)
        teams = rng.choice([-1, 1, 0], size=5)
        exact = independent_clicks_outcome_distribution(p, teams)
        np.testing.assert_allclose(exact, _brute_force_independent(p, teams), atol=1e-12)
        assert exact.sum() == pytest.approx(1.0)


def test_cascade_clicks_with_stops_follow_the_model():
    rng = np.random.default_rng(2)
    n = 200_000
    a = np.tile([0.6, 0.3, 0.5], (n, 1))
    s = np.tile([0.5, 0.9, 0.2], (n, 1))
    skip, click = np.array([0.2, 0.1, 0.0]), np.array([0.4, 0.2, 0.0])
    clicks = cascade_clicks(a, s, rng, stop_skip=skip, stop_click=click).mean(axis=0)
    go1 = 0.6 * 0.5 * (1 - 0.4) + 0.4 * (1 - 0.2)  # reach rank 2: unsatisfied click or skip, no stop
    go2 = go1 * (0.3 * 0.1 * (1 - 0.2) + 0.7 * (1 - 0.1))
    np.testing.assert_allclose(clicks, [0.6, 0.3 * go1, 0.5 * go2], atol=0.005)


def test_browsing_model_from_spec_and_sdbn():
    users = BrowsingModel.from_spec(QueueWorldSpec())
    spec = QueueWorldSpec()
    ranks = np.arange(1, spec.list_length + 1)
    assert users.cascade_share == pytest.approx(1 - spec.browser_share)
    np.testing.assert_allclose(users.stop_skip, spec.abandon_skip * ranks**-spec.abandon_decay)
    np.testing.assert_allclose(users.stop_click, spec.abandon_click * ranks**-spec.abandon_decay)
    np.testing.assert_allclose(users.examination, ranks**-spec.examination_decay)
    assert np.all(np.diff(users.stop_skip) < 0)  # leaving is likeliest at the top
    assert not users.is_sdbn and BrowsingModel.from_spec(QueueWorldSpec(user_model="sdbn")).is_sdbn
    with pytest.raises(ValueError, match="user_model"):
        QueueWorldSpec(user_model="ubm")
    with pytest.raises(ValueError, match="browser_share"):
        QueueWorldSpec(browser_share=1.5)


@pytest.mark.parametrize("user_model", ["browsing", "sdbn"])
def test_simulated_sessions_agree_with_the_exact_laws(user_model):
    world = SearchWorld.generate(SMALL.replace(user_model=user_model), np.random.default_rng(3))
    rng = np.random.default_rng(4)
    cand = world.draw_candidate(rng)
    while world.changed_queries(cand.ranking).mean() < 0.1:
        cand = world.draw_candidate(rng)
    exact = world.interleaving_probabilities(cand.ranking)
    n = 200_000
    observed = np.array(world.simulate_interleaving(cand.ranking, n, rng).counts())
    assert ((observed - n * exact) ** 2 / (n * exact)).sum() < stats.chi2.isf(1e-4, df=2)
    ses = world.simulate_ab(world.production_ranking, n, rng)
    na, ca, _, _ = ses.counts()
    ctr = world.click_through_rate(world.production_ranking)
    assert abs(ca / na - ctr) < 5 * np.sqrt(ctr * (1 - ctr) / na)


def test_ctr_responds_to_moving_a_relevant_document_down():
    """Swapping the most attractive document of A's page from rank 1 to rank 5 lowers the
    click-through rate of browsing users (exactly and in simulation); sDBN users do not care."""
    gaps = {}
    for user_model in ("browsing", "sdbn"):
        world = SearchWorld.generate(SMALL.replace(user_model=user_model), np.random.default_rng(5))
        ra = world.production_ranking.astype(np.int64)
        a = np.take_along_axis(world.attractiveness, ra, axis=1)
        best_first = np.take_along_axis(ra, np.argsort(-a, axis=1, kind="stable"), axis=1)
        swapped = best_first.copy()
        swapped[:, [0, 4]] = swapped[:, [4, 0]]
        gap = world.click_through_rate(best_first, per_query=True) - world.click_through_rate(
            swapped, per_query=True
        )
        gaps[user_model] = gap
        if user_model == "browsing":
            q = int(np.argmax(world.query_weight))
            n = 100_000
            rng = np.random.default_rng(6)
            first = world.user_model.sample_clicks(
                np.tile(world.attractiveness[q, best_first[q]], (n, 1)),
                np.tile(world.satisfaction[q, best_first[q]], (n, 1)),
                rng,
            ).any(axis=1)
            moved = world.user_model.sample_clicks(
                np.tile(world.attractiveness[q, swapped[q]], (n, 1)),
                np.tile(world.satisfaction[q, swapped[q]], (n, 1)),
                rng,
            ).any(axis=1)
            diff = first.mean() - moved.mean()
            assert diff == pytest.approx(gap[q], abs=5 * np.sqrt(0.5 / n))
            assert diff > 5 * np.sqrt(0.5 / n)
    assert np.all(gaps["browsing"] >= 0) and gaps["browsing"].mean() > 0.01
    np.testing.assert_allclose(gaps["sdbn"], 0.0, atol=1e-12)


def test_sdbn_fitted_to_browsing_users_is_informative_but_imperfect():
    """Algorithm 1 on a log of the other family's users: its attractiveness estimates still
    rank documents like the truth, but are further off than on a log of sDBN users (where the
    estimator's own bias remains: it ignores sessions without clicks)."""
    errors, corr = {}, {}
    for user_model in ("sdbn", "browsing"):
        spec = SMALL.replace(user_model=user_model, click_drift=0.0, log_noise=1.0, log_sessions=60_000)
        world = SearchWorld.generate(spec, np.random.default_rng(7))
        log = world.simulate_log(spec.log_sessions, np.random.default_rng(8))
        model = train_sdbn(log, world.n_queries, world.n_docs)
        seen = model.a_den >= 200  # well-observed documents
        est, true = model.attractiveness[seen], world.log_attractiveness[seen]
        errors[user_model] = float(np.mean(np.abs(est - true)))
        corr[user_model] = float(stats.spearmanr(est, true).statistic)
    assert errors["browsing"] > 1.5 * errors["sdbn"]  # the wrong family: a measurable misfit
    assert corr["browsing"] > 0.6 and corr["sdbn"] > 0.6  # ... that is still informative
