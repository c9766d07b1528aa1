"""What :func:`labsched.agents.training.train` settles before it learns: the checked
configuration (:class:`TrainConfig`), the training and evaluation envs (constrained or not; one
spec, or ``labsched/Random-v0``'s random specs) and the model, fresh or warm-started from a saved
one."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from labsched.agents.config import (
    ENV_ID,
    VEC_ENV_KINDS,
    AlgorithmInfo,
    algorithm_info,
    check_env_id,
    check_env_kwargs,
    load_hyperparams,
    model_kwargs,
    regret_mode,
)
from labsched.agents.constrained import ConstraintConfig, constrained_envs
from labsched.agents.envs import RANDOM_ENV_OPTIONS, make_random_vec, make_vec
from labsched.agents.loading import load_agent
from labsched.agents.random_agent import RANDOM_ID
from labsched.envs._lib.validation import check_choice, check_int, check_real
from labsched.envs.labs.spec import LabSpec

__all__ = ["TrainConfig", "default_out_dir", "make_envs", "make_model", "resolve_config"]


def default_out_dir(algo: str, spec: LabSpec | None, seed: int, env_id: str = ENV_ID) -> Path:
    """``runs/<algo>_n<n>_l<l>_h<h>_s<seed>`` (``labsched/Random-v0``: ``runs/<algo>_random_s<seed>``)."""
    if check_env_id(env_id) == RANDOM_ID:
        return Path("runs") / f"{algorithm_info(algo).name}_random_s{seed}"
    spec = spec or LabSpec()
    return (
        Path("runs")
        / f"{algorithm_info(algo).name}_n{spec.n_experiments}_l{spec.n_labs}_h{spec.horizon:g}_s{seed}"
    )


@dataclass
class TrainConfig:
    """Everything :func:`train` resolved before building anything (see its arguments).

    Attributes:
        info: the algorithm.
        spec: the problem (None on ``labsched/Random-v0``: a new spec every episode).
        params: the resolved hyperparameters (``n_timesteps`` included).
        out: output folder.
        seed: training seed; the evaluation envs get ``eval_seed = seed + 10_000``.
        time_limit_minutes, eval_freq, eval_episodes, n_eval_envs, vec_env, verbose: as given.
        constraint: the chance-constraint handling (None: plain training;
            :mod:`labsched.agents.constrained`), its ``target`` resolved.
        init_model: the saved model training continues from (None: a fresh network).
        env_id: ``labsched/ConcurrentLabs-v0`` (one spec) or ``labsched/Random-v0``.
    """

    info: AlgorithmInfo
    spec: LabSpec | None
    params: dict[str, Any]
    out: Path
    seed: int
    time_limit_minutes: float | None
    eval_freq: int
    eval_episodes: int
    n_eval_envs: int
    vec_env: str
    verbose: int
    constraint: ConstraintConfig | None = None
    init_model: str | None = None
    env_id: str = ENV_ID

    @property
    def random(self) -> bool:
        """Training on ``labsched/Random-v0`` (a new random spec every episode)."""
        return self.env_id == RANDOM_ID

    @property
    def eval_seed(self) -> int:
        return self.seed + 10_000

    @property
    def n_timesteps(self) -> int:
        return int(self.params["n_timesteps"])

    @property
    def n_envs(self) -> int:
        return int(self.params.get("n_envs", 1))

    @property
    def features(self) -> bool:
        return bool(self.params.get("features", False))

    @property
    def normalize(self) -> bool | Mapping[str, float]:
        return self.params.get("normalize", False)

    @property
    def env_kwargs(self) -> dict[str, Any]:
        return dict(self.params.get("env_kwargs", {}))

    @property
    def regret(self) -> bool:
        """Training on minus the regret of the Bayesian optimisation (``reward="regret"``)."""
        return regret_mode(self.env_kwargs)


def _overrides_key(hyperparams: Mapping[str, Any] | Iterable[str] | None, key: str) -> bool:
    """Whether the ``--hyperparams`` overrides set ``key``."""
    if isinstance(hyperparams, Mapping):
        return key in hyperparams
    return any(str(item).partition("=")[0].strip() == key for item in hyperparams or ())


#: Most single envs that regret mode trains on when it moves the native entry to ``dummy``
#: (each one runs a Gaussian process; the native entry's hundreds of envs are for NumPy batches).
REGRET_MAX_ENVS = 64


def _training_vec_env(
    params: dict[str, Any], explicit: bool, verbose: int, explicit_envs: bool = False
) -> str:
    """``params["vec_env"]`` (default native); regret mode moves an implicit native to dummy, with
    at most :data:`REGRET_MAX_ENVS` envs unless ``n_envs`` was given explicitly.

    Raises:
        ValueError: native asked for explicitly (``vec_env`` argument or override) in regret mode.
    """
    kind = params.setdefault("vec_env", "native")
    if kind == "native" and regret_mode(params.get("env_kwargs")):
        if explicit:
            raise ValueError(
                "vec_env='native' has no regret mode (reward='regret'): use vec_env 'dummy' or 'subproc'"
            )
        params["vec_env"] = "dummy"
        capped = not explicit_envs and int(params.get("n_envs", 1)) > REGRET_MAX_ENVS
        if capped:
            params["n_envs"] = REGRET_MAX_ENVS
        if verbose:
            print(
                "note: regret mode trains on vec_env=dummy (SB3's DummyVecEnv of single envs): "
                "the native vector env has no regret mode"
                + (f"; n_envs={REGRET_MAX_ENVS} (set n_envs to change it)" if capped else ""),
                file=sys.stderr,
            )
    return params["vec_env"]


def _check_random(
    params: dict[str, Any], explicit_vec_env: bool, spec: LabSpec | None, constraint: Any
) -> None:
    """The ``labsched/Random-v0`` rules: no fixed spec, no spec-derived features, SB3's vector envs
    (an implicit ``native`` becomes ``dummy``), CPE env options only, no chance constraint.

    Raises:
        ValueError: naming the option that does not apply to random specs.
    """
    if spec is not None:
        raise ValueError(f"{RANDOM_ID} draws a new spec every episode: pass spec=None (got {spec})")
    if params.get("features"):
        raise ValueError(
            f"features=true needs one spec; {RANDOM_ID}'s observation carries the spec's summary instead "
            "(set features=false)"
        )
    if params.get("vec_env", "native") == "native":
        if explicit_vec_env:
            raise ValueError(f"vec_env='native' holds one spec; {RANDOM_ID} trains on 'dummy' or 'subproc'")
        params["vec_env"] = "dummy"
    bad = sorted(set(params.get("env_kwargs", {})) - set(RANDOM_ENV_OPTIONS))
    if bad:
        raise ValueError(f"{RANDOM_ID} takes env_kwargs among {list(RANDOM_ENV_OPTIONS)}; got {bad}")
    if constraint is not None:
        raise ValueError(f"constraint needs one spec (its p_safe and budget); {RANDOM_ID} has none")


def resolve_config(
    algo: str,
    spec: LabSpec | None,
    total_timesteps: int | None,
    time_limit_minutes: float | None,
    hyperparams_file: str | Path | None,
    hyperparams: Mapping[str, Any] | Iterable[str] | None,
    seed: int,
    out: str | Path | None,
    eval_freq: int,
    eval_episodes: int,
    n_eval_envs: int,
    vec_env: str | None,
    verbose: int,
    constraint: ConstraintConfig | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    env_id: str = ENV_ID,
) -> TrainConfig:
    """Check the arguments and resolve the hyperparameters (``env_kwargs`` merged over the
    hyperparameters' own; regret mode trains on ``vec_env="dummy"`` unless told otherwise;
    ``labsched/Random-v0``: :func:`_check_random`)."""
    info = algorithm_info(algo)
    random = check_env_id(env_id) == RANDOM_ID
    given_spec = spec
    spec = None if random else spec or LabSpec()
    if spec is not None and not isinstance(spec, LabSpec):
        raise TypeError(f"spec must be a labsched.LabSpec, got {type(spec).__name__}")
    params = load_hyperparams(info.name, spec, hyperparams_file, hyperparams, env_id=env_id)
    if env_kwargs:
        if not isinstance(env_kwargs, Mapping):
            raise TypeError(f"env_kwargs must be a mapping, got {type(env_kwargs).__name__}")
        params["env_kwargs"] = check_env_kwargs({**params.get("env_kwargs", {}), **env_kwargs}, info.name)
    if total_timesteps is not None:
        params["n_timesteps"] = check_int("total_timesteps", total_timesteps, 1)
    params["n_timesteps"] = int(params.get("n_timesteps", 1_000_000))
    if vec_env is not None:
        params["vec_env"] = check_choice("vec_env", vec_env, VEC_ENV_KINDS)
    explicit = vec_env is not None or _overrides_key(hyperparams, "vec_env")
    if random:
        _check_random(params, explicit, given_spec, constraint)
    vec_env = _training_vec_env(params, explicit, verbose, _overrides_key(hyperparams, "n_envs"))
    if time_limit_minutes is not None:
        check_real("time_limit_minutes", time_limit_minutes, 0.0, low_open=True)
    check_int("eval_freq", eval_freq, 0)
    check_int("eval_episodes", eval_episodes, 1)
    check_int("n_eval_envs", n_eval_envs, 1)
    if constraint is not None:
        if not isinstance(constraint, ConstraintConfig):
            raise TypeError(f"constraint must be a ConstraintConfig, got {type(constraint).__name__}")
        if constraint.masked and not info.masked:
            raise ValueError(f"constraint={constraint.kind!r} needs a maskable algorithm (maskable_ppo)")
        constraint = constraint.resolve(spec)
    return TrainConfig(
        info=info,
        spec=spec,
        params=params,
        out=Path(out) if out is not None else default_out_dir(info.name, spec, seed, env_id),
        seed=seed,
        time_limit_minutes=time_limit_minutes,
        eval_freq=eval_freq,
        eval_episodes=eval_episodes,
        n_eval_envs=n_eval_envs,
        vec_env=vec_env,
        verbose=verbose,
        constraint=constraint,
        env_id=env_id,
    )


def make_envs(cfg: TrainConfig) -> tuple[Any, Any, Any]:
    """The training envs (seeds ``seed + i``), the evaluation envs (``eval_seed + i``) and,
    with a constraint, the training :class:`~labsched.agents.constrained.ConstrainedVecEnv`.

    On ``labsched/Random-v0`` both are SB3 vector envs of ``RandomSpecEnv``: every evaluation
    re-seeds its envs with ``eval_seed + i``, so it plays the same random specs and episodes
    (draws of the training distribution: the held-out specs stay out of model selection).
    """
    if cfg.random:
        common = dict(normalize=cfg.normalize, env_kwargs=cfg.env_kwargs)
        env = make_random_vec(cfg.n_envs, cfg.seed, vec_env=cfg.vec_env, **common)
        return env, make_random_vec(cfg.n_eval_envs, cfg.eval_seed, evaluation=True, **common), None
    normalize = False if cfg.constraint is not None else cfg.normalize
    common = dict(features=cfg.features, normalize=normalize, env_kwargs=cfg.env_kwargs)
    env = make_vec(cfg.spec, cfg.n_envs, cfg.seed, vec_env=cfg.vec_env, **common)
    eval_env = make_vec(cfg.spec, cfg.n_eval_envs, cfg.eval_seed, evaluation=True, **common)
    if cfg.constraint is None:
        return env, eval_env, None
    return constrained_envs(env, eval_env, cfg.spec, cfg.constraint, cfg.normalize)


def _warm_start(cfg: TrainConfig, env: Any, tb_dir: str | None) -> Any:
    """The saved model ``cfg.init_model`` (loaded safely) continuing on ``env``, with its
    observation statistics copied into the training ``VecNormalize``."""
    agent = load_agent(cfg.init_model)
    saved_env = getattr(agent, "env_id", ENV_ID)
    if saved_env != cfg.env_id:
        raise ValueError(
            f"init_model {cfg.init_model!r} was trained on {saved_env}; training asks for {cfg.env_id}"
        )
    if agent.algo != cfg.info.name or agent.features != cfg.features:
        raise ValueError(
            f"init_model {cfg.init_model!r} is a {agent.algo} model with features={agent.features}; "
            f"training asks for {cfg.info.name} with features={cfg.features}"
        )
    model = agent.model
    # The network is the saved one: record its policy_kwargs (the safe loader checks them).
    saved = agent.metadata.get("hyperparams", {}).get("policy_kwargs")
    if saved is not None:
        cfg.params["policy_kwargs"] = saved
    else:
        cfg.params.pop("policy_kwargs", None)
    _adopt_settings(model, cfg, env)
    model.tensorboard_log = tb_dir
    vn = model.get_vec_normalize_env()
    if (vn is None) != (agent.normalizer is None):
        raise ValueError(f"init_model {cfg.init_model!r} and the hyperparameters disagree on 'normalize'")
    if vn is not None:
        vn.obs_rms.mean = np.array(agent.normalizer.obs_rms.mean, dtype=np.float64)
        vn.obs_rms.var = np.array(agent.normalizer.obs_rms.var, dtype=np.float64)
        vn.obs_rms.count = float(agent.normalizer.obs_rms.count)
    return model


#: Rollout and optimisation settings a warm-started on-policy model takes from the configuration.
ADOPTED_SETTINGS = (
    "n_steps", "batch_size", "n_epochs", "gamma", "gae_lambda", "ent_coef", "vf_coef",
    "max_grad_norm", "normalize_advantage", "target_kl",
)  # fmt: skip


def _adopt_observation_space(model: Any, cfg: TrainConfig, env: Any) -> None:
    """Take ``env``'s observation bounds when only they differ from the saved model's.

    The bounds of the flat observation depend on the duration law (its upper quantile), so a model
    warm-started on another law of the same ``n`` and ``l`` sees the same layout with other bounds;
    the network reads the values, not the bounds. Another shape or type is an error.
    """
    old, new = model.observation_space, env.observation_space
    if old == new:
        return
    if type(old) is not type(new) or getattr(old, "shape", None) != getattr(new, "shape", None):
        raise ValueError(
            f"init_model {cfg.init_model!r} was trained on observations {old}; this spec's are {new}"
        )
    model.observation_space = new
    model.policy.observation_space = new


def _adopt_settings(model: Any, cfg: TrainConfig, env: Any) -> None:
    """Put ``model`` on ``env`` with the configuration's rollout and optimisation settings.

    The network (``policy_kwargs``) stays the saved model's. An on-policy model (PPO, A2C,
    MaskablePPO) takes the configured learning rate, clip range and :data:`ADOPTED_SETTINGS`,
    and gets a rollout buffer for ``env``'s number of environments, so a model trained on 8
    single envs continues on the native vector env of 64. An off-policy model keeps its own
    settings and needs the same number of environments.
    """
    _adopt_observation_space(model, cfg, env)
    if not hasattr(model, "rollout_buffer"):
        if env.num_envs != model.n_envs:
            raise ValueError(
                f"init_model {cfg.init_model!r} was trained with n_envs={model.n_envs}; "
                f"an off-policy model continues only with the same n_envs (got {env.num_envs})"
            )
        model.set_env(env)
        return
    from stable_baselines3.common.utils import FloatSchedule

    kwargs = model_kwargs(cfg.params)
    for key in ADOPTED_SETTINGS:
        if key in kwargs and hasattr(model, key):
            setattr(model, key, kwargs[key])
    if "learning_rate" in kwargs:
        model.learning_rate = kwargs["learning_rate"]
        model._setup_lr_schedule()
    if "clip_range" in kwargs:
        model.clip_range = FloatSchedule(kwargs["clip_range"])
    model.n_envs = env.num_envs
    model.set_env(env)
    buffer = model.rollout_buffer
    model.rollout_buffer = type(buffer)(
        model.n_steps,
        model.observation_space,
        model.action_space,
        device=model.device,
        gamma=model.gamma,
        gae_lambda=model.gae_lambda,
        n_envs=model.n_envs,
    )


def make_model(cfg: TrainConfig, env: Any, tensorboard: bool) -> Any:
    """The SB3 / sb3-contrib model (bad hyperparameters raise ``ValueError``); with
    ``init_model``, that saved model, trained further."""
    tb_dir = None
    if tensorboard and importlib.util.find_spec("tensorboard") is not None:
        tb_dir = str(cfg.out / "tb")
    if cfg.init_model is not None:
        return _warm_start(cfg, env, tb_dir)
    try:
        return cfg.info.load_class()(
            cfg.params.get("policy", "MlpPolicy"),
            env,
            seed=cfg.seed,
            verbose=1 if cfg.verbose >= 2 else 0,
            tensorboard_log=tb_dir,
            device="cpu",
            **model_kwargs(cfg.params),
        )
    except (TypeError, ValueError, AssertionError) as exc:
        raise ValueError(f"bad hyperparameters for {cfg.info.name}: {exc}") from exc
