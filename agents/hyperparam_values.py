"""Checks of single hyperparameter values for :func:`labsched.agents.config.validate_hyperparams`:
integers and numbers in range, ``lin_<x>`` schedules, ``policy_kwargs`` in the zoo's string form,
and keys checked against the type of their constructor default. Each bad value raises a
``ValueError`` naming the algorithm, the key and what it must be."""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Mapping
from typing import Any

from labsched.envs._lib.validation import check_int, check_real

__all__ = [
    "ACTIVATIONS",
    "LIN_SCHEDULE",
    "RANGES",
    "bad_value",
    "check_by_default",
    "check_float_value",
    "check_int_value",
    "check_schedule",
    "is_number",
    "parse_policy_kwargs",
]

#: Activation names accepted in ``policy_kwargs.activation_fn`` (lower case -> ``torch.nn`` class).
ACTIVATIONS = {
    "tanh": "Tanh",
    "relu": "ReLU",
    "elu": "ELU",
    "leaky_relu": "LeakyReLU",
    "gelu": "GELU",
    "silu": "SiLU",
}


def bad_value(algo: str, key: str, value: Any, want: str) -> ValueError:
    """The ``ValueError`` of a bad hyperparameter: its key, value, algorithm and what it must be."""
    return ValueError(f"bad hyperparameter {key}={value!r} for {algo}: must be {want}")


def is_number(x: Any) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(float(x))


def check_int_value(algo: str, key: str, value: Any, low: int) -> int:
    """An integer ``>= low`` (a whole float such as YAML's ``1e5`` counts)."""
    if is_number(value) and float(value).is_integer():
        try:
            return check_int(key, int(value), low)
        except ValueError:
            pass
    raise bad_value(algo, key, value, f"an integer >= {low}")


def check_float_value(
    algo: str, key: str, value: Any, low: float, high: float = math.inf, open_low: bool = False
) -> float:
    """A number in ``[low, high]`` (``(low, high]`` with ``open_low``)."""
    try:
        return check_real(key, value, low, None if high == math.inf else high, low_open=open_low)
    except (TypeError, ValueError):
        bounds = f"{'>' if open_low else '>='} {low:g}" + ("" if high == math.inf else f" and <= {high:g}")
        raise bad_value(algo, key, value, f"a number {bounds}") from None


#: A linear schedule ``lin_<initial value>`` (decays to 0 over training, as in the zoo).
LIN_SCHEDULE = re.compile(r"^lin_([-+0-9.eE]+)$")


def check_schedule(algo: str, key: str, value: Any) -> float | str:
    """A number > 0 or a linear schedule ``lin_<number > 0>``."""
    if isinstance(value, str):
        m = LIN_SCHEDULE.match(value.strip())
        try:
            if m and float(m.group(1)) > 0:
                return value.strip()
        except ValueError:
            pass
        raise bad_value(
            algo, key, value, "a number > 0 or a linear schedule 'lin_<number>' such as 'lin_3e-4'"
        )
    return check_float_value(algo, key, value, 0.0, open_low=True)


#: Range checks of common keys (anything else is checked against its default's type).
RANGES: dict[str, tuple] = {
    "n_steps": ("int", 1),
    "batch_size": ("int", 1),
    "n_epochs": ("int", 1),
    "n_envs": ("int", 1),
    "n_timesteps": ("int", 1),
    "buffer_size": ("int", 1),
    "learning_starts": ("int", 0),
    "gradient_steps": ("int", -1),
    "target_update_interval": ("int", 1),
    "gamma": ("float", 0.0, 1.0, True),
    "gae_lambda": ("float", 0.0, 1.0, False),
    "ent_coef": ("float", 0.0),
    "vf_coef": ("float", 0.0),
    "max_grad_norm": ("float", 0.0, math.inf, True),
    "tau": ("float", 0.0, 1.0, True),
    "exploration_fraction": ("float", 0.0, 1.0, False),
    "exploration_initial_eps": ("float", 0.0, 1.0, False),
    "exploration_final_eps": ("float", 0.0, 1.0, False),
}


def parse_policy_kwargs(algo: str, value: Any) -> dict[str, Any]:
    """The zoo's string form (``"dict(net_arch=[64, 64], activation_fn=nn.Tanh)"``) or a mapping."""
    if isinstance(value, str):
        try:
            tree = ast.parse(value.strip(), mode="eval").body
            if not (
                isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name) and tree.func.id == "dict"
            ):
                raise ValueError
            if tree.args:
                raise ValueError
            out = {}
            for kw in tree.keywords:
                node = kw.value
                if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                    out[kw.arg] = node.attr  # nn.Tanh -> "Tanh"
                else:
                    out[kw.arg] = ast.literal_eval(node)
            value = out
        except (SyntaxError, ValueError) as exc:
            raise bad_value(
                algo, "policy_kwargs", value, "a mapping or a string like 'dict(net_arch=[64, 64])'"
            ) from exc
    if not isinstance(value, Mapping):
        raise bad_value(algo, "policy_kwargs", value, "a mapping or a string like 'dict(net_arch=[64, 64])'")
    out = dict(value)
    if "net_arch" in out:
        arch = out["net_arch"]
        ok_list = isinstance(arch, (list, tuple)) and all(_is_int_pos(x) for x in arch)
        ok_dict = (
            isinstance(arch, Mapping)
            and set(arch) <= {"pi", "vf", "qf"}
            and all(isinstance(v, (list, tuple)) and all(_is_int_pos(x) for x in v) for v in arch.values())
        )
        if not (ok_list or ok_dict):
            raise bad_value(
                algo, "policy_kwargs.net_arch", arch, "a list of layer sizes or dict(pi=[...], vf=[...])"
            )
        out["net_arch"] = list(arch) if ok_list else {k: list(v) for k, v in arch.items()}
    if "activation_fn" in out:
        act = out["activation_fn"]
        names = {v.lower(): v for v in ACTIVATIONS.values()}
        if isinstance(act, str) and (act.lower() in ACTIVATIONS or act.lower() in names):
            out["activation_fn"] = ACTIVATIONS.get(act.lower(), names.get(act.lower()))
        elif not isinstance(act, str):
            out["activation_fn"] = getattr(act, "__name__", str(act))
        else:
            raise bad_value(
                algo, "policy_kwargs.activation_fn", act, f"one of {sorted(ACTIVATIONS.values())} (torch.nn)"
            )
    return out


def _is_int_pos(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 1


def check_by_default(algo: str, key: str, value: Any, default: Any) -> Any:
    """A key without a range rule, checked against the type of its constructor default."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise bad_value(algo, key, value, "true or false")
    elif isinstance(default, int):
        if not (is_number(value) and float(value).is_integer()):
            raise bad_value(algo, key, value, "an integer")
        return int(value)
    elif isinstance(default, float):
        if not is_number(value):
            raise bad_value(algo, key, value, "a number")
        return float(value)
    elif default is None and value is not None and not isinstance(value, (int, float, str, list, dict)):
        raise bad_value(algo, key, value, "a number, string, list, mapping or null")
    return value
