"""Baselines by name: ``labsched.baselines.make("ps", spec)``.

:data:`BASELINES` is a :class:`~labsched.envs._lib.registry.Registry`: names are
case-insensitive, ``name in BASELINES`` and ``sorted(BASELINES)`` see the registered names, and
an unknown name raises a ``ValueError`` listing the known ones and the closest matches.
"""

from __future__ import annotations

from typing import Any

from labsched.baselines.base import BaselinePolicy
from labsched.baselines.labs.estimated import ESTIMATED_BASELINES
from labsched.baselines.labs.lab_actions import LabChoicePolicy
from labsched.envs._lib.registry import Registry
from labsched.envs.labs.spec import LabSpec

__all__ = ["BASELINES", "make", "register"]

BASELINES: Registry[type[BaselinePolicy]] = Registry("baseline")


def register(cls: type[BaselinePolicy], *, aliases: tuple[str, ...] = ()) -> type[BaselinePolicy]:
    """Add a baseline class under its ``name`` (usable as a decorator)."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no registry name")
    return BASELINES.add(cls.name, cls, aliases=aliases)


# Unknown duration laws (issue 14): ps-estimated, onmel-estimated, keep-busy-estimated.
for _cls in ESTIMATED_BASELINES:
    register(_cls)


def make(
    name: str, spec: LabSpec | None = None, *, action: str = "count", **options: Any
) -> BaselinePolicy | LabChoicePolicy:
    """Build a baseline by name.

    Args:
        name: one of ``sorted(BASELINES)`` (case-insensitive).
        spec: the problem (default: the paper's setting). With ``known_durations=False`` the
            baseline gets ``spec.scheduler_view`` (the first guess, never the true law).
        action: the environment's action mode: ``"count"`` (default; the baseline itself) or
            ``"labs"`` (a :class:`~labsched.baselines.labs.lab_actions.LabChoicePolicy` starting
            the baseline's count on the fastest free labs, for ``action="labs"`` environments).
        **options: constructor options of that baseline (``seed=...``, ``n_simulations=...``).

    Raises:
        TypeError: for a name that is not a string.
        ValueError: for an unknown name (the message lists the known ones and the closest) or
            an unknown ``action``.
    """
    if action not in ("count", "labs"):
        raise ValueError(f"action must be 'count' or 'labs', got {action!r}")
    spec = LabSpec() if spec is None else spec
    view = spec.scheduler_view if isinstance(spec, LabSpec) else spec  # the class names a wrong type
    policy = BASELINES.get(name)(view, **options)
    return LabChoicePolicy(policy) if action == "labs" else policy
