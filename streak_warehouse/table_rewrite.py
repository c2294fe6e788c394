"""Rewrite chosen rows of a table in place, cell by cell, in Python: what ``forget`` (erase a person)
and a change of the ``[privacy]`` rules (protect stored values) both need, on DuckDB and Postgres.

The values are changed by a Python function (the policy's hashing and walkers, the redaction of
``forget_values.py``), so the rows are read out and written back: :func:`rewrite_rows` selects the
ids of the rows to look at (``rowid`` on DuckDB, ``ctid`` on Postgres, stable inside the caller's
transaction until a row is updated, and each row is updated at most once), reads them a batch at a
time as text, and writes the cells that changed with one ``UPDATE ... FROM (VALUES ...)`` per batch
and set of changed columns. Run it inside the caller's transaction: all or nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from streak_warehouse.sql import qualified, quote_identifier, string_literal

Execute = Callable[[str], Sequence[Sequence[Any]]]

TEXT_TYPES: Final = frozenset({"varchar", "json", "text", "character varying", "jsonb"})
"""Column types (lower case, as ``information_schema.columns.data_type`` says on DuckDB and
Postgres) whose values are text or JSON: the only ones personal data can be in."""
JSON_TYPES: Final = frozenset({"json", "jsonb"})
BATCH_ROWS: Final = 2000

Change = Callable[[Mapping[str, str | None]], Mapping[str, str | None] | None]
"""A row's text cells (column -> text or None) -> the cells to write (column -> new text or None
for NULL), or None / empty when the row stays as it is."""


@dataclass(frozen=True)
class TextColumn:
    name: str
    data_type: str
    nullable: bool

    @property
    def is_json(self) -> bool:
        return self.data_type.lower() in JSON_TYPES


def text_columns(execute: Execute, dataset: str) -> dict[str, list[TextColumn]]:
    """Every base table of ``dataset`` (dlt's own ``_dlt_*`` left out) -> its text and JSON columns."""
    rows = execute(
        "SELECT c.table_name, c.column_name, c.data_type, c.is_nullable FROM information_schema.columns AS c "
        "JOIN information_schema.tables AS t ON t.table_catalog = c.table_catalog AND t.table_schema = c.table_schema "
        f"AND t.table_name = c.table_name WHERE c.table_schema = {string_literal(dataset)} "
        "AND t.table_type = 'BASE TABLE' ORDER BY c.table_name, c.ordinal_position")
    tables: dict[str, list[TextColumn]] = {}
    for table, column, data_type, nullable in rows:
        if str(table).startswith("_dlt"):
            continue
        columns = tables.setdefault(str(table), [])
        if str(data_type).lower() in TEXT_TYPES:
            columns.append(TextColumn(str(column), str(data_type), str(nullable).upper() in ("YES", "TRUE")))
    return tables


@dataclass(frozen=True)
class RowIds:
    """How one destination names a row (its id column as selected, and the SQL type that compares
    it), and, on DuckDB, the connection that takes a batch of new values as an Arrow table (a
    ``VALUES`` list of 100,000 rows costs DuckDB ~12 s to parse; the same rows registered, ~1 s)."""

    select: str
    cast: str
    duckdb: Any = None

    def literal(self, value: Any) -> str:
        return str(int(value)) if self.cast == "BIGINT" else string_literal(str(value))


def row_ids(driver: str, native: Any = None) -> RowIds:
    """``rowid`` on DuckDB, ``ctid`` on Postgres (``driver``: ``sql.driver_name`` of the client;
    ``native``: its DuckDB connection, for the fast path of :class:`RowIds`)."""
    if driver == "duckdb":
        return RowIds("rowid", "BIGINT", native)
    if driver == "psycopg2":
        return RowIds("ctid", "tid")
    raise ValueError(f"rewriting rows in place needs DuckDB or Postgres, not {driver}")


def contains_any(columns: Sequence[TextColumn], needles: Sequence[str]) -> str:
    """SQL: one of ``columns``, lower-cased as text, contains one of ``needles`` (lower case)."""
    tests = [f"strpos(LOWER(CAST({quote_identifier(c.name)} AS VARCHAR)), {string_literal(n)}) > 0"
             for c in columns for n in needles]
    return " OR ".join(tests) or "FALSE"


def rewrite_rows(execute: Execute, dataset: str, table: str, columns: Sequence[TextColumn], change: Change,
                 ids: RowIds, where: str = "TRUE", batch_rows: int = BATCH_ROWS) -> int:
    """Apply ``change`` to the rows of ``dataset.table`` that ``where`` selects, reading ``columns``;
    returns how many rows were written."""
    if not columns:
        return 0
    target = qualified(dataset, table)
    id_sql = f"CAST({ids.select} AS VARCHAR)" if ids.cast == "tid" else ids.select
    chosen = sorted(row[0] for row in execute(f"SELECT {id_sql} FROM {target} WHERE {where}"))
    cells = ", ".join(f"CAST({quote_identifier(c.name)} AS VARCHAR)" for c in columns)
    written = 0
    for start in range(0, len(chosen), batch_rows):
        batch = chosen[start:start + batch_rows]
        if ids.cast == "BIGINT":  # a range of row ids is read without scanning the whole table
            chunk = f"{ids.select} BETWEEN {int(batch[0])} AND {int(batch[-1])} AND ({where})"
        else:
            chunk = f"{ids.select} = ANY(ARRAY[{', '.join(ids.literal(value) for value in batch)}]::tid[])"
        groups: dict[tuple[str, ...], list[tuple[Any, Mapping[str, str | None]]]] = {}
        for row_id, *values in execute(f"SELECT {id_sql}, {cells} FROM {target} WHERE {chunk}"):
            new = change({c.name: (None if v is None else str(v)) for c, v in zip(columns, values)})
            if new:
                groups.setdefault(tuple(sorted(new)), []).append((row_id, new))
        for names, rows in groups.items():
            changed = [c for c in columns if c.name in names]
            if ids.duckdb is not None:
                _update_registered(ids.duckdb, target, changed, rows)
            else:
                execute(_update_sql(target, changed, rows, ids))
            written += len(rows)
    return written


def _sets(target: str, columns: Sequence[TextColumn], source: str) -> str:
    return ", ".join(f"{quote_identifier(c.name)} = CAST({source}.{quote_identifier(f'v{i}')} AS {c.data_type})"
                     for i, c in enumerate(columns))


def _update_sql(target: str, columns: Sequence[TextColumn], rows: Sequence[tuple[Any, Mapping[str, str | None]]],
                ids: RowIds) -> str:
    def text(value: str | None) -> str:
        return "CAST(NULL AS VARCHAR)" if value is None else f"CAST({string_literal(value)} AS VARCHAR)"

    values = ", ".join(f"({ids.literal(row_id)}, " + ", ".join(text(new[c.name]) for c in columns) + ")"
                       for row_id, new in rows)
    names = ", ".join(["streak_row_id", *(quote_identifier(f"v{i}") for i in range(len(columns)))])
    return (f"UPDATE {target} SET {_sets(target, columns, 'v')} FROM (VALUES {values}) AS v({names}) "
            f"WHERE {target}.{ids.select} = CAST(v.streak_row_id AS {ids.cast})")


def _update_registered(con: Any, target: str, columns: Sequence[TextColumn],
                       rows: Sequence[tuple[Any, Mapping[str, str | None]]]) -> None:
    """The DuckDB fast path of :func:`_update_sql`: the new values as a registered Arrow table."""
    import pyarrow as pa

    values = {"streak_row_id": pa.array([int(row_id) for row_id, _ in rows], pa.int64())}
    values.update({f"v{i}": pa.array([new[c.name] for _, new in rows], pa.string()) for i, c in enumerate(columns)})
    con.register("streak_rewritten_rows", pa.table(values))
    try:
        con.execute(f"UPDATE {target} SET {_sets(target, columns, 'u')} FROM streak_rewritten_rows AS u "
                    f"WHERE {target}.rowid = u.streak_row_id")
    finally:
        con.unregister("streak_rewritten_rows")
