"""Issue 11 defect 2: every headline number on every page equals independent SQL over the tables.

The app runs in-process (AppTest) on the demo load; the expected numbers are plain DuckDB SQL on
the same file, written here without the dashboard's query code. Numbers are
``box_field_values.value_number`` only. "Now" is the app's (the current minute): the expected
values are computed for the minutes before and after the app run, and must agree.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import streak_clock
from dashboards.ui.format import fmt_int, fmt_number
from dashboards.ui.text import md

from .accounts import add_load_history, as_own_account, copy_db
from .conftest import DemoDB, metric_values, new_app, open_page

SQL = Callable[[str], pd.DataFrame]
CLOSED = ("Won", "Lost", "Hired", "Rejected")


def _now() -> datetime:
    return streak_clock.now().replace(second=0, microsecond=0)


def _one(sql: SQL, query: str) -> Any:
    return sql(query).iloc[0, 0]


def expected_headlines(sql: SQL, now: datetime, closed: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """Page url -> metric label -> the value a person should read, from SQL alone."""
    ts = f"TIMESTAMPTZ '{now.isoformat()}'"
    closed_list = ", ".join(f"'{c.lower()}'" for c in closed) or "NULL"
    stage = "LOWER(COALESCE(s.name, b.stage_name))"
    open_boxes = (
        f"FROM crm.boxes b LEFT JOIN crm.stages s ON s.pipeline_key = b.pipeline_key AND s.stage_key = b.stage_key "
        f"WHERE COALESCE({stage} NOT IN ({closed_list}), TRUE)"
    )
    days = f"(epoch({ts}) - epoch(COALESCE(b.last_stage_change_timestamp, b.creation_timestamp))) / 86400.0"
    counts = sql(
        f"""
        SELECT (SELECT COUNT(*) FROM crm.boxes) AS boxes,
               (SELECT COUNT(*) FROM crm.box_tasks WHERE status = 'NOT_DONE') AS open_tasks,
               (SELECT COUNT(*) FROM crm.box_tasks WHERE status = 'NOT_DONE' AND due_date < {ts}) AS overdue,
               (SELECT COUNT(*) FROM crm.box_tasks WHERE status = 'NOT_DONE' AND due_date >= {ts}
                  AND due_date < {ts} + INTERVAL 7 DAY) AS due_soon,
               (SELECT COUNT(*) FROM crm.box_tasks WHERE status = 'DONE') AS done,
               (SELECT COUNT(*) FROM crm.box_threads) AS threads,
               (SELECT COUNT(*) FROM crm.box_comments) AS comments,
               (SELECT COUNT(*) FROM crm.box_meetings WHERE meeting_type = 'CALL_LOG') AS calls,
               (SELECT COUNT(*) FROM crm.box_meetings WHERE meeting_type IS DISTINCT FROM 'CALL_LOG') AS notes,
               (SELECT COUNT(*) {open_boxes}) AS open_boxes,
               (SELECT MEDIAN({days}) {open_boxes}) AS median_days,
               (SELECT COUNT(*) {open_boxes} AND {days} > 30) AS over_30,
               (SELECT COUNT(*) {open_boxes} AND {days} > 90) AS over_90
        """
    ).iloc[0]
    # One name, one meaning: the Overview's activity cards are the Activity page's (issue 21).
    activity = {
        "Email threads": fmt_int(counts["threads"]),
        "Comments": fmt_int(counts["comments"]),
        "Meetings": fmt_int(counts["notes"]),
        "Call logs": fmt_int(counts["calls"]),
    }
    return {
        "": {
            "Boxes": fmt_int(counts["boxes"]),
            "Open tasks": fmt_int(counts["open_tasks"]),
            "Overdue tasks": fmt_int(counts["overdue"]),
            **activity,
        },
        "funnel": {"Boxes": fmt_int(counts["boxes"]), "Open boxes": fmt_int(counts["open_boxes"])},
        "ageing": {
            "Boxes": fmt_int(counts["open_boxes"]),
            "Median days in stage": f"{counts['median_days']:.0f}",
            "Over 30 days": fmt_int(counts["over_30"]),
            "Over 90 days": fmt_int(counts["over_90"]),
        },
        "tasks": {
            "Open tasks": fmt_int(counts["open_tasks"]),
            "Overdue": fmt_int(counts["overdue"]),
            "Due in 7 days": fmt_int(counts["due_soon"]),
            "Done": fmt_int(counts["done"]),
        },
        "activity": activity,
    }


def _shown(at: Any) -> dict[str, dict[str, str]]:
    shown: dict[str, dict[str, str]] = {"": metric_values(at)}
    for url in ("funnel", "ageing", "tasks", "activity"):
        at = open_page(at, url)
        assert not at.exception, [e.value for e in at.exception]
        shown[url] = metric_values(at)
    return shown


@pytest.mark.parametrize("closed", [(), CLOSED], ids=["nothing closed", "closed stages"])
def test_every_headline_equals_sql(
    closed: tuple[str, ...], demo_db: DemoDB, point_at: Callable[[Path], Path], sql: SQL,
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    if closed:
        monkeypatch.setenv("DASHBOARD__CLOSED_STAGES", '["' + '", "'.join(closed) + '"]')
        point_at(demo_db.path)
    else:  # a user's own account: nothing closed (the demo account comes with closed stages)
        point_at(as_own_account(copy_db(demo_db.path, tmp_path / "own.duckdb")))
    for _ in range(2):  # a minute boundary between the app and the SQL: once more
        before = _now()
        shown = _shown(new_app().run())
        if _now() == before:
            break
    expected = expected_headlines(sql, before, closed)
    for page, metrics in expected.items():
        for label, value in metrics.items():
            assert shown[page].get(label) == value, (page or "overview", label, shown[page])
    if closed:  # the closed stages change what Ageing counts: the test is not vacuous
        assert expected["ageing"]["Boxes"] != expected[""]["Boxes"]


def test_funnel_total_of_a_field_is_the_sum_of_value_number(
    demo_db: DemoDB, point_at: Callable[[Path], Path], sql: SQL
) -> None:
    point_at(demo_db.path)
    at = open_page(new_app().run(), "funnel")
    measure = at.selectbox(key="funnel_measure")
    assert len(measure.options) > 2
    for index, label in enumerate(measure.options[1:], start=1):
        at = at.selectbox(key="funnel_measure").select_index(index).run()
        field, pipeline = label.rsplit(" (", 1)
        total = _one(
            sql,
            f"""SELECT SUM(v.value_number) FROM crm.box_field_values v JOIN crm.pipelines p USING (pipeline_key)
                WHERE v.field_name = '{field}' AND p.name = '{pipeline.rstrip(')')}'""",
        )
        assert metric_values(at)[f"Total {md(label)}"] == fmt_number(float(total)), label


def test_explorer_count_and_loads_so_far(
    demo_db: DemoDB, point_at: Callable[[Path], Path], sql: SQL, tmp_path: Path
) -> None:
    path = point_at(copy_db(demo_db.path, tmp_path / "history.duckdb"))
    add_load_history(path, ok_runs=5, failed_runs=2)
    at = new_app().run()
    assert metric_values(at)["Loads so far"] == "5"
    at = open_page(at, "explorer")
    boxes = _one(sql, "SELECT COUNT(*) FROM crm.boxes")
    assert f"{fmt_int(boxes)} of {fmt_int(boxes)} boxes" in [c.value for c in at.caption]


def test_loads_so_far_is_hidden_without_load_history(
    demo_db: DemoDB, point_at: Callable[[Path], Path], tmp_path: Path
) -> None:
    """Defect 3: an older destination has no honest count, so the metric is not shown at all."""
    import duckdb

    path = point_at(copy_db(demo_db.path, tmp_path / "no_history.duckdb"))
    con = duckdb.connect(str(path))
    con.execute("DROP TABLE IF EXISTS crm.load_history")
    con.close()
    at = new_app().run()
    assert "Loads so far" not in metric_values(at)
    assert "Last load" in metric_values(at)
