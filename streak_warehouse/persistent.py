"""How the tables kept across replace runs (``kept_tables.KEPT_TABLES``) go from one copy to the next.

Every run replaces the whole ``crm`` dataset (a fresh DuckDB file or a fresh Postgres schema), so a
table that must keep its past rows (``load_history``, stage history, ``events``) is carried
from the live copy into the fresh one before the fresh one is published:

* DuckDB: the live file is attached read-only to the fresh file and each kept table copied
  (:func:`carry_over_duckdb`); the live file itself is never written.
* Postgres: inside the publishing transaction each kept table is moved
  (``ALTER TABLE ... SET SCHEMA``) from ``crm`` into the fresh schema (:func:`carry_over_schema`):
  no copy, and nothing moves unless the whole swap commits.
* Other SQL destinations (loaded in place): the tables simply stay; :func:`record_in_place` adds rows.

What is carried is the one list in ``kept_tables.py``: the carry-over, the ``CREATE TABLE`` and the
upgrade (columns a newer version added are added to old tables: :func:`ensure_table`, the one home
of that rule) follow from each declaration.
Rows of this run are appended with ``ON CONFLICT DO NOTHING`` on the primary key, so a side record
replayed twice (see ``history.py``) is stored once. A live copy written by an older warehouse layout
(``migrate_from``, see ``upgrade.py``) is not moved as it is: each table is rebuilt from its current
definition and filled through the declared migrations (``migrations.py``: renamed columns keep their
values), in the same step that publishes the copy.

A ``whole`` table (stage history: old rows change, an open stay gets its end) is instead given its
COMPLETE new contents by the run: when ``rows`` holds an entry for it, the old rows are not carried
and the given ones are bulk-inserted (an Arrow scan on DuckDB, ``COPY`` on Postgres: 200k
rows in seconds); when ``rows`` has no entry for it, it is carried like any other table.

Public API: :func:`carry_over_duckdb` (live, fresh, dataset, rows), :func:`carry_over_schema`
(client, live_schema, fresh_schema, live_exists, rows), :func:`record_in_place` (client, rows),
:func:`read_live_duckdb_file`, :func:`with_live_duckdb_file`, :func:`ensure_table`. ``rows`` maps a
table name to the rows (dicts by column name) this run appends.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final, TypeVar

from streak_warehouse import kept_tables, layout_version, migrations
from streak_warehouse.kept_tables import PersistentTable
from streak_warehouse.sql import ANSI_TYPES, columns_of, driver_name, executor, qualified, quote_identifier, string_literal

T = TypeVar("T")

Rows = Mapping[str, Sequence[Mapping[str, Any]]]
_PREVIOUS: Final = "streak_previous_copy"
"""Catalog alias of the live DuckDB file while it is attached to the fresh one."""


class CarryOverError(RuntimeError):
    """The live copy's persistent tables could not be read; the run stops rather than lose them."""


def read_live_duckdb_file(path: Path, what: str, read: Callable[[Any], T]) -> T | None:
    """``read(execute)`` over the live DuckDB file at ``path``, opened read-only (the run only ever
    writes its fresh file); None when the file does not exist yet (a first run).

    A file some other program holds open for writing cannot be opened: :class:`CarryOverError`
    naming ``what`` the run needed from it, rather than carry on without it.
    """
    return with_live_duckdb_file(path, what, lambda con: read(lambda sql: con.execute(sql).fetchall()))


def with_live_duckdb_file(path: Path, what: str, use: Callable[[Any], T]) -> T | None:
    """:func:`read_live_duckdb_file` for a reader that needs the DuckDB connection itself (to stream
    a result, or set a read-only session's memory limit): ``use(connection)``."""
    if not path.exists():
        return None
    import duckdb

    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        raise CarryOverError(f"cannot read {what} kept in {path}: {' '.join(str(exc).split())}; "
                             "close the program that has it open for writing and run again") from exc
    with con:
        return use(con)


# --- SQL text (DuckDB and Postgres share it) -----------------------------------------------------


def create_sql(table: PersistentTable, schema: str, keyed: bool = True) -> str:
    """``CREATE TABLE IF NOT EXISTS``; ``keyed=False``: without the ``PRIMARY KEY`` constraint (DuckDB's
    tables that are unique by construction: :attr:`PersistentTable.unique_by_construction`)."""
    columns = ", ".join(f"{quote_identifier(name)} {ANSI_TYPES.get(kind, 'VARCHAR')}" for name, kind in table.columns)
    if not keyed:
        return f"CREATE TABLE IF NOT EXISTS {qualified(schema, table.name)} ({columns})"
    key = ", ".join(quote_identifier(name) for name in table.primary_key)
    return f"CREATE TABLE IF NOT EXISTS {qualified(schema, table.name)} ({columns}, PRIMARY KEY ({key}))"


def keyed_on_duckdb(table: PersistentTable) -> bool:
    """Whether DuckDB keeps ``table``'s primary key as a constraint (see ``unique_by_construction``)."""
    return not table.unique_by_construction


def add_columns_sql(table: PersistentTable, schema: str, existing: set[str]) -> list[str]:
    """``ALTER TABLE ... ADD COLUMN`` for columns a newer version declares and an old table lacks."""
    return [
        f"ALTER TABLE {qualified(schema, table.name)} ADD COLUMN {quote_identifier(name)} {ANSI_TYPES.get(kind, 'VARCHAR')}"
        for name, kind in table.columns
        if name.lower() not in existing
    ]


ROWS_PER_STATEMENT: Final = 500
"""Rows per multi-row ``VALUES`` statement: far fewer round trips than one per row, short enough
for any SQL destination's statement limit."""


def values_lists(table: PersistentTable, rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """``rows`` as ``VALUES`` lists (``(...), (...)``) of at most :data:`ROWS_PER_STATEMENT` rows,
    in ``table``'s column order, values as escaped literals."""
    return [
        ", ".join(
            "(" + ", ".join(sql_literal(row.get(name), kind) for name, kind in table.columns) + ")"
            for row in rows[start:start + ROWS_PER_STATEMENT]
        )
        for start in range(0, len(rows), ROWS_PER_STATEMENT)
    ]


def insert_sql(table: PersistentTable, schema: str, rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Multi-row ``INSERT ... ON CONFLICT DO NOTHING`` statements, values as escaped literals."""
    names = ", ".join(quote_identifier(name) for name in table.column_names())
    return [f"INSERT INTO {qualified(schema, table.name)} ({names}) VALUES {values} ON CONFLICT DO NOTHING"
            for values in values_lists(table, rows)]


def sql_literal(value: Any, data_type: str) -> str:
    sql_type = ANSI_TYPES.get(data_type, "VARCHAR")
    if value is None:
        return f"CAST(NULL AS {sql_type})"
    if data_type == "bool":
        return "TRUE" if value else "FALSE"
    if data_type in ("bigint", "double"):
        return f"CAST({string_literal(str(float(value) if data_type == 'double' else int(value)))} AS {sql_type})"
    if data_type == "timestamp":
        text = value.isoformat() if isinstance(value, datetime) else str(value)
        return f"CAST({string_literal(text)} AS {sql_type})"
    if data_type == "json" and not isinstance(value, str):
        value = json.dumps(value, sort_keys=True, default=str)
    return string_literal(str(value))


# --- DuckDB: copy from the live file into the fresh one ------------------------------------------


def carry_over_duckdb(live: Path, fresh: Path, dataset: str, rows: Rows, migrate_from: int | None = None,
                      tables: Sequence[PersistentTable] | None = None) -> None:
    """Copy every kept table of ``live`` (if it exists) into ``fresh``, then append ``rows``;
    ``migrate_from``: the layout ``live`` was written with, when older than this code's; ``tables``:
    what is kept (the declared list plus this run's history tables, ``history_mode.py``)."""
    import duckdb

    with duckdb.connect(str(fresh)) as con:
        execute = lambda sql: con.execute(sql).fetchall()
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(dataset)}")
        attached = False
        if live.exists():
            try:
                con.execute(f"ATTACH {string_literal(str(live))} AS {quote_identifier(_PREVIOUS)} (READ_ONLY)")
            except duckdb.Error as exc:
                raise CarryOverError(
                    f"cannot read the tables kept across runs (load_history, ...) from {live}: "
                    f"{' '.join(str(exc).split())}; close the program that has it open for writing and run again"
                ) from exc
            attached = True
        try:
            for table in kept_tables.KEPT_TABLES if tables is None else tables:
                con.execute(create_sql(table, dataset, keyed=keyed_on_duckdb(table)))
                if table.whole and table.name in rows:
                    _bulk_insert_duckdb(con, table, dataset, rows[table.name])
                    continue
                if attached:
                    old = columns_of(execute, dataset, table.name, f" AND table_catalog = {string_literal(_PREVIOUS)}")
                    source = f"{quote_identifier(_PREVIOUS)}.{qualified(dataset, table.name)}"
                    statement = carry_sql(table, source, dataset, old, migrate_from, keyed=keyed_on_duckdb(table))
                    if statement is not None:
                        con.execute(statement)
                for statement in insert_sql(table, dataset, rows.get(table.name, ())):
                    con.execute(statement)
        finally:
            if attached:
                con.execute(f"DETACH {quote_identifier(_PREVIOUS)}")
        con.execute("CHECKPOINT")


# --- Postgres: move from the live schema into the fresh one, inside the swap transaction ----------


def carry_over_schema(
    client: Any, live_schema: str, fresh_schema: str, live_exists: bool, rows: Rows, migrate_from: int | None = None,
    tables: Sequence[PersistentTable] | None = None,
) -> None:
    """Move every kept table from ``live_schema`` into ``fresh_schema`` and append ``rows``;
    ``migrate_from`` (``live_schema`` written by that older layout): copy them through the
    migrations instead (the old tables go with the old schema).

    Call inside the transaction that publishes ``fresh_schema`` (``targets.schema_swap.publish_dataset``).
    """
    execute = executor(client)
    for table in kept_tables.KEPT_TABLES if tables is None else tables:
        if table.whole and table.name in rows:  # the live one goes with the old schema
            ensure_table(execute, table, fresh_schema)
            bulk_insert(client, table, fresh_schema, rows[table.name])
            continue
        old = columns_of(execute, live_schema, table.name) if live_exists else set()
        if old and migrate_from is not None:
            ensure_table(execute, table, fresh_schema)
            statement = carry_sql(table, qualified(live_schema, table.name), fresh_schema, old, migrate_from)
            if statement is not None:
                client.execute_sql(statement)
        elif old:
            client.execute_sql(
                f"ALTER TABLE {qualified(live_schema, table.name)} SET SCHEMA {quote_identifier(fresh_schema)}"
            )
        ensure_table(execute, table, fresh_schema)
        for statement in insert_sql(table, fresh_schema, rows.get(table.name, ())):
            client.execute_sql(statement)


def record_in_place(client: Any, dataset: str, rows: Rows, migrate_from: int | None = None,
                    tables: Sequence[PersistentTable] | None = None) -> None:
    """Destinations loaded in place (no swap): create or upgrade the tables and append ``rows``;
    ``migrate_from``: ``dataset`` was written by that older layout, its tables are migrated first."""
    execute = executor(client)
    with client.begin_transaction():
        for table in kept_tables.KEPT_TABLES if tables is None else tables:
            if migrate_from is not None:
                _migrate_in_place(client, execute, table, dataset, migrate_from)
            ensure_table(execute, table, dataset)
            if table.whole and table.name in rows:
                client.execute_sql(f"DELETE FROM {qualified(dataset, table.name)}")
                bulk_insert(client, table, dataset, rows[table.name])
                continue
            for statement in insert_sql(table, dataset, rows.get(table.name, ())):
                client.execute_sql(statement)


def _migrate_in_place(client: Any, execute: Any, table: PersistentTable, dataset: str, migrate_from: int) -> None:
    """Rebuild ``dataset.table`` in its current definition from its rows (written by ``migrate_from``);
    the rows wait in a plain copy (no constraints, so no name clash with the new primary key)."""
    old = columns_of(execute, dataset, table.name)
    if not old:
        return
    aside = qualified(dataset, f"{table.name}_layout{migrate_from}")
    client.execute_sql(f"CREATE TABLE {aside} AS SELECT * FROM {qualified(dataset, table.name)}")
    client.execute_sql(f"DROP TABLE {qualified(dataset, table.name)}")
    execute(create_sql(table, dataset))
    statement = carry_sql(table, aside, dataset, old, migrate_from)
    if statement is not None:
        client.execute_sql(statement)
    client.execute_sql(f"DROP TABLE {aside}")


def carry_sql(table: PersistentTable, source: str, schema: str, old_columns: set[str], migrate_from: int | None,
              keyed: bool = True) -> str | None:
    """``INSERT INTO schema.table ... SELECT ... FROM source``: the old rows (``source``'s columns
    ``old_columns``) in the current definition; with ``migrate_from`` through the declared migrations,
    keeping the first row of a key that is no longer unique (``keyed=False``: a table without the
    constraint keeps one row per key by ``DISTINCT ON``). None when they share no column."""
    carried = migrations.carried_columns(table, old_columns, migrate_from, layout_version.LAYOUT_VERSION)
    if not carried:
        return None
    names = ", ".join(quote_identifier(name) for name, _ in carried)
    values = ", ".join(expression for _, expression in carried)
    target = f"INSERT INTO {qualified(schema, table.name)} ({names})"
    if migrate_from is None:
        return f"{target} SELECT {values} FROM {source}"
    if keyed:
        return f"{target} SELECT {values} FROM {source} ON CONFLICT DO NOTHING"
    by_name = dict(carried)
    key = ", ".join(by_name[name] for name in table.primary_key if name in by_name)
    return f"{target} SELECT DISTINCT ON ({key}) {values} FROM {source}" if key else f"{target} SELECT {values} FROM {source}"


def read_rows(execute: Any, table: PersistentTable, schema: str, migrate_from: int | None = None) -> list[dict[str, Any]]:
    """Every row of ``schema.table`` as dicts by the CURRENT column names (through the migrations when
    ``migrate_from``); columns the table lacks are left out. No table: no rows."""
    old = columns_of(execute, schema, table.name)
    carried = migrations.carried_columns(table, old, migrate_from, layout_version.LAYOUT_VERSION) if old else []
    if not carried:
        return []
    names = [name for name, _ in carried]
    select = ", ".join(expression for _, expression in carried)
    return [dict(zip(names, row, strict=True)) for row in execute(f"SELECT {select} FROM {qualified(schema, table.name)}")]


def ensure_table(execute: Any, table: PersistentTable, schema: str) -> None:
    """Create ``schema.table`` when it is missing, else add the columns a newer version declares."""
    existing = columns_of(execute, schema, table.name)
    if not existing:
        execute(create_sql(table, schema))
        return
    for statement in add_columns_sql(table, schema, existing):
        execute(statement)


# --- bulk insert of whole tables ------------------------------------------------------------------


def _arrow_table(table: PersistentTable, rows: Sequence[Mapping[str, Any]]) -> Any:
    import pyarrow as pa  # type: ignore[import-untyped]

    types = {"text": pa.string(), "json": pa.string(), "bigint": pa.int64(), "double": pa.float64(),
             "bool": pa.bool_(), "timestamp": pa.timestamp("us", tz="UTC")}
    return pa.table(
        [pa.array([_plain(row.get(name), kind) for row in rows], type=types.get(kind, pa.string()))
         for name, kind in table.columns],
        names=table.column_names(),
    )


def _bulk_insert_duckdb(con: Any, table: PersistentTable, schema: str, rows: Sequence[Mapping[str, Any]]) -> None:
    if not rows:
        return
    con.register("streak_bulk_rows", _arrow_table(table, rows))
    try:
        names = ", ".join(quote_identifier(name) for name in table.column_names())
        con.execute(f"INSERT INTO {qualified(schema, table.name)} ({names}) SELECT {names} FROM streak_bulk_rows")
    finally:
        con.unregister("streak_bulk_rows")


def bulk_insert(client: Any, table: PersistentTable, schema: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` into ``schema.table`` through a dlt sql client, in its open transaction."""
    if not rows:
        return
    native: Any = getattr(client, "native_connection", None)
    module = driver_name(client)
    names = ", ".join(quote_identifier(name) for name in table.column_names())
    if module == "psycopg2":  # COPY: several times faster than INSERTs for 200k rows
        with native.cursor() as cursor:
            cursor.copy_expert(f"COPY {qualified(schema, table.name)} ({names}) FROM STDIN", _copy_text(table, rows))
        return
    if module in ("duckdb", "_duckdb"):  # a DuckDB connection's class lives in ``_duckdb``
        _bulk_insert_duckdb(native, table, schema, rows)
        return
    for statement in insert_sql(table, schema, rows):  # any other SQL destination: slow but plain
        client.execute_sql(statement)


_COPY_ESCAPES: Final = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(table: PersistentTable, rows: Sequence[Mapping[str, Any]]) -> Any:
    """``rows`` in Postgres' COPY text format (tab-separated, ``\\N`` for NULL), as a file object."""
    import io

    def field(value: Any, kind: str) -> str:
        value = _plain(value, kind)
        if value is None:
            return "\\N"
        if kind == "bool":
            return "t" if value else "f"
        if isinstance(value, datetime):
            return value.isoformat()
        return str(value).translate(_COPY_ESCAPES)

    lines = ("\t".join(field(row.get(name), kind) for name, kind in table.columns) + "\n" for row in rows)
    return io.StringIO("".join(lines))


def _plain(value: Any, data_type: str) -> Any:
    if value is not None and data_type == "json" and not isinstance(value, str):
        return json.dumps(value, sort_keys=True, default=str)
    return value
