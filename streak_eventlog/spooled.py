"""How a row is spooled (:func:`properties_json`), and a spooled row -> a ``crm.events`` row or the
reason it cannot be loaded (pure functions).

The receiver refuses what cannot be stored (``contract.check_storable``, times in 1970..9999), but a
spool written by an older receiver may hold such rows: a webhook timed ``9000000000000000`` (year
287168: no datetime holds it), a ``distinct_id`` with a NUL character (the warehouse would drop the
NUL, so ``a\\u0000b`` and ``ab`` would become one row), properties with ``Infinity``. Every row read
for loading is checked again by the same rules; one that fails becomes a :class:`RejectedEvent`
(the loader keeps it in ``crm.rejected_records``) instead of stopping every later load.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import orjson

from .contract import ContractError, check_storable, check_time_range, is_plain_property, loads_strict

_STDLIB_PROPERTIES_JSON: Final = json.JSONEncoder(sort_keys=True, ensure_ascii=False).encode


def properties_json(properties: dict[str, Any]) -> str:
    """How ``properties`` is stored: JSON text, keys sorted, UTF-8. A custom event's (strings and
    finite numbers) is written by orjson, a tenth of the CPU; anything else by ``json``, which alone
    spells NaN and the infinities as an older receiver did (orjson would write null). Readers parse
    the text, so the two spellings of a number (``1e+16``, ``1e16``) are alike."""
    if not all(is_plain_property(value) for value in properties.values()):
        return _STDLIB_PROPERTIES_JSON(properties)
    try:
        return orjson.dumps(properties, option=orjson.OPT_SORT_KEYS).decode()
    except orjson.JSONEncodeError:  # a key that is not text, an integer beyond 64 bits, a lone surrogate
        return _STDLIB_PROPERTIES_JSON(properties)


SPOOLED_COLUMNS: Final = (
    "event_key", "event_name", "distinct_id", "location_id", "contact_key", "box_key", "pipeline_key",
    "timestamp_ms", "first_received_ms", "last_received_ms", "source", "properties",
)
"""The spool's columns holding an event (in this order in every SELECT that feeds :func:`event_row`)."""
TEXT_COLUMNS: Final = ("event_key", "event_name", "distinct_id", "location_id", "contact_key", "box_key",
                       "pipeline_key", "source")
TIME_COLUMNS: Final = {"timestamp_ms": "timestamp", "first_received_ms": "first_received_at",
                       "last_received_ms": "last_received_at"}


@dataclass(frozen=True)
class RejectedEvent:
    """A spooled event that cannot be loaded: its key, why (one line naming the column), the row."""

    event_key: str
    reason: str
    raw: dict[str, Any]
    """The spooled columns exactly as stored (``properties`` as its stored JSON text)."""


def utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def raw_row(values: Sequence[Any]) -> dict[str, Any]:
    """The spooled columns by name (``values`` in :data:`SPOOLED_COLUMNS` order)."""
    return dict(zip(SPOOLED_COLUMNS, values, strict=True))


def event_row(values: Sequence[Any]) -> dict[str, Any]:
    """The ``crm.events`` row of a spooled event; ContractError (naming the column) when it holds
    what the receiver refuses today: the loader's copy of the receiver's rules."""
    raw = raw_row(values)
    for name in TEXT_COLUMNS:
        if raw[name] is not None and not isinstance(raw[name], str):
            raise ContractError(400, name, "is not text")
        check_storable(raw[name], name)
    for name in ("event_key", "event_name", "source"):
        if not raw[name]:
            raise ContractError(400, name, "is empty")
    for name, column in TIME_COLUMNS.items():
        if isinstance(raw[name], bool) or not isinstance(raw[name], int):
            raise ContractError(400, column, "is not an integer of epoch milliseconds")
        check_time_range(raw[name], column)
    try:
        properties = loads_strict(raw["properties"])
    except (ValueError, TypeError):
        raise ContractError(400, "properties", "is not valid JSON") from None
    if not isinstance(properties, dict):
        raise ContractError(400, "properties", "is not a JSON object")
    check_storable(properties, "properties")
    row = {name: raw[name] for name in TEXT_COLUMNS[:-1]}
    row.update({column: utc(raw[name]) for name, column in TIME_COLUMNS.items()})
    row.update(source=raw["source"], properties=properties)
    return row


def checked(values: Sequence[Any]) -> dict[str, Any] | RejectedEvent:
    """:func:`event_row`, or the :class:`RejectedEvent` saying why it cannot be loaded."""
    try:
        return event_row(values)
    except ContractError as exc:
        return RejectedEvent(str(values[0]), f"{exc.field} {exc.reason}", raw_row(values))
