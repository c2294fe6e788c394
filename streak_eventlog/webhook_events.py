"""Streak webhook deliveries -> events (streak_api.md 6.18): the receiver learns the event from its URL.

A delivery is a JSON array of the updated objects, with no event name in it. Each object becomes one
event whose ``distinct_id`` is :func:`streak_event_id`: ``streak:{EVENT}:{object key}:{object time ms}``,
stable, so a redelivery (Streak retries on any non-2xx) updates the same spooled event instead of
adding one. The same function names the events derived from each load
(``streak_warehouse/derived_events.py``), so a change seen both ways is ONE event. That is why the
object time is the one field the copy also holds, unchanged by later edits (:data:`TIMESTAMP_FIELDS`):

* ``BOX_CREATE``: ``creationTimestamp``; ``TASK_CREATE``, ``MEETING_CREATE``: ``creationDate``;
  ``COMMENT_CREATE``: ``timestamp`` (its creation); ``TASK_COMPLETE``: ``lastStatusChangeDate``;
* ``BOX_CHANGE_STAGE``: ``lastStageChangeTimestamp`` only (the stage history reads it from the key
  as the move's exact time); ``TASK_DUE``: ``dueDate`` only;
* otherwise (and after the fields above, when an object lacks them) the first of
  ``lastUpdatedTimestamp``, ``lastSavedTimestamp``, ``timestamp``, ``creationTimestamp``,
  ``creationDate`` that is an integer.

An object with no key or no timestamp still becomes an event: its identity is then a hash of the
object's canonical JSON (an identical redelivery stays one event). The object time taken must lie in
1970..9999 (``contract.check_time_range``): one outside it refuses the delivery (400 naming the
field, e.g. ``body[0].creationTimestamp``), as a custom event's ``timestamp`` would be.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Final

from .contract import check_time_range

PIPELINE_EVENTS: Final = (
    "BOX_CREATE",
    "BOX_DELETE",
    "BOX_EDIT",
    "BOX_CHANGE_STAGE",
    "BOX_CHANGE_PIPELINE",
    "BOX_NEW_EMAIL_ADDRESS",
    "STAGE_CREATE",
    "COMMENT_CREATE",
    "MEETING_CREATE",
    "MEETING_UPDATE",
    "TASK_CREATE",
    "TASK_COMPLETE",
    "TASK_DUE",
)
TEAM_EVENTS: Final = (
    "CONTACT_CREATE",
    "CONTACT_UPDATE",
    "CONTACT_DELETE",
    "ORG_CREATE",
    "ORG_UPDATE",
    "ORG_DELETE",
)
WEBHOOK_EVENTS: Final = frozenset(PIPELINE_EVENTS + TEAM_EVENTS)

DEFAULT_TIMESTAMP_FIELDS: Final = (
    "lastUpdatedTimestamp",
    "lastSavedTimestamp",
    "timestamp",
    "creationTimestamp",
    "creationDate",
)
IDENTITY_TIME_FIELD: Final[dict[str, str]] = {
    "BOX_CREATE": "creationTimestamp",
    "BOX_CHANGE_STAGE": "lastStageChangeTimestamp",
    "TASK_CREATE": "creationDate",
    "TASK_COMPLETE": "lastStatusChangeDate",
    "COMMENT_CREATE": "timestamp",
    "MEETING_CREATE": "creationDate",
    "TASK_DUE": "dueDate",
}
"""The object's field that times the event in its identity: what the copy holds unchanged
(``streak_warehouse/derived_events.py`` reads the same field's column)."""
TIMESTAMP_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    event: (name,) if event in ("BOX_CHANGE_STAGE", "TASK_DUE") else (name, *DEFAULT_TIMESTAMP_FIELDS)
    for event, name in IDENTITY_TIME_FIELD.items()
}
"""Fields tried in order for the object time, by event (others: :data:`DEFAULT_TIMESTAMP_FIELDS`)."""
KEY_FIELDS: Final = ("key", "boxKey", "taskKey", "commentKey", "meetingKey", "stageKey", "contactKey")
"""``key`` first: a task's ``boxKey`` is its box, not itself."""
PROPERTY_FIELDS: Final = ("name", "stageKey", "status", "text", "message", "meetingType")
"""Scalar fields of the object kept as event properties (besides ``object_key``); text cut short."""
MAX_PROPERTY_CHARS: Final = 500


@dataclass(frozen=True)
class WebhookEvent:
    event_name: str
    distinct_id: str
    object_key: str | None
    timestamp_ms: int | None
    pipeline_key: str | None
    box_key: str | None
    contact_key: str | None
    properties: dict[str, str | int | float]


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def object_key(obj: dict[str, Any]) -> str | None:
    for name in KEY_FIELDS:
        if (value := _str(obj.get(name))) is not None:
            return value
    return None


def object_timestamp(event: str, obj: dict[str, Any], where: str = "object") -> int | None:
    """The object time (epoch ms) of ``event``'s object, None without one; ContractError (400,
    naming ``where.<field>``) when it lies outside 1970..9999."""
    for name in TIMESTAMP_FIELDS.get(event, DEFAULT_TIMESTAMP_FIELDS):
        value = obj.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return check_time_range(value, f"{where}.{name}")
    return None


def streak_event_id(event: str, key: str, time_ms: int) -> str:
    """THE identity of a Streak event, webhook or derived: ``streak:{EVENT}:{object key}:{object time ms}``."""
    return f"streak:{event}:{key}:{time_ms}"


def webhook_distinct_id(event: str, key: str | None, timestamp_ms: int | None, obj: dict[str, Any]) -> str:
    if key is not None and timestamp_ms is not None:
        return streak_event_id(event, key, timestamp_ms)
    digest = hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:32]
    return f"streak:{event}:sha256:{digest}"


def event_from_object(event: str, obj: dict[str, Any], where: str = "object") -> WebhookEvent:
    """One delivered object -> one event (``event`` is already checked against WEBHOOK_EVENTS, the
    object by ``contract.check_storable``); ``where`` names the object in errors (``body[0]``)."""
    key = object_key(obj)
    stamp = object_timestamp(event, obj, where)
    is_box = event.startswith("BOX_")
    box_key = key if is_box else _str(obj.get("boxKey"))
    contact_key = key if event.startswith("CONTACT_") else None
    properties: dict[str, str | int | float] = {}
    if key is not None:
        properties["object_key"] = key
    for name in PROPERTY_FIELDS:
        value = obj.get(name)
        if isinstance(value, str):
            properties[name] = value[:MAX_PROPERTY_CHARS]
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            properties[name] = value
    return WebhookEvent(
        event_name=event,
        distinct_id=webhook_distinct_id(event, key, stamp, obj),
        object_key=key,
        timestamp_ms=stamp,
        pipeline_key=_str(obj.get("pipelineKey")),
        box_key=box_key,
        contact_key=contact_key,
        properties=properties,
    )
