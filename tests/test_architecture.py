"""The package's architecture: one-way imports without cycles, no hidden function-level imports
of labsched modules, modules of a readable size, and a light ``import labsched``."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: The folders holding the package sources (setuptools maps them onto ``labsched.*``).
PACKAGE_DIRS = ("envs", "baselines", "agents", "evaluation", "labsched")
#: Longest module without a written reason (a ``# size: ...`` comment).
MAX_LINES = 500
#: Longest function (decorators, signature and docstring included) without a ``# size: ...``
#: reason on its ``def`` line or the line above it.
MAX_FUNCTION_LINES = 80


def _sources() -> list[Path]:
    return sorted(p for d in PACKAGE_DIRS for p in (ROOT / d).rglob("*.py") if "__pycache__" not in p.parts)


def _function_level_labsched_imports(path: Path) -> list[str]:
    """``file:line module`` for every import of a labsched module inside a function body."""
    tree = ast.parse(path.read_text(), filename=str(path))
    name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if in_function and isinstance(child, ast.Import):
                found.extend(
                    f"{name}:{child.lineno} {a.name}"
                    for a in child.names
                    if a.name == "labsched" or a.name.startswith("labsched.")
                )
            elif in_function and isinstance(child, ast.ImportFrom):
                module = child.module or ""
                if child.level > 0 or module == "labsched" or module.startswith("labsched."):
                    found.append(f"{name}:{child.lineno} {'.' * child.level}{module}")
            visit(child, inside)

    visit(tree, False)
    return found


def test_import_contracts_hold_and_there_are_no_cycles():
    pytest.importorskip("importlinter")
    pytest.importorskip("grimp")
    run = subprocess.run(
        [sys.executable, str(ROOT / ".ci" / "lint_imports.py")], capture_output=True, text=True, cwd=ROOT
    )
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    assert "BROKEN" not in report, report
    assert not [line for line in report.splitlines() if line.startswith("import cycle:")], report
    assert "no import cycles between labsched modules" in report


def test_no_function_level_imports_of_labsched_modules():
    offenders = [hit for path in _sources() for hit in _function_level_labsched_imports(path)]
    assert offenders == [], "imports of labsched modules inside functions:\n" + "\n".join(offenders)


def test_the_scan_sees_nested_and_relative_imports(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import os\nimport labsched\n\ndef f():\n    import torch\n    import labsched.envs\n"
        "    def g():\n        from . import x\n\nclass C:\n    def m(self):\n"
        "        from labsched import agents\n"
    )
    hits = _function_level_labsched_imports(probe)
    assert [h.split(" ", 1)[1] for h in hits] == ["labsched.envs", ".", "labsched"]


def test_modules_are_short_or_say_why():
    long = []
    for path in _sources():
        text = path.read_text()
        n = text.count("\n")
        if n > MAX_LINES and "# size:" not in text:
            long.append(f"{path.relative_to(ROOT)}: {n} lines")
    assert long == [], f"modules over {MAX_LINES} lines without a '# size:' reason:\n" + "\n".join(long)


def _long_functions(path: Path, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    """``file:line name (N lines)`` for every function over ``limit`` lines without a reason."""
    text = path.read_text()
    lines = text.splitlines()
    name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
    found = []
    for node in ast.walk(ast.parse(text, filename=str(path))):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        n = node.end_lineno - first + 1
        reason = "# size:" in lines[node.lineno - 1] or (first >= 2 and "# size:" in lines[first - 2])
        if n > limit and not reason:
            found.append(f"{name}:{node.lineno} {node.name} ({n} lines)")
    return found


def test_functions_are_short_or_say_why():
    long = [hit for path in _sources() for hit in _long_functions(path)]
    assert long == [], (
        f"functions over {MAX_FUNCTION_LINES} lines without a '# size:' reason on the def line or the "
        "line above:\n" + "\n".join(long)
    )


def test_the_function_length_scan_counts_and_reads_reasons(tmp_path):
    body = "".join(f"    x{i} = {i}\n" for i in range(5))
    probe = tmp_path / "probe.py"
    probe.write_text(
        f"def short():\n{body}\n@staticmethod\ndef long():\n{body}\n"
        f"# size: a reason\ndef excused():\n{body}\ndef inline():  # size: a reason\n{body}"
    )
    # short and long are 6 and 7 lines (the decorator counts); the excused ones are skipped.
    assert [h.split(" ", 1)[1] for h in _long_functions(probe, limit=6)] == ["long (7 lines)"]
    assert _long_functions(probe, limit=5) == [
        "probe.py:1 short (6 lines)",
        "probe.py:9 long (7 lines)",
    ]


def test_import_labsched_stays_light():
    code = (
        "import sys, labsched; heavy = ('torch', 'stable_baselines3', 'sb3_contrib', 'matplotlib', "
        "'sklearn', 'ray', 'dask'); print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_package_folder_is_in_the_wheel():
    """Each folder with an ``__init__.py`` is a package listed in pyproject (or the wheel misses it)."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = set()
    for package, folder in config["package-dir"].items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            found.add(".".join([package, *rel.parts]) if rel.parts else package)
    assert found <= listed, sorted(found - listed)
