"""The results file of a sweep: one CSV row per cell, validated on resume.

See :mod:`labsched.evaluation.sweep` for the format and the resume and corruption policy.

Format 2 added the columns ``integrated_variance`` and ``rmse`` (the information goal, see
:mod:`labsched.envs.bo.information`). A format-1 file (the same header without them) is still read,
with NaN in those columns, and a sweep resuming it first rewrites it in format 2 (atomically, with a
:class:`UserWarning`); its old rows keep NaN there.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import math
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labsched.evaluation.cells import Cell

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no locking
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "COLUMNS",
    "FORMAT2_COLUMNS",
    "LEGACY_COLUMNS",
    "NONDETERMINISTIC",
    "ResultsFile",
    "ResultsFileError",
    "crlf_message",
    "load_results",
    "normalise_row",
]


class ResultsFileError(ValueError):
    """A results file that cannot be trusted (the message names the file and the line)."""


_CELL_TYPES: dict[str, type] = {
    f.name: {"str": str, "int": int, "float": float}[str(f.type)] for f in dataclasses.fields(Cell)
}
_RESULT_TYPES: dict[str, type] = {
    "env_seed": int,
    "agent_seed": int,
    "cpe": int,
    "regret": float,
    "completed": int,
    "best_value": float,
    "integrated_variance": float,
    "rmse": float,
    "init_hash": str,
    "wall_time": float,
}
#: Columns of a results file, in order.
COLUMNS: tuple[str, ...] = ("cell_id", *_CELL_TYPES, *_RESULT_TYPES)
#: Columns added in format 2 (information goal); format-1 files lack them.
FORMAT2_COLUMNS: tuple[str, ...] = ("integrated_variance", "rmse")
#: Columns of a format-1 results file (before ``integrated_variance`` and ``rmse``): still read,
#: with NaN in the missing columns, and upgraded to the current format when a sweep resumes them.
LEGACY_COLUMNS: tuple[str, ...] = tuple(c for c in COLUMNS if c not in FORMAT2_COLUMNS)
_TYPES: dict[str, type] = {"cell_id": str, **_CELL_TYPES, **_RESULT_TYPES}
#: Fields that may differ between two computations of the same cell.
NONDETERMINISTIC = frozenset({"wall_time"})
_INT_RE = re.compile(r"^-?\d+$")
_HASH_RE = re.compile(r"^[0-9a-f]{16}$")
_PARTIAL_ROW_RE = re.compile(r"^([0-9a-f]{16},|[0-9a-f]{0,16}$)")


def _format(value: Any, kind: type) -> str:
    if kind is float:
        return repr(float(value))
    if kind is int:
        return str(int(value))
    return str(value)


def _parse(text: str, kind: type) -> Any:
    if kind is int:
        if not _INT_RE.match(text):
            raise ValueError(f"not an integer: {text!r}")
        return int(text)
    if kind is float:
        return float(text)
    return text


def _header_line() -> str:
    return ",".join(COLUMNS) + "\n"


def _row_line(row: dict[str, Any]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([_format(row[c], _TYPES[c]) for c in COLUMNS])
    return buf.getvalue()


def _same_values(a: dict[str, Any], b: dict[str, Any]) -> bool:
    for c in COLUMNS:
        if c in NONDETERMINISTIC:
            continue
        x, y = a[c], b[c]
        if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
            continue
        if x != y:
            return False
    return True


@dataclass
class _Scan:
    rows: dict[str, dict[str, Any]]
    good_bytes: int  # length of the trusted prefix (header and complete rows)
    dropped_line: int | None  # 1-based number of a dropped truncated final line
    empty: bool  # no header yet
    legacy: bool = False  # a format-1 file (no integrated_variance / rmse columns)


def crlf_message(path: Path) -> str:
    """The error for a results file whose lines end in CR LF (shared with the leaderboard's file)."""
    return (
        f"{path}: line 1 ends in CR LF (Windows line endings, as Python's csv module writes by "
        "default); results files use LF only: rewrite it with newline='\\n' (lineterminator)"
    )


def _header_columns(path: Path, header: str) -> tuple[str, ...]:
    """The columns a header line names: the current ones, or the format-1 ones."""
    if header + "\n" == _header_line():
        return COLUMNS
    if header == ",".join(LEGACY_COLUMNS):
        return LEGACY_COLUMNS
    if header.endswith("\r"):
        raise ResultsFileError(crlf_message(path))
    raise ResultsFileError(
        f"{path}: line 1: wrong header (not a labsched sweep results file, or one written by a "
        f"different version);\n  expected: {_header_line().strip()}\n  found:    {header[:300]}\n"
        "Use another results path, or delete the file to start afresh."
    )


def _parse_row(path: Path, number: int, line: str, columns: tuple[str, ...]) -> dict[str, Any]:
    """One validated row (columns missing from a format-1 file are NaN)."""
    if not line.strip():
        raise ResultsFileError(f"{path}: line {number}: empty line inside the results")
    try:
        fields = next(csv.reader([line]))
    except csv.Error as exc:
        raise ResultsFileError(f"{path}: line {number}: unparsable CSV ({exc})") from exc
    if len(fields) != len(columns):
        raise ResultsFileError(
            f"{path}: line {number}: {len(fields)} fields, expected {len(columns)} ({line[:120]!r})"
        )
    parsed = {}
    for column, raw in zip(columns, fields, strict=True):
        try:
            parsed[column] = _parse(raw, _TYPES[column])
        except ValueError as exc:
            raise ResultsFileError(f"{path}: line {number}: column {column!r}: {exc}") from exc
    row = {c: parsed.get(c, math.nan) for c in COLUMNS}
    try:
        cell = Cell(**{k: row[k] for k in _CELL_TYPES})
    except (TypeError, ValueError, OSError) as exc:
        raise ResultsFileError(f"{path}: line {number}: invalid cell fields: {exc}") from exc
    if cell.id != row["cell_id"]:
        raise ResultsFileError(
            f"{path}: line {number}: cell_id {row['cell_id']} does not match the row's own fields "
            f"(expected {cell.id}); the row was edited or written by another version"
        )
    problem = _outcome_problem(row, cell)
    if problem:
        raise ResultsFileError(f"{path}: line {number}: {problem}; the row was edited or corrupted")
    return row


def _outcome_problem(row: dict[str, Any], cell: Cell) -> str:
    """What is impossible in a row's result columns for its cell ("" when nothing is).

    The seeds are functions of the cell; ``cpe`` lies in ``[0, n (n - 1) / 2]`` (the CPE of a
    sequential run is the largest), ``completed`` in ``[0, n]``; ``regret`` is finite and
    ``>= 0`` (sweep objectives have a stated optimum); ``best_value`` is finite;
    ``integrated_variance`` and ``rmse`` are NaN (format 1) or finite and ``>= 0``; ``init_hash``
    has 16 hex digits; ``wall_time`` is finite and ``>= 0``.
    """
    n = cell.n_experiments
    for name in ("env_seed", "agent_seed"):
        if row[name] != getattr(cell, name):
            return f"{name} must be {getattr(cell, name)} (derived from the cell's fields), got {row[name]}"
    max_cpe = n * (n - 1) // 2
    if not 0 <= row["cpe"] <= max_cpe:
        return f"cpe must be in [0, n (n - 1) / 2 = {max_cpe}] for n_experiments={n}, got {row['cpe']}"
    if not 0 <= row["completed"] <= n:
        return f"completed must be in [0, n_experiments={n}], got {row['completed']}"
    if not (math.isfinite(row["regret"]) and row["regret"] >= 0):
        return f"regret must be finite and >= 0, got {row['regret']}"
    if not math.isfinite(row["best_value"]):
        return f"best_value must be finite, got {row['best_value']}"
    for c in FORMAT2_COLUMNS:
        if not (math.isnan(row[c]) or (math.isfinite(row[c]) and row[c] >= 0)):
            return f"{c} must be NaN or finite and >= 0, got {row[c]}"
    if not _HASH_RE.match(row["init_hash"]):
        return f"init_hash must be 16 lowercase hex digits, got {row['init_hash']!r}"
    if not (math.isfinite(row["wall_time"]) and row["wall_time"] >= 0):
        return f"wall_time must be finite and >= 0 seconds, got {row['wall_time']}"
    return ""


def _scan(path: Path) -> _Scan:
    """Read and validate a results file (see the module docstring for the policy)."""
    data = path.read_bytes()
    if not data:
        return _Scan({}, 0, None, True)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ResultsFileError(f"{path}: line {line}: not UTF-8 text (corrupted file?)") from exc
    lines = text.split("\n")
    # A final piece without newline is an interrupted write; "" after a final newline is normal.
    tail = lines.pop()
    dropped = None
    if tail:
        dropped = len(lines) + 1
        # Only what an interrupted write can leave: a prefix of the header, or of a row (which
        # starts with a 16-hex-digit id). Anything else is garbage, not a truncation.
        plausible = _header_line().startswith(tail) if not lines else bool(_PARTIAL_ROW_RE.match(tail))
        if not plausible:
            raise ResultsFileError(
                f"{path}: line {dropped}: final line without newline does not look like an interrupted "
                f"write of a results row ({tail[:80]!r}); not a labsched sweep results file?"
            )
    good_bytes = len(data) - len(tail.encode("utf-8"))
    if not lines:  # only a partial header
        return _Scan({}, 0, dropped, True)
    columns = _header_columns(path, lines[0])
    rows: dict[str, dict[str, Any]] = {}
    where: dict[str, int] = {}
    for number, line in enumerate(lines[1:], start=2):
        row = _parse_row(path, number, line, columns)
        cid = row["cell_id"]
        old = rows.get(cid)
        if old is not None:
            if not _same_values(old, row):
                raise ResultsFileError(
                    f"{path}: line {number}: cell {cid} appears again (first on line {where[cid]}) "
                    "with different values; refusing to choose between them"
                )
            continue
        rows[cid] = row
        where[cid] = number
    return _Scan(rows, good_bytes, dropped, False, legacy=columns is LEGACY_COLUMNS)


def load_results(path: str | Path) -> list[dict[str, Any]]:
    """The validated rows of a results file (the file is not modified).

    Raises:
        ResultsFileError: for a corrupted file (see the module docstring); a truncated final
            line is ignored with a warning.
    """
    path = Path(path)
    scan = _scan(path)
    if scan.dropped_line is not None:
        warnings.warn(
            f"{path}: line {scan.dropped_line}: incomplete final line (interrupted write) ignored",
            UserWarning,
            stacklevel=2,
        )
    return list(scan.rows.values())


class ResultsFile:
    """Append-only, locked access to a results file during a sweep."""

    def __init__(self, path: Path, resume: bool) -> None:
        self.path = path
        self.resume = resume

    def __enter__(self) -> ResultsFile:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.f = open(self.path, "a+b")
        try:
            _lock(self.f, self.path)
            if self.resume:
                scan = _scan(self.path)
                if scan.dropped_line is not None:
                    warnings.warn(
                        f"{self.path}: line {scan.dropped_line}: incomplete final line (interrupted write) "
                        "dropped; its cell will be recomputed",
                        UserWarning,
                        stacklevel=3,
                    )
                    self.f.truncate(scan.good_bytes)
                if scan.legacy:
                    self._upgrade(scan.rows)
                self.rows = scan.rows
                empty = scan.empty
            else:
                self.f.truncate(0)
                self.rows = {}
                empty = True
            self.f.seek(0, os.SEEK_END)
            if empty:
                self.f.truncate(0)
                self.f.write(_header_line().encode())
                self.f.flush()
        except BaseException:
            self.f.close()
            raise
        return self

    def _upgrade(self, rows: dict[str, dict[str, Any]]) -> None:
        """Rewrite a format-1 file in the current format (NaN in the new columns), atomically:
        a temporary file beside it replaces it, then the lock moves to the new file."""
        warnings.warn(
            f"{self.path}: results file of format 1 (no {' / '.join(FORMAT2_COLUMNS)} columns) upgraded "
            "to the current format; its old rows have NaN there",
            UserWarning,
            stacklevel=4,
        )
        tmp = self.path.with_name(self.path.name + ".upgrade.tmp")
        with open(tmp, "wb") as out:
            out.write(_header_line().encode())
            for row in rows.values():
                out.write(_row_line(row).encode())
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)
        new = open(self.path, "a+b")
        try:
            _lock(new, self.path)
        except BaseException:
            new.close()
            raise
        self.f.close()
        self.f = new

    def append(self, row: dict[str, Any]) -> None:
        self.f.write(_row_line(row).encode())
        self.f.flush()

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):
            os.fsync(self.f.fileno())
        self.f.close()


def _lock(f: Any, path: Path) -> None:
    if fcntl is None:  # pragma: no cover - not POSIX: no locking
        return
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        raise RuntimeError(f"{path} is locked: another sweep is writing to it") from exc


def normalise_row(row: dict[str, Any]) -> dict[str, Any]:
    """The row with the exact types it has when read back from a results file."""
    return {
        c: _parse(_format(row[c], _TYPES[c]), _TYPES[c]) if _TYPES[c] is not str else row[c] for c in COLUMNS
    }
