"""Issue 21: the Events page with events the contract accepts but a chart chokes on.

One event dated year 9999, sums past the largest double, a property name thousands of characters
long, a property that is only ever text, an event name seen once, and derived events whose long
``object_key`` used to push every other property out of view. Expected values are plain SQL on the
same file; what the browser draws of the same account is checked in test_browser.py.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

import streak_clock
from dashboards.app_pages.events_queries import is_identifier
from dashboards.data.sql import sum_numbers
from dashboards.ui.format import fmt_number
from dashboards.ui.time_axis import MIN_PERIODS

from . import accounts
from .charts import charts
from .conftest import DemoDB, metric_values, new_app, open_page

SQL = Callable[[str], pd.DataFrame]
LONG_NAME = "revenue " * 400
ODD_EVENTS: tuple[tuple[str, str, str, dict[str, Any]], ...] = (
    # (key, name, timestamp, properties)
    ("odd-future", "Offer made", "9999-12-31 12:00:00+00", {"amount": 10, "currency": "EUR"}),
    ("odd-huge-1", "Big deal", "now", {"amount": 1e308, "note": "first", LONG_NAME: 5}),
    ("odd-huge-2", "Big deal", "now", {"amount": 1e308, "note": "second", LONG_NAME: 7}),
    ("odd-huge-3", "Big deal", "now", {"amount": "n/a", "note": "third"}),
    ("odd-once", "Seen once", "now", {"size": 3}),
    ("odd-derived", "TASK_CREATE", "now", {"object_key": "agxzfm1haWxmb29nYWVyMAsSDE9yZ2FuaXphdGlvbiINaG93ZS1y" * 2,
                                           "text": "Call back", "status": "NOT_DONE", "fromStageKey": "5001"}),
)


def add_odd_events(path: Path) -> None:
    con = duckdb.connect(str(path))
    try:
        now = streak_clock.now().isoformat()
        for key, name, when, properties in ODD_EVENTS:
            con.execute(
                """INSERT INTO crm.events (event_key, event_name, "timestamp", first_received_at, last_received_at,
                   source, properties) VALUES (?, ?, CAST(? AS TIMESTAMPTZ), CAST(? AS TIMESTAMPTZ),
                   CAST(? AS TIMESTAMPTZ), 'api', CAST(? AS JSON))""",
                [key, name, now if when == "now" else when, now, now, json.dumps(properties)],
            )
    finally:
        con.close()


@pytest.fixture
def odd_db(demo_db: DemoDB, tmp_path: Path, point_at: Callable[[Path], Path]) -> Path:
    path = accounts.copy_db(demo_db.path, tmp_path / "odd.duckdb")
    accounts.add_events(path)
    add_odd_events(path)
    return point_at(path)


@pytest.fixture
def odd_sql(odd_db: Path) -> Iterator[SQL]:
    con = duckdb.connect(str(odd_db), read_only=True)
    try:
        yield lambda query: con.sql(query).to_arrow_table().to_pandas()
    finally:
        con.close()


def _events_page() -> Any:
    at = open_page(new_app().run(), "events")
    assert not at.exception, [e.value for e in at.exception]
    return at


def _day(when: dict[str, Any]) -> pd.Timestamp:
    """A Vega-Lite date object of the spec as a timestamp (UTC)."""
    assert when.get("utc") is True, when
    return pd.Timestamp(year=when["year"], month=when["month"], day=when["date"], tz="UTC")


def test_an_event_dated_9999_leaves_the_chart_drawn_and_is_counted(odd_db: Path, odd_sql: SQL) -> None:
    at = _events_page()
    per_week = charts(at)[0]
    now = pd.Timestamp(streak_clock.now())
    future = odd_sql(f"""SELECT COUNT(*) AS n, MAX(DATE_TRUNC('week', "timestamp")) AS latest FROM crm.events
                         WHERE DATE_TRUNC('week', "timestamp") > DATE_TRUNC('week', '{now.isoformat()}'::TIMESTAMPTZ)""").iloc[0]
    assert future["n"] == 1
    data = next(iter(per_week.datasets.values()))
    start, end = (_day(d) for d in per_week.axis_field("x")["scale"]["domain"])
    assert data["period"].max() <= now  # nothing from the future
    assert end <= now + pd.Timedelta(days=7)  # the axis ends this week, not in 9999
    assert start <= data["period"].min()
    shown = int(data["events"].sum())
    assert shown == odd_sql("SELECT COUNT(*) AS n FROM crm.events")["n"].iloc[0] - future["n"]
    assert (f"Not on this chart: 1 event dated in the future (the latest in the week of {pd.Timestamp(future['latest']):%Y-%m-%d})."
            in [c.value for c in at.caption])


def test_sums_offer_only_numbers_and_stay_readable(odd_db: Path, odd_sql: SQL) -> None:
    at = _events_page()
    at = at.selectbox(key="events_metric_name").set_value("Big deal").run()
    numeric = set(odd_sql("""SELECT k FROM (SELECT UNNEST(json_keys(properties)) AS k, properties FROM crm.events
                             WHERE event_name = 'Big deal') WHERE json_type(properties, '$."' || k || '"') IN ('DOUBLE', 'BIGINT', 'UBIGINT')
                             GROUP BY k""")["k"])
    assert numeric == {"amount", LONG_NAME}  # "note" is text in every event: not offered
    assert set(at.selectbox(key="events_metric_measure").options) == {"Count of events", "Sum of amount", f"Sum of {LONG_NAME}"}

    at = at.selectbox(key="events_metric_measure").set_value("amount").run()
    total = odd_sql("""SELECT SUM(CAST(properties->>'$.amount' AS DOUBLE)) AS s FROM crm.events
                       WHERE event_name = 'Big deal' AND json_type(properties, '$.amount') = 'DOUBLE'""")["s"].iloc[0]
    shown = metric_values(at)["Sum of amount"]
    assert shown == fmt_number(total) == "∞"  # past the largest double: not "infM"
    assert any("Not drawn: 1 week" in c.value for c in at.caption)
    assert fmt_number(1e300) == "1e+300" and len(fmt_number(-3.5e299)) <= 10  # not a 300-digit number

    at = at.selectbox(key="events_metric_measure").set_value(LONG_NAME).run()
    metric_chart = charts(at)[1]
    assert len(metric_chart.axis_field("y")["title"]) <= 60
    assert metric_values(at)[f"Sum of {LONG_NAME.strip()}"] == fmt_number(12)


def test_a_lone_event_is_a_bar_on_a_dated_axis(odd_db: Path) -> None:
    at = _events_page()
    at = at.selectbox(key="events_metric_name").set_value("Seen once").run()
    metric_chart = charts(at)[1]
    x = metric_chart.axis_field("x")
    start, end = (_day(d) for d in x["scale"]["domain"])
    assert (end - start) / pd.Timedelta(days=7) >= MIN_PERIODS  # one week among at least eight, not a wall
    ticks = [_day(d) for d in x["axis"]["values"]]
    assert len(ticks) == len(set(ticks)) > 1
    assert all(t.weekday() == 0 for t in ticks)  # on Mondays: no repeated dates


def test_latest_events_show_readable_properties_first(odd_db: Path) -> None:
    at = _events_page()
    latest = at.dataframe[0].value
    shown = latest.loc[latest["event_name"] == "TASK_CREATE", "properties"].iloc[0]
    keys = [part.split(": ", 1)[0] for part in shown.split(" · ")]
    assert keys == ["status", "text", "fromStageKey", "object_key"]
    assert [is_identifier(k) for k in keys] == [False, False, True, True]


def test_sums_past_the_largest_double_do_not_fail_on_either_engine() -> None:
    query = "SELECT {sum} FROM (SELECT CAST(1e308 AS DOUBLE PRECISION) AS x UNION ALL SELECT CAST(1e308 AS DOUBLE PRECISION)) AS t"
    con = duckdb.connect()
    try:
        assert float(con.execute(query.format(sum=sum_numbers("duckdb", "t.x"))).fetchone()[0]) == float("inf")
    finally:
        con.close()
    url = os.environ.get("STREAK_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("no STREAK_TEST_POSTGRES_URL: the DuckDB half ran")
    import psycopg2

    pg = psycopg2.connect(url)
    try:
        with pg.cursor() as cur:
            cur.execute(query.format(sum=sum_numbers("postgres", "t.x")))
            assert float(cur.fetchone()[0]) == float("inf")
    finally:
        pg.close()
