"""``crm.events``: the events log, a persistent table (it outlives the main job's replace runs).

Registered in the persistent registry (``streak_warehouse/persistent.py``), so every replace run
carries it from the live copy into the fresh one (DuckDB: copied; Postgres: moved with the schema
swap). Rows come from the events spool (``streak_eventlog/spool.py``) and are merged on
``event_key`` with :func:`upsert_sql`: a later version of an event updates its name, properties,
ids and ``last_received_at``, and keeps its first ``timestamp`` and ``first_received_at``.

Used by ``python pipelines/streak_events.py load`` (into the live copy, under the run lock) and by
the main job (into the fresh copy, before publishing): ``pipelines/events_load.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from streak_eventlog.spool import EVENTS_COLUMN_HINTS
from streak_warehouse.persistent import (
    PersistentTable,
    _columns_of,
    _literal,
    add_columns_sql,
    create_sql,
    register,
)
from streak_warehouse.sql import qualified, quote_identifier

EVENTS: Final = register(
    PersistentTable(
        name="events",
        columns=tuple((name, str(hint["data_type"])) for name, hint in EVENTS_COLUMN_HINTS.items()),
        primary_key=("event_key",),
    )
)

ROWS_PER_STATEMENT: Final = 500
_KEPT_IF_NULL: Final = ("location_id", "contact_key", "box_key", "pipeline_key")


def ensure_sql(execute: Callable[[str], Any], schema: str) -> None:
    """Create ``schema.events`` (and ``schema``) if missing; add columns a newer version declares."""
    execute(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(schema)}")
    existing = _columns_of(execute, schema, EVENTS.name)
    if not existing:
        execute(create_sql(EVENTS, schema))
        return
    for statement in add_columns_sql(EVENTS, schema, existing):
        execute(statement)


def upsert_sql(schema: str, rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """``INSERT ... ON CONFLICT (event_key) DO UPDATE`` statements (DuckDB and Postgres) for ``rows``."""
    names = ", ".join(quote_identifier(name) for name, _ in EVENTS.columns)
    target = qualified(schema, EVENTS.name)
    old = lambda name: f"t.{quote_identifier(name)}"
    new = lambda name: f"excluded.{quote_identifier(name)}"
    updates = [f"{quote_identifier(n)} = {new(n)}" for n in ("event_name", "properties")]
    updates += [f"{quote_identifier(n)} = COALESCE({new(n)}, {old(n)})" for n in _KEPT_IF_NULL]
    updates.append(f'"last_received_at" = GREATEST({new("last_received_at")}, {old("last_received_at")})')
    tail = f" ON CONFLICT (\"event_key\") DO UPDATE SET {', '.join(updates)}"
    statements = []
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        values = ", ".join(
            "(" + ", ".join(_literal(row.get(name), kind) for name, kind in EVENTS.columns) + ")"
            for row in rows[start:start + ROWS_PER_STATEMENT]
        )
        statements.append(f"INSERT INTO {target} AS t ({names}) VALUES {values}{tail}")
    return statements


def merge_rows(execute: Callable[[str], Any], schema: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """Create/upgrade ``schema.events`` and merge ``rows`` (call inside the caller's transaction)."""
    ensure_sql(execute, schema)
    for statement in upsert_sql(schema, rows):
        execute(statement)


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
    from streak_warehouse.sql import string_literal

    if not {"event_key", "event_name", "box_key", "pipeline_key", "source", "properties"} <= _columns_of(
        execute, dataset, EVENTS.name
    ):
        return []
    names = ("event_key", "event_name", "box_key", "pipeline_key", "source", "properties")
    cursor = execute(
        f"SELECT {', '.join(quote_identifier(n) for n in names)} FROM {qualified(dataset, EVENTS.name)} "
        f"WHERE event_name = {string_literal(STAGE_CHANGE)} AND box_key IS NOT NULL"
    )
    return stage_change_events([dict(zip(names, row, strict=True)) for row in cursor])
