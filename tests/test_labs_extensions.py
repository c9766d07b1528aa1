"""Issue 14, part A: the ``action="labs"`` mode (scalar and vector env, sb3-contrib masks,
MaskablePPO), every baseline on failing and heterogeneous labs, failed experiments in the
renderings, and the errors of bad options."""

from __future__ import annotations

import itertools
import math

import gymnasium as gym
import numpy as np
import pytest
from _envtools import all_busy, run_episode

from labsched import ConcurrentLabsEnv, LabSpec
from labsched.baselines import BASELINES, make
from labsched.baselines.labs.clairvoyant import Clairvoyant, clairvoyant_cpe
from labsched.baselines.labs.lab_actions import LabChoicePolicy, fastest_free_labs
from labsched.baselines.labs.online import keep_busy_completion, min_eager_labs
from labsched.baselines.labs.ps_lab_draws import ColumnLabs
from labsched.envs._lib.rollout import play_episode
from labsched.envs.labs.durations import Deterministic, Gamma, LogNormal, TruncatedNormal
from labsched.envs.labs.vector_env import ConcurrentLabsVectorEnv

D1, D2 = Deterministic(1.0), Deterministic(2.0)
TWO_LABS = LabSpec(n_experiments=6, n_labs=2, horizon=10.0, duration=D1, lab_durations=[D1, D2])
SMALL = {"n_experiments": 10, "n_labs": 4, "horizon": 4.0}
HETERO = LabSpec(**SMALL, lab_durations=[Gamma(), LogNormal(), Gamma(4.0, 0.2), TruncatedNormal()],
                 lab_speeds=[1.0, 1.5, 0.8, 1.2])  # fmt: skip
FAILURES = LabSpec(**SMALL, failure_prob=[0.1, 0.3, 0.0, 0.2])
HETERO_FAILURES = HETERO.replace(failure_prob=0.25)
SPECS = {"hetero": HETERO, "failures": FAILURES, "hetero-failures": HETERO_FAILURES}


def _free(info: dict) -> np.ndarray:
    """The labs a ``labs`` action may choose, read from the sb3-contrib mask."""
    return info["action_mask"][1::2]


def _all_allowed(info: dict) -> np.ndarray:
    return _free(info).astype(np.int8)


def _run_labs(env: ConcurrentLabsEnv, policy, seed: int) -> list[tuple]:
    """Play an episode of a ``labs`` env; returns (action, reward, info) per step."""
    _, info = env.reset(seed=seed)
    out, done = [], False
    while not done:
        a = policy(info)
        _, r, done, truncated, info = env.step(a)
        assert truncated is False
        out.append((np.asarray(a), r, info))
    return out


# ---------------------------------------------------------------------- exact cases
@pytest.mark.parametrize("mode", ["count", "labs"])
@pytest.mark.parametrize("doc", [True, False])
def test_two_labs_start_all_allowed_by_hand(mode, doc):
    """Fast lab (duration 1) and slow lab (duration 2), h = 10, start as many as allowed at every
    decision: exp 0 fast (0-1), exp 1 slow (0-2), exp 2 fast (1-2, prior 1), at 2 exps 3 fast
    (2-3) and 4 slow (2-4) with prior 3, exp 5 fast (3-4, prior 4): CPE 0+0+1+3+3+4 = 11. In the
    ``labs`` mode every allowed lab is chosen, never more labs than the budget (no clipping)."""
    env = ConcurrentLabsEnv(TWO_LABS, decide_on_completion=doc, action=mode)
    if mode == "count":
        ep = run_episode(env, all_busy, seed=0)
        final, ret, clipped = ep.final, ep.ret, []
    else:
        steps = _run_labs(env, _all_allowed, seed=0)
        final, ret = steps[-1][2], sum(r for _, r, _ in steps)
        clipped = [i["requested_action"].tolist() for _, _, i in steps if i["clipped"]]
    assert final["cpe"] == ret == 11 and final["completed"] == 6 and final["time"] == 4.0
    got = sorted((r.index, r.lab, round(r.start, 9), round(r.end, 9), r.prior) for r in final["log"])
    assert got == [
        (0, 0, 0.0, 1.0, 0),
        (1, 1, 0.0, 2.0, 0),
        (2, 0, 1.0, 2.0, 1),
        (3, 0, 2.0, 3.0, 3),
        (4, 1, 2.0, 4.0, 3),
        (5, 0, 3.0, 4.0, 4),
    ]
    assert clipped == []


@pytest.mark.parametrize(("lab", "cpe", "completed", "end"), [(0, 15, 6, 6.0), (1, 10, 5, 10.0)])
def test_labs_action_runs_one_chosen_lab_by_hand(lab, cpe, completed, end):
    """One lab at a time, always the same: the fast lab runs 6 experiments back to back (ends
    1..6, CPE 0+1+..+5 = 15); the slow one ends 2, 4, .., 10, so five complete by h = 10
    (CPE 0+1+2+3+4 = 10) and the episode ends at h with one experiment never started."""
    env = ConcurrentLabsEnv(TWO_LABS, action="labs", invalid_action="raise")

    def only(info):
        a = np.zeros(2, dtype=np.int8)
        a[lab] = info["running"] == 0
        return a

    final = _run_labs(env, only, seed=0)[-1][2]
    assert final["cpe"] == cpe and final["completed"] == completed and final["time"] == end
    assert {r.lab for r in final["log"]} == {lab}
    assert [r.prior for r in sorted(final["log"])] == list(range(completed))


def test_failure_probability_one_in_the_labs_mode():
    spec = LabSpec(n_experiments=8, n_labs=4, horizon=30.0, failure_prob=1.0, lab_speeds=[1, 2, 3, 4])
    steps = _run_labs(ConcurrentLabsEnv(spec, action="labs"), _all_allowed, seed=3)
    final = steps[-1][2]
    assert sum(r for _, r, _ in steps) == 0.0 and final["cpe"] == 0 and final["completed"] == 0
    assert final["log"] == () and final["failed"] == 8 and len(final["failed_log"]) == 8
    assert all(i["completed"] == 0 for _, _, i in steps)


@pytest.mark.parametrize("spec", [LabSpec(), *SPECS.values()], ids=["paper", *SPECS])
def test_fastest_free_labs_choice_is_the_count_action_draw_for_draw(spec):
    """The ``labs`` action choosing the ``k`` fastest free labs replays the count action ``k``
    step for step under the same seed (observations, rewards, infos, records)."""
    rng = np.random.default_rng(0)
    for seed in range(4):
        a, b = ConcurrentLabsEnv(spec), ConcurrentLabsEnv(spec, action="labs")
        oa, ia = a.reset(seed=seed)
        ob, ib = b.reset(seed=seed)
        done = False
        while not done:
            k = int(rng.integers(0, spec.n_labs + 1))
            choice = fastest_free_labs(ob["busy"].astype(bool), k, spec.lab_order)
            oa, ra, done, _, ia = a.step(k)
            ob, rb, done_b, _, ib = b.step(choice)
            assert done == done_b and ra == rb
            for key in oa:
                np.testing.assert_array_equal(oa[key], ob[key], err_msg=key)
            for key in ("cpe", "completed", "started", "running", "time", "cost"):
                assert ia[key] == ib[key], key
            assert ia.get("failed") == ib.get("failed")
            # clipped by the budget in both, or by free labs in the count mode only
            assert ib["clipped"] <= ia["clipped"]
        assert ia["log"] == ib["log"] and ia.get("failed_log") == ib.get("failed_log")


# ---------------------------------------------------------------------- properties
@pytest.mark.parametrize("seed", range(6))
def test_random_specs_and_random_lab_choices_keep_the_invariants(seed):
    """Random heterogeneous / failing specs and random MultiBinary actions (busy labs and excess
    included): never more than l running, never more than n started, the chosen busy labs are
    never started, one experiment per lab at a time, and CPE is the sum of the priors of the
    successful completions, each prior the number of successes ended by its start."""
    rng = np.random.default_rng(seed)
    nl = int(rng.integers(1, 6))
    laws = [Gamma(), LogNormal(), TruncatedNormal(), Gamma(4.0, 0.2), Deterministic(0.7)]
    spec = LabSpec(
        n_experiments=int(rng.integers(1, 15)),
        n_labs=nl,
        horizon=float(rng.uniform(1.0, 6.0)),
        duration=Gamma(),
        lab_durations=[laws[i] for i in rng.integers(0, len(laws), size=nl)],
        lab_speeds=rng.uniform(0.5, 2.0, size=nl).tolist(),
        failure_prob=rng.uniform(0.0, 0.6, size=nl).tolist(),
    )
    env = ConcurrentLabsEnv(spec, action="labs", decide_on_completion=bool(seed % 2))
    for episode in range(5):
        _, info = env.reset(seed=100 * seed + episode)
        done = False
        while not done:
            before_busy = ~_free(info) if info["started"] < spec.n_experiments else None
            a = rng.integers(0, 2, size=nl)
            _, _, done, _, info = env.step(a)
            assert 0 <= info["running"] <= nl and info["started"] <= spec.n_experiments
            assert info["action_mask"].shape == (2 * nl,) and info["action_mask"][0::2].all()
            if before_busy is not None and (a.astype(bool) & before_busy).any():
                assert info["clipped"]
        recs = [*info["log"], *info.get("failed_log", ())]
        assert len(recs) + len(info["unfinished"]) == info["started"]
        assert sum(r.prior for r in info["log"]) == info["cpe"]
        ok_ends = sorted(r.end for r in info["log"])
        for r in recs:
            assert r.prior == sum(e <= r.start + 1e-9 * spec.horizon for e in ok_ends)
            assert r.end <= spec.horizon + 1e-9 * spec.horizon
        for lab in range(nl):  # one experiment at a time on each lab
            runs = sorted(
                (r.start, math.inf if r.end is None else r.end)
                for r in [*recs, *info["unfinished"]]
                if r.lab == lab
            )
            assert all(e <= s2 + 1e-12 for (_, e), (s2, _) in itertools.pairwise(runs))


@pytest.mark.parametrize("autoreset", ["NextStep", "SameStep"])
@pytest.mark.parametrize("flatten", [False, True])
def test_vector_env_equals_scalar_env_in_the_labs_mode(autoreset, flatten):
    from gymnasium.vector import AutoresetMode

    spec = HETERO_FAILURES
    N, nl = 4, spec.n_labs
    venv = ConcurrentLabsVectorEnv(
        N, spec, action="labs", flatten=flatten, autoreset_mode=AutoresetMode(autoreset)
    )
    envs = [ConcurrentLabsEnv(spec, action="labs", flatten=flatten) for _ in range(N)]
    assert venv.single_action_space == envs[0].action_space and venv.action_space.shape == (N, nl)
    _, vinfo = venv.reset(seed=7)
    for i, e in enumerate(envs):
        o, info = e.reset(seed=7 + i)
        np.testing.assert_array_equal(info["action_mask"], vinfo["action_mask"][i])
    np.testing.assert_array_equal(venv.action_masks(), vinfo["action_mask"])
    rng = np.random.default_rng(1)
    pending = np.zeros(N, dtype=bool)
    n_ended = 0
    for _ in range(400):
        a = rng.integers(0, 2, size=(N, nl))
        vobs, vr, vterm, _, vinfo = venv.step(a)
        for i, e in enumerate(envs):
            if pending[i]:  # NEXT_STEP: this step reset sub-env i
                o, info = e.reset()
                r, term = 0.0, False
            else:
                o, r, term, _, info = e.step(a[i])
                if term and autoreset == "SameStep":
                    final_info = {k: v[i] for k, v in vinfo["final_info"].items() if not k.startswith("_")}
                    assert final_info["cpe"] == info["cpe"] and final_info["log"] == info["log"]
                    assert final_info["failed_log"] == info["failed_log"]
                    assert final_info["clipped"] == info["clipped"]
                    o, info = e.reset()
                    n_ended += 1
                elif term:
                    assert vinfo["log"][i] == info["log"] and vinfo["failed_log"][i] == info["failed_log"]
                    n_ended += 1
            assert r == vr[i] and term == vterm[i]
            got = {k: v[i] for k, v in vobs.items()} if isinstance(vobs, dict) else {"flat": vobs[i]}
            want = o if isinstance(o, dict) else {"flat": o}
            for key in want:
                np.testing.assert_array_equal(want[key], got[key], err_msg=key)
            for key in ("cpe", "completed", "started", "running", "time", "failed", "clipped"):
                assert info[key] == vinfo[key][i], key
            np.testing.assert_array_equal(info["action_mask"], vinfo["action_mask"][i])
            if info["clipped"] and not (autoreset == "SameStep" and term):
                np.testing.assert_array_equal(info["requested_action"], vinfo["requested_action"][i])
        pending = vterm.copy() if autoreset == "NextStep" else np.zeros(N, dtype=bool)
    assert n_ended >= 20


def test_vector_env_raise_mode_and_shapes():
    venv = ConcurrentLabsVectorEnv(2, TWO_LABS, action="labs", invalid_action="raise")
    venv.reset(seed=0)
    venv.step(np.array([[1, 0], [0, 1]]))
    with pytest.raises(ValueError, match="sub-environment 0: it chooses busy labs"):
        venv.step(np.array([[1, 0], [1, 0]]))
    with pytest.raises(ValueError, match=r"must have shape \(2, 2\)"):
        venv.step(np.array([1, 0]))
    with pytest.raises(ValueError, match="entries must be 0 or 1"):
        venv.step(np.array([[2, 0], [0, 0]]))


# ---------------------------------------------------------------------- MaskablePPO
class _MaskAudit(gym.Wrapper):
    """Counts the steps whose action chose a lab its mask forbade."""

    def __init__(self, env: ConcurrentLabsEnv) -> None:
        super().__init__(env)
        self.steps = 0
        self.violations = 0

    def action_masks(self) -> np.ndarray:
        return self.env.unwrapped.action_masks()

    def step(self, action):
        forbidden = ~self.action_masks()[1::2]
        self.steps += 1
        self.violations += int((np.asarray(action).astype(bool) & forbidden).any())
        return self.env.step(action)


@pytest.mark.parametrize("steps", [256, pytest.param(2048, marks=pytest.mark.slow)])
def test_maskable_ppo_trains_on_the_labs_action_and_respects_the_masks(steps):
    pytest.importorskip("sb3_contrib")
    from sb3_contrib import MaskablePPO

    spec = LabSpec(n_experiments=6, n_labs=3, horizon=4.0, lab_speeds=[1.0, 2.0, 0.5], failure_prob=0.1)
    audit = _MaskAudit(ConcurrentLabsEnv(spec, action="labs", flatten=True))
    model = MaskablePPO("MlpPolicy", audit, n_steps=128, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(steps)
    assert audit.steps >= steps and audit.violations == 0
    env = ConcurrentLabsEnv(spec, action="labs", flatten=True)
    obs, info = env.reset(seed=5)
    done = False
    while not done:
        action, _ = model.predict(obs, action_masks=env.action_masks(), deterministic=False)
        assert action.shape == (3,) and not (action.astype(bool) & ~info["action_mask"][1::2]).any()
        obs, _, done, _, info = env.step(action)
    assert info["started"] <= spec.n_experiments


def test_env_checkers_pass_in_the_labs_mode():
    from gymnasium.utils.env_checker import check_env

    for flatten in (False, True):
        check_env(ConcurrentLabsEnv(HETERO_FAILURES, action="labs", flatten=flatten), skip_render_check=True)


# ---------------------------------------------------------------------- baselines
_FAST = {
    "ps": {"n_simulations": 20},
    "ps-calibrated": {
        "n_simulations": 10,
        "grid": (0.95, 0.5),
        "screen_episodes": 3,
        "confirm_episodes": 0,
        "cache": False,
    },
    "onmel": {"n_simulations": 1000},
    "keep-busy-calibrated": {"n_simulations": 500, "cache": False},
}
#: Registered by the unknown-durations work and tested there.
_ELSEWHERE = {n for n in BASELINES if "estimated" in n}
_OFFLINE = {"ofstaged", "ofil"}


@pytest.mark.parametrize("mode", ["count", "labs"])
@pytest.mark.parametrize("spec_name", list(SPECS))
def test_every_baseline_runs_on_failing_and_heterogeneous_labs_and_stays_feasible(spec_name, mode):
    spec = SPECS[spec_name]
    names = sorted(set(BASELINES) - _ELSEWHERE - {"clairvoyant"})
    assert {"ps", "onmel", "ofstaged", "ofil", "keep-busy-calibrated", "ps-calibrated"} <= set(names)
    for name in names:
        if name in _OFFLINE and spec.heterogeneous:
            with pytest.raises(ValueError, match=r"not defined for heterogeneous labs.*use one of ps"):
                make(name, spec, seed=0)
            continue
        policy = make(name, spec, seed=0, action=mode, **_FAST.get(name, {}))
        assert isinstance(policy, LabChoicePolicy) == (mode == "labs")
        env = ConcurrentLabsEnv(spec, action=mode, invalid_action="raise")
        for seed in range(2):  # "raise": an infeasible action would fail the episode
            info = play_episode(policy, env, seed=seed).info
            assert info["started"] <= spec.n_experiments and info["completed"] <= info["started"]
            assert info["cpe"] == sum(r.prior for r in info["log"]), name


@pytest.mark.parametrize("spec_name", list(SPECS))
def test_clairvoyant_refuses_failing_and_heterogeneous_labs(spec_name):
    with pytest.raises(ValueError, match="equal labs without failures"):
        make("clairvoyant", SPECS[spec_name])


def test_count_baseline_in_a_labs_env_gets_a_clear_error():
    env = ConcurrentLabsEnv(HETERO, action="labs")
    with pytest.raises(TypeError, match=r"make\(name, spec, action='labs'\)"):
        play_episode(make("onfcp", HETERO), env, seed=0)
    with pytest.raises(ValueError, match="action must be 'count' or 'labs'"):
        make("onfcp", HETERO, action="multi")


def test_onmel_simulates_lab_speeds_exactly():
    """Deterministic durations 1 at speed 2 (0.5 per experiment), n = 8, h = 2: keep-k-busy
    ends all 8 by h exactly when ceil(8 / k) * 0.5 <= 2, i.e. k >= 2 (with the common law's
    duration 1 it would be k >= 4)."""
    spec = LabSpec(n_experiments=8, n_labs=4, horizon=2.0, duration=D1, lab_speeds=[2.0] * 4)
    assert [keep_busy_completion(spec, k, 50, 0) for k in (1, 2, 4)] == [0.0, 1.0, 1.0]
    est = min_eager_labs(spec, 50)
    assert est.n_labs == 2 and est.safe and est.p_complete == 1.0
    slow_fast = LabSpec(n_experiments=8, n_labs=4, horizon=2.0, duration=D1, lab_speeds=[0.5, 0.5, 4.0, 4.0])
    assert min_eager_labs(slow_fast, 50).n_labs == 1  # one speed-4 lab runs 8 x 0.25 = 2


def test_onmel_counts_failed_experiments_as_ended():
    """Failures do not change when experiments end: the completion probability of keep-k-busy
    with failures estimates the same number as without (two estimates, 20,000 runs each)."""
    base = LabSpec(n_experiments=12, n_labs=4, horizon=4.0, duration=Gamma(10.0, 0.1))
    p0 = keep_busy_completion(base, 3, 20_000, 1)
    p1 = keep_busy_completion(base.replace(failure_prob=0.5), 3, 20_000, 1)
    se = math.sqrt(p0 * (1 - p0) / 20_000 + p1 * (1 - p1) / 20_000)
    assert 0.05 < p0 < 0.95 and abs(p0 - p1) < 4.5 * se, (p0, p1)


def test_ps_simulation_draws_each_columns_lab():
    spec = LabSpec(n_experiments=6, n_labs=4, horizon=5.0, duration=D1, lab_speeds=[1.0, 4.0, 2.0, 0.5],
                   failure_prob=[0.0, 1.0, 0.0, 1.0])  # fmt: skip
    cols = ColumnLabs.at(spec, np.array([2]))  # lab 2 running; free: 1 (fastest), 0, 3
    assert cols.labs(6).tolist() == [2, 1, 0, 3, 2, 1]
    d, fail = cols.new_draws(np.random.default_rng(0), 3, 6, 2)
    np.testing.assert_array_equal(d[0, :, 0], 1.0 / np.array([2.0, 4.0, 1.0, 0.5, 2.0, 4.0]))
    np.testing.assert_array_equal(
        fail[:, :, 1], np.broadcast_to([False, True, False, True, False, True], (3, 6))
    )
    res, rfail = cols.running_draws(np.random.default_rng(0), np.array([0.2]), 4)
    np.testing.assert_allclose(res, (1.0 - 0.2 * 2.0) / 2.0)  # residual of law time 1 - 0.4, at speed 2
    assert not rfail.any()


def test_ps_estimates_nothing_when_every_experiment_fails():
    spec = LabSpec(n_experiments=8, n_labs=4, horizon=4.0, failure_prob=1.0, lab_speeds=[1.0, 1.0, 2.0, 2.0])
    ps = make("ps", spec, seed=0, n_simulations=30, keep_history=True)
    info = play_episode(ps, ConcurrentLabsEnv(spec), seed=0).info
    decisions = ps.history()
    assert info["cpe"] == 0 and any(len(d.labels) > 1 for d in decisions)
    assert all(v == 0.0 for d in decisions for v in d.estimates if not math.isnan(v))


# ---------------------------------------------------------------------- clairvoyant grid
def test_clairvoyant_on_a_fine_grid_raises_its_documented_error():
    spec = LabSpec(n_experiments=4, n_labs=2, horizon=5.0, epoch=0.01)
    env = ConcurrentLabsEnv(spec)
    with pytest.raises(RuntimeError, match="exact clairvoyant search exceeded"):
        play_episode(Clairvoyant(spec, env=env), env, seed=0)
    res = clairvoyant_cpe(spec, [1.0] * 4)
    assert not res.exact and res.value == 6.0  # the proven bound: n (n - 1) / 2 at most


# ---------------------------------------------------------------------- rendering
def test_failed_experiments_are_drawn_distinctly():
    pytest.importorskip("matplotlib")
    spec = LabSpec(n_experiments=6, n_labs=2, horizon=10.0, duration=D1, failure_prob=[0.0, 1.0])
    images, texts = {}, {}
    for q in ((0.0, 1.0), 0.0):
        s = spec.replace(failure_prob=q)
        env = ConcurrentLabsEnv(s, render_mode="rgb_array")
        text_env = ConcurrentLabsEnv(s, render_mode="ansi")
        for e in (env, text_env):
            run_episode(e, all_busy, seed=0)
        images[q], texts[q] = env.render(), text_env.render()
    failed_rgb = np.array([0xF4, 0xC7, 0xC3])
    n_failed_px = {q: int(np.all(img == failed_rgb, axis=-1).sum()) for q, img in images.items()}
    assert n_failed_px[(0.0, 1.0)] > 500 and n_failed_px[0.0] == 0
    lines = texts[(0.0, 1.0)].splitlines()
    assert "failed 3" in lines[0] and "x failed" in lines[1]
    assert "x" in lines[3].split("[")[1].split("]")[0] and lines[3].endswith("3 failed")
    assert "x" not in "".join(line.split("[")[1].split("]")[0] for line in texts[0.0].splitlines()[2:])


# ---------------------------------------------------------------------- bad options
@pytest.mark.parametrize(
    ("action", "exc", "text"),
    [
        ([1, 0, 1], ValueError, r"action \(action='labs'\) must have n_labs=2 entries, got 3"),
        ([1, 2], ValueError, "entries must be 0 or 1"),
        ([0.5, 0], ValueError, "entries must be 0 or 1"),
        (1, TypeError, "a number of starts is the action='count' form"),
        ("10", TypeError, "must be a sequence of n_labs=2 zeros and ones"),
    ],
)
def test_bad_labs_actions_name_the_action(action, exc, text):
    env = ConcurrentLabsEnv(TWO_LABS, action="labs")
    env.reset(seed=0)
    with pytest.raises(exc, match=text):
        env.step(action)


def test_bad_action_mode_and_raise_mode():
    with pytest.raises(ValueError, match=r"action must be one of \['count', 'labs'\], got 'multi'"):
        ConcurrentLabsEnv(TWO_LABS, action="multi")
    with pytest.raises(ValueError, match="action must be one of"):
        ConcurrentLabsVectorEnv(2, TWO_LABS, action="multi")
    env = ConcurrentLabsEnv(TWO_LABS, action="labs", invalid_action="raise")
    env.reset(seed=0)
    env.step([0, 1])
    with pytest.raises(ValueError, match=r"labs \[1\] are busy"):
        env.step([1, 1])
    budget = ConcurrentLabsEnv(TWO_LABS.replace(n_experiments=1), action="labs", invalid_action="raise")
    budget.reset(seed=0)
    with pytest.raises(ValueError, match=r"2 labs chosen .*unstarted experiments=1"):
        budget.step([1, 1])
