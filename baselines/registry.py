"""Baselines by name: ``labsched.baselines.make("ps", spec)``.

:data:`BASELINES` is a :class:`~labsched.envs._lib.registry.Registry`: names are
case-insensitive, ``name in BASELINES`` and ``sorted(BASELINES)`` see the registered names, and
an unknown name raises a ``ValueError`` listing the known ones and the closest matches.
"""

from __future__ import annotations

from typing import Any

from labsched.baselines.base import BaselinePolicy
from labsched.envs._lib.registry import Registry
from labsched.envs.labs.spec import LabSpec

__all__ = ["BASELINES", "make", "register"]

BASELINES: Registry[type[BaselinePolicy]] = Registry("baseline")


def register(cls: type[BaselinePolicy], *, aliases: tuple[str, ...] = ()) -> type[BaselinePolicy]:
    """Add a baseline class under its ``name`` (usable as a decorator)."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no registry name")
    return BASELINES.add(cls.name, cls, aliases=aliases)


def make(name: str, spec: LabSpec | None = None, **options: Any) -> BaselinePolicy:
    """Build a baseline by name.

    Args:
        name: one of ``sorted(BASELINES)`` (case-insensitive).
        spec: the problem (default: the paper's setting).
        **options: constructor options of that baseline (``seed=...``, ``n_simulations=...``).

    Raises:
        TypeError: for a name that is not a string.
        ValueError: for an unknown name (the message lists the known ones and the closest).
    """
    return BASELINES.get(name)(spec if spec is not None else LabSpec(), **options)
