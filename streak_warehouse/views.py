"""Per-pipeline wide views (one row per box, one column per custom field) and their mapping table.

``box_field_values`` is long (one row per box and field), which is right for loading but not for
analysts, who think "the Sales pipeline has a Deal size column". After each load the main job calls
:func:`create_wide_views`, which creates one ``pipeline_<name>`` view per Streak pipeline and the
``wide_view_columns`` table: one row per column of every view (view, pipeline, column name and
position, field key, display name, field type, data type), so readers (the dashboard, a CSV export)
label columns from data instead of re-running the planner.

Two layers, so the SQL can be unit-tested without a database: pure :func:`wide_view_sql` and
:func:`mapping_rows` over a :class:`~streak_warehouse.naming.WideViewPlan` (names from
``naming.py``), and the thin executor :func:`create_wide_views`. Each view pivots
``box_field_values`` once (``GROUP BY box_key``, one ``CASE`` per field) instead of joining it once
per field: one scan whatever the number of fields.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from streak_warehouse.naming import (
    BOX_FIELD_VALUES,
    BOXES,
    CORE_COLUMN_NAMES,
    CORE_COLUMNS,
    MAX_IDENTIFIER_BYTES,
    STAGES,
    VIEW_PREFIX,
    WideViewPlan,
    plan_wide_views,
)
from streak_warehouse.sql import (
    SqlDialect,
    ansi_dialect,
    dataset_columns,
    dataset_relations,
    dialect_for_sql_client,
    sql_client_or_none,
)

if TYPE_CHECKING:
    import dlt
    from dlt.destinations.sql_client import SqlClientBase

__all__ = [
    "CORE_COLUMN_NAMES", "MAPPING_TABLE", "MAX_IDENTIFIER_BYTES", "ansi_dialect", "create_wide_views",
    "drop_wide_views", "mapping_rows", "plan_wide_views", "stale_view_names", "wide_view_sql",
]

logger = logging.getLogger(__name__)

PIPELINES: Final = "pipelines"
PIPELINE_FIELDS: Final = "pipeline_fields"
MAPPING_TABLE: Final = "wide_view_columns"
MAPPING_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("view_name", "text"), ("pipeline_key", "text"), ("pipeline_name", "text"), ("column_name", "text"),
    ("column_position", "bigint"), ("field_key", "text"), ("display_name", "text"), ("field_type", "text"),
    ("data_type", "text"),
)
"""The contract of ``wide_view_columns`` (plan.md): field_key/field_type NULL for core columns."""

# How the pivot folds one field's (single) value per box: Postgres has no max(boolean).
_AGGREGATE: Final[Mapping[str, str]] = {"bool": "BOOL_OR"}


def stale_view_names(existing_views: Collection[str], planned_view_names: Collection[str]) -> list[str]:
    """Views named ``pipeline_*`` that no current pipeline claims (deleted or renamed pipelines)."""
    keep = {name.lower() for name in planned_view_names}
    return sorted(
        name for name in existing_views if name.lower().startswith(VIEW_PREFIX) and name.lower() not in keep
    )


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
    pivot_ready = has(BOX_FIELD_VALUES, "box_key", "field_key")

    select: list[str] = []
    for core in CORE_COLUMNS:
        if core.table == BOXES and has(BOXES, core.source):
            expression = f"b.{q(core.source)}"
        elif core.table == STAGES and join_stages:
            expression = f"s.{q(core.source)}"
        else:
            expression = _typed_null(core.data_type, dialect)
        select.append(f"{expression} AS {q(core.name)}")

    pivoted: list[str] = []
    for index, view_field in enumerate(plan.fields, start=1):
        if pivot_ready and has(BOX_FIELD_VALUES, view_field.value_column):
            alias = q(f"c{index}")
            aggregate = _AGGREGATE.get(view_field.data_type, "MAX")
            pivoted.append(
                f"{aggregate}(CASE WHEN {q('field_key')} = {dialect.string_literal(view_field.field_key)}"
                f" THEN {q(view_field.value_column)} END) AS {alias}"
            )
            expression = f"v.{alias}"
        else:
            expression = _typed_null(view_field.data_type, dialect)
        select.append(f"{expression} AS {q(view_field.column_name)}")

    joins: list[str] = []
    if join_stages:
        joins.append(
            f"LEFT JOIN {dialect.qualify_table(STAGES)} AS s"
            f" ON s.{q('pipeline_key')} = b.{q('pipeline_key')}"
            f" AND s.{q('stage_key')} = b.{q('stage_key')}"
        )
    if pivoted:
        only_this_pipeline = (
            f"    WHERE {q('pipeline_key')} = {dialect.string_literal(plan.pipeline_key)}\n"
            if has(BOX_FIELD_VALUES, "pipeline_key") else ""
        )
        joins.append(
            f"LEFT JOIN (\n    SELECT {q('box_key')},\n"
            + ",\n".join(f"        {item}" for item in pivoted)
            + f"\n    FROM {dialect.qualify_table(BOX_FIELD_VALUES)}\n{only_this_pipeline}"
            f"    GROUP BY {q('box_key')}\n) AS v ON v.{q('box_key')} = b.{q('box_key')}"
        )

    lines = [
        f"CREATE VIEW {dialect.qualify_table(plan.view_name)} AS",
        "SELECT",
        ",\n".join(f"    {item}" for item in select),
        f"FROM {dialect.qualify_table(BOXES)} AS b",
        *joins,
        f"WHERE b.{q('pipeline_key')} = {dialect.string_literal(plan.pipeline_key)}",
    ]
    return [drop_view_sql(plan.view_name, dialect), "\n".join(lines)]


def mapping_rows(plans: Sequence[WideViewPlan]) -> list[dict[str, Any]]:
    """The ``wide_view_columns`` rows of ``plans``, in :data:`MAPPING_COLUMNS` order per row."""
    rows: list[dict[str, Any]] = []
    for plan in plans:
        position = 0
        for core in CORE_COLUMNS:
            position += 1
            rows.append(dict(view_name=plan.view_name, pipeline_key=plan.pipeline_key,
                             pipeline_name=plan.pipeline_name, column_name=core.name, column_position=position,
                             field_key=None, display_name=core.label, field_type=None, data_type=core.data_type))
        for view_field in plan.fields:
            position += 1
            rows.append(dict(view_name=plan.view_name, pipeline_key=plan.pipeline_key,
                             pipeline_name=plan.pipeline_name, column_name=view_field.column_name,
                             column_position=position, field_key=view_field.field_key,
                             display_name=view_field.field_name or view_field.column_name,
                             field_type=view_field.field_type, data_type=view_field.data_type))
    return rows


def mapping_table_sql(plans: Sequence[WideViewPlan], dialect: SqlDialect) -> list[str]:
    """Drop, create and fill ``wide_view_columns`` (values as escaped literals, 500 rows a statement)."""
    table = dialect.qualify_table(MAPPING_TABLE)
    columns = ", ".join(f"{dialect.quote_identifier(name)} {dialect.type_name(kind)}" for name, kind in MAPPING_COLUMNS)
    statements = [f"DROP TABLE IF EXISTS {table}", f"CREATE TABLE {table} ({columns})"]
    rows = mapping_rows(plans)
    names = ", ".join(dialect.quote_identifier(name) for name, _ in MAPPING_COLUMNS)
    for start in range(0, len(rows), 500):
        values = ",\n".join(
            "(" + ", ".join(_literal(row[name], kind, dialect) for name, kind in MAPPING_COLUMNS) + ")"
            for row in rows[start:start + 500]
        )
        statements.append(f"INSERT INTO {table} ({names}) VALUES\n{values}")
    return statements


def _literal(value: Any, data_type: str, dialect: SqlDialect) -> str:
    if value is None:
        return _typed_null(data_type, dialect)
    if data_type == "bigint":
        return str(int(value))
    return dialect.string_literal(str(value))


def _typed_null(data_type: str, dialect: SqlDialect) -> str:
    return f"CAST(NULL AS {dialect.type_name(data_type)})"


class _ColumnCheck:
    """``has(table, *columns)`` against the destination's real columns (case-insensitive)."""

    def __init__(self, available: Mapping[str, Collection[str]] | None) -> None:
        self._available = (
            None if available is None else {t.lower(): {c.lower() for c in cols} for t, cols in available.items()}
        )

    def __call__(self, table: str, *columns: str) -> bool:
        if self._available is None:
            return True
        present = self._available.get(table.lower())
        return present is not None and all(c.lower() in present for c in columns)


# --- executor ------------------------------------------------------------------------------------


def create_wide_views(pipeline: dlt.Pipeline) -> list[str]:
    """(Re)create one ``pipeline_<name>`` view per Streak pipeline and ``wide_view_columns``.

    Reads ``pipelines`` and ``pipeline_fields`` from the pipeline's dataset, drops views named
    ``pipeline_*`` that no pipeline claims any more, and writes every view and the mapping table in
    one transaction, so readers see the old set or the new one. A destination without a persistent
    SQL engine (filesystem, vector stores) gets no views and one log line. Returns the view names.
    """
    sql_client = sql_client_or_none(pipeline, "wide views")
    if sql_client is None:
        return []
    with sql_client as client:
        if not client.has_dataset():
            logger.warning("No wide views: dataset %s does not exist yet", client.dataset_name)
            return []
        dialect = dialect_for_sql_client(client)
        relations = dataset_relations(client)
        views = {name for name, is_view in relations.items() if is_view}
        columns = dataset_columns(client, (BOXES, STAGES, BOX_FIELD_VALUES, PIPELINES, PIPELINE_FIELDS))
        plans: list[WideViewPlan] = []
        if not (_has(columns, BOXES, "box_key", "pipeline_key") and _has(columns, PIPELINES, "pipeline_key")):
            logger.warning("No wide views: `boxes` or `pipelines` is missing from the dataset")
        else:
            fold = client.capabilities.casefold_identifier
            reserved = {name for name, is_view in relations.items() if not is_view}
            reserved |= {fold(t) for t in _schema_table_names(pipeline)} | {MAPPING_TABLE}
            plans = plan_wide_views(
                _read_rows(client, PIPELINES, ("pipeline_key", "name"), columns),
                _read_rows(client, PIPELINE_FIELDS, ("pipeline_key", "field_key", "name", "type", "field_order"),
                           columns),
                _naming(pipeline),
                reserved_names=reserved,
                max_identifier_bytes=min(MAX_IDENTIFIER_BYTES,
                                         client.capabilities.max_identifier_length or MAX_IDENTIFIER_BYTES),
                numeric_text_fields=_numeric_text_fields(client, columns),
            )
        planned = [client.capabilities.casefold_identifier(plan.view_name) for plan in plans]
        statements = [drop_view_sql(name, dialect) for name in stale_view_names(views, planned)]
        for plan in plans:
            statements.extend(wide_view_sql(plan, dialect, columns))
        statements.extend(mapping_table_sql(plans, dialect))
        with client.begin_transaction():
            for statement in statements:
                client.execute_sql(statement)
    return [plan.view_name for plan in plans]


def _numeric_text_fields(client: SqlClientBase[Any], columns: Mapping[str, Collection[str]]) -> set[tuple[str, str]]:
    """(pipeline_key, field_key) of TEXT_INPUT fields with at least one value and a ``value_number``
    in every value row: the typing rule of plan.md, decided in SQL so it follows the loader's parser."""
    if not _has(columns, BOX_FIELD_VALUES, "pipeline_key", "field_key", "field_type", "value_number"):
        return set()
    table = client.make_qualified_table_name(BOX_FIELD_VALUES)
    rows = client.execute_sql(
        f"SELECT pipeline_key, field_key FROM {table} WHERE field_type = 'TEXT_INPUT' "
        "GROUP BY pipeline_key, field_key HAVING COUNT(*) = COUNT(value_number)"
    )
    return {(str(pipeline_key), str(field_key)) for pipeline_key, field_key in rows or []}


def drop_wide_views(pipeline: dlt.Pipeline) -> list[str]:
    """Drop every ``pipeline_*`` view of the dataset; returns the dropped names.

    Needed only before a load that DROPs tables on Postgres (``staging-optimized`` replace):
    Postgres refuses to drop a table a view depends on.
    """
    sql_client = sql_client_or_none(pipeline, "wide views")
    if sql_client is None:
        return []
    with sql_client as client:
        if not client.has_dataset():
            return []
        dialect = dialect_for_sql_client(client)
        stale = stale_view_names([n for n, is_view in dataset_relations(client).items() if is_view], ())
        if stale:
            with client.begin_transaction():
                for name in stale:
                    client.execute_sql(drop_view_sql(name, dialect))
    return stale


def _naming(pipeline: dlt.Pipeline) -> Any:
    if pipeline.default_schema_name:
        return pipeline.default_schema.naming.normalize_identifier
    from dlt.common.normalizers.naming.snake_case import NamingConvention

    return NamingConvention().normalize_identifier


def _schema_table_names(pipeline: dlt.Pipeline) -> list[str]:
    return list(pipeline.default_schema.tables.keys()) if pipeline.default_schema_name else []


def _has(columns: Mapping[str, Collection[str]], table: str, *names: str) -> bool:
    return table in columns and all(name in columns[table] for name in names)


def _read_rows(
    client: SqlClientBase[Any], table: str, wanted: Sequence[str], columns: Mapping[str, Collection[str]]
) -> list[dict[str, Any]]:
    """``SELECT wanted FROM table``; columns the table lacks read as None, a missing table as []."""
    present = [name for name in wanted if name in columns.get(table, ())]
    if not present:
        return []
    select = ", ".join(client.escape_column_name(name) for name in present)
    rows = client.execute_sql(f"SELECT {select} FROM {client.make_qualified_table_name(table)}")
    return [{name: dict(zip(present, row)).get(name) for name in wanted} for row in rows or []]
