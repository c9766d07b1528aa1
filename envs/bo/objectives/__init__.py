"""Benchmark objectives for Bayesian optimisation, in the maximisation convention of the paper.

Each benchmark is an :class:`Objective`: a box (``bounds``), a known maximum (``optimum_value``)
and a maximiser (``optimizer``), a one-line ``formula``, ``notes`` on how our form relates to the
paper's Table 1 and to the usual (minimised) definition, and a vectorised ``__call__``. The
regret of a point is ``optimum_value - f(x)``, the quantity the paper reports in its Table 2.

The six synthetic functions of Azimi, Fern & Fern (section 6, Table 1) are provided:
``cosines`` (2-d), ``rosenbrock`` (2-d), ``hartmann3``, ``hartmann6``, ``michalewicz5`` and
``shekel4``, with the constants of their standard published definitions (Dixon & Szegő 1978 for
Hartmann and Shekel, Michalewicz 1994, Anderson, Moore & Cohn 2000 for Cosines and the shifted
Rosenbrock). Three extras that Bayesian-optimisation users expect are negated so that they are
maximised too: ``branin``, ``ackley`` (any dimension) and ``levy`` (any dimension).

The paper's two real-data benchmarks, *Hydrogen* and *FuelCell*, are regression models fitted to
laboratory data that was never published. They are deliberately absent: any stand-in would be an
invention, not the paper's benchmark.

Optimum values are stored to double precision. Where the literature quotes rounded values
(Hartmann 3.86278 and 3.32237, Shekel 10.5364, Michalewicz 4.687658), we refined them by local
optimisation from the published maximiser (Michalewicz: per coordinate, since it is separable)
and stored the refined value and maximiser.

:func:`make_objective` builds an objective from a registered name (``"hartmann(6)"``,
``"Shekel"``, ``"ackley(5)"``...), returns an :class:`Objective` unchanged, or wraps a user
callable given its ``bounds``; for a callable without a known optimum the maximum is estimated
numerically (:func:`estimate_maximum`) and the objective is marked ``optimum_estimated=True``.
"""

from labsched.envs.bo.objectives.base import Objective
from labsched.envs.bo.objectives.builtin import OBJECTIVES
from labsched.envs.bo.objectives.custom import estimate_maximum, make_objective

__all__ = ["OBJECTIVES", "Objective", "estimate_maximum", "make_objective"]
