"""SQL text built from names and values: quoting, literals and catalog reads, in one place.

Everything user-controlled (Streak names and keys, dataset and schema names) reaches SQL only
through this module, so there is one escaping rule to review. DuckDB and Postgres share dlt's
Postgres rules (``"..."`` identifiers with ``""`` doubled, ``E'...'`` literals); for a live
destination :func:`dialect_for_sql_client` takes the rules from dlt's own sql client instead.

Public API (the dashboard relies on it; keep it small):

* :func:`quote_identifier` (name) -> str, :func:`string_literal` (value) -> str,
  :func:`qualified` (dataset, relation) -> str: for DuckDB and Postgres text;
* :func:`catalog_sql` (dataset) -> str: rows ``(table_name, table_type, column_name)`` of every
  relation of a dataset, runnable as-is on DuckDB and Postgres; :func:`columns_of` (execute,
  schema, table) -> set[str]: one table's columns, through any "run this SQL" callable;
* :class:`SqlDialect`, :func:`ansi_dialect`, :func:`dialect_for_sql_client`: for code that builds
  statements for any dlt SQL destination;
* :func:`schema_names`, :func:`dataset_relations`, :func:`dataset_columns`: catalog reads through a
  dlt sql client;
* :func:`executor` (client) -> ``execute(sql) -> rows``, :func:`driver_name` (client) -> str: how the
  warehouse's readers and writers talk to a dlt sql client.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from dlt.common.data_writers.escape import (
    escape_postgres_identifier,
    escape_postgres_literal,
)

if TYPE_CHECKING:
    from dlt.destinations.sql_client import SqlClientBase

ANSI_TYPES: Final[Mapping[str, str]] = {
    "text": "VARCHAR",
    "double": "DOUBLE PRECISION",
    "bool": "BOOLEAN",
    "timestamp": "TIMESTAMP WITH TIME ZONE",
    "bigint": "BIGINT",
    "json": "VARCHAR",
}
"""dlt data type -> a type name DuckDB and Postgres both accept (typed NULLs, casts)."""


def quote_identifier(name: str) -> str:
    """``"name"`` with embedded quotes doubled (dlt's rule for Postgres and DuckDB)."""
    return str(escape_postgres_identifier(name))


def string_literal(value: str) -> str:
    """A text literal (dlt's rule for Postgres and DuckDB); NUL, which neither stores, is dropped."""
    return str(escape_postgres_literal(value.replace("\x00", "")))


def qualified(dataset: str, relation: str) -> str:
    """``"dataset"."relation"``."""
    return f"{quote_identifier(dataset)}.{quote_identifier(relation)}"


def catalog_sql(dataset: str) -> str:
    """``(table_name, table_type, column_name)`` of every table and view of ``dataset``.

    ``table_type`` is ``BASE TABLE`` or ``VIEW``; a relation without columns has one row with a
    NULL ``column_name``. Ordered by relation and column position.
    """
    return (
        "SELECT t.table_name, t.table_type, c.column_name\n"
        "FROM information_schema.tables AS t\n"
        "LEFT JOIN information_schema.columns AS c\n"
        "  ON c.table_catalog = t.table_catalog AND c.table_schema = t.table_schema"
        " AND c.table_name = t.table_name\n"
        f"WHERE t.table_schema = {string_literal(dataset)}\n"
        "ORDER BY t.table_name, c.ordinal_position"
    )


def columns_of(execute: Callable[[str], Sequence[Sequence[Any]]], schema: str, table: str,
               catalog_filter: str = "") -> set[str]:
    """The column names (lower case) of ``schema.table``; empty when there is no such table.
    ``execute`` runs one statement and returns its rows (a DuckDB connection's or a dlt sql client's);
    ``catalog_filter``: more ``AND`` conditions (e.g. the catalog of an attached DuckDB file)."""
    rows = execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = "
        f"{string_literal(schema)} AND table_name = {string_literal(table)}{catalog_filter}"
    )
    return {str(row[0]).lower() for row in rows}


@dataclass(frozen=True)
class SqlDialect:
    """How a destination quotes, qualifies, writes literals and names types.

    :func:`dialect_for_sql_client` builds one from a dlt sql client; :func:`ansi_dialect` is the
    DuckDB/Postgres rule above, for tests and for reading generated SQL.
    """

    quote_identifier: Callable[[str], str]
    qualify_table: Callable[[str], str]
    string_literal: Callable[[str], str]
    type_name: Callable[[str], str]


def ansi_dialect(dataset_name: str) -> SqlDialect:
    """Double-quoted identifiers, ``"dataset"."table"``, escaped literals, ANSI type names."""
    return SqlDialect(
        quote_identifier=quote_identifier,
        qualify_table=lambda table: qualified(dataset_name, table),
        string_literal=string_literal,
        type_name=lambda data_type: ANSI_TYPES.get(data_type, "VARCHAR"),
    )


def dialect_for_sql_client(sql_client: SqlClientBase[Any]) -> SqlDialect:
    """Quote, qualify, escape and type exactly as dlt does for this destination."""
    caps = sql_client.capabilities
    try:
        type_mapper = caps.get_type_mapper()
    except Exception:  # a destination without a type mapper: ANSI names still work on most
        type_mapper = None

    def type_name(data_type: str) -> str:
        if type_mapper is not None:
            try:
                return str(
                    type_mapper.to_destination_type(
                        {"name": "value", "data_type": data_type},  # type: ignore[typeddict-item]
                        {"name": "wide_view"},
                    )
                )
            except Exception:
                pass
        return ANSI_TYPES.get(data_type, "VARCHAR")

    def literal(value: str) -> str:
        escape = caps.escape_literal
        text = escape(value.replace("\x00", "")) if escape is not None else None
        return text if isinstance(text, str) else string_literal(value)

    return SqlDialect(
        quote_identifier=sql_client.escape_column_name,
        qualify_table=sql_client.make_qualified_table_name,
        string_literal=literal,
        type_name=type_name,
    )


# --- catalog reads through a dlt sql client ----------------------------------------------------


def schema_names(client: SqlClientBase[Any]) -> set[str]:
    """Every schema of the database the client is connected to."""
    rows = client.execute_sql("SELECT schema_name FROM information_schema.schemata")
    return {str(row[0]) for row in rows or []}


def _info_schema(client: SqlClientBase[Any], table: str) -> str:
    qualify = getattr(client, "_qualify_info_schema_table_name", None)
    return qualify(table) if callable(qualify) else f"INFORMATION_SCHEMA.{table}"


def _schema_filter(client: SqlClientBase[Any]) -> tuple[str, list[str]]:
    schema_name = client.make_qualified_table_name_path(None, quote=False)[-1]
    catalog = client.catalog_name(quote=False)
    if catalog is None:
        return "table_schema = %s", [schema_name]
    return "table_catalog = %s AND table_schema = %s", [catalog, schema_name]


def dataset_relations(client: SqlClientBase[Any]) -> dict[str, bool]:
    """{table or view name: is it a view} of the client's dataset, names as stored."""
    where, params = _schema_filter(client)
    rows = client.execute_sql(
        f"SELECT table_name, table_type FROM {_info_schema(client, 'TABLES')} WHERE {where}", *params
    )
    return {str(name): "VIEW" in str(kind).upper() for name, kind in rows or []}


def dataset_columns(client: SqlClientBase[Any], tables: Sequence[str]) -> dict[str, set[str]]:
    """{logical table name: its columns, lower case} for those of ``tables`` that exist."""
    where, params = _schema_filter(client)
    rows = client.execute_sql(
        f"SELECT table_name, column_name FROM {_info_schema(client, 'COLUMNS')} WHERE {where}", *params
    )
    fold = client.capabilities.casefold_identifier
    by_stored = {fold(t).lower(): t for t in tables}
    columns: dict[str, set[str]] = {}
    for table_name, column_name in rows or []:
        logical = by_stored.get(str(table_name).lower())
        if logical is not None:
            columns.setdefault(logical, set()).add(str(column_name).lower())
    return columns


def executor(client: Any) -> Callable[[str], Sequence[Any]]:
    """``execute(sql) -> rows`` over a dlt sql client (or anything with ``execute_sql``): the one shape
    every warehouse reader takes; dlt answers a statement without rows with None, read as no rows."""
    return lambda sql: client.execute_sql(sql) or []


def driver_name(client: Any) -> str:
    """The database driver behind a dlt sql client: ``psycopg2``, ``duckdb`` (a DuckDB connection's
    class lives in ``_duckdb``), or another driver's top-level module name."""
    native = getattr(client, "native_connection", None)
    return type(native).__module__.split(".")[0].removeprefix("_")


def sql_client_or_none(pipeline: Any, purpose: str) -> SqlClientBase[Any] | None:
    """The pipeline's sql client when its destination is a persistent SQL database, else None.

    filesystem & co. answer SQL through a throwaway in-memory DuckDB: anything created there would
    vanish, so ``purpose`` (views, persistent tables) is skipped with one log line.
    """
    import logging

    from dlt.common.destination.exceptions import SqlClientNotAvailable

    try:  # duckdb-backed readers over files; absent when duckdb is not installed
        from dlt.destinations.impl.duckdb.sql_client import WithTableScanners
    except ImportError:
        WithTableScanners = ()  # type: ignore[misc,assignment]
    log = logging.getLogger(__name__)
    if pipeline.destination is None:
        log.warning("No %s: pipeline %s has no destination", purpose, pipeline.pipeline_name)
        return None
    try:
        client = pipeline.sql_client()
    except SqlClientNotAvailable:
        client = None
    if client is None or isinstance(client, WithTableScanners):
        log.warning("No %s: destination %s is not a SQL database (DuckDB, Postgres, a warehouse)",
                    purpose, pipeline.destination.destination_name)
        return None
    return client  # type: ignore[no-any-return]
