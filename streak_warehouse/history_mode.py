"""History mode: every version of every keyed record of the copy, every deletion, kept across runs.

Each run replaces the copy, so without this a value that changed (a deal's size, its owner, a task's
status) or a record that was deleted would be gone. For every table of the copy with a primary key
(:func:`tracked_tables`, read from the run's dlt schema, so a table or column the source adds is
tracked without a line here), ``crm.<table>_history`` holds the table's columns plus:

* ``valid_from``: the end of the run that first stored this version (its ``load_history.finished_at``);
* ``valid_to``: the end of the run that stored a different version or found the record gone; NULL
  while the version is current;
* ``deleted``: true on the last version of a record that is gone.

"Seen" is defined by the runs, not by Streak's own clocks: the state as of any time between the end
of run k and the end of run k+1 is exactly run k's copy (``as_of_sql``). A change Streak made between
two runs is dated by the run that first stored it; several changes between two runs are one version.

The versions are written by :func:`record_versions`, in SQL, into the FRESH copy after the kept tables
were carried into it (so the history is published with the copy it describes, and a failed or killed
run adds nothing): a version is added only where a stored value differs from the current version, so
a run that changes nothing adds no row. The history tables are kept tables
(:func:`history_kept_tables`), carried like ``load_history``. On Delta / Iceberg files, where there
is no SQL destination, ``history_lakehouse.py`` runs :func:`record_table_versions` in an in-memory
DuckDB and writes the result with the format's library.

``box_newsfeed`` is append-only (:data:`APPEND_ONLY`): its entries never change, and a run reads the
newsfeed only of some boxes, so an entry it did not fetch is not gone. Every entry ever fetched is
kept once in the history, and the published ``box_newsfeed`` holds all of them
(:func:`refill_sql`), whichever run fetched what.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from streak_warehouse.kept_tables import PersistentTable
from streak_warehouse.sql import ANSI_TYPES, dialect_for_sql_client, driver_name, qualified, quote_identifier, string_literal

Execute = Callable[[str], Sequence[Sequence[Any]]]

VALID_FROM: Final = "valid_from"
VALID_TO: Final = "valid_to"
DELETED: Final = "deleted"
HISTORY_SUFFIX: Final = "_history"
DELETIONS_VIEW: Final = "deletions"
LOAD_ID: Final = "_dlt_load_id"

APPEND_ONLY: Final = frozenset({"box_newsfeed"})
"""Tables whose rows never change and whose absence from a run means "not fetched", not "deleted"."""

NOT_TRACKED: Final = frozenset({"rejected_records", "refresh_basis", "refresh_basis_children"})
"""The run's own tables: what one run quarantined or kept for the next, not records of the account."""

NAME_COLUMNS: Final = ("name", "display_name", "full_name", "title", "file_name", "subject", "text", "email")
"""Where a deleted record's name is read from: the first of these its table has."""

_COMPARED_AS_TEXT: Final = frozenset({"json"})
"""Types compared (and stored) as text: Postgres' ``jsonb`` has no ``=`` with ``VARCHAR``; its text is canonical."""


@dataclass(frozen=True)
class TrackedTable:
    """A keyed table of the copy and what its history needs to know about it."""

    name: str
    key: tuple[str, ...]
    columns: tuple[tuple[str, str], ...]
    """(column, dlt data type) of the copy, the key first, without dlt's own ``_dlt_*`` columns (an
    append-only table keeps ``_dlt_load_id``: which load first fetched the entry)."""
    append_only: bool = False

    @property
    def history_name(self) -> str:
        return self.name + HISTORY_SUFFIX

    def history_table(self) -> PersistentTable:
        """Its kept ``<table>_history``: the columns, ``valid_from``, ``valid_to``, ``deleted``."""
        columns = (*self.columns, (VALID_FROM, "timestamp"), (VALID_TO, "timestamp"), (DELETED, "bool"))
        return PersistentTable(self.history_name, columns, (*self.key, VALID_FROM), unique_by_construction=True)

    def copy_columns(self) -> list[str]:
        """The columns an analyst sees in the copy (dlt's own left out)."""
        return [name for name, _ in self.columns if not name.startswith("_dlt")]

    def name_column(self) -> str | None:
        names = {name for name, _ in self.columns}
        return next((column for column in NAME_COLUMNS if column in names), None)


def tracked_tables(schema: Any) -> tuple[TrackedTable, ...]:
    """Every table of the copy with a primary key, from the run's dlt ``schema`` (its ``tables``),
    in name order: replace tables that are not dlt's own nor the run's own (:data:`NOT_TRACKED`).
    An append-only table also keeps each entry's ``_dlt_load_id``: the load that first fetched it."""
    tracked = []
    for name, table in sorted(schema.tables.items()):
        if name.startswith("_dlt") or name in NOT_TRACKED or table.get("write_disposition") != "replace":
            continue
        columns = table.get("columns", {})
        key = tuple(column for column, hint in columns.items() if hint.get("primary_key"))
        if not key:
            continue
        append_only = name in APPEND_ONLY
        rest = [(column, str(hint.get("data_type") or "text")) for column, hint in columns.items()
                if column not in key and hint.get("data_type")
                and (not column.startswith("_dlt") or (append_only and column == LOAD_ID))]
        typed_key = [(column, str(columns[column].get("data_type") or "text")) for column in key]
        tracked.append(TrackedTable(name, key, (*typed_key, *rest), append_only=append_only))
    return tuple(tracked)


def history_kept_tables(tables: Iterable[TrackedTable]) -> tuple[PersistentTable, ...]:
    return tuple(table.history_table() for table in tables)


# --- SQL ------------------------------------------------------------------------------------------


def timestamp_literal(at: datetime) -> str:
    return f"CAST({string_literal(at.isoformat())} AS {ANSI_TYPES['timestamp']})"


def _value(alias: str, column: str, data_type: str) -> str:
    """``alias.column`` as stored in a history table (JSON as its text)."""
    reference = f"{alias}.{quote_identifier(column)}"
    return f"CAST({reference} AS VARCHAR)" if data_type in _COMPARED_AS_TEXT else reference


def _same_key(table: TrackedTable, left: str, right: str) -> str:
    return " AND ".join(f"{left}.{quote_identifier(k)} = {right}.{quote_identifier(k)}" for k in table.key)


def _same_values(table: TrackedTable, fresh: str, history: str) -> str:
    return " AND ".join(
        f"{_value(fresh, column, kind)} IS NOT DISTINCT FROM {history}.{quote_identifier(column)}"
        for column, kind in table.columns if column not in table.key
    ) or "TRUE"


def close_sql(table: TrackedTable, dataset: str, at: datetime) -> str:
    """End the current version of every record whose stored values changed or that is gone; a gone
    one's last version is marked ``deleted``."""
    fresh, history = qualified(dataset, table.name), qualified(dataset, table.history_name)
    present = f"SELECT 1 FROM {fresh} AS f WHERE {_same_key(table, 'f', 'h')}"
    unchanged = f"{present} AND {_same_values(table, 'f', 'h')}"
    return (f"UPDATE {history} AS h SET {quote_identifier(VALID_TO)} = {timestamp_literal(at)}, "
            f"{quote_identifier(DELETED)} = NOT EXISTS ({present}) "
            f"WHERE h.{quote_identifier(VALID_TO)} IS NULL AND NOT EXISTS ({unchanged})")


def open_sql(table: TrackedTable, dataset: str, at: datetime) -> str:
    """Add a version, valid from ``at``, for every record of the copy without a current one (new,
    changed, or back after a deletion)."""
    fresh, history = qualified(dataset, table.name), qualified(dataset, table.history_name)
    names = ", ".join(quote_identifier(column) for column, _ in table.columns)
    values = ", ".join(_value("f", column, kind) for column, kind in table.columns)
    return (f"INSERT INTO {history} ({names}, {quote_identifier(VALID_FROM)}, {quote_identifier(VALID_TO)}, "
            f"{quote_identifier(DELETED)}) SELECT {values}, {timestamp_literal(at)}, "
            f"CAST(NULL AS {ANSI_TYPES['timestamp']}), FALSE FROM {fresh} AS f WHERE NOT EXISTS "
            f"(SELECT 1 FROM {history} AS h WHERE h.{quote_identifier(VALID_TO)} IS NULL AND {_same_key(table, 'f', 'h')})")


def refetched_sql(table: TrackedTable, dataset: str, at: datetime) -> str:
    """Drop from an append-only table the entries this run fetched again: the first fetch is kept."""
    fresh, history = qualified(dataset, table.name), qualified(dataset, table.history_name)
    return (f"DELETE FROM {fresh} AS f WHERE EXISTS (SELECT 1 FROM {history} AS h WHERE {_same_key(table, 'f', 'h')} "
            f"AND h.{quote_identifier(VALID_FROM)} < {timestamp_literal(at)})")


def refill_sql(table: TrackedTable, dataset: str, type_name: Callable[[str], str]) -> str:
    """Put back into an append-only table every kept entry it lacks (not fetched, or fetched again),
    as first fetched, with the load id of the load that fetched it (dlt's row id: a hash of the key).
    ``type_name``: the destination's type of a dlt type."""
    fresh, history = qualified(dataset, table.name), qualified(dataset, table.history_name)
    names = ", ".join(quote_identifier(column) for column, _ in table.columns)
    values = ", ".join(
        f"CAST(h.{quote_identifier(column)} AS {type_name(kind)})" if kind in _COMPARED_AS_TEXT
        else f"h.{quote_identifier(column)}" for column, kind in table.columns
    )
    key_text = " || '|' || ".join(f"CAST(h.{quote_identifier(k)} AS VARCHAR)" for k in table.key)
    return (f"INSERT INTO {fresh} ({names}, _dlt_id) SELECT {values}, md5({key_text}) "
            f"FROM {history} AS h WHERE h.{quote_identifier(VALID_TO)} IS NULL AND NOT EXISTS "
            f"(SELECT 1 FROM {fresh} AS f WHERE {_same_key(table, 'f', 'h')})")


def as_of_predicate(moment: str, alias: str | None = None) -> str:
    """The versions (of a history table, ``alias``) current at ``moment`` (SQL for a timestamp): the
    one rule for "as of", here and in the dashboard."""
    prefix = f"{alias}." if alias else ""
    valid_from, valid_to = (prefix + quote_identifier(column) for column in (VALID_FROM, VALID_TO))
    return f"{valid_from} <= {moment} AND ({valid_to} IS NULL OR {valid_to} > {moment})"


def as_of_sql(table: TrackedTable, dataset: str, at: datetime) -> str:
    """The rows ``table`` held as of ``at`` (the copy of the last run that ended at or before it)."""
    names = ", ".join(quote_identifier(column) for column in table.copy_columns())
    return (f"SELECT {names} FROM {qualified(dataset, table.history_name)} "
            f"WHERE {as_of_predicate(timestamp_literal(at))}")


def deletions_view_sql(tables: Sequence[TrackedTable], dataset: str) -> str:
    """``crm.deletions``: one row per record gone from the copy, with its name and last values' time."""
    runs = qualified(dataset, "load_history")
    parts = []
    for table in tables:
        if table.append_only:
            continue
        columns = {name for name, _ in table.columns}
        key = " || '/' || ".join(f"CAST(h.{quote_identifier(k)} AS VARCHAR)" for k in table.key)
        name = table.name_column()

        def text(column: str | None, present: bool) -> str:
            return f"CAST(h.{quote_identifier(column)} AS VARCHAR)" if column and present else "CAST(NULL AS VARCHAR)"

        parts.append(
            f"SELECT {string_literal(table.name)} AS table_name, {key} AS record_key, {text(name, name is not None)} AS name, "
            f"{text('box_key', 'box_key' in columns)} AS box_key, {text('pipeline_key', 'pipeline_key' in columns)} AS pipeline_key, "
            f"(SELECT MAX(r.finished_at) FROM {runs} AS r WHERE r.outcome = 'ok' AND r.finished_at < h.{quote_identifier(VALID_TO)}) "
            f"AS last_seen, h.{quote_identifier(VALID_TO)} AS deleted_at "
            f"FROM {qualified(dataset, table.history_name)} AS h WHERE h.{quote_identifier(DELETED)}"
        )
    if not parts:
        parts.append("SELECT CAST(NULL AS VARCHAR) AS table_name, CAST(NULL AS VARCHAR) AS record_key, "
                     "CAST(NULL AS VARCHAR) AS name, CAST(NULL AS VARCHAR) AS box_key, CAST(NULL AS VARCHAR) AS pipeline_key, "
                     f"CAST(NULL AS {ANSI_TYPES['timestamp']}) AS last_seen, CAST(NULL AS {ANSI_TYPES['timestamp']}) AS deleted_at "
                     "WHERE FALSE")
    return f"CREATE VIEW {qualified(dataset, DELETIONS_VIEW)} AS " + " UNION ALL ".join(parts)


# --- the step ---------------------------------------------------------------------------------------


@dataclass
class VersionsAdded:
    """What one run added to the history: new versions and ended ones per table."""

    opened: dict[str, int]
    closed: dict[str, int]
    deleted: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.opened.values())

    def note(self, table: str, counts: tuple[int, int, int]) -> None:
        self.opened[table], self.closed[table], self.deleted[table] = counts


def record_table_versions(
    execute: Execute, dataset: str, table: TrackedTable, at: datetime, type_name: Callable[[str], str],
) -> tuple[int, int, int]:
    """This run's versions of one table into ``dataset``'s ``<table>_history`` (and the refill of an
    append-only table): (versions opened, closed, marked deleted). Shared by :func:`record_versions`
    and the lakehouse (``history_lakehouse.py``), which runs it in an in-memory DuckDB."""
    if not table.append_only:
        execute(close_sql(table, dataset, at))
    execute(open_sql(table, dataset, at))
    if table.append_only:
        execute(refetched_sql(table, dataset, at))
        execute(refill_sql(table, dataset, type_name))
    moment = timestamp_literal(at)
    counts = execute(
        f"SELECT SUM(CASE WHEN {quote_identifier(VALID_FROM)} = {moment} THEN 1 ELSE 0 END), "
        f"SUM(CASE WHEN {quote_identifier(VALID_TO)} = {moment} THEN 1 ELSE 0 END), "
        f"SUM(CASE WHEN {quote_identifier(VALID_TO)} = {moment} AND {quote_identifier(DELETED)} THEN 1 ELSE 0 END) "
        f"FROM {qualified(dataset, table.history_name)}"
    )
    opened, closed, deleted = (int(value or 0) for value in counts[0])
    return opened, closed, deleted


def record_versions(
    execute: Execute, dataset: str, tables: Sequence[TrackedTable], at: datetime, type_name: Callable[[str], str],
) -> VersionsAdded:
    """Write this run's versions into ``dataset`` (the fresh copy, history tables carried into it),
    refill the append-only tables, and (re)create ``crm.deletions``. Run inside the publishing
    transaction. ``at``: the run's end (its ``load_history.finished_at``)."""
    added = VersionsAdded({}, {}, {})
    for table in tables:
        added.note(table.name, record_table_versions(execute, dataset, table, at, type_name))
    execute(f"DROP VIEW IF EXISTS {qualified(dataset, DELETIONS_VIEW)}")
    execute(deletions_view_sql(tables, dataset))
    return added


def summary_line(added: VersionsAdded) -> str:
    changed = {name: count for name, count in added.opened.items() if count}
    gone = sum(added.deleted.values())
    detail = ", ".join(f"{name} {count:,}" for name, count in sorted(changed.items(), key=lambda item: -item[1])[:5])
    return (f"history: {added.total:,} new versions" + (f" ({detail})" if detail else "")
            + f", {gone:,} records gone")


def destination_type_name(client: Any) -> Callable[[str], str]:
    """The destination's type name of a dlt data type, for ``client`` (a dlt sql client, or the
    DuckDB connection the file swap publishes through, which has no dlt capabilities)."""
    if driver_name(client) == "duckdb":
        return lambda data_type: "JSON" if data_type == "json" else ANSI_TYPES.get(data_type, "VARCHAR")
    return dialect_for_sql_client(client).type_name
