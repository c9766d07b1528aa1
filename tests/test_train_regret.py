"""Training in regret mode (issue 12): env kwargs, vector envs, saving/loading, CLI errors, warm start."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

pytest.importorskip("sb3_contrib")
pytest.importorskip("yaml")

from sb3_contrib.common.maskable.evaluation import evaluate_policy

from labsched import LabSpec
from labsched.agents import load_agent, train
from labsched.agents.comparison import compare
from labsched.agents.config import check_env_kwargs, load_hyperparams
from labsched.agents.envs import make_vec
from labsched.agents.training_setup import resolve_config
from labsched.cli import main

TINY = LabSpec(n_experiments=6, n_labs=3, horizon=3.0)
# Pinned (not the tuned base entry, which is sized for the paper's setting): small rollouts.
QUICK = {
    "n_envs": 2,
    "n_steps": 64,
    "batch_size": 64,
    "n_epochs": 2,
    "learning_rate": 1e-3,  # constant: a lin_ rate is 0 at the update of a one-rollout run
    "features": True,
    "normalize": True,
    "policy_kwargs": "dict(net_arch=[32, 32], activation_fn=nn.Tanh)",
}
REGRET = {"objective": "cosines", "reward": "regret", "selector": "kb-ei"}
COMMON = dict(
    total_timesteps=256,
    hyperparams=QUICK,
    eval_freq=0,
    eval_episodes=4,
    n_eval_envs=2,
    references=None,
    progress_bar=False,
    plot=False,
    verbose=0,
)


@pytest.fixture(scope="module")
def regret_run(tmp_path_factory):
    """MaskablePPO trained 256 steps on the regret of cosines (kb-ei)."""
    out = tmp_path_factory.mktemp("regret")
    return train("maskable_ppo", TINY, seed=0, out=out, env_kwargs={"objective": "cosines"}, **COMMON)


@pytest.fixture(scope="module")
def cpe_run(tmp_path_factory):
    """The same configuration trained on CPE (native vector env): the warm start's origin."""
    out = tmp_path_factory.mktemp("cpe")
    return train("maskable_ppo", TINY, seed=1, out=out, **COMMON)


def _episode(venv, seed, rng):
    """One episode of random valid actions on a 1-env vector env: (rewards, final info)."""
    venv.seed(seed)
    venv.reset()
    rewards = []
    while True:
        mask = np.asarray(venv.env_method("action_masks")[0])
        _, reward, done, infos = venv.step(np.array([rng.choice(np.flatnonzero(mask))]))
        rewards.append(float(reward[0]))
        if done[0]:
            return np.array(rewards), infos[0]


# ----------------------------------------------------------------------------- env kwargs


def test_env_kwargs_defaults_and_normalisation():
    assert check_env_kwargs({"objective": "cosines"}) == REGRET
    assert check_env_kwargs({"reward": "regret"}) == REGRET  # the env's default objective
    assert check_env_kwargs({"objective": "hartmann3", "reward": "cpe", "selector": "thompson"}) == {
        "objective": "hartmann3",
        "reward": "cpe",
        "selector": "thompson",
    }
    assert check_env_kwargs({"decide_on_completion": False}) == {"decide_on_completion": False}
    assert check_env_kwargs({**REGRET, "reward_scale": 4})["reward_scale"] == 4.0
    params = load_hyperparams("maskable_ppo", TINY, overrides={"env_kwargs": {"objective": "branin"}})
    assert params["env_kwargs"] == {"objective": "branin", "reward": "regret", "selector": "kb-ei"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"objective": "nope"}, r"env_kwargs\.objective: unknown objective 'nope'.*cosines"),
        ({"objective": "cosines", "selector": "nope"}, r"env_kwargs\.selector: unknown selector.*kb-ei"),
        ({"selector": "kb-ei"}, r"selector='kb-ei' needs an objective"),
        ({"objective": 3}, r"env_kwargs\.objective must be the name of a registered objective"),
        ({"reward": "information"}, r"env_kwargs\.reward='information'.*\['cpe', 'regret'\]"),
        ({"reward_scale": 0.0}, r"env_kwargs\.reward_scale=0\.0.*a number > 0"),
        ({"reward_scale": -1}, r"env_kwargs\.reward_scale=-1.*a number > 0"),
        ({"reward_scale": math.inf}, r"env_kwargs\.reward_scale=inf"),
        ({"reward_scale": "big"}, r"env_kwargs\.reward_scale='big'"),
        ({"noise_std": 0.1}, r"keys among"),
    ],
)
def test_bad_env_kwargs_name_the_key(kwargs, message):
    with pytest.raises(ValueError, match=message):
        check_env_kwargs(kwargs)


def _resolve(tmp_path, vec_env=None, hyperparams=QUICK, env_kwargs=None):
    return resolve_config(
        "maskable_ppo", TINY, 64, None, None, hyperparams, 0, tmp_path, 0, 1, 1, vec_env, 0, None, env_kwargs
    )


def test_regret_mode_moves_to_dummy_and_refuses_an_explicit_native(tmp_path, capsys):
    assert load_hyperparams("maskable_ppo", TINY)["vec_env"] == "native"  # the shipped default
    cfg = _resolve(tmp_path, env_kwargs={"objective": "cosines"})
    assert cfg.vec_env == cfg.params["vec_env"] == "dummy" and cfg.regret
    assert _resolve(tmp_path, vec_env="subproc", env_kwargs={"reward": "regret"}).vec_env == "subproc"
    with pytest.raises(ValueError, match="vec_env='native' has no regret mode"):
        _resolve(tmp_path, vec_env="native", env_kwargs={"objective": "cosines"})
    with pytest.raises(ValueError, match="vec_env='native' has no regret mode"):
        _resolve(tmp_path, hyperparams=[*[f"{k}={v}" for k, v in QUICK.items()], "vec_env=native"],
                 env_kwargs={"objective": "cosines"})  # fmt: skip
    # CPE training with an objective keeps the native env (the objective only informs evaluation).
    cfg = _resolve(tmp_path, vec_env="native", env_kwargs={"objective": "cosines", "reward": "cpe"})
    assert cfg.vec_env == "native" and not cfg.regret


def test_training_envs_pay_scaled_minus_regret_and_evaluation_envs_raw_cpe():
    rng = np.random.default_rng(0)
    kwargs = {**REGRET, "normalize_reward": True}
    plain = make_vec(TINY, 1, 3, env_kwargs=kwargs, vec_env="dummy")
    scaled = make_vec(TINY, 1, 3, env_kwargs={**kwargs, "reward_scale": 2.5}, vec_env="dummy")
    evaluation = make_vec(TINY, 1, 3, env_kwargs={**kwargs, "reward_scale": 2.5}, evaluation=True)
    for seed in range(3):
        rewards, info = _episode(plain, seed, np.random.default_rng(seed))
        assert np.all(rewards[:-1] == 0.0) and info["regret"] >= 0.0
        assert rewards[-1] == pytest.approx(-info["regret"], rel=1e-6)
        scaled_rewards, scaled_info = _episode(scaled, seed, np.random.default_rng(seed))
        assert scaled_info["regret"] == info["regret"]  # same episode, same actions
        assert scaled_rewards[-1] == pytest.approx(-2.5 * info["regret"], rel=1e-6)
        eval_rewards, eval_info = _episode(evaluation, seed, rng)
        assert eval_rewards.sum() == eval_info["cpe"] and "regret" in eval_info
    with pytest.raises(ValueError, match="native' has no regret mode"):
        make_vec(TINY, 2, 0, env_kwargs=REGRET, vec_env="native")


# ----------------------------------------------------------------------------- training and loading


def test_regret_training_writes_a_loadable_model_recording_the_env_kwargs(regret_run):
    out = regret_run.out
    meta = json.loads((out / "agent.json").read_text())
    assert meta["env_kwargs"] == REGRET
    assert meta["hyperparams"]["env_kwargs"] == REGRET and meta["hyperparams"]["vec_env"] == "dummy"
    assert regret_run.timesteps >= 256
    agent = load_agent(out / "model.zip")
    assert agent.metadata["env_kwargs"] == REGRET
    # The observation is CPE mode's: the regret env's observations go straight to predict.
    venv = agent.make_model_env(n_envs=1, seed=5)
    assert venv.observation_space.shape == agent.model.observation_space.shape
    rewards, info = _episode(venv, 5, np.random.default_rng(0))
    assert rewards.sum() == info["cpe"] and info["regret"] >= 0.0
    env = agent.make_env(reward="regret", objective="cosines")
    obs, info = env.reset(seed=0)
    for _ in range(200):
        action, _ = agent.predict(obs, deterministic=True)
        assert info["action_mask"][int(action)]
        obs, reward, done, _, info = env.step(int(action))
        if done:
            assert reward == -info["regret"]
            break
    else:
        pytest.fail("episode did not end")


def test_eval_log_records_the_mean_regret_of_the_evaluation_episodes(regret_run):
    rows = list(csv.DictReader((regret_run.out / "eval_log.csv").open()))
    assert [int(r["timesteps"]) for r in rows] == [0, regret_run.timesteps]
    # Replay the final evaluation: the final model on the same seeded episodes, their last infos.
    agent = load_agent(regret_run.out / "model.zip")
    venv = agent.make_model_env(n_envs=2, seed=10_000)
    venv.seed(10_000)
    regrets, cpes = [], []

    def collect(locals_, _globals):
        if locals_["done"]:
            regrets.append(locals_["info"]["regret"])
            cpes.append(locals_["info"]["cpe"])

    evaluate_policy(agent.model, venv, n_eval_episodes=4, deterministic=True, callback=collect, warn=False)
    assert len(regrets) == 4 and min(regrets) >= 0.0
    assert float(rows[-1]["mean_regret"]) == pytest.approx(np.mean(regrets), rel=1e-12)
    assert float(rows[-1]["mean_cpe"]) == pytest.approx(np.mean(cpes), rel=1e-12)


def test_compare_runs_the_regret_trained_model_in_regret_mode(regret_run):
    rows = compare([str(regret_run.out), "random"], TINY, episodes=3, n_jobs=1, objective="cosines",
                   progress=False)  # fmt: skip
    assert [(r.kind, r.episodes) for r in rows] == [("model", 3), ("baseline", 3)]
    assert all(math.isfinite(r.mean_regret) and r.mean_regret >= 0.0 for r in rows)


def test_cli_warm_starts_a_cpe_model_in_regret_mode(cpe_run, tmp_path, capsys):
    out = tmp_path / "fine"
    argv = ["train", "-n", "6", "-l", "3", "--horizon", "3", "--objective", "cosines", "--reward-scale", "2",
            "--init-model", str(cpe_run.out / "model.zip"), "--total-timesteps", "128", "--eval-freq", "0",
            "--eval-episodes", "2", "--n-eval-envs", "2", "--references", "--no-progress", "--no-plot",
            "--out", str(out), "--hyperparams", *[f"{k}={v}" for k, v in QUICK.items()]]  # fmt: skip
    assert main(argv) == 0
    assert "note: regret mode trains on vec_env=dummy" in capsys.readouterr().err
    meta = json.loads((out / "agent.json").read_text())
    assert meta["env_kwargs"] == {**REGRET, "reward_scale": 2.0}
    assert meta["init_model"] == str(cpe_run.out / "model.zip")
    assert meta["training"]["timesteps"] >= 128
    before = load_agent(cpe_run.out / "model.zip").model.policy.state_dict()
    after = load_agent(out / "model.zip").model.policy.state_dict()
    assert any(not np.array_equal(before[k].numpy(), after[k].numpy()) for k in before)


# ----------------------------------------------------------------------------- CLI errors


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--objective", "nope"], "unknown objective 'nope'"),
        (["--objective", "cosines", "--selector", "nope"], "unknown selector 'nope'"),
        (["--selector", "kb-ei"], "needs an objective"),
        (["--objective", "cosines", "--vec-env", "native"], "vec_env='native' has no regret mode"),
        (["--objective", "cosines", "--throughput"], "--throughput measures CPE training"),
    ],
)
def test_cli_bad_regret_options_are_one_line_errors(extra, message, tmp_path, capsys):
    argv = ["train", "-n", "6", "-l", "3", "--horizon", "3", "--out", str(tmp_path / "x"), *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("labsched: error:") and message in err
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("scale", ["0", "-2", "inf", "big"])
def test_cli_bad_reward_scale_is_refused_by_the_parser(scale, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--objective", "cosines", "--reward-scale", scale])
    assert exit_info.value.code == 2
    assert "--reward-scale must be a" in capsys.readouterr().err
