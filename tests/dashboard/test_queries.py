"""The dashboard's query functions against the demo account: every number re-derived independently.

The expected values come from plain SQL / pandas on the same DuckDB file (``sql`` fixture), never
from the functions under test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

import streak_clock
from dashboards.app_pages import (
    activity_queries,
    ageing_queries,
    explorer_queries,
    funnel_queries,
    overview_queries,
    tasks_queries,
)
from dashboards.data import connection, filters, freshness, lookups
from dashboards.data.filters import Filters

from .conftest import REPO_ROOT, DemoDB

NOW = streak_clock.now().replace(microsecond=0)
SQL = Callable[[str], pd.DataFrame]


@pytest.fixture
def run(demo_db: DemoDB) -> Iterator[connection.DuckDBRunner]:
    runner, tries = connection.open_duckdb(demo_db.path)
    assert tries == 1
    try:
        yield runner
    finally:
        runner.close()


@pytest.fixture
def boxes(sql: SQL) -> pd.DataFrame:
    return sql("SELECT * EXCLUDE (fields) FROM crm.boxes")


def _biggest_pipeline(sql: SQL) -> str:
    counts = sql("SELECT pipeline_key, COUNT(*) AS n FROM crm.boxes GROUP BY 1 ORDER BY 2 DESC")
    return str(counts["pipeline_key"].iloc[0])


# ---------------------------------------------------------------------------- the demo is real


def test_demo_account_has_what_the_pages_need(sql: SQL) -> None:
    """Guards the other tests against passing vacuously on an account without the shapes they test."""
    counts = sql(
        f"""
        SELECT (SELECT COUNT(*) FROM crm.boxes) AS boxes,
               (SELECT COUNT(DISTINCT pipeline_key) FROM crm.boxes) AS pipelines_with_boxes,
               (SELECT COUNT(*) FROM crm.box_tasks WHERE status = 'NOT_DONE' AND due_date < '{NOW.isoformat()}'::TIMESTAMPTZ) AS overdue,
               (SELECT COUNT(*) FROM crm.box_threads) AS threads,
               (SELECT COUNT(*) FROM crm.box_meetings) AS meetings,
               (SELECT COUNT(*) FROM crm.boxes WHERE owner_email IS NULL) AS unassigned
        """
    ).iloc[0]
    assert counts["boxes"] > 50
    assert counts["pipelines_with_boxes"] >= 2
    assert counts["overdue"] > 0
    assert counts["threads"] > 0 and counts["meetings"] > 0
    # The tables the pages read by contract (plan.md) come from the real load, not from a fixture.
    tables = set(sql("SELECT table_name FROM information_schema.tables WHERE table_schema = 'crm'")["table_name"])
    assert {"wide_view_columns", "box_task_assignees", "load_history"} <= tables


# ---------------------------------------------------------------------------- filter options


def test_pipelines_count_boxes_per_pipeline(run: connection.Runner, sql: SQL) -> None:
    expected = sql("SELECT pipeline_key, COUNT(*) AS n FROM crm.boxes GROUP BY 1")
    got = lookups.pipelines(run).set_index("pipeline_key")["boxes"]
    for row in expected.itertuples():
        assert got[row.pipeline_key] == row.n
    names = sql("SELECT pipeline_key, name FROM crm.pipelines")
    assert set(names["pipeline_key"]) <= set(got.index)  # empty pipelines are listed too


def test_owners_cover_every_box(run: connection.Runner, boxes: pd.DataFrame) -> None:
    owners = lookups.owners(run)
    assert owners["boxes"].sum() == len(boxes)
    unassigned = owners.loc[owners["owner_email"].isna(), "boxes"].sum()
    assert unassigned == boxes["owner_email"].isna().sum()


# ---------------------------------------------------------------------------- overview


def test_overview_counts_match_independent_sql(run: connection.Runner, sql: SQL, boxes: pd.DataFrame) -> None:
    counts = overview_queries.overview_counts(run, Filters(), NOW)
    tasks = sql("SELECT status, due_date FROM crm.box_tasks")
    due = pd.to_datetime(tasks["due_date"], utc=True)
    assert counts["boxes"] == len(boxes)
    assert counts["open_tasks"] == (tasks["status"] == "NOT_DONE").sum()
    assert counts["overdue_tasks"] == ((tasks["status"] == "NOT_DONE") & (due < pd.Timestamp(NOW))).sum()
    assert counts["overdue_tasks"] > 0
    totals = activity_queries.activity_totals(run, Filters())
    assert totals["Email threads"] == len(sql("SELECT thread_key FROM crm.box_threads"))
    assert totals["Comments"] == len(sql("SELECT comment_key FROM crm.box_comments"))
    meetings = sql("SELECT meeting_type FROM crm.box_meetings")["meeting_type"]
    assert totals["Meetings"] == (meetings != "CALL_LOG").sum() > 0
    assert totals["Call logs"] == (meetings == "CALL_LOG").sum() > 0


def test_filters_narrow_every_count(run: connection.Runner, sql: SQL, boxes: pd.DataFrame) -> None:
    pipeline = _biggest_pipeline(sql)
    owner = boxes.loc[boxes["pipeline_key"] == pipeline, "owner_email"].dropna().mode().iloc[0]
    created = pd.to_datetime(boxes["creation_timestamp"], utc=True)
    start = created.min().date() + timedelta(days=30)
    end = created.max().date() - timedelta(days=10)
    f = Filters(pipeline_key=pipeline, owners=(owner, filters.UNASSIGNED), created_from=start, created_to=end)

    in_range = (created >= pd.Timestamp(start, tz="UTC")) & (created < pd.Timestamp(end + timedelta(days=1), tz="UTC"))
    chosen = boxes[
        (boxes["pipeline_key"] == pipeline)
        & ((boxes["owner_email"] == owner) | boxes["owner_email"].isna())
        & in_range
    ]
    assert 0 < len(chosen) < len(boxes)
    counts = overview_queries.overview_counts(run, f, NOW)
    assert counts["boxes"] == len(chosen)
    tasks = sql("SELECT box_key, status FROM crm.box_tasks")
    assert counts["open_tasks"] == (
        tasks["box_key"].isin(chosen["box_key"]) & (tasks["status"] == "NOT_DONE")
    ).sum()


def test_quotes_in_filter_values_are_data_not_sql(run: connection.Runner) -> None:
    f = Filters(pipeline_key="x' OR '1'='1", owners=("o'brien@example.com",))
    assert overview_queries.overview_counts(run, f, NOW)["boxes"] == 0


def test_row_counts(run: connection.Runner, sql: SQL) -> None:
    rows = freshness.row_counts(run).set_index("table")["rows"]
    assert rows["boxes"] == len(sql("SELECT box_key FROM crm.boxes"))
    assert rows["box_tasks"] == len(sql("SELECT task_key FROM crm.box_tasks"))
    views = sql("SELECT table_name FROM information_schema.tables WHERE table_schema = 'crm' AND table_type = 'VIEW'")
    assert not set(views["table_name"]) & set(rows.index)  # tables only: a view is not a copy
    assert not any(name.startswith("_dlt") for name in rows.index)
    assert not {"load_history", "wide_view_columns"} & set(rows.index)  # about runs, not the account


def test_loads_so_far_come_from_load_history(demo_db: DemoDB, tmp_path: Path) -> None:
    """Defect 3: ``ok`` rows of load_history, not ``_dlt_loads`` (one row after a file swap)."""
    from .accounts import add_load_history, copy_db

    path = copy_db(demo_db.path, tmp_path / "history.duckdb")
    add_load_history(path, ok_runs=4, failed_runs=2)
    runner, _ = connection.open_duckdb(path)
    try:
        loaded = freshness.last_load(runner)
    finally:
        runner.close()
    con = duckdb.connect(str(path), read_only=True)
    expected = con.execute("SELECT COUNT(*), MAX(finished_at) FROM crm.load_history WHERE outcome = 'ok'").fetchone()
    con.close()
    assert loaded.loads == expected[0] == 4
    assert loaded.finished_at == expected[1]


def test_without_load_history_the_count_is_unknown(demo_db: DemoDB, tmp_path: Path) -> None:
    """An older destination: no number of loads (not a wrong "1"), last load from _dlt_loads."""
    from .accounts import copy_db

    path = copy_db(demo_db.path, tmp_path / "no_history.duckdb")
    con = duckdb.connect(str(path))
    con.execute("DROP TABLE IF EXISTS crm.load_history")
    expected = con.execute("SELECT MAX(inserted_at) FROM crm._dlt_loads WHERE status = 0").fetchone()[0]
    con.close()
    runner, _ = connection.open_duckdb(path)
    try:
        loaded = freshness.last_load(runner)
    finally:
        runner.close()
    assert loaded.loads is None
    assert loaded.finished_at == expected


# ---------------------------------------------------------------------------- funnel


def test_funnel_counts_sum_to_each_pipelines_boxes_in_stage_order(run: connection.Runner, sql: SQL) -> None:
    per_pipeline = sql("SELECT pipeline_key, COUNT(*) AS n FROM crm.boxes GROUP BY 1")
    stage_rows = sql("SELECT pipeline_key, stage_key, stage_order FROM crm.stages")
    for row in per_pipeline.itertuples():
        funnel = funnel_queries.funnel(run, Filters(pipeline_key=row.pipeline_key))
        assert funnel["boxes"].sum() == row.n
        stages = stage_rows[stage_rows["pipeline_key"] == row.pipeline_key].sort_values("stage_order")
        known = funnel[funnel["stage_order"] < lookups.UNKNOWN_STAGE_ORDER]
        assert list(known["stage_key"]) == list(stages["stage_key"])  # every stage, in stage order
        by_stage = sql(
            f"SELECT stage_key, COUNT(*) AS n FROM crm.boxes WHERE pipeline_key = '{row.pipeline_key}' GROUP BY 1"
        ).set_index("stage_key")["n"]
        for stage in funnel.itertuples():
            assert stage.boxes == by_stage.get(stage.stage_key, 0)


def test_funnel_keeps_empty_stages(run: connection.Runner, sql: SQL) -> None:
    empty = sql(
        """
        SELECT s.pipeline_key, s.stage_key FROM crm.stages s
        WHERE s.pipeline_key IN (SELECT pipeline_key FROM crm.boxes)
          AND NOT EXISTS (SELECT 1 FROM crm.boxes b WHERE b.pipeline_key = s.pipeline_key AND b.stage_key = s.stage_key)
        """
    )
    if empty.empty:
        pytest.skip("the demo account has no empty stage in a pipeline with boxes")
    row = empty.iloc[0]
    funnel = funnel_queries.funnel(run, Filters(pipeline_key=row["pipeline_key"]))
    assert funnel.loc[funnel["stage_key"] == row["stage_key"], "boxes"].tolist() == [0]


def test_numeric_fields_and_funnel_sums_read_value_number_only(run: connection.Runner, sql: SQL) -> None:
    """Defect 2: the funnel sums ``value_number`` and nothing else (no parsing of text here)."""
    values = sql("SELECT box_key, pipeline_key, field_key, field_name, value_number FROM crm.box_field_values")
    numbers = values[values["value_number"].notna()]
    expected_fields = sorted(set(zip(numbers["pipeline_key"], numbers["field_key"])))
    fields = funnel_queries.numeric_fields(run, Filters())
    assert sorted(zip(fields["pipeline_key"], fields["field_key"])) == expected_fields
    assert expected_fields, "the demo account should have numeric custom fields"
    counted = values.groupby(["pipeline_key", "field_key"]).agg(n=("box_key", "size"), numbers=("value_number", "count"))
    for row in fields.itertuples():
        assert row.numbers == counted.loc[(row.pipeline_key, row.field_key), "numbers"]
        assert row.not_numbers == counted.loc[(row.pipeline_key, row.field_key), "n"] - row.numbers

    pipeline, field = max(expected_fields, key=lambda k: (len(numbers[(numbers["pipeline_key"] == k[0]) & (numbers["field_key"] == k[1])]), k))
    funnel = funnel_queries.funnel(run, Filters(pipeline_key=pipeline), (pipeline, field))
    by_stage = sql(
        f"""SELECT b.stage_key, SUM(v.value_number) AS total FROM crm.box_field_values v
            JOIN crm.boxes b ON b.box_key = v.box_key
            WHERE v.pipeline_key = '{pipeline}' AND v.field_key = '{field}' GROUP BY 1"""
    ).set_index("stage_key")["total"]
    for stage in funnel.itertuples():
        assert stage.value == pytest.approx(float(by_stage.get(stage.stage_key, 0.0) or 0.0))
    total = sql(
        f"SELECT SUM(value_number) AS s FROM crm.box_field_values WHERE pipeline_key = '{pipeline}' AND field_key = '{field}'"
    )["s"].iloc[0]
    assert funnel["value"].sum() == pytest.approx(float(total))


def test_no_string_parsing_left_in_the_dashboard() -> None:
    """Defect 2: one rule for numbers, in the loader; the dashboard holds no copy of it."""
    source = "\n".join(p.read_text() for p in (REPO_ROOT / "dashboards").rglob("*.py"))
    for needle in ("NUMBER_PATTERN", "NUMBER_NOISE", "_numeric_text_expr", "REGEXP_REPLACE", "TRY_TO_DOUBLE", "SAFE_CAST"):
        assert needle not in source, needle


# ---------------------------------------------------------------------------- ageing


def test_ageing_days_since_last_stage_change(run: connection.Runner, boxes: pd.DataFrame) -> None:
    ageing = ageing_queries.ageing(run, Filters(), NOW)
    assert len(ageing) == len(boxes)
    since = pd.to_datetime(boxes["last_stage_change_timestamp"], utc=True).fillna(
        pd.to_datetime(boxes["creation_timestamp"], utc=True)
    )
    expected = ((pd.Timestamp(NOW) - since).dt.total_seconds() / 86400).set_axis(boxes["box_key"])
    got = ageing.set_index("box_key")["days_in_stage"]
    pd.testing.assert_series_equal(got.sort_index(), expected.sort_index(), check_names=False)
    assert ageing["days_in_stage"].is_monotonic_decreasing  # stuck longest first

    stats = ageing_queries.ageing_by_stage(ageing)
    assert stats["boxes"].sum() == len(boxes)
    first = stats.iloc[0]
    members = ageing[(ageing["pipeline_name"] == first["pipeline_name"]) & (ageing["stage_name"] == first["stage_name"])]
    assert first["median_days"] == pytest.approx(members["days_in_stage"].median())


# ---------------------------------------------------------------------------- tasks


def test_overdue_tasks_are_not_done_with_past_due_date(run: connection.Runner, sql: SQL) -> None:
    tasks = sql("SELECT task_key, status, due_date, assignee_names FROM crm.box_tasks")
    tasks["due_date"] = pd.to_datetime(tasks["due_date"], utc=True)
    open_tasks = tasks_queries.open_tasks(run, Filters())
    assert set(open_tasks["task_key"]) == set(tasks.loc[tasks["status"] == "NOT_DONE", "task_key"])

    classified = tasks_queries.classify_tasks(open_tasks, NOW, 7)
    now = pd.Timestamp(NOW)
    not_done = tasks[tasks["status"] == "NOT_DONE"]
    expected_overdue = set(not_done.loc[not_done["due_date"] < now, "task_key"])
    expected_soon = set(
        not_done.loc[(not_done["due_date"] >= now) & (not_done["due_date"] < now + pd.Timedelta(days=7)), "task_key"]
    )
    assert set(classified.loc[classified["state"] == "Overdue", "task_key"]) == expected_overdue
    assert set(classified.loc[classified["state"] == "Due soon", "task_key"]) == expected_soon
    assert expected_overdue



def test_tasks_per_assignee_follow_the_bridge_table(run: connection.Runner, sql: SQL) -> None:
    """Defect 4: one counting rule: each task once per assignee in box_task_assignees, none -> Unassigned."""
    classified = tasks_queries.classify_tasks(tasks_queries.open_tasks(run, Filters()), NOW, 7)
    pairs = tasks_queries.open_task_assignees(run, Filters())
    assert pairs is not None
    got = tasks_queries.tasks_by_assignee(classified, pairs)
    focus = set(classified.loc[classified["state"].isin(["Overdue", "Due soon"]), "task_key"])
    bridge = sql(
        "SELECT DISTINCT task_key, COALESCE(user_key, LOWER(email), name) AS who FROM crm.box_task_assignees"
    )
    bridge = bridge[bridge["task_key"].isin(focus)]
    unassigned = focus - set(bridge["task_key"])
    expected = sorted(bridge.groupby("who")["task_key"].nunique().tolist() + ([len(unassigned)] if unassigned else []))
    per_assignee = got.groupby("assignee")["tasks"].sum()
    assert sorted(per_assignee.tolist()) == expected
    assert per_assignee.sum() == len(bridge) + len(unassigned)
    assert per_assignee.get(filters.UNASSIGNED_LABEL, 0) == len(unassigned)
    several = bridge.groupby("task_key").size()
    assert (several > 1).any(), "the demo account has tasks with several assignees"
    assert per_assignee.sum() > len(focus)  # so the page must say why the bars add up to more


def test_tasks_per_assignee_without_the_bridge_is_none(demo_db: DemoDB, tmp_path: Path) -> None:
    from .accounts import copy_db

    path = copy_db(demo_db.path, tmp_path / "no_bridge.duckdb")
    con = duckdb.connect(str(path))
    con.execute("DROP TABLE crm.box_task_assignees")
    con.close()
    runner, _ = connection.open_duckdb(path)
    try:
        assert tasks_queries.open_task_assignees(runner, Filters()) is None
    finally:
        runner.close()


def test_task_status_counts(run: connection.Runner, sql: SQL) -> None:
    expected = sql("SELECT status, COUNT(*) AS n FROM crm.box_tasks GROUP BY 1").set_index("status")["n"].to_dict()
    assert tasks_queries.task_status_counts(run, Filters()) == expected


# ---------------------------------------------------------------------------- activity


def test_activity_counts_every_dated_event_once(run: connection.Runner, sql: SQL) -> None:
    frame = activity_queries.activity(run, Filters(), "month")
    totals = frame.groupby("kind")["events"].sum()
    assert totals.get("Email threads", 0) == len(sql("SELECT 1 FROM crm.box_threads WHERE last_email_timestamp IS NOT NULL"))
    assert totals.get("Comments", 0) == len(sql('SELECT 1 FROM crm.box_comments WHERE "timestamp" IS NOT NULL'))
    meetings = sql("SELECT meeting_type FROM crm.box_meetings WHERE start_timestamp IS NOT NULL")["meeting_type"]
    assert totals.get("Call logs", 0) == (meetings == "CALL_LOG").sum()
    assert totals.get("Meetings", 0) == (meetings != "CALL_LOG").sum()
    assert (frame["period"].dt.day == 1).all()

    owners = sql(
        """
        SELECT COALESCE(b.owner_name, 'Unassigned') AS owner, COUNT(*) AS n
        FROM crm.box_comments c JOIN crm.boxes b ON b.box_key = c.box_key
        WHERE c."timestamp" IS NOT NULL GROUP BY 1
        """
    ).set_index("owner")["n"]
    got = frame[frame["kind"] == "Comments"].groupby("owner")["events"].sum()
    pd.testing.assert_series_equal(got.sort_index(), owners.sort_index(), check_names=False, check_dtype=False)


# ---------------------------------------------------------------------------- explorer


def test_explorer_uses_the_wide_view_for_one_pipeline(run: connection.Runner, sql: SQL) -> None:
    pipeline = _biggest_pipeline(sql)
    found = explorer_queries.wide_view(run, pipeline)
    assert found is not None, "the main job should have created the pipeline's wide view"
    view = found.name
    view_columns = sql(
        f"SELECT column_name FROM information_schema.columns WHERE table_schema = 'crm' AND table_name = '{view}'"
    )["column_name"].tolist()
    table = explorer_queries.explorer_boxes(run, Filters(pipeline_key=pipeline))
    expected = sql(f"SELECT box_key, box_name FROM crm.{view}")
    assert sorted(table["box_key"]) == sorted(expected["box_key"])
    custom = [c for c in view_columns if c not in ("box_key", "box_name", "stage_key", "stage_name", "stage_order",
                                                   "owner_name", "owner_email", "creation_timestamp",
                                                   "last_updated_timestamp", "last_stage_change_timestamp")]
    assert custom and set(custom) <= set(table.columns)
    assert "stage_name" in table.columns
    # Display labels are the mapping table's, for every column of the view.
    labels = explorer_queries.column_labels(run, pipeline)
    mapping = sql(
        f"SELECT column_name, display_name FROM crm.wide_view_columns WHERE pipeline_key = '{pipeline}'"
    ).set_index("column_name")["display_name"]
    for column in table.columns:
        assert labels[column] == mapping[column]
    field_names = set(sql(f"SELECT name FROM crm.pipeline_fields WHERE pipeline_key = '{pipeline}'")["name"])
    assert {labels[c] for c in custom} <= field_names


def test_csv_headers_are_display_names(run: connection.Runner, sql: SQL) -> None:
    pipeline = _biggest_pipeline(sql)
    table = explorer_queries.explorer_boxes(run, Filters(pipeline_key=pipeline))
    labels = explorer_queries.column_labels(run, pipeline)
    csv = explorer_queries.with_display_names(table, labels).to_csv(index=False)
    header = csv.splitlines()[0]
    names = sql(f"SELECT name FROM crm.pipeline_fields WHERE pipeline_key = '{pipeline}' AND name LIKE '% %'")["name"]
    assert any(name in header for name in names), header  # "Deal size", not deal_size


def test_the_dashboard_does_not_import_the_loaders_planner() -> None:
    source = "\n".join(p.read_text() for p in (REPO_ROOT / "dashboards").rglob("*.py"))
    assert "streak_source.views" not in source and "streak_source.warehouse" not in source
    assert "plan_wide_views" not in source


def test_layout_one_module_per_page() -> None:
    """Small modules, and no ``dashboards/pages/`` (Streamlit would run its files as extra pages)."""
    from dashboards.app_pages import PAGES

    root = REPO_ROOT / "dashboards"
    assert not (root / "pages").exists()
    for path in root.rglob("*.py"):
        assert len(path.read_text().splitlines()) <= 450, path
    for spec in PAGES:
        module = spec.render.__module__.rsplit(".", 1)[-1]
        assert (root / "app_pages" / f"{module}.py").is_file()
        assert (root / "app_pages" / f"{module}_queries.py").is_file(), module


def test_explorer_all_pipelines_and_search(run: connection.Runner, boxes: pd.DataFrame) -> None:
    table = explorer_queries.explorer_boxes(run, Filters())
    assert sorted(table["box_key"]) == sorted(boxes["box_key"])
    target = boxes["name"].dropna().iloc[0]
    found = explorer_queries.search_boxes(table, target.upper())
    assert target in set(found["box_name"])
    assert len(explorer_queries.search_boxes(table, "zz-no-such-box-zz")) == 0


def test_explorer_pivot_fallback_matches_the_view(run: connection.Runner, sql: SQL, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a wide view (e.g. an older load), fields come from box_field_values by name."""
    pipeline = _biggest_pipeline(sql)
    monkeypatch.setattr(explorer_queries, "wide_view", lambda *_: None)
    table = explorer_queries.explorer_boxes(run, Filters(pipeline_key=pipeline))
    field_names = sql(
        f"SELECT DISTINCT field_name FROM crm.box_field_values WHERE pipeline_key = '{pipeline}'"
    )["field_name"].dropna()
    assert set(field_names) <= set(table.columns)
    assert len(table) == len(sql(f"SELECT 1 FROM crm.boxes WHERE pipeline_key = '{pipeline}'"))
