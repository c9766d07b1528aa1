"""A saved agent is data, not code: loading never unpickles a file unless ``trust=True``.

Every place a model folder can hold a pickle gets a hostile one (a ``__reduce__`` that creates a
marker file): the normaliser statistics, a ``.pkl`` beside the model, every ``:serialized:``
entry of the zip's ``data``, the torch entries, ``hyperparams.yml``. Loading must never create
the marker, and must either rebuild the entry from labsched's metadata or refuse the file with an
error naming it; ``trust=True`` (``--trust-model-file``) is the only way through, which the
marker appearing then proves.
"""

from __future__ import annotations

import base64
import io
import json
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sb3_contrib")
pytest.importorskip("yaml")

import cloudpickle  # installed with stable-baselines3
import torch

from labsched import LabSpec
from labsched.agents import train
from labsched.agents.envs import build_env
from labsched.agents.loading import (
    ObservationNormalizer,
    UnsafeModelFileError,
    load_agent,
    normalizer_path,
)
from labsched.agents.model_files import legacy_normalizer_path, read_model_data, serialized_keys
from labsched.cli import main

SMALL = LabSpec(n_experiments=6, n_labs=3, horizon=3.0)
TINY = {
    "n_envs": 2,
    "n_steps": 64,
    "batch_size": 64,
    "features": True,
    "normalize": True,
    "policy_kwargs": "dict(net_arch=[128, 128], activation_fn=nn.Tanh)",  # not the yml default
}


class Payload:
    """Unpickling this creates ``marker`` (stands for any code a hostile file could run)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def trained_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("trained") / "run"
    train(
        "maskable_ppo",
        SMALL,
        total_timesteps=128,
        hyperparams=TINY,
        seed=0,
        out=out,
        eval_freq=0,
        eval_episodes=2,
        n_eval_envs=1,
        progress_bar=False,
        tensorboard=False,
        plot=False,
        verbose=0,
    )
    return out


@pytest.fixture
def folder(trained_dir, tmp_path) -> Path:
    """A fresh copy of the trained folder."""
    return Path(shutil.copytree(trained_dir, tmp_path / "agent"))


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "PWNED"


def _observations(n: int = 64) -> np.ndarray:
    env = build_env(SMALL)
    rng = np.random.default_rng(0)
    out, seed = [], 0
    while len(out) < n:
        obs, _ = env.reset(seed=seed)
        seed += 1
        done = False
        while not done:
            out.append(obs)
            mask = env.unwrapped.action_masks()
            obs, _, term, trunc, _ = env.step(int(rng.choice(np.flatnonzero(mask))))
            done = term or trunc
    return np.stack(out[:n])


def _rewrite_zip(zip_path: Path, replace: dict[str, bytes]) -> None:
    with zipfile.ZipFile(zip_path) as z:
        entries = {name: z.read(name) for name in z.namelist()}
    entries.update(replace)
    with zipfile.ZipFile(zip_path, "w") as z:
        for name, content in entries.items():
            z.writestr(name, content)


def _set_data(zip_path: Path, data: dict) -> None:
    _rewrite_zip(zip_path, {"data": json.dumps(data).encode()})


def _serialized(obj) -> str:
    return base64.b64encode(cloudpickle.dumps(obj)).decode()


@pytest.fixture
def no_unpickling(monkeypatch):
    """Any call to pickle / cloudpickle loading fails the test."""

    def forbidden(*args, **kwargs):
        raise AssertionError("something was unpickled")

    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(cloudpickle, "loads", forbidden)


# ----------------------------------------------------------------------------- the safe format


def test_train_writes_plain_statistics_and_complete_metadata(trained_dir):
    names = sorted(p.name for p in trained_dir.iterdir())
    assert "best_model_vecnormalize.npz" in names and "model_vecnormalize.npz" in names
    assert not [n for n in names if n.endswith(".pkl")]
    meta = json.loads((trained_dir / "agent.json").read_text())
    assert meta["format"] == 2
    assert meta["hyperparams"]["policy_kwargs"] == {"net_arch": [128, 128], "activation_fn": "Tanh"}
    with np.load(trained_dir / "best_model_vecnormalize.npz", allow_pickle=False) as npz:
        assert npz["obs_mean"].dtype == np.float64 and npz["obs_mean"].shape == npz["obs_var"].shape


def test_safe_load_unpickles_nothing_and_acts_like_the_trusted_load(trained_dir, monkeypatch):
    trusted = load_agent(trained_dir / "model.zip", trust=True)
    x = _observations()
    want, _ = trusted.predict(x)
    with monkeypatch.context() as m:
        for mod, name in ((pickle, "load"), (pickle, "loads"), (cloudpickle, "loads")):
            m.setattr(mod, name, lambda *a, **k: pytest.fail("something was unpickled"))
        safe = load_agent(trained_dir / "model.zip")
    got, _ = safe.predict(x)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(safe.model_observation(x), trusted.model_observation(x))
    a, b = safe.model.policy.state_dict(), trusted.model.policy.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # The model env carries the same statistics in a real VecNormalize.
    venv = safe.make_model_env(1, seed=0)
    np.testing.assert_array_equal(venv.obs_rms.mean, safe.normalizer.obs_rms.mean)


def test_normalizer_round_trip_is_exact(tmp_path):
    rng = np.random.default_rng(1)
    from labsched.agents.model_files import RunningStats

    norm = ObservationNormalizer(RunningStats(rng.normal(size=7), rng.uniform(0.1, 2, 7), 123.0), 5.0, 1e-6)
    back = ObservationNormalizer.load(norm.save(tmp_path / "s.npz"), width=7)
    x = rng.normal(size=(50, 7)) * 10
    np.testing.assert_array_equal(back.normalize_obs(x), norm.normalize_obs(x))
    with pytest.raises(ValueError, match="width 7; the model sees 8"):
        ObservationNormalizer.load(tmp_path / "s.npz", width=8)


# ----------------------------------------------------------------------------- hostile files


def test_pickled_statistics_are_refused_unless_trusted(folder, marker):
    zip_path = folder / "best_model.zip"
    normalizer_path(zip_path).unlink()
    legacy_normalizer_path(zip_path).write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(UnsafeModelFileError, match=r"best_model_vecnormalize\.pkl"):
        load_agent(folder)
    assert not marker.exists()
    with pytest.raises(Exception):  # noqa: B017  (the payload is not a VecNormalize)
        load_agent(folder, trust=True)
    assert marker.exists()  # the payload was live: only trust=True ran it


def test_a_pickle_beside_the_model_is_never_read(folder, marker, no_unpickling):
    zip_path = folder / "best_model.zip"
    legacy_normalizer_path(zip_path).write_bytes(pickle.dumps(Payload(marker)))
    (folder / "extra.pkl").write_bytes(pickle.dumps(Payload(marker)))
    agent = load_agent(folder)
    assert agent.normalizer is not None and not marker.exists()


def test_statistics_with_object_arrays_are_refused_even_when_trusted(folder, marker):
    path = normalizer_path(folder / "best_model.zip")
    with path.open("wb") as f:
        np.savez(f, obs_mean=np.array([Payload(marker)], dtype=object))
    for trust in (False, True):
        with pytest.raises(ValueError, match=r"best_model_vecnormalize\.npz.*not a plain-array"):
            load_agent(folder, trust=trust)
    assert not marker.exists()


def test_malformed_statistics_name_the_file(folder):
    path = normalizer_path(folder / "best_model.zip")
    with path.open("wb") as f:
        np.savez(f, format=np.int64(1), obs_mean=np.zeros(3), obs_var=np.ones(3))
    with pytest.raises(ValueError, match=r"best_model_vecnormalize\.npz.*width 3"):
        load_agent(folder)


def test_every_serialized_entry_is_rebuilt_not_unpickled(folder, marker):
    zip_path = folder / "best_model.zip"
    data = read_model_data(zip_path)
    keys = serialized_keys(data)
    # What SB3 pickles for MaskablePPO: all of it is rebuilt from agent.json.
    assert {"policy_class", "policy_kwargs", "observation_space", "action_space", "lr_schedule"} <= set(keys)
    for key in keys:
        data[key][":serialized:"] = _serialized(Payload(marker))
    _set_data(zip_path, data)
    agent = load_agent(folder)
    assert not marker.exists()
    actions, _ = agent.predict(_observations(8))
    assert actions.shape == (8,)
    with pytest.raises(Exception):  # noqa: B017  (open files are not schedules)
        load_agent(folder, trust=True)
    assert marker.exists()


@pytest.mark.parametrize("where", ["new_key", "nested", "env"])
def test_a_serialized_entry_labsched_cannot_rebuild_is_refused(folder, marker, where):
    zip_path = folder / "best_model.zip"
    data = read_model_data(zip_path)
    evil = {":type:": "<class 'object'>", ":serialized:": _serialized(Payload(marker))}
    key = {"new_key": "evil", "nested": "rollout_buffer_kwargs", "env": "env"}[where]
    data[key] = {"inner": evil} if where == "nested" else evil
    _set_data(zip_path, data)
    with pytest.raises(UnsafeModelFileError, match=rf"best_model\.zip.*data\['{key}'\]"):
        load_agent(folder)
    assert not marker.exists()
    if where != "nested":  # SB3 only unpickles top-level entries
        try:
            load_agent(folder, trust=True)
        except Exception:
            pass
        assert marker.exists()


@pytest.mark.parametrize("entry", ["policy.pth", "pytorch_variables.pth", "policy.optimizer.pth"])
def test_torch_entries_must_be_plain_tensors(folder, marker, entry):
    zip_path = folder / "best_model.zip"
    buf = io.BytesIO()
    torch.save({"weight": Payload(marker)}, buf)
    _rewrite_zip(zip_path, {entry: buf.getvalue()})
    with pytest.raises(UnsafeModelFileError, match=rf"best_model\.zip.*{entry}"):
        load_agent(folder)
    # SB3 itself reads .pth entries with torch.load(weights_only=True): refused even when trusted.
    with pytest.raises(Exception):  # noqa: B017
        load_agent(folder, trust=True)
    assert not marker.exists()


def test_hostile_yaml_hyperparams_are_refused(folder, marker):
    meta = json.loads((folder / "agent.json").read_text())
    del meta["hyperparams"]
    meta["format"] = 1
    (folder / "agent.json").write_text(json.dumps(meta))
    (folder / "hyperparams.yml").write_text(
        f"policy: !!python/object/apply:builtins.open ['{marker}', 'w']\n"
    )
    with pytest.raises(ValueError, match=r"hyperparams\.yml.*not plain YAML"):
        load_agent(folder)
    assert not marker.exists()


def test_format_1_folder_reads_hyperparams_yml(folder, no_unpickling):
    meta = json.loads((folder / "agent.json").read_text())
    del meta["hyperparams"]
    meta["format"] = 1
    (folder / "agent.json").write_text(json.dumps(meta))
    assert load_agent(folder).model.policy.mlp_extractor is not None


# ----------------------------------------------------------------------------- bare zips


@pytest.fixture
def bare_zip(tmp_path) -> Path:
    import torch.nn as nn
    from sb3_contrib import MaskablePPO

    model = MaskablePPO(
        "MlpPolicy",
        build_env(SMALL),
        seed=0,
        device="cpu",
        policy_kwargs={"net_arch": [16], "activation_fn": nn.ReLU},
    )
    path = tmp_path / "bare" / "policy.zip"
    path.parent.mkdir()
    model.save(path)
    return path


def test_a_bare_zip_needs_algo_or_trust(bare_zip, no_unpickling):
    with pytest.raises(ValueError, match="pass algo= and spec="):
        load_agent(bare_zip, spec=SMALL)
    agent = load_agent(bare_zip, algo="maskable_ppo", spec=SMALL)
    assert agent.model.policy.mlp_extractor.policy_net[1].__class__.__name__ == "ReLU"
    with pytest.raises(ValueError, match="is the algorithm 'ppo' right"):
        load_agent(bare_zip, algo="ppo", spec=SMALL)


def test_a_bare_zip_loads_the_same_safely_and_trusted(bare_zip):
    x = _observations(32)
    trusted = load_agent(bare_zip, spec=SMALL, trust=True)  # algorithm read from the zip
    safe = load_agent(bare_zip, algo="maskable_ppo", spec=SMALL)
    assert trusted.algo == "maskable_ppo"
    np.testing.assert_array_equal(safe.predict(x)[0], trusted.predict(x)[0])
    with pytest.raises(ValueError, match=r"observations of shape \(\d+,\)"):
        load_agent(bare_zip, algo="maskable_ppo", spec=SMALL.replace(n_labs=4))


def test_load_sb3_model_reads_one_class_and_the_observation_form(tmp_path, marker, no_unpickling):
    from sb3_contrib import MaskablePPO
    from stable_baselines3 import PPO

    from labsched.agents.loading import load_sb3_model
    from labsched.envs.labs.concurrent_labs import ConcurrentLabsEnv

    dict_env, flat_env = ConcurrentLabsEnv(SMALL), ConcurrentLabsEnv(SMALL, flatten=True)
    MaskablePPO("MultiInputPolicy", dict_env, seed=0, device="cpu").save(tmp_path / "dict.zip")
    PPO("MlpPolicy", flat_env, seed=0, device="cpu").save(tmp_path / "flat.zip")
    assert type(load_sb3_model(tmp_path / "dict.zip", SMALL)).__name__ == "MaskablePPO"
    assert type(load_sb3_model(tmp_path / "flat.zip", SMALL)).__name__ == "PPO"
    data = read_model_data(tmp_path / "flat.zip")
    data["evil"] = {":serialized:": _serialized(Payload(marker))}
    _set_data(tmp_path / "flat.zip", data)
    with pytest.raises(UnsafeModelFileError, match=r"flat\.zip.*data\['evil'\]"):
        load_sb3_model(tmp_path / "flat.zip", SMALL)
    assert not marker.exists()


# ----------------------------------------------------------------------------- the CLI


def _compare(folder: Path, *extra: str) -> int:
    args = ["compare", str(folder), "-n", "6", "-l", "3", "--horizon", "3", "--episodes", "2"]
    return main([*args, "--jobs", "1", "--no-plot", "--out", str(folder.parent / "cmp"), *extra])


def test_compare_refuses_a_pickled_folder_unless_trusted(folder, capsys):
    zip_path = folder / "best_model.zip"
    venv_stats = ObservationNormalizer.load(normalizer_path(zip_path))
    normalizer_path(zip_path).unlink()
    from stable_baselines3.common.vec_env import DummyVecEnv

    venv = DummyVecEnv([lambda: build_env(SMALL, features=True)])
    venv_stats.to_vec_normalize(venv).save(str(legacy_normalizer_path(zip_path)))  # an older folder
    assert _compare(folder) == 2
    err = capsys.readouterr().err
    assert "refusing to unpickle" in err and "best_model_vecnormalize.pkl" in err and "Traceback" not in err
    assert _compare(folder, "--trust-model-file") == 0


def test_compare_help_warns_about_trust(capsys):
    with pytest.raises(SystemExit):
        main(["compare", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--trust-model-file" in text and "WARNING: unpickling runs any code" in text
