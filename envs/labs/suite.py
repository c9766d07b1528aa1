"""The benchmark suite: named, versioned settings of the concurrent-labs problem (issue 14).

Every entry is data: a :class:`SuiteEnv` holds the Gymnasium id, the full :class:`LabSpec`, the
env options beyond the spec, a difficulty grade and a description. ``labsched/_registration.py``
registers each id with ``gymnasium.register`` from :func:`suite_envs`, so ::

    import gymnasium as gym
    import labsched

    env = gym.make("labsched/Hetero-v0")           # ConcurrentLabsEnv(spec=SUITE["Hetero-v0"].spec)
    env = gym.make("labsched/Paper-h4-v0", flatten=True)  # env options may be added

**Versioning.** An id never changes meaning: a different setting (any spec field, env option or
entry point) is a new version (``Hetero-v1``), and the old entry stays. ``tests/test_suite.py``
pins each entry's spec, so an edit in place fails there.

An entry may need an env option that this version of the environment does not have yet
(``UnknownDurations-v0`` needs ``known_durations``): :meth:`SuiteEnv.unavailable_reason` says so,
registration skips it and :meth:`SuiteEnv.make` raises that reason.

:func:`suite_markdown` renders the README's table of the suite.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from labsched.envs.labs.concurrent_labs import ConcurrentLabsEnv
from labsched.envs.labs.continuous_durations import Gamma, TruncatedNormal
from labsched.envs.labs.duration_model import DurationModel
from labsched.envs.labs.random_spec_env import RANDOM_ID
from labsched.envs.labs.spec import LabSpec

__all__ = [
    "ENTRY_POINT",
    "NAMESPACE",
    "SUITE",
    "SuiteEnv",
    "env_option_supported",
    "get_suite_env",
    "spec_summary",
    "suite_envs",
    "suite_markdown",
]

#: Namespace of the suite's Gymnasium ids.
NAMESPACE = "labsched"
#: The environment class every suite id builds.
ENTRY_POINT = "labsched.envs.labs.concurrent_labs:ConcurrentLabsEnv"


@cache
def env_option_supported(name: str) -> bool:
    """Whether ``ConcurrentLabsEnv`` takes the keyword option ``name`` (its own parameter or a
    :class:`LabSpec` field)."""
    params = inspect.signature(ConcurrentLabsEnv.__init__).parameters
    named = {p for p, v in params.items() if v.kind is not inspect.Parameter.VAR_KEYWORD}
    return name in named or name in {f.name for f in dataclasses.fields(LabSpec)}


@dataclass(frozen=True)
class SuiteEnv:
    """One registered setting of the suite.

    Attributes:
        name: the id without namespace, ``"<Setting>-v<version>"`` (e.g. ``"Paper-h5-v0"``).
        spec: the full problem.
        difficulty: grade 1 (easiest) to 5 (hardest): how far the setting is from what the
            paper's schedulers were designed for, and how large it is.
        description: one sentence on what the setting tests.
        env_options: ``ConcurrentLabsEnv`` options beyond the spec (e.g. ``known_durations``),
            as sorted ``(name, value)`` pairs.
    """

    name: str
    spec: LabSpec
    difficulty: int
    description: str
    env_options: tuple[tuple[str, Any], ...] = field(default=())

    def __post_init__(self) -> None:
        stem, sep, version = self.name.rpartition("-v")
        if not (sep and stem and version.isdigit()):
            raise ValueError(f"SuiteEnv.name must look like 'Setting-v0', got {self.name!r}")
        if not isinstance(self.spec, LabSpec):
            raise TypeError(f"SuiteEnv.spec must be a LabSpec, got {type(self.spec).__name__}")
        if isinstance(self.difficulty, bool) or self.difficulty not in range(1, 6):
            raise ValueError(f"SuiteEnv.difficulty must be an integer in [1, 5], got {self.difficulty!r}")
        object.__setattr__(self, "env_options", tuple(sorted(dict(self.env_options).items())))

    @property
    def id(self) -> str:
        """The Gymnasium id, ``"labsched/<name>"``."""
        return f"{NAMESPACE}/{self.name}"

    @property
    def version(self) -> int:
        """The version number of the id."""
        return int(self.name.rpartition("-v")[2])

    @property
    def options(self) -> dict[str, Any]:
        """The env options beyond the spec, as a dict."""
        return dict(self.env_options)

    @property
    def kwargs(self) -> dict[str, Any]:
        """The keyword arguments the id is registered with: ``spec`` and the env options."""
        return {"spec": self.spec, **self.options}

    @property
    def registered_kwargs(self) -> dict[str, Any]:
        """:attr:`kwargs` with the spec in its :meth:`LabSpec.to_dict` form: what Gymnasium
        registers, so that ``gym.spec(id).to_json()`` gives JSON that ``EnvSpec.from_json``
        turns back into the same environment (a ``LabSpec`` would be flattened by
        ``dataclasses.asdict`` and lose its duration law's type)."""
        return {"spec": self.spec.to_dict(), **self.options}

    @property
    def played_spec(self) -> LabSpec:
        """The spec the environment plays: :attr:`spec` with the env options that are
        :class:`LabSpec` fields (``known_durations``) applied.

        Raises:
            NotImplementedError: when the setting needs an option this version lacks.
        """
        reason = self.unavailable_reason()
        if reason:
            raise NotImplementedError(reason)
        names = {f.name for f in dataclasses.fields(LabSpec)}
        fields = {k: v for k, v in self.options.items() if k in names}
        return self.spec.replace(**fields) if fields else self.spec

    @property
    def vectorizable(self) -> bool:
        """Whether the native vector env takes the setting (every env option is a spec field)."""
        names = {f.name for f in dataclasses.fields(LabSpec)}
        return all(k in names for k in self.options)

    def unavailable_reason(self) -> str:
        """Why this version of labsched cannot build the setting ("" when it can)."""
        missing = [k for k in self.options if not env_option_supported(k)]
        if not missing:
            return ""
        return (
            f"{self.id} needs the ConcurrentLabsEnv option(s) {missing}, which this version of "
            "labsched does not have yet"
        )

    def make(self, **overrides: Any) -> ConcurrentLabsEnv:
        """The environment of this setting (``overrides``: more env options, e.g. ``flatten=True``).

        Raises:
            NotImplementedError: when the setting needs an env option this version lacks.
        """
        reason = self.unavailable_reason()
        if reason:
            raise NotImplementedError(reason)
        return ConcurrentLabsEnv(**{**self.kwargs, **overrides})


def _paper(horizon: float, difficulty: int, what: str) -> SuiteEnv:
    return SuiteEnv(
        f"Paper-h{horizon:g}-v0",
        LabSpec(horizon=horizon),
        difficulty,
        f"The paper's setting (Azimi, Fern & Fern, Table 2) at h = {horizon:g}: {what}.",
    )


#: Eight labs with the paper's law, two old instruments with a noisier gamma law (mean 1,
#: variance 0.25); speeds: two new instruments 1.5x, the old ones 0.6x.
_HETERO_LAWS: tuple[DurationModel, ...] = (TruncatedNormal(),) * 8 + (Gamma(shape=4.0, scale=0.25),) * 2
_HETERO_SPEEDS = (1.5, 1.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.6, 0.6)
#: Failure probabilities of the heterogeneous labs: the new instruments rarely fail, the old often.
_HETERO_FAILURES = (0.02, 0.02, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.15, 0.15)

_ENTRIES: tuple[SuiteEnv, ...] = (
    _paper(4.0, 3, "tight time, the schedulers must run many experiments at once"),
    _paper(5.0, 2, "the paper's central case, identical to labsched/ConcurrentLabs-v0's defaults"),
    _paper(6.0, 1, "loose time, the schedulers can afford sequential stretches"),
    SuiteEnv(
        "Hetero-v0",
        LabSpec(lab_durations=_HETERO_LAWS, lab_speeds=_HETERO_SPEEDS),
        3,
        "Labs that differ: two fast new instruments (speed 1.5), six standard, two slow old ones "
        "(speed 0.6, noisier gamma law); k starts go to the free labs fastest in expectation.",
    ),
    SuiteEnv(
        "Failures-v0",
        LabSpec(failure_prob=0.1),
        3,
        "The paper's setting where every experiment fails with probability 0.1, discovered when it ends.",
    ),
    SuiteEnv(
        "Hetero-Failures-v0",
        LabSpec(lab_durations=_HETERO_LAWS, lab_speeds=_HETERO_SPEEDS, failure_prob=_HETERO_FAILURES),
        4,
        "Hetero-v0's labs with failures that depend on the lab (0.02 on the new instruments, 0.05 on "
        "the standard ones, 0.15 on the old ones).",
    ),
    SuiteEnv(
        "UnknownDurations-v0",
        LabSpec(duration=TruncatedNormal(mu=1.25, sigma=1.25 * math.sqrt(0.1))),
        4,
        "Durations 25% slower (mean and spread) than the paper's law, which is all schedulers are "
        "told (known_durations=False: the paper's law is their first guess); they must learn the "
        "law from completions.",
        env_options=(("known_durations", False),),
    ),
    SuiteEnv(
        "Large-v0",
        LabSpec(n_experiments=200, n_labs=32, horizon=12.0),
        5,
        "A larger campaign: 200 experiments on 32 labs in 12 mean durations (at least 7 rounds of "
        "32 are needed), the paper's duration law.",
    ),
)

#: The suite by name (``"Paper-h5-v0"``), in table order.
SUITE: Mapping[str, SuiteEnv] = {e.name: e for e in _ENTRIES}


def suite_envs(available_only: bool = False) -> tuple[SuiteEnv, ...]:
    """Every suite entry, in table order (``available_only``: those this version can build)."""
    return tuple(e for e in _ENTRIES if not (available_only and e.unavailable_reason()))


def get_suite_env(name: str) -> SuiteEnv:
    """The entry of ``name`` (``"Hetero-v0"`` or ``"labsched/Hetero-v0"``).

    Raises:
        ValueError: for a name not in the suite (the message lists the known names).
    """
    if not isinstance(name, str):
        raise TypeError(f"suite name must be a string, got {type(name).__name__}")
    key = name.removeprefix(f"{NAMESPACE}/")
    if key not in SUITE:
        raise ValueError(f"unknown suite id {name!r}; known: {', '.join(SUITE)}")
    return SUITE[key]


# ------------------------------------------------------------------------------------ the table
def _law_text(law: DurationModel) -> str:
    if isinstance(law, TruncatedNormal) and law == TruncatedNormal():
        return "TN(1, 0.1)"
    if isinstance(law, TruncatedNormal) and math.isinf(law.high) and law.low == 0.0:
        return f"TN({law.mu:g}, {law.sigma**2:.3g})"
    if isinstance(law, Gamma):
        return f"Gamma({law.shape:g}, {law.scale:g})"
    return repr(law)


def _grouped(values: tuple[Any, ...], text: Any) -> str:
    """``"8 x a, 2 x b"`` of consecutive equal values (``text`` formats one value)."""
    parts, i = [], 0
    while i < len(values):
        j = i
        while j < len(values) and values[j] == values[i]:
            j += 1
        parts.append(f"{j - i}×{text(values[i])}" if j - i > 1 else text(values[i]))
        i = j
    return ", ".join(parts)


def spec_summary(spec: LabSpec) -> dict[str, str]:
    """The spec's fields as short texts (the columns of :func:`suite_markdown`)."""
    laws = spec.lab_laws if spec.lab_durations is not None else (spec.duration,)
    speeds = "all 1" if spec.lab_speeds is None else _grouped(spec.lab_speeds, lambda v: f"{v:g}")
    q = spec.failure_prob
    failures = f"{q:g}" if not isinstance(q, tuple) else _grouped(q, lambda v: f"{v:g}")
    return {
        "n": str(spec.n_experiments),
        "l": str(spec.n_labs),
        "h": f"{spec.horizon:g}",
        "durations": _grouped(laws, _law_text),
        "lab speeds": speeds,
        "failure prob": failures,
        "p": f"{spec.p_safe:g}",
        "epoch": f"{spec.epoch:g}",
    }


def suite_markdown(entries: tuple[SuiteEnv, ...] | None = None) -> str:
    """The Markdown table of the suite (one row per id with its full spec), for the README.

    ``TN(m, v)`` is the normal of mean ``m`` and variance ``v`` truncated to ``(0, inf)`` (the
    paper's law is ``TN(1, 0.1)``), ``Gamma(k, s)`` the gamma law of shape ``k`` and scale ``s``;
    ``8×a`` is eight labs with ``a``.
    """
    rows = suite_envs() if entries is None else entries
    head = [
        "id",
        "n",
        "l",
        "h",
        "durations",
        "lab speeds",
        "failure prob",
        "p",
        "epoch",
        "options",
        "difficulty",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in rows:
        s = spec_summary(e.spec)
        options = ", ".join(f"{k}={v!r}" for k, v in e.env_options) or "-"
        cells = [f"`{e.id}`", *s.values(), options, str(e.difficulty)]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines += [f"- `{e.id}`: {e.description}" for e in rows]
    if entries is None:
        lines.append(
            f"- `{RANDOM_ID}`: a new spec at every reset (l in 2..16, n in l..4l, four duration families "
            "with cv 0.1-0.6, h = 1.2-3x the fewest rounds, lab speeds and failures half of the time), "
            "labs padded to 32, the spec's summary in the observation; held-out specs test generalisation "
            "(`labsched.envs.labs.random_spec_env`)."
        )
    return "\n".join(lines) + "\n"
