"""A local DuckDB file: load a fresh file next to it, then rename it over the live one.

dlt's ``insert-from-staging`` swaps one table per transaction, so a load that fails part-way can
leave some tables new and some old; and DuckDB lets one process hold a file for writing, so a
dashboard or a DuckDB shell that has ``streak.duckdb`` open would block the load. Loading into
``streak.duckdb.<run id>.loading`` and renaming it over ``streak.duckdb`` once everything (tables,
wide views, kept tables) is in place fixes both: the rename is atomic, readers with the old
file open keep reading the previous copy until they reopen it, and any failure before the rename
leaves the previous file byte for byte as it was.

One run at a time per file: ``streak.duckdb.lock`` (see ``locks.py``), taken by the main job
(:class:`DuckDBFile`) and by the events load (:class:`LiveDuckDBFile`). Each run's fresh file has its
own name, and only leftovers of runs that are gone (the lock is ours) are ever discarded. The live
file is read read-only (``persistent.read_live_duckdb_file``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from streak_warehouse.destination import DATASET_NAME, check_warehouse, warehouse_destination
from streak_warehouse.events_table import read_stage_change_events
from streak_warehouse.history_tables import read_previous_duckdb
from streak_warehouse.locks import FileRunLock, RunOwner
from streak_warehouse.persistent import carry_over_duckdb, read_live_duckdb_file
from streak_warehouse.refresh_basis import RefreshSettings, plan_for_run, read_basis_duckdb
from streak_warehouse.kept_tables import PersistentTable
from streak_warehouse.sql import string_literal
from streak_warehouse.targets.base import Execute, Finish, KeptRows, LiveReads, RunGuards, new_pipeline
from streak_warehouse.upgrade import written_layout_of_file

LOAD_MEMORY_LIMIT: Final = "64MB"
"""DuckDB's memory cap while loading. Uncapped (DuckDB's default: 80% of RAM) it keeps every block it
has written in memory until the file closes, so a load's memory grew with the account (20k boxes:
+260 MB, 2k: +100 MB); capped, it writes them out instead (20k: +125 MB, load 2.1 s -> ~3 s). Load
jobs are at most ``[data_writer] file_max_items`` rows, so the cap never has to hold a whole table."""


def lock_path(target: Path) -> Path:
    return target.with_name(target.name + ".lock")


def loading_path(target: Path, run_id: str) -> Path:
    """The fresh file one run loads into."""
    return target.with_name(f"{target.name}.{run_id}.loading")


def _discard(path: Path) -> None:
    for leftover in (path, path.with_name(path.name + ".wal")):
        leftover.unlink(missing_ok=True)


def _leftovers(target: Path) -> list[Path]:
    """Fresh files of earlier runs that never published (killed, or older versions' fixed name), and
    the working files of a ``forget`` that was killed."""
    return sorted(target.parent.glob(f"{target.name}.*loading")) + sorted(target.parent.glob(f"{target.name}.*loading.wal"))


@contextlib.contextmanager
def fresh_file_for(target: Path, run_id: str, owner: RunOwner) -> Iterator[Path]:
    """Lock ``target`` for this run and yield the path to load into; the fresh file is gone on exit
    whatever happened (renamed into place by :func:`publish`, or discarded).

    Raises :class:`LoadAlreadyRunning` at once when another run holds the lock.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileRunLock(lock_path(target), str(target), owner):
        discard_leftovers(target)  # the lock is ours: their runs are gone
        loading = loading_path(target, run_id)
        try:
            yield loading
        finally:
            _discard(loading)


def discard_leftovers(target: Path) -> None:
    """Delete the fresh and working files of runs that are gone (call under ``target``'s lock)."""
    for leftover in _leftovers(target):
        leftover.unlink(missing_ok=True)


def rewrite_duckdb_file(source: Path, out: Path) -> None:
    """Write every schema, table, view and constraint of the DuckDB file ``source`` into a new file
    ``out`` (replaced if present). An ``UPDATE`` or ``DELETE`` leaves the values it replaced in the
    file's free blocks; the new file holds only what the tables hold now (``forget``, a change of
    the ``[privacy]`` rules)."""
    import duckdb

    _discard(out)
    with duckdb.connect() as con:
        con.execute(f"ATTACH {string_literal(str(source))} AS streak_source_file (READ_ONLY)")
        con.execute(f"ATTACH {string_literal(str(out))} AS streak_rewritten_file")
        con.execute("COPY FROM DATABASE streak_source_file TO streak_rewritten_file")
        con.execute("DETACH streak_rewritten_file")
        con.execute("DETACH streak_source_file")


def publish(loading: Path, target: Path) -> None:
    """Checkpoint the freshly loaded file and rename it over the target in one atomic step."""
    import duckdb

    with duckdb.connect(str(loading)) as connection:
        connection.execute("CHECKPOINT")
    # A write-ahead log next to the target belongs to the copy being replaced (a writer that
    # crashed); left there, DuckDB would try to replay it onto the new file.
    target.with_name(target.name + ".wal").unlink(missing_ok=True)
    os.replace(loading, target)


@dataclass
class DuckDBFile:
    """The warehouse is the local DuckDB file ``path`` (``destination.duckdb_file_target``)."""

    path: Path
    destination_type: str = "duckdb"

    @contextlib.contextmanager
    def opened(self, run_id: str, owner: RunOwner, guards: RunGuards) -> Iterator[FreshDuckDBFile]:
        """The run's fresh file, under the file's lock; discarded unless published."""
        with fresh_file_for(self.path, run_id, owner) as loading, guards.recorded(str(self.path)):
            with guards.on_hard_stop(lambda: _discard(loading)):
                yield FreshDuckDBFile(self.path, loading)

    def live_copy(self) -> LiveDuckDBFile:
        return LiveDuckDBFile(self.path)


class FreshDuckDBFile:
    """``<file>.<run id>.loading``: loaded, given the kept tables and events, renamed over the file."""

    dataset = DATASET_NAME
    keeps_tables = True

    def __init__(self, live: Path, loading: Path) -> None:
        self.live, self.loading = live, loading
        self.location = str(live)
        self.pipeline = new_pipeline(warehouse_destination(load_into_duckdb_file=loading), DATASET_NAME)
        self.replace_strategy = check_warehouse(self.pipeline, "duckdb", self.location, replaced_by_rename=True)

    def written_layout(self) -> int | None:
        return written_layout_of_file(self.live, DATASET_NAME)

    def read_live(self, settings: RefreshSettings, started_at: datetime) -> LiveReads:
        """The live file's stage history, ``BOX_CHANGE_STAGE`` events and refresh basis (read-only)."""
        previous = read_previous_duckdb(self.live, DATASET_NAME)
        events = read_live_duckdb_file(self.live, "the events",
                                       lambda execute: read_stage_change_events(execute, DATASET_NAME))
        refresh = plan_for_run(settings, started_at, lambda: read_basis_duckdb(self.live, DATASET_NAME))
        return LiveReads(previous, events if events is not None else [], refresh)

    @contextlib.contextmanager
    def fresh_execute(self) -> Iterator[Execute]:
        import duckdb

        with duckdb.connect(str(self.loading)) as con:
            yield lambda sql: con.execute(sql).fetchall()

    def publish(self, rows: KeptRows, migrate_from: int | None, finish: Finish,
                tables: Sequence[PersistentTable]) -> None:
        carry_over_duckdb(self.live, self.loading, DATASET_NAME, rows, migrate_from, tables)
        with transaction(self.loading) as connection:
            rewrote = finish(connection, DATASET_NAME)
        if rewrote:  # the carried values it replaced are still in the file's free blocks
            compacted = self.loading.with_suffix(".rewritten.loading")  # a leftover the next run discards
            try:
                rewrite_duckdb_file(self.loading, compacted)
                compacted.replace(self.loading)
            finally:
                _discard(compacted)
        publish(self.loading, self.live)
        self.replace_strategy = "new file renamed into place"


@dataclass
class LiveDuckDBFile:
    """The live file, for the events load: locked as the main job locks it."""

    path: Path

    @property
    def location(self) -> str:
        return str(self.path)

    @contextlib.contextmanager
    def locked(self, owner: RunOwner) -> Iterator[_LiveFileSession]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with FileRunLock(lock_path(self.path), self.location, owner):
            yield _LiveFileSession(self.path)


@dataclass
class _LiveFileSession:
    path: Path

    def read(self, check: Callable[[Execute], None]) -> None:
        """``check`` the live file (nothing to check before its first load)."""
        if self.path.exists():
            with transaction(self.path) as connection:
                check(connection.execute_sql)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Execute]:
        with transaction(self.path) as connection:
            yield connection.execute_sql


@dataclass
class Connection:
    """A DuckDB connection where a dlt sql client is expected (``execute_sql``, ``native_connection``)."""

    native_connection: Any

    def execute_sql(self, sql: str) -> list[Any]:
        return self.native_connection.execute(sql).fetchall()  # type: ignore[no-any-return]


@contextlib.contextmanager
def transaction(path: Path) -> Iterator[Connection]:
    """A connection to the DuckDB file ``path`` in one transaction, committed (and checkpointed) on success."""
    import duckdb

    with duckdb.connect(str(path)) as con:
        con.execute("BEGIN TRANSACTION")
        try:
            yield Connection(con)
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
        con.execute("CHECKPOINT")


@contextlib.contextmanager
def memory_capped(pipeline: Any, destination_type: str) -> Iterator[None]:
    """Keep a DuckDB destination open for the whole load with its memory capped.

    The cap is a setting of the open database, so every load job's connection shares it. It is put
    back afterwards for anyone else holding the same file open in this process, after a checkpoint
    under the cap: DuckDB checkpoints when the file closes, and uncapped that pass alone took as
    much memory as the load had saved. Other destinations: nothing to do.
    """
    if destination_type != "duckdb":
        yield
        return
    with pipeline.sql_client() as client:
        rows = client.execute_sql("SELECT current_setting('memory_limit')")
        client.execute_sql(f"SET GLOBAL memory_limit = '{LOAD_MEMORY_LIMIT}'")
        try:
            yield
        finally:
            with contextlib.suppress(Exception):  # never hide the load's own error
                client.execute_sql("CHECKPOINT")
            if rows:
                with contextlib.suppress(Exception):
                    client.execute_sql(f"SET GLOBAL memory_limit = '{rows[0][0]}'")
