"""Training on ``labsched/Random-v0`` (issue 14): the env-id route, its hyperparameter entry, the
saved agent (pickle-free, acting on any spec with valid actions) and its errors."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sb3_contrib")
pytest.importorskip("yaml")

import cloudpickle  # installed with stable-baselines3
import yaml

from labsched import LabSpec
from labsched.agents.config import ENV_ID, ENV_IDS, check_env_id, hyperparams_path, load_hyperparams
from labsched.agents.envs import make_random_vec
from labsched.agents.loading import load_agent
from labsched.agents.random_agent import RandomSpecAgent
from labsched.agents.runner import RunTask, run_task
from labsched.agents.training import train
from labsched.cli import main
from labsched.envs.labs.concurrent_labs import ConcurrentLabsEnv
from labsched.envs.labs.random_spec_env import HELDOUT_SPECS, RANDOM_ID, RandomSpecEnv, SpecDistribution

TINY = {"n_envs": 4, "n_steps": 256, "batch_size": 256, "n_epochs": 1}
SHIPPED = Path(__file__).resolve().parents[1] / "models" / "maskable_ppo_random"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A Random-v0 MaskablePPO trained for 2,048 steps (about 5 s)."""
    out = tmp_path_factory.mktemp("random") / "run"
    result = train(
        env_id=RANDOM_ID,
        total_timesteps=2048,
        hyperparams=TINY,
        out=out,
        eval_freq=0,
        eval_episodes=4,
        progress_bar=False,
        tensorboard=False,
        plot=False,
        verbose=0,
    )
    assert result.timesteps >= 2048
    return out


def _no_unpickling(monkeypatch) -> None:
    for mod, name in ((pickle, "load"), (pickle, "loads"), (cloudpickle, "loads")):
        monkeypatch.setattr(mod, name, lambda *a, **k: pytest.fail("something was unpickled"))


# ----------------------------------------------------------------------------- configuration


def test_config_picks_the_random_block():
    block = yaml.safe_load(hyperparams_path("maskable_ppo").read_text())[RANDOM_ID]
    params = load_hyperparams("maskable_ppo", env_id=RANDOM_ID)
    assert params["n_envs"] == block["n_envs"] and params["n_steps"] == block["n_steps"]
    assert params["features"] is False and params["vec_env"] in ("dummy", "subproc")
    assert params["policy_kwargs"]["net_arch"] == [128, 128]
    base = load_hyperparams("maskable_ppo", LabSpec())  # the ConcurrentLabs entry is untouched
    assert base["vec_env"] == "native" and base["features"] is True


def test_random_block_ignores_setting_entries(tmp_path):
    f = tmp_path / "h.yml"
    f.write_text(f"{ENV_ID}:\n  n_steps: 64\n'{RANDOM_ID}':\n  n_steps: 128\n'h=5':\n  n_steps: 32\n")
    assert load_hyperparams("maskable_ppo", LabSpec(), f)["n_steps"] == 32
    assert load_hyperparams("maskable_ppo", LabSpec(), f, env_id=RANDOM_ID)["n_steps"] == 128
    assert load_hyperparams("maskable_ppo", LabSpec(), f, env_id=ENV_ID)["n_steps"] == 32


def test_bad_env_id_lists_the_allowed_ones():
    assert check_env_id(RANDOM_ID) == RANDOM_ID
    for call in (
        lambda: check_env_id("labsched/Foo-v0"),
        lambda: load_hyperparams("maskable_ppo", env_id="CartPole-v1"),
        lambda: train(env_id="labsched/Random-v1", total_timesteps=10, verbose=0),
    ):
        with pytest.raises(ValueError, match="env_id must be one of") as err:
            call()
        assert all(e in str(err.value) for e in ENV_IDS)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"spec": LabSpec()}, "pass spec=None"),
        ({"hyperparams": {"features": True}}, "features=true needs one spec"),
        ({"vec_env": "native"}, "holds one spec"),
        ({"references": ["ps"]}, "references by name"),
        ({"env_kwargs": {"objective": "cosines"}}, "env_kwargs among"),
    ],
)
def test_random_route_refuses_single_spec_options(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        train(env_id=RANDOM_ID, total_timesteps=16, out=tmp_path, verbose=0, progress_bar=False, **kwargs)


def test_cli_env_option(capsys, tmp_path):
    with pytest.raises(SystemExit):
        main(["train", "--env", "labsched/Foo-v0"])
    assert "labsched/Random-v0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "--env" in capsys.readouterr().out
    assert main(["train", "--env", RANDOM_ID, "--horizon", "6", "--out", str(tmp_path)]) == 2
    assert "drop the spec options" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


# ----------------------------------------------------------------------------- the saved agent


def test_saved_agent_records_env_and_loads_without_unpickling(trained, monkeypatch):
    meta = json.loads((trained / "agent.json").read_text())
    assert meta["env_id"] == RANDOM_ID and meta["spec"] is None
    assert meta["random_env"]["max_labs"] == 32 and meta["observation"]["features"] is False
    assert (trained / "best_model_vecnormalize.npz").is_file()
    assert not list(trained.glob("*.pkl"))
    _no_unpickling(monkeypatch)
    agent = load_agent(trained)
    assert isinstance(agent, RandomSpecAgent) and agent.spec is None and agent.width == 172


def _play(agent, env, seed, spec=None):
    """One episode with ``invalid_action="raise"`` envs; asserts every action is allowed."""
    obs, info = env.reset(seed=seed, options={"spec": spec} if spec is not None else None)
    done, steps = False, 0
    while not done:
        action, _ = agent.predict(obs)
        assert np.shape(action) == ()
        assert info["action_mask"][int(action)]
        obs, _, terminated, truncated, info = env.step(int(action))
        done, steps = terminated or truncated, steps + 1
    return info, steps


def test_agent_plays_every_heldout_spec_with_valid_actions(trained):
    agent = load_agent(trained)
    env = RandomSpecEnv(invalid_action="raise")
    for name, spec in HELDOUT_SPECS.items():
        for seed in range(2):
            info, steps = _play(agent, env, seed, spec)
            assert info["spec"] == spec and steps >= 1
            assert 0 <= info["completed"] <= spec.n_experiments, name
    # and on the bound ConcurrentLabsEnv of each spec (Dict and flat observations)
    for spec in HELDOUT_SPECS.values():
        bound = agent.with_spec(spec)
        for flat in (False, True):
            _play(bound, ConcurrentLabsEnv(spec, flatten=flat, invalid_action="raise"), 3)


def test_bound_agent_sees_exactly_the_random_env_observation(trained):
    """ConcurrentLabsEnv observations of a spec, padded by the agent, equal RandomSpecEnv's own
    observation of the same state; the masks it decodes equal the env's."""
    agent = load_agent(trained)
    specs = [
        *HELDOUT_SPECS.values(),
        *(SpecDistribution().sample(np.random.default_rng(s)) for s in range(6)),
    ]
    for spec in specs:
        renv = RandomSpecEnv(flatten=True, invalid_action="raise")
        robs, _ = renv.reset(seed=7, options={"spec": spec})
        cenv = ConcurrentLabsEnv(spec, invalid_action="raise")
        cobs, _ = cenv.reset(seed=int(np.random.Generator(np.random.PCG64(7)).integers(2**63 - 1)))
        bound = agent.with_spec(spec)
        for _ in range(40):
            assert np.array_equal(bound.model_observation(cobs), agent.model_observation(robs))
            assert np.array_equal(agent.action_masks(robs)[0], renv.action_masks())
            action, _ = bound.predict(cobs)
            robs, _, terminated, truncated, _ = renv.step(int(action))
            cobs, *_ = cenv.step(int(action))
            if terminated or truncated:
                break


def test_batched_predict_equals_row_by_row(trained):
    agent = load_agent(trained)
    env = RandomSpecEnv(flatten=True)
    rows = [env.reset(seed=s)[0] for s in range(16)]
    batch, _ = agent.predict(np.stack(rows))
    assert batch.shape == (16,)
    assert [int(agent.predict(r)[0]) for r in rows] == batch.tolist()


def test_observation_mismatch_errors_name_the_layout(trained):
    agent = load_agent(trained)
    paper = ConcurrentLabsEnv(LabSpec())
    obs, _ = paper.reset(seed=0)
    with pytest.raises(ValueError, match=r"Random-v0.*with_spec.*ConcurrentLabsEnv Dict observation"):
        agent.predict(obs)
    with pytest.raises(ValueError, match="flat observation of width 24"):
        agent.predict(ConcurrentLabsEnv(LabSpec(), flatten=True).reset(seed=0)[0])
    other = agent.with_spec(HELDOUT_SPECS["labs-24"])  # bound to 24 labs, given 10
    with pytest.raises(ValueError, match=r"'busy' has shape \(10,\)"):
        other.predict(obs)
    with pytest.raises(ValueError, match="does not fit"):
        agent.with_spec(LabSpec(n_experiments=80, n_labs=40, horizon=5.0))


def test_runner_binds_the_agent_to_the_spec(trained):
    """``compare``'s runner plays the agent on the spec's episodes (batched), with results equal
    to the single-env episodes of the bound agent."""
    spec = HELDOUT_SPECS["failures-0.35"]
    result = run_task(RunTask(str(trained), spec, 6, 0, kind="model"))
    bound = load_agent(trained).with_spec(spec)
    single = [_play(bound, ConcurrentLabsEnv(spec), i)[0]["cpe"] for i in range(6)]
    assert [e.cpe for e in result.episodes] == single


@pytest.mark.skipif(not SHIPPED.is_dir(), reason="models/maskable_ppo_random not shipped yet")
def test_shipped_random_model_loads_safely_and_beats_random_starts(monkeypatch):
    _no_unpickling(monkeypatch)
    agent = load_agent(SHIPPED)
    assert isinstance(agent, RandomSpecAgent)
    names = {p.name for p in SHIPPED.iterdir()}
    assert "best_model.zip" in names and not any(n.endswith(".pkl") for n in names)
    spec = HELDOUT_SPECS["paper-h5"]
    cpe = [e.cpe for e in run_task(RunTask(str(SHIPPED), spec, 20, 0, kind="model")).episodes]
    rand = [e.cpe for e in run_task(RunTask("random", spec, 20, 0)).episodes]
    assert np.mean(cpe) > np.mean(rand)


def test_cli_trains_on_random_v0(tmp_path):
    out = tmp_path / "cli_run"
    argv = ["train", "--env", RANDOM_ID, "--total-timesteps", "1024", "--eval-freq", "0"]
    argv += ["--eval-episodes", "2", "--n-eval-envs", "2", "--no-progress", "--no-plot", "--out", str(out)]
    argv += ["--verbose", "0", "--hyperparams", "n_envs=2", "n_steps=256", "batch_size=256", "n_epochs=1"]
    assert main(argv) == 0
    meta = json.loads((out / "agent.json").read_text())
    assert meta["env_id"] == RANDOM_ID and meta["references"] == {}  # no baseline runs on one spec
    assert isinstance(load_agent(out), RandomSpecAgent)


def test_evaluation_envs_replay_the_same_random_specs():
    """Every evaluation re-seeds the eval envs with ``eval_seed``: the same specs and episodes."""
    venv = make_random_vec(3, 10_000, evaluation=True)

    def specs_of_three_resets():
        venv.seed(10_000)
        venv.reset()
        first = [s.to_dict() for s in venv.get_attr("lab_spec")]
        return first, venv.env_method("action_masks")

    (a, ma), (b, mb) = specs_of_three_resets(), specs_of_three_resets()
    assert a == b and len({json.dumps(s, sort_keys=True) for s in a}) == 3
    assert all(np.array_equal(x, y) for x, y in zip(ma, mb, strict=True))
    venv.close()
