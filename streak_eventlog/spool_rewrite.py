"""Rewrite spooled events in place, leaving no old value in the spool's files: for ``forget`` (erase
one person) and for a change of the ``[privacy]`` rules (protect what was spooled under the old ones).

The spool keeps every event forever (it is also the durable home of the rejected ones: spool.py), so
what it holds must follow. :func:`rewrite_spool` applies a function to every row in one transaction
with ``secure_delete`` on (SQLite then zeroes what an update frees), then ``VACUUM`` rebuilds the
file without free pages and a ``TRUNCATE`` checkpoint empties the write-ahead log, which still held
the old pages. Handover marks (``version``, ``handed_version``) are left alone: a row already loaded
into ``crm.events`` is rewritten there by the same command or run, a pending one is loaded as it is
now. The receiver may run meanwhile: SQLite serializes the writers (``BUSY_TIMEOUT_MS``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from .spool import BUSY_TIMEOUT_MS, connect

TEXT_COLUMNS: Final = ("event_key", "event_name", "distinct_id", "location_id", "contact_key", "box_key",
                       "pipeline_key", "source", "properties", "rejected_reason")
"""Every text column of the spool's ``events`` table (personal data can only be in text)."""

SpoolChange = Callable[[Mapping[str, str | None]], Mapping[str, str | None] | None]
"""One spooled row's text columns -> the columns to write (or None: unchanged)."""


@dataclass(frozen=True)
class SpoolRewritten:
    rows: int
    """Rows rewritten."""
    log_emptied: bool
    """Whether the write-ahead log could be emptied (False: a reader held it; old pages may stay in
    the ``-wal`` file until the next checkpoint)."""


def rewrite_spool(path: Path, change: SpoolChange, superseded: Callable[[], Sequence[str]] = tuple) -> SpoolRewritten:
    """Apply ``change`` to every event of the spool at ``path`` (module doc); the events whose keys
    ``superseded()`` names once every row was seen are deleted in the same transaction."""
    conn = connect(path)
    try:
        conn.execute("PRAGMA secure_delete = ON")
        present = {row[1] for row in conn.execute("PRAGMA table_info(events)")}
        columns = [name for name in TEXT_COLUMNS if name in present]
        updates: list[tuple[int, Mapping[str, str | None]]] = []
        for rowid, *values in conn.execute(f"SELECT rowid, {', '.join(columns)} FROM events"):
            new = change(dict(zip(columns, values)))
            if new:
                updates.append((rowid, new))
        gone = list(superseded())
        if updates or gone:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany("DELETE FROM events WHERE event_key = ?", [(key,) for key in gone])
                for rowid, new in updates:
                    names = sorted(new)
                    conn.execute(f"UPDATE events SET {', '.join(f'{name} = ?' for name in names)} WHERE rowid = ?",
                                 [*(new[name] for name in names), rowid])
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        return SpoolRewritten(len(updates) + len(gone), _scrubbed(conn) if updates or gone else True)
    finally:
        conn.close()


def spool_keys(path: Path) -> set[str]:
    """Every ``event_key`` in the spool at ``path``."""
    conn = connect(path)
    try:
        return {str(row[0]) for row in conn.execute("SELECT event_key FROM events")}
    finally:
        conn.close()


def _scrubbed(conn: sqlite3.Connection) -> bool:
    """No free page and an empty write-ahead log: True when the log could be emptied."""
    conn.execute("VACUUM")
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return not busy
