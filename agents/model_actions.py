"""Actions of a loaded SB3 model under the env's masks: the one call both saved-agent kinds make."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["model_actions"]


def model_actions(
    model: Any, x: np.ndarray, masks: np.ndarray, masked: bool, deterministic: bool
) -> np.ndarray:
    """The model's actions for the rows of ``x``, always valid under ``masks``.

    Args:
        model: a stable-baselines3 / sb3-contrib model.
        x: ``(batch, width)`` model inputs (features and normalisation already applied).
        masks: ``(batch, k + 1)`` valid counts (a prefix of True: start 0..max).
        masked: pass the masks to the model (``MaskablePPO``); otherwise its actions are clipped.
        deterministic: the model's ``deterministic`` flag.

    Returns:
        ``(batch,)`` int64 actions, each at most the largest valid count of its row.
    """
    if masked:
        actions, _ = model.predict(x, deterministic=deterministic, action_masks=masks)
    else:
        actions, _ = model.predict(x, deterministic=deterministic)
    return np.minimum(np.asarray(actions, dtype=np.int64).reshape(-1), masks.sum(axis=1) - 1)
