"""The source used as a library, in a user's own dlt pipeline (issue 21): every column of every
resource is typed, so dlt never warns that a column "did not receive any data" and could not be
typed, whatever the account holds and whichever resources are picked."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import dlt
import pytest

from streak_source import streak_source
from streak_source.columns import TABLE_COLUMNS
from streak_source.sandbox import Sandbox

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def dlt_warnings() -> Iterator[list[str]]:
    """Every warning dlt logs or raises while the test runs (dlt's logger does not propagate)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append  # type: ignore[method-assign]
    dlt_logger = logging.getLogger("dlt")
    dlt_logger.addHandler(handler)
    messages: list[str] = []
    try:
        import warnings

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield messages
    finally:
        dlt_logger.removeHandler(handler)
    messages.extend(record.getMessage() for record in records)
    messages.extend(str(warning.message) for warning in caught if "dlt" in warning.filename)


def untyped_columns(pipeline: Any) -> dict[str, list[str]]:
    """Columns the pipeline's schema holds without a data type, per table."""
    found = {}
    for table in pipeline.default_schema.data_tables(include_incomplete=True):
        untyped = [name for name, column in table["columns"].items() if not column.get("data_type")]
        if untyped:
            found[table["name"]] = untyped
    return found


def run_as_a_user_would(dlt_isolated: Any, sandbox: Sandbox, name: str, *resources: str) -> Any:
    pipeline = dlt.pipeline(pipeline_name=name, destination=dlt.destinations.duckdb(str(dlt_isolated.root / "own.duckdb")),
                            dataset_name="my_crm")
    source = streak_source(api_key=sandbox.api_key, base_url=sandbox.base_url, max_requests_per_second=500)
    pipeline.run(source.with_resources(*resources) if resources else source)
    return pipeline


def test_a_few_resources_in_a_users_own_pipeline_load_without_a_warning(dlt_isolated: Any, dlt_warnings: list[str],
                                                                        ) -> None:
    """The issue's case: tasks' ``actions`` and ``meeting_key`` are NULL in every row of the account."""
    with Sandbox(boxes=12, seed=3) as sb:
        pipeline = run_as_a_user_would(dlt_isolated, sb, "own_few", "boxes", "box_tasks", "box_meetings", "users")
    with pipeline.sql_client() as client:
        columns = {row[0] for row in client.execute_sql(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'my_crm' "
            "AND table_name = 'box_tasks'")}
    assert {"actions", "meeting_key"} <= columns
    assert untyped_columns(pipeline) == {}
    assert dlt_warnings == []


@pytest.mark.parametrize("account", ["default", "hostile"])
def test_the_whole_source_loads_every_declared_column_typed_and_without_a_warning(
    dlt_isolated: Any, dlt_warnings: list[str], account: str
) -> None:
    with Sandbox(boxes=20, seed=5, account=account) as sb:
        pipeline = run_as_a_user_would(dlt_isolated, sb, f"own_{account}")
    assert untyped_columns(pipeline) == {}
    assert dlt_warnings == []
    schema = pipeline.default_schema
    tables = {table["name"] for table in schema.data_tables()}
    # Kept for refreshes only: the stamp has no row; the children's table is created empty (its schema
    # is materialized so that it carries the run's parquet format, streak_source/resources.py).
    assert set(TABLE_COLUMNS) - tables == {"refresh_basis"}
    assert "refresh_basis_children" in tables
    with pipeline.sql_client() as client:
        assert client.execute_sql(
            f"SELECT count(*) FROM {client.make_qualified_table_name('refresh_basis_children')}")[0][0] == 0
    for table, declared in TABLE_COLUMNS.items():
        if table not in tables:
            continue
        loaded = schema.get_table_columns(table)
        assert {name: loaded[name].get("data_type") for name in declared} == {
            name: column["data_type"] for name, column in declared.items()}, table
        variants = [name for name in loaded if "__v_" in name]
        assert account == "hostile" or not variants, (table, variants)
    if account == "hostile":  # the hostile account has records no key can be found for
        assert set(schema.get_table_columns("rejected_records")) - {"_dlt_load_id", "_dlt_id"} == {
            "table_name", "reason", "raw_json", "parent_key"}


def test_a_row_is_made_ready_to_load() -> None:
    """NULLs are left out (declared columns stay NULL, undeclared ones are not created); a float too
    large for a 64-bit integer becomes text rather than failing the load; JSON values are untouched."""
    from streak_source.columns import ready_to_load

    row = {"meetingKey": None, "duration": 1e308, "freshness": 0.5, "size": -(2.0**63), "count": 2**62,
           "nested": {"k": None, "big": 1e308}, "inf": float("inf")}
    assert ready_to_load(row) == {"duration": "1e+308", "freshness": 0.5, "size": "-9.223372036854776e+18",
                                  "count": 2**62, "nested": {"k": None, "big": 1e308}, "inf": float("inf")}
