"""Issues 13 #4 and 14 #5: every number on the Velocity and Events pages equals independent SQL.

The app runs in-process (AppTest) on the demo load with hand-built ``box_stage_history`` and
``crm.events`` (accounts.add_history / add_events: exact and inexact stays, moves back, a deleted
box; events with and without a box, numeric and text properties). The expected values are plain
DuckDB SQL written here without the dashboard's query code (``quantile_cont`` and ``arg_min``
where the app uses ``percentile_cont`` and window functions).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from dashboards.ui.format import fmt_days, fmt_int, fmt_number, fmt_pct

from . import accounts
from .conftest import DemoDB, metric_values, new_app, open_page

SQL = Callable[[str], pd.DataFrame]


def _row(sql: SQL, query: str) -> dict[str, Any]:
    return {k: (None if pd.isna(v) else v) for k, v in sql(query).iloc[0].to_dict().items()}


def _velocity_expected(sql: SQL, pipeline: str, a: str, b: str, created_stage: str, exact: bool) -> dict[str, str]:
    scope = "FROM crm.box_stage_history h WHERE h.box_key IN (SELECT box_key FROM crm.boxes)"
    measured = "h.left_at IS NOT NULL" + (" AND h.exact" if exact else "")
    counts = _row(sql, f"""SELECT COUNT(DISTINCT h.box_key) AS boxes, COUNT(*) AS stays,
        COUNT(*) FILTER (WHERE {measured}) AS measured, COUNT(*) FILTER (WHERE h.left_at IS NULL) AS open {scope}""")
    s = f"s AS (SELECT h.* {scope} AND h.pipeline_key = '{pipeline}')"
    conv = _row(sql, f"""WITH {s},
        a AS (SELECT box_key, MIN(entered_at) AS ta, arg_min(entered_exact, entered_at) AS ea FROM s
              WHERE stage_key = '{a}' GROUP BY box_key),
        b AS (SELECT a.box_key, MIN(s.entered_at) AS tb, arg_min(s.entered_exact, s.entered_at) AS eb
              FROM a JOIN s ON s.box_key = a.box_key AND s.stage_key = '{b}' AND s.entered_at > a.ta GROUP BY a.box_key)
        SELECT COUNT(*) AS entered, COUNT(b.box_key) AS reached,
               quantile_cont(epoch(b.tb) - epoch(a.ta), 0.5) FILTER (WHERE {'a.ea AND b.eb' if exact else 'TRUE'}) AS median_s
        FROM a LEFT JOIN b USING (box_key)""")
    created = _row(sql, f"""WITH {s},
        r AS (SELECT box_key, MIN(entered_at) AS te, arg_min(entered_exact, entered_at) AS ee FROM s
              WHERE stage_key = '{created_stage}' GROUP BY box_key)
        SELECT COUNT(*) AS reached,
               quantile_cont(epoch(r.te) - epoch(bx.creation_timestamp), 0.5) FILTER (WHERE {'r.ee' if exact else 'TRUE'}) AS median_s,
               quantile_cont(epoch(r.te) - epoch(bx.creation_timestamp), 0.9) FILTER (WHERE {'r.ee' if exact else 'TRUE'}) AS p90_s
        FROM r JOIN crm.boxes bx USING (box_key)""")
    return {
        "Boxes with history": fmt_int(counts["boxes"]), "Stays recorded": fmt_int(counts["stays"]),
        "Stays measured": fmt_int(counts["measured"]), "Still in their stage": fmt_int(counts["open"]),
        "Entered A": fmt_int(conv["entered"]), "Reached B later": fmt_int(conv["reached"]),
        "Conversion": fmt_pct(conv["reached"], conv["entered"]), "Median time A → B": fmt_days(conv["median_s"]),
        "Boxes that reached it": fmt_int(created["reached"]), "Median from creation": fmt_days(created["median_s"]),
        "90th percentile from creation": fmt_days(created["p90_s"]),
    }


@pytest.mark.parametrize("exact", [True, False], ids=["exact only", "inexact included"])
def test_velocity_headlines_equal_sql(
    exact: bool, rich_db: Path, rich_sql: SQL, point_at: Callable[[Path], Path]
) -> None:
    point_at(rich_db)
    at = open_page(new_app().run(), "velocity")
    assert not at.exception, [e.value for e in at.exception]
    if not exact:
        at = at.toggle(key="velocity_exact").set_value(False).run()
    pipeline = at.selectbox(key="velocity_pipeline").value
    last = _row(rich_sql, f"SELECT stage_key FROM crm.stages WHERE pipeline_key = '{pipeline}' ORDER BY stage_order DESC LIMIT 1")
    at = at.selectbox(key=f"velocity_b_{pipeline}").set_value(last["stage_key"]).run()  # the last stage after A
    a, b = at.selectbox(key=f"velocity_a_{pipeline}").value, at.selectbox(key=f"velocity_b_{pipeline}").value
    created = at.selectbox(key=f"velocity_created_{pipeline}").value
    expected = _velocity_expected(rich_sql, pipeline, a, b, created, exact)
    shown = metric_values(at)
    assert {k: shown.get(k) for k in expected} == expected
    assert int(expected["Reached B later"].replace(",", "")) > 0, "the test data reaches B: not vacuous"
    measured_both = (_velocity_expected(rich_sql, pipeline, a, b, created, True)["Stays measured"],
                     _velocity_expected(rich_sql, pipeline, a, b, created, False)["Stays measured"])
    assert measured_both[0] != measured_both[1], "the toggle changes what is measured"


def test_velocity_time_in_stage_equals_sql(rich_db: Path, rich_sql: SQL, point_at: Callable[[Path], Path]) -> None:
    """The per-stage median and p90 (the chart's data) equal SQL over every ended exact stay."""
    from dashboards.app_pages import velocity_queries
    from dashboards.data.connection import open_duckdb
    from dashboards.data.filters import Filters

    run, _ = open_duckdb(rich_db)
    try:
        got = velocity_queries.time_in_stage(run, Filters(), True).set_index(["pipeline_key", "stage_key"])
    finally:
        run.close()
    expected = rich_sql(
        """SELECT pipeline_key, stage_key, COUNT(*) AS measured, quantile_cont(time_in_stage_s, 0.5) AS median_s,
                  quantile_cont(time_in_stage_s, 0.9) AS p90_s
           FROM crm.box_stage_history WHERE left_at IS NOT NULL AND exact AND box_key IN (SELECT box_key FROM crm.boxes)
           GROUP BY 1, 2"""
    ).set_index(["pipeline_key", "stage_key"])
    measured = got[got["measured"] > 0]
    assert len(measured) == len(expected) > 3
    for key, row in expected.iterrows():
        assert measured.loc[key, "measured"] == row["measured"]
        assert measured.loc[key, "median_s"] == pytest.approx(row["median_s"])
        assert measured.loc[key, "p90_s"] == pytest.approx(row["p90_s"])


def _events_scope(owner_filter: bool = False) -> str:
    box = "e.box_key IN (SELECT box_key FROM crm.boxes)"
    return f"FROM crm.events e WHERE {box if owner_filter else 'TRUE'}"


def test_events_headlines_and_metric_builder_equal_sql(
    rich_db: Path, rich_sql: SQL, point_at: Callable[[Path], Path]
) -> None:
    point_at(rich_db)
    at = open_page(new_app().run(), "events")
    assert not at.exception, [e.value for e in at.exception]
    top = _row(rich_sql, f"""SELECT COUNT(*) AS events, COUNT(DISTINCT event_name) AS names,
        COUNT(*) FILTER (WHERE e.box_key IN (SELECT box_key FROM crm.boxes)) AS with_box,
        strftime(MAX("timestamp"), '%Y-%m-%d') AS latest {_events_scope()}""")
    shown = metric_values(at)
    assert shown["Events"] == fmt_int(top["events"])
    assert shown["Event names"] == fmt_int(top["names"])
    assert shown["Tied to a box"] == fmt_int(top["with_box"])
    assert shown["Latest event"] == top["latest"]

    # Count of one name, filtered by a text property.
    at = at.selectbox(key="events_metric_name").set_value("Offer made").run()
    at = at.selectbox(key="events_metric_prop").set_value("currency").run()
    at = at.selectbox(key="events_metric_value").set_value("EUR").run()
    offers = _row(rich_sql, f"""SELECT COUNT(*) AS n, SUM(CAST(properties->>'$.amount' AS DOUBLE)) AS amount
        {_events_scope()} AND event_name = 'Offer made' AND properties->>'$.currency' = 'EUR'""")
    assert metric_values(at)["Matching events"] == fmt_int(offers["n"]) != "0"
    assert "Count" not in metric_values(at)
    at = at.selectbox(key="events_metric_measure").set_value("amount").run()
    assert metric_values(at)["Sum of amount"] == fmt_number(offers["amount"])
    assert metric_values(at)["Matching events"] == fmt_int(offers["n"])

    # A sum where some values are text: they are left out and counted, never parsed.
    at = at.selectbox(key="events_metric_prop").set_value("__any__").run()
    at = at.selectbox(key="events_metric_name").set_value("Payment received").run()
    at = at.selectbox(key="events_metric_measure").set_value("amount").run()
    pay = _row(rich_sql, f"""SELECT COUNT(*) AS n,
        SUM(CASE WHEN json_type(properties, '$.amount') IN ('DOUBLE', 'BIGINT', 'UBIGINT') THEN CAST(properties->>'$.amount' AS DOUBLE) END) AS total,
        COUNT(*) FILTER (WHERE json_type(properties, '$.amount') IS DISTINCT FROM 'DOUBLE'
                           AND json_type(properties, '$.amount') NOT IN ('BIGINT', 'UBIGINT')) AS text
        {_events_scope()} AND event_name = 'Payment received'""")
    shown = metric_values(at)
    assert shown["Sum of amount"] == fmt_number(pay["total"])
    assert shown["Not a number"] == fmt_int(pay["text"]) != "0"
    assert not at.exception


def test_events_owner_filter_leaves_out_events_without_a_box(
    rich_db: Path, rich_sql: SQL, point_at: Callable[[Path], Path]
) -> None:
    """The scope rule: with an owner filter only events of that owner's boxes count."""
    point_at(rich_db)
    at = open_page(new_app().run(), "events")
    owner = _row(rich_sql, "SELECT owner_email FROM crm.boxes WHERE owner_email IS NOT NULL GROUP BY 1 ORDER BY COUNT(*) DESC, 1 LIMIT 1")["owner_email"]
    at = at.sidebar.multiselect(key="filter_owners").set_value([owner]).run()
    n = _row(rich_sql, f"SELECT COUNT(*) AS n FROM crm.events e JOIN crm.boxes b USING (box_key) WHERE b.owner_email = '{owner}'")["n"]
    assert metric_values(at)["Events"] == fmt_int(n)
    assert metric_values(at)["Tied to a box"] == fmt_int(n)
    # With a pipeline chosen: its boxes' events, plus unboxed events that carry the pipeline.
    at = at.sidebar.multiselect(key="filter_owners").set_value([]).run()
    pipeline = _row(rich_sql, "SELECT pipeline_key FROM crm.events WHERE pipeline_key IS NOT NULL LIMIT 1")["pipeline_key"]
    at = at.sidebar.selectbox(key="filter_pipeline").set_value(pipeline).run()
    n = _row(rich_sql, f"""SELECT COUNT(*) AS n FROM crm.events e LEFT JOIN crm.boxes b USING (box_key)
        WHERE (b.box_key IS NOT NULL AND b.pipeline_key = '{pipeline}') OR (b.box_key IS NULL AND e.pipeline_key = '{pipeline}')""")["n"]
    assert metric_values(at)["Events"] == fmt_int(n)


@pytest.mark.parametrize("table", ["box_stage_history", "events"])
def test_pages_say_what_to_run_without_their_table(
    table: str, demo_db: DemoDB, point_at: Callable[[Path], Path], tmp_path: Path
) -> None:
    """An older destination: a note naming the command, never an error."""
    path = point_at(accounts.copy_db(demo_db.path, tmp_path / "old.duckdb"))
    con = duckdb.connect(str(path))
    con.execute(f"DROP TABLE IF EXISTS crm.{table}")
    con.close()
    page, command = ("velocity", "--backfill-history") if table == "box_stage_history" else ("events", "streak_events.py load")
    at = open_page(new_app().run(), page)
    assert not at.exception and not at.error
    assert any(command in i.value for i in at.info), [i.value for i in at.info]


def test_velocity_on_the_jobs_own_first_run_history(demo_db: DemoDB, point_at: Callable[[Path], Path]) -> None:
    """The demo load's real history (one snapshot stay per box, none ended): counts, and a calm note."""
    point_at(demo_db.path)
    at = open_page(new_app().run(), "velocity")
    assert not at.exception
    con = duckdb.connect(str(demo_db.path), read_only=True)
    stays = con.execute("SELECT COUNT(*) FROM crm.box_stage_history WHERE box_key IN (SELECT box_key FROM crm.boxes)").fetchone()[0]
    con.close()
    assert metric_values(at)["Stays recorded"] == fmt_int(stays)


def test_velocity_follows_the_sidebar_filters_and_closed_stages(
    rich_db: Path, rich_sql: SQL, point_at: Callable[[Path], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Owner and pipeline filters narrow the stays (SQL agrees); closed stages leave the time chart."""
    monkeypatch.setenv("DASHBOARD__CLOSED_STAGES", '["Won", "Lost"]')
    point_at(rich_db)
    at = open_page(new_app().run(), "velocity")
    assert any("Closed stages left out" in c.value and "Won" in c.value for c in at.caption)
    owner, pipeline = _row(rich_sql, "SELECT owner_email, pipeline_key FROM crm.boxes WHERE owner_email IS NOT NULL "
                                     "GROUP BY 1, 2 ORDER BY COUNT(*) DESC, 1, 2 LIMIT 1").values()
    at = at.sidebar.selectbox(key="filter_pipeline").set_value(pipeline).run()
    at = at.sidebar.multiselect(key="filter_owners").set_value([owner]).run()
    expected = _row(rich_sql, f"""SELECT COUNT(DISTINCT h.box_key) AS boxes, COUNT(*) AS stays,
        COUNT(*) FILTER (WHERE h.left_at IS NOT NULL AND h.exact) AS measured
        FROM crm.box_stage_history h JOIN crm.boxes b USING (box_key)
        WHERE b.owner_email = '{owner}' AND b.pipeline_key = '{pipeline}' AND h.pipeline_key = '{pipeline}'""")
    shown = metric_values(at)
    assert (shown["Boxes with history"], shown["Stays recorded"], shown["Stays measured"]) == (
        fmt_int(expected["boxes"]), fmt_int(expected["stays"]), fmt_int(expected["measured"]))
    assert 0 < expected["stays"] < len(rich_sql("SELECT 1 FROM crm.box_stage_history"))
    assert not at.exception


ODD_KEYS = {"a/b": 1.5, "t~0": 2, "x'y\"z": 3, "** ![f](http://127.0.0.1:9/f.png)": 4, "text": "12", "nested.dot": 5}


def _json_checks(run: Callable[[str], list[tuple[Any, ...]]], dialect: str, source: str) -> None:
    from dashboards.data.sql import json_keys, json_number, json_text

    for key, value in ODD_KEYS.items():
        (text, number), = run(f"SELECT {json_text(dialect, 'p', key)}, {json_number(dialect, 'p', key)} FROM {source}")
        assert text == str(value), (dialect, key, text)
        assert number == (None if isinstance(value, str) else float(value)), (dialect, key, number)
    assert run(f"SELECT {json_text(dialect, 'p', 'missing')} FROM {source}") == [(None,)]
    assert sorted(r[0] for r in run(f"SELECT {json_keys(dialect, 'p')} FROM {source}")) == sorted(ODD_KEYS)


def test_json_helpers_read_any_property_name_on_duckdb_and_postgres() -> None:
    """data/sql.py's JSON access: odd names (/, ~, quotes, markup, dots), numbers vs text, both engines."""
    import json
    import os

    literal = json.dumps(ODD_KEYS).replace("'", "''")
    con = duckdb.connect()
    try:
        _json_checks(lambda q: con.execute(q).fetchall(), "duckdb", f"(SELECT CAST('{literal}' AS JSON) AS p) AS t")
    finally:
        con.close()
    url = os.environ.get("STREAK_TEST_POSTGRES_URL")
    if not url:
        return
    import psycopg2

    pg = psycopg2.connect(url)
    try:
        with pg.cursor() as cur:
            def run(query: str) -> list[tuple[Any, ...]]:
                cur.execute(query.replace("%", "%%"))
                return list(cur.fetchall())

            _json_checks(run, "postgres", f"(SELECT CAST('{literal}' AS JSONB) AS p) AS t")
    finally:
        pg.close()
