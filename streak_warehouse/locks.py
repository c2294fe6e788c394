"""One run at a time per destination (and per dlt working dir), with the running job named.

Two kinds of lock, both released by the kernel or the server when their process dies, so a lock is
never left behind by a killed run and no stale-lock takeover is needed:

* :class:`FileRunLock`: a POSIX record lock (``fcntl.lockf``) on a small file whose content names
  the owner (pid, host, start time). Unlike ``flock``, record locks are not inherited across
  ``fork``: dlt's forked normalize workers, which outlive a ``kill -9``-ed parent, hold nothing.
  Record locks belong to the process, so a second lock of the same file in the same process would
  silently "succeed": an in-process registry refuses it instead.
* :class:`PostgresRunLock`: a session advisory lock on its own connection, held for the whole run;
  the connection's ``application_name`` names the owner, so the loser can say who holds it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import socket
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import streak_clock

_HELD_IN_PROCESS: set[str] = set()
_REGISTRY_LOCK = threading.Lock()
APPLICATION_PREFIX: Final = "streak"


@dataclass(frozen=True)
class RunOwner:
    """Who holds a lock: enough for a person to find the running job."""

    pid: int
    host: str
    started_at: str  # ISO 8601, UTC

    @classmethod
    def this_process(cls, started_at: datetime | None = None) -> RunOwner:
        started = (started_at or streak_clock.now()).astimezone(UTC)
        return cls(os.getpid(), socket.gethostname(), started.strftime("%Y-%m-%dT%H:%M:%SZ"))

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}, started {self.started_at}"


class LoadAlreadyRunning(RuntimeError):
    """Another run holds the lock; the message names it (exit status 75)."""

    def __init__(self, what: str, owner: RunOwner | None) -> None:
        self.owner = owner
        who = owner.describe() if owner else "owner unknown"
        super().__init__(f"another run is loading {what} right now ({who}); this run stopped without touching it")


class FileRunLock:
    """An exclusive, non-blocking, not-inherited lock on ``path`` (created if missing).

    ``with FileRunLock(path, "streak.duckdb", owner):`` raises :class:`LoadAlreadyRunning` at once
    when another process (or another lock in this process) holds it.
    """

    def __init__(self, path: Path, what: str, owner: RunOwner) -> None:
        self.path = path
        self.what = what
        self.owner = owner
        self._fd: int | None = None
        self._key = str(path.resolve())

    def acquire(self) -> None:
        with _REGISTRY_LOCK:
            if self._key in _HELD_IN_PROCESS:
                raise LoadAlreadyRunning(self.what, RunOwner.this_process())
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)  # this process holds no lock on the file, so closing releases nothing
                raise LoadAlreadyRunning(self.what, read_owner(self.path)) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(asdict(self.owner)).encode(), 0)
            self._fd = fd
            _HELD_IN_PROCESS.add(self._key)

    def release(self) -> None:
        with _REGISTRY_LOCK:
            if self._fd is None:
                return
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
                fcntl.lockf(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
            _HELD_IN_PROCESS.discard(self._key)

    def __enter__(self) -> FileRunLock:
        self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def read_owner(path: Path) -> RunOwner | None:
    """The owner written into a lock file, or None when unreadable (being written, or empty)."""
    try:
        data = json.loads(path.read_text() or "null")
        return RunOwner(int(data["pid"]), str(data["host"]), str(data["started_at"]))
    except (OSError, ValueError, TypeError, KeyError):
        return None


# --- Postgres ------------------------------------------------------------------------------------


def advisory_key(name: str) -> int:
    """A stable signed 64-bit advisory lock key for ``name``."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def _application_name(owner: RunOwner) -> str:
    """Fits Postgres's 63 characters: ``streak pid=1 host=h started=2026-01-01T00:00:00Z``."""
    return f"{APPLICATION_PREFIX} pid={owner.pid} host={owner.host[:10]} started={owner.started_at}"[:63]


def _owner_from_application_name(text: Any) -> RunOwner | None:
    match = re.fullmatch(r"\S+ pid=(\d+) host=(\S*) started=(\S+)", str(text or ""))
    return RunOwner(int(match[1]), match[2], match[3]) if match else None


class PostgresRunLock:
    """A session advisory lock on ``name`` held through ``sql_client`` (a dlt Postgres sql client,
    opened here and closed on release). Raises :class:`LoadAlreadyRunning` at once when taken."""

    def __init__(self, sql_client: Any, name: str, what: str, owner: RunOwner) -> None:
        self._client = sql_client
        self.key = advisory_key(name)
        self.what = what
        self.owner = owner
        self._open = False

    def acquire(self) -> None:
        self._client.open_connection()
        self._open = True
        try:
            self._client.execute_sql("SELECT set_config('application_name', %s, false)", _application_name(self.owner))
            [(taken,)] = self._client.execute_sql("SELECT pg_try_advisory_lock(%s)", self.key)
            if not taken:
                raise LoadAlreadyRunning(self.what, self._holder())
        except BaseException:
            self.release()
            raise

    def _holder(self) -> RunOwner | None:
        rows = self._client.execute_sql(
            "SELECT a.application_name FROM pg_locks AS l JOIN pg_stat_activity AS a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted "
            # advisory locks are per database: another database's run may hold the same key
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND ((l.classid::bigint << 32) | l.objid::bigint) = %s",  # a bigint key's two halves
            self.key,
        )
        return _owner_from_application_name(rows[0][0]) if rows else None

    def release(self) -> None:
        if self._open:
            self._open = False
            with contextlib.suppress(Exception):  # closing the session releases the lock anyway
                self._client.close_connection()

    def __enter__(self) -> PostgresRunLock:
        self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()
