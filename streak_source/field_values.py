"""Decode a box's custom-field values into tidy, typed rows (table ``box_field_values``).

Streak stores a box's custom fields as ``box["fields"]``: a map of field key ("1001") to a value
whose JSON shape depends on the field's type, declared in the pipeline's ``fields`` list. Analysts
want names and labels, not keys: "Deal size" instead of "1001", "Negotiation" instead of "9002".

Pure functions only (no HTTP, no dlt): the source calls :func:`box_field_value_rows` per box.

The decoding contract, one row per field that :func:`has_value`:

* The value lands in the column its type calls for: ``value_text`` (TEXT_INPUT, DROPDOWN label,
  string FORMULA, and the ", "-joined names of TAG / PERSON / TEAM_*), ``value_number`` (numeric
  FORMULA; a TEXT_INPUT keeps its text *and* gets the number when it came back as a JSON number
  or its text is one amount by :func:`streak_source.numbers.parse_number`: ``119,500 €`` -> 119500),
  ``value_bool`` (CHECKBOX, boolean FORMULA) or ``value_timestamp`` (DATE). ``value_labels`` lists
  TAG / PERSON / TEAM_* names one by one. A CHECKBOX leaves ``value_text`` NULL on purpose: one
  typed column per value; ``value_raw`` already reads ``true`` / ``false``.
* ``value_raw`` is always the compact JSON of the value as Streak sent it.
* Anything not decodable keeps the raw value as text in ``value_text`` and says why in
  ``decode_status``; nothing that has a value is ever dropped, and no JSON input raises.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Iterable, Iterator, Literal, Mapping, Sequence

from streak_source.epoch import epoch_ms_to_datetime
from streak_source.keys import as_key
from streak_source.numbers import parse_number
from streak_source.transform import field_options as parse_field_options

DecodeStatus = Literal["ok", "unknown_option", "type_mismatch", "unknown_type", "unknown_field"]

DECODE_OK: Final[DecodeStatus] = "ok"
UNKNOWN_OPTION: Final[DecodeStatus] = "unknown_option"
TYPE_MISMATCH: Final[DecodeStatus] = "type_mismatch"
UNKNOWN_TYPE: Final[DecodeStatus] = "unknown_type"
UNKNOWN_FIELD: Final[DecodeStatus] = "unknown_field"
DECODE_STATUSES: Final[tuple[str, ...]] = (
    DECODE_OK,
    UNKNOWN_OPTION,
    TYPE_MISMATCH,
    UNKNOWN_TYPE,
    UNKNOWN_FIELD,
)

DECODE_STATUS_MEANINGS: Final[dict[str, str]] = {
    UNKNOWN_OPTION: "point to a dropdown or tag option since deleted in Streak",
    TYPE_MISMATCH: "do not match their field's type",
    UNKNOWN_TYPE: "belong to a field type this loader does not know",
    UNKNOWN_FIELD: "belong to a field since deleted from the pipeline",
}
"""Each ``decode_status`` but ``ok``, in words for the people who use the CRM (the run summary)."""

TEXT_INPUT: Final = "TEXT_INPUT"
DROPDOWN: Final = "DROPDOWN"
CHECKBOX: Final = "CHECKBOX"
DATE: Final = "DATE"
PERSON: Final = "PERSON"
FORMULA: Final = "FORMULA"
TAG: Final = "TAG"
TEAM_CONTACT: Final = "TEAM_CONTACT"
TEAM_ORGANIZATION: Final = "TEAM_ORGANIZATION"
FIELD_TYPES: Final[frozenset[str]] = frozenset(
    {TEXT_INPUT, DROPDOWN, CHECKBOX, DATE, PERSON, FORMULA, TAG, TEAM_CONTACT, TEAM_ORGANIZATION}
)

# dlt column hints for the `box_field_values` resource (plain dicts, so this module needs no dlt), in the
# column order of a row; every column is declared so one that is NULL in every row still exists.
BOX_FIELD_VALUES_COLUMNS: Final[dict[str, dict[str, Any]]] = {
    "box_key": {"data_type": "text", "nullable": False, "primary_key": True},
    "pipeline_key": {"data_type": "text", "nullable": True},
    "field_key": {"data_type": "text", "nullable": False, "primary_key": True},
    "field_name": {"data_type": "text", "nullable": True},
    "field_type": {"data_type": "text", "nullable": True},
    "value_text": {"data_type": "text", "nullable": True},
    "value_number": {"data_type": "double", "nullable": True},
    "value_bool": {"data_type": "bool", "nullable": True},
    "value_timestamp": {"data_type": "timestamp", "timezone": True, "nullable": True},
    "value_labels": {"data_type": "json", "nullable": True},
    "value_raw": {"data_type": "text", "nullable": False},
    "decode_status": {"data_type": "text", "nullable": False},
}


@dataclass(frozen=True)
class Person:
    """What a user key resolves to: PERSON values may carry only a user key."""

    name: str | None = None
    email: str | None = None

    @property
    def label(self) -> str | None:
        return self.name or self.email or None


@dataclass(frozen=True)
class NameLookups:
    """Key -> display name maps for values that reference other entities by key.

    PERSON values may be bare user keys; TEAM_CONTACT / TEAM_ORGANIZATION values are contact and
    organization keys. The source fills these from the users / contacts / organizations it has
    already extracted; an empty instance still decodes everything (keys stand in for names).
    """

    users: Mapping[str, Person] = field(default_factory=dict)
    contacts: Mapping[str, str] = field(default_factory=dict)
    organizations: Mapping[str, str] = field(default_factory=dict)


EMPTY_LOOKUPS: Final = NameLookups()


def has_value(value: Any) -> bool:
    """True unless the value is None, "" or []: False and 0 are real values.

    This is the exact rule the sandbox's ground truth counts ``box_field_values`` rows by.
    """
    if value is None:
        return False
    if isinstance(value, str) and value == "":
        return False
    if isinstance(value, list) and len(value) == 0:
        return False
    return True


def field_options(field_def: Any) -> dict[str, str]:
    """Option key -> label of a DROPDOWN / TAG field, from the one parse in
    :func:`streak_source.transform.field_options`. An option without a usable key or label is left
    out, so a value pointing at it is reported as ``unknown_option`` instead of being invented."""
    options: dict[str, str] = {}
    for option in parse_field_options(field_def):
        if option.key is not None and option.label is not None:
            options.setdefault(option.key, option.label)
    return options


def index_fields(pipeline_fields: Any) -> dict[str, Mapping[str, Any]]:
    """A pipeline's ``fields`` list -> {field key: PipelineField}, the shape the decoder takes."""
    if not isinstance(pipeline_fields, list):
        return {}
    indexed: dict[str, Mapping[str, Any]] = {}
    for field_def in pipeline_fields:
        if isinstance(field_def, Mapping):
            key = as_key(field_def.get("key"))
            if key is not None:
                indexed.setdefault(key, field_def)
    return indexed


def box_field_value_rows(
    box: Mapping[str, Any],
    fields_by_key: Mapping[str, Mapping[str, Any]],
    lookups: NameLookups = EMPTY_LOOKUPS,
) -> list[dict[str, Any]]:
    """One ``box_field_values`` row per field of ``box["fields"]`` that has a value.

    ``fields_by_key`` is the box's pipeline schema (see :func:`index_fields`). ``box["fields"]`` is
    normally a map; the ``[{key, value}]`` list of the per-box fields endpoint is accepted too.
    """
    if not isinstance(box, Mapping):
        return []
    box_key = _first_text(box, "boxKey", "key")
    pipeline_key = _first_text(box, "pipelineKey")
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for field_key, value in _iter_box_fields(box.get("fields")):
        if field_key in seen or not has_value(value):
            continue
        seen.add(field_key)
        field_def = fields_by_key.get(field_key) if isinstance(fields_by_key, Mapping) else None
        rows.append(_decode_row(box_key, pipeline_key, field_key, value, field_def, lookups))
    return rows


def summarize_decode_statuses(rows: Iterable[Mapping[str, Any]]) -> Counter[str]:
    """Count rows by ``decode_status`` (every known status present, zero if none).

    The run summary reports ``total - counts["ok"]`` as values that could not be fully decoded.
    """
    counts: Counter[str] = Counter({status: 0 for status in DECODE_STATUSES})
    for row in rows:
        counts[str(row.get("decode_status"))] += 1
    return counts


# --- decoding ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Decoded:
    """The typed part of a row; at most the columns the type calls for are set."""

    status: DecodeStatus = DECODE_OK
    text: str | None = None
    number: float | None = None
    boolean: bool | None = None
    timestamp: datetime | None = None
    labels: list[str] | None = None


def _decode_row(
    box_key: str | None,
    pipeline_key: str | None,
    field_key: str,
    value: Any,
    field_def: Any,
    lookups: NameLookups,
) -> dict[str, Any]:
    field_name: str | None = None
    field_type: str | None = None
    if not isinstance(field_def, Mapping):
        decoded = _raw(value, UNKNOWN_FIELD)
    else:
        field_name = _as_label(field_def.get("name"))
        field_type = _as_label(field_def.get("type"))
        decoded = _decode_value(value, field_type, field_def, lookups)
    return {
        "box_key": box_key,
        "pipeline_key": pipeline_key,
        "field_key": field_key,
        "field_name": field_name,
        "field_type": field_type,
        "value_text": decoded.text,
        "value_number": decoded.number,
        "value_bool": decoded.boolean,
        "value_timestamp": decoded.timestamp,
        "value_labels": decoded.labels,
        "value_raw": _compact_json(value),
        "decode_status": decoded.status,
    }


def _decode_value(
    value: Any, field_type: str | None, field_def: Mapping[str, Any], lookups: NameLookups
) -> _Decoded:
    kind = field_type.strip().upper() if field_type else None
    if kind == TEXT_INPUT:
        return _decode_text(value)
    if kind == DROPDOWN:
        return _decode_dropdown(value, field_options(field_def))
    if kind == TAG:
        return _decode_tags(value, field_options(field_def))
    if kind == CHECKBOX:
        return _Decoded(boolean=value) if isinstance(value, bool) else _raw(value, TYPE_MISMATCH)
    if kind == DATE:
        return _decode_date(value)
    if kind == FORMULA:
        return _decode_formula(value)
    if kind == PERSON:
        return _decode_people(value, lookups)
    if kind == TEAM_CONTACT:
        return _decode_references(value, lookups.contacts, ("contactKey",))
    if kind == TEAM_ORGANIZATION:
        return _decode_references(value, lookups.organizations, ("organizationKey",))
    return _raw(value, UNKNOWN_TYPE)


def _decode_text(value: Any) -> _Decoded:
    if isinstance(value, str):
        return _Decoded(text=value, number=parse_number(value))
    if _is_integer(value):  # "42" typed into a text field comes back as the JSON number 42
        return _Decoded(text=_compact_json(value), number=_finite_number(value))
    number = _finite_number(value)
    if number is not None:
        return _Decoded(text=_compact_json(value), number=number)
    return _raw(value, TYPE_MISMATCH)


def _decode_dropdown(value: Any, options: Mapping[str, str]) -> _Decoded:
    key = value if isinstance(value, str) else _int_key(value)
    if key is None:
        return _raw(value, TYPE_MISMATCH)
    label = options.get(key)
    if label is None:  # the option was deleted or renamed away: keep the key, say so
        return _Decoded(text=key, status=UNKNOWN_OPTION)
    return _Decoded(text=label)


def _decode_tags(value: Any, options: Mapping[str, str]) -> _Decoded:
    if not isinstance(value, list):
        return _raw(value, TYPE_MISMATCH)
    labels: list[str] = []
    status: DecodeStatus = DECODE_OK
    for item in value:
        key = _reference_key(item, ())
        if key is None:
            return _raw(value, TYPE_MISMATCH)
        label = options.get(key)
        if label is None:
            status = UNKNOWN_OPTION
            label = key
        labels.append(label)
    return _Decoded(text=", ".join(labels), labels=labels, status=status)


def _decode_date(value: Any) -> _Decoded:
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        moment = epoch_ms_to_datetime(value)
        if moment is not None:
            return _Decoded(timestamp=moment)
    return _raw(value, TYPE_MISMATCH)


def _decode_formula(value: Any) -> _Decoded:
    if isinstance(value, str):
        return _Decoded(text=value)
    if isinstance(value, bool):
        return _Decoded(boolean=value)
    number = _finite_number(value)
    if number is not None:
        return _Decoded(number=number)
    if _is_integer(value):  # beyond float range: exact digits as text rather than nothing
        return _Decoded(text=_compact_json(value))
    return _raw(value, TYPE_MISMATCH)


def _decode_people(value: Any, lookups: NameLookups) -> _Decoded:
    """PERSON: sharing entries or user keys (shape is low confidence, so both, single or listed)."""
    items = value if isinstance(value, list) else [value]
    labels: list[str] = []
    status: DecodeStatus = DECODE_OK
    for item in items:
        if isinstance(item, Mapping):
            own = _first_text(item, "fullName", "displayName", "email")
            if own is not None:
                labels.append(own)
                continue
            key = _first_text(item, "userKey", "key")
        else:
            key = as_key(item) if isinstance(item, str) else None  # a bare user key is a string
        if key is None:
            return _raw(value, TYPE_MISMATCH)
        person = lookups.users.get(key)
        label = person.label if isinstance(person, Person) else None
        if label is None:
            status = UNKNOWN_OPTION
            label = key
        labels.append(label)
    return _Decoded(text=", ".join(labels), labels=labels, status=status)


def _decode_references(value: Any, names: Mapping[str, str], extra_key_names: Sequence[str]) -> _Decoded:
    """TEAM_CONTACT / TEAM_ORGANIZATION: key, [keys] or [{key}] -> names via the lookups."""
    items = value if isinstance(value, list) else [value]
    labels: list[str] = []
    status: DecodeStatus = DECODE_OK
    for item in items:
        key = _reference_key(item, extra_key_names)
        if key is None:
            return _raw(value, TYPE_MISMATCH)
        label = names.get(key)
        if not isinstance(label, str):
            status = UNKNOWN_OPTION
            label = key
        labels.append(label)
    return _Decoded(text=", ".join(labels), labels=labels, status=status)


def _raw(value: Any, status: DecodeStatus) -> _Decoded:
    """Undecodable: keep the value itself as text (a string as is, anything else as JSON)."""
    return _Decoded(text=value if isinstance(value, str) else _compact_json(value), status=status)


# --- small coercions -----------------------------------------------------------------------------


def _iter_box_fields(fields: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(fields, Mapping):
        for key, value in fields.items():
            yield (key if isinstance(key, str) else _compact_json(key)), value
    elif isinstance(fields, list):  # GET /v1/boxes/{k}/fields shape: [{key, value}]
        for entry in fields:
            if isinstance(entry, Mapping):
                key = as_key(entry.get("key"))
                if key is not None:
                    yield key, entry.get("value")


def _compact_json(value: Any) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    except Exception:  # circular, or otherwise not JSON (only reachable from Python callers)
        try:
            return repr(value)
        except Exception:  # e.g. an int beyond Python's digit limit (no JSON parser makes one)
            return f"<unprintable {type(value).__name__}>"


def _finite_number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:  # ints beyond float range
        return None
    return number if math.isfinite(number) else None


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_key(value: Any) -> str | None:
    """Option keys are numeric strings; a client may send them as JSON integers."""
    return _compact_json(value) if _is_integer(value) else None


def _as_label(value: Any) -> str | None:
    if value is None or isinstance(value, (Mapping, list)):
        return None
    return value if isinstance(value, str) else _compact_json(value)


def _reference_key(item: Any, extra_key_names: Sequence[str]) -> str | None:
    if isinstance(item, Mapping):
        return _first_text(item, "key", *extra_key_names)
    return as_key(item)


def _first_text(obj: Mapping[str, Any], *names: str) -> str | None:
    for name in names:
        value = obj.get(name)
        if isinstance(value, str) and value.strip() != "":
            return value
    return None
