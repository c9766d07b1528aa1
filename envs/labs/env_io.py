"""The concurrent-labs env's inputs and outputs: its observation space, its action masks, and the
checks of an action, of ``reset`` options and of forced durations (kept apart from the stepping
code of :mod:`labsched.envs.labs.concurrent_labs`)."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

__all__ = [
    "ACTION_MODES",
    "as_count",
    "as_lab_choice",
    "as_lab_choices",
    "check_env_options",
    "check_reset_options",
    "dict_observation_space",
    "forced_duration_array",
    "forced_durations",
    "lab_action_mask",
    "mask_templates",
    "readonly",
]


#: Largest float32: the observation's elapsed times (in mean durations) must fit.
_FLOAT32_MAX = float(np.finfo(np.float32).max)


#: Up to this many labs every mask is a precomputed template (at most 66 kB); beyond, masks are
#: windows of one strip, so that memory stays O(l) (l = 200,000 would need 40 GB of templates).
_MASK_TEMPLATES_UP_TO = 256


class _MaskWindows:
    """``windows[k]``: a read-only view allowing actions ``0..k`` of ``l + 1``, from one strip of
    ``l + 1`` True then ``l`` False (its window ``[l - k, 2 l + 1 - k)``)."""

    def __init__(self, n_labs: int) -> None:
        self._l = n_labs
        self._strip = readonly(np.arange(2 * n_labs + 1) <= n_labs)

    def __getitem__(self, k: int) -> np.ndarray:
        return self._strip[self._l - k : 2 * self._l + 1 - k]


def mask_templates(n_labs: int) -> list[np.ndarray] | _MaskWindows:
    """The masks of ``k = 0..l`` indexed by ``k`` (templates for small ``l``, windows beyond)."""
    if n_labs > _MASK_TEMPLATES_UP_TO:
        return _MaskWindows(n_labs)
    return [readonly(np.arange(n_labs + 1) <= k) for k in range(n_labs + 1)]


def dict_observation_space(
    n_labs: int, horizon: float, mean: float, lab_duration: np.ndarray | None = None
) -> spaces.Dict:
    """The ``Dict`` observation space (see the class docstring); ``lab_duration`` (each lab's
    expected duration / E[D], for heterogeneous labs) adds that key, bounded by its largest value.

    Raises:
        ValueError: when ``horizon / mean`` (the largest elapsed time, in mean durations) does not
            fit in a float32.
    """
    if horizon / mean > _FLOAT32_MAX:
        raise ValueError(
            f"horizon / E[D] = {horizon / mean:.3g} must be at most {_FLOAT32_MAX:.3g}: the observation "
            f"holds elapsed times in mean durations as float32 (horizon={horizon!r}, E[D]={mean!r}); "
            "use a shorter horizon or rescale time"
        )
    unit = spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32)
    keys = {
        "busy": spaces.MultiBinary(n_labs),
        "completed": unit,
        "elapsed": spaces.Box(0.0, np.float32(horizon / mean), shape=(n_labs,), dtype=np.float32),
        "remaining_budget": unit,
        "remaining_time": unit,
        "started": unit,
    }
    if lab_duration is not None:
        top = float(np.max(lab_duration.astype(np.float32)))
        if not top <= _FLOAT32_MAX:
            raise ValueError(
                f"the labs' expected durations / E[D] (up to {float(np.max(lab_duration)):.3g}) must fit "
                "in a float32; use lab_speeds or lab_durations closer to LabSpec.duration"
            )
        keys["lab_duration"] = spaces.Box(0.0, np.float32(top), shape=(n_labs,), dtype=np.float32)
    return spaces.Dict(keys)


def readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def as_count(action: Any, n_labs: int) -> int:
    """Validate an action (an integer, or a one-element integer array as SB3 passes it)."""
    if isinstance(action, np.ndarray) and action.size == 1:
        action = action.reshape(()).item() if np.issubdtype(action.dtype, np.integer) else action
    if isinstance(action, bool) or not isinstance(action, (int, np.integer)):
        raise TypeError(
            f"action must be an integer in [0, n_labs={n_labs}], got {action!r} ({type(action).__name__})"
        )
    k = int(action)
    if not 0 <= k <= n_labs:
        raise ValueError(f"action must be in [0, n_labs={n_labs}], got {k}")
    return k


#: The action modes: ``"count"`` (``Discrete(l + 1)``: start ``k`` on the free labs fastest in
#: expectation) and ``"labs"`` (``MultiBinary(l)``: start on exactly the labs marked 1).
ACTION_MODES = ("count", "labs")


def as_lab_choice(action: Any, n_labs: int) -> np.ndarray:
    """Validate a ``"labs"`` action: ``l`` zeros and ones (a list, tuple or array; bools allowed),
    or a batch of one such row as SB3 passes it. Returns an ``(l,)`` bool array.

    Raises:
        TypeError: for a value that is not a sequence of integers or bools.
        ValueError: for a wrong length or an entry other than 0 or 1.
    """
    try:
        a = np.asarray(action)
    except (TypeError, ValueError):  # ragged nested sequences
        a = np.asarray(None)
    if a.ndim == 2 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 1 or a.dtype.kind not in "biuf":
        hint = (
            " (a number of starts is the action='count' form; a baseline acts here when built with "
            "labsched.baselines.make(name, spec, action='labs'))"
            if a.ndim == 0 and a.dtype.kind in "iu"
            else ""
        )
        raise TypeError(
            f"action (action='labs') must be a sequence of n_labs={n_labs} zeros and ones "
            f"(MultiBinary({n_labs})), got {action!r}{hint}"
        )
    if a.shape[0] != n_labs:
        raise ValueError(f"action (action='labs') must have n_labs={n_labs} entries, got {a.shape[0]}")
    if a.dtype.kind != "b" and not np.all((a == 0) | (a == 1)):
        raise ValueError(f"action (action='labs') entries must be 0 or 1, got {a.tolist()}")
    return a.astype(bool)


def as_lab_choices(actions: Any, num_envs: int, n_labs: int) -> np.ndarray:
    """Validate ``N`` ``"labs"`` actions (the vector env's): an ``(N, l)`` bool array.

    Raises:
        ValueError: for another shape or an entry other than 0 or 1.
    """
    a = np.asarray(actions)
    if a.shape != (num_envs, n_labs):
        raise ValueError(f"actions (action='labs') must have shape ({num_envs}, {n_labs}), got {a.shape}")
    return a.copy() if a.dtype.kind == "b" else np.stack([as_lab_choice(row, n_labs) for row in a])


def check_env_options(
    invalid_action: Any, action: Any, reward: Any, render_mode: Any, render_modes: list
) -> None:
    """Refuse an unknown ``invalid_action``, ``action``, ``reward`` or ``render_mode`` (``ValueError``
    naming the option and its allowed values)."""
    if invalid_action not in ("clip", "raise"):
        raise ValueError(f"invalid_action must be 'clip' or 'raise', got {invalid_action!r}")
    if action not in ACTION_MODES:
        raise ValueError(f"action must be one of {list(ACTION_MODES)}, got {action!r}")
    if reward not in ("cpe", "regret", "information"):
        raise ValueError(f"reward must be one of ['cpe', 'regret', 'information'], got {reward!r}")
    if render_mode is not None and render_mode not in render_modes:
        raise ValueError(f"render_mode must be None or one of {render_modes}, got {render_mode!r}")


def lab_action_mask(free: np.ndarray, can_start: Any) -> np.ndarray:
    """sb3-contrib's ``MultiBinary`` mask of a ``"labs"`` action: ``(2 l,)`` bool (or
    ``(N, 2 l)`` for ``(N, l)`` inputs), per lab ``[0 allowed, 1 allowed]``: a lab may be
    chosen when it is free and budget remains (``can_start``, a bool or ``(N,)`` bools)."""
    free = np.asarray(free, dtype=bool)
    out = np.ones((*free.shape[:-1], 2 * free.shape[-1]), dtype=bool)
    out[..., 1::2] = free & np.asarray(can_start, dtype=bool)[..., None]
    return out


def check_reset_options(options: Any, optimising: bool) -> None:
    """Refuse a non-dict ``options`` and keys ``reset`` does not know (typos included).

    Args:
        options: the ``options`` given to ``reset`` (``None`` passes).
        optimising: the env runs an optimisation, so ``"initial_points"`` is a known key.

    Raises:
        TypeError: when ``options`` is neither a dict nor None.
        ValueError: for an unknown key.
    """
    if options is None:
        return
    known = ("durations", "initial_points") if optimising else ("durations",)
    if not isinstance(options, dict):
        raise TypeError(
            f"reset options must be a dict with keys among {list(known)} (or None), "
            f"got {type(options).__name__}"
        )
    unknown = sorted(str(k) for k in options if k not in known)
    if unknown:
        extra = (
            ""
            if optimising
            else "; 'initial_points' needs an optimisation (an objective, or reward='regret' or "
            "'information')"
        )
        raise ValueError(f"unknown reset option(s) {unknown}; known: {list(known)}{extra}")


def forced_durations(forced: Any, n: int) -> list[float]:
    """``options["durations"]`` as a list of ``n`` floats.

    Raises:
        ValueError: unless it holds ``n`` finite durations > 0.
    """
    return forced_duration_array(forced, (n,)).tolist()


def forced_duration_array(forced: Any, shape: tuple[int, ...]) -> np.ndarray:
    """``options["durations"]`` as a float array of ``shape`` (``(n,)``, or ``(N, n)`` for ``N``
    sub-environments of the vector env).

    Raises:
        ValueError: unless it holds finite durations > 0 in that shape.
    """
    d = np.asarray(forced, dtype=float)
    if d.shape != shape or not np.all(np.isfinite(d)) or np.any(d <= 0):
        size = shape[0] if len(shape) == 1 else shape
        raise ValueError(f"options['durations'] must be {size} finite durations > 0, got shape {d.shape}")
    return d
