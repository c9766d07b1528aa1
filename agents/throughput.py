"""Training throughput on ConcurrentLabs beside PPO on CartPole-v1 (same process, same budget)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from labsched.agents.config import AlgorithmInfo, algorithm_info, load_hyperparams, model_kwargs
from labsched.agents.envs import make_vec
from labsched.envs._lib.threads import torch_threads
from labsched.envs.labs.spec import LabSpec

__all__ = ["params_vec_env", "throughput_vs_cartpole"]

#: Settings shared with the CartPole run, so that the ratio measures the environment side.
_SHARED = (
    "n_steps",
    "batch_size",
    "n_epochs",
    "gamma",
    "gae_lambda",
    "ent_coef",
    "policy_kwargs",
    "learning_rate",
)


def params_vec_env(spec: LabSpec, params: Mapping[str, Any], seed: int, *, vec_env: str = "native") -> Any:
    """The training vector env a hyperparameter entry asks for (``n_envs``, ``features``,
    ``normalize``, ``env_kwargs``), of kind ``vec_env``."""
    return make_vec(
        spec,
        int(params.get("n_envs", 1)),
        seed,
        features=bool(params.get("features", False)),
        normalize=params.get("normalize", False),
        env_kwargs=params.get("env_kwargs"),
        vec_env=vec_env,
    )


def _learn_rate(model: Any, steps: int) -> tuple[float, int]:
    t0 = time.perf_counter()
    model.learn(total_timesteps=steps)
    dt = time.perf_counter() - t0
    return model.num_timesteps / dt, int(model.num_timesteps)


def throughput_vs_cartpole(
    algo: str = "maskable_ppo",
    spec: LabSpec | None = None,
    steps: int = 5_000,
    hyperparams: Mapping[str, Any] | Iterable[str] | None = None,
    seed: int = 0,
    verbose: bool = True,
) -> dict[str, float]:
    """Env steps per second of training ``algo`` on ConcurrentLabs and PPO on CartPole-v1.

    Both runs train for the same budget in this process with one torch thread, the same number
    of envs (ConcurrentLabs in the entry's ``vec_env``, native by default; CartPole in SB3's
    ``DummyVecEnv``) and, for the PPO family, the same ``n_steps``, ``batch_size``,
    ``n_epochs`` and network, so their ratio reflects the environment side (simulation,
    features, masks) rather than the learner. Evaluation, logging and saving are left out.

    Args:
        algo: algorithm on ConcurrentLabs (its hyperparameters as ``train`` resolves them).
        spec: the problem (default: the paper's setting).
        steps: env steps of each run (rounded up to whole rollouts by SB3).
        hyperparams: overrides, as for ``train``.
        seed: seed of both runs.
        verbose: print both figures and the ratio.

    Returns:
        ``{"labsched_steps_per_s", "cartpole_steps_per_s", "ratio", "labsched_steps",
        "cartpole_steps"}``.
    """
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.utils import set_random_seed

    info = algorithm_info(algo)
    spec = spec or LabSpec()
    params = load_hyperparams(info.name, spec, None, hyperparams)
    n_envs = int(params.get("n_envs", 1))
    torch_threads(1)
    set_random_seed(seed)
    env = params_vec_env(spec, params, seed)
    kwargs = model_kwargs(params)
    model = info.load_class()(params.get("policy", "MlpPolicy"), env, seed=seed, device="cpu", **kwargs)
    lab_sps, lab_steps = _learn_rate(model, steps)
    env.close()

    cart_kwargs = (
        {k: v for k, v in kwargs.items() if k in _SHARED} if info.name in ("ppo", "maskable_ppo") else {}
    )
    cart_env = make_vec_env("CartPole-v1", n_envs=n_envs, seed=seed)
    cart = PPO("MlpPolicy", cart_env, seed=seed, device="cpu", **cart_kwargs)
    cart_sps, cart_steps = _learn_rate(cart, steps)
    cart_env.close()

    ratio = lab_sps / cart_sps
    if verbose:
        _print_figures(info, spec, params, steps, n_envs, (lab_sps, lab_steps), (cart_sps, cart_steps))
    return {
        "labsched_steps_per_s": lab_sps,
        "cartpole_steps_per_s": cart_sps,
        "ratio": ratio,
        "labsched_steps": lab_steps,
        "cartpole_steps": cart_steps,
    }


def _print_figures(
    info: AlgorithmInfo,
    spec: LabSpec,
    params: Mapping[str, Any],
    steps: int,
    n_envs: int,
    lab: tuple[float, int],
    cartpole: tuple[float, int],
) -> None:
    """Both throughputs, the shared settings and their ratio, on stdout."""
    (lab_sps, lab_steps), (cart_sps, cart_steps) = lab, cartpole
    ratio = lab_sps / cart_sps
    shared = ", ".join(f"{k}={params[k]}" for k in ("n_steps", "batch_size", "n_epochs") if k in params)
    obs = "+".join(
        x
        for x, on in (
            ("flat", True),
            ("features", params.get("features")),
            ("VecNormalize", params.get("normalize")),
        )
        if on
    )
    print(
        f"training throughput ({steps} env steps each, {n_envs} envs, {shared}, 1 torch thread):\n"
        f"  {info.class_name} on ConcurrentLabs-v0 (n={spec.n_experiments}, l={spec.n_labs}, "
        f"h={spec.horizon:g}; {obs}): {lab_sps:,.0f} env steps/s ({lab_steps} steps)\n"
        f"  PPO on CartPole-v1 (same settings): {cart_sps:,.0f} env steps/s ({cart_steps} steps)\n"
        f"  ratio ConcurrentLabs / CartPole: {ratio:.2f}"
    )
