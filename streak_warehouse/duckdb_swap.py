"""Whole-file replace for a local DuckDB destination: load a fresh file next to it, then rename.

dlt's ``insert-from-staging`` swaps one table per transaction, so a load that fails part-way can
leave some tables new and some old; and DuckDB lets one process hold a file for writing, so a
dashboard or a DuckDB shell that has ``streak.duckdb`` open would block the load. Loading into
``streak.duckdb.<run id>.loading`` and renaming it over ``streak.duckdb`` once everything (tables,
wide views, persistent tables) is in place fixes both: the rename is atomic, readers with the old
file open keep reading the previous copy until they reopen it, and any failure before the rename
leaves the previous file byte for byte as it was.

One run at a time per file: ``streak.duckdb.lock`` (see ``locks.py``). Each run's fresh file has its
own name, and only leftovers of runs that are gone (the lock is ours) are ever discarded.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from streak_warehouse.locks import FileRunLock, LoadAlreadyRunning, RunOwner

__all__ = ["LoadAlreadyRunning", "fresh_file_for", "loading_path", "lock_path", "publish"]


def lock_path(target: Path) -> Path:
    return target.with_name(target.name + ".lock")


def loading_path(target: Path, run_id: str) -> Path:
    """The fresh file one run loads into."""
    return target.with_name(f"{target.name}.{run_id}.loading")


def _discard(path: Path) -> None:
    for leftover in (path, path.with_name(path.name + ".wal")):
        leftover.unlink(missing_ok=True)


def _leftovers(target: Path) -> list[Path]:
    """Fresh files of earlier runs that never published (killed, or older versions' fixed name)."""
    return sorted(target.parent.glob(f"{target.name}.*loading")) + sorted(target.parent.glob(f"{target.name}.*loading.wal"))


@contextlib.contextmanager
def fresh_file_for(target: Path, run_id: str, owner: RunOwner) -> Iterator[Path]:
    """Lock ``target`` for this run and yield the path to load into; the fresh file is gone on exit
    whatever happened (renamed into place by :func:`publish`, or discarded).

    Raises :class:`LoadAlreadyRunning` at once when another run holds the lock.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileRunLock(lock_path(target), str(target), owner):
        for leftover in _leftovers(target):  # the lock is ours: their runs are gone
            leftover.unlink(missing_ok=True)
        loading = loading_path(target, run_id)
        try:
            yield loading
        finally:
            _discard(loading)


def publish(loading: Path, target: Path) -> None:
    """Checkpoint the freshly loaded file and rename it over the target in one atomic step."""
    import duckdb

    with duckdb.connect(str(loading)) as connection:
        connection.execute("CHECKPOINT")
    # A write-ahead log next to the target belongs to the copy being replaced (a writer that
    # crashed); left there, DuckDB would try to replay it onto the new file.
    target.with_name(target.name + ".wal").unlink(missing_ok=True)
    os.replace(loading, target)
