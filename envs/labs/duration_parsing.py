"""Duration laws written on a command line: ``"truncnorm:1,0.316"``, ``"gamma:10,0.1"``, ..."""

from __future__ import annotations

import argparse
import math

from labsched.envs.labs.continuous_durations import Exponential, Gamma, LogNormal, TruncatedNormal, Uniform
from labsched.envs.labs.discrete_durations import Deterministic
from labsched.envs.labs.duration_model import DurationModel

__all__ = ["DURATION_KINDS", "DurationSyntaxError", "parse_duration"]

#: The command-line kinds: the model, its required parameters and its optional ones, in order.
DURATION_KINDS: dict[str, tuple[type[DurationModel], tuple[str, ...], tuple[str, ...]]] = {
    "truncnorm": (TruncatedNormal, ("mu", "sigma"), ("low", "high")),
    "lognormal": (LogNormal, ("mu", "sigma"), ()),
    "gamma": (Gamma, ("shape", "scale"), ()),
    "exponential": (Exponential, ("mean_duration",), ()),
    "uniform": (Uniform, ("low", "high"), ()),
    "deterministic": (Deterministic, ("value",), ()),
}


class DurationSyntaxError(ValueError, argparse.ArgumentTypeError):
    """A duration text that does not describe a valid law (a ``ValueError``).

    It is also an ``argparse.ArgumentTypeError``, so ``type=parse_duration`` in an argparse option
    prints this message rather than argparse's bare "invalid parse_duration value".
    """


def _form(kind: str) -> str:
    _, required, optional = DURATION_KINDS[kind]
    return f"{kind}:{','.join(required)}" + "".join(f"[,{name}]" for name in optional)


def parse_duration(text: str) -> DurationModel:
    """Parse a command-line duration such as ``"truncnorm:1,0.316"`` or ``"gamma:10,0.1"``.

    Known forms: ``truncnorm:mu,sigma[,low[,high]]``, ``lognormal:mu,sigma``,
    ``gamma:shape,scale``, ``exponential:mean``, ``uniform:low,high``, ``deterministic:value``.
    Every required parameter must be given (no silent defaults): ``"gamma:1"`` is refused, naming
    the missing ``scale``.

    Args:
        text: the duration text.

    Returns:
        The duration model.

    Raises:
        TypeError: if ``text`` is not a string.
        DurationSyntaxError: (a ``ValueError``) for an unknown kind, a missing, extra or
            non-numeric parameter, or parameters the model refuses; the message names the
            parameter and the reason.
    """
    if not isinstance(text, str):
        raise TypeError(f"duration must be a string such as 'gamma:10,0.1', got {type(text).__name__}")
    kind, _, args = text.partition(":")
    kind = kind.strip().lower()
    if kind not in DURATION_KINDS:
        raise DurationSyntaxError(
            f"unknown duration kind {kind!r} in {text!r}; known: {', '.join(sorted(DURATION_KINDS))}"
        )
    cls, required, optional = DURATION_KINDS[kind]
    parts = [a.strip() for a in args.split(",")] if args.strip() else []
    if not len(required) <= len(parts) <= len(required) + len(optional):
        missing = required[len(parts) :]
        what = f"missing parameter {', '.join(missing)}" if missing else f"{len(parts)} values given"
        raise DurationSyntaxError(
            f"duration {text!r}: {kind} needs its parameters as {_form(kind)} ({what}); "
            f"forms: {', '.join(_form(k) for k in DURATION_KINDS)}"
        )
    params: dict[str, float] = {}
    for name, part in zip(required + optional, parts, strict=False):
        try:
            value = float(part)
        except ValueError:
            value = math.nan
        if math.isnan(value):
            raise DurationSyntaxError(
                f"duration {text!r}: {kind} parameter {name} must be a number, got {part!r}"
            )
        params[name] = value
    try:
        return cls(**params)
    except (TypeError, ValueError) as exc:
        raise DurationSyntaxError(f"duration {text!r}: {exc}") from None
