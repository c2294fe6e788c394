"""The durable local spool: SQLite in WAL mode, one writer thread with group commit, two-phase handover.

Why this shape:

* **Durability.** ``journal_mode=WAL`` + ``synchronous=FULL`` (default): every commit fsyncs the
  WAL before it returns, and the receiver answers 2xx only after the commit holding its event has
  returned, so neither a SIGKILL nor a power cut loses an acknowledged event. ``NORMAL`` (a
  setting, ``[events] spool_synchronous``) is also safe against SIGKILL (the WAL is in the OS page
  cache, which outlives the process) but not against an OS crash or power cut; it is not the default.
* **Concurrency.** One connection and one thread write (SQLite allows one writer at a time anyway);
  requests hand their events to it and wait on a future. Whatever arrived while a commit ran goes
  into the next transaction together (group commit), so an fsync is paid per batch, not per event:
  that is what lets one spool take >1,000 events/s with ``FULL`` on a slow disk.
* **Identity.** ``event_key`` is the primary key: ``api:<distinct_id>`` for custom events with an
  id (a random one without), the webhook's stable ``streak:...`` id for deliveries. A second write
  of a key updates name, properties and ids, keeps ``timestamp`` and ``first_received_at``.
* **Handover** (``read_batch`` -> caller loads -> ``ack``): each write stamps a fresh ``version``;
  ``read_batch`` returns events whose ``version`` is above ``handed_version``; ``ack`` records the
  versions that were read. An event updated between read and ack has a newer version, so it is
  handed over again: nothing is lost between a load and its acknowledgement.
* One receiver per spool file (a lock file says so at start); loaders may read and ack while it runs.
"""

from __future__ import annotations

import fcntl
import json
import os
import queue
import sqlite3
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal, Self

import streak_clock

Source = Literal["api", "webhook", "derived"]
Synchronous = Literal["FULL", "NORMAL"]

MAX_GROUP: Final = 1024
"""Most submissions committed in one transaction."""
BUSY_TIMEOUT_MS: Final = 10_000

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS events (
    event_key TEXT PRIMARY KEY,
    event_name TEXT NOT NULL,
    distinct_id TEXT,
    location_id TEXT,
    contact_key TEXT,
    box_key TEXT,
    pipeline_key TEXT,
    timestamp_ms INTEGER NOT NULL,
    first_received_ms INTEGER NOT NULL,
    last_received_ms INTEGER NOT NULL,
    source TEXT NOT NULL,
    properties TEXT NOT NULL,
    version INTEGER NOT NULL,
    handed_version INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS events_pending ON events (version) WHERE version > handed_version;
"""

UPSERT: Final = """
INSERT INTO events (event_key, event_name, distinct_id, location_id, contact_key, box_key,
    pipeline_key, timestamp_ms, first_received_ms, last_received_ms, source, properties, version)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (event_key) DO UPDATE SET
    event_name = excluded.event_name,
    properties = excluded.properties,
    location_id = COALESCE(excluded.location_id, location_id),
    contact_key = COALESCE(excluded.contact_key, contact_key),
    box_key = COALESCE(excluded.box_key, box_key),
    pipeline_key = COALESCE(excluded.pipeline_key, pipeline_key),
    last_received_ms = MAX(last_received_ms, excluded.last_received_ms),
    version = excluded.version
"""

ROW_COLUMNS: Final = (
    "event_key",
    "event_name",
    "distinct_id",
    "location_id",
    "contact_key",
    "box_key",
    "pipeline_key",
    "timestamp",
    "first_received_at",
    "last_received_at",
    "source",
    "properties",
)
"""The columns of ``crm.events``, in order: what :meth:`Spool.read_batch` rows hold."""

EVENTS_COLUMN_HINTS: Final[dict[str, dict[str, Any]]] = {
    "event_key": {"data_type": "text", "nullable": False, "primary_key": True},
    "event_name": {"data_type": "text", "nullable": False},
    "distinct_id": {"data_type": "text", "nullable": True},
    "location_id": {"data_type": "text", "nullable": True},
    "contact_key": {"data_type": "text", "nullable": True},
    "box_key": {"data_type": "text", "nullable": True},
    "pipeline_key": {"data_type": "text", "nullable": True},
    "timestamp": {"data_type": "timestamp", "nullable": False},
    "first_received_at": {"data_type": "timestamp", "nullable": False},
    "last_received_at": {"data_type": "timestamp", "nullable": False},
    "source": {"data_type": "text", "nullable": False},
    "properties": {"data_type": "json", "nullable": False},
}
"""The columns of ``crm.events`` with their types (dlt hint form): the one definition the warehouse
table (streak_warehouse/events_table.py) is built from."""


class SpoolBusy(RuntimeError):
    """Another receiver already writes this spool file."""


@dataclass(frozen=True)
class SpoolRecord:
    """One event to store. ``timestamp_ms`` None = ``received_ms`` (kept on later updates)."""

    event_key: str
    event_name: str
    source: Source
    received_ms: int
    timestamp_ms: int | None = None
    distinct_id: str | None = None
    location_id: str | None = None
    contact_key: str | None = None
    box_key: str | None = None
    pipeline_key: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Batch:
    """Rows handed to a loader, and the versions ``ack`` will record."""

    rows: list[dict[str, Any]]
    versions: tuple[tuple[str, int], ...]

    def __len__(self) -> int:
        return len(self.rows)


def now_ms() -> int:
    return streak_clock.now_ms()


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def connect(path: Path, synchronous: Synchronous = "FULL") -> sqlite3.Connection:
    """A connection in WAL mode with the schema; autocommit (transactions are explicit)."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise RuntimeError(f"the spool {path} cannot use WAL mode (got {mode})")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.executescript(SCHEMA)
    return conn


class Spool:
    """``with Spool(path) as spool:`` ``spool.write([...])`` (or ``await spool.write_async``)."""

    def __init__(self, path: str | Path, synchronous: Synchronous = "FULL", writer: bool = True) -> None:
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"spool synchronous must be FULL or NORMAL, not {synchronous!r}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.synchronous: Synchronous = synchronous
        self._writer = writer
        self._queue: queue.Queue[tuple[Sequence[SpoolRecord], Future[None]] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock_fd: int | None = None
        self.commits = 0
        self.events_written = 0
        self.largest_group = 0
        self._version = 0
        connect(self.path, synchronous).close()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        if not self._writer or self._thread is not None:
            return self
        fd = os.open(f"{self.path}.receiver.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise SpoolBusy(f"another receiver is writing the spool {self.path}") from None
        self._lock_fd = fd
        conn = connect(self.path, self.synchronous)
        self._version = int(conn.execute("SELECT COALESCE(MAX(version), 0) FROM events").fetchone()[0])
        self._thread = threading.Thread(target=self._run, args=(conn,), name="events-spool-writer", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Commit what was submitted, then stop the writer."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ writing

    def submit(self, records: Sequence[SpoolRecord]) -> Future[None]:
        """Queue ``records`` for the next commit; the future completes once they are durable."""
        if self._thread is None:
            raise RuntimeError("the spool writer is not running (call start())")
        done: Future[None] = Future()
        self._queue.put((records, done))
        return done

    def write(self, records: Sequence[SpoolRecord], timeout: float | None = 30.0) -> None:
        self.submit(records).result(timeout)

    def _run(self, conn: sqlite3.Connection) -> None:
        try:
            stopping = False
            while not stopping:
                item = self._queue.get()
                if item is None:
                    break
                group = [item]
                while len(group) < MAX_GROUP:
                    try:
                        nxt = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is None:
                        stopping = True
                        break
                    group.append(nxt)
                self._commit(conn, group)
        finally:
            conn.close()

    def _commit(self, conn: sqlite3.Connection, group: list[tuple[Sequence[SpoolRecord], Future[None]]]) -> None:
        params = []
        version = self._version
        for records, _ in group:
            for r in records:
                version += 1
                params.append(
                    (
                        r.event_key, r.event_name, r.distinct_id, r.location_id, r.contact_key,
                        r.box_key, r.pipeline_key,
                        r.timestamp_ms if r.timestamp_ms is not None else r.received_ms,
                        r.received_ms, r.received_ms, r.source,
                        json.dumps(r.properties, sort_keys=True, ensure_ascii=False), version,
                    )
                )
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(UPSERT, params)
            conn.execute("COMMIT")
        except BaseException as exc:  # noqa: BLE001 - every waiter learns it; nothing acknowledged
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            for _, done in group:
                done.set_exception(exc if isinstance(exc, Exception) else RuntimeError(str(exc)))
            return
        self._version = version
        self.commits += 1
        self.events_written += len(params)
        self.largest_group = max(self.largest_group, len(group))
        for _, done in group:
            done.set_result(None)

    # ------------------------------------------------------------------ reading and handover

    def _reader(self) -> sqlite3.Connection:
        return connect(self.path, self.synchronous)

    def read_batch(self, limit: int = 10_000) -> Batch:
        """Up to ``limit`` events not yet handed over (oldest write first), as ``crm.events`` rows."""
        conn = self._reader()
        try:
            cursor = conn.execute(
                "SELECT event_key, event_name, distinct_id, location_id, contact_key, box_key,"
                " pipeline_key, timestamp_ms, first_received_ms, last_received_ms, source,"
                " properties, version FROM events WHERE version > handed_version"
                " ORDER BY version LIMIT ?",
                (limit,),
            )
            rows, versions = [], []
            for (key, name, did, loc, contact, box, pipeline, ts, first, last, source, props, ver) in cursor:
                rows.append(
                    {
                        "event_key": key, "event_name": name, "distinct_id": did,
                        "location_id": loc, "contact_key": contact, "box_key": box,
                        "pipeline_key": pipeline, "timestamp": _utc(ts),
                        "first_received_at": _utc(first), "last_received_at": _utc(last),
                        "source": source, "properties": json.loads(props),
                    }
                )
                versions.append((key, ver))
            return Batch(rows, tuple(versions))
        finally:
            conn.close()

    def ack(self, batch: Batch) -> int:
        """Record that ``batch`` is loaded; returns how many events it settled (re-updated ones stay)."""
        conn = self._reader()
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "UPDATE events SET handed_version = ? WHERE event_key = ? AND handed_version < ?",
                [(ver, key, ver) for key, ver in batch.versions],
            )
            settled = conn.execute(
                "SELECT COUNT(*) FROM events WHERE version = handed_version AND event_key IN"
                " (SELECT value FROM json_each(?))",
                (json.dumps([k for k, _ in batch.versions]),),
            ).fetchone()[0]
            conn.execute("COMMIT")
            return int(settled)
        finally:
            conn.close()

    def pending(self) -> int:
        conn = self._reader()
        try:
            return int(conn.execute("SELECT COUNT(*) FROM events WHERE version > handed_version").fetchone()[0])
        finally:
            conn.close()

    def all_rows(self) -> list[dict[str, Any]]:
        """Every spooled event (handed over or not), as ``crm.events`` rows: for tests and checks."""
        conn = self._reader()
        try:
            cursor = conn.execute(
                "SELECT event_key, event_name, distinct_id, location_id, contact_key, box_key,"
                " pipeline_key, timestamp_ms, first_received_ms, last_received_ms, source, properties"
                " FROM events ORDER BY version"
            )
            return [
                {
                    "event_key": r[0], "event_name": r[1], "distinct_id": r[2], "location_id": r[3],
                    "contact_key": r[4], "box_key": r[5], "pipeline_key": r[6],
                    "timestamp": _utc(r[7]), "first_received_at": _utc(r[8]),
                    "last_received_at": _utc(r[9]), "source": r[10], "properties": json.loads(r[11]),
                }
                for r in cursor
            ]
        finally:
            conn.close()
