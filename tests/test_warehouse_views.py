"""Wide views on real databases: the ``wide_view_columns`` mapping table, readable ASCII names, and
TEXT_INPUT columns typed by the SQL rule (issue 11: "the wide-view plan as data", defects 2 and 9).

Regressions: no mapping table existed (the dashboard imported the loader's planner); "Partnerships 🤝"
became ``pipeline_partnershipsx`` and "Région / 地域" ``r_gionx``; a text field of numbers such as
"119,500 €" was a VARCHAR column.
"""

from __future__ import annotations

import uuid
from typing import Any

import dlt
import pytest

from streak_warehouse.views import create_wide_views
from tests.test_views import account, load, query, view_columns

BOTH = ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)]
MAPPING_COLUMNS = ["view_name", "pipeline_key", "pipeline_name", "column_name", "column_position", "field_key",
                   "display_name", "field_type", "data_type"]


@pytest.fixture(params=BOTH)
def pipeline(request: pytest.FixtureRequest, dlt_isolated: Any) -> dlt.Pipeline:
    if request.param == "duckdb":
        destination: Any = dlt.destinations.duckdb(str(dlt_isolated.root / "v.duckdb"))
    else:
        destination = dlt.destinations.postgres(request.getfixturevalue("fresh_postgres_url"))
    return dlt.pipeline(pipeline_name=f"wh_views_{uuid.uuid4().hex[:8]}", destination=destination,
                        dataset_name="crm", pipelines_dir=str(dlt_isolated.pipelines_dir))


def hostile_account() -> dict[str, list[dict[str, Any]]]:
    tables = account(deal_name="Région / 地域")
    for row in tables["pipelines"]:
        if row["pipeline_key"] == "pS":
            row["name"] = "Partnerships 🤝"
    return tables


def test_readable_ascii_names_and_a_mapping_row_for_every_view_column(pipeline: dlt.Pipeline) -> None:
    load(pipeline, hostile_account())
    views = create_wide_views(pipeline)
    assert "pipeline_partnerships_handshake" in views
    columns = view_columns(pipeline, "pipeline_partnerships_handshake")
    assert "region_de_yu" in columns

    table_columns = [name for name, in query(
        pipeline, "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
        "ORDER BY ordinal_position", "crm", "wide_view_columns")]
    assert table_columns == MAPPING_COLUMNS
    mapping = query(pipeline, "SELECT view_name, column_name, column_position, field_key, display_name, field_type, "
                              "data_type, pipeline_name FROM crm.wide_view_columns ORDER BY view_name, column_position")
    for view in views:  # one row per column of every view, in the view's order, typed like the view
        rows = [r for r in mapping if r[0] == view]
        real = view_columns(pipeline, view)
        assert [r[1] for r in rows] == list(real) and [r[2] for r in rows] == list(range(1, len(real) + 1))
        assert [r[6] for r in rows] == list(real.values())
    by_column = {(r[0], r[1]): r for r in mapping}
    region = by_column[("pipeline_partnerships_handshake", "region_de_yu")]
    assert region[3:6] == ("1001", "Région / 地域", "TEXT_INPUT") and region[7] == "Partnerships 🤝"
    core = by_column[("pipeline_partnerships_handshake", "box_key")]
    assert core[3] is None and core[5] is None and core[4] == "Box key"


def test_a_text_field_is_numeric_exactly_when_every_value_has_a_number(pipeline: dlt.Pipeline) -> None:
    tables = account()
    # "Deal size" (1001): one value, a number; "Stage name" (1007, text "note"): not a number
    load(pipeline, tables)
    create_wide_views(pipeline)
    by_rule = dict(query(pipeline,
                         "SELECT field_key, CASE WHEN COUNT(*) = COUNT(value_number) THEN 'double' ELSE 'text' END "
                         "FROM crm.box_field_values WHERE field_type = 'TEXT_INPUT' AND pipeline_key = 'pS' "
                         "GROUP BY field_key"))
    typed = dict(query(pipeline, "SELECT field_key, data_type FROM crm.wide_view_columns "
                                 "WHERE field_type = 'TEXT_INPUT' AND view_name = 'pipeline_sales'"))
    assert {k: typed[k] for k in by_rule} == by_rule
    assert (by_rule["1001"], by_rule["1007"]) == ("double", "text")
    # sums in SQL; max is a number, not the string '42'
    assert query(pipeline, "SELECT SUM(deal_size), MAX(deal_size) FROM crm.pipeline_sales") == [(42.0, 42.0)]
    no_value = {k for k, t in typed.items() if k not in by_rule}
    assert all(typed[k] == "text" for k in no_value)  # a field without values: text, never a guess


def test_the_mapping_table_is_rewritten_with_the_views(pipeline: dlt.Pipeline) -> None:
    load(pipeline, account())
    create_wide_views(pipeline)
    load(pipeline, account(with_hiring=False))
    views = create_wide_views(pipeline)
    mapped = {name for name, in query(pipeline, "SELECT DISTINCT view_name FROM crm.wide_view_columns")}
    assert mapped == set(views) and "pipeline_hiring" not in mapped
