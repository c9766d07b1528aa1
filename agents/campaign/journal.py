"""The crash-safe journal of a campaign: an append-only event log in SQLite.

One table, ``events(seq, kind, time, payload, recorded_at)``; ``payload`` is JSON. The first
event (``kind="create"``) holds the configuration; later ones are ``ask``, ``tell`` and
``fail``. The database runs in WAL mode with ``synchronous=FULL``; every public call of
:class:`~labsched.agents.campaign.planner.Campaign` is one ``BEGIN IMMEDIATE`` ... ``COMMIT``
transaction, so a call either left its event or nothing, whatever kills the process, and two
processes writing at once are serialised by SQLite's write lock (a writer waits up to
``timeout`` seconds for the other). ``recorded_at`` (wall clock) is informational only: it
plays no part in any decision.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time as _time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["FORMAT", "Event", "Journal", "JournalError"]

#: Journal format tag stored in ``PRAGMA user_version``.
FORMAT = 13001

_SCHEMA = """
CREATE TABLE events (
    seq INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('create', 'ask', 'tell', 'fail')),
    time REAL,
    payload TEXT NOT NULL,
    recorded_at REAL NOT NULL
)
"""


class JournalError(ValueError):
    """A file that is not a (complete) campaign journal."""


@dataclass(frozen=True)
class Event:
    """One committed journal event.

    Attributes:
        seq: position in the journal (0 for ``create``).
        kind: ``"create"``, ``"ask"``, ``"tell"`` or ``"fail"``.
        time: the campaign time of the event (``None`` for ``create``).
        payload: the event's data.
    """

    seq: int
    kind: str
    time: float | None
    payload: dict[str, Any]


class Journal:
    """An open journal file.

    Args:
        path: the SQLite file.
        timeout: seconds a writer waits for another process's transaction.
    """

    def __init__(self, path: str | Path, *, timeout: float = 60.0) -> None:
        self.path = Path(path)
        self._conn = sqlite3.connect(str(self.path), timeout=timeout, isolation_level=None)
        self._conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        self._conn.execute("PRAGMA synchronous = FULL")

    @classmethod
    def create(cls, path: str | Path, config: dict[str, Any], *, timeout: float = 60.0) -> Journal:
        """Create a new journal holding the ``create`` event (one transaction).

        Raises:
            FileExistsError: ``path`` already holds a journal (or any SQLite tables).
        """
        p = Path(path)
        if p.is_dir():
            raise IsADirectoryError(f"journal path {str(p)!r} is a directory")
        journal = cls(p, timeout=timeout)
        mode = journal._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":  # pragma: no cover - e.g. a network file system
            raise OSError(f"could not put {str(p)!r} in WAL mode (got {mode!r})")
        with journal.transaction() as conn:
            n = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
            if n:
                raise FileExistsError(f"{str(p)!r} already holds a campaign journal (or another database)")
            conn.execute(_SCHEMA)
            conn.execute(f"PRAGMA user_version = {FORMAT}")
            journal._insert(conn, "create", None, config)
        return journal

    @classmethod
    def open(cls, path: str | Path, *, timeout: float = 60.0) -> Journal:
        """Open an existing journal (``JournalError`` if it is not one)."""
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"no campaign journal at {str(p)!r}")
        try:
            journal = cls(p, timeout=timeout)
        except sqlite3.DatabaseError as exc:
            raise JournalError(f"{str(p)!r} is not a campaign journal ({exc})") from None
        try:
            version = journal._conn.execute("PRAGMA user_version").fetchone()[0]
            ok = (
                journal._conn.execute(
                    "SELECT count(*) FROM events WHERE seq = 1 AND kind = 'create'"
                ).fetchone()[0]
                == 1
            )
        except sqlite3.DatabaseError as exc:
            journal.close()
            raise JournalError(f"{str(p)!r} is not a campaign journal ({exc})") from None
        if version != FORMAT or not ok:
            journal.close()
            raise JournalError(f"{str(p)!r} is not a campaign journal (format {version}, expected {FORMAT})")
        return journal

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` (take the write lock) ... ``COMMIT``; roll back on any exception."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @staticmethod
    def _insert(conn: sqlite3.Connection, kind: str, time: float | None, payload: dict[str, Any]) -> int:
        text = json.dumps(payload, allow_nan=False, separators=(",", ":"))
        cur = conn.execute(
            "INSERT INTO events (kind, time, payload, recorded_at) VALUES (?, ?, ?, ?)",
            (kind, time, text, _time.time()),
        )
        return int(cur.lastrowid) - 1 if cur.lastrowid is not None else -1

    def append(self, conn: sqlite3.Connection, kind: str, time: float, payload: dict[str, Any]) -> None:
        """Insert one event inside the caller's transaction."""
        self._insert(conn, kind, time, payload)

    def events_after(self, seq: int, conn: sqlite3.Connection | None = None) -> list[Event]:
        """Committed events with ``seq`` greater than the given one, in order."""
        c = conn or self._conn
        rows = c.execute(
            "SELECT seq - 1, kind, time, payload FROM events WHERE seq - 1 > ? ORDER BY seq", (seq,)
        ).fetchall()
        return [Event(int(s), k, t, json.loads(p)) for s, k, t, p in rows]

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()
