"""The dashboard on Postgres: the same configuration switch that moves the load moves the dashboard.

Needs a PostgreSQL server (STREAK_TEST_POSTGRES_URL, see .ci/run); skipped without one, failed
under STREAK_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import psycopg2
import pytest

import streak_clock
from dashboards.app_pages import (
    activity_queries,
    ageing_queries,
    changes_queries,
    events_queries,
    explorer_queries,
    funnel_queries,
    overview_queries,
    tasks_queries,
    velocity_queries,
)
from dashboards.data import closed, connection, filters, freshness, history, lookups
from dashboards.data.filters import Filters
from dashboards.ui.context import LOAD_COMMAND
from streak_source.sandbox import DEMO_SETTINGS

from . import accounts
from .conftest import (
    MAIN_JOB,
    PAGES,
    REPO_ROOT,
    DemoDB,
    _clean_env,
    as_int,
    metric_values,
    new_app,
    open_page,
)

NOW = streak_clock.now().replace(microsecond=0)


def _results(run: connection.Runner, f: Filters) -> dict[str, Any]:
    fields = funnel_queries.numeric_fields(run, f)
    value_field = (str(fields["pipeline_key"].iloc[0]), str(fields["field_key"].iloc[0])) if not fields.empty else None
    return {
        "pipelines": lookups.pipelines(run),
        "owners": lookups.owners(run),
        "counts": overview_queries.overview_counts(run, f, NOW),
        "activity_totals": activity_queries.activity_totals(run, f),
        "fields": fields,
        "funnel": funnel_queries.funnel(run, f, value_field),
        "status": tasks_queries.task_status_counts(run, f),
        "tasks": tasks_queries.open_tasks(run, f).sort_values("task_key").drop(columns=["due_date"]),
        "activity": activity_queries.activity(run, f, "week"),
        "explorer": explorer_queries.explorer_boxes(run, f).sort_values("box_key"),
        "ageing": ageing_queries.ageing(run, f, NOW).sort_values("box_key")[["box_key", "stage_name", "days_in_stage"]],
        "labels": explorer_queries.column_labels(run, f.pipeline_key),
        "assignees": _sorted(tasks_queries.open_task_assignees(run, f), ["task_key", "assignee_id"]),
        "loads": freshness.last_load(run).loads,
        "account defaults": lookups.account_defaults(run),
        **_velocity_and_events(run, f),
    }


def _velocity_and_events(run: connection.Runner, f: Filters) -> dict[str, Any]:
    """The Velocity and Events queries (percentiles, epoch arithmetic, JSON properties)."""
    stats = velocity_queries.time_in_stage(run, f, True)
    out: dict[str, Any] = {"weekly": velocity_queries.weekly_entries(run, f, False)}
    for exact in (True, False):
        out[f"counts {exact}"] = velocity_queries.velocity_counts(run, f, exact)
        out[f"in stage {exact}"] = velocity_queries.time_in_stage(run, f, exact)
    for pipeline, group in stats.groupby("pipeline_key"):
        keys = group["stage_key"].tolist()
        for exact in (True, False):
            out[f"conv {pipeline} {exact}"] = velocity_queries.conversion(run, f, pipeline, keys[0], keys[-1], exact)
            out[f"created {pipeline} {exact}"] = velocity_queries.creation_to_stage(run, f, pipeline, keys[-1], exact)
    out["events"] = events_queries.events_summary(run, f)
    out["over time"] = events_queries.events_over_time(run, f, "week")
    out["dims"] = events_queries.event_dimensions(run, f, "Offer made").sort_values(["pipeline_key", "owner"])
    out["keys"] = events_queries.property_keys(run, f, "Payment received")
    out["values"] = events_queries.property_values(run, f, "Offer made", "currency")
    for spec in (
        events_queries.Metric("Offer made", property_key="currency", property_value="EUR", sum_property="amount"),
        events_queries.Metric("Payment received", sum_property="amount"),
        events_queries.Metric("Tag added", owner=events_queries.NO_BOX),
    ):
        result = events_queries.metric(run, f, spec, "month")
        out[f"metric {spec}"] = {k: v for k, v in result.items() if k != "series"}
        out[f"series {spec}"] = result["series"]
    out["latest"] = events_queries.latest_events(run, f)
    return out


HISTORY_TABLES = ("load_history", "boxes_history", "box_field_values_history", "box_tasks_history")
"""What the Changes page, the pipeline over time and a box's past read (issue 23 #7)."""


def _history_results(run: connection.Runner, f: Filters) -> dict[str, Any]:
    """The history-mode queries between the last two loads, over time, and the past of a deleted box."""
    loads = history.history_loads(run)
    assert loads is not None and len(loads) >= 2
    earlier, later = loads["run_id"].iloc[-2], loads["run_id"].iloc[-1]
    out: dict[str, Any] = {"loads": loads}
    for query in changes_queries.LISTS:
        out[query.__name__] = query(run, f, earlier, later)
    fields = funnel_queries.numeric_fields(run, f)
    value_field = (str(fields["pipeline_key"].iloc[0]), str(fields["field_key"].iloc[0])) if not fields.empty else None
    out["over time"] = funnel_queries.pipeline_over_time(run, f, value_field)
    gone = changes_queries.deleted(run, Filters(), earlier, later)["box_key"].iloc[0]
    out["box past"] = explorer_queries.box_versions(run, gone)
    out["box values"] = explorer_queries.box_field_versions(run, gone)
    return out


def _sorted(frame: pd.DataFrame | None, by: list[str]) -> pd.DataFrame | None:
    return None if frame is None else frame.sort_values(by).reset_index(drop=True)


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.reset_index(drop=True).astype(object)
    return frame.where(frame.notna(), None)


def _compare(expected: dict[str, Any], got: dict[str, Any]) -> None:
    for name, value in expected.items():
        if isinstance(value, dict):
            assert got[name].keys() == value.keys(), name
            for key, item in value.items():
                assert got[name][key] == (pytest.approx(item) if isinstance(item, float) else item), (name, key)
        elif isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(_plain(got[name]), _plain(value), check_dtype=False, obj=name, rtol=1e-6)
        else:
            assert got[name] == value, name


@pytest.mark.postgres
@pytest.mark.slow
def test_dashboard_reads_postgres_like_duckdb(
    postgres_warehouse: str, demo_db: DemoDB, history_db: Path, tmp_path: Path
) -> None:
    """Load the demo account into Postgres with the main job; every query and page must agree.

    The demo account is deterministic (same seed and day), so the Postgres copy must give the
    numbers the DuckDB copy gives, query for query.
    """
    # Before any load the database is empty: the dashboard says how to load, on every page.
    at = new_app().run()
    for url_path, title in PAGES:
        if url_path:
            at = open_page(at, url_path)
        assert not at.exception, [e.value for e in at.exception]
        assert any(LOAD_COMMAND in info.value for info in at.info), title

    env = _clean_env(
        DESTINATION__WAREHOUSE__DESTINATION_TYPE="postgres",
        DESTINATION__WAREHOUSE__CREDENTIALS=postgres_warehouse,
        DLT_DATA_DIR=os.environ["DLT_DATA_DIR"],
        DLT_PROJECT_DIR=str(REPO_ROOT),
        SOURCES__STREAK__MAX_REQUESTS_PER_SECOND="200",
    )
    load = subprocess.run(
        [sys.executable, str(MAIN_JOB), "--demo", "--demo-date", demo_db.day0, "--quiet"],
        env=env, cwd=str(REPO_ROOT), capture_output=True, text=True, timeout=240,
    )
    assert load.returncode == 0, load.stderr[-3000:]

    # Stage history and events, hand-built (accounts.py), the same rows in both destinations.
    rich = accounts.copy_db(demo_db.path, tmp_path / "rich.duckdb")
    accounts.add_history(rich)
    accounts.add_events(rich)
    accounts.copy_tables_to_postgres(rich, postgres_warehouse, ("box_stage_history", "events"))

    source = connection.resolve_source()
    assert source.kind == "dataset" and source.destination_type == "postgres"
    on_postgres, _ = connection.connect(source)
    assert on_postgres.dialect == "postgres"
    on_duckdb, _ = connection.open_duckdb(rich)
    try:
        biggest = str(lookups.pipelines(on_duckdb).sort_values("boxes")["pipeline_key"].iloc[-1])
        for f in (
            Filters(),
            Filters(pipeline_key=biggest, owners=(filters.UNASSIGNED,)),
            Filters(closed_stage_keys=closed.closed_keys(("won", "lost", "hired", "rejected"), lookups.stage_refs(on_duckdb))),
        ):
            _compare(_results(on_duckdb, f), _results(on_postgres, f))
        boxes = overview_queries.overview_counts(on_duckdb, Filters(), NOW)["boxes"]
        # Not vacuous: Postgres read the hand-built history and events (JSON sums included).
        assert velocity_queries.velocity_counts(on_postgres, Filters(), True)["measured"] > 0
        assert events_queries.metric(on_postgres, Filters(), events_queries.Metric("Payment received", sum_property="amount"), "week")["value"] > 0
        assert events_queries.property_keys(on_postgres, Filters(), "Payment received")["numbers"].sum() > 0
        assert lookups.account_defaults(on_postgres) == dict(DEMO_SETTINGS)  # the demo load recorded its closed stages
    finally:
        on_duckdb.close()

    # History mode: the two-load history (history_db) in both, next to the same copy of the demo.
    with_history = accounts.copy_db(rich, tmp_path / "with_history.duckdb")
    with duckdb.connect(str(with_history)) as con:
        con.execute(f"ATTACH '{history_db}' AS later (READ_ONLY)")
        for table in HISTORY_TABLES:
            con.execute(f"CREATE OR REPLACE TABLE crm.{table} AS SELECT * FROM later.crm.{table}")
    with psycopg2.connect(postgres_warehouse) as pg, pg.cursor() as cur:
        cur.execute("DROP VIEW IF EXISTS crm.deletions")  # over the tables replaced next
    pg.close()
    accounts.copy_tables_to_postgres(history_db, postgres_warehouse, HISTORY_TABLES)
    on_duckdb, _ = connection.open_duckdb(with_history)
    try:
        for f in (Filters(), Filters(pipeline_key=biggest, owners=(filters.UNASSIGNED,)),
                  Filters(closed_stage_keys=closed.closed_keys(("won", "lost", "hired", "rejected"),
                                                                lookups.stage_refs(on_duckdb)))):
            expected = _history_results(on_duckdb, f)
            _compare(expected, _history_results(on_postgres, f))
        assert all(len(expected[query.__name__]) for query in changes_queries.LISTS[:3])  # not vacuous
    finally:
        on_duckdb.close()

    at = new_app().run()
    assert as_int(metric_values(at)["Boxes"]) == boxes
    assert "postgres" in " ".join(c.value for c in at.sidebar.caption)
    for url_path, title in PAGES:
        if url_path:
            at = open_page(at, url_path)
        assert not at.exception, [e.value for e in at.exception]
        assert [t.value for t in at.title] == [title]
        assert not at.error and not at.warning
