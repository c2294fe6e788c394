"""Per-pipeline wide views: one row per box, one column per custom field, named by the field.

``box_field_values`` is long (one row per box and field), which is right for loading but not for
analysts, who think "the Sales pipeline has a Deal size column". After each load the main job calls
:func:`create_wide_views`, which creates ``pipeline_<name>`` views in the destination dataset.

Two layers, so the SQL can be unit-tested without a database:

* pure: :func:`plan_wide_views` (names: views and columns, collisions, length limits) and
  :func:`wide_view_sql` (the ``DROP VIEW`` / ``CREATE VIEW`` text for one plan, given a
  :class:`SqlDialect` that quotes, qualifies and types the way the destination does);
* thin executor: :func:`create_wide_views` reads ``pipelines`` / ``pipeline_fields`` through
  ``pipeline.sql_client()`` and runs the statements in one transaction.

Column names go through dlt's own naming convention (``schema.naming.normalize_identifier``), as
verified-sources' pipedrive ``custom_fields_munger`` does, so they are names the destination expects.
Everything user-controlled (field keys, pipeline keys, names) reaches SQL only as an escaped
literal or an escaped, normalized identifier.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Collection, Final, Iterable, Mapping, Sequence

if TYPE_CHECKING:  # the pure half of this module does not need dlt at import time
    import dlt
    from dlt.destinations.sql_client import SqlClientBase

logger = logging.getLogger(__name__)

VIEW_PREFIX: Final = "pipeline_"
# Postgres cuts identifiers at 63 bytes (NAMEDATALEN - 1); every destination gets the same names.
MAX_IDENTIFIER_BYTES: Final = 63

BOXES: Final = "boxes"
STAGES: Final = "stages"
BOX_FIELD_VALUES: Final = "box_field_values"
PIPELINES: Final = "pipelines"
PIPELINE_FIELDS: Final = "pipeline_fields"


@dataclass(frozen=True)
class CoreColumn:
    """A box column every wide view starts with: ``<table alias>.<source> AS <name>``."""

    name: str
    table: str  # BOXES or STAGES
    source: str
    data_type: str  # dlt data type, used for a typed NULL when the source column is absent


CORE_COLUMNS: Final[tuple[CoreColumn, ...]] = (
    CoreColumn("box_key", BOXES, "box_key", "text"),
    CoreColumn("box_name", BOXES, "name", "text"),
    CoreColumn("stage_key", BOXES, "stage_key", "text"),
    CoreColumn("stage_name", BOXES, "stage_name", "text"),
    CoreColumn("stage_order", STAGES, "stage_order", "bigint"),
    CoreColumn("owner_name", BOXES, "owner_name", "text"),
    CoreColumn("owner_email", BOXES, "owner_email", "text"),
    CoreColumn("creation_timestamp", BOXES, "creation_timestamp", "timestamp"),
    CoreColumn("last_updated_timestamp", BOXES, "last_updated_timestamp", "timestamp"),
    CoreColumn("last_stage_change_timestamp", BOXES, "last_stage_change_timestamp", "timestamp"),
)
CORE_COLUMN_NAMES: Final[tuple[str, ...]] = tuple(c.name for c in CORE_COLUMNS)

# Which box_field_values column a field type's wide column shows (and its dlt type).
# Everything not listed (TEXT_INPUT, DROPDOWN label, TAG/PERSON/TEAM_* joined names, unknown) is text.
VALUE_COLUMN_BY_FIELD_TYPE: Final[Mapping[str, tuple[str, str]]] = {
    "FORMULA": ("value_number", "double"),
    "DATE": ("value_timestamp", "timestamp"),
    "CHECKBOX": ("value_bool", "bool"),
}
TEXT_VALUE_COLUMN: Final = ("value_text", "text")
NUMBER_VALUE_COLUMN: Final = ("value_number", "double")

_ANSI_TYPES: Final[Mapping[str, str]] = {
    "text": "VARCHAR",
    "double": "DOUBLE PRECISION",
    "bool": "BOOLEAN",
    "timestamp": "TIMESTAMP WITH TIME ZONE",
    "bigint": "BIGINT",
}


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

    @property
    def column_names(self) -> tuple[str, ...]:
        return CORE_COLUMN_NAMES + tuple(f.column_name for f in self.fields)


@dataclass(frozen=True)
class SqlDialect:
    """How the destination quotes, qualifies, writes literals and names types.

    :func:`dialect_for_sql_client` builds one from a dlt sql client; :func:`ansi_dialect` is a
    plain stand-in for tests and for reading the generated SQL.
    """

    quote_identifier: Callable[[str], str]
    qualify_table: Callable[[str], str]
    string_literal: Callable[[str], str]
    type_name: Callable[[str], str]


def ansi_string_literal(value: str) -> str:
    """'...' with quotes doubled; NUL (which no SQL engine stores in text) is dropped."""
    return "'" + value.replace("\x00", "").replace("'", "''") + "'"


def ansi_quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def ansi_dialect(dataset_name: str) -> SqlDialect:
    """Double-quoted identifiers, ``"dataset"."table"``, '' escaped literals, ANSI type names."""
    return SqlDialect(
        quote_identifier=ansi_quote_identifier,
        qualify_table=lambda table: f"{ansi_quote_identifier(dataset_name)}.{ansi_quote_identifier(table)}",
        string_literal=ansi_string_literal,
        type_name=lambda data_type: _ANSI_TYPES.get(data_type, "VARCHAR"),
    )


# --- naming --------------------------------------------------------------------------------------


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
    try:
        normalized = normalize(text)
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


# --- SQL -----------------------------------------------------------------------------------------


def drop_view_sql(view_name: str, dialect: SqlDialect) -> str:
    return f"DROP VIEW IF EXISTS {dialect.qualify_table(view_name)}"


def wide_view_sql(
    plan: WideViewPlan,
    dialect: SqlDialect,
    available_columns: Mapping[str, Collection[str]] | None = None,
) -> list[str]:
    """``[DROP VIEW IF EXISTS ..., CREATE VIEW ...]`` for one plan.

    Drop + create rather than ``CREATE OR REPLACE``: Postgres refuses to replace a view whose
    columns changed. ``available_columns`` maps a table name (``boxes``, ``stages``,
    ``box_field_values``) to the columns it really has (dlt leaves out columns that were NULL in
    every row); a missing column becomes a typed NULL and a missing table is not joined, so the view
    keeps its shape. ``None`` means "assume every table and column exists". ``boxes`` with
    ``box_key`` and ``pipeline_key`` is required: ValueError otherwise.
    """
    has = _ColumnCheck(available_columns)
    if not has(BOXES, "box_key", "pipeline_key"):
        raise ValueError("wide views need a `boxes` table with `box_key` and `pipeline_key`")
    q = dialect.quote_identifier
    join_stages = has(STAGES, "pipeline_key", "stage_key", "stage_order")
    join_values = has(BOX_FIELD_VALUES, "box_key", "field_key")

    select: list[str] = []
    for core in CORE_COLUMNS:
        if core.table == BOXES and has(BOXES, core.source):
            expression = f"b.{q(core.source)}"
        elif core.table == STAGES and join_stages:
            expression = f"s.{q(core.source)}"
        else:
            expression = _typed_null(core.data_type, dialect)
        select.append(f"{expression} AS {q(core.name)}")

    joins: list[str] = []
    if join_stages:
        joins.append(
            f"LEFT JOIN {dialect.qualify_table(STAGES)} AS s"
            f" ON s.{q('pipeline_key')} = b.{q('pipeline_key')}"
            f" AND s.{q('stage_key')} = b.{q('stage_key')}"
        )
    for index, view_field in enumerate(plan.fields, start=1):
        alias = f"f{index}"
        if join_values and has(BOX_FIELD_VALUES, view_field.value_column):
            expression = f"{alias}.{q(view_field.value_column)}"
            joins.append(
                f"LEFT JOIN {dialect.qualify_table(BOX_FIELD_VALUES)} AS {alias}"
                f" ON {alias}.{q('box_key')} = b.{q('box_key')}"
                f" AND {alias}.{q('field_key')} = {dialect.string_literal(view_field.field_key)}"
            )
        else:
            expression = _typed_null(view_field.data_type, dialect)
        select.append(f"{expression} AS {q(view_field.column_name)}")

    lines = [
        f"CREATE VIEW {dialect.qualify_table(plan.view_name)} AS",
        "SELECT",
        ",\n".join(f"    {item}" for item in select),
        f"FROM {dialect.qualify_table(BOXES)} AS b",
        *joins,
        f"WHERE b.{q('pipeline_key')} = {dialect.string_literal(plan.pipeline_key)}",
    ]
    return [drop_view_sql(plan.view_name, dialect), "\n".join(lines)]


def _typed_null(data_type: str, dialect: SqlDialect) -> str:
    return f"CAST(NULL AS {dialect.type_name(data_type)})"


class _ColumnCheck:
    """``has(table, *columns)`` against the destination's real columns (case-insensitive)."""

    def __init__(self, available: Mapping[str, Collection[str]] | None) -> None:
        self._available = (
            None
            if available is None
            else {t.lower(): {c.lower() for c in cols} for t, cols in available.items()}
        )

    def __call__(self, table: str, *columns: str) -> bool:
        if self._available is None:
            return True
        present = self._available.get(table.lower())
        return present is not None and all(c.lower() in present for c in columns)


# --- executor ------------------------------------------------------------------------------------


def dialect_for_sql_client(sql_client: SqlClientBase[Any]) -> SqlDialect:
    """Quote, qualify, escape and type exactly as dlt does for this destination."""
    caps = sql_client.capabilities
    try:
        type_mapper = caps.get_type_mapper()
    except Exception:  # a destination without a type mapper: ANSI names still work on most
        type_mapper = None

    def type_name(data_type: str) -> str:
        if type_mapper is not None:
            try:
                return str(
                    type_mapper.to_destination_type(
                        {"name": "value", "data_type": data_type},  # type: ignore[typeddict-item]
                        {"name": "wide_view"},
                    )
                )
            except Exception:
                pass
        return _ANSI_TYPES.get(data_type, "VARCHAR")

    def string_literal(value: str) -> str:
        escape = caps.escape_literal
        literal = escape(value) if escape is not None else None
        return literal if isinstance(literal, str) else ansi_string_literal(value)

    return SqlDialect(
        quote_identifier=sql_client.escape_column_name,
        qualify_table=sql_client.make_qualified_table_name,
        string_literal=string_literal,
        type_name=type_name,
    )


def create_wide_views(pipeline: dlt.Pipeline) -> list[str]:
    """(Re)create one ``pipeline_<name>`` view per Streak pipeline; returns the view names.

    Reads ``pipelines`` and ``pipeline_fields`` from the pipeline's dataset, drops views named
    ``pipeline_*`` that no pipeline claims any more, and drops + creates every view in one
    transaction, so readers see the old set or the new one. A destination without a persistent SQL
    engine (filesystem, vector stores) gets no views and one log line.
    """
    sql_client = _sql_client_or_none(pipeline)
    if sql_client is None:
        return []
    with sql_client as client:
        if not client.has_dataset():
            logger.warning("No wide views: dataset %s does not exist yet", client.dataset_name)
            return []
        dialect = dialect_for_sql_client(client)
        tables = _dataset_tables(client)
        views = {name for name, is_view in tables.items() if is_view}
        base_tables = {name for name, is_view in tables.items() if not is_view}
        columns = _dataset_columns(client, (BOXES, STAGES, BOX_FIELD_VALUES, PIPELINES, PIPELINE_FIELDS))

        if not _has_columns(columns, BOXES, "box_key", "pipeline_key") or not _has_columns(
            columns, PIPELINES, "pipeline_key"
        ):
            logger.warning("No wide views: `boxes` or `pipelines` is missing from the dataset")
            plans: list[WideViewPlan] = []
        else:
            pipelines = _read_rows(client, PIPELINES, ("pipeline_key", "name"), columns)
            fields = _read_rows(
                client,
                PIPELINE_FIELDS,
                ("pipeline_key", "field_key", "name", "type", "field_order"),
                columns,
            )
            reserved = base_tables | {_casefold(client, t) for t in _schema_table_names(pipeline)}
            numeric_text = _numeric_text_fields(client, columns)
            plans = plan_wide_views(
                pipelines,
                fields,
                _naming(pipeline),
                reserved_names=reserved,
                max_identifier_bytes=min(
                    MAX_IDENTIFIER_BYTES,
                    client.capabilities.max_identifier_length or MAX_IDENTIFIER_BYTES,
                ),
                numeric_text_fields=numeric_text,
            )

        planned_names = [_casefold(client, plan.view_name) for plan in plans]
        statements = [drop_view_sql(name, dialect) for name in stale_view_names(views, planned_names)]
        for plan in plans:
            statements.extend(wide_view_sql(plan, dialect, columns))
        if statements:
            with client.begin_transaction():
                for statement in statements:
                    client.execute_sql(statement)
    return [plan.view_name for plan in plans]


def _numeric_text_fields(client: SqlClientBase[Any], columns: Mapping[str, Collection[str]]) -> set[tuple[str, str]]:
    """(pipeline_key, field_key) of TEXT_INPUT fields whose every loaded value is a number."""
    if not _has_columns(columns, BOX_FIELD_VALUES, "pipeline_key", "field_key", "field_type", "value_number"):
        return set()
    table = client.make_qualified_table_name(BOX_FIELD_VALUES)
    rows = client.execute_sql(
        f"SELECT pipeline_key, field_key FROM {table} WHERE field_type = 'TEXT_INPUT' "
        "GROUP BY pipeline_key, field_key HAVING COUNT(*) = COUNT(value_number)"
    )
    return {(str(pipeline_key), str(field_key)) for pipeline_key, field_key in rows or []}


def drop_wide_views(pipeline: dlt.Pipeline) -> list[str]:
    """Drop every ``pipeline_*`` view of the dataset; returns the dropped names.

    Needed only before a load that DROPs tables on Postgres (``staging-optimized`` replace, a
    ``refresh`` that drops tables): Postgres refuses to drop a table a view depends on.
    ``truncate-and-insert`` and ``insert-from-staging`` work with the views in place.
    """
    sql_client = _sql_client_or_none(pipeline)
    if sql_client is None:
        return []
    with sql_client as client:
        if not client.has_dataset():
            return []
        dialect = dialect_for_sql_client(client)
        stale = stale_view_names((n for n, is_view in _dataset_tables(client).items() if is_view), ())
        if stale:
            with client.begin_transaction():
                for name in stale:
                    client.execute_sql(drop_view_sql(name, dialect))
    return stale


def _sql_client_or_none(pipeline: dlt.Pipeline) -> SqlClientBase[Any] | None:
    from dlt.common.destination.exceptions import SqlClientNotAvailable

    try:  # duckdb-backed readers over files; absent when duckdb is not installed
        from dlt.destinations.impl.duckdb.sql_client import WithTableScanners
    except ImportError:
        WithTableScanners = ()  # type: ignore[misc,assignment]
    reason = "wide views need a SQL destination (DuckDB, Postgres, a warehouse)"
    if pipeline.destination is None:
        logger.warning("No wide views: pipeline %s has no destination; %s", pipeline.pipeline_name, reason)
        return None
    try:
        client = pipeline.sql_client()
    except SqlClientNotAvailable:
        client = None
    # filesystem & co. answer SQL through a throwaway in-memory DuckDB: a view there would vanish
    if client is None or isinstance(client, WithTableScanners):
        logger.warning(
            "No wide views: destination %s is not a SQL database; %s",
            pipeline.destination.destination_name,
            reason,
        )
        return None
    return client


def _naming(pipeline: dlt.Pipeline) -> Callable[[str], str]:
    if pipeline.default_schema_name:
        return pipeline.default_schema.naming.normalize_identifier
    from dlt.common.normalizers.naming.snake_case import NamingConvention

    return NamingConvention().normalize_identifier


def _schema_table_names(pipeline: dlt.Pipeline) -> list[str]:
    if not pipeline.default_schema_name:
        return []
    return list(pipeline.default_schema.tables.keys())


def _casefold(client: SqlClientBase[Any], name: str) -> str:
    return client.capabilities.casefold_identifier(name)


def _info_schema(client: SqlClientBase[Any], table: str) -> str:
    qualify = getattr(client, "_qualify_info_schema_table_name", None)
    return qualify(table) if callable(qualify) else f"INFORMATION_SCHEMA.{table}"


def _schema_filter(client: SqlClientBase[Any]) -> tuple[str, list[str]]:
    schema_name = client.make_qualified_table_name_path(None, quote=False)[-1]
    catalog = client.catalog_name(quote=False)
    if catalog is None:
        return "table_schema = %s", [schema_name]
    return "table_catalog = %s AND table_schema = %s", [catalog, schema_name]


def _dataset_tables(client: SqlClientBase[Any]) -> dict[str, bool]:
    """{table or view name: is it a view} for the dataset, names as the destination stores them."""
    where, params = _schema_filter(client)
    rows = client.execute_sql(
        f"SELECT table_name, table_type FROM {_info_schema(client, 'TABLES')} WHERE {where}", *params
    )
    return {str(name): "VIEW" in str(kind).upper() for name, kind in rows or []}


def _dataset_columns(client: SqlClientBase[Any], tables: Sequence[str]) -> dict[str, set[str]]:
    """{logical table name: its columns (lower case)} for the tables that exist."""
    where, params = _schema_filter(client)
    rows = client.execute_sql(
        f"SELECT table_name, column_name FROM {_info_schema(client, 'COLUMNS')} WHERE {where}", *params
    )
    by_stored = {_casefold(client, t).lower(): t for t in tables}
    columns: dict[str, set[str]] = {}
    for table_name, column_name in rows or []:
        logical = by_stored.get(str(table_name).lower())
        if logical is not None:
            columns.setdefault(logical, set()).add(str(column_name).lower())
    return columns


def _has_columns(columns: Mapping[str, Collection[str]], table: str, *names: str) -> bool:
    return table in columns and all(name in columns[table] for name in names)


def _read_rows(
    client: SqlClientBase[Any],
    table: str,
    wanted: Sequence[str],
    columns: Mapping[str, Collection[str]],
) -> list[dict[str, Any]]:
    """``SELECT wanted FROM table``; columns the table lacks read as None, a missing table as []."""
    present = [name for name in wanted if name in columns.get(table, ())]
    if not present:
        return []
    select = ", ".join(client.escape_column_name(name) for name in present)
    rows = client.execute_sql(f"SELECT {select} FROM {client.make_qualified_table_name(table)}")
    result: list[dict[str, Any]] = []
    for row in rows or []:
        values = dict(zip(present, row))
        result.append({name: values.get(name) for name in wanted})
    return result
