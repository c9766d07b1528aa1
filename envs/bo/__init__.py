"""Bayesian optimisation: the Gaussian process, batch selectors, objectives and the BO episode
that the labs environment's regret mode drives. Independent of :mod:`labsched.envs.labs`."""

from __future__ import annotations

import importlib
from typing import Any

# SciPy's optimisation and statistics modules take most of a second to import, so the names
# load on first use (PEP 562): `import labsched` stays quick until regret mode is used.
_LAZY = {
    "labsched.envs.bo.episode": ("BOEpisode", "BOResult"),
    "labsched.envs.bo.selectors": ("SELECTORS", "make_selector"),
    "labsched.envs.bo.objectives": ("OBJECTIVES", "make_objective"),
}
_LAZY_NAMES = {name: module for module, names in _LAZY.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _LAZY_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_NAMES))


__all__ = sorted(_LAZY_NAMES)
