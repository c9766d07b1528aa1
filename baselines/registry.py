"""Baselines by name: ``labsched.baselines.make("ps", spec)``."""

from __future__ import annotations

from typing import Any

from labsched.envs.spec import LabSpec

from .base import BaselinePolicy

__all__ = ["BASELINES", "make", "register"]

BASELINES: dict[str, type[BaselinePolicy]] = {}


def register(cls: type[BaselinePolicy]) -> type[BaselinePolicy]:
    """Add a baseline class under its ``name`` (usable as a decorator)."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no registry name")
    BASELINES[cls.name] = cls
    return cls


def make(name: str, spec: LabSpec | None = None, **options: Any) -> BaselinePolicy:
    """Build a baseline by name.

    Args:
        name: one of ``sorted(BASELINES)`` (case-insensitive).
        spec: the problem (default: the paper's setting).
        **options: constructor options of that baseline (``seed=...``, ``n_simulations=...``).

    Raises:
        ValueError: for an unknown name (the message lists the known ones).
    """
    if not isinstance(name, str):
        raise TypeError(f"baseline name must be a string, got {type(name).__name__}")
    key = name.strip().lower()
    if key not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; known baselines: {', '.join(sorted(BASELINES))}")
    return BASELINES[key](spec if spec is not None else LabSpec(), **options)
