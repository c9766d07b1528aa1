"""``labsched.agents.train``: train MaskablePPO / PPO / A2C / DQN on a ConcurrentLabs setting."""

from __future__ import annotations

import importlib.util
import json
import math
import platform
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labsched.envs.spec import LabSpec

from .config import ENV_ID, algorithm_info, load_hyperparams, model_kwargs
from .loading import FORMAT_VERSION, METADATA_FILE, normalizer_path, spec_to_dict

__all__ = ["TrainResult", "default_out_dir", "reference_cpe", "train"]


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
        best_mean_cpe: best mean evaluation CPE.
        final_mean_cpe: mean evaluation CPE of the final model.
        stop_reason: ``"timesteps"`` or ``"time_limit"``.
        references: mean CPE of the reference baselines on the evaluation episodes.
        eval_log: the ``eval_log.csv``.
        plot: the learning-curve PNG (None without matplotlib).
        model: the trained model (in memory; the final one).
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


def default_out_dir(algo: str, spec: LabSpec, seed: int) -> Path:
    """``runs/<algo>_n<n>_l<l>_h<h>_s<seed>``."""
    return (
        Path("runs")
        / f"{algorithm_info(algo).name}_n{spec.n_experiments}_l{spec.n_labs}_h{spec.horizon:g}_s{seed}"
    )


def reference_cpe(
    names: Iterable[str], spec: LabSpec, n_envs: int, eval_seed: int, n_episodes: int, env_kwargs=None
) -> dict[str, float]:
    """Mean CPE of baselines on exactly the evaluation episodes of training (same seeded envs)."""
    from stable_baselines3.common.evaluation import evaluate_policy

    from labsched import baselines

    from .envs import make_vec

    out = {}
    for name in names:
        agent = baselines.make(name, spec, seed=eval_seed)
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
    return reference_cpe(list(references), **kw)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

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
    vec_env: str = "dummy",
    progress_bar: bool = True,
    tensorboard: bool = True,
    plot: bool = True,
    verbose: int = 1,
    torch_threads: int = 1,
) -> TrainResult:
    """Train an agent on ``labsched/ConcurrentLabs-v0`` and save it with its evaluation log.

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
        vec_env: ``"dummy"`` (default) or ``"subproc"``.
        progress_bar: show a progress bar (tqdm).
        tensorboard: write TensorBoard logs to ``out/tb`` when tensorboard is installed.
        plot: write ``learning_curve.png`` (needs matplotlib).
        verbose: 0 silent, 1 evaluation lines and a summary, 2 also SB3's training logs.
        torch_threads: ``torch.set_num_threads`` (1 suits small MLPs on a shared machine).

    Returns:
        A :class:`TrainResult`. The folder holds ``model.zip``, ``best_model.zip``,
        ``agent.json``, ``hyperparams.yml``, ``eval_log.csv``, ``evaluations.npz``, the
        ``VecNormalize`` statistics when used, ``learning_curve.png`` and ``tb/``.
    """
    import torch
    from stable_baselines3.common.callbacks import CallbackList
    from stable_baselines3.common.utils import set_random_seed

    from .callbacks import ProgressCallback, TimeLimitCallback, make_eval_callback
    from .envs import make_vec

    info = algorithm_info(algo)
    spec = spec or LabSpec()
    if not isinstance(spec, LabSpec):
        raise TypeError(f"spec must be a labsched.LabSpec, got {type(spec).__name__}")
    params = load_hyperparams(info.name, spec, hyperparams_file, hyperparams)
    if total_timesteps is not None:
        if not (isinstance(total_timesteps, int) and total_timesteps >= 1):
            raise ValueError(f"total_timesteps must be an integer >= 1, got {total_timesteps!r}")
        params["n_timesteps"] = total_timesteps
    if time_limit_minutes is not None and not (
        isinstance(time_limit_minutes, (int, float)) and time_limit_minutes > 0
    ):
        raise ValueError(f"time_limit_minutes must be > 0, got {time_limit_minutes!r}")
    for name, value, low in (
        ("eval_freq", eval_freq, 0),
        ("eval_episodes", eval_episodes, 1),
        ("n_eval_envs", n_eval_envs, 1),
    ):
        if not (isinstance(value, int) and value >= low):
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    n_timesteps = int(params.get("n_timesteps", 1_000_000))
    n_envs = int(params.get("n_envs", 1))
    features = bool(params.get("features", False))
    normalize = params.get("normalize", False)
    env_kwargs = dict(params.get("env_kwargs", {}))
    policy = params.get("policy", "MlpPolicy")

    out = Path(out) if out is not None else default_out_dir(info.name, spec, seed)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(int(torch_threads), 1))
    set_random_seed(seed)
    eval_seed = seed + 10_000

    env = make_vec(
        spec, n_envs, seed, features=features, normalize=normalize, env_kwargs=env_kwargs, vec_env=vec_env
    )
    eval_env = make_vec(
        spec,
        n_eval_envs,
        eval_seed,
        features=features,
        normalize=normalize,
        env_kwargs=env_kwargs,
        evaluation=True,
    )
    refs = _parse_references(
        references,
        spec=spec,
        n_envs=n_eval_envs,
        eval_seed=eval_seed,
        n_episodes=eval_episodes,
        env_kwargs=env_kwargs,
    )

    tb_dir = None
    if tensorboard and importlib.util.find_spec("tensorboard") is not None:
        tb_dir = str(out / "tb")
    kwargs = model_kwargs(params)
    try:
        model = info.load_class()(
            policy,
            env,
            seed=seed,
            verbose=1 if verbose >= 2 else 0,
            tensorboard_log=tb_dir,
            device="cpu",
            **kwargs,
        )
    except (TypeError, ValueError, AssertionError) as exc:
        raise ValueError(f"bad hyperparameters for {info.name}: {exc}") from exc

    metadata = {
        "format": FORMAT_VERSION,
        "algo": info.name,
        "env_id": ENV_ID,
        "spec": spec_to_dict(spec),
        "observation": {"form": "flat", "features": features, "normalize": bool(normalize)},
        "env_kwargs": env_kwargs,
        "seed": seed,
        "eval_seed": eval_seed,
        "eval_episodes": eval_episodes,
        "n_eval_envs": n_eval_envs,
        "references": refs,
        "versions": _versions(),
    }
    _write_metadata(out, metadata)
    resolved = {**params, "n_timesteps": n_timesteps}
    _dump_yaml(resolved, out / "hyperparams.yml")

    progress = ProgressCallback(n_timesteps) if progress_bar else None
    eval_cb = make_eval_callback(
        info.masked,
        eval_env,
        eval_seed=eval_seed,
        n_eval_episodes=eval_episodes,
        eval_freq_steps=eval_freq if eval_freq > 0 else sys.maxsize,
        n_train_envs=n_envs,
        out=out,
        progress=progress,
        verbose=verbose,
    )
    callbacks = [eval_cb]
    limit = TimeLimitCallback(time_limit_minutes) if time_limit_minutes else None
    if limit is not None:
        callbacks.append(limit)
    if progress is not None:
        callbacks.append(progress)

    if verbose:
        limit_txt = f" (at most {time_limit_minutes:g} min)" if time_limit_minutes else ""
        print(
            f"training {info.class_name} on n={spec.n_experiments}, l={spec.n_labs}, h={spec.horizon:g} "
            f"for {n_timesteps} steps{limit_txt} -> {out}",
            file=sys.stderr,
        )
    t0 = time.perf_counter()
    model.learn(total_timesteps=n_timesteps, callback=CallbackList(callbacks), tb_log_name=info.name)
    seconds = time.perf_counter() - t0
    eval_cb.evaluate_now()  # the final model, on the same episodes
    train_seconds = max(seconds - eval_cb.eval_seconds, 1e-9)
    timesteps = int(model.num_timesteps)

    model.save(str(out / "model.zip"))
    vn = model.get_vec_normalize_env()
    if vn is not None:
        vn.save(str(normalizer_path(out / "model.zip")))
    rows = eval_cb.recorder.rows
    final_cpe = rows[-1]["mean_cpe"] if rows else math.nan
    best_cpe = float(eval_cb.best_mean_reward)
    stop = "time_limit" if limit is not None and limit.triggered else "timesteps"
    sps = timesteps / train_seconds
    result = TrainResult(
        out=out,
        model_path=out / "model.zip",
        best_model_path=out / "best_model.zip",
        algo=info.name,
        hyperparams=resolved,
        timesteps=timesteps,
        seconds=seconds,
        train_seconds=train_seconds,
        steps_per_second=sps,
        best_mean_cpe=best_cpe,
        final_mean_cpe=final_cpe,
        stop_reason=stop,
        references=refs,
        eval_log=out / "eval_log.csv",
    )
    result.model = model
    metadata["training"] = {
        k: getattr(result, k)
        for k in (
            "timesteps",
            "seconds",
            "train_seconds",
            "steps_per_second",
            "best_mean_cpe",
            "final_mean_cpe",
            "stop_reason",
        )
    }
    _write_metadata(out, metadata)
    if plot:
        try:
            from .plots import plot_learning_curve

            result.plot = plot_learning_curve(
                out / "eval_log.csv",
                out / "learning_curve.png",
                refs,
                title=f"{info.class_name}, n={spec.n_experiments}, l={spec.n_labs}, "
                f"h={spec.horizon:g}, seed {seed}",
            )
        except ImportError as exc:
            print(f"(no learning-curve plot: {exc})", file=sys.stderr)
    env.close()
    eval_env.close()
    if verbose:
        ref_txt = " (references: " + ", ".join(f"{k} {v:.2f}" for k, v in refs.items()) + ")" if refs else ""
        print(
            f"done: {timesteps} steps in {seconds:.1f} s ({sps:,.0f} env steps/s training, evaluations "
            f"excluded; stopped by {stop}); eval CPE final {final_cpe:.2f}, best {best_cpe:.2f}{ref_txt}\n"
            f"wrote {out}",
            file=sys.stderr,
        )
    return result


def _write_metadata(out: Path, metadata: Mapping[str, Any]) -> None:
    (out / METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=True, default=str) + "\n")
