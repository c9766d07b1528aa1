"""Module attributes that load on first use (PEP 562), for package facades whose names live in
modules with heavy imports (SciPy's optimisers, stable-baselines3, torch).

Usage, at the bottom of a module::

    _LAZY = {"labsched.agents.training": ("TrainResult", "train")}
    __getattr__, __dir__ = lazy_attributes(__name__, _LAZY)

Relative module names (``".bo.selectors"``) resolve against the package of the module, as a
relative import written in it would.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["lazy_attributes", "lazy_names"]


def lazy_names(modules: Mapping[str, Iterable[str]]) -> dict[str, str]:
    """Each attribute name of ``modules`` (module name -> its names) mapped to its module.

    Raises:
        ValueError: if a name is listed under two modules.
    """
    out: dict[str, str] = {}
    for module, names in modules.items():
        for name in names:
            if name in out:
                raise ValueError(f"lazy attribute {name!r} is listed under {out[name]!r} and {module!r}")
            out[name] = module
    return out


def lazy_attributes(
    module_name: str, modules: Mapping[str, Iterable[str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``(__getattr__, __dir__)`` pair of a module whose listed names load on first use.

    Args:
        module_name: ``__name__`` of the module that assigns the pair.
        modules: module name (absolute, or relative to that module's package) -> the names it
            provides.

    Returns:
        ``__getattr__(name)`` imports the module holding ``name``, caches the value as an
        attribute of ``module_name`` (so later lookups are plain attribute reads) and returns it;
        other names raise ``AttributeError``. ``__dir__()`` lists the module's attributes and the
        lazy names, sorted.
    """
    names = lazy_names(modules)

    def __getattr__(name: str) -> Any:
        source = names.get(name)
        if source is None:
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
        module = sys.modules[module_name]
        value = getattr(importlib.import_module(source, module.__package__), name)
        setattr(module, name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[module_name])) | set(names))

    return __getattr__, __dir__
