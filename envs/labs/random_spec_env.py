"""``labsched/Random-v0``: a new concurrent-labs problem at every reset, for agents that generalise.

:class:`RandomSpecEnv` draws a :class:`LabSpec` from a :class:`SpecDistribution` at every
``reset`` and plays one :class:`~labsched.envs.labs.concurrent_labs.ConcurrentLabsEnv` episode
of it. Its spaces do not depend on the drawn spec: the labs are padded to ``max_labs`` (masks
say which labs exist) and the spec's summary is part of the observation.

The training distribution (:class:`SpecDistribution`'s defaults, documented in
``docs/env.md``): ``l`` uniform in 2..16, ``n`` in ``l..4 l``, a duration family (truncated normal,
gamma, log-normal, uniform) of mean 1 and coefficient of variation in ``[0.1, 0.6]``, ``h`` the
fewest rounds ``ceil(n / l)`` times a slack in ``[1.2, 3]``, half of the time lab speeds ``2^u``
(``u`` in ``[-1, 1]``), half of the time one failure probability in ``[0, 0.2]``. The draw uses
the env's ``np_random`` (seeded by ``reset(seed=...)``), then the episode's own draws use a seed
taken from that generator: ``reset(seed=s)`` fixes the spec and the episode.

## Held-out specs

:data:`HELDOUT_SPECS` is the generalisation test: specs outside the training support where it
matters (more labs, a larger budget per lab, heavier tails, more failures, a tighter horizon),
plus the paper's setting (inside the support) as a reference. ``reset(options={"spec": s})``
plays a given spec.

## Action space
``Discrete(max_labs + 1)``: start ``k`` experiments (as in ``ConcurrentLabsEnv``). Actions above
the drawn ``l`` are masked out by :meth:`RandomSpecEnv.action_masks` and ``info["action_mask"]``;
given anyway, they are clipped (``invalid_action="clip"``, reported in ``info["clipped"]``) or
raise ``ValueError`` (``"raise"``).

## Observation space
A ``Dict`` (or with ``flatten=True`` its flat ``float32`` vector, keys in this order):

| key | shape | meaning |
|---|---|---|
| ``busy`` | (L,) int8 | lab ``i`` is running an experiment (0 for padded labs) |
| ``completed`` | (1,) | completed experiments / n |
| ``elapsed`` | (L,) | running time of lab ``i``'s experiment / E[D] (0 for padded labs) |
| ``lab_duration`` | (L,) | lab ``i``'s expected duration / E[D], at most 16 (1 on equal labs, 0 padded) |
| ``lab_failure`` | (L,) | lab ``i``'s failure probability (0 for padded labs) |
| ``lab_mask`` | (L,) int8 | 1 for the drawn spec's labs, 0 for padded ones |
| ``remaining_budget`` | (1,) | (n - started) / n |
| ``remaining_time`` | (1,) | (h - t) / h |
| ``spec`` | (8,) | the spec's summary (:data:`SUMMARY_FIELDS`) |
| ``started`` | (1,) | started experiments / n |

with ``L = max_labs`` and ``E[D]`` the mean of the spec's ``duration`` (its first guess when the
law is unknown).

Rewards, episode end and info are the inner env's (CPE by default); the info also has ``spec``
(the drawn :class:`LabSpec`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from labsched.envs._lib.validation import check_bool, check_choice, check_int, check_real
from labsched.envs.labs.concurrent_labs import ConcurrentLabsEnv
from labsched.envs.labs.continuous_durations import Gamma, LogNormal, TruncatedNormal, Uniform
from labsched.envs.labs.duration_model import DurationModel
from labsched.envs.labs.env_io import as_count
from labsched.envs.labs.spec import LabSpec

__all__ = [
    "DURATION_FAMILIES",
    "HELDOUT_SPECS",
    "MAX_LAB_DURATION",
    "RANDOM_ID",
    "SUMMARY_FIELDS",
    "RandomSpecEnv",
    "SpecDistribution",
    "duration_cv",
    "make_duration",
    "spec_summary_vector",
]

#: The Gymnasium id of :class:`RandomSpecEnv`.
RANDOM_ID = "labsched/Random-v0"

#: Duration families of the distribution (each built with mean 1 by :func:`make_duration`).
DURATION_FAMILIES = ("truncnorm", "gamma", "lognormal", "uniform")

#: Upper bound of the observation's ``lab_duration`` (a lab's expected duration / E[D]): labs
#: down to 1/16 of the common speed fit.
MAX_LAB_DURATION = 16.0

#: Entries of the observation's ``spec`` vector, in order.
SUMMARY_FIELDS = (
    "n / max_experiments",
    "l / max_labs",
    "h / (E[D] max_horizon)",
    "duration cv",
    "mean failure prob",
    "heterogeneous",
    "p_safe",
    "epoch / E[D]",
)


def make_duration(family: str, cv: float) -> DurationModel:
    """A duration law of mean 1 (close to 1 for the truncated normal) and coefficient of
    variation ``cv`` from one of :data:`DURATION_FAMILIES`.

    ``truncnorm``: the normal ``N(1, cv^2)`` truncated to ``(0, inf)``; ``gamma``: shape
    ``1 / cv^2``, scale ``cv^2``; ``lognormal``: ``sigma^2 = ln(1 + cv^2)``, ``mu = -sigma^2 / 2``;
    ``uniform``: ``[1 - w, 1 + w]`` with ``w = min(sqrt(3) cv, 0.95)``.

    Raises:
        ValueError: for an unknown family or ``cv`` outside ``(0, 2]``.
    """
    check_choice("family", family, DURATION_FAMILIES)
    cv = check_real("cv", cv, 0.0, 2.0, low_open=True)
    if family == "truncnorm":
        return TruncatedNormal(mu=1.0, sigma=cv)
    if family == "gamma":
        return Gamma(shape=1.0 / cv**2, scale=cv**2)
    if family == "lognormal":
        s2 = math.log1p(cv**2)
        return LogNormal(mu=-s2 / 2.0, sigma=math.sqrt(s2))
    w = min(math.sqrt(3.0) * cv, 0.95)
    return Uniform(low=1.0 - w, high=1.0 + w)


@lru_cache(maxsize=4096)
def duration_cv(law: DurationModel) -> float:
    """Coefficient of variation ``std / mean`` of a duration law (midpoint rule over 4096
    quantiles: within 0.5% for light tails, about 1% low for a log-normal of cv 1)."""
    q = law.quantile((np.arange(4096) + 0.5) / 4096)
    mean = float(law.mean)
    return float(math.sqrt(max(float(np.mean(np.square(q))) - mean**2, 0.0)) / mean)


@dataclass(frozen=True)
class SpecDistribution:
    """The distribution :class:`RandomSpecEnv` draws specs from (see the module docstring).

    Attributes:
        labs: inclusive range of the number of labs ``l``.
        experiments_per_lab: range of ``n / l`` (``n`` is a uniform integer in
            ``[ceil(a l), floor(b l)]``).
        horizon_slack: range of ``h / ceil(n / l)`` (in mean durations).
        families: duration families (:data:`DURATION_FAMILIES`), chosen uniformly.
        cv: range of the duration law's coefficient of variation.
        hetero_prob: probability that labs differ in speed.
        speed_log2: labs that differ get speed ``2^u``, ``u`` uniform in ``[-a, a]``.
        failure_prob: probability that experiments can fail at all.
        failure_range: range of the failure probability (one for every lab) when they can.
        p_safe, epoch: fixed fields of every drawn spec.
    """

    labs: tuple[int, int] = (2, 16)
    experiments_per_lab: tuple[float, float] = (1.0, 4.0)
    horizon_slack: tuple[float, float] = (1.2, 3.0)
    families: tuple[str, ...] = DURATION_FAMILIES
    cv: tuple[float, float] = (0.1, 0.6)
    hetero_prob: float = 0.5
    speed_log2: float = 1.0
    failure_prob: float = 0.5
    failure_range: tuple[float, float] = (0.0, 0.2)
    p_safe: float = 0.95
    epoch: float = 0.1

    def __post_init__(self) -> None:
        lo, hi = (check_int(f"labs[{i}]", v, 1) for i, v in enumerate(self.labs))
        if lo > hi:
            raise ValueError(f"SpecDistribution.labs must be (low, high) with low <= high, got {self.labs}")
        self._range("experiments_per_lab", 1e-9, None)
        self._range("horizon_slack", 1e-9, None)
        self._range("cv", 1e-9, 2.0)
        self._range("failure_range", 0.0, 1.0)
        if not self.families:
            raise ValueError("SpecDistribution.families must name at least one duration family")
        for f in self.families:
            check_choice("families", f, DURATION_FAMILIES)
        for name in ("hetero_prob", "failure_prob"):
            check_real(name, getattr(self, name), 0.0, 1.0)
        check_real("speed_log2", self.speed_log2, 0.0, 10.0)
        check_real("p_safe", self.p_safe, 0.0, 1.0, low_open=True, high_open=True)
        check_real("epoch", self.epoch, 0.0, None, low_open=True)

    def _range(self, name: str, low: float, high: float | None) -> None:
        pair = getattr(self, name)
        a, b = (check_real(f"{name}[{i}]", v, low, high) for i, v in enumerate(pair))
        if a > b:
            raise ValueError(f"SpecDistribution.{name} must be (low, high) with low <= high, got {pair}")

    @property
    def max_experiments(self) -> int:
        """The largest ``n`` the distribution draws."""
        return int(math.floor(self.experiments_per_lab[1] * self.labs[1] + 1e-9))

    @property
    def max_horizon(self) -> float:
        """The largest ``h`` (in mean durations) the distribution draws."""
        return math.ceil(self.max_experiments / self.labs[0]) * self.horizon_slack[1]

    def sample(self, rng: np.random.Generator) -> LabSpec:
        """One spec drawn with ``rng`` (the draws happen in the order of the table above)."""
        labs = int(rng.integers(self.labs[0], self.labs[1] + 1))
        n_lo = max(1, math.ceil(self.experiments_per_lab[0] * labs - 1e-9))
        n_hi = max(n_lo, math.floor(self.experiments_per_lab[1] * labs + 1e-9))
        n = int(rng.integers(n_lo, n_hi + 1))
        family = self.families[int(rng.integers(len(self.families)))]
        law = make_duration(family, float(rng.uniform(*self.cv)))
        slack = float(rng.uniform(*self.horizon_slack))
        horizon = max(round(math.ceil(n / labs) * slack * float(law.mean), 2), self.epoch)
        speeds = None
        if rng.random() < self.hetero_prob:
            speeds = tuple(float(2.0**u) for u in rng.uniform(-self.speed_log2, self.speed_log2, size=labs))
        q = float(rng.uniform(*self.failure_range)) if rng.random() < self.failure_prob else 0.0
        return LabSpec(
            n_experiments=n,
            n_labs=labs,
            horizon=horizon,
            duration=law,
            p_safe=self.p_safe,
            epoch=self.epoch,
            failure_prob=q,
            lab_speeds=speeds,
        )


#: The generalisation test (see the module docstring): name -> spec.
HELDOUT_SPECS: dict[str, LabSpec] = {
    "paper-h5": LabSpec(),
    "labs-24": LabSpec(n_experiments=60, n_labs=24, horizon=7.5),
    "labs-32": LabSpec(n_experiments=96, n_labs=32, horizon=7.5),
    "budget-6-per-lab": LabSpec(n_experiments=48, n_labs=8, horizon=12.0),
    "heavy-tail": LabSpec(duration=make_duration("lognormal", 1.0), horizon=6.0),
    "failures-0.35": LabSpec(failure_prob=0.35),
    "tight-horizon": LabSpec(n_experiments=40, n_labs=10, horizon=4.4),
    "speeds-4x": LabSpec(lab_speeds=(4.0, 4.0, 2.0, 2.0, 1.0, 1.0, 0.5, 0.5, 0.25, 0.25), horizon=5.0),
}


def spec_summary_vector(spec: LabSpec, max_experiments: int, max_labs: int, max_horizon: float) -> np.ndarray:
    """The observation's ``spec`` entry (:data:`SUMMARY_FIELDS`) of ``spec``, as ``float32``."""
    mean = float(spec.duration.mean)
    q = spec.lab_failure_probs
    return np.array(
        [
            spec.n_experiments / max_experiments,
            spec.n_labs / max_labs,
            spec.horizon / (mean * max_horizon),
            duration_cv(spec.duration),
            sum(q) / len(q),
            1.0 if spec.heterogeneous else 0.0,
            spec.p_safe,
            spec.epoch / mean,
        ],
        dtype=np.float32,
    )


class RandomSpecEnv(gym.Env):
    """A concurrent-labs episode of a new random spec at every reset (see the module docstring).

    Args:
        distribution: where specs are drawn from (default :class:`SpecDistribution()`).
        max_labs: labs of the padded spaces ``L`` (default 32: room for the held-out specs).
        max_experiments: scale of ``n`` in the summary, and the largest ``n`` accepted (default:
            the larger of the distribution's and the held-out specs' largest ``n``; 96).
        max_horizon: scale of ``h / E[D]`` in the summary and the largest accepted (default: the
            larger of the distribution's and the held-out specs' largest; 96).
        specs: a fixed list of specs to draw uniformly from instead of ``distribution`` (e.g.
            ``HELDOUT_SPECS.values()``).
        flatten: return the flat ``float32`` observation instead of the ``Dict``.
        invalid_action: ``"clip"`` or ``"raise"`` (as ``ConcurrentLabsEnv``).
        **env_options: further ``ConcurrentLabsEnv`` options (``normalize_reward``,
            ``decide_on_completion``, ...; not ``spec`` or spec fields).

    Raises:
        ValueError: for bad sizes, or specs that do not fit the padded spaces.
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        distribution: SpecDistribution | None = None,
        *,
        max_labs: int = 32,
        max_experiments: int | None = None,
        max_horizon: float | None = None,
        specs: Sequence[LabSpec] | None = None,
        flatten: bool = False,
        invalid_action: Literal["clip", "raise"] = "clip",
        **env_options: Any,
    ) -> None:
        if distribution is None:
            distribution = SpecDistribution()
        elif not isinstance(distribution, SpecDistribution):
            raise TypeError(f"distribution must be a SpecDistribution, got {type(distribution).__name__}")
        spec_fields = {f.name for f in dataclasses.fields(LabSpec)} | {"spec"}
        bad = sorted(set(env_options) & spec_fields)
        if bad:
            raise ValueError(f"RandomSpecEnv draws the spec itself; env options {bad} are not allowed")
        self.distribution = distribution
        self.specs = None if specs is None else tuple(specs)
        if self.specs is not None and not self.specs:
            raise ValueError("specs must hold at least one LabSpec (or be None)")
        for i, s in enumerate(self.specs or ()):
            if not isinstance(s, LabSpec):
                raise TypeError(f"specs[{i}] must be a LabSpec, got {type(s).__name__}")
        # The scales depend on the distribution and the held-out specs only (not on ``specs``), so
        # that every RandomSpecEnv of one distribution has the same observation.
        known = tuple(HELDOUT_SPECS.values())
        self.max_labs = check_int("max_labs", max_labs, max(distribution.labs[1], 1))
        default_n = max(distribution.max_experiments, *(s.n_experiments for s in known))
        self.max_experiments = check_int(
            "max_experiments", default_n if max_experiments is None else max_experiments, 1
        )
        default_h = max(distribution.max_horizon, *(s.horizon / float(s.duration.mean) for s in known))
        self.max_horizon = check_real(
            "max_horizon", default_h if max_horizon is None else max_horizon, 0.0, None, low_open=True
        )
        self.flatten = check_bool("flatten", flatten)
        check_choice("invalid_action", invalid_action, ("clip", "raise"))
        self.invalid_action = invalid_action
        self.env_options = dict(env_options)
        self.action_space = spaces.Discrete(self.max_labs + 1)
        self.dict_observation_space = self._dict_space()
        for s in self.specs or ():
            self._check_fits(s)
        self.observation_space = (
            spaces.flatten_space(self.dict_observation_space) if self.flatten else self.dict_observation_space
        )
        self.lab_spec: LabSpec | None = None
        self._env: ConcurrentLabsEnv | None = None
        self._summary = np.zeros(len(SUMMARY_FIELDS), dtype=np.float32)
        self._lab_duration = np.zeros(self.max_labs, dtype=np.float32)
        self._lab_failure = np.zeros(self.max_labs, dtype=np.float32)
        self._lab_mask = np.zeros(self.max_labs, dtype=np.int8)

    # ---------------------------------------------------------------------------- spaces
    def _dict_space(self) -> spaces.Dict:
        L = self.max_labs
        unit = spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32)
        top_duration = np.float32(max(MAX_LAB_DURATION, 2.0**self.distribution.speed_log2))
        return spaces.Dict(
            {
                "busy": spaces.MultiBinary(L),
                "completed": unit,
                "elapsed": spaces.Box(0.0, np.float32(self.max_horizon), shape=(L,), dtype=np.float32),
                "lab_duration": spaces.Box(0.0, top_duration, shape=(L,), dtype=np.float32),
                "lab_failure": spaces.Box(0.0, 1.0, shape=(L,), dtype=np.float32),
                "lab_mask": spaces.MultiBinary(L),
                "remaining_budget": unit,
                "remaining_time": unit,
                "spec": spaces.Box(0.0, np.float32(2.0), shape=(len(SUMMARY_FIELDS),), dtype=np.float32),
                "started": unit,
            }
        )

    def _check_fits(self, spec: LabSpec) -> None:
        """Refuse a spec that does not fit the padded spaces (naming the field and the bound)."""
        spec = getattr(spec, "scheduler_view", spec)  # the law the observation is scaled by
        mean = float(spec.duration.mean)
        top = float(self.dict_observation_space["lab_duration"].high[0])
        problems = []
        if spec.n_labs > self.max_labs:
            problems.append(f"n_labs={spec.n_labs} > max_labs={self.max_labs}")
        if spec.n_experiments > self.max_experiments:
            problems.append(f"n_experiments={spec.n_experiments} > max_experiments={self.max_experiments}")
        if spec.horizon / mean > self.max_horizon * (1 + 1e-9):
            problems.append(f"horizon / E[D]={spec.horizon / mean:g} > max_horizon={self.max_horizon:g}")
        if max(spec.lab_mean_durations) / mean > top:
            problems.append(f"a lab's expected duration / E[D] > {top:g}")
        if duration_cv(spec.duration) > 2.0 or spec.epoch / mean > 2.0:
            problems.append("the duration's cv or epoch / E[D] above the summary's bound 2")
        if problems:
            raise ValueError(f"spec does not fit RandomSpecEnv's spaces: {'; '.join(problems)}")

    # ---------------------------------------------------------------------------- API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Draw a spec and start its episode.

        Args:
            seed: seeds ``self.np_random``, which draws the spec and then the episode's seed.
            options: ``{"spec": LabSpec}`` plays that spec instead of a drawn one (it must fit
                the padded spaces); other keys go to the inner env's ``reset`` (``durations``).

        Raises:
            TypeError: for options that are not a dict, or a ``spec`` that is not a LabSpec.
            ValueError: for a spec that does not fit the spaces.
        """
        super().reset(seed=seed)
        if options is not None and not isinstance(options, dict):
            raise TypeError(f"reset options must be a dict or None, got {type(options).__name__}")
        inner_options = dict(options or {})
        forced = inner_options.pop("spec", None)
        if forced is not None:
            if not isinstance(forced, LabSpec):
                raise TypeError(f"options['spec'] must be a LabSpec, got {type(forced).__name__}")
            self._check_fits(forced)
            spec = forced
        elif self.specs is not None:
            spec = self.specs[int(self.np_random.integers(len(self.specs)))]
        else:
            spec = self.distribution.sample(self.np_random)
            self._check_fits(spec)
        inner_seed = int(self.np_random.integers(2**63 - 1))
        self._set_spec(spec)
        obs, info = self._env.reset(seed=inner_seed, options=inner_options or None)
        return self._observation(obs), self._info(info)

    def _set_spec(self, spec: LabSpec) -> None:
        if self._env is None or spec != self.lab_spec:
            self._env = ConcurrentLabsEnv(spec, invalid_action=self.invalid_action, **self.env_options)
        self.lab_spec = spec
        nl = spec.n_labs
        # What a scheduler may know: with an unknown law (LabSpec.known_durations=False) the
        # summary and the labs' expected durations use its first guess, as the inner env does.
        known = getattr(spec, "scheduler_view", spec)
        mean = float(known.duration.mean)
        self._summary = spec_summary_vector(known, self.max_experiments, self.max_labs, self.max_horizon)
        self._lab_duration = np.zeros(self.max_labs, dtype=np.float32)
        self._lab_duration[:nl] = np.asarray(known.lab_mean_durations, dtype=float) / mean
        self._lab_failure = np.zeros(self.max_labs, dtype=np.float32)
        self._lab_failure[:nl] = spec.lab_failure_probs
        self._lab_mask = np.zeros(self.max_labs, dtype=np.int8)
        self._lab_mask[:nl] = 1

    def action_masks(self) -> np.ndarray:
        """Valid actions ``k = 0..max_labs`` (False above the drawn ``l`` and the inner env's
        valid range)."""
        if self._env is None:
            raise gym.error.ResetNeeded("action_masks() called before reset(); call reset() first")
        return self._pad_mask(self._env.action_masks())

    def _pad_mask(self, mask: np.ndarray) -> np.ndarray:
        out = np.zeros(self.max_labs + 1, dtype=bool)
        out[: mask.size] = mask
        return out

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        if self._env is None:
            raise gym.error.ResetNeeded("step() called before reset(); call reset() first")
        k = as_count(action, self.max_labs)
        nl = self._env.lab_spec.n_labs
        clipped_here = k > nl
        if clipped_here:
            if self.invalid_action == "raise":
                raise ValueError(
                    f"invalid action {k}: the drawn spec has n_labs={nl} (max_labs={self.max_labs})"
                )
            requested, k = k, nl
        obs, reward, terminated, truncated, info = self._env.step(k)
        if clipped_here:
            info["requested_action"] = requested
            info["clipped"] = True
        return self._observation(obs), reward, terminated, truncated, self._info(info)

    # ---------------------------------------------------------------------------- views
    def _observation(self, inner: dict[str, Any]) -> Any:
        nl = self.lab_spec.n_labs
        busy = np.zeros(self.max_labs, dtype=np.int8)
        busy[:nl] = inner["busy"]
        elapsed = np.zeros(self.max_labs, dtype=np.float32)
        elapsed[:nl] = inner["elapsed"]
        obs = {
            "busy": busy,
            "completed": inner["completed"],
            "elapsed": elapsed,
            "lab_duration": self._lab_duration.copy(),
            "lab_failure": self._lab_failure.copy(),
            "lab_mask": self._lab_mask.copy(),
            "remaining_budget": inner["remaining_budget"],
            "remaining_time": inner["remaining_time"],
            "spec": self._summary.copy(),
            "started": inner["started"],
        }
        if self.flatten:
            return spaces.flatten(self.dict_observation_space, obs).astype(np.float32)
        return obs

    def _info(self, info: dict[str, Any]) -> dict[str, Any]:
        info["action_mask"] = self._pad_mask(info["action_mask"])
        info["spec"] = self.lab_spec
        return info
