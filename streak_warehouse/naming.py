"""Names of the wide views and their columns: readable ASCII, dlt's naming convention, no clashes.

Pure (no database): :func:`plan_wide_views` turns the ``pipelines`` and ``pipeline_fields`` rows
into :class:`WideViewPlan` objects whose names are final; ``views.py`` writes the SQL and the
``wide_view_columns`` mapping table from them. Names are transliterated with ``anyascii`` before
dlt's naming convention, so "Partnerships 🤝" becomes ``pipeline_partnerships_handshake`` and
"Région / 地域" ``region_de_yu`` instead of ``pipeline_partnershipsx`` / ``r_gionx``; the original
names stay in the mapping table as display names.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from anyascii import anyascii

VIEW_PREFIX: Final = "pipeline_"
# Postgres cuts identifiers at 63 bytes (NAMEDATALEN - 1); every destination gets the same names.
MAX_IDENTIFIER_BYTES: Final = 63

BOXES: Final = "boxes"
STAGES: Final = "stages"
BOX_FIELD_VALUES: Final = "box_field_values"


@dataclass(frozen=True)
class CoreColumn:
    """A box column every wide view starts with: ``<table alias>.<source> AS <name>``."""

    name: str
    table: str  # BOXES or STAGES
    source: str
    data_type: str  # dlt data type, used for a typed NULL when the source column is absent
    label: str  # display name in the mapping table


CORE_COLUMNS: Final[tuple[CoreColumn, ...]] = (
    CoreColumn("box_key", BOXES, "box_key", "text", "Box key"),
    CoreColumn("box_name", BOXES, "name", "text", "Box"),
    CoreColumn("stage_key", BOXES, "stage_key", "text", "Stage key"),
    CoreColumn("stage_name", BOXES, "stage_name", "text", "Stage"),
    CoreColumn("stage_order", STAGES, "stage_order", "bigint", "Stage order"),
    CoreColumn("owner_name", BOXES, "owner_name", "text", "Owner"),
    CoreColumn("owner_email", BOXES, "owner_email", "text", "Owner email"),
    CoreColumn("creation_timestamp", BOXES, "creation_timestamp", "timestamp", "Created"),
    CoreColumn("last_updated_timestamp", BOXES, "last_updated_timestamp", "timestamp", "Last updated"),
    CoreColumn("last_stage_change_timestamp", BOXES, "last_stage_change_timestamp", "timestamp", "Last stage change"),
)
CORE_COLUMN_NAMES: Final[tuple[str, ...]] = tuple(c.name for c in CORE_COLUMNS)

# Which box_field_values column a field type's wide column shows (and its dlt type). TEXT_INPUT is
# double when every value of the field has a value_number (numeric_text_fields), else text; every
# other type not listed (DROPDOWN label, TAG/PERSON/TEAM_* joined names, unknown) is text.
VALUE_COLUMN_BY_FIELD_TYPE: Final[Mapping[str, tuple[str, str]]] = {
    "FORMULA": ("value_number", "double"),
    "DATE": ("value_timestamp", "timestamp"),
    "CHECKBOX": ("value_bool", "bool"),
}
TEXT_VALUE_COLUMN: Final = ("value_text", "text")
NUMBER_VALUE_COLUMN: Final = ("value_number", "double")


@dataclass(frozen=True)
class ViewField:
    """One custom-field column of a wide view."""

    field_key: str
    field_name: str | None
    field_type: str | None
    column_name: str
    value_column: str  # the box_field_values column it reads
    data_type: str  # dlt data type of that column


@dataclass(frozen=True)
class WideViewPlan:
    """Everything needed to write one pipeline's view: names are final, nothing is quoted yet."""

    view_name: str
    pipeline_key: str
    pipeline_name: str | None
    fields: tuple[ViewField, ...]


def readable_ascii(text: str) -> str:
    """``text`` transliterated to ASCII with ``anyascii``: "Région" -> "Region", "地域" -> "DeYu",
    "🤝" -> "handshake" (anyascii writes emoji as ``:name:``; the colons would become ``x``)."""
    parts: list[str] = []
    for char in text:
        if char.isascii():
            parts.append(char)
            continue
        ascii_text = anyascii(char)
        if len(ascii_text) > 2 and ascii_text.startswith(":") and ascii_text.endswith(":"):
            ascii_text = f" {ascii_text[1:-1]} "
        parts.append(ascii_text)
    return " ".join("".join(parts).split()) if not text.isascii() else text


def plan_wide_views(
    pipelines: Iterable[Mapping[str, Any]],
    fields: Iterable[Mapping[str, Any]],
    normalize_identifier: Callable[[str], str],
    reserved_names: Iterable[str] = (),
    max_identifier_bytes: int = MAX_IDENTIFIER_BYTES,
    numeric_text_fields: Collection[tuple[str, str]] = (),
) -> list[WideViewPlan]:
    """Name every pipeline's view and columns; sorted by view name.

    ``pipelines`` rows carry ``pipeline_key`` and ``name``; ``fields`` rows carry ``pipeline_key``,
    ``field_key``, ``name``, ``type``, ``field_order`` (the ``pipelines`` / ``pipeline_fields``
    tables). ``reserved_names`` are names the views must not take (the dataset's tables, e.g.
    ``pipeline_fields``). ``numeric_text_fields`` are (pipeline_key, field_key) of TEXT_INPUT fields
    whose every value is a number: their column shows ``value_number``, so a "Deal size" kept in a
    text field sums in SQL. Collision rule, for views and columns alike: names are compared
    case-insensitively (DuckDB is), and every member of a clash gets a suffix derived from its own
    key (``_<field_key>`` for columns, ``_<hash of pipeline key>`` for views), so a name never
    depends on which other object happened to sort first.
    """
    if max_identifier_bytes < 32:
        raise ValueError("identifiers shorter than 32 bytes cannot hold a name plus its suffix")
    pipeline_rows = _unique_by(pipelines, ("pipeline_key",))
    fields_by_pipeline: dict[str, list[Mapping[str, Any]]] = {}
    for row in _unique_by(fields, ("pipeline_key", "field_key")):
        fields_by_pipeline.setdefault(str(row["pipeline_key"]), []).append(row)

    bases = {
        str(p["pipeline_key"]): _view_base(p.get("name"), str(p["pipeline_key"]), normalize_identifier)
        for p in pipeline_rows
    }
    reserved = {name.lower() for name in reserved_names}
    base_counts = Counter(base.lower() for base in bases.values())
    taken: set[str] = set(reserved)
    plans: list[WideViewPlan] = []
    for pipeline in sorted(pipeline_rows, key=lambda p: str(p["pipeline_key"])):
        key = str(pipeline["pipeline_key"])
        base = bases[key]
        clash = base_counts[base.lower()] > 1 or base.lower() in reserved
        view_name = _unique_name(base, _hash_tag(key), clash, taken, max_identifier_bytes)
        taken.add(view_name.lower())
        numeric_keys = {field_key for pipeline_key, field_key in numeric_text_fields if pipeline_key == key}
        view_fields = _plan_fields(
            fields_by_pipeline.get(key, []), normalize_identifier, max_identifier_bytes, numeric_keys
        )
        plans.append(WideViewPlan(view_name, key, _text_or_none(pipeline.get("name")), view_fields))
    return sorted(plans, key=lambda plan: plan.view_name)


def stale_view_names(existing_views: Iterable[str], planned_view_names: Iterable[str]) -> list[str]:
    """Views named ``pipeline_*`` that no current pipeline claims (deleted or renamed pipelines)."""
    keep = {name.lower() for name in planned_view_names}
    return sorted(
        name for name in existing_views if name.lower().startswith(VIEW_PREFIX) and name.lower() not in keep
    )


def _plan_fields(
    rows: Sequence[Mapping[str, Any]],
    normalize_identifier: Callable[[str], str],
    max_bytes: int,
    numeric_text_keys: Collection[str] = (),
) -> tuple[ViewField, ...]:
    ordered = sorted(rows, key=_field_sort_key)
    bases = [_column_base(row.get("name"), str(row["field_key"]), normalize_identifier) for row in ordered]
    core = {name.lower() for name in CORE_COLUMN_NAMES}
    counts = Counter(base.lower() for base in bases)
    taken = set(core)
    planned: list[ViewField] = []
    for row, base in zip(ordered, bases):
        field_key = str(row["field_key"])
        clash = counts[base.lower()] > 1 or base.lower() in core
        column = _unique_name(base, _key_tag(field_key), clash, taken, max_bytes)
        taken.add(column.lower())
        field_type = _text_or_none(row.get("type"))
        kind = (field_type or "").strip().upper()
        if kind == "TEXT_INPUT" and field_key in numeric_text_keys:
            value_column, data_type = NUMBER_VALUE_COLUMN
        else:
            value_column, data_type = VALUE_COLUMN_BY_FIELD_TYPE.get(kind, TEXT_VALUE_COLUMN)
        planned.append(
            ViewField(
                field_key=field_key,
                field_name=_text_or_none(row.get("name")),
                field_type=field_type,
                column_name=column,
                value_column=value_column,
                data_type=data_type,
            )
        )
    return tuple(planned)


def _field_sort_key(row: Mapping[str, Any]) -> tuple[bool, float, tuple[int, int, str]]:
    """Pipeline's column order (``field_order``), missing orders last, then by key (numerically)."""
    order = row.get("field_order")
    position = float(order) if isinstance(order, (int, float)) and not isinstance(order, bool) else None
    valid = position is not None and position == position  # NaN is no position
    key = str(row["field_key"])
    natural = (0, int(key), "") if key.isascii() and key.isdigit() and len(key) < 19 else (1, 0, key)
    return (not valid, position if valid and position is not None else 0.0, natural)


def _view_base(name: Any, pipeline_key: str, normalize: Callable[[str], str]) -> str:
    text = _text_or_none(name)
    base = _safe_normalize(f"{VIEW_PREFIX}{text.strip()}", normalize) if text and text.strip() else None
    if not base:
        return f"{VIEW_PREFIX}{_hash_tag(pipeline_key)}"
    if not base.lower().startswith(VIEW_PREFIX):  # the prefix is how stale views are found
        base = VIEW_PREFIX + base
    return base


def _column_base(name: Any, field_key: str, normalize: Callable[[str], str]) -> str:
    text = _text_or_none(name)
    base = _safe_normalize(text.strip(), normalize) if text and text.strip() else None
    return base or f"field_{_key_tag(field_key)}"


def _safe_normalize(text: str, normalize: Callable[[str], str]) -> str | None:
    """``normalize(readable_ascii(text))``; None when the convention rejects it or leaves nothing."""
    try:
        normalized = normalize(readable_ascii(text))
    except Exception:  # a naming convention may reject what it cannot map; fall back to the key
        return None
    return normalized if isinstance(normalized, str) and normalized.strip() else None


def _unique_name(base: str, tag: str, clash: bool, taken: set[str], max_bytes: int) -> str:
    """``base`` (or ``base_<tag>`` on a clash), shortened to ``max_bytes``, not already taken."""
    name = _fit(base, f"_{tag}" if clash else "", max_bytes)
    counter = 2
    while name.lower() in taken:
        name = _fit(base, f"_{tag}_{counter}", max_bytes)
        counter += 1
    return name


def _fit(base: str, suffix: str, max_bytes: int) -> str:
    """``base + suffix`` within ``max_bytes`` (UTF-8); a cut base gets a hash so cuts stay distinct."""
    name = base + suffix
    if len(name.encode("utf-8")) <= max_bytes:
        return name
    tail = f"_{_hash_tag(base)}{suffix}"
    budget = max_bytes - len(tail.encode("utf-8"))
    head = base.encode("utf-8")[:budget].decode("utf-8", errors="ignore")
    return head + tail


def _key_tag(key: str) -> str:
    """A field key as an identifier part: "1001" stays "1001"; anything odd or long is hashed."""
    tag = re.sub(r"[^0-9A-Za-z]+", "_", key).strip("_").lower()
    return tag if tag and len(tag) <= 12 and tag == key.lower() else _hash_tag(key)


def _hash_tag(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", errors="surrogatepass")).hexdigest()[:8]


def _text_or_none(value: Any) -> str | None:
    if value is None or isinstance(value, (Mapping, list, bool)):
        return None
    return value if isinstance(value, str) else str(value)


def _unique_by(rows: Iterable[Mapping[str, Any]], key_columns: Sequence[str]) -> list[Mapping[str, Any]]:
    """Rows with every key column set, first occurrence wins (primary keys are not enforced)."""
    seen: set[tuple[str, ...]] = set()
    unique: list[Mapping[str, Any]] = []
    for row in rows:
        if any(row.get(column) is None for column in key_columns):
            continue
        key = tuple(str(row[column]) for column in key_columns)
        if key not in seen:
            seen.add(key)
            unique.append(row)
    return unique
