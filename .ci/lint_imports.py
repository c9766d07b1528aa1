#!/usr/bin/env python3
"""Check labsched's import architecture: import-linter contracts and no import cycles.

labsched maps root folders (envs/, baselines/, ...) onto ``labsched.*`` with setuptools'
package-dir, which import-linter and grimp cannot follow (they walk one directory tree). This
script copies the sources into a temporary ``labsched/`` tree with the installed layout, then runs
``lint-imports`` (contracts in pyproject.toml) and a cycle search over every module.

Usage: python .ci/lint_imports.py   (exit status 0 when every check passes)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent


def stage(dest: Path) -> Path:
    """Copy the package sources into ``dest/labsched`` with the installed layout."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    package_dir = config["tool"]["setuptools"]["package-dir"]
    for package, folder in package_dir.items():
        target = dest.joinpath(*package.split("."))
        shutil.copytree(
            ROOT / folder, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__")
        )
    return dest


def find_cycles(package: str) -> list[list[str]]:
    """Strongly connected components (size > 1) of the module import graph of ``package``."""
    import grimp

    graph = grimp.build_graph(package)
    modules = sorted(graph.modules)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(root: str) -> None:  # iterative Tarjan
        work = [(root, iter(edges[root]))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, it = work[-1]
            advanced = False
            for nxt in it:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter[0]
                    counter[0] += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(edges[nxt])))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    comp.append(m)
                    if m == node:
                        break
                if len(comp) > 1:
                    cycles.append(sorted(comp))

    for m in modules:
        if m not in index:
            visit(m)
    return cycles


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        staged = stage(Path(tmp))
        env = dict(os.environ, PYTHONPATH=str(staged))
        lint = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from importlinter.cli import lint_imports_command; "
                "sys.exit(lint_imports_command())",
                "--config",
                str(ROOT / "pyproject.toml"),
                "--no-cache",
            ],
            env=env,
            cwd=tmp,
        )
        sys.path.insert(0, str(staged))
        cycles = find_cycles("labsched")
    for comp in cycles:
        print("import cycle:", " <-> ".join(comp))
    if not cycles:
        print("no import cycles between labsched modules")
    return 1 if lint.returncode or cycles else 0


if __name__ == "__main__":
    sys.exit(main())
