"""Whole-file replace for a local DuckDB destination: load a fresh file next to it, then rename.

dlt's ``insert-from-staging`` swaps one table per transaction, so a load that fails part-way can
leave some tables new and some old; and DuckDB lets one process hold a file for writing, so a
dashboard or a DuckDB shell that has ``streak.duckdb`` open would block the load. Loading into
``streak.duckdb.loading`` and renaming it over ``streak.duckdb`` once everything (tables and wide
views) is in place fixes both: the rename is atomic, readers with the old file open keep reading
the previous copy until they reopen it, and any failure before the rename leaves the previous file
byte for byte as it was.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


class LoadAlreadyRunning(RuntimeError):
    """Another run is loading into the same DuckDB file right now."""


def loading_path(target: Path) -> Path:
    return target.with_name(target.name + ".loading")


def _discard(path: Path) -> None:
    for leftover in (path, path.with_name(path.name + ".wal")):
        leftover.unlink(missing_ok=True)


@contextlib.contextmanager
def fresh_file_for(target: Path) -> Iterator[Path]:
    """Yield the path to load into; on exit, the temporary file is gone whatever happened.

    One run at a time per target: a second concurrent run fails at once rather than overwrite the
    first's file. Leftovers of a crashed run are discarded first.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    loading = loading_path(target)
    with open(target.with_name(target.name + ".lock"), "a+") as lock_file:
        try:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LoadAlreadyRunning(
                f"another run is loading into {target} right now; wait for it to finish"
            ) from None
        _discard(loading)
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
