"""SQL building blocks shared by every page's queries.

The SQL is written once for DuckDB and Postgres (and read through dlt's dataset API elsewhere):
table names are unqualified (both runners put the dataset on the search path), literals are
inlined by :func:`lit` because the dataset API takes no bind parameters, and identifiers are
quoted by the warehouse package's one quoting rule (``streak_warehouse.sql``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any

import pandas as pd

from streak_warehouse.sql import quote_identifier, string_literal

if TYPE_CHECKING:
    from dashboards.data.catalog import Catalog

__all__ = [
    "col", "empty", "epoch_s", "in_list", "json_as_text", "json_is_object", "json_keys", "json_number",
    "json_number_at", "json_text", "lit", "percentile", "quote_identifier", "sum_numbers", "utc",
]


def lit(value: Any) -> str:
    """An SQL literal that means the same on DuckDB and Postgres (strings via the one quoting rule)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        text = aware.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f+00:00")
        return f"CAST('{text}' AS TIMESTAMP WITH TIME ZONE)"
    if isinstance(value, date):
        return lit(datetime(value.year, value.month, value.day, tzinfo=timezone.utc))
    return string_literal(str(value))


def in_list(values: Iterable[Any]) -> str:
    """``(a, b, c)`` of literals; never empty (an empty list matches nothing)."""
    items = [lit(v) for v in values]
    return "(" + (", ".join(items) if items else "NULL") + ")"


def col(catalog: Catalog, table: str, alias: str, column: str) -> str:
    """``alias.column`` when the column exists, else NULL (dlt drops always-NULL columns)."""
    return f"{alias}.{quote_identifier(column)}" if catalog.has(table, column) else "NULL"


def empty(columns: Iterable[str]) -> pd.DataFrame:
    """A frame with these columns and no rows (what a query returns when there is nothing)."""
    return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})


def utc(series: pd.Series) -> pd.Series:
    """Timestamps as tz-aware UTC whatever the driver returned (naive, tz-aware, all NULL)."""
    return pd.to_datetime(series, utc=True, errors="coerce")


# --- Portable pieces whose spelling differs between DuckDB and Postgres: the one place for them. ---


def percentile(expr: str, fraction: float) -> str:
    """Interpolated percentile of ``expr`` (NULLs ignored): the ordered-set form both engines accept.

    DuckDB's ``quantile_cont(x, q)`` and Postgres's ``percentile_cont(q) WITHIN GROUP (ORDER BY x)``
    interpolate the same way; DuckDB also takes the standard spelling, so one string serves both.
    """
    return f"percentile_cont({float(fraction)!r}) WITHIN GROUP (ORDER BY {expr})"


def epoch_s(expr: str) -> str:
    """Seconds since 1970 of a timestamp, as a double (subtracting two gives a duration in seconds)."""
    return f"CAST(EXTRACT(EPOCH FROM {expr}) AS DOUBLE PRECISION)"


def _is_duckdb(dialect: str) -> bool:
    return dialect.lower().startswith("duckdb")


def _json_pointer(key_sql: str) -> str:
    """SQL for the RFC 6901 pointer to a top-level key (any characters: ``~`` and ``/`` escaped)."""
    return f"('/' || replace(replace({key_sql}, '~', '~0'), '/', '~1'))"


def json_text(dialect: str, expr: str, key: str) -> str:
    """A top-level property of a JSON object as text (numbers as their digits), NULL when absent.

    The column may be stored as JSON/JSONB or as text: it is cast first on both engines.
    """
    if _is_duckdb(dialect):
        return f"json_extract_string(CAST({expr} AS JSON), {_json_pointer(lit(key))})"
    return f"(CAST({expr} AS JSONB) ->> {lit(key)})"


def json_number(dialect: str, expr: str, key: str) -> str:
    """A top-level property as a double when it is a JSON number; NULL otherwise (text is never parsed)."""
    return json_number_at(dialect, expr, lit(key))


def json_number_at(dialect: str, expr: str, key_sql: str) -> str:
    """:func:`json_number` with the property name given as SQL (a column of names, or a literal)."""
    if _is_duckdb(dialect):
        pointer = _json_pointer(key_sql)
        return (
            f"CASE WHEN json_type(CAST({expr} AS JSON), {pointer}) IN ('BIGINT', 'UBIGINT', 'DOUBLE', 'HUGEINT') "
            f"THEN CAST(json_extract_string(CAST({expr} AS JSON), {pointer}) AS DOUBLE PRECISION) END"
        )
    return (
        f"CASE WHEN jsonb_typeof(CAST({expr} AS JSONB) -> {key_sql}) = 'number' "
        f"THEN CAST(CAST({expr} AS JSONB) ->> {key_sql} AS DOUBLE PRECISION) END"
    )


def sum_numbers(dialect: str, expr: str) -> str:
    """SUM of a double that never fails: DuckDB adds doubles (past the largest one: infinity),
    Postgres would raise "value out of range", so it adds them as NUMERIC (a driver's Decimal)."""
    return f"SUM({expr})" if _is_duckdb(dialect) else f"SUM(CAST({expr} AS NUMERIC))"


def json_as_text(expr: str) -> str:
    """The whole JSON value as text (the same on both engines; drivers differ on JSON objects)."""
    return f"CAST({expr} AS TEXT)"


def json_is_object(dialect: str, expr: str) -> str:
    """True when ``expr`` is a JSON object (filter rows with it before :func:`json_keys`)."""
    if _is_duckdb(dialect):
        return f"json_type(CAST({expr} AS JSON)) = 'OBJECT'"
    return f"jsonb_typeof(CAST({expr} AS JSONB)) = 'object'"


def json_keys(dialect: str, expr: str) -> str:
    """A set-returning expression: one row per top-level key of the JSON object ``expr``."""
    if _is_duckdb(dialect):
        return f"UNNEST(json_keys(CAST({expr} AS JSON)))"
    return f"jsonb_object_keys(CAST({expr} AS JSONB))"
