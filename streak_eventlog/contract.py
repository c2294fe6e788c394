"""The custom-events contract (Streamlined's Custom Events API, issue 14): one request -> one event;
a batch (issue 26) -> each of its events checked by the same rules (:func:`checked_event`).

Pure functions, no I/O: the HTTP layer (``app.py``) maps :class:`ContractError` to its status and a
one-line JSON body naming the field. The rules, each in one place:

* ``event_name``: required, a non-empty string (at most ``MAX_NAME_CHARS``).
* ``distinct_id`` / ``location_id`` / ``contact_id`` / ``box_key``: optional strings (a number is
  taken as its decimal text, as Streamlined's workflows often send numeric ids).
* ``timestamp``: UNIX seconds, UNIX milliseconds or an ISO 8601 string; all become epoch
  milliseconds (UTC), so the three forms of one instant are equal. A number is milliseconds when
  its magnitude is at least ``MS_THRESHOLD`` (1e11: year 5138 in seconds, 1973 in ms); an ISO
  string without a zone is UTC. Booleans, NaN/Infinity and years outside 1970-9999 are rejected.
* ``properties``: an object whose values are strings or finite numbers; anything else (null, a
  bool, NaN/Infinity, an object, a list) is rejected, naming the property.
* A batch: a JSON array of 1 to ``MAX_BATCH_EVENTS`` events; an event the rules refuse is refused
  alone (its result names the field as a single request would), the others are stored.

What may be STORED at all (:func:`check_storable`, one rule for both routes and for the loader,
which applies it again to rows an older receiver spooled): no string (value or name) with a NUL
character (Postgres and DuckDB cannot hold it: ``a\u0000b`` would become ``ab`` and collide) or a
lone UTF-16 surrogate (not Unicode: no UTF-8 encoding exists, so SQLite could not commit it), no
integer outside 64 bits, no non-finite number (``1e400`` parses to infinity), no nesting deeper than
``MAX_DEPTH``. Each is refused before anything reaches the spool's group commit, so one such body
never fails another request.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import orjson

MS_THRESHOLD: Final = 100_000_000_000
"""|n| >= 1e11 is read as milliseconds, below as seconds (documented in docs/events.md)."""
MIN_MS: Final = 0
MAX_MS: Final = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
MAX_NAME_CHARS: Final = 200
MAX_ID_CHARS: Final = 200
MAX_DEPTH: Final = 64
"""Deepest nesting of arrays/objects a body may have (Streak's objects nest a few levels)."""
INT64: Final = range(-(2**63), 2**63)
MAX_SHOWN_NAME: Final = 60
MAX_BATCH_EVENTS: Final = 1000
"""Most events one batch (``POST /events/ingestion/v1/batch``) may hold."""

JsonScalar = str | int | float


class ContractError(ValueError):
    """A request the contract refuses: HTTP ``status``, the ``field`` at fault, a short reason."""

    def __init__(self, status: int, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.status = status
        self.field = field
        self.reason = reason

    def body(self) -> dict[str, str]:
        return {"error": self.reason, "field": self.field}


@dataclass(frozen=True)
class CustomEvent:
    """One accepted custom event, before the spool gives it an identity and receipt times."""

    event_name: str
    distinct_id: str | None
    location_id: str | None
    contact_key: str | None
    box_key: str | None
    timestamp_ms: int | None
    """None: the time of the first request with this ``distinct_id`` (set by the spool)."""
    properties: dict[str, JsonScalar]


def parse_timestamp(value: Any, field: str = "timestamp") -> int:
    """UNIX s, UNIX ms or ISO 8601 -> epoch ms (UTC). Raises :class:`ContractError` (400)."""
    if isinstance(value, bool) or value is None:
        raise ContractError(400, field, "must be UNIX seconds, UNIX milliseconds or an ISO 8601 string")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ContractError(400, field, "must be a finite number")
        ms = value if abs(value) >= MS_THRESHOLD else value * 1000
        result = round(ms)
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            raise ContractError(400, field, "is empty")
        try:
            number = float(text) if text.lstrip("-").replace(".", "", 1).isdigit() else None
        except ValueError:
            number = None
        if number is not None:
            return parse_timestamp(number, field)
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ContractError(400, field, "is not an ISO 8601 date-time") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        delta = parsed - datetime(1970, 1, 1, tzinfo=UTC)
        result = delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000
    else:
        raise ContractError(400, field, "must be UNIX seconds, UNIX milliseconds or an ISO 8601 string")
    return check_time_range(result, field)


def check_time_range(ms: int, field: str) -> int:
    """``ms`` (epoch milliseconds) when it lies in 1970-01-01 .. 9999-12-31, else ContractError (400):
    the range every stored time must have (a datetime, DuckDB and Postgres all hold it)."""
    if not MIN_MS <= ms <= MAX_MS:
        raise ContractError(400, field, "is outside 1970-01-01 .. 9999-12-31")
    return ms


def shown_name(name: str) -> str:
    """A JSON name as it may appear in an error: NUL and lone surrogates escaped, cut short."""
    text = name.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\u0000")
    return text if len(text) <= MAX_SHOWN_NAME else text[:MAX_SHOWN_NAME] + "..."


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "a NUL character (\\u0000)"
    if not text.isascii():  # ASCII text holds no surrogate: skip the encode
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "a lone UTF-16 surrogate (not valid Unicode)"
    return None


class _Unstorable(Exception):
    """Raised deep in :func:`_check`; each level adds its name or index on the way out, so the field's
    name is built only for the value at fault (a batch checks thousands of good values)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path: list[str | int] = []


def _plainly_storable(item: Any) -> bool:
    """True for the values of almost every body: ASCII text without NUL, a 64-bit integer, a finite
    float, a boolean, null. Only a shortcut: what it does not vouch for goes through :func:`_check`,
    which holds the rules (and names what is wrong)."""
    kind = type(item)
    if kind is str:
        return item.isascii() and "\x00" not in item
    if kind is int:
        return -(2**63) <= item < 2**63
    if kind is float:
        return item - item == 0.0  # False for NaN and the infinities
    return item is None or kind is bool


def _check(value: Any, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ContractError(400, "body", f"nests deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        if (problem := _text_problem(value)) is not None:
            raise _Unstorable(f"contains {problem}")
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if value not in INT64:
            raise _Unstorable("is an integer outside the 64-bit range")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise _Unstorable("is not a finite number")
    elif isinstance(value, dict):
        shortcut = depth < MAX_DEPTH  # an item one level down is within the depth limit
        for name, item in value.items():
            if shortcut and type(name) is str and _plainly_storable(name) and _plainly_storable(item):
                continue
            try:
                if (problem := _text_problem(name)) is not None:
                    raise _Unstorable(f"has a name with {problem}")
                _check(item, depth + 1)
            except _Unstorable as exc:
                exc.path.append(name)
                raise
    elif isinstance(value, list):
        shortcut = depth < MAX_DEPTH
        for index, item in enumerate(value):
            if shortcut and _plainly_storable(item):
                continue
            try:
                _check(item, depth + 1)
            except _Unstorable as exc:
                exc.path.append(index)
                raise


def _field_name(field: str, path: list[str | int]) -> str:
    """``field`` and the names/indexes below it (innermost last in ``path`` reversed):
    ``properties.amount``, ``body[0].name``; a name bare when ``field`` is empty."""
    for part in reversed(path):
        if isinstance(part, int):
            field = f"{field}[{part}]"
        else:
            field = f"{field}.{shown_name(part)}" if field else shown_name(part)
    return field


def check_storable(value: Any, field: str, depth: int = 0) -> None:
    """Raise ContractError (400, naming the field) for what cannot be stored: see the module doc."""
    try:
        _check(value, depth)
    except _Unstorable as exc:
        raise ContractError(400, _field_name(field, exc.path), exc.reason) from None


def is_plain_property(item: Any) -> bool:
    """A property value as custom events carry them: a string, an integer (not a boolean) or a
    finite float, by exact type so the check costs no call (NaN - NaN is NaN, inf - inf too)."""
    kind = type(item)
    return kind is str or kind is int or (kind is float and item - item == 0.0)


def _property_problem(item: Any) -> str | None:
    """Why a property's value is not allowed (None: a string or a finite number)."""
    if item is None:
        return "is null; values must be strings or finite numbers"
    if isinstance(item, bool):
        return "is a boolean; values must be strings or finite numbers"
    if isinstance(item, (dict, list)):
        kind = "an object" if isinstance(item, dict) else "a list"
        return f"is {kind}; values must be strings or finite numbers"
    if isinstance(item, float) and not math.isfinite(item):
        return "is NaN or Infinity; values must be finite numbers"
    if not isinstance(item, (str, int, float)):
        return "values must be strings or finite numbers"
    return None


def check_properties(value: Any) -> dict[str, JsonScalar]:
    """``properties``: an object of strings and finite numbers; names the first bad property."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ContractError(400, "properties", "must be a JSON object")
    for name, item in value.items():
        if is_plain_property(item):  # the usual
            continue
        if (problem := _property_problem(item)) is not None:
            raise ContractError(400, f"properties.{name}", problem)
    return dict(value)


def _optional_id(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ContractError(400, name, "must be a string")
    text = str(value).strip()
    if len(text) > MAX_ID_CHARS:
        raise ContractError(400, name, f"is longer than {MAX_ID_CHARS} characters")
    return text or None


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def loads_strict(raw: bytes | str) -> Any:
    """JSON without NaN/Infinity literals (Python's json accepts them by default). Raises
    ContractError (400, ``body``) when it nests too deep for the parser (a RecursionError)."""
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except RecursionError:
        raise ContractError(400, "body", f"nests deeper than {MAX_DEPTH} levels") from None


_DIGITS_AS_NINES: Final = bytes.maketrans(b"0123456789", b"9" * 10)
_LONG_DIGIT_RUN: Final = b"9" * 19


def parse_json(raw: bytes) -> Any:
    """A request body -> its JSON value, or ContractError (400, ``body``) when it is not JSON or nests
    too deep for the parser. NaN/Infinity literals parse here, so :func:`check_storable` refuses
    them naming where they are (``properties.amount``) rather than as "bad JSON".

    Python's ``json`` decides; orjson (C, several times faster) reads a body first when it gives the
    same value: it refuses some texts ``json`` accepts (NaN, lone surrogates, a BOM, UTF-16), which
    then go to ``json``, and reads an integer beyond 64 bits as a float, so a body with a run of 19
    or more digits goes to ``json`` directly."""
    if _LONG_DIGIT_RUN not in raw.translate(_DIGITS_AS_NINES):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(raw)
    except RecursionError:
        raise ContractError(400, "body", f"nests deeper than {MAX_DEPTH} levels") from None
    except ValueError:  # UnicodeDecodeError included
        raise ContractError(400, "body", "is not valid JSON") from None


def parse_body(raw: bytes) -> Any:
    """A request body -> its JSON value, refused (400, naming the field) when malformed or not storable."""
    body = parse_json(raw)
    check_storable(body, _top_field(body))
    return body


def _top_field(body: Any) -> str:
    """Fields of an object body are named bare (``properties.amount``); inside an array, ``body[0]...``."""
    return "" if isinstance(body, dict) else "body"


def checked_event(body: Any) -> CustomEvent:
    """One parsed event body -> :class:`CustomEvent`, or ContractError naming the field: what may be
    stored, then the contract. The one rule for a single request and for each event of a batch."""
    check_storable(body, _top_field(body))
    if not isinstance(body, dict):
        raise ContractError(400, "body", "must be a JSON object")
    name = body.get("event_name")
    if not isinstance(name, str) or not name.strip():
        raise ContractError(400, "event_name", "is required (a non-empty string)")
    if len(name) > MAX_NAME_CHARS:
        raise ContractError(400, "event_name", f"is longer than {MAX_NAME_CHARS} characters")
    stamp = body.get("timestamp")
    return CustomEvent(
        event_name=name.strip(),
        distinct_id=_optional_id(body, "distinct_id"),
        location_id=_optional_id(body, "location_id"),
        contact_key=_optional_id(body, "contact_id"),
        box_key=_optional_id(body, "box_key"),
        timestamp_ms=None if stamp is None else parse_timestamp(stamp),
        properties=check_properties(body.get("properties")),
    )


def parse_custom_event(raw: bytes) -> CustomEvent:
    """A request body -> :class:`CustomEvent`, or :class:`ContractError` naming the field."""
    return checked_event(parse_json(raw))


def parse_custom_batch(raw: bytes) -> list[CustomEvent | ContractError]:
    """A batch body (a JSON array of 1 to ``MAX_BATCH_EVENTS`` events) -> per event, in order, its
    :class:`CustomEvent` or the ContractError refusing it alone (as :func:`parse_custom_event` would
    refuse it sent on its own). The body as a whole (not JSON, not an array, empty, too many events)
    is refused with a ContractError (400, ``body``)."""
    body = parse_json(raw)
    if not isinstance(body, list):
        raise ContractError(400, "body", "must be a JSON array of events")
    if not body:
        raise ContractError(400, "body", f"is an empty array (send 1 to {MAX_BATCH_EVENTS} events)")
    if len(body) > MAX_BATCH_EVENTS:
        raise ContractError(400, "body", f"holds {len(body)} events; at most {MAX_BATCH_EVENTS} per batch")
    results: list[CustomEvent | ContractError] = []
    for item in body:
        try:
            results.append(checked_event(item))
        except ContractError as exc:
            results.append(exc)
    return results
