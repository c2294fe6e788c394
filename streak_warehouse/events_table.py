"""``crm.events``: the events log, a persistent table (it outlives the main job's replace runs).

Declared in the kept tables (``streak_warehouse/kept_tables.py``), so every replace run carries it from the live copy into the fresh one (DuckDB: copied; Postgres: moved with the schema
swap). Rows come from the events spool (``streak_eventlog/spool.py``) and are merged on
``event_key`` with :func:`upsert_sql`: a later version of an event updates its name, properties,
ids and ``last_received_at``, and keeps its first ``timestamp`` and ``first_received_at``.

Events derived from the copy (``streak_warehouse/derived_events.py``) are added by the main job in
the same step with :func:`add_derived_events`: only those whose ``event_key`` the table does not hold
yet (one set-based ``INSERT ... SELECT ... WHERE NOT EXISTS``), so a stored event is never touched
by a derived one. The other way round, a webhook or custom event arriving for an ``event_key`` held
by a derived event updates it as any later version does and takes over its ``source``. Together:
when a change arrives both ways, the webhook's row wins, whichever came first, and the first
``timestamp``/``first_received_at`` stay.

Used by ``python pipelines/streak_events.py load`` (into the live copy, under the run lock) and by
the main job (into the fresh copy, before publishing): ``pipelines/events_load.py``.

A spooled event that cannot be loaded (``streak_eventlog/spooled.py``: e.g. a time no datetime
holds, written by an older receiver) goes to ``crm.rejected_records`` with :func:`keep_rejected`
(``table_name = 'events'``, the reason, the spooled row as ``raw_json``): the quarantine's columns
and row rule (``streak_source/quarantine.py``). That table is replaced by every main-job run, so the
spool is their durable home (it marks them, never deletes them) and every load writes them again:
the main job all of them into each fresh copy, ``load`` all of them into the live one; a row already
there (same reason and raw JSON) is not written twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from streak_eventlog.spooled import RejectedEvent
from streak_warehouse.kept_tables import EVENTS, PersistentTable
from streak_warehouse.persistent import create_sql, ensure_table, values_lists
from streak_warehouse.sql import ANSI_TYPES, columns_of, executor, qualified, quote_identifier, string_literal

DERIVED: Final = "derived"
_KEPT_IF_NULL: Final = ("location_id", "contact_key", "box_key", "pipeline_key")


def ensure_sql(execute: Callable[[str], Any], schema: str) -> None:
    """Create ``schema.events`` (and ``schema``) if missing; add columns a newer version declares."""
    execute(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(schema)}")
    ensure_table(execute, EVENTS, schema)


def upsert_sql(schema: str, rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """``INSERT ... ON CONFLICT (event_key) DO UPDATE`` statements (DuckDB and Postgres) for ``rows``."""
    names = ", ".join(quote_identifier(name) for name, _ in EVENTS.columns)
    target = qualified(schema, EVENTS.name)
    old = lambda name: f"t.{quote_identifier(name)}"
    new = lambda name: f"excluded.{quote_identifier(name)}"
    updates = [f"{quote_identifier(n)} = {new(n)}" for n in ("event_name", "properties")]
    updates += [f"{quote_identifier(n)} = COALESCE({new(n)}, {old(n)})" for n in _KEPT_IF_NULL]
    updates.append(f'"last_received_at" = GREATEST({new("last_received_at")}, {old("last_received_at")})')
    updates.append(f'"source" = CASE WHEN {old("source")} = {string_literal(DERIVED)} THEN {new("source")} '
                   f'ELSE {old("source")} END')
    tail = f" ON CONFLICT (\"event_key\") DO UPDATE SET {', '.join(updates)}"
    return [f"INSERT INTO {target} AS t ({names}) VALUES {values}{tail}" for values in values_lists(EVENTS, rows)]


def merge_rows(execute: Callable[[str], Any], schema: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """Create/upgrade ``schema.events`` and merge ``rows`` (call inside the caller's transaction)."""
    ensure_sql(execute, schema)
    for statement in upsert_sql(schema, rows):
        execute(statement)


# --- spooled events that cannot be loaded -> rejected_records ----------------------------------------

REJECTED_LOAD_ID: Final = "events"
"""``_dlt_load_id`` of the rows :func:`keep_rejected` adds: the events loader, not a dlt load."""


def rejected_table() -> PersistentTable:
    """``rejected_records`` as the quarantine declares it, with dlt's two columns (for SQL text only:
    the table is dlt's, replaced every run, not a persistent one)."""
    from streak_source.quarantine import REJECTED_COLUMNS, REJECTED_TABLE

    columns = tuple((name, str(hint["data_type"])) for name, hint in REJECTED_COLUMNS.items())
    return PersistentTable(name=REJECTED_TABLE, columns=(*columns, ("_dlt_load_id", "text"), ("_dlt_id", "text")),
                           primary_key=())


def rejected_rows(rejected: Sequence[RejectedEvent]) -> list[dict[str, Any]]:
    """``rejected_records`` rows of spooled events, one per distinct (reason, raw JSON)."""
    import hashlib

    from streak_source.quarantine import rejected_row

    rows: dict[str, dict[str, Any]] = {}
    for event in rejected:
        row = rejected_row(EVENTS.name, event.reason, event.raw)
        digest = hashlib.sha256(f"{row['reason']}\n{row['raw_json']}".encode()).hexdigest()[:24]
        rows.setdefault(digest, {**row, "_dlt_load_id": REJECTED_LOAD_ID, "_dlt_id": digest})
    return list(rows.values())


def keep_rejected(execute: Callable[[str], Any], schema: str, rejected: Sequence[RejectedEvent]) -> int:
    """Add to ``schema.rejected_records`` the rows of ``rejected`` it does not hold yet (creating the
    table when the copy has none); returns how many were added. Call inside the caller's transaction."""
    if not rejected:
        return 0
    table = rejected_table()
    target = qualified(schema, table.name)
    existing = columns_of(execute, schema, table.name)
    if not existing:
        execute(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(schema)}")
        execute(f"CREATE TABLE {target} (" + ", ".join(
            f"{quote_identifier(name)} {ANSI_TYPES[kind]}" for name, kind in table.columns) + ")")
        existing = {name for name, _ in table.columns}
    kept = {(str(r), str(j)) for r, j in execute(
        f'SELECT "reason", "raw_json" FROM {target} WHERE "table_name" = {string_literal(EVENTS.name)}')}
    new = [row for row in rejected_rows(rejected) if (row["reason"], row["raw_json"]) not in kept]
    present = PersistentTable(table.name, tuple(c for c in table.columns if c[0] in existing), ())
    names = ", ".join(quote_identifier(name) for name in present.column_names())
    for values in values_lists(present, new):
        execute(f"INSERT INTO {target} ({names}) VALUES {values}")
    return len(new)


# --- BOX_CHANGE_STAGE deliveries -> stage history ----------------------------------------------------

STAGE_CHANGE: Final = "BOX_CHANGE_STAGE"


def stage_change_event(row: Mapping[str, Any]) -> Any:
    """A ``BOX_CHANGE_STAGE`` webhook event (a ``crm.events`` row) as a
    :class:`~streak_warehouse.stage_history.StageChangeEvent`, or None when it is not one or carries
    no exact time. The exact time is Streak's ``lastStageChangeTimestamp``, which the webhook's
    event key ends with (``streak:BOX_CHANGE_STAGE:<box key>:<ms>``, streak_eventlog/webhook_events.py);
    an event without it (keyed by a digest) is not used: its receipt time is not the move's."""
    import json

    from streak_warehouse.stage_history import StageChangeEvent

    if row.get("event_name") != STAGE_CHANGE or row.get("source") != "webhook" or not row.get("box_key"):
        return None
    box = str(row["box_key"])
    prefix = f"streak:{STAGE_CHANGE}:{box}:"
    key = str(row.get("event_key") or "")
    if not key.startswith(prefix) or not key[len(prefix):].isdigit():
        return None
    properties = row.get("properties")
    if isinstance(properties, str):
        try:
            properties = json.loads(properties)
        except ValueError:
            return None
    stage = properties.get("stageKey") if isinstance(properties, dict) else None
    if not isinstance(stage, str) or not stage:
        return None
    return StageChangeEvent(box, stage, int(key[len(prefix):]), row.get("pipeline_key") or None)


def stage_change_events(rows: Sequence[Mapping[str, Any]]) -> list[Any]:
    """Every usable ``BOX_CHANGE_STAGE`` event among ``rows`` (see :func:`stage_change_event`)."""
    return [event for event in map(stage_change_event, rows) if event is not None]


def read_stage_change_events(execute: Callable[[str], Any], dataset: str) -> list[Any]:
    """The ``BOX_CHANGE_STAGE`` events stored in ``dataset.events`` (none when the table is missing)."""
    if not {"event_key", "event_name", "box_key", "pipeline_key", "source", "properties"} <= columns_of(
        execute, dataset, EVENTS.name
    ):
        return []
    names = ("event_key", "event_name", "box_key", "pipeline_key", "source", "properties")
    cursor = execute(
        f"SELECT {', '.join(quote_identifier(n) for n in names)} FROM {qualified(dataset, EVENTS.name)} "
        f"WHERE event_name = {string_literal(STAGE_CHANGE)} AND box_key IS NOT NULL"
    )
    return stage_change_events([dict(zip(names, row, strict=True)) for row in cursor])


# --- derived events (streak_warehouse/derived_events.py) ---------------------------------------------

NEW_EVENTS: Final = PersistentTable(name="_streak_new_events", columns=EVENTS.columns, primary_key=EVENTS.primary_key)
"""Staging table of one run's derived events (not registered: created and dropped inside the step)."""


@dataclass(frozen=True)
class DerivedResult:
    new: int
    """Events the copy shows that ``crm.events`` did not hold."""
    added: int
    """Of those, how many were inserted (the same, unless a concurrent writer got there first)."""
    seconds: float


def _epoch_ms(column: str) -> str:
    """A timestamp column as epoch milliseconds (DuckDB and Postgres alike): 7x faster to fetch
    than datetimes, and what the identity needs."""
    return f"CAST(ROUND(EXTRACT(EPOCH FROM {quote_identifier(column)}) * 1000) AS BIGINT)"


def read_copy(execute: Callable[[str], Any], dataset: str) -> dict[str, list[dict[str, Any]]]:
    """The columns the derived events need, from the copy ``dataset`` (timestamps as epoch ms); a
    table it lacks is left out (e.g. ``box_meetings`` of an account without meetings), a column it
    lacks is read as NULL."""
    from streak_warehouse.derived_events import KINDS, STAGE_HISTORY_TABLE, STAY_COLUMNS
    from streak_warehouse.sql import string_literal

    wanted: dict[str, dict[str, None]] = {}
    for kind in KINDS:
        wanted.setdefault(kind.table, {}).update(dict.fromkeys(kind.columns))
    wanted[STAGE_HISTORY_TABLE] = dict.fromkeys(STAY_COLUMNS)
    copy: dict[str, list[dict[str, Any]]] = {}
    for table, columns in wanted.items():
        types = {str(name).lower(): str(kind).lower() for name, kind in execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = "
            f"{string_literal(dataset)} AND table_name = {string_literal(table)}")}
        names = [name for name in columns if name in types]
        if table == STAGE_HISTORY_TABLE and len(names) < len(columns):
            continue  # a stay needs every one of them
        if not names:
            continue
        select = ", ".join(_epoch_ms(n) if "timestamp" in types[n] else quote_identifier(n) for n in names)
        cursor = execute(f"SELECT {select} FROM {qualified(dataset, table)}")
        copy[table] = [dict(zip(names, row, strict=True)) for row in cursor]
    return copy


def stored_event_keys(execute: Callable[[str], Any], schema: str) -> set[str]:
    """Every ``event_key`` of ``schema.events`` (call after :func:`ensure_sql`)."""
    return {str(row[0]) for row in execute(f'SELECT "event_key" FROM {qualified(schema, EVENTS.name)}')}


def add_new_events(client: Any, schema: str, rows: Sequence[Mapping[str, Any]]) -> int:
    """Insert those of ``rows`` whose ``event_key`` ``schema.events`` does not hold; returns how many.

    Set-based (the rows are unique by ``event_key``): bulk-loaded into :data:`NEW_EVENTS` (Arrow on
    DuckDB, ``COPY`` on Postgres), then one ``INSERT ... SELECT ... WHERE NOT EXISTS``. ``client``:
    a dlt sql client, or anything with ``execute_sql`` and ``native_connection``; call inside the
    caller's transaction.
    """
    from streak_warehouse.persistent import bulk_insert

    execute = executor(client)
    ensure_sql(execute, schema)
    if not rows:
        return 0
    staging, target = qualified(schema, NEW_EVENTS.name), qualified(schema, EVENTS.name)
    names = ", ".join(quote_identifier(name) for name, _ in EVENTS.columns)
    execute(f"DROP TABLE IF EXISTS {staging}")
    execute(create_sql(NEW_EVENTS, schema))
    bulk_insert(client, NEW_EVENTS, schema, rows)  # Arrow on DuckDB, COPY on Postgres, VALUES elsewhere
    count = f"SELECT COUNT(*) FROM {target}"
    before = int(execute(count)[0][0])
    execute(f"INSERT INTO {target} ({names}) SELECT {names} FROM {staging} AS s "
            f"WHERE NOT EXISTS (SELECT 1 FROM {target} AS e WHERE e.\"event_key\" = s.\"event_key\")")
    added = int(execute(count)[0][0]) - before
    execute(f"DROP TABLE {staging}")
    return added


def add_derived_events(client: Any, schema: str, derived_at: datetime) -> DerivedResult:
    """The main job's step after merging the spool: derive the events of the copy ``schema`` (its
    tables, stage history and the webhook stage changes its ``events`` holds) and add the new ones."""
    from streak_warehouse.derived_events import derive_events

    started = time.monotonic()
    execute = executor(client)
    ensure_sql(execute, schema)
    rows = derive_events(read_copy(execute, schema), read_stage_change_events(execute, schema), derived_at,
                         stored_event_keys(execute, schema))
    added = add_new_events(client, schema, rows)
    return DerivedResult(len(rows), added, time.monotonic() - started)
