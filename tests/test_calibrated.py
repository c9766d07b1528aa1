"""Calibrated baselines: p-safe on fresh seeds, not worse than PS(0.95), cached, clear errors."""

import numpy as np
import pytest

from labsched import baselines
from labsched.baselines.labs import calibrated
from labsched.baselines.labs.calibrated import (
    CALIBRATION_SEED,
    CalibratedKeepBusy,
    CalibratedPolicySwitching,
    calibrate_keep_busy,
    calibrate_policy_switching,
)
from labsched.envs._lib.rollout import play_episode
from labsched.envs._lib.stats import p_safe_verdict, paired_difference, wilson_ci
from labsched.envs.labs.concurrent_labs import ConcurrentLabsEnv
from labsched.envs.labs.monte_carlo import simulate_keep_busy
from labsched.envs.labs.spec import LabSpec

SMALL = LabSpec(n_experiments=8, n_labs=4, horizon=4.0, p_safe=0.9, epoch=0.25)
# PS(q) on SMALL (100 episodes): completion 1.0 / 0.98 / 0.94 / 0.75 at q = 0.95 / 0.7 / 0.5 / 0.3.
OPTIONS = {
    "grid": (0.95, 0.8, 0.65, 0.5, 0.35),
    "screen_episodes": 40,
    "confirm_episodes": 200,
    "n_simulations": 25,
}


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LABSCHED_CACHE_DIR", str(tmp_path))


def _episodes(policy, spec, seeds):
    env = ConcurrentLabsEnv(spec)
    cpe, ok = [], []
    for s in seeds:
        ep = play_episode(policy, env, seed=s)
        cpe.append(ep.total_reward)
        ok.append(ep.info["completed"] == spec.n_experiments)
    return np.array(cpe), np.array(ok)


@pytest.mark.slow
def test_ps_calibrated_is_p_safe_on_fresh_seeds_and_not_worse_than_ps95(capsys):
    policy = baselines.make("ps-calibrated", SMALL, seed=1, **OPTIONS)
    assert isinstance(policy, CalibratedPolicySwitching)
    assert "ps-calibrated: knob=" in capsys.readouterr().err
    assert policy.calibration.feasible and 0 < policy.threshold < 1
    assert policy.spec.p_safe == policy.threshold and policy.constraint_spec == SMALL
    assert policy.completion - 1.645 * policy.completion_se >= SMALL.p_safe - 0.02
    seeds = range(400)  # fresh: calibration uses seeds >= 10**9
    assert max(seeds) < CALIBRATION_SEED
    cpe, ok = _episodes(policy, SMALL, seeds)
    verdict = p_safe_verdict(int(ok.sum()), ok.size, SMALL.p_safe)
    assert verdict.safe, verdict
    assert wilson_ci(int(ok.sum()), ok.size).high >= SMALL.p_safe
    ref_cpe, _ = _episodes(baselines.make("ps", SMALL, seed=1, n_simulations=25), SMALL, seeds)
    diff = paired_difference(cpe, ref_cpe)
    assert diff.diff.mean >= -3.0 * diff.diff.std_error, diff


def test_calibration_is_cached_in_process_and_on_disk(tmp_path, capsys):
    opts = {"grid": (0.9, 0.5), "screen_episodes": 4, "confirm_episodes": 4, "n_simulations": 5}
    spec = LabSpec(n_experiments=4, n_labs=2, horizon=3.0, epoch=0.5)
    first = calibrate_policy_switching(spec, **opts)
    assert first.episodes >= 8 and first.seconds > 0
    assert capsys.readouterr().err.count("ps-calibrated") == 1
    assert calibrate_policy_switching(spec, **opts) is first  # in-process: free
    assert capsys.readouterr().err == ""  # printed once
    files = list(tmp_path.glob("calibration-*.json"))
    assert len(files) == 1
    calibrated._MEMO.clear()
    again = calibrate_policy_switching(spec, **opts)  # from disk: same numbers
    assert again.chosen == first.chosen and again.points == first.points
    assert calibrate_policy_switching(spec, **opts, cache=False).chosen == first.chosen  # deterministic


def test_keep_busy_calibrated_matches_exact_simulation():
    spec = LabSpec()  # the paper's setting: k = 6 is the only p-safe k with high CPE
    policy = baselines.make("keep-busy-calibrated", spec)
    assert isinstance(policy, CalibratedKeepBusy)
    cal = policy.calibration
    assert cal.feasible and policy.completion - 1.645 * policy.completion_se >= spec.p_safe - 1e-3
    better = [pt for pt in cal.points if pt.cpe > policy.cpe]
    assert all(pt.completion_low < spec.p_safe for pt in better)  # every higher-CPE k is unsafe
    out = simulate_keep_busy(spec, policy.k, 4000, np.random.default_rng(5))
    assert abs(out.all_completed(spec.n_experiments).mean() - policy.completion) < 4 * np.sqrt(
        0.05 * 0.95 / 4000
    )
    cpe, _ = _episodes(policy, spec, range(60))  # the env agrees with the simulator it was tuned on
    assert abs(cpe.mean() - policy.cpe) < 4 * max(cpe.std(), 1.0) / np.sqrt(60)
    assert calibrate_keep_busy(spec) is cal


@pytest.mark.parametrize("grid", [(0.5, 1.0), (0.0,), (-0.2, 0.5), (), (float("nan"),)])
def test_bad_thresholds_raise(grid):
    with pytest.raises(ValueError, match=r"0 < q < 1|at least one"):
        calibrate_policy_switching(SMALL, grid=grid)


def test_bad_options_raise():
    with pytest.raises(ValueError, match="alpha"):
        calibrate_policy_switching(SMALL, alpha=0.6)
    with pytest.raises(ValueError, match="screen_episodes"):
        calibrate_policy_switching(SMALL, screen_episodes=1)
    with pytest.raises(ValueError, match="n_simulations"):
        calibrate_keep_busy(SMALL, n_simulations=0)
    with pytest.raises(TypeError, match="LabSpec"):
        calibrate_keep_busy("paper")
    with pytest.raises(ValueError, match="p_safe"):
        baselines.make("ps-calibrated", SMALL.replace(p_safe=1.0))
