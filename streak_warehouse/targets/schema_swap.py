"""A Postgres schema: load a fresh schema, then rename it into place in one transaction.

dlt's ``insert-from-staging`` swaps one table per transaction, so a load failing part-way through the
swaps can leave some tables new and some old. Loading everything (tables and wide views) into a
schema of this run's own (``crm_load_<run id>``) and then, in one transaction, moving the
persistent tables (``persistent.py``) across, renaming ``crm`` away and the fresh schema to ``crm``
makes the switch all-or-nothing: until it commits, readers see the previous copy, and a failure at
any earlier point leaves ``crm`` exactly as it was. Postgres views point at tables, not names, so
the views created in the fresh schema keep working after the rename.

Concurrent runs: :class:`SchemaSwap` holds :func:`run_lock` (an advisory lock) for the whole run,
the events load (:class:`LiveSchema`) while it merges; every run has its own fresh schema, so
discarding one run's schema never drops another's.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from streak_warehouse.destination import DATASET_NAME, check_warehouse, warehouse_destination
from streak_warehouse.kept_tables import PersistentTable
from streak_warehouse.events_table import read_stage_change_events
from streak_warehouse.history_tables import read_previous
from streak_warehouse.locks import PostgresRunLock, RunOwner
from streak_warehouse.persistent import carry_over_schema
from streak_warehouse.refresh_basis import RefreshSettings, plan_for_run, read_basis
from streak_warehouse.sql import executor, qualified, quote_identifier, schema_names, string_literal
from streak_warehouse.targets.base import Execute, Finish, KeptRows, LiveReads, RunGuards, SqlLiveCopy
from streak_warehouse.targets.base import destination_location, new_pipeline
from streak_warehouse.upgrade import written_layout_at

SCHEMA_SWAP_TYPES: Final = frozenset({"postgres"})
"""Destinations with transactional ``ALTER SCHEMA ... RENAME`` (DuckDB files are swapped whole)."""
FRESH_MARK: Final = "_load_"


def fresh_dataset_name(dataset: str, run_id: str) -> str:
    """This run's schema: ``crm_load_<run id>`` (short: Postgres names stop at 63 bytes)."""
    return f"{dataset}{FRESH_MARK}{run_id}"


def _leftover_pattern(dataset: str) -> re.Pattern[str]:
    return re.compile(re.escape(dataset) + r"(_next|" + re.escape(FRESH_MARK) + r"[0-9a-f]+)(_staging)?")


def run_lock(pipeline: Any, dataset: str, owner: RunOwner) -> PostgresRunLock:
    """The lock every run loading ``dataset`` of this database takes (use it as a context manager)."""
    return PostgresRunLock(pipeline.sql_client(), f"streak-run:{dataset}", f"dataset {dataset}", owner)


def discard_leftovers(pipeline: Any, dataset: str, keep: str | None = None) -> list[str]:
    """Drop fresh schemas of earlier runs that never published (call only under :func:`run_lock`)."""
    pattern = _leftover_pattern(dataset)
    with pipeline.sql_client() as client:
        stale = sorted(name for name in schema_names(client) if pattern.fullmatch(name) and name != keep)
        for name in stale:
            client.execute_sql(f"DROP SCHEMA {quote_identifier(name)} CASCADE")
    return stale


def discard_dataset(pipeline: Any, dataset: str) -> None:
    """Drop one fresh ``dataset`` (and its staging twin), if present: this run's own, after a failure."""
    with pipeline.sql_client() as client:
        present = schema_names(client)
        for name in (dataset, f"{dataset}_staging"):
            if name in present:
                client.execute_sql(f"DROP SCHEMA {quote_identifier(name)} CASCADE")


def publish_dataset(
    pipeline: Any, loaded: str, target: str, before_rename: Callable[[Any, bool], None] | None = None
) -> None:
    """In one transaction: ``before_rename(client, target_exists)`` (carries the persistent tables
    over), drop ``target``, rename ``loaded`` to ``target``; leftovers go too."""
    with pipeline.sql_client() as client:
        present = schema_names(client)
        previous = f"{target}_previous"
        with client.begin_transaction():
            if before_rename is not None:
                before_rename(client, target in present)
            for stale in (previous, f"{target}_staging"):
                if stale in present:
                    client.execute_sql(f"DROP SCHEMA {quote_identifier(stale)} CASCADE")
            if target in present:
                client.execute_sql(f"ALTER SCHEMA {quote_identifier(target)} RENAME TO {quote_identifier(previous)}")
            client.execute_sql(f"ALTER SCHEMA {quote_identifier(loaded)} RENAME TO {quote_identifier(target)}")
            if target in present:
                client.execute_sql(f"DROP SCHEMA {quote_identifier(previous)} CASCADE")


def state_names_the_published_dataset(client: Any, fresh: str, target: str) -> int:
    """Rewrite dlt's state rows in ``fresh`` to name ``target`` as their dataset; returns how many.

    dlt records the dataset a state was loaded into: the run's own schema, which becomes ``target``
    by the rename. Left as is, a pipeline restored from the destination on a new machine would be
    told its dataset is ``crm_load_<run id>`` (dlt warns and corrects it). Call inside the publishing
    transaction.
    """
    from dlt.common.versioned_state import compress_state, decompress_state, generate_state_version_hash

    table = qualified(fresh, "_dlt_pipeline_state")
    rewritten = 0
    for row_id, blob in client.execute_sql(f"SELECT _dlt_id, state FROM {table}") or []:
        state = decompress_state(blob)
        if state.get("dataset_name") != fresh:
            continue
        state["dataset_name"] = target
        state["_version_hash"] = generate_state_version_hash(state)  # type: ignore[arg-type]
        client.execute_sql(
            f"UPDATE {table} SET state = {string_literal(compress_state(state))}, "  # type: ignore[arg-type]
            f"version_hash = {string_literal(state['_version_hash'])} WHERE _dlt_id = {string_literal(str(row_id))}"
        )
        rewritten += 1
    return rewritten


@dataclass
class SchemaSwap:
    """The warehouse is the ``crm`` schema of a database that renames schemas in a transaction."""

    destination_type: str

    @contextlib.contextmanager
    def opened(self, run_id: str, owner: RunOwner, guards: RunGuards) -> Iterator[FreshSchema]:
        """The run's fresh schema, under the dataset's run lock; dropped unless published."""
        fresh = FreshSchema(self.destination_type, fresh_dataset_name(DATASET_NAME, run_id))
        with run_lock(fresh.pipeline, DATASET_NAME, owner), guards.recorded(fresh.location):
            discard_leftovers(fresh.pipeline, DATASET_NAME, keep=fresh.dataset)
            try:
                yield fresh
            except BaseException:
                with contextlib.suppress(Exception):
                    discard_dataset(fresh.pipeline, fresh.dataset)
                raise

    def live_copy(self) -> SqlLiveCopy:
        return SqlLiveCopy(self.destination_type, lambda pipeline, _, owner: run_lock(pipeline, DATASET_NAME, owner))


class FreshSchema:
    """``crm_load_<run id>``: loaded, then given the kept tables and events and renamed to ``crm``."""

    keeps_tables = True
    replace_strategy: str | None = None

    def __init__(self, destination_type: str, dataset: str) -> None:
        self.dataset = dataset
        self.pipeline = new_pipeline(warehouse_destination(fresh_dataset=True), dataset)
        self.location = destination_location(self.pipeline, destination_type)
        check_warehouse(self.pipeline, destination_type, self.location, replaced_by_rename=True)

    def written_layout(self) -> int | None:
        return written_layout_at(self.pipeline, DATASET_NAME)

    def read_live(self, settings: RefreshSettings, started_at: datetime) -> LiveReads:
        """The live schema's stage history, ``BOX_CHANGE_STAGE`` events and refresh basis."""
        with self.pipeline.sql_client() as client:
            execute = executor(client)
            previous = read_previous(execute, DATASET_NAME)
            events = read_stage_change_events(execute, DATASET_NAME)
            return LiveReads(previous, events, plan_for_run(settings, started_at, lambda: read_basis(execute, DATASET_NAME)))

    @contextlib.contextmanager
    def fresh_execute(self) -> Iterator[Execute]:
        with self.pipeline.sql_client() as client:
            yield executor(client)

    def publish(self, rows: KeptRows, migrate_from: int | None, finish: Finish,
                tables: Sequence[PersistentTable]) -> None:
        def before_rename(client: Any, live_exists: bool) -> None:
            carry_over_schema(client, DATASET_NAME, self.dataset, live_exists, rows, migrate_from, tables)
            finish(client, self.dataset)
            state_names_the_published_dataset(client, self.dataset, DATASET_NAME)

        publish_dataset(self.pipeline, self.dataset, DATASET_NAME, before_rename=before_rename)
        self.replace_strategy = "new schema renamed into place"
