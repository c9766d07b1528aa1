"""The results file of ``labsched leaderboard``: one CSV row per cell, validated on resume.

The same policy as the regret sweeps' file (:mod:`labsched.evaluation.results_file`): a fixed
header, rows flushed as cells finish under an exclusive ``flock``, and nothing doubtful reused
on resume. A wrong header, a malformed row, a row whose ``cell_id`` does not match its own
fields, or impossible results (CPE outside ``[0, n (n - 1) / 2]``, completion counts outside
``[0, n]``, a block with the wrong number of episodes) raise :class:`LeaderboardFileError`
naming the file and the line; only an unterminated last line (an interrupted write) is dropped
with a warning and its cell recomputed.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import warnings
from pathlib import Path
from typing import Any

from labsched.evaluation.labs.leaderboard_cells import CELL_FIELDS, BoardCell, max_values
from labsched.evaluation.results_file import crlf_message

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no locking
    fcntl = None  # type: ignore[assignment]

__all__ = ["RESULT_FIELDS", "ROW_FIELDS", "BoardFile", "LeaderboardFileError", "read_board_rows"]


class LeaderboardFileError(ValueError):
    """A leaderboard results file that cannot be trusted (the message names the file and line)."""


#: Result columns: ``status`` (``ok`` or ``n/a``), ``reason`` (why n/a), the episodes' CPE,
#: completed count and whether all ``n`` experiments ended by ``h`` (space-separated, in episode
#: order), and the cell's wall time.
RESULT_FIELDS: tuple[str, ...] = ("status", "reason", "cpe", "completed", "ended", "wall_time")
#: Columns of the file, in order.
ROW_FIELDS: tuple[str, ...] = ("cell_id", *CELL_FIELDS, *RESULT_FIELDS)
_INT_FIELDS = {"block", "block_size", "seed"}
_INTS = re.compile(r"^(-?\d+( -?\d+)*)?$")


def _header() -> str:
    return ",".join(ROW_FIELDS) + "\n"


def row_line(row: dict[str, Any]) -> str:
    """The CSV line of a row (floats with ``repr``, so they read back bit for bit)."""
    buf = io.StringIO()
    values = [repr(float(row[c])) if c == "wall_time" else str(row[c]) for c in ROW_FIELDS]
    csv.writer(buf, lineterminator="\n").writerow(values)
    return buf.getvalue()


def _ints(text: str) -> list[int]:
    if not _INTS.match(text):
        raise ValueError(f"not space-separated integers: {text[:60]!r}")
    return [int(v) for v in text.split()]


def _parse(path: Path, number: int, line: str) -> dict[str, Any]:
    try:
        fields = next(csv.reader([line]))
    except csv.Error as exc:
        raise LeaderboardFileError(f"{path}: line {number}: unparsable CSV ({exc})") from exc
    if len(fields) != len(ROW_FIELDS):
        raise LeaderboardFileError(f"{path}: line {number}: {len(fields)} fields, expected {len(ROW_FIELDS)}")
    row: dict[str, Any] = dict(zip(ROW_FIELDS, fields, strict=True))
    try:
        for c in _INT_FIELDS:
            row[c] = int(row[c])
        row["wall_time"] = float(row["wall_time"])
        cell = BoardCell(**{c: row[c] for c in CELL_FIELDS})
        cpe, completed, ended = (_ints(row[c]) for c in ("cpe", "completed", "ended"))
    except (TypeError, ValueError) as exc:
        raise LeaderboardFileError(f"{path}: line {number}: {exc}") from exc
    if cell.id != row["cell_id"]:
        raise LeaderboardFileError(
            f"{path}: line {number}: cell_id {row['cell_id']} does not match the row's own fields "
            f"(expected {cell.id}); the row was edited or written by another version"
        )
    problem = _problem(row, cell, cpe, completed, ended)
    if problem:
        raise LeaderboardFileError(f"{path}: line {number}: {problem}; the row was edited or corrupted")
    return row


def _problem(
    row: dict[str, Any], cell: BoardCell, cpe: list[int], completed: list[int], ended: list[int]
) -> str:
    """What is impossible in a row ("" when nothing is)."""
    if row["status"] == "n/a":
        if cpe or completed or ended or not row["reason"]:
            return "an n/a row has a reason and no episodes"
        return ""
    if row["status"] != "ok":
        return f"status must be 'ok' or 'n/a', got {row['status']!r}"
    if not len(cpe) == len(completed) == len(ended) == cell.block_size:
        return (
            f"a block of block_size={cell.block_size} episodes needs that many values in cpe/completed/ended"
        )
    max_cpe, n = max_values(cell)
    if any(not 0 <= c <= max_cpe for c in cpe):
        return f"cpe must be in [0, n (n - 1) / 2 = {max_cpe}]"
    if any(not 0 <= c <= n for c in completed):
        return f"completed must be in [0, n_experiments={n}]"
    if any(e not in (0, 1) for e in ended):
        return "ended must be 0 or 1"
    if not row["wall_time"] >= 0:
        return "wall_time must be >= 0"
    return ""


def _scan(path: Path) -> tuple[dict[str, dict[str, Any]], int, int | None]:
    """``(rows by id, bytes of the trusted prefix, number of a dropped final line or None)``."""
    data = path.read_bytes()
    if not data:
        return {}, 0, None
    text = data.decode("utf-8", errors="strict")
    lines = text.split("\n")
    tail = lines.pop()
    dropped = len(lines) + 1 if tail else None
    good = len(data) - len(tail.encode("utf-8"))
    if not lines:
        if tail and not _header().startswith(tail):
            raise LeaderboardFileError(f"{path}: line 1: not a labsched leaderboard results file")
        return {}, 0, dropped
    if lines[0].endswith("\r"):
        raise LeaderboardFileError(crlf_message(path))
    if lines[0] + "\n" != _header():
        raise LeaderboardFileError(
            f"{path}: line 1: wrong header (not a labsched leaderboard results file, or another version's);\n"
            f"  expected: {_header().strip()}\n  found:    {lines[0][:300]}"
        )
    rows: dict[str, dict[str, Any]] = {}
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            raise LeaderboardFileError(f"{path}: line {number}: empty line inside the results")
        row = _parse(path, number, line)
        old = rows.get(row["cell_id"])
        if old is not None and {**old, "wall_time": 0} != {**row, "wall_time": 0}:
            raise LeaderboardFileError(
                f"{path}: line {number}: cell {row['cell_id']} appears again with different values"
            )
        rows.setdefault(row["cell_id"], row)
    return rows, good, dropped


def read_board_rows(path: str | Path) -> list[dict[str, Any]]:
    """The validated rows of a leaderboard results file (the file is not modified).

    Raises:
        LeaderboardFileError: for a corrupted file (a truncated final line is ignored with a
            warning).
    """
    path = Path(path)
    rows, _, dropped = _scan(path)
    if dropped is not None:
        warnings.warn(f"{path}: line {dropped}: incomplete final line ignored", UserWarning, stacklevel=2)
    return list(rows.values())


class BoardFile:
    """Append-only, locked access to a leaderboard results file (``resume=False``: start afresh)."""

    def __init__(self, path: Path, resume: bool) -> None:
        self.path = Path(path)
        self.resume = resume
        self.rows: dict[str, dict[str, Any]] = {}

    def __enter__(self) -> BoardFile:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.f = open(self.path, "a+b")
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(self.f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as exc:
                    raise RuntimeError(
                        f"{self.path} is locked: another leaderboard run is writing to it"
                    ) from exc
            good, empty = 0, True
            if self.resume:
                self.rows, good, dropped = _scan(self.path)
                empty = good == 0
                if dropped is not None:
                    warnings.warn(
                        f"{self.path}: line {dropped}: incomplete final line (interrupted write) dropped; "
                        "its cell will be recomputed",
                        UserWarning,
                        stacklevel=3,
                    )
            self.f.truncate(good)
            self.f.seek(0, os.SEEK_END)
            if empty:
                self.f.write(_header().encode())
                self.f.flush()
        except BaseException:
            self.f.close()
            raise
        return self

    def append(self, row: dict[str, Any]) -> None:
        """Write one row and flush it."""
        self.f.write(row_line(row).encode())
        self.f.flush()

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):
            os.fsync(self.f.fileno())
        self.f.close()
