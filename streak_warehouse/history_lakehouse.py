"""History mode on a lakehouse: ``<table>_history`` as Delta or Iceberg tables next to the copy.

The filesystem destination has no SQL database to keep tables in (dlt's SQL client over a bucket is
a throwaway in-memory DuckDB), so with ``table_format = "delta"`` or ``"iceberg"`` the history is
written with the format's own library, after dlt loaded the copy. Per tracked table
(``history_mode.tracked_tables``): the fresh copy and the CURRENT versions of its history
(``valid_to`` NULL) are read into an in-memory DuckDB, where ``history_mode.record_table_versions``
applies the very SQL the DuckDB and Postgres copies use (same columns, ``valid_from`` = the run's end,
a version only where a stored value changed, gone records closed and marked ``deleted``, the
append-only ``box_newsfeed``); what it added or closed is then written into ``<table>_history`` in ONE
commit (Delta: a merge on the record's key and ``valid_from``; Iceberg: an overwrite of the current
versions, :meth:`IcebergTables.add_versions` says why). A table is created by its first run's append.

Not dlt's ``scd2``: dlt 1.31's filesystem destination merges Delta tables only with ``upsert``,
``insert-only`` or ``cdc`` (Iceberg: ``upsert``, ``insert-only``), and its scd2 has no ``deleted``
flag and works on ``_dlt_*`` columns (docs/destinations.md).

The history is written last, after the copy: a run that fails before adds nothing. Each table's
history is one commit, but the run is not one transaction across tables (nor with the copy): see
docs/destinations.md, "History on Delta and Iceberg", for what a process killed in between leaves.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol

from streak_warehouse.destination import DATASET_NAME, configured_table_format
from streak_warehouse.history_mode import (
    DELETED, VALID_FROM, VALID_TO, TrackedTable, VersionsAdded, record_table_versions, timestamp_literal,
)
from streak_warehouse.persistent import create_sql
from streak_warehouse.sql import ANSI_TYPES, qualified, quote_identifier

DLT_ROW_COLUMNS: Final = ("_dlt_load_id", "_dlt_id")
"""dlt's columns of a copy's row: an append-only table's refill writes them (``history_mode.refill_sql``)."""


@dataclass
class RunVersions:
    """One table's history after this run, as a writer needs it (Arrow, from the in-memory DuckDB)."""

    key: tuple[str, ...]
    """A version's identity: the record's key and ``valid_from``."""
    changed: Any
    """The versions this run opened or closed."""
    current: Callable[[], Any]
    """Every version current before this run (closed by it or not) and the ones it opened."""


class OpenTables(Protocol):
    """The copy's dataset in one table format."""

    def read(self, name: str, current_only: bool = False) -> Any:
        """The table's rows as an Arrow table (only those with ``valid_to`` NULL if ``current_only``),
        or None where no such table was written yet."""

    def add_versions(self, name: str, versions: RunVersions) -> None:
        """Write this run's versions into the history table ``name`` in one commit (creating it)."""

    def overwrite(self, name: str, rows: Any) -> None:
        """Replace the copy's table ``name`` by ``rows`` (in its own column types), creating it if missing."""


def record_open_table_versions(pipeline: Any, tables: Sequence[TrackedTable], at: datetime) -> VersionsAdded | None:
    """This run's versions of every table in ``tables`` into ``<table>_history`` next to the copy
    ``pipeline`` loaded, valid from ``at`` (the run's end); None where the copy is plain files (no
    table format to keep a history in)."""
    table_format = configured_table_format()
    if table_format not in ("delta", "iceberg"):
        return None
    with pipeline.destination_client() as client:
        return record_versions_in(DeltaTables.of_client(client) if table_format == "delta" else IcebergTables(client),
                                  tables, at)


def record_versions_in(lake: OpenTables, tables: Sequence[TrackedTable], at: datetime) -> VersionsAdded:
    """:func:`record_table` for each of ``tables``, in one in-memory DuckDB."""
    import duckdb

    added = VersionsAdded({}, {}, {})
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"CREATE SCHEMA {quote_identifier(DATASET_NAME)}")
        for table in tables:
            counts = record_table(con, lake, table, at)
            if counts is not None:
                added.note(table.name, counts)
    return added


def record_table(con: Any, lake: OpenTables, table: TrackedTable, at: datetime) -> tuple[int, int, int] | None:
    """One table's versions: diffed in DuckDB (``con``), written to ``lake``; None when the table has
    neither rows in the copy nor a history yet."""
    fresh, current = lake.read(table.name), lake.read(table.history_name, current_only=True)
    if fresh is None and current is None:
        return None
    history = table.history_table()
    copy_columns = (*table.columns, *((name, "text") for name in DLT_ROW_COLUMNS if name not in dict(table.columns)))
    con.execute(create_sql(history, DATASET_NAME))
    con.execute(f"CREATE TABLE {qualified(DATASET_NAME, table.name)} ({', '.join(_typed(c) for c in copy_columns)})")
    _insert(con, table.name, copy_columns, fresh)
    _insert(con, table.history_name, history.columns, current)

    counts = record_table_versions(lambda sql: con.execute(sql).fetchall(), DATASET_NAME, table, at,
                                   lambda data_type: ANSI_TYPES.get(data_type, "VARCHAR"))
    moment, valid_to = timestamp_literal(at), quote_identifier(VALID_TO)

    def versions(where: str) -> Any:
        return con.sql(f"SELECT * FROM {qualified(DATASET_NAME, table.history_name)} WHERE {where}").to_arrow_table()

    changed = versions(f"{quote_identifier(VALID_FROM)} = {moment} OR {valid_to} = {moment}")
    if changed.num_rows:
        lake.add_versions(table.history_name, RunVersions(
            (*table.key, VALID_FROM), changed, lambda: versions(f"{valid_to} IS NULL OR {valid_to} = {moment}")))
    if table.append_only and current is not None and current.num_rows:
        # every entry kept before was fetched again (put back as first fetched) or not (refilled); a
        # copy without the table (Iceberg deletes an emptied table's files) gets it back
        lake.overwrite(table.name, con.sql(f"SELECT * FROM {qualified(DATASET_NAME, table.name)}").to_arrow_table())
    con.execute(f"DROP TABLE {qualified(DATASET_NAME, table.name)}")
    con.execute(f"DROP TABLE {qualified(DATASET_NAME, table.history_name)}")
    return counts


def _insert(con: Any, name: str, columns: Sequence[tuple[str, str]], rows: Any) -> None:
    """``rows`` (Arrow) into the DuckDB table ``name``, by column name: a column the Arrow table lacks
    (added to the copy since) stays NULL."""
    if rows is None or not rows.num_rows:
        return
    present = [quote_identifier(column) for column, _ in columns if column in rows.schema.names]
    con.register("arrow_rows", rows)
    try:
        con.execute(f"INSERT INTO {qualified(DATASET_NAME, name)} ({', '.join(present)}) "
                    f"SELECT {', '.join(present)} FROM arrow_rows")
    finally:
        con.unregister("arrow_rows")


def _typed(column: tuple[str, str]) -> str:
    name, data_type = column
    return f"{quote_identifier(name)} {ANSI_TYPES.get(data_type, 'VARCHAR')}"


# --- the formats ----------------------------------------------------------------------------------


class DeltaTables:
    """Delta tables through ``deltalake``: ``location(name)`` is a table's URL."""

    def __init__(self, location: Callable[[str], str], storage_options: Mapping[str, str]) -> None:
        self._location = location
        self.storage = dict(storage_options)

    @classmethod
    def of_client(cls, client: Any) -> DeltaTables:
        """The dataset of dlt's filesystem ``client``, with its credentials as deltalake storage options."""
        from dlt.common.libs.deltalake import deltalake_storage_options

        return cls(lambda name: str(client.get_open_table_location("delta", name)),
                   deltalake_storage_options(client.config.credentials, client.config.deltalake_storage_options))

    def _table(self, name: str) -> Any:
        from deltalake import DeltaTable

        location = self._location(name)
        return DeltaTable(location, storage_options=self.storage) if DeltaTable.is_deltatable(location, self.storage) else None

    def read(self, name: str, current_only: bool = False) -> Any:
        import pyarrow.dataset as ds

        table = self._table(name)
        if table is None:
            return None
        return table.to_pyarrow_dataset().to_table(filter=ds.field(VALID_TO).is_null() if current_only else None)

    def add_versions(self, name: str, versions: RunVersions) -> None:
        """One merge on the version's identity: a closed version updates ``valid_to`` and ``deleted``
        of its row, an opened one is added; only files holding a closed version are rewritten."""
        from deltalake import write_deltalake

        table = self._table(name)
        if table is None:
            write_deltalake(self._location(name), versions.changed, mode="append", storage_options=self.storage)
            return
        same = " AND ".join(f"target.{quote_identifier(c)} = source.{quote_identifier(c)}" for c in versions.key)
        (table.merge(versions.changed, same, source_alias="source", target_alias="target", merge_schema=True)
         .when_matched_update({column: f"source.{quote_identifier(column)}" for column in (VALID_TO, DELETED)})
         .when_not_matched_insert_all()
         .execute())

    def overwrite(self, name: str, rows: Any) -> None:
        import pyarrow as pa
        from deltalake import write_deltalake

        table = self._table(name)
        if table is not None:
            schema = pa.schema(table.schema().to_arrow())
            rows = rows.select(schema.names).cast(schema)
        write_deltalake(self._location(name), rows, mode="overwrite", storage_options=self.storage)


class IcebergTables:
    """The dataset's Iceberg tables, through pyiceberg and the catalog dlt uses (without a configured
    catalog: an in-memory one, each table registered from its newest metadata file)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.catalog = client.get_open_table_catalog("iceberg")

    def _table(self, name: str) -> Any:
        from dlt.common.libs.pyiceberg import NoSuchTableError, evolve_table
        from dlt.destinations.exceptions import DestinationUndefinedEntity

        try:
            return evolve_table(self.catalog, self.client.fs_client, self.client.config, f"{DATASET_NAME}.{name}",
                                self.client.get_open_table_location("iceberg", name))
        except (NoSuchTableError, DestinationUndefinedEntity, FileNotFoundError):
            return None

    def read(self, name: str, current_only: bool = False) -> Any:
        from pyiceberg.expressions import AlwaysTrue, IsNull

        table = self._table(name)
        return None if table is None else table.scan(row_filter=IsNull(VALID_TO) if current_only else AlwaysTrue()).to_arrow()

    def add_versions(self, name: str, versions: RunVersions) -> None:
        """One overwrite of the current versions (``valid_to`` NULL) by ``versions.current()``: pyiceberg's
        ``upsert`` would match the changed versions by an expression per key, which took 50 s for
        3,000 versions at 2,000 boxes; this rewrites only the files holding current versions."""
        from dlt.common.libs.pyiceberg import ensure_iceberg_compatible_arrow_schema
        from pyiceberg.expressions import IsNull

        rows = versions.current()
        table = self._table(name)
        if table is None:
            self._create(name, rows)
            return
        schema = ensure_iceberg_compatible_arrow_schema(rows.schema)
        with table.update_schema() as update:  # a column the copy gained
            update.union_by_name(schema)
        table.overwrite(rows.cast(schema), overwrite_filter=IsNull(VALID_TO))

    def overwrite(self, name: str, rows: Any) -> None:
        table = self._table(name)
        if table is None:
            self._create(name, rows)
            return
        schema = table.schema().as_arrow()
        table.overwrite(rows.select(schema.names).cast(schema))

    def _create(self, name: str, rows: Any) -> None:
        """A new table at its place in the dataset, holding ``rows``."""
        from dlt.common.libs.pyiceberg import create_table, ensure_iceberg_compatible_arrow_schema

        schema = ensure_iceberg_compatible_arrow_schema(rows.schema)
        create_table(self.catalog, f"{DATASET_NAME}.{name}", self.client.get_open_table_location("iceberg", name), schema)
        self.catalog.load_table(f"{DATASET_NAME}.{name}").append(rows.cast(schema))
