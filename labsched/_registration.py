"""Registration of labsched's environments with Gymnasium (idempotent)."""

from __future__ import annotations

import gymnasium as gym

from labsched.envs.labs.random_spec_env import RANDOM_ID
from labsched.envs.labs.suite import ENTRY_POINT, suite_envs

CONCURRENT_LABS_ID = "labsched/ConcurrentLabs-v0"
EXPERIMENT_QUEUE_ID = "labsched/ExperimentQueue-v0"

_VECTOR_ENTRY_POINTS = {CONCURRENT_LABS_ID: "labsched.envs.labs.vector_env:make_vector_env"}

_ENVS = {
    CONCURRENT_LABS_ID: "labsched.envs.labs.concurrent_labs:ConcurrentLabsEnv",
    EXPERIMENT_QUEUE_ID: "labsched.envs.queue.experiment_queue:ExperimentQueueEnv",
    RANDOM_ID: "labsched.envs.labs.random_spec_env:RandomSpecEnv",
}


def register_envs() -> None:
    """Register every labsched environment id once; later calls do nothing."""
    for env_id, entry_point in _ENVS.items():
        if env_id not in gym.registry:
            gym.register(
                id=env_id,
                entry_point=entry_point,
                vector_entry_point=_VECTOR_ENTRY_POINTS.get(env_id),
                disable_env_checker=False,
            )
    register_suite()


def register_suite() -> None:
    """Register the benchmark suite's ids (``labsched.envs.labs.suite``) once.

    An entry that needs an env option this version lacks is skipped (its
    ``unavailable_reason()`` says why); the native vector env serves the entries whose options are
    all spec fields.
    """
    for entry in suite_envs(available_only=True):
        if entry.id not in gym.registry:
            gym.register(
                id=entry.id,
                entry_point=ENTRY_POINT,
                vector_entry_point=_VECTOR_ENTRY_POINTS[CONCURRENT_LABS_ID] if entry.vectorizable else None,
                kwargs=entry.registered_kwargs,
                disable_env_checker=False,
            )
