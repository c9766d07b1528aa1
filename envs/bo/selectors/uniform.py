"""Uniform random inputs, a floor for comparisons: the ``"random"`` selector."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from labsched.envs.bo.candidates import SelectionContext
from labsched.envs.bo.selectors.base import Selector

__all__ = ["RandomSelector"]


class RandomSelector(Selector):
    """Uniform draws in the box, ignoring the model (a floor for comparisons)."""

    name: ClassVar[str] = "random"

    def _select(self, ctx: SelectionContext, k: int, rng: np.random.Generator) -> np.ndarray:
        return rng.random((k, ctx.dim))
