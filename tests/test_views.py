"""Per-pipeline wide views (streak_warehouse.views): the pure SQL builder, then real DuckDB/Postgres runs."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timezone
from typing import Any, Callable

import dlt
import pytest
import sqlglot
from dlt.common.normalizers.naming.snake_case import NamingConvention

from streak_source.field_values import (
    BOX_FIELD_VALUES_COLUMNS,
    NameLookups,
    box_field_value_rows,
    index_fields,
)
from streak_warehouse.views import (
    CORE_COLUMN_NAMES,
    MAX_IDENTIFIER_BYTES,
    ansi_dialect,
    create_wide_views,
    drop_wide_views,
    mapping_rows,
    plan_wide_views,
    stale_view_names,
    wide_view_sql,
)

SNAKE = NamingConvention().normalize_identifier


def identity(name: str) -> str:
    """A naming convention that keeps names as they are: lets nasty characters reach the quoting."""
    return name


def field(
    pipeline_key: str, field_key: str | None, name: Any, type_: str = "TEXT_INPUT", order: Any = None
) -> dict[str, Any]:
    return {
        "pipeline_key": pipeline_key,
        "field_key": field_key,
        "name": name,
        "type": type_,
        "field_order": order,
    }


def one_plan(
    fields: list[dict[str, Any]], normalize: Callable[[str], str] = SNAKE, name: str = "Sales"
) -> Any:
    [plan] = plan_wide_views([{"pipeline_key": "p1", "name": name}], fields, normalize)
    return plan


def field_columns(plan: Any) -> list[str]:
    return [f.column_name for f in plan.fields]


# --- naming ---------------------------------------------------------------------------------------


def test_view_and_columns_are_named_by_dlt_naming_convention() -> None:
    plan = one_plan(
        [field("p1", "1001", "Deal size"), field("p1", "1002", "Close Date", "DATE")], name="Sales EMEA"
    )
    assert plan.view_name == "pipeline_sales_emea"
    assert CORE_COLUMN_NAMES + tuple(field_columns(plan)) == CORE_COLUMN_NAMES + ("deal_size", "close_date")


def test_fields_follow_field_order_missing_orders_last_then_numeric_key() -> None:
    plan = one_plan(
        [
            field("p1", "1001", "c", order=None),
            field("p1", "1002", "b", order=2),
            field("p1", "1003", "a", order=1),
            field("p1", "999", "d", order=None),
            field("p1", "1004", "e", order="junk"),
        ]
    )
    assert field_columns(plan) == ["a", "b", "d", "c", "e"]


def test_fields_normalizing_alike_all_get_their_key_as_suffix() -> None:
    plan = one_plan(
        [field("p1", "1001", "Deal size"), field("p1", "1002", "deal-size"), field("p1", "1003", "Other")]
    )
    assert field_columns(plan) == ["deal_size_1001", "deal_size_1002", "other"]


def test_field_named_like_a_core_column_is_suffixed_and_core_column_kept() -> None:
    plan = one_plan([field("p1", "1001", "Stage Name"), field("p1", "1002", "BOX_KEY")])
    assert field_columns(plan) == ["stage_name_1001", "box_key_1002"]
    assert [row["column_name"] for row in mapping_rows([plan])][: len(CORE_COLUMN_NAMES)] == list(CORE_COLUMN_NAMES)


def test_collisions_are_case_insensitive_even_with_a_case_preserving_naming() -> None:
    plan = one_plan([field("p1", "1001", "Amount"), field("p1", "1002", "amount")], normalize=identity)
    assert field_columns(plan) == ["Amount_1001", "amount_1002"]


def test_suffixed_name_that_is_already_taken_gets_a_counter() -> None:
    # "x" clashes with "X", so both want x_<key>; a field literally named "x_7" already holds x_7
    plan = one_plan(
        [field("p1", "9", "x_7", order=0), field("p1", "7", "x", order=1), field("p1", "8", "X", order=2)]
    )
    assert field_columns(plan) == ["x_7", "x_7_2", "x_8"]


def test_blank_or_missing_field_names_fall_back_to_the_key() -> None:
    plan = one_plan([field("p1", "1001", ""), field("p1", "1002", None), field("p1", "1003", "   ")])
    assert field_columns(plan) == ["field_1001", "field_1002", "field_1003"]


def test_naming_convention_that_rejects_a_name_falls_back_to_the_key() -> None:
    def picky(name: str) -> str:
        if "!" in name:
            raise ValueError(name)
        return SNAKE(name)

    assert field_columns(
        one_plan([field("p1", "1001", "!!!"), field("p1", "1002", "ok")], normalize=picky)
    ) == [
        "field_1001",
        "ok",
    ]


def test_odd_field_keys_become_a_short_hash_in_suffixes() -> None:
    plan = one_plan([field("p1", "k'1", "Same"), field("p1", "k'2", "same")])
    names = field_columns(plan)
    assert all(name.startswith("same_") and len(name) == len("same_") + 8 for name in names)
    assert len(set(names)) == 2


def test_pipelines_with_the_same_name_all_get_a_stable_key_hash_suffix() -> None:
    pipelines = [
        {"pipeline_key": "pA", "name": "Sales"},
        {"pipeline_key": "pB", "name": "sales"},
        {"pipeline_key": "pC", "name": "Hiring"},
    ]
    names = [p.view_name for p in plan_wide_views(pipelines, [], SNAKE)]
    reversed_names = [p.view_name for p in plan_wide_views(list(reversed(pipelines)), [], SNAKE)]
    assert names == reversed_names  # independent of row order
    assert names[0] == "pipeline_hiring"
    assert all(n.startswith("pipeline_sales_") for n in names[1:]) and len(set(names)) == 3


def test_view_never_takes_the_name_of_a_dataset_table() -> None:
    [plan] = plan_wide_views(
        [{"pipeline_key": "p1", "name": "Fields"}], [], SNAKE, reserved_names=["PIPELINE_FIELDS"]
    )
    assert plan.view_name.startswith("pipeline_fields_") and plan.view_name != "pipeline_fields"


def test_pipeline_without_a_name_gets_a_key_hash() -> None:
    names = {
        p.pipeline_key: p.view_name
        for p in plan_wide_views(
            [
                {"pipeline_key": "p1", "name": None},
                {"pipeline_key": "p2", "name": "  "},
                {"pipeline_key": "p3"},
            ],
            [],
            SNAKE,
        )
    }
    assert all(name.startswith("pipeline_") and len(name) == len("pipeline_") + 8 for name in names.values())
    assert len(set(names.values())) == 3


def test_view_name_keeps_its_prefix_whatever_the_naming_convention_does() -> None:
    [plan] = plan_wide_views([{"pipeline_key": "p1", "name": "X"}], [], lambda name: name.split("_", 1)[1])
    assert plan.view_name == "pipeline_X"


def test_long_and_multibyte_names_fit_postgres_63_bytes_and_stay_distinct() -> None:
    long_a = "Quarterly revenue forecast adjusted for churn and expansion " * 2
    fields = [
        field("p1", "1001", long_a + "A"),
        field("p1", "1002", long_a + "B"),
        field("p1", "1003", "é" * 80),
    ]
    plan = one_plan(fields, normalize=identity, name="Ünïcödé pipeline " * 5)
    names = [plan.view_name, *field_columns(plan)]
    assert all(len(name.encode("utf-8")) <= MAX_IDENTIFIER_BYTES for name in names)
    assert len({n.lower() for n in names}) == len(names)
    assert plan.view_name.startswith("pipeline_")
    assert field_columns(one_plan(fields, normalize=identity)) == field_columns(plan)  # deterministic


def test_field_types_pick_the_typed_value_column() -> None:
    types = [
        "TEXT_INPUT",
        "DROPDOWN",
        "CHECKBOX",
        "DATE",
        "PERSON",
        "FORMULA",
        "TAG",
        "TEAM_CONTACT",
        "TEAM_ORGANIZATION",
        "NEW",
        "date",
    ]
    plan = one_plan([field("p1", str(1000 + i), t, t, i) for i, t in enumerate(types)])
    by_type = {f.field_type: f.value_column for f in plan.fields}
    assert by_type == {
        "TEXT_INPUT": "value_text",
        "DROPDOWN": "value_text",
        "CHECKBOX": "value_bool",
        "DATE": "value_timestamp",
        "PERSON": "value_text",
        "FORMULA": "value_number",
        "TAG": "value_text",
        "TEAM_CONTACT": "value_text",
        "TEAM_ORGANIZATION": "value_text",
        "NEW": "value_text",
        "date": "value_timestamp",
    }


def test_text_fields_whose_every_value_is_a_number_show_value_number() -> None:
    fields = [field("p1", "1001", "Deal size"), field("p1", "1002", "Region"), field("p1", "1003", "Code")]
    [plan] = plan_wide_views(
        [{"pipeline_key": "p1", "name": "Sales"}, {"pipeline_key": "p2", "name": "Other"}][:1],
        fields,
        SNAKE,
        numeric_text_fields={("p1", "1001"), ("p2", "1003")},  # p2's 1003 is another pipeline's field
    )
    by_key = {f.field_key: (f.value_column, f.data_type) for f in plan.fields}
    assert by_key == {
        "1001": ("value_number", "double"),
        "1002": ("value_text", "text"),
        "1003": ("value_text", "text"),
    }


def test_bad_rows_are_skipped_duplicates_keep_the_first_and_foreign_fields_ignored() -> None:
    plans = plan_wide_views(
        [
            {"pipeline_key": "p1", "name": "A"},
            {"pipeline_key": "p1", "name": "B"},
            {"pipeline_key": None, "name": "C"},
        ],
        [
            field("p1", "1", "first"),
            field("p1", "1", "second"),
            field("p1", None, "nokey"),
            field("p9", "2", "foreign"),
        ],
        SNAKE,
    )
    assert [(p.view_name, field_columns(p)) for p in plans] == [("pipeline_a", ["first"])]


def test_stale_views_are_the_unclaimed_pipeline_views_only() -> None:
    existing = ["pipeline_sales", "PIPELINE_OLD", "pipelines_report", "my_view", "pipeline_hiring"]
    assert stale_view_names(existing, ["pipeline_sales", "Pipeline_Hiring"]) == ["PIPELINE_OLD"]


# --- SQL ------------------------------------------------------------------------------------------


def test_sql_drops_then_creates_with_one_pivot_of_the_field_values() -> None:
    plan = one_plan([field("p1", "1001", "Deal size", order=0), field("p1", "1002", "Score", "FORMULA", 1),
                     field("p1", "1003", "Signed", "CHECKBOX", 2)])
    drop, create = wide_view_sql(plan, ansi_dialect("crm"))
    assert drop == 'DROP VIEW IF EXISTS "crm"."pipeline_sales"'
    assert create.startswith('CREATE VIEW "crm"."pipeline_sales" AS\nSELECT\n')
    assert 'FROM "crm"."boxes" AS b' in create
    stages_join = 'LEFT JOIN "crm"."stages" AS s ON s."pipeline_key" = b."pipeline_key"'
    assert stages_join + ' AND s."stage_key" = b."stage_key"' in create
    # one scan of box_field_values, grouped by box, one CASE per field (not one join per field)
    assert create.count('"crm"."box_field_values"') == 1
    assert 'GROUP BY "box_key"\n) AS v ON v."box_key" = b."box_key"' in create
    assert 'MAX(CASE WHEN "field_key" = E\'1001\' THEN "value_text" END) AS "c1"' in create
    assert 'MAX(CASE WHEN "field_key" = E\'1002\' THEN "value_number" END) AS "c2"' in create
    assert 'BOOL_OR(CASE WHEN "field_key" = E\'1003\' THEN "value_bool" END) AS "c3"' in create  # no max(bool) in PG
    assert 'WHERE "pipeline_key" = E\'p1\'\n    GROUP BY' in create
    assert 'v."c1" AS "deal_size"' in create and 'v."c2" AS "score"' in create
    assert 'b."name" AS "box_name"' in create and 's."stage_order" AS "stage_order"' in create
    assert create.rstrip().endswith("WHERE b.\"pipeline_key\" = E'p1'")
    assert create.index('AS "deal_size"') < create.index('AS "score"')


def test_nasty_names_and_keys_stay_inside_identifiers_and_literals() -> None:
    nasty_name = 'x"; DROP TABLE boxes; --'
    nasty_key = "1'; DROP TABLE boxes; --"
    [plan] = plan_wide_views(
        [{"pipeline_key": "p'1", "name": "Sales"}], [field("p'1", nasty_key, nasty_name)], identity
    )
    drop, create = wide_view_sql(plan, ansi_dialect("crm"))
    assert '"x""; DROP TABLE boxes; --"' in create
    assert "E'1''; DROP TABLE boxes; --'" in create
    assert "WHERE b.\"pipeline_key\" = E'p''1'" in create
    for statement, kind in ((drop, sqlglot.exp.Drop), (create, sqlglot.exp.Create)):
        for dialect in ("postgres", "duckdb"):
            parsed = sqlglot.parse(statement, read=dialect)
            assert len(parsed) == 1 and isinstance(parsed[0], kind)
    created = sqlglot.parse_one(create, read="postgres")
    aliases = [select.alias for select in created.expression.expressions]
    assert aliases[-1] == nasty_name


def test_missing_tables_and_columns_become_typed_nulls() -> None:
    plan = one_plan(
        [field("p1", "1001", "Signed", "CHECKBOX", 0), field("p1", "1002", "Deal", "TEXT_INPUT", 1)]
    )
    available = {
        "boxes": {"box_key", "pipeline_key", "name", "stage_key"},
        "box_field_values": {"box_key", "field_key", "value_text"},  # no CHECKBOX value anywhere
    }
    create = wide_view_sql(plan, ansi_dialect("crm"), available)[1]
    assert 'CAST(NULL AS BOOLEAN) AS "signed"' in create
    assert 'v."c2" AS "deal"' in create
    assert '"c1"' not in create  # nothing pivoted for a column that does not exist
    assert 'CAST(NULL AS BIGINT) AS "stage_order"' in create and '"stages"' not in create
    assert 'CAST(NULL AS TIMESTAMP WITH TIME ZONE) AS "creation_timestamp"' in create
    assert 'CAST(NULL AS VARCHAR) AS "owner_name"' in create

    no_values = wide_view_sql(plan, ansi_dialect("crm"), {"boxes": {"box_key", "pipeline_key"}})[1]
    assert '"box_field_values"' not in no_values
    assert 'CAST(NULL AS VARCHAR) AS "deal"' in no_values


def test_boxes_table_is_required() -> None:
    plan = one_plan([])
    with pytest.raises(ValueError, match="boxes"):
        wide_view_sql(plan, ansi_dialect("crm"), {"stages": {"stage_key"}})
    with pytest.raises(ValueError, match="pipeline_key"):
        wide_view_sql(plan, ansi_dialect("crm"), {"boxes": {"box_key"}})


def test_pipeline_without_fields_has_core_columns_only() -> None:
    create = wide_view_sql(one_plan([]), ansi_dialect("crm"))[1]
    assert "box_field_values" not in create
    assert create.count(' AS "') == len(CORE_COLUMN_NAMES)


# --- against real databases -----------------------------------------------------------------------

CREATED = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
CLOSE_MS = 1_700_000_000_000
NASTY_NAME = 'x"; DROP TABLE boxes; --'
NASTY_KEY = "1'9"


def sales_fields(deal_name: str = "Deal size") -> list[dict[str, Any]]:
    return [
        {"key": "1001", "name": deal_name, "type": "TEXT_INPUT"},
        {
            "key": "1002",
            "name": "Source",
            "type": "DROPDOWN",
            "dropdownSettings": {"items": [{"key": "9001", "name": "Inbound"}]},
        },
        {"key": "1003", "name": "Signed", "type": "CHECKBOX"},
        {"key": "1004", "name": "Close date", "type": "DATE"},
        {"key": "1005", "name": "Score", "type": "FORMULA"},
        {
            "key": "1006",
            "name": "Labels",
            "type": "TAG",
            "tagSettings": {"tags": [{"key": "9003", "tag": "Hot"}, {"key": "9004", "tag": "Big"}]},
        },
        {"key": "1007", "name": "Stage name", "type": "TEXT_INPUT"},
        {"key": NASTY_KEY, "name": NASTY_NAME, "type": "TEXT_INPUT"},
    ]


def account(deal_name: str = "Deal size", with_hiring: bool = True) -> dict[str, list[dict[str, Any]]]:
    """A tiny hand-made account, shaped like the source's tables; field values from the real decoder."""
    pipelines: list[dict[str, Any]] = [
        {"key": "pS", "name": "Sales", "fields": sales_fields(deal_name)},
        {"key": "pF", "name": "Fields", "fields": []},
    ]
    if with_hiring:
        pipelines.append({"key": "pH", "name": "Hiring", "fields": []})
    stages = [
        {"pipeline_key": "pS", "stage_key": "5001", "name": "Lead", "stage_order": 0},
        {"pipeline_key": "pS", "stage_key": "5002", "name": "Won", "stage_order": 1},
    ]
    raw_boxes: list[dict[str, Any]] = [
        {
            "boxKey": "b1",
            "pipelineKey": "pS",
            "name": "Acme",
            "stageKey": "5002",
            "fields": {
                "1001": 42,
                "1002": "9001",
                "1003": False,
                "1004": CLOSE_MS,
                "1005": 12.5,
                "1006": ["9004", "9003"],
                "1007": "note",
                NASTY_KEY: "careful",
            },
        },
        {
            "boxKey": "b2",
            "pipelineKey": "pS",
            "name": "Globex",
            "stageKey": "5001",
            "fields": {"1003": True, "1002": "9999", "1004": "soon"},
        },
        {"boxKey": "b3", "pipelineKey": "pS", "name": "Empty", "stageKey": "5001", "fields": {"1001": ""}},
        {"boxKey": "h1", "pipelineKey": "pH", "name": "Candidate", "stageKey": "5101", "fields": {}},
    ]
    fields_by_pipeline = {p["key"]: index_fields(p["fields"]) for p in pipelines}
    values = [
        row
        for box in raw_boxes
        for row in box_field_value_rows(box, fields_by_pipeline.get(box["pipelineKey"], {}), NameLookups())
    ]
    boxes = [
        {
            "box_key": box["boxKey"],
            "pipeline_key": box["pipelineKey"],
            "name": box["name"],
            "stage_key": box["stageKey"],
            "stage_name": {"5001": "Lead", "5002": "Won"}.get(box["stageKey"]),
            "owner_name": "Ada",
            "owner_email": "ada@x.io",
            "creation_timestamp": CREATED,
            "last_updated_timestamp": CREATED,
            "last_stage_change_timestamp": None,
            "fields": box["fields"],
        }
        for box in raw_boxes
    ]
    return {
        "pipelines": [{"pipeline_key": p["key"], "name": p["name"]} for p in pipelines],
        "pipeline_fields": [
            {
                "pipeline_key": p["key"],
                "field_key": f["key"],
                "name": f["name"],
                "type": f["type"],
                "field_order": i,
            }
            for p in pipelines
            for i, f in enumerate(p["fields"])
        ],
        "stages": stages,
        "boxes": boxes,
        "box_field_values": values,
    }


PRIMARY_KEYS: dict[str, Any] = {
    "pipelines": "pipeline_key",
    "pipeline_fields": ("pipeline_key", "field_key"),
    "stages": ("pipeline_key", "stage_key"),
    "boxes": "box_key",
    "box_field_values": ("box_key", "field_key"),
}
COLUMN_HINTS: dict[str, Any] = {
    "boxes": {
        "fields": {"data_type": "json"},
        "last_stage_change_timestamp": {"data_type": "timestamp", "nullable": True},
    },
    "box_field_values": BOX_FIELD_VALUES_COLUMNS,
}


def load(pipeline: dlt.Pipeline, tables: dict[str, list[dict[str, Any]]]) -> None:
    resources = [
        dlt.resource(
            rows,
            name=name,
            primary_key=PRIMARY_KEYS[name],
            write_disposition="replace",
            columns=COLUMN_HINTS.get(name, {}),
        )
        for name, rows in tables.items()
    ]
    pipeline.run(resources)


def query(pipeline: dlt.Pipeline, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with pipeline.sql_client() as client:
        return [tuple(row) for row in client.execute_sql(sql, *args) or []]


def view_columns(pipeline: dlt.Pipeline, view: str) -> dict[str, str]:
    rows = query(
        pipeline,
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
        pipeline.dataset_name,
        view,
    )
    return {name: TYPE_FAMILY.get(kind.lower(), kind.lower()) for name, kind in rows}


def dataset_views(pipeline: dlt.Pipeline) -> set[str]:
    rows = query(
        pipeline,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s AND table_type = 'VIEW'",
        pipeline.dataset_name,
    )
    return {name for (name,) in rows}


TYPE_FAMILY = {
    "varchar": "text",
    "character varying": "text",
    "text": "text",
    "double": "double",
    "double precision": "double",
    "boolean": "bool",
    "timestamp with time zone": "timestamp",
    "bigint": "bigint",
}


def assert_views_after_first_and_second_load(pipeline: dlt.Pipeline) -> None:
    """The same scenario on any SQL destination: create, query, rename a field, drop a pipeline."""
    load(pipeline, account())
    created = create_wide_views(pipeline)
    fields_view = next(name for name in created if name.startswith("pipeline_fields"))
    assert created == sorted(["pipeline_sales", "pipeline_hiring", fields_view])
    assert fields_view != "pipeline_fields"  # that name is the pipeline_fields table
    assert {"pipeline_sales", "pipeline_hiring", fields_view} <= dataset_views(pipeline)

    nasty_column = SNAKE(NASTY_NAME)
    assert view_columns(pipeline, "pipeline_sales") == {
        "box_key": "text",
        "box_name": "text",
        "stage_key": "text",
        "stage_name": "text",
        "stage_order": "bigint",
        "owner_name": "text",
        "owner_email": "text",
        "creation_timestamp": "timestamp",
        "last_updated_timestamp": "timestamp",
        "last_stage_change_timestamp": "timestamp",
        "deal_size": "double",  # TEXT_INPUT whose every value is a number
        "source": "text",
        "signed": "bool",
        "close_date": "timestamp",
        "score": "double",
        "labels": "text",
        "stage_name_1007": "text",
        nasty_column: "text",
    }
    rows = query(
        pipeline,
        "SELECT box_key, box_name, stage_name, stage_order, deal_size, source, signed, close_date, score,"
        f" labels, stage_name_1007, {nasty_column} FROM {pipeline.dataset_name}.pipeline_sales ORDER BY box_key",
    )
    assert [row[:4] for row in rows] == [
        ("b1", "Acme", "Won", 1),
        ("b2", "Globex", "Lead", 0),
        ("b3", "Empty", "Lead", 0),
    ]
    b1, b2, b3 = rows
    assert b1[4:] == (
        42.0,
        "Inbound",
        False,
        datetime(2023, 11, 14, 22, 13, 20, tzinfo=timezone.utc),
        12.5,
        "Big, Hot",
        "note",
        "careful",
    )
    assert b2[4:] == (
        None,
        "9999",
        True,
        None,
        None,
        None,
        None,
        None,
    )  # deleted option keeps its key; "soon" is no date
    assert b3[4:] == (None,) * 8
    assert query(pipeline, f"SELECT count(*) FROM {pipeline.dataset_name}.pipeline_hiring") == [(1,)]
    assert query(pipeline, f"SELECT count(*) FROM {pipeline.dataset_name}.boxes") == [
        (4,)
    ]  # the nasty name did nothing

    # second run: the deal field is renamed and the Hiring pipeline is gone
    load(pipeline, account(deal_name="Deal amount", with_hiring=False))
    assert create_wide_views(pipeline) == sorted(["pipeline_sales", fields_view])
    assert "pipeline_hiring" not in dataset_views(pipeline)
    columns = view_columns(pipeline, "pipeline_sales")
    assert "deal_amount" in columns and "deal_size" not in columns
    assert query(
        pipeline, f"SELECT deal_amount FROM {pipeline.dataset_name}.pipeline_sales WHERE box_key = 'b1'"
    ) == [(42.0,)]

    assert sorted(drop_wide_views(pipeline)) == sorted(["pipeline_sales", fields_view])
    assert not {v for v in dataset_views(pipeline) if v.startswith("pipeline_")}


@pytest.fixture
def duckdb_pipeline(dlt_isolated: Any) -> dlt.Pipeline:
    """A pipeline into a DuckDB file in the test's temp dir, with the project's replace strategy."""
    return dlt.pipeline(
        pipeline_name=f"views_{uuid.uuid4().hex[:8]}",
        destination=dlt.destinations.duckdb(
            str(dlt_isolated.root / "t.duckdb"), replace_strategy="insert-from-staging"
        ),
        dataset_name="crm",
        pipelines_dir=str(dlt_isolated.pipelines_dir),
    )


def test_duckdb_views_created_queried_and_replaced(duckdb_pipeline: dlt.Pipeline) -> None:
    assert_views_after_first_and_second_load(duckdb_pipeline)


def test_duckdb_views_without_any_field_values_have_typed_null_columns(duckdb_pipeline: dlt.Pipeline) -> None:
    tables = account()
    del tables["box_field_values"]  # no box has a value: the table never gets created
    load(duckdb_pipeline, tables)
    assert "pipeline_sales" in create_wide_views(duckdb_pipeline)
    columns = view_columns(duckdb_pipeline, "pipeline_sales")
    assert (columns["deal_size"], columns["signed"], columns["close_date"], columns["score"]) == (
        "text",
        "bool",
        "timestamp",
        "double",
    )
    assert query(duckdb_pipeline, "SELECT count(*), count(deal_size) FROM crm.pipeline_sales") == [(3, 0)]


def test_no_views_on_a_filesystem_destination(dlt_isolated: Any, caplog: pytest.LogCaptureFixture) -> None:
    pipeline = dlt.pipeline(
        pipeline_name="views_fs",
        destination=dlt.destinations.filesystem(str(dlt_isolated.root / "bucket")),
        dataset_name="crm",
        pipelines_dir=str(dlt_isolated.pipelines_dir),
    )
    pipeline.run(dlt.resource([{"pipeline_key": "p1", "name": "Sales"}], name="pipelines"))
    with caplog.at_level(logging.WARNING, logger="streak_warehouse.sql"):
        assert create_wide_views(pipeline) == []
    messages = [r.getMessage() for r in caplog.records if r.name == "streak_warehouse.sql"]
    assert len(messages) == 1 and "not a SQL database" in messages[0]


def test_no_views_before_the_first_load(duckdb_pipeline: dlt.Pipeline) -> None:
    assert create_wide_views(duckdb_pipeline) == []


# --- Postgres (only when a server is reachable) ---------------------------------------------------


@pytest.fixture
def postgres_pipeline(dlt_isolated: Any, fresh_postgres_url: str) -> dlt.Pipeline:
    """A pipeline into a brand-new Postgres database (conftest: skipped when no server is reachable,
    failed instead under STREAK_REQUIRE_SERVICES=1); the project's atomic replace strategy."""
    return dlt.pipeline(
        pipeline_name=f"views_pg_{uuid.uuid4().hex[:8]}",
        destination=dlt.destinations.postgres(fresh_postgres_url, replace_strategy="insert-from-staging"),
        dataset_name="crm",
        pipelines_dir=str(dlt_isolated.pipelines_dir),
    )


@pytest.mark.postgres
def test_postgres_views_created_queried_and_replaced(postgres_pipeline: dlt.Pipeline) -> None:
    # also proves an insert-from-staging replace load runs with the views in place
    assert_views_after_first_and_second_load(postgres_pipeline)
