"""Events derived from each load (issue 14): what the fresh copy shows happened, as ``crm.events`` rows.

So an account without webhooks still has an events log, every run turns the copy into events with
``source = 'derived'``:

========================  ==================================================================
event                     from
========================  ==================================================================
``BOX_CREATE``            ``boxes`` (``creation_timestamp``)
``BOX_CHANGE_STAGE``      ``box_stage_history``: every stay that follows an earlier stay of the
                          box in the same pipeline (``entered_at``); a box's first stay is its
                          creation (or a first sighting), not a move
``TASK_CREATE``           ``box_tasks`` (``creation_date``)
``TASK_COMPLETE``         ``box_tasks`` with ``status = 'DONE'`` (``last_status_change_date``)
``COMMENT_CREATE``        ``box_comments`` (``timestamp``)
``MEETING_CREATE``        ``box_meetings`` (``creation_date``; ``meetingType`` says meeting notes
                          or call log)
``THREAD_CREATE``         ``box_threads`` (``creation_timestamp``); Streak has no webhook for it
========================  ==================================================================

Identity: the webhook path's own function (``streak_eventlog.webhook_events.streak_event_id``),
``streak:{EVENT}:{object key}:{object time ms}``, with the object time read from the column dlt makes
of the very field a webhook delivery is timed by (``IDENTITY_TIME_FIELD``), so a change seen by
webhook and in the copy is the same ``event_key``: one event. A stage change matching a webhook
``BOX_CHANGE_STAGE`` of the same box and stage within the stage history's tolerance
(``SAME_MOVE_TOLERANCE_MS``: newsfeed and webhook clocks may differ) takes the webhook's time, so
it is that event. The ids depend only on keys and times that never change, so every reload derives
the same ids; the warehouse keeps the first row of each (``events_table.add_new_events``).

Pure: plain rows in, rows out (no SQL here; ``events_table.py`` reads the copy and inserts).
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from streak_eventlog.webhook_events import IDENTITY_TIME_FIELD, MAX_PROPERTY_CHARS, streak_event_id
from streak_source.clashes import column_name
from streak_warehouse.stage_history import (
    SAME_MOVE_TOLERANCE_MS,
    StageChangeEvent,
    StageStay,
    from_ms,
    stage_transitions,
    to_ms,
)

SOURCE: Final = "derived"
STAGE_CHANGE: Final = "BOX_CHANGE_STAGE"
STAGE_HISTORY_TABLE: Final = "box_stage_history"
STAY_COLUMNS: Final = ("box_key", "pipeline_key", "stage_key", "entered_at", "left_at", "known_from",
                       "entered_exact", "left_exact")
"""The ``box_stage_history`` columns the stage changes are read from."""

Rows = Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class Kind:
    """One derived event read from one table: a row with a key and a time is one event."""

    event: str
    table: str
    key_column: str
    time_field: str
    """The Streak field that times the event (the webhook's, for webhook events); its column is
    what dlt names it (:attr:`time_column`)."""
    properties: tuple[tuple[str, str], ...] = ()
    """(property name, column): the webhook's property names (``webhook_events.PROPERTY_FIELDS``)."""
    only_if: tuple[str, str] | None = None
    """(column, value) a row must have to count."""

    @property
    def time_column(self) -> str:
        return column_name(self.time_field)

    @property
    def columns(self) -> tuple[str, ...]:
        names = [self.key_column, "box_key", "pipeline_key", self.time_column, *(c for _, c in self.properties)]
        if self.only_if is not None:
            names.append(self.only_if[0])
        return tuple(dict.fromkeys(names))


KINDS: Final = (
    Kind("BOX_CREATE", "boxes", "box_key", IDENTITY_TIME_FIELD["BOX_CREATE"], (("name", "name"),)),
    Kind("TASK_CREATE", "box_tasks", "task_key", IDENTITY_TIME_FIELD["TASK_CREATE"], (("text", "text"),)),
    Kind("TASK_COMPLETE", "box_tasks", "task_key", IDENTITY_TIME_FIELD["TASK_COMPLETE"],
         (("text", "text"), ("status", "status")), only_if=("status", "DONE")),
    Kind("COMMENT_CREATE", "box_comments", "comment_key", IDENTITY_TIME_FIELD["COMMENT_CREATE"],
         (("message", "message"),)),
    Kind("MEETING_CREATE", "box_meetings", "meeting_key", IDENTITY_TIME_FIELD["MEETING_CREATE"],
         (("meetingType", "meeting_type"),)),
    Kind("THREAD_CREATE", "box_threads", "thread_key", "creationTimestamp", (("subject", "subject"),)),
)
"""Every derived event but the stage changes (those come from the stays)."""
EVENT_NAMES: Final = (*(k.event for k in KINDS), STAGE_CHANGE)


def _property(value: Any) -> str | int | float | None:
    """A property value as the events contract allows it (string or finite number), else None."""
    if isinstance(value, str):
        return value[:MAX_PROPERTY_CHARS] if value else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or value in (
        float("inf"), float("-inf")
    ):
        return None
    return value


def event_row(
    event: str, key: str, time_ms: int, box_key: str | None, pipeline_key: str | None,
    properties: Mapping[str, Any], derived_at: datetime,
) -> dict[str, Any]:
    """One ``crm.events`` row (``streak_eventlog.spool.ROW_COLUMNS``) of a derived event."""
    identity = streak_event_id(event, key, time_ms)
    props: dict[str, str | int | float] = {"object_key": key}
    for name, value in properties.items():
        if (clean := _property(value)) is not None:
            props[name] = clean
    return {
        "event_key": identity, "event_name": event, "distinct_id": identity, "location_id": None,
        "contact_key": None, "box_key": box_key, "pipeline_key": pipeline_key, "timestamp": from_ms(time_ms),
        "first_received_at": derived_at, "last_received_at": derived_at, "source": SOURCE, "properties": props,
    }


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _kind_events(kind: Kind, rows: Rows, derived_at: datetime, known: Container[str]) -> Iterable[dict[str, Any]]:
    for row in rows:
        key, time_ms = _text(row.get(kind.key_column)), to_ms(row.get(kind.time_column))
        if key is None or time_ms is None:
            continue
        if kind.only_if is not None and row.get(kind.only_if[0]) != kind.only_if[1]:
            continue
        if streak_event_id(kind.event, key, time_ms) in known:
            continue
        box = key if kind.table == "boxes" else _text(row.get("box_key"))
        yield event_row(kind.event, key, time_ms, box, _text(row.get("pipeline_key")),
                        {name: row.get(column) for name, column in kind.properties}, derived_at)


def _matching_webhook_ms(at_ms: int, candidates: Sequence[int]) -> int:
    """The webhook time of the same move (closest within the tolerance), else ``at_ms`` itself."""
    near = [ms for ms in candidates if abs(ms - at_ms) <= SAME_MOVE_TOLERANCE_MS]
    return min(near, key=lambda ms: (abs(ms - at_ms), ms)) if near else at_ms


def stage_change_events(
    stays: Rows, webhook_moves: Iterable[StageChangeEvent], box_names: Mapping[str, str], derived_at: datetime
) -> list[dict[str, Any]]:
    """A ``BOX_CHANGE_STAGE`` per stay that follows an earlier stay of its box in the same pipeline.

    Properties: ``stageKey`` (the stage entered, as the webhook's box carries it), ``fromStageKey``
    only when the stay before is known to end exactly then (``stage_transitions``' rule), ``name``.
    """
    moves: dict[tuple[str, str], list[int]] = {}
    for move in webhook_moves:
        moves.setdefault((move.box_key, move.to_stage_key), []).append(move.at_ms)
    out: list[dict[str, Any]] = []
    previous: tuple[str, str] | None = None
    for transition in stage_transitions(StageStay.from_row(row) for row in stays):
        place = (transition.box_key, transition.pipeline_key)
        follows, previous = previous == place, place
        if not follows:
            continue
        at_ms = to_ms(transition.at)
        assert at_ms is not None, "a stay always has entered_at"
        at_ms = _matching_webhook_ms(at_ms, moves.get((transition.box_key, transition.to_stage_key), ()))
        properties = {"stageKey": transition.to_stage_key, "fromStageKey": transition.from_stage_key,
                      "name": box_names.get(transition.box_key)}
        out.append(event_row(STAGE_CHANGE, transition.box_key, at_ms, transition.box_key, transition.pipeline_key,
                             properties, derived_at))
    return out


def derive_events(
    copy: Mapping[str, Rows], webhook_moves: Iterable[StageChangeEvent], derived_at: datetime,
    known: Container[str] = frozenset(),
) -> list[dict[str, Any]]:
    """Every event the copy shows whose ``event_key`` is not in ``known``, once each (the first of a
    repeated ``event_key`` kept).

    ``copy``: table name -> rows (dicts with at least :attr:`Kind.columns`, and :data:`STAY_COLUMNS`
    for ``box_stage_history``; times as datetimes or epoch ms); a missing table derives nothing.
    ``webhook_moves``: the webhook ``BOX_CHANGE_STAGE`` events known
    (``events_table.stage_change_events``). ``derived_at``: this run's time (``first_received_at``).
    ``known``: ids already stored; skipping them before a row is built keeps a reload cheap.
    """
    boxes = copy.get("boxes", ())
    names = {str(row["box_key"]): str(row["name"]) for row in boxes if row.get("box_key") and row.get("name")}
    out: dict[str, dict[str, Any]] = {}
    for kind in KINDS:
        for row in _kind_events(kind, copy.get(kind.table, ()), derived_at, known):
            out.setdefault(row["event_key"], row)
    for row in stage_change_events(copy.get(STAGE_HISTORY_TABLE, ()), webhook_moves, names, derived_at):
        if row["event_key"] not in known:
            out.setdefault(row["event_key"], row)
    return list(out.values())
