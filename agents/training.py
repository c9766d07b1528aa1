"""``labsched.agents.train``: train MaskablePPO / PPO / A2C / DQN on a ConcurrentLabs setting, or on
``labsched/Random-v0`` (a new random spec every episode).

:func:`train` runs small steps in order: resolve the configuration (:class:`TrainConfig`),
build the training and evaluation envs, the reference baselines, the model and the callbacks,
learn, save, and gather the :class:`TrainResult`.
"""

from __future__ import annotations

import json
import math
import platform
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from labsched.agents.callbacks import ProgressCallback, TimeLimitCallback, make_eval_callback
from labsched.agents.config import ENV_ID, require_rl_extra
from labsched.agents.constrained import ConstraintConfig, LagrangianCallback
from labsched.agents.envs import build_random_env, make_vec
from labsched.agents.loading import FORMAT_VERSION, METADATA_FILE, save_normalizer
from labsched.agents.plots import plot_learning_curve
from labsched.agents.random_agent import RANDOM_ID, random_layout
from labsched.agents.training_setup import TrainConfig, default_out_dir, make_envs, make_model, resolve_config
from labsched.baselines.registry import make
from labsched.envs._lib.threads import torch_threads as set_torch_threads
from labsched.envs.labs.spec import LabSpec

__all__ = ["TrainConfig", "TrainResult", "default_out_dir", "reference_cpe", "train"]


@dataclass
class TrainResult:
    """What :func:`train` produced.

    Attributes:
        out: output folder.
        model_path: the final model (``model.zip``).
        best_model_path: the best evaluated model (``best_model.zip``).
        algo: algorithm name.
        hyperparams: resolved hyperparameters.
        timesteps: env steps trained.
        seconds: wall time of ``learn`` (evaluations included).
        train_seconds: wall time of ``learn`` less the evaluations.
        steps_per_second: training throughput, ``timesteps / train_seconds``.
        best_mean_cpe: best mean evaluation CPE (constrained training: that of ``best_model.zip``,
            the best p-safe evaluation, see ``best_model``).
        final_mean_cpe: mean evaluation CPE of the final model.
        stop_reason: ``"timesteps"`` or ``"time_limit"``.
        references: mean CPE of the reference baselines on the evaluation episodes.
        eval_log: the ``eval_log.csv``.
        plot: the learning-curve PNG (None without matplotlib).
        model: the trained model (in memory; the final one).
        best_model: constrained training: how ``best_model.zip`` was chosen
            (:meth:`labsched.agents.callbacks.ConstrainedBest.summary`; also in ``agent.json``).
    """

    out: Path
    model_path: Path
    best_model_path: Path
    algo: str
    hyperparams: dict[str, Any]
    timesteps: int
    seconds: float
    train_seconds: float
    steps_per_second: float
    best_mean_cpe: float
    final_mean_cpe: float
    stop_reason: str
    references: dict[str, float] = field(default_factory=dict)
    eval_log: Path | None = None
    plot: Path | None = None
    model: Any = field(default=None, repr=False, compare=False)
    final_completion_rate: float = math.nan
    constraint: dict[str, Any] | None = None
    best_model: dict[str, Any] | None = None


def reference_cpe(
    names: Iterable[str], spec: LabSpec, n_envs: int, eval_seed: int, n_episodes: int, env_kwargs=None
) -> dict[str, float]:
    """Mean CPE of baselines on exactly the evaluation episodes of training (same seeded envs)."""
    from stable_baselines3.common.evaluation import evaluate_policy

    out = {}
    for name in names:
        agent = make(name, spec, seed=eval_seed)
        venv = make_vec(spec, n_envs, eval_seed, env_kwargs=env_kwargs, evaluation=True)
        venv.seed(eval_seed)
        rewards, _ = evaluate_policy(
            agent, venv, n_eval_episodes=n_episodes, return_episode_rewards=True, warn=False
        )
        out[name] = float(sum(rewards) / len(rewards))
        venv.close()
    return out


def _parse_references(references: Mapping[str, float] | Sequence[str] | None, **kw) -> dict[str, float]:
    if not references:
        return {}
    if isinstance(references, Mapping):
        return {str(k): float(v) for k, v in references.items()}
    if kw.get("spec") is None:
        raise ValueError(
            f"references by name run baselines on one spec; {RANDOM_ID} has none: pass None or "
            "{name: mean CPE}"
        )
    return reference_cpe(list(references), **kw)


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("labsched", "stable-baselines3", "sb3-contrib", "torch", "gymnasium", "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def _dump_yaml(data: Mapping[str, Any], path: Path) -> None:
    import yaml

    path.write_text(yaml.safe_dump(json.loads(json.dumps(dict(data))), sort_keys=True))


def _metadata(cfg: TrainConfig, refs: Mapping[str, float]) -> dict[str, Any]:
    """The content of ``agent.json`` (what :func:`~labsched.agents.loading.load_agent` reads):
    on ``labsched/Random-v0`` the spec is None and ``random_env`` holds the observation layout."""
    random = {"random_env": random_layout(build_random_env().unwrapped)} if cfg.random else {}
    return {
        "format": FORMAT_VERSION,
        "algo": cfg.info.name,
        "env_id": cfg.env_id,
        **random,
        "spec": None if cfg.random else cfg.spec.to_dict(),
        "observation": {"form": "flat", "features": cfg.features, "normalize": bool(cfg.normalize)},
        "env_kwargs": cfg.env_kwargs,
        "seed": cfg.seed,
        "eval_seed": cfg.eval_seed,
        "eval_episodes": cfg.eval_episodes,
        "n_eval_envs": cfg.n_eval_envs,
        "references": dict(refs),
        "hyperparams": cfg.params,  # the loader rebuilds the zip's pickled entries from these
        "constraint": cfg.constraint.to_dict() if cfg.constraint is not None else None,
        "init_model": cfg.init_model,
        "versions": _versions(),
    }


@dataclass
class _Callbacks:
    evaluation: Any
    limit: TimeLimitCallback | None
    all: list[Any]


def _make_callbacks(
    cfg: TrainConfig, eval_env: Any, progress_bar: bool, constrained: Any = None
) -> _Callbacks:
    """Seeded evaluation, optional wall-clock limit, progress bar and the Lagrangian's dual update."""
    progress = ProgressCallback(cfg.n_timesteps) if progress_bar else None
    eval_cb = make_eval_callback(
        cfg.info.masked,
        eval_env,
        eval_seed=cfg.eval_seed,
        n_eval_episodes=cfg.eval_episodes,
        eval_freq_steps=cfg.eval_freq if cfg.eval_freq > 0 else sys.maxsize,
        n_train_envs=cfg.n_envs,
        out=cfg.out,
        progress=progress,
        verbose=cfg.verbose,
        # Constrained training: best_model.zip must be p-safe (ConstrainedBest), p = 1 - target.
        target_completion=1.0 - cfg.constraint.target if cfg.constraint is not None else None,
    )
    limit = TimeLimitCallback(cfg.time_limit_minutes) if cfg.time_limit_minutes else None
    dual = LagrangianCallback(constrained, cfg.out, verbose=int(cfg.verbose >= 2)) if constrained else None
    return _Callbacks(eval_cb, limit, [cb for cb in (dual, eval_cb, limit, progress) if cb is not None])


def _learn(cfg: TrainConfig, model: Any, callbacks: _Callbacks) -> tuple[float, float]:
    """``model.learn`` and a final evaluation; returns (seconds, seconds without evaluations)."""
    from stable_baselines3.common.callbacks import CallbackList

    if cfg.verbose:
        limit_txt = f" (at most {cfg.time_limit_minutes:g} min)" if cfg.time_limit_minutes else ""
        spec = cfg.spec
        where = RANDOM_ID if spec is None else f"n={spec.n_experiments}, l={spec.n_labs}, h={spec.horizon:g}"
        print(
            f"training {cfg.info.class_name} on {where} for {cfg.n_timesteps} steps{limit_txt} -> {cfg.out}",
            file=sys.stderr,
        )
    t0 = time.perf_counter()
    model.learn(
        total_timesteps=cfg.n_timesteps, callback=CallbackList(callbacks.all), tb_log_name=cfg.info.name
    )
    seconds = time.perf_counter() - t0
    callbacks.evaluation.evaluate_now()  # the final model, on the same episodes
    return seconds, max(seconds - callbacks.evaluation.eval_seconds, 1e-9)


def _save(cfg: TrainConfig, model: Any) -> None:
    """``model.zip`` and its ``VecNormalize`` statistics (``model_vecnormalize.npz``)."""
    model.save(str(cfg.out / "model.zip"))
    vn = model.get_vec_normalize_env()
    if vn is not None:
        save_normalizer(vn, cfg.out / "model.zip")  # plain arrays (.npz): loading runs no code


def _result(
    cfg: TrainConfig, model: Any, callbacks: _Callbacks, seconds: float, train_seconds: float, refs: dict
) -> TrainResult:
    rows = callbacks.evaluation.recorder.rows
    timesteps = int(model.num_timesteps)
    limit = callbacks.limit
    result = TrainResult(
        out=cfg.out,
        model_path=cfg.out / "model.zip",
        best_model_path=cfg.out / "best_model.zip",
        algo=cfg.info.name,
        hyperparams=cfg.params,
        timesteps=timesteps,
        seconds=seconds,
        train_seconds=train_seconds,
        steps_per_second=timesteps / train_seconds,
        best_mean_cpe=float(callbacks.evaluation.best_mean_reward),
        final_mean_cpe=rows[-1]["mean_cpe"] if rows else math.nan,
        final_completion_rate=rows[-1]["completion_rate"] if rows else math.nan,
        constraint=cfg.constraint.to_dict() if cfg.constraint is not None else None,
        stop_reason="time_limit" if limit is not None and limit.triggered else "timesteps",
        references=refs,
        eval_log=cfg.out / "eval_log.csv",
    )
    rule = getattr(callbacks.evaluation, "best_rule", None)
    if rule is not None and rule.index is not None:
        result.best_model = rule.summary()  # constrained: how best_model.zip was chosen
    result.model = model
    return result


_TRAINING_FIELDS = (
    "timesteps",
    "seconds",
    "train_seconds",
    "steps_per_second",
    "best_mean_cpe",
    "final_mean_cpe",
    "final_completion_rate",
    "stop_reason",
)


def _plot(cfg: TrainConfig, result: TrainResult) -> None:
    spec = cfg.spec
    where = RANDOM_ID if spec is None else f"n={spec.n_experiments}, l={spec.n_labs}, h={spec.horizon:g}"
    try:
        result.plot = plot_learning_curve(
            cfg.out / "eval_log.csv",
            cfg.out / "learning_curve.png",
            result.references,
            title=f"{cfg.info.class_name}, {where}, seed {cfg.seed}"
            + (f", {cfg.constraint.kind}" if cfg.constraint else ""),
            constraint_log=cfg.out / "constraint_log.csv" if cfg.constraint is not None else None,
            p_safe=spec.p_safe if spec is not None else None,
        )
    except ImportError as exc:
        print(f"(no learning-curve plot: {exc})", file=sys.stderr)


def _print_summary(result: TrainResult) -> None:
    refs = result.references
    ref_txt = " (references: " + ", ".join(f"{k} {v:.2f}" for k, v in refs.items()) + ")" if refs else ""
    print(
        f"done: {result.timesteps} steps in {result.seconds:.1f} s ({result.steps_per_second:,.0f} env "
        f"steps/s training, evaluations excluded; stopped by {result.stop_reason}); eval CPE final "
        f"{result.final_mean_cpe:.2f} (completion {result.final_completion_rate:.3f}), best "
        f"{result.best_mean_cpe:.2f}{ref_txt}\n"
        f"wrote {result.out}",
        file=sys.stderr,
    )


# size: 110 lines, 61 of them the docstring of the public entry point; the body is a list of steps.
def train(
    algo: str = "maskable_ppo",
    spec: LabSpec | None = None,
    *,
    total_timesteps: int | None = None,
    time_limit_minutes: float | None = None,
    hyperparams_file: str | Path | None = None,
    hyperparams: Mapping[str, Any] | Iterable[str] | None = None,
    seed: int = 0,
    out: str | Path | None = None,
    eval_freq: int = 50_000,
    eval_episodes: int = 100,
    n_eval_envs: int = 4,
    references: Mapping[str, float] | Sequence[str] | None = None,
    vec_env: str | None = None,
    progress_bar: bool = True,
    tensorboard: bool = True,
    plot: bool = True,
    verbose: int = 1,
    torch_threads: int = 1,
    constraint: ConstraintConfig | None = None,
    init_model: str | Path | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    env_id: str = ENV_ID,
) -> TrainResult:
    """Train an agent on ``labsched/ConcurrentLabs-v0`` (one spec) or ``labsched/Random-v0`` and
    save it with its evaluation log.

    Args:
        algo: ``"maskable_ppo"`` (default; uses the env's action masks), ``"ppo"``, ``"a2c"``
            or ``"dqn"`` (these act on the env with ``invalid_action="clip"``).
        spec: the problem (default: the paper's setting, h = 5).
        total_timesteps: env steps (default: the hyperparameters' ``n_timesteps``).
        time_limit_minutes: stop after this much wall-clock time (the model so far is saved);
            ``lin_`` schedules then decay to 0 by whichever budget ends first.
        hyperparams_file: a YAML file (default ``agents/hyperparams/<algo>.yml``).
        hyperparams: overrides, a mapping or ``"key=value"`` strings.
        seed: seeds ``set_random_seed``, the training envs (``seed + i``), the model; the
            evaluation envs get ``seed + 10_000 + i``.
        out: output folder (default :func:`default_out_dir`).
        eval_freq: evaluate every this many env steps (0 disables periodic evaluation; the
            start and the end are still evaluated).
        eval_episodes: episodes per evaluation (the same ones every time).
        n_eval_envs: evaluation envs.
        references: baseline names (their mean CPE on the evaluation episodes is computed) or
            ``{name: mean CPE}``: reference lines of the learning curve.
        vec_env: ``"native"`` (all training episodes in one NumPy-batched env), ``"dummy"`` or
            ``"subproc"``; default: the hyperparameters' ``vec_env`` (``native`` if unset).
        progress_bar: show a progress bar (tqdm).
        tensorboard: write TensorBoard logs to ``out/tb`` when tensorboard is installed.
        plot: write ``learning_curve.png`` (needs matplotlib).
        verbose: 0 silent, 1 evaluation lines and a summary, 2 also SB3's training logs.
        torch_threads: ``torch.set_num_threads`` (1 suits small MLPs on a shared machine).
        constraint: train under the chance constraint (a Lagrangian multiplier and/or
            feasibility masks, :mod:`labsched.agents.constrained`); the folder then also holds
            ``constraint_log.csv`` (multiplier and training completion rate per rollout).
        init_model: start from this saved model (a folder or zip written by ``labsched
            train``, e.g. ``models/maskable_ppo_h5``; loaded without unpickling) instead of a
            fresh network: same algorithm and observation form; its own network and
            hyperparameters are kept (the resolved ones are still recorded).
        env_kwargs: env options merged over the hyperparameters' ``env_kwargs``; regret mode:
            ``{"objective": "cosines"}`` (``selector`` default ``"kb-ei"``, ``reward`` default
            ``"regret"``, ``reward_scale`` default 1) trains on minus the regret of the
            Bayesian optimisation, paid on the last step, on SB3's ``DummyVecEnv`` (the native
            vector env has no regret mode); evaluations still report raw CPE (and
            ``eval_log.csv`` the mean regret) on the same optimising episodes (docs/agents.md).
        env_id: ``"labsched/ConcurrentLabs-v0"`` (default; ``spec``) or ``"labsched/Random-v0"``:
            a new spec of :class:`~labsched.envs.labs.random_spec_env.SpecDistribution` every
            episode (``spec`` must be None; the YAML's ``labsched/Random-v0`` entry; SB3's
            ``DummyVecEnv``/``SubprocVecEnv`` of ``RandomSpecEnv``; no features, constraint or
            named references). Evaluations replay the same draws of the training distribution
            (seeds ``seed + 10_000 + i``); ``agent.json`` records the env id and the padded
            layout, and :func:`~labsched.agents.loading.load_agent` returns a
            :class:`~labsched.agents.random_agent.RandomSpecAgent`.

    Returns:
        A :class:`TrainResult`. The folder holds ``model.zip``, ``best_model.zip``,
        ``agent.json``, ``hyperparams.yml``, ``eval_log.csv``, ``evaluations.npz``, the
        ``VecNormalize`` statistics when used (``*_vecnormalize.npz``, plain arrays: loading
        the folder runs no code), ``learning_curve.png`` and ``tb/``.
    """
    from stable_baselines3.common.utils import set_random_seed

    require_rl_extra("training")
    cfg = resolve_config(
        algo, spec, total_timesteps, time_limit_minutes, hyperparams_file, hyperparams, seed, out,
        eval_freq, eval_episodes, n_eval_envs, vec_env, verbose, constraint, env_kwargs, env_id,
    )  # fmt: skip
    cfg.init_model = str(init_model) if init_model is not None else None
    cfg.out.mkdir(parents=True, exist_ok=True)
    set_torch_threads(torch_threads)
    set_random_seed(seed)
    env, eval_env, constrained = make_envs(cfg)
    refs = _parse_references(
        references,
        spec=cfg.spec,
        n_envs=cfg.n_eval_envs,
        eval_seed=cfg.eval_seed,
        n_episodes=cfg.eval_episodes,
        env_kwargs=cfg.env_kwargs,
    )
    model = make_model(cfg, env, tensorboard)
    metadata = _metadata(cfg, refs)
    _write_metadata(cfg.out, metadata)
    _dump_yaml(cfg.params, cfg.out / "hyperparams.yml")
    callbacks = _make_callbacks(cfg, eval_env, progress_bar, constrained)
    seconds, train_seconds = _learn(cfg, model, callbacks)
    _save(cfg, model)
    result = _result(cfg, model, callbacks, seconds, train_seconds, refs)
    metadata["training"] = {k: getattr(result, k) for k in _TRAINING_FIELDS}
    if result.best_model is not None:
        metadata["training"]["best_model"] = result.best_model
    _write_metadata(cfg.out, metadata)
    if plot:
        _plot(cfg, result)
    env.close()
    eval_env.close()
    if verbose:
        _print_summary(result)
    return result


def _write_metadata(out: Path, metadata: Mapping[str, Any]) -> None:
    (out / METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=True, default=str) + "\n")
