"""Writing results people read: CSV of dataclass rows, Markdown tables, saved figures."""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["markdown_table", "pyplot", "save_figure", "write_csv"]


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


def _as_dict(row: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(row) and not isinstance(row, type):
        return dataclasses.asdict(row)
    if isinstance(row, Mapping):
        return dict(row)
    raise TypeError(f"rows must be dataclass instances or mappings, got {type(row).__name__}")
