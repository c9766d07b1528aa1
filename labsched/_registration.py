"""Registration of labsched's environments with Gymnasium (idempotent)."""

from __future__ import annotations

import gymnasium as gym

CONCURRENT_LABS_ID = "labsched/ConcurrentLabs-v0"
EXPERIMENT_QUEUE_ID = "labsched/ExperimentQueue-v0"

_VECTOR_ENTRY_POINTS = {CONCURRENT_LABS_ID: "labsched.envs.labs.vector_env:make_vector_env"}

_ENVS = {
    CONCURRENT_LABS_ID: "labsched.envs.labs.concurrent_labs:ConcurrentLabsEnv",
    EXPERIMENT_QUEUE_ID: "labsched.envs.queue.experiment_queue:ExperimentQueueEnv",
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
