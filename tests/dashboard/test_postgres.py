"""The dashboard on Postgres: the same configuration switch that moves the load moves the dashboard.

Needs a PostgreSQL server (STREAK_TEST_POSTGRES_URL, see .ci/run); skipped without one, failed
under STREAK_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timezone
from typing import Any

import pandas as pd
import pytest

from dashboards import queries
from dashboards.queries import Filters

from .conftest import MAIN_JOB, PAGES, REPO_ROOT, DemoDB, _clean_env, as_int, metric_values, new_app, open_page

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def _results(run: queries.Runner, f: Filters) -> dict[str, Any]:
    fields = queries.numeric_fields(run, f)
    value_field = fields["field_name"].iloc[0] if not fields.empty else None
    return {
        "pipelines": queries.pipelines(run),
        "owners": queries.owners(run),
        "counts": queries.overview_counts(run, f, NOW),
        "fields": fields,
        "funnel": queries.funnel(run, f, value_field),
        "status": queries.task_status_counts(run, f),
        "tasks": queries.open_tasks(run, f).sort_values("task_key").drop(columns=["due_date"]),
        "activity": queries.activity(run, f, "week"),
        "explorer": queries.explorer_boxes(run, f).sort_values("box_key"),
        "ageing": queries.ageing(run, f, NOW).sort_values("box_key")[["box_key", "stage_name", "days_in_stage"]],
        "labels": queries.field_labels(run, f.pipeline_key),
    }


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.reset_index(drop=True).astype(object)
    return frame.where(frame.notna(), None)


@pytest.mark.postgres
@pytest.mark.slow
def test_dashboard_reads_postgres_like_duckdb(postgres_warehouse: str, demo_db: DemoDB) -> None:
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
        assert any(queries.LOAD_COMMAND in info.value for info in at.info), title

    env = _clean_env(
        DESTINATION__WAREHOUSE__DESTINATION_TYPE="postgres",
        DESTINATION__WAREHOUSE__CREDENTIALS=postgres_warehouse,
        DLT_DATA_DIR=os.environ["DLT_DATA_DIR"],
        DLT_PROJECT_DIR=str(REPO_ROOT),
        SOURCES__STREAK__MAX_REQUESTS_PER_SECOND="200",
    )
    load = subprocess.run(
        [sys.executable, str(MAIN_JOB), "--demo", "--quiet"],
        env=env, cwd=str(REPO_ROOT), capture_output=True, text=True, timeout=240,
    )
    assert load.returncode == 0, load.stderr[-3000:]

    source = queries.resolve_source()
    assert source.kind == "dataset" and source.destination_type == "postgres"
    on_postgres, _ = queries.connect(source)
    assert on_postgres.dialect == "postgres"
    on_duckdb, _ = queries.open_duckdb(demo_db.path)
    try:
        biggest = str(queries.pipelines(on_duckdb).sort_values("boxes")["pipeline_key"].iloc[-1])
        for f in (Filters(), Filters(pipeline_key=biggest, owners=(queries.UNASSIGNED,))):
            expected, got = _results(on_duckdb, f), _results(on_postgres, f)
            for name, value in expected.items():
                if isinstance(value, pd.DataFrame):
                    pd.testing.assert_frame_equal(
                        _plain(got[name]), _plain(value), check_dtype=False, obj=name, rtol=1e-6
                    )
                else:
                    assert got[name] == value, name
        boxes = queries.overview_counts(on_duckdb, Filters(), NOW)["boxes"]
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
