"""Any other destination (filesystem, Delta, Iceberg, warehouses without a schema swap): loaded in
place, table by table, with the destination's own replace strategy.

Nothing is swapped whole, so there is no fresh copy: the run writes ``crm`` itself. Where the
destination answers SQL, the kept tables are written in place (``persistent.record_in_place``) and
the events merged in one transaction after the load; files (filesystem & co.) keep neither, except
history mode's ``<table>_history`` where they are Delta or Iceberg tables (written by the job after
the load: ``streak_warehouse/history_lakehouse.py``). There is
no refresh basis either (a ``changed`` refresh needs a copy swapped whole). One run at a time per
destination: a lock file named after the destination's location (:func:`lock_file`), taken by the
main job and the events load.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from streak_warehouse.destination import DATASET_NAME, check_warehouse, configured_table_format, warehouse_destination
from streak_warehouse.kept_tables import PersistentTable
from streak_warehouse.events_table import read_stage_change_events
from streak_warehouse.history_tables import PreviousHistory, read_previous
from streak_warehouse.locks import FileRunLock, RunOwner
from streak_warehouse.persistent import record_in_place
from streak_warehouse.refresh_basis import RefreshSettings, in_place_reason, plan_for_run
from streak_warehouse.sql import executor, sql_client_or_none
from streak_warehouse.targets.base import Execute, Finish, KeptRows, LiveReads, RunGuards, SqlLiveCopy
from streak_warehouse.targets.base import destination_location, new_pipeline, runs_dir
from streak_warehouse.upgrade import written_layout_at


def lock_file(location: str) -> Path:
    """The run lock of the destination at ``location`` (a file: the destination itself has none)."""
    digest = hashlib.sha256(location.encode()).hexdigest()[:16]
    return runs_dir() / f"destination-{digest}.lock"


def _locked(location: str, owner: RunOwner) -> FileRunLock:
    return FileRunLock(lock_file(location), location, owner)


@dataclass
class InPlace:
    """The warehouse is loaded where it is (``destination_type`` names the dlt destination)."""

    destination_type: str

    @contextlib.contextmanager
    def opened(self, run_id: str, owner: RunOwner, guards: RunGuards) -> Iterator[LoadedInPlace]:
        copy = LoadedInPlace(self.destination_type)
        with _locked(copy.location, owner), guards.recorded(copy.location):
            yield copy

    def live_copy(self) -> SqlLiveCopy:
        return SqlLiveCopy(self.destination_type, lambda _, location, owner: _locked(location, owner))


class LoadedInPlace:
    """``crm`` itself, loaded table by table."""

    dataset = DATASET_NAME

    def __init__(self, destination_type: str) -> None:
        self.destination_type = destination_type
        self.pipeline = new_pipeline(warehouse_destination(), DATASET_NAME)
        self.location = destination_location(self.pipeline, destination_type)
        self.replace_strategy = check_warehouse(self.pipeline, destination_type, self.location)
        table_format = configured_table_format()
        if destination_type == "filesystem" and table_format:  # dlt calls it insert-from-staging; nothing is staged
            self.replace_strategy = f"{table_format} overwrite, one commit per table"
        self.client: Any = None

    @property
    def keeps_tables(self) -> bool:
        """Whether the destination answers SQL (known once the live copy was read)."""
        return self.client is not None

    def written_layout(self) -> int | None:
        return written_layout_at(self.pipeline, DATASET_NAME)

    def read_live(self, settings: RefreshSettings, started_at: datetime) -> LiveReads:
        """The stage history and ``BOX_CHANGE_STAGE`` events in ``crm`` (none in files); no refresh basis."""
        refresh = plan_for_run(settings, started_at, unavailable=in_place_reason(self.destination_type))
        self.client = sql_client_or_none(self.pipeline, "load history")
        if self.client is None:  # files (filesystem) have no load_history nor stage history
            return LiveReads(PreviousHistory(), [], refresh)
        with self.client:
            execute = executor(self.client)
            return LiveReads(read_previous(execute, DATASET_NAME), read_stage_change_events(execute, DATASET_NAME), refresh)

    @contextlib.contextmanager
    def fresh_execute(self) -> Iterator[Execute]:
        with self.client:
            yield executor(self.client)

    def publish(self, rows: KeptRows, migrate_from: int | None, finish: Finish,
                tables: Sequence[PersistentTable]) -> None:
        """Write the kept tables, then finish (history versions, events) in one transaction."""
        with self.client:
            record_in_place(self.client, DATASET_NAME, rows, migrate_from, tables)
            with self.client.begin_transaction():
                finish(self.client, DATASET_NAME)
