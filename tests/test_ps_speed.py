"""The shortcuts that make a PS decision cheaper compute exactly what the plain forms compute."""

from __future__ import annotations

import numpy as np

from labsched.baselines.labs.il_batch_plan import plan_rows
from labsched.baselines.labs.il_replay import split_lengths_by_stage
from labsched.baselines.labs.il_tables import RunningPlans, _first_stage_logp, grid_tables
from labsched.baselines.labs.ps_simulation import _split_table
from labsched.envs.labs.spec import LabSpec

SPEC = LabSpec(n_experiments=60, n_labs=12, horizon=5.0, epoch=0.05)


def _brute_force(spec: LabSpec, g0: int, el: np.ndarray, points: np.ndarray, k: int, a: int):
    """Best first stage of every running lab for (plan point ``k``, load ``a``), over all boundaries."""
    plans = RunningPlans(spec, g0, el, points, a)
    logp = _first_stage_logp(plans._ls, plans._rel[[k]])[:, 0, :]
    vals = logp + grid_tables(spec).row(a)[g0:][None, :]
    best = vals.argmax(axis=1)
    g = vals[np.arange(el.size), best]
    return g, np.where(np.isneginf(g), grid_tables(spec).n_points, best + g0)


def test_running_plans_look_ups_equal_the_brute_force_in_any_order() -> None:
    rng = np.random.default_rng(3)
    g0 = 7
    el = np.sort(rng.uniform(0.0, 1.5, 9))[::-1]
    points = np.array([7, 8, 12, 30, 55, 80, 99])
    for cached in (True, False):
        plans = RunningPlans(SPEC, g0, el, points, 40)
        if not cached:
            plans._logp = None  # the path taken when the first stages do not fit in one chunk
        kk = rng.integers(0, points.size, 60)
        aa = rng.integers(0, 41, 60)
        for lo in range(0, 60, 17):  # look-ups in several batches, in no particular order
            plans.columns(kk[lo : lo + 17], aa[lo : lo + 17])
        cols = plans.columns(kk, aa)
        for c, k, a in zip(cols.tolist(), kk.tolist(), aa.tolist(), strict=True):
            g, b = _brute_force(SPEC, g0, el, points, k, a)
            assert np.array_equal(plans.g[:, c], g)
            assert np.array_equal(plans.b[:, c], b)


def test_split_table_equals_the_direct_split() -> None:
    tab = grid_tables(SPEC)
    table = _split_table(SPEC, 8)
    rng = np.random.default_rng(0)
    g = rng.integers(0, tab.n_points + 1, (50, 7))
    a = rng.integers(0, 9, (50, 7))
    direct = split_lengths_by_stage(SPEC, tab.times[g], a, 8)
    assert np.array_equal(table[:, a, g], direct, equal_nan=True)
    assert np.isnan(table[:, 0, :]).all()


def test_batched_plans_equal_one_row_at_a_time() -> None:
    # The new-lab bound is computed once per (plan time, running labs) pair: rows sharing a pair
    # must get the plans they get alone.
    rng = np.random.default_rng(5)
    r, n_rows, m = 8, 40, 30
    el = np.sort(rng.uniform(0.0, 1.2, r))[::-1]
    plan_g = rng.choice([3, 3, 10, 40], n_rows)
    still = rng.random((n_rows, r)) < 0.6
    still[plan_g == 3] = still[0]  # many rows share (plan time, running labs)
    points = np.unique(plan_g)
    k_index = np.searchsorted(points, plan_g)
    together = plan_rows(SPEC, m, plan_g, still, k_index, RunningPlans(SPEC, 3, el, points, m))
    for i in range(n_rows):
        alone = plan_rows(
            SPEC, m, plan_g[[i]], still[[i]], k_index[[i]], RunningPlans(SPEC, 3, el, points, m)
        )
        for f in ("chosen", "q", "rem", "n_big", "safe"):
            assert getattr(together, f)[i] == getattr(alone, f)[0], f
        assert np.array_equal(together.total[[i]], alone.total, equal_nan=True)
