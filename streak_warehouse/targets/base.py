"""What every destination kind offers the two jobs, and the parts the SQL kinds share.

The main job (``pipelines/job.py``) opens a :class:`FreshCopy` (:meth:`Target.opened`), loads the
source into ``copy.pipeline``, and hands the copy the rows of the kept tables to publish. The events
load (``pipelines/events_load.py``) opens the :class:`LiveCopy` under the same run lock and merges
into it. Each kind (``duckdb_file.py``, ``schema_swap.py``, ``in_place.py``) decides where the fresh
copy goes, how the kept tables are carried over, how the copy is published, which lock guards it and
how the live copy is read; ``configured.py`` picks the kind once per run.
"""

from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from streak_warehouse.destination import DATASET_NAME, PIPELINE_NAME, warehouse_destination
from streak_warehouse.sql import executor, sql_client_or_none

if TYPE_CHECKING:
    from streak_warehouse.kept_tables import PersistentTable
    from streak_source.refresh import RefreshPlan
    from streak_warehouse.history_tables import PreviousHistory
    from streak_warehouse.locks import RunOwner
    from streak_warehouse.refresh_basis import RefreshSettings

Execute = Callable[[str], Sequence[Any]]
KeptRows = Mapping[str, list[dict[str, Any]]]
Finish = Callable[[Any, str], bool | None]
"""``finish(client, dataset)``: what the job writes into the fresh ``dataset`` once the kept tables
are in it (this run's history versions, ``history_mode.py``; the events merge,
``pipelines/events_load.py``); the copy calls it with a client inside the transaction that writes
the fresh ``dataset``, before publishing it. True when it rewrote carried values in place (a new
``[privacy]`` rule): a DuckDB file is then written anew, so the old values leave no trace in it."""


@dataclass
class RunGuards:
    """What the job wraps around a run once the destination is known, for the copy to place in its
    own order: ``recorded(location)`` leaves a side record on failure, ``on_hard_stop(cleanup)``
    runs ``cleanup`` when the process is stopped hard (``pipelines/stopping.py``)."""

    recorded: Callable[[str], AbstractContextManager[None]]
    on_hard_stop: Callable[[Callable[[], None]], AbstractContextManager[None]]


@dataclass
class LiveReads:
    """What a run reads from the live copy before extracting."""

    previous: PreviousHistory
    stage_events: list[Any] = field(default_factory=list)
    refresh: RefreshPlan | None = None


class FreshCopy(Protocol):
    """One run's new copy of the warehouse, open until it is published or discarded."""

    pipeline: Any
    location: str
    dataset: str
    """Where the fresh tables are (``crm`` itself for a copy loaded in place)."""
    replace_strategy: str | None
    """As checked before loading; after :meth:`publish`, how the copy replaced the previous one."""

    @property
    def keeps_tables(self) -> bool:
        """False where the destination holds no SQL tables (files): no kept tables, no events."""

    def written_layout(self) -> int | None: ...

    def read_live(self, settings: RefreshSettings, started_at: datetime) -> LiveReads: ...

    def fresh_execute(self) -> AbstractContextManager[Execute]: ...

    def publish(self, rows: KeptRows, migrate_from: int | None, finish: Finish,
                tables: Sequence[PersistentTable]) -> None:
        """Carry ``tables`` (the kept tables) into the fresh copy with ``rows`` added, ``finish`` it,
        and make it the live copy."""


class LiveSession(Protocol):
    """The live copy, locked against the main job, for the events load."""

    def read(self, check: Callable[[Execute], None]) -> None: ...

    def transaction(self) -> AbstractContextManager[Execute]: ...


class LiveCopy(Protocol):
    location: str

    def locked(self, owner: RunOwner) -> AbstractContextManager[LiveSession]: ...


class Target(Protocol):
    """One destination kind, configured."""

    destination_type: str

    def opened(self, run_id: str, owner: RunOwner, guards: RunGuards) -> AbstractContextManager[FreshCopy]: ...

    def live_copy(self) -> LiveCopy: ...


# --- shared by the SQL kinds (schema swap, in place) ----------------------------------------------


def new_pipeline(destination: Any, dataset_name: str, pipeline_name: str = PIPELINE_NAME) -> Any:
    import dlt

    return dlt.pipeline(pipeline_name=pipeline_name, destination=destination, dataset_name=dataset_name)


def destination_location(pipeline: Any, destination_type: str) -> str:
    """Where the data goes, without secrets (file path, URL without password, bucket)."""
    with contextlib.suppress(Exception):
        credentials = pipeline.destination_client().config.credentials
        if destination_type in ("duckdb", "motherduck"):
            return str(credentials.database)
        return str(credentials.to_url().render_as_string(hide_password=True))  # type: ignore[union-attr]
    with contextlib.suppress(Exception):
        return str(pipeline.destination_client().config.bucket_url)
    return destination_type


def runs_dir() -> Path:
    """``streak_runs/`` of the dlt data dir: side records and the in-place lock files."""
    import dlt

    return Path(dlt.current.run_context().data_dir) / "streak_runs"


class SqlLiveCopy:
    """The live ``crm`` of a SQL destination, through a pipeline of the events load's own (its dlt
    working dir is not the main job's), under ``lock(pipeline, location, owner)``."""

    def __init__(self, destination_type: str, lock: Callable[[Any, str, RunOwner], AbstractContextManager[Any]]) -> None:
        self.destination_type = destination_type
        self.pipeline = new_pipeline(warehouse_destination(), DATASET_NAME, f"{PIPELINE_NAME}_events")
        self.location = destination_location(self.pipeline, destination_type)
        self._lock = lock

    @contextlib.contextmanager
    def locked(self, owner: RunOwner) -> Iterator[LiveSession]:
        with self._lock(self.pipeline, self.location, owner):
            client = sql_client_or_none(self.pipeline, "events")
            if client is None:
                raise ValueError(f"the destination {self.destination_type} has no SQL tables: "
                                 "crm.events needs a SQL destination")
            with client:
                yield _SqlSession(client)


@dataclass
class _SqlSession:
    client: Any

    def read(self, check: Callable[[Execute], None]) -> None:
        check(executor(self.client))

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Execute]:
        with self.client.begin_transaction():
            yield executor(self.client)
