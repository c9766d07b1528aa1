"""Bayesian optimisation: the Gaussian process, batch selectors, objectives and the BO episode
that the labs environment's regret mode drives. Independent of :mod:`labsched.envs.labs`."""

from __future__ import annotations

from labsched.envs._lib.lazy import lazy_attributes, lazy_names

# SciPy's optimisation and statistics modules take most of a second to import, so the names
# load on first use (PEP 562): `import labsched` stays quick until regret mode is used.
_LAZY = {
    "labsched.envs.bo.episode": ("BOEpisode", "BOResult"),
    "labsched.envs.bo.selectors": ("SELECTORS", "make_selector"),
    "labsched.envs.bo.objectives": ("OBJECTIVES", "make_objective"),
}
_LAZY_NAMES = lazy_names(_LAZY)
__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)


__all__ = sorted(_LAZY_NAMES)
