"""The command line's options: ``--help`` lists every subcommand and shows every default, and the
sweeps' ``--backend``/``--address`` pair is validated before anything runs."""

from __future__ import annotations

import argparse

import pytest

from labsched.cli import build_parser, main
from labsched.cli_common import (
    ADDRESS_ENV,
    DefaultsHelpFormatter,
    backend_address,
    check_address,
    default_note,
)

# ------------------------------------------------------------------------------------ help


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def _all_parsers(parser: argparse.ArgumentParser, name: str = "labsched"):
    """``(name, parser)`` for ``parser`` and every subcommand parser under it."""
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _all_parsers(sub, f"{name} {sub_name}")


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_top_level_help_lists_every_subcommand(capsys):
    names = list(_subparsers(build_parser()).choices)
    assert len(names) >= 12 and {"table2", "sweep", "campaign", "frontier", "information"} <= set(names)
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    description, _, listing = out.partition("positional arguments:")
    lines = listing.splitlines()
    for name in names:
        # in argparse's listing with its help, and in the description's "Subcommands:" table
        assert any(line.split()[:1] == [name] and len(line.split()) > 1 for line in lines), name
        assert any(line.startswith(f"    {name} ") for line in description.splitlines()), name


def test_every_option_of_every_subcommand_shows_its_default():
    checked = 0
    for name, parser in _all_parsers(build_parser()):
        assert issubclass(parser.formatter_class, DefaultsHelpFormatter), name
        for action in parser._actions:
            if default_note(action) is None:
                continue
            formatter = parser._get_formatter()
            formatter.add_argument(action)
            text = formatter.format_help()
            assert "default" in text.lower(), (name, action.dest, text)
            assert "%%" not in text, (name, action.dest)
            checked += 1
    assert checked > 150


@pytest.mark.parametrize(
    ("argv", "shown"),
    [
        (["table2"], "--horizons HORIZONS [HORIZONS ...] (default: 4.0 5.0 6.0)"),
        (["table2"], "--no-plot skip the PNG plot (default: off)"),
        (["table2"], "ray or dask (a cluster: --address) (default: loky)"),
        (["table2"], "--runs RUNS runs per entry (default 100) --selector"),  # its own text kept
        (["table2"], "--p-safe P_SAFE safety probability p (default: 0.95)"),
        (["queue-eval"], "--ci {normal,bootstrap} 95% CI method (default: normal)"),
        (["compare"], "--episodes EPISODES (default: 200)"),  # no help text: the default alone
        (["campaign", "report"], "-o OUTPUT, --output OUTPUT (default: report.html)"),
        (["frontier"], "models saved models (folders or zips) (default: none)"),
    ],
)
def test_help_shows_the_default_values(argv, shown, capsys):
    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    assert shown in _flat(capsys.readouterr().out)


def test_default_note_cases():
    p = argparse.ArgumentParser(formatter_class=DefaultsHelpFormatter)
    required = p.add_argument("journal")
    rate = p.add_argument("--rate", default="5%", help="a rate")
    none = p.add_argument("--x", default=None, help="x")
    empty = p.add_argument("--names", nargs="*", default=[], help="names")
    keep = p.add_argument("--keep", action="store_false", help="drop it")
    flag = p.add_argument("--flag", action=argparse.BooleanOptionalAction, default=True, help="flag")
    assert default_note(required) is None and default_note(none) is None
    assert default_note(rate) == "(default: 5%%)"
    assert default_note(empty) == "(default: none)"
    assert default_note(keep) == "(default: off)"
    assert default_note(flag) == "(default: True)"
    out = _flat(p.format_help())
    assert "--rate RATE a rate (default: 5%)" in out and "--keep drop it (default: off)" in out
    # BooleanOptionalAction may add its own default note (Python < 3.14): never twice
    assert out.count("default: True") == 1 and "--x X x --names" in out


# -------------------------------------------------------------------------- backend address


@pytest.mark.parametrize(
    ("backend", "address"),
    [
        ("dask", "tcp://127.0.0.1:8786"),
        ("dask", "10.0.0.5:8786"),
        ("dask", "tls://[::1]:8786"),
        ("dask", " scheduler.example.org:8786 "),
        ("ray", "auto"),
        ("ray", "10.0.0.5:6379"),
        ("ray", "ray://head-node:10001"),
        ("ray", "ray://head-node"),
    ],
)
def test_check_address_accepts_each_backends_forms(backend, address):
    assert check_address(backend, address) == address.strip()


@pytest.mark.parametrize(
    ("backend", "address"),
    [
        ("dask", "auto"),
        ("dask", "ray://head:10001"),
        ("dask", "tcp://host"),
        ("dask", "tcp://host:0"),
        ("dask", "host:70000"),
        ("dask", ""),
        ("dask", "tcp://a b:1"),
        ("dask", "http://host:8786"),
        ("ray", "tcp://host:6379"),
        ("ray", "head-node"),
        ("loky", "host:1"),
    ],
)
def test_check_address_rejects_what_the_backend_cannot_use(backend, address):
    with pytest.raises(ValueError, match="--address"):
        check_address(backend, address)


def _args(backend: str, address: str | None = None) -> argparse.Namespace:
    return argparse.Namespace(backend=backend, address=address)


def test_backend_address_reads_the_backends_environment_variable(monkeypatch):
    for env in ADDRESS_ENV.values():
        monkeypatch.delenv(env, raising=False)
    assert backend_address(_args("dask")) is None and backend_address(_args("ray")) is None
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://10.0.0.5:8786")
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.6:6379")
    assert backend_address(_args("dask")) == "tcp://10.0.0.5:8786"
    assert backend_address(_args("ray")) == "10.0.0.6:6379"
    assert backend_address(_args("loky")) is None
    # --address wins over the variable
    assert backend_address(_args("dask", "tcp://10.0.0.7:8786")) == "tcp://10.0.0.7:8786"
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "nonsense")
    with pytest.raises(ValueError, match=r"\$DASK_SCHEDULER_ADDRESS"):
        backend_address(_args("dask"))
    with pytest.raises(ValueError, match="--address needs --backend ray or dask"):
        backend_address(_args("loky", "tcp://10.0.0.5:8786"))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--address", "tcp://127.0.0.1:8786"], "--address needs --backend ray or dask"),
        (["--backend", "dask", "--address", "auto"], "--address of a dask cluster must be"),
        (["--backend", "ray", "--address", "tcp://127.0.0.1:6379"], "--address of a ray cluster must be"),
    ],
)
@pytest.mark.parametrize("command", ["table2", "figure1", "sweep", "information"])
def test_a_bad_address_is_a_one_line_error_before_anything_runs(command, extra, message, tmp_path, capsys):
    argv = [command, "--no-progress", "--no-plot", "--out", str(tmp_path / "out"), *extra]
    argv += ["--schedulers", "onfcp"] if command == "sweep" else []
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("labsched: error: ")
    assert message in err
    assert not (tmp_path / "out").exists()
