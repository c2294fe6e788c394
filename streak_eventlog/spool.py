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
* **Isolation.** The receiver refuses whatever a commit could choke on before submitting it
  (``contract.check_storable``); should a group's transaction fail all the same, each submission of
  the group is committed again on its own, so only the one that fails is refused.
* **Rows that cannot be loaded** (written by an older receiver: ``spooled.py``) are handed over in
  ``Batch.rejected`` instead of stopping the read; ``ack`` marks them with their reason
  (``rejected_reason``) and :meth:`Spool.rejected` lists them, so every load can keep them in
  ``crm.rejected_records``. The spool is their durable home: it never deletes a row.
* One receiver per spool file (a lock file says so at start); loaders may read and ack while it runs.
* The spool file is created 0600, like the lock file; SQLite gives its ``-wal`` and ``-shm`` files
  the database file's mode. (An existing file keeps its mode.)
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import queue
import sqlite3
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, Self

import streak_clock

from .spooled import SPOOLED_COLUMNS, RejectedEvent, checked, properties_json, raw_row

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
    handed_version INTEGER NOT NULL DEFAULT 0,
    rejected_reason TEXT
);
CREATE INDEX IF NOT EXISTS events_pending ON events (version) WHERE version > handed_version;
"""
REJECTED_INDEX: Final = (
    "CREATE INDEX IF NOT EXISTS events_rejected ON events (event_key) WHERE rejected_reason IS NOT NULL"
)
SELECT_EVENT: Final = ", ".join(SPOOLED_COLUMNS)
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
    """Rows handed to a loader, the events that cannot be loaded, and the versions ``ack`` records
    (of both: a rejected event is settled too, not handed over again until it changes)."""

    rows: list[dict[str, Any]]
    versions: tuple[tuple[str, int], ...]
    rejected: tuple[RejectedEvent, ...] = ()

    def __len__(self) -> int:
        return len(self.versions)


def now_ms() -> int:
    return streak_clock.now_ms()


def create_private(path: Path) -> None:
    """Create ``path`` empty and 0600 unless it exists (SQLite then uses it, and gives its WAL and
    shared-memory files the same mode)."""
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


def _add_rejected_reason(conn: sqlite3.Connection) -> None:
    """Spools written before ``rejected_reason`` existed get the column (several processes may race)."""
    if "rejected_reason" not in {row[1] for row in conn.execute("PRAGMA table_info(events)")}:
        try:
            conn.execute("ALTER TABLE events ADD COLUMN rejected_reason TEXT")
        except sqlite3.OperationalError as exc:
            if "duplicate column" not in str(exc):
                raise
    conn.execute(REJECTED_INDEX)


def connect(path: Path, synchronous: Synchronous = "FULL") -> sqlite3.Connection:
    """A connection in WAL mode with the schema; autocommit (transactions are explicit)."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise RuntimeError(f"the spool {path} cannot use WAL mode (got {mode})")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.executescript(SCHEMA)
    _add_rejected_reason(conn)
    return conn


Submission = tuple[Sequence[SpoolRecord], "Future[None] | asyncio.Future[None]"]
"""Records to commit together and who waits for them: a thread (``submit``) or a coroutine."""


def _settle(group: list[Submission], error: BaseException | None) -> None:
    """Release the waiters of ``group``: each thread's future at once, each event loop's futures in
    one callback (a loop is woken through its self-pipe, so once per commit rather than per request)."""
    failure = None if error is None else error if isinstance(error, Exception) else RuntimeError(str(error))
    by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
    for _, done in group:
        if not isinstance(done, Future):
            by_loop.setdefault(done.get_loop(), []).append(done)
        elif failure is None:
            done.set_result(None)
        else:
            done.set_exception(failure)
    for loop, futures in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle_on_loop, futures, failure)
        except RuntimeError:  # the loop has closed: nobody waits any more
            pass


def _settle_on_loop(futures: list[asyncio.Future[None]], failure: Exception | None) -> None:
    for done in futures:
        if done.done():  # cancelled: its client went away
            continue
        if failure is None:
            done.set_result(None)
        else:
            done.set_exception(failure)


class Spool:
    """``with Spool(path) as spool:`` ``spool.write([...])`` (or ``await spool.write_async``)."""

    def __init__(self, path: str | Path, synchronous: Synchronous = "FULL", writer: bool = True) -> None:
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"spool synchronous must be FULL or NORMAL, not {synchronous!r}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        create_private(self.path)
        self.synchronous: Synchronous = synchronous
        self._writer = writer
        self._queue: queue.SimpleQueue[Submission | None] = queue.SimpleQueue()
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
        done: Future[None] = Future()
        self._put((records, done))
        return done

    async def write_async(self, records: Sequence[SpoolRecord]) -> None:
        """``records`` durable (or the commit's error raised), awaited on the running loop: the
        writer wakes each loop once per commit for all of its waiters (not once per request)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._put((records, done))
        await done

    def write(self, records: Sequence[SpoolRecord], timeout: float | None = 30.0) -> None:
        self.submit(records).result(timeout)

    def _put(self, item: Submission) -> None:
        if self._thread is None:
            raise RuntimeError("the spool writer is not running (call start())")
        self._queue.put(item)

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

    def _commit(self, conn: sqlite3.Connection, group: list[Submission]) -> None:
        """Commit ``group`` in one transaction; if that fails, each submission alone, so one that
        cannot be stored fails only its own request (an interrupt fails the whole group)."""
        error = self._transaction(conn, group)
        if error is None or len(group) == 1 or not isinstance(error, Exception):
            _settle(group, error)
            return
        for item in group:
            _settle([item], self._transaction(conn, [item]))

    def _transaction(self, conn: sqlite3.Connection, group: list[Submission]) -> BaseException | None:
        """One transaction for ``group``: None once committed, else the error (rolled back)."""
        version = self._version
        try:
            params = []
            for records, _ in group:
                for r in records:
                    version += 1
                    params.append(
                        (
                            r.event_key, r.event_name, r.distinct_id, r.location_id, r.contact_key,
                            r.box_key, r.pipeline_key,
                            r.timestamp_ms if r.timestamp_ms is not None else r.received_ms,
                            r.received_ms, r.received_ms, r.source,
                            properties_json(r.properties), version,
                        )
                    )
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(UPSERT, params)
            conn.execute("COMMIT")
        except BaseException as exc:  # noqa: BLE001 - nothing acknowledged; the waiters learn it
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            return exc
        self._version = version
        self.commits += 1
        self.events_written += len(params)
        self.largest_group = max(self.largest_group, len(group))
        return None

    # ------------------------------------------------------------------ reading and handover

    def _reader(self) -> sqlite3.Connection:
        return connect(self.path, self.synchronous)

    def read_batch(self, limit: int = 10_000) -> Batch:
        """Up to ``limit`` events not yet handed over (oldest write first), as ``crm.events`` rows;
        those that cannot be loaded (``spooled.py``) in ``Batch.rejected``."""
        conn = self._reader()
        try:
            cursor = conn.execute(
                f"SELECT {SELECT_EVENT}, version FROM events WHERE version > handed_version ORDER BY version LIMIT ?",
                (limit,),
            )
            rows, versions, rejected = [], [], []
            for values in cursor:
                row = checked(values[:-1])
                if isinstance(row, RejectedEvent):
                    rejected.append(row)
                else:
                    rows.append(row)
                versions.append((values[0], values[-1]))
            return Batch(rows, tuple(versions), tuple(rejected))
        finally:
            conn.close()

    def ack(self, batch: Batch) -> int:
        """Record that ``batch`` is loaded (its rejected events with their reason); returns how many
        events it settled (those updated since the read stay pending)."""
        reasons = {r.event_key: r.reason for r in batch.rejected}
        conn = self._reader()
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "UPDATE events SET handed_version = ?, rejected_reason = ? WHERE event_key = ? AND handed_version < ?",
                [(ver, reasons.get(key), key, ver) for key, ver in batch.versions],
            )
            conn.execute("CREATE TEMP TABLE acked (event_key TEXT PRIMARY KEY)")
            conn.executemany("INSERT OR IGNORE INTO acked VALUES (?)", [(key,) for key, _ in batch.versions])
            settled = conn.execute(
                "SELECT COUNT(*) FROM events WHERE version = handed_version AND event_key IN (SELECT event_key FROM acked)"
            ).fetchone()[0]
            conn.execute("COMMIT")
            return int(settled)
        finally:
            conn.close()

    def rejected(self) -> list[RejectedEvent]:
        """Every event whose current version a load found it cannot load, with the reason."""
        conn = self._reader()
        try:
            cursor = conn.execute(
                f"SELECT {SELECT_EVENT}, rejected_reason FROM events"
                " WHERE rejected_reason IS NOT NULL AND version = handed_version ORDER BY version"
            )
            return [RejectedEvent(str(values[0]), str(values[-1]), raw_row(values[:-1])) for values in cursor]
        finally:
            conn.close()

    def pending(self) -> int:
        conn = self._reader()
        try:
            return int(conn.execute("SELECT COUNT(*) FROM events WHERE version > handed_version").fetchone()[0])
        finally:
            conn.close()

    def all_rows(self) -> list[dict[str, Any]]:
        """Every spooled event that can be loaded (handed over or not), as ``crm.events`` rows: for
        tests and checks."""
        conn = self._reader()
        try:
            rows = (checked(values) for values in conn.execute(f"SELECT {SELECT_EVENT} FROM events ORDER BY version"))
            return [row for row in rows if not isinstance(row, RejectedEvent)]
        finally:
            conn.close()
