"""Writing results people read: CSV of dataclass rows, Markdown tables, saved figures (and
reports that go on without their figures when matplotlib is missing)."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import sys
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["markdown_row", "markdown_table", "optional_plot", "pyplot", "save_figure", "write_csv"]

T = TypeVar("T")


def write_csv(rows: Sequence[Any], path: str | Path, fields: Sequence[str] | None = None) -> Path:
    """Write rows (dataclass instances or mappings) to a CSV file with a header line.

    Args:
        rows: the rows, all of one kind.
        path: output file (its folder is created).
        fields: column names; by default the dataclass fields or the first mapping's keys.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    dicts = [_as_dict(r) for r in rows]
    if fields is None:
        fields = list(dicts[0]) if dicts else []
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(fields))
        writer.writeheader()
        for d in dicts:
            writer.writerow(d)
    return path


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]], align: str | None = None) -> str:
    """A GitHub Markdown table; ``align`` is one character per column (``l``, ``r`` or ``c``)."""
    marks = {"l": ":---", "r": "---:", "c": ":---:"}
    align = align or "l" + "r" * (len(header) - 1)
    lines = [
        "| " + " | ".join(str(h) for h in header) + " |",
        "|" + "|".join(marks[a] for a in align) + "|",
    ]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def markdown_row(
    label: str,
    keys: Iterable[Hashable],
    cells: Mapping[Any, T],
    text: Callable[[T], str],
    missing: str = "",
) -> str:
    """One line of a pivot table: ``| label | text(cells[k]) | ... |`` over ``keys`` in order,
    ``missing`` where a key has no cell."""
    parts = [missing if (cell := cells.get(k)) is None else text(cell) for k in keys]
    return f"| {label} | " + " | ".join(parts) + " |"


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend (matplotlib is optional)."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(
            "plots and rgb_array rendering need matplotlib: pip install 'labsched[plot]'"
        ) from exc
    return plt


def save_figure(fig: Any, path: str | Path) -> Path:
    """Lay out ``fig``, write it to ``path`` (creating its folder), close it, return the path."""
    plt = pyplot()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


@contextlib.contextmanager
def optional_plot() -> Iterator[None]:
    """Run the plotting inside the block; if matplotlib is missing (``ImportError``), say so on
    stderr as ``(no plot: ...)`` and go on, so a report still gets its tables.

    Example::

        if plot:
            with optional_plot():
                files.append(plot_table(rows, out / "table.png"))
    """
    try:
        yield
    except ImportError as exc:
        print(f"(no plot: {exc})", file=sys.stderr)


def _as_dict(row: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(row) and not isinstance(row, type):
        return dataclasses.asdict(row)
    if isinstance(row, Mapping):
        return dict(row)
    raise TypeError(f"rows must be dataclass instances or mappings, got {type(row).__name__}")
