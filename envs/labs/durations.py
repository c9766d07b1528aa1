"""Experiment-duration models (one import path for all of them).

Every model is a frozen dataclass with one interface (:class:`DurationModel`: ``cdf``, ``sf``,
``logcdf``, ``isf``, ``sample``, ``sample_residual``, ``mean``, ``support``, ``log_concave``;
see :mod:`labsched.envs.labs.duration_model`). The models live in small modules:

* :mod:`~labsched.envs.labs.duration_model`: the interface and the checks every model runs;
* :mod:`~labsched.envs.labs.continuous_durations`: ``TruncatedNormal``, ``LogNormal``,
  ``Gamma``, ``Exponential``, ``Uniform``;
* :mod:`~labsched.envs.labs.discrete_durations`: ``Deterministic``, ``Discrete``, ``Mixture``;
* :mod:`~labsched.envs.labs.duration_parsing`: :func:`parse_duration`, the command-line form.
"""

from __future__ import annotations

from labsched.envs.labs.continuous_durations import Exponential, Gamma, LogNormal, TruncatedNormal, Uniform
from labsched.envs.labs.discrete_durations import Deterministic, Discrete, Mixture
from labsched.envs.labs.duration_model import DurationModel
from labsched.envs.labs.duration_model import as_duration_model as as_duration_model
from labsched.envs.labs.duration_parsing import DurationSyntaxError as DurationSyntaxError
from labsched.envs.labs.duration_parsing import parse_duration as parse_duration

__all__ = [
    "Deterministic",
    "Discrete",
    "DurationModel",
    "Exponential",
    "Gamma",
    "LogNormal",
    "Mixture",
    "TruncatedNormal",
    "Uniform",
]
