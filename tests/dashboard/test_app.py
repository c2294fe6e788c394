"""The Streamlit app in-process (AppTest): every page, every data state, and the sidebar filters."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from dashboards.data import connection
from dashboards.ui.context import LOAD_COMMAND
from dashboards.ui.text import md

from .conftest import PAGES, DemoDB, as_int, metric_values, new_app, open_page

SQL = Callable[[str], pd.DataFrame]


def _assert_clean(at: Any, title: str) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert [t.value for t in at.title] == [title]


def _charts(at: Any) -> list[Any]:
    return list(at.get("vega_lite_chart"))


@pytest.fixture
def demo_app(demo_db: DemoDB, point_at: Callable[[Path], Path]) -> Any:
    point_at(demo_db.path)
    at = new_app().run()
    _assert_clean(at, "Overview")
    return at


# ---------------------------------------------------------------------------- pages on demo data

# Pages that show at least one chart on the demo account (explorer is a table by design).
PAGES_WITH_CHARTS = {"", "funnel", "ageing", "outcomes", "tasks", "activity"}


@pytest.mark.parametrize(("url_path", "title"), PAGES, ids=[t for _, t in PAGES])
def test_every_page_renders_on_demo_data(demo_app: Any, url_path: str, title: str, sql: SQL) -> None:
    at = open_page(demo_app, url_path) if url_path else demo_app
    _assert_clean(at, title)
    assert not at.error and not at.warning
    assert not any(LOAD_COMMAND in info.value for info in at.info)
    if url_path == "events" and (sql(
        "SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = 'crm' AND table_name = 'events'"
    )["n"].iloc[0] == 0 or sql("SELECT COUNT(*) AS n FROM crm.events")["n"].iloc[0] == 0):
        # no events loaded into crm.events (the demo has no spool): the page says what to run
        assert any("streak_events.py load" in info.value for info in at.info)
        return
    if url_path in PAGES_WITH_CHARTS:
        assert _charts(at), f"{title} shows no chart"
    if url_path != "explorer":
        assert at.metric, f"{title} shows no metric cards"


def test_overview_numbers_match_the_database(demo_app: Any, sql: SQL) -> None:
    shown = metric_values(demo_app)
    expected = sql(
        """
        SELECT (SELECT COUNT(*) FROM crm.boxes) AS boxes,
               (SELECT COUNT(*) FROM crm.box_tasks WHERE status = 'NOT_DONE') AS open_tasks,
               (SELECT COUNT(*) FROM crm.box_threads) AS threads
        """
    ).iloc[0]
    assert as_int(shown["Boxes"]) == expected["boxes"]
    assert as_int(shown["Open tasks"]) == expected["open_tasks"]
    assert as_int(shown["Email threads"]) == expected["threads"]
    row_counts = demo_app.dataframe[0].value.set_index("table")["rows"]
    assert row_counts["boxes"] == expected["boxes"]


# ---------------------------------------------------------------------------- no data


@pytest.mark.parametrize("case", ["empty destination", "no destination"])
def test_every_page_says_how_to_load_data(
    case: str, empty_db: Path, missing_db: Path, point_at: Callable[[Path], Path]
) -> None:
    path = point_at(empty_db if case == "empty destination" else missing_db)
    at = new_app().run()
    for url_path, title in PAGES:
        if url_path:
            at = open_page(at, url_path)
        _assert_clean(at, title)
        assert any(LOAD_COMMAND in info.value for info in at.info), f"{title}: no load hint"
        assert not at.metric and not _charts(at)
    assert path.exists() == (case == "empty destination")  # reading never creates a file


def test_unreachable_warehouse_is_a_message_not_a_traceback(
    point_at: Callable[[Path], Path], missing_db: Path, free_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_at(missing_db)
    monkeypatch.setenv("DESTINATION__WAREHOUSE__DESTINATION_TYPE", "postgres")
    monkeypatch.setenv(
        "DESTINATION__WAREHOUSE__CREDENTIALS", f"postgresql://streak:s3cret-pw@127.0.0.1:{free_port}/nowhere"
    )
    at = new_app().run()
    _assert_clean(at, "Overview")
    assert any("Could not read postgres dataset" in e.value for e in at.error)
    shown = " ".join(e.value for e in at.error) + " ".join(c.value for c in at.sidebar.caption)
    assert "s3cret" not in shown


def test_locked_database_says_a_load_is_running(
    demo_db: DemoDB, tmp_path: Path, point_at: Callable[[Path], Path], lock_file: Any
) -> None:
    copy = tmp_path / "busy.duckdb"
    copy.write_bytes(demo_db.path.read_bytes())
    lock_file(copy)
    point_at(copy)
    at = new_app().run()
    _assert_clean(at, "Overview")
    assert any("A load is writing to the database" in w.value and "5 tries" in w.value for w in at.warning)


def test_lock_released_during_the_retries_opens_and_says_so(
    demo_db: DemoDB, tmp_path: Path, point_at: Callable[[Path], Path], lock_file: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    copy = tmp_path / "busy_briefly.duckdb"
    copy.write_bytes(demo_db.path.read_bytes())
    holder = lock_file(copy)
    pauses: list[float] = []

    def load_finishes(seconds: float) -> None:  # the load commits while the dashboard waits
        pauses.append(seconds)
        holder.release()

    monkeypatch.setattr(connection, "retry_sleep", load_finishes)
    point_at(copy)
    at = new_app().run()
    _assert_clean(at, "Overview")
    assert len(pauses) == 1 and not at.warning
    assert any("opened on try 2" in toast.value for toast in at.toast)
    assert as_int(metric_values(at)["Boxes"]) > 0


def test_lock_taken_between_pages_is_reported_on_the_page(
    demo_db: DemoDB, tmp_path: Path, point_at: Callable[[Path], Path], lock_file: Any
) -> None:
    """The sidebar comes from the cache, the page needs the file and a load holds it: a message."""
    copy = tmp_path / "busy_later.duckdb"
    copy.write_bytes(demo_db.path.read_bytes())
    point_at(copy)
    at = new_app().run()
    _assert_clean(at, "Overview")
    lock_file(copy)
    at = open_page(at, "tasks")
    _assert_clean(at, "Tasks")
    assert any("A load is writing to the database" in w.value for w in at.warning)


# ---------------------------------------------------------------------------- filters


def _pipeline_with_fewest_boxes(sql: SQL) -> tuple[str, int]:
    row = sql("SELECT pipeline_key, COUNT(*) AS n FROM crm.boxes GROUP BY 1 ORDER BY 2, 1").iloc[0]
    return str(row["pipeline_key"]), int(row["n"])


def test_pipeline_filter_changes_numbers_and_persists_across_pages(demo_app: Any, sql: SQL) -> None:
    total = len(sql("SELECT box_key FROM crm.boxes"))
    assert as_int(metric_values(demo_app)["Boxes"]) == total
    pipeline, count = _pipeline_with_fewest_boxes(sql)
    assert count < total

    at = demo_app.sidebar.selectbox(key="filter_pipeline").set_value(pipeline).run()
    assert as_int(metric_values(at)["Boxes"]) == count

    at = open_page(at, "funnel")
    _assert_clean(at, "Pipeline funnel")
    assert at.sidebar.selectbox(key="filter_pipeline").value == pipeline
    assert as_int(metric_values(at)["Boxes"]) == count

    at = open_page(at, "explorer")
    _assert_clean(at, "Box explorer")
    assert len(at.dataframe[0].value) == count

    at = open_page(at, "ageing")  # open boxes: the demo's closed stages left out
    closed = ", ".join(f"'{n.lower()}'" for n in at.sidebar.multiselect(key="filter_closed_stages").value)
    open_boxes = sql(f"""SELECT COUNT(*) AS n FROM crm.boxes b LEFT JOIN crm.stages s USING (pipeline_key, stage_key)
        WHERE b.pipeline_key = '{pipeline}' AND LOWER(COALESCE(s.name, b.stage_name)) NOT IN ({closed or 'NULL'})""")["n"].iloc[0]
    assert as_int(metric_values(at)["Boxes"]) == open_boxes


def test_owner_and_date_filters(demo_app: Any, sql: SQL) -> None:
    owner = sql(
        "SELECT owner_email, COUNT(*) AS n FROM crm.boxes WHERE owner_email IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1"
    ).iloc[0]
    at = demo_app.sidebar.multiselect(key="filter_owners").select(owner["owner_email"]).run()
    assert as_int(metric_values(at)["Boxes"]) == owner["n"]

    at = at.sidebar.multiselect(key="filter_owners").set_value([]).run()
    bounds = sql("SELECT MIN(creation_timestamp) AS lo, MAX(creation_timestamp) AS hi FROM crm.boxes").iloc[0]
    start = pd.Timestamp(bounds["lo"]).date() + timedelta(days=20)
    end = pd.Timestamp(bounds["hi"]).date() - timedelta(days=20)
    expected = sql(
        f"""SELECT COUNT(*) AS n FROM crm.boxes
            WHERE creation_timestamp >= TIMESTAMPTZ '{start} 00:00:00+00'
              AND creation_timestamp < TIMESTAMPTZ '{end + timedelta(days=1)} 00:00:00+00'"""
    )["n"].iloc[0]
    at = at.sidebar.date_input(key="filter_created").set_value((start, end)).run()
    assert as_int(metric_values(at)["Boxes"]) == expected < len(sql("SELECT 1 FROM crm.boxes"))


def test_reset_restores_every_box(demo_app: Any, sql: SQL) -> None:
    pipeline, count = _pipeline_with_fewest_boxes(sql)
    at = demo_app.sidebar.selectbox(key="filter_pipeline").set_value(pipeline).run()
    assert as_int(metric_values(at)["Boxes"]) == count
    reset = next(b for b in at.sidebar.button if b.label == "Reset filters")
    at = reset.click().run()
    assert as_int(metric_values(at)["Boxes"]) == len(sql("SELECT 1 FROM crm.boxes"))


def test_every_page_has_an_empty_state(demo_app: Any, sql: SQL) -> None:
    """A pipeline with no boxes (the demo account has one) renders calm empty states, no errors."""
    empty = sql(
        "SELECT p.pipeline_key FROM crm.pipelines p "
        "WHERE NOT EXISTS (SELECT 1 FROM crm.boxes b WHERE b.pipeline_key = p.pipeline_key)"
    )
    assert not empty.empty, "the demo account has an empty pipeline"
    at = demo_app.sidebar.selectbox(key="filter_pipeline").set_value(str(empty["pipeline_key"].iloc[0])).run()
    for url_path, title in PAGES:
        if url_path:
            at = open_page(at, url_path)
        _assert_clean(at, title)
        assert not at.error and not at.warning
        assert any("No boxes match" in i.value or "Nothing overdue" in i.value or "No activity" in i.value
                   or "No events" in i.value or "need two loads" in i.value for i in at.info), f"{title}: no empty state"
        if "Boxes" in metric_values(at):
            assert as_int(metric_values(at)["Boxes"]) == 0


# ---------------------------------------------------------------------------- page controls


def test_funnel_sums_a_numeric_field(demo_app: Any, sql: SQL) -> None:
    at = open_page(demo_app, "funnel")
    measure = at.selectbox(key="funnel_measure")
    fields = [o for o in measure.options if o != "Number of boxes"]
    assert fields, "the demo account has numeric custom fields"
    at = measure.select_index(1).run()
    _assert_clean(at, "Pipeline funnel")
    assert f"Total {md(fields[0])}" in metric_values(at)
    # Across all pipelines the field exists in one: the others say so instead of an all-zero chart.
    field_pipeline = at.selectbox(key="funnel_measure").value[0]
    others = sql(f"SELECT DISTINCT p.name FROM crm.boxes b JOIN crm.pipelines p USING (pipeline_key) "
                 f"WHERE b.pipeline_key <> '{field_pipeline}'")["name"].tolist()
    assert others, "the demo account has boxes in more than one pipeline"
    notes = [i.value for i in at.info if "is a field of another pipeline" in i.value]
    assert sorted(notes) == sorted(f"**{md(fields[0])}** is a field of another pipeline: {md(name)} has no such "
                                   "field, so there is nothing to sum here." for name in others)
    sums = [c for c in _charts(at) if "Sum of" in c.proto.spec or "value_label" in c.proto.spec]
    assert len(sums) == 1, "one sum chart: the field's own pipeline"


def test_explorer_search_and_download(demo_app: Any, sql: SQL) -> None:
    at = open_page(demo_app, "explorer")
    everything = at.dataframe[0].value
    assert len(everything) == len(sql("SELECT 1 FROM crm.boxes"))
    assert at.download_button, "no CSV download"
    name = str(sql("SELECT name FROM crm.boxes WHERE name IS NOT NULL ORDER BY box_key LIMIT 1")["name"].iloc[0])
    at = at.text_input(key="explorer_search").input(name).run()
    found = at.dataframe[0].value
    assert 0 < len(found) < len(everything)
    assert name in set(found["box_name"])


def test_tasks_horizon_changes_due_soon(demo_app: Any) -> None:
    at = open_page(demo_app, "tasks")
    short = as_int(metric_values(at)["Due in 7 days"])
    at = at.slider(key="tasks_horizon").set_value(30).run()
    assert as_int(metric_values(at)["Due in 30 days"]) >= short


def test_activity_by_month(demo_app: Any) -> None:
    at = open_page(demo_app, "activity")
    weekly = metric_values(at)
    at = at.segmented_control(key="activity_grain").set_value("Month").run()
    _assert_clean(at, "Activity")
    assert at.subheader[0].value == "Per month"
    assert metric_values(at) == weekly  # totals do not depend on the grouping


def test_explorer_says_unassigned_in_black(demo_app: Any, sql: SQL) -> None:
    """Issue 21: an unassigned box reads "Unassigned" as owner and assignee (not "None"), and the
    box name column is not pinned (Streamlit fades pinned columns to grey)."""
    import json

    unassigned = set(sql("SELECT box_key FROM crm.boxes WHERE assigned_to_names IS NULL AND owner_email IS NULL")["box_key"])
    assert unassigned, "the demo account has unassigned boxes"
    at = open_page(demo_app, "explorer")
    table = at.dataframe[0].value
    rows = table[table["box_key"].isin(unassigned)]
    assert len(rows) == len(unassigned)
    assert set(rows["owner_name"]) == set(rows["assigned_to"]) == {"Unassigned"}
    text = table.select_dtypes(exclude=["number", "datetime", "datetimetz", "bool"])
    assert not text.isna().any().any(), "no text cell reads None"
    config = json.loads(at.dataframe[0].proto.columns)
    assert not config["box_name"].get("pinned"), config["box_name"]
