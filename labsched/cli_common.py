"""What several ``labsched`` subcommands share: the problem spec, the plot switch, the sweep
backend and its cluster address, and the help formatter that shows every option's default."""

from __future__ import annotations

import argparse
import copy
import functools
import importlib.util
import os
import re

from labsched.envs.labs.durations import parse_duration
from labsched.envs.labs.spec import LabSpec
from labsched.evaluation.backends import BACKENDS

__all__ = [
    "ADDRESS_ENV",
    "DefaultsHelpFormatter",
    "add_backend_args",
    "add_plot_choice",
    "add_spec_args",
    "backend_address",
    "check_address",
    "default_note",
    "plot_wanted",
    "show_defaults",
    "spec_from",
]

#: The environment variable each cluster backend reads its scheduler address from when
#: ``--address`` is not given (the variables Ray's and Dask's own clients read).
ADDRESS_ENV = {"ray": "RAY_ADDRESS", "dask": "DASK_SCHEDULER_ADDRESS"}
#: URL schemes of each backend's addresses (an address may also have none: ``HOST:PORT``).
_SCHEMES = {"ray": ("ray",), "dask": ("tcp", "tls", "ucx", "ws", "wss")}
_ADDRESS = re.compile(
    r"(?:(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://)?(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(?::(?P<port>\d+))?"
)


def add_spec_args(p: argparse.ArgumentParser, horizon_default: float | None = 5.0) -> None:
    """The ``LabSpec`` options (``--horizon`` only when ``horizon_default`` is not None)."""
    g = p.add_argument_group("problem spec (defaults: the paper's setting)")
    g.add_argument("-n", "--n-experiments", type=int, default=20, help="budget n of experiments")
    g.add_argument("-l", "--n-labs", type=int, default=10, help="number l of labs")
    if horizon_default is not None:
        g.add_argument("--horizon", type=float, default=horizon_default, help="horizon h")
    g.add_argument(
        "--duration",
        type=parse_duration,
        default=None,
        help="duration law, e.g. truncnorm:1,0.316 (default), gamma:10,0.1, lognormal:0,0.3, "
        "exponential:1, uniform:0.5,1.5, deterministic:1",
    )
    g.add_argument("--p-safe", type=float, default=0.95, help="safety probability p")
    g.add_argument("--epoch", type=float, default=0.1, help="decision interval Delta")


def spec_from(args: argparse.Namespace, horizon: float | None = None) -> LabSpec:
    """The ``LabSpec`` of the options :func:`add_spec_args` added (``horizon`` overrides ``--horizon``)."""
    kwargs = dict(
        n_experiments=args.n_experiments,
        n_labs=args.n_labs,
        horizon=horizon if horizon is not None else args.horizon,
        p_safe=args.p_safe,
        epoch=args.epoch,
    )
    if args.duration is not None:
        kwargs["duration"] = args.duration
    return LabSpec(**kwargs)


def plot_wanted(args: argparse.Namespace) -> bool:
    """``--plot`` / ``--no-plot`` as given, else whether matplotlib is installed."""
    if getattr(args, "no_plot", False):
        return False
    if getattr(args, "plot", False):
        return True
    return importlib.util.find_spec("matplotlib") is not None


def add_plot_choice(p: argparse.ArgumentParser, plot_help: str, no_plot_help: str | None = None) -> None:
    """The mutually exclusive ``--plot`` / ``--no-plot`` switches."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("--plot", action="store_true", help=plot_help)
    g.add_argument("--no-plot", action="store_true", help=no_plot_help)


def add_backend_args(p: argparse.ArgumentParser) -> None:
    """The ``--backend`` and ``--address`` options of the sweeps (read with :func:`backend_address`)."""
    p.add_argument(
        "--backend",
        choices=list(BACKENDS),
        default="loky",
        help="where the cells run: loky (processes on this machine), ray or dask (a cluster: --address)",
    )
    p.add_argument(
        "--address",
        default=None,
        metavar="ADDRESS",
        help="scheduler of a running cluster: Dask tcp://HOST:8786, Ray HOST:6379, ray://HOST:10001 or "
        "auto (default: $DASK_SCHEDULER_ADDRESS or $RAY_ADDRESS, else a local cluster of --jobs workers)",
    )


def check_address(backend: str, address: str, name: str = "--address") -> str:
    """``address`` (stripped) if ``backend``'s client can connect to it, else a ``ValueError``.

    Dask takes ``[tcp|tls|ucx|ws|wss://]HOST:PORT``; Ray takes ``HOST:PORT`` (the head's GCS
    port), ``ray://HOST[:PORT]`` (Ray Client) or ``auto``/``local``. ``HOST`` is a name, an IPv4
    address or a bracketed IPv6 address; ``PORT`` is 1-65535.
    """
    if backend not in _SCHEMES:
        raise ValueError(f"{name} needs --backend ray or dask, got --backend {backend}")
    text = address.strip()
    if backend == "ray" and text in ("auto", "local"):
        return text
    forms = {
        "dask": "[tcp|tls|ucx|ws|wss://]HOST:PORT, e.g. tcp://10.0.0.5:8786",
        "ray": "HOST:PORT, ray://HOST[:PORT] or auto, e.g. 10.0.0.5:6379",
    }[backend]
    match = _ADDRESS.fullmatch(text)
    scheme = match["scheme"].lower() if match and match["scheme"] else None
    port = int(match["port"]) if match and match["port"] else None
    if (
        match is None
        or (scheme is not None and scheme not in _SCHEMES[backend])
        or (port is None and scheme != "ray")
        or (port is not None and not 1 <= port <= 65535)
    ):
        raise ValueError(f"{name} of a {backend} cluster must be {forms}, got {address!r}")
    return text


def backend_address(args: argparse.Namespace) -> str | None:
    """The cluster address of ``--backend`` and ``--address`` (:func:`add_backend_args`).

    ``--address`` when given, else the backend's environment variable (:data:`ADDRESS_ENV`),
    else None (a local cluster); always None for ``loky``.

    Raises:
        ValueError: for ``--address`` with ``--backend loky`` or an address the backend cannot
            use (:func:`check_address`).
    """
    if args.backend not in ADDRESS_ENV:
        if args.address is not None:
            raise ValueError(f"--address needs --backend ray or dask, got --backend {args.backend}")
        return None
    if args.address is not None:
        return check_address(args.backend, args.address)
    env = ADDRESS_ENV[args.backend]
    value = os.environ.get(env, "").strip()
    return check_address(args.backend, value, f"${env}") if value else None


def default_note(action: argparse.Action) -> str | None:
    """``"(default: X)"`` for an option's help (``%`` escaped), or None when there is no default
    to show: None or ``SUPPRESS``, or a positional argument that must be given.

    Lists are shown space-separated as they are typed (``none`` when empty); a switch that
    stores ``True`` or ``False`` is ``off`` unless given.
    """
    default = action.default
    if default is None or default is argparse.SUPPRESS:
        return None
    if not action.option_strings and action.nargs not in ("?", "*"):
        return None
    if action.nargs == 0 and isinstance(action.const, bool) and default is (not action.const):
        text = "off"
    elif isinstance(default, (list, tuple)):
        text = " ".join(str(v) for v in default) or "none"
    else:
        text = str(default)
    return "(default: " + text.replace("%", "%%") + ")"


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Shows each option's default: appends ``(default: X)`` (:func:`default_note`) to a help text
    that does not mention a default already, and gives an option without help just that."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        note = default_note(action)
        if note is None or "default" in text.lower():
            return text
        return f"{text} {note}" if text else note

    def _format_action(self, action: argparse.Action) -> str:
        note = default_note(action)
        if not action.help and note is not None:
            action = copy.copy(action)
            action.help = note
        return super()._format_action(action)


@functools.cache
def _with_defaults(formatter: type) -> type:
    """``formatter`` with :class:`DefaultsHelpFormatter` mixed in (its other behaviour kept)."""
    if issubclass(formatter, DefaultsHelpFormatter):
        return formatter
    return type(f"Defaults{formatter.__name__}", (DefaultsHelpFormatter, formatter), {})


def show_defaults(parser: argparse.ArgumentParser) -> None:
    """Make ``parser`` and every subcommand parser under it show each option's default in
    ``--help`` (:class:`DefaultsHelpFormatter`, keeping a raw description where there was one)."""
    parser.formatter_class = _with_defaults(parser.formatter_class)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                show_defaults(sub)
