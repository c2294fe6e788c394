"""Issue 24: the outcome views of a real copy equal a recomputation in plain Python from its raw tables
(tests/outcomes_support.py), on DuckDB and Postgres; and their SQL rules on hand-made tables.

The real copies: a small sandbox account loaded with its past (``--backfill-history``), then a few
simulated days with a load each (busy days: boxes move, close, get edited), configured through the
environment (won, lost, a "Pipeline/Stage" closed stage, configured probabilities, a small
``min_sample``), so every probability source and a value changed after its box closed occur.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pytest

import streak_clock
from streak_source.sandbox import Sandbox
from streak_warehouse.outcome_config import OutcomeSettings, read_settings
from streak_warehouse.outcome_views import (
    SESSION_NAMES, TABLES, VIEWS, SessionTarget, build_outcomes, copy_sources, create_outcome_views, same_as_loaded,
)
from tests import outcomes_support as support
from tests.destinations_support import Reader
from tests.loadtools import run_in_process

BUSY = {"changed": 0.3, "created": 0.02, "deleted": 0.01}
SEED = 11


def _view(reader: Reader, name: str, key: tuple[str, ...], columns: str) -> dict[Any, dict[str, Any]]:
    names = [c.strip() for c in columns.split(",")]
    rows = reader.rows(f"select {', '.join((*key, *names))} from crm.{name}")
    return {(row[0] if len(key) == 1 else tuple(row[:len(key)])): dict(zip(names, row[len(key):])) for row in rows}


def _check(reader: Reader) -> dict[str, Any]:
    """Every view against the recomputation; returns the recomputation (for further checks)."""
    want = support.expected(reader)
    got = {
        "box_outcomes": _view(reader, "box_outcomes", ("box_key",),
                              "pipeline_key, pipeline_name, stage_key, outcome, closed, closed_at, closed_at_exact, "
                              "cycle_days, stage_entered_at, value, owner_name, owner_email"),
        "win_rate_monthly": _view(reader, "win_rate_monthly", ("pipeline_key", "month"),
                                  "won, lost, win_rate, won_value, lost_value, boxes_with_value, win_rate_by_value"),
        "stage_win_probability": _view(reader, "stage_win_probability", ("pipeline_key", "stage_key"),
                                       "closed_boxes, won_boxes, probability, probability_source"),
        "weighted_pipeline": _view(reader, "weighted_pipeline", ("pipeline_key", "stage_key"),
                                   "open_boxes, boxes_with_value, open_value, probability, weighted_value"),
        "owner_scorecard": _view(reader, "owner_scorecard", ("owner_email",),
                                 "won, lost, win_rate, won_value, open_boxes, open_value, weighted_value, "
                                 "median_cycle_days, overdue_tasks"),
        "forecast_monthly": _view(reader, "forecast_monthly", ("pipeline_key", "month"), "expected_won_boxes, expected_won_value"),
    }
    # stages only the history knows (none is expected here) have rows the recomputation does not make
    got["stage_win_probability"] = {k: v for k, v in got["stage_win_probability"].items() if k in want["stage_win_probability"]}
    problems = [p for view, rows in got.items() for p in support.differences(view, rows, want[view])]
    assert not problems, "\n".join(problems[:20])
    ranges = reader.rows("select won_boxes_low, won_boxes_high, won_value_low, won_value_high, as_of from crm.forecast_monthly")
    assert all(0 <= lo <= hi and 0 <= vlo <= vhi for lo, hi, vlo, vhi, _ in ranges)
    assert {support._utc(r[4]) for r in ranges} == {want["as_of"]}  # "now" is the load's end, stored
    return want


def _load(sb: Sandbox, days: int, change_after_close: bool, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Day 0 with its past, then ``days`` busy days with a load each. With ``change_after_close``, a
    won Sales deal's Deal size is 50,000 on day 0 and 1,234,567 from then on (the views must keep the
    value it closed with)."""
    args = {"api_key": sb.api_key, "base_url": sb.base_url, "max_requests_per_second": 1000}
    from pipelines.job import run_full_load

    # sandbox time runs ahead of the wall clock; each load ends a minute after the account's "now"
    monkeypatch.setattr(streak_clock, "now", lambda: datetime.fromtimestamp(sb.account.anchor_ms / 1000, UTC)
                        + timedelta(minutes=1))

    changed: dict[str, Any] = {}
    if change_after_close:
        sales = next(p for p in sb.account.pipelines if p.name == "Sales")
        won = next(s.key for s in sales.stages if s.name == "Won")
        deal_size = next(f.key for f in sales.fields if f.name == "Deal size")
        box = next(b for b in sales.boxes if b.stage_key == won)
        box.fields[deal_size] = "50000"
        changed = {"box_key": box.key, "field_key": deal_size}
    run_full_load(dict(args), progress=None, backfill_history=True)
    if change_after_close:
        box.fields[deal_size] = "1234567"
    for _ in range(days):
        sb.advance(1)
        run_in_process(args)
    return changed


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in support.SETTINGS_ENV.items():
        monkeypatch.setenv(name, value)


def test_every_view_equals_its_recomputation_on_duckdb(dlt_isolated: Any, configured: None,
                                                       caplog: pytest.LogCaptureFixture,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    with caplog.at_level(logging.WARNING), Sandbox(boxes=60, seed=SEED, rates=BUSY) as sb:
        changed = _load(sb, 1, change_after_close=True, monkeypatch=monkeypatch)
    assert "outcomes.lost_stages: 'Wonn' names no stage of this account" in caplog.text
    with Reader(duckdb_path=dlt_isolated.duckdb_path) as reader:
        want = _check(reader)
        outcome = want["box_outcomes"][changed["box_key"]]
        [(today,)] = reader.rows("select value_number from crm.box_field_values where box_key = ? and field_key = ?",
                                 [changed["box_key"], changed["field_key"]])
        assert (outcome["outcome"], today, outcome["value"]) == ("won", 1234567.0, 50000.0)
        sources = {row["probability_source"] for row in want["stage_win_probability"].values()}
        assert {"history", "configured", "won stage", "lost stage"} <= sources, sources
        stages = dict(reader.rows("select s.name, o.outcome from crm.outcome_stages o join crm.stages s "
                                  "using (pipeline_key, stage_key) join crm.pipelines p using (pipeline_key) where p.name = 'Sales'"))
        assert stages["On hold"] == "closed" and stages["Won"] == "won"
        assert sum(row["expected_won_boxes"] for row in want["forecast_monthly"].values()) > 0


@pytest.mark.postgres
def test_every_view_equals_its_recomputation_on_postgres(postgres_warehouse: str, configured: None,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    with Sandbox(boxes=40, seed=SEED, rates=BUSY) as sb:
        _load(sb, 1, change_after_close=False, monkeypatch=monkeypatch)
    with Reader(postgres_url=postgres_warehouse) as reader:
        _check(reader)


# --- the rules of the SQL, on hand-made tables ------------------------------------------------------

T0 = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture
def con() -> Any:
    with duckdb.connect() as connection:
        connection.execute("SET TimeZone = 'America/Los_Angeles'")  # months of close must not follow the session
        connection.execute("CREATE SCHEMA crm")
        yield connection


def _create(con: Any, statements: str) -> None:
    for statement in statements.strip().split(";"):
        if statement.strip():
            con.execute(statement)


def test_a_box_keeps_the_value_and_owner_it_closed_with_and_months_are_utc(con: Any) -> None:
    """b1 closed (Won) at T0+2d with 100, its value became 999 and its owner changed later; b2 closed
    before the history began (first version counts: value 5, owner Ann, not today's Cy); b3 is open
    (today's value). b1 closed on the last evening of January in Los Angeles, already February in UTC."""
    t1, t2, t3 = T0 + timedelta(days=1), T0 + timedelta(days=3), T0 + timedelta(days=40)
    close = datetime(2030, 2, 1, 5, tzinfo=UTC)
    _create(con, f"""
    CREATE TABLE crm.pipelines (pipeline_key VARCHAR, name VARCHAR);
    INSERT INTO crm.pipelines VALUES ('p', 'Sales');
    CREATE TABLE crm.stages (pipeline_key VARCHAR, stage_key VARCHAR, name VARCHAR, stage_order BIGINT);
    INSERT INTO crm.stages VALUES ('p', 's1', 'Lead', 0), ('p', 's2', 'Won', 1);
    CREATE TABLE crm.pipeline_fields (pipeline_key VARCHAR, field_key VARCHAR, name VARCHAR, type VARCHAR, field_order BIGINT);
    INSERT INTO crm.pipeline_fields VALUES ('p', 'f', 'Amount', 'FORMULA', 0);
    CREATE TABLE crm.wide_view_columns (pipeline_key VARCHAR, field_key VARCHAR, data_type VARCHAR);
    INSERT INTO crm.wide_view_columns VALUES ('p', 'f', 'double');
    CREATE TABLE crm.boxes (box_key VARCHAR, name VARCHAR, pipeline_key VARCHAR, stage_key VARCHAR, stage_name VARCHAR,
      owner_name VARCHAR, owner_email VARCHAR, creation_timestamp TIMESTAMPTZ, last_stage_change_timestamp TIMESTAMPTZ);
    INSERT INTO crm.boxes VALUES ('b1', 'one', 'p', 's2', 'Won', 'Later', 'later@x', '{T0}', '{close}'),
      ('b2', 'two', 'p', 's2', 'Won', 'Cy', 'cy@x', '{T0}', '{T0 + timedelta(hours=1)}'),
      ('b3', 'three', 'p', 's1', 'Lead', 'Ann', 'ann@x', '{T0}', '{T0}');
    CREATE TABLE crm.box_stage_history (box_key VARCHAR, pipeline_key VARCHAR, stage_key VARCHAR, stage_name VARCHAR,
      stage_order BIGINT, entered_at TIMESTAMPTZ, left_at TIMESTAMPTZ, entered_exact BOOLEAN, box_deleted_at TIMESTAMPTZ);
    INSERT INTO crm.box_stage_history VALUES ('b1', 'p', 's1', 'Lead', 0, '{T0}', '{close}', TRUE, NULL),
      ('b1', 'p', 's2', 'Won', 1, '{close}', NULL, TRUE, NULL), ('b2', 'p', 's2', 'Won', 1, '{T0 + timedelta(hours=1)}', NULL, FALSE, NULL),
      ('b3', 'p', 's1', 'Lead', 0, '{T0}', NULL, TRUE, NULL);
    CREATE TABLE crm.box_field_values (box_key VARCHAR, pipeline_key VARCHAR, field_key VARCHAR, value_number DOUBLE);
    INSERT INTO crm.box_field_values VALUES ('b1', 'p', 'f', 999), ('b2', 'p', 'f', 7), ('b3', 'p', 'f', 50);
    CREATE TABLE crm.box_field_values_history (box_key VARCHAR, pipeline_key VARCHAR, field_key VARCHAR, value_number DOUBLE,
      valid_from TIMESTAMPTZ, valid_to TIMESTAMPTZ);
    INSERT INTO crm.box_field_values_history VALUES ('b1', 'p', 'f', 100, '{t1}', '{t3}'), ('b1', 'p', 'f', 999, '{t3}', NULL),
      ('b2', 'p', 'f', 5, '{t1}', '{t2}'), ('b2', 'p', 'f', 7, '{t2}', NULL), ('b3', 'p', 'f', 40, '{t1}', '{t2}'),
      ('b3', 'p', 'f', 50, '{t2}', NULL);
    CREATE TABLE crm.boxes_history (box_key VARCHAR, owner_name VARCHAR, owner_email VARCHAR, valid_from TIMESTAMPTZ,
      valid_to TIMESTAMPTZ);
    INSERT INTO crm.boxes_history VALUES ('b1', 'Bob', 'bob@x', '{t1}', '{t3}'), ('b1', 'Later', 'later@x', '{t3}', NULL),
      ('b2', 'Ann', 'ann@x', '{t1}', '{t2}'), ('b2', 'Cy', 'cy@x', '{t2}', NULL);
    CREATE TABLE crm.load_history (finished_at TIMESTAMPTZ, outcome VARCHAR);
    INSERT INTO crm.load_history VALUES ('{t3}', 'ok');
    """)
    settings = read_settings({"outcomes.won_stages": ["won"], "outcomes.min_sample": 1}.get)
    report = create_outcome_views(lambda sql: con.execute(sql).fetchall(), "crm", settings, t3, "duckdb")
    assert report.value_fields == ["Sales: Amount (default)"] and not report.warnings
    rows = con.execute("SELECT box_key, outcome, value, owner_name, closed_at_exact, cycle_days FROM crm.box_outcomes "
                       "ORDER BY box_key").fetchall()
    assert rows == [("b1", "won", 100.0, "Bob", True, pytest.approx((close - T0).total_seconds() / 86400)),
                    ("b2", "won", 5.0, "Ann", False, pytest.approx(1 / 24)), ("b3", "open", 50.0, "Ann", None, None)]
    assert con.execute("SELECT CAST(month AS VARCHAR), won, win_rate FROM crm.win_rate_monthly ORDER BY 1").fetchall() == [
        ("2030-01-01", 1, 1.0), ("2030-02-01", 1, 1.0)]
    assert con.execute("SELECT closed_boxes, won_boxes, probability, probability_source FROM crm.stage_win_probability "
                       "WHERE stage_key = 's1'").fetchall() == [(1, 1, 1.0, "history")]  # b1 was in Lead and won

    # The dashboard's way: the same steps into CTEs of one query (nothing written) give the same rows.
    execute = lambda sql: con.execute(sql).fetchall()  # noqa: E731
    src = copy_sources(execute, "crm")
    assert same_as_loaded(execute, src, settings)
    session = SessionTarget(execute)
    build_outcomes(session, replace(src, names=SESSION_NAMES), settings, t3)
    for relation in (*VIEWS, *TABLES):
        assert sorted(execute(session.query(f"SELECT * FROM {relation}")), key=str) == \
            sorted(execute(f"SELECT * FROM crm.{relation}"), key=str), relation
    other = read_settings({"outcomes.lost_stages": ["won"], "outcomes.min_sample": 1}.get)
    assert not same_as_loaded(execute, src, other)
    session = SessionTarget(execute)
    build_outcomes(session, replace(src, names=SESSION_NAMES), other, t3)
    assert execute(session.query("SELECT box_key, outcome FROM box_outcomes ORDER BY 1")) == [
        ("b1", "lost"), ("b2", "lost"), ("b3", "open")]
    assert execute(session.query("SELECT won, lost FROM win_rate_monthly ORDER BY month")) == [(0, 1), (0, 1)]


def test_a_copy_without_boxes_gets_no_outcome_views_and_says_why(con: Any) -> None:
    report = create_outcome_views(lambda sql: con.execute(sql).fetchall(), "crm", OutcomeSettings(), T0, "duckdb")
    assert report.created == [] and report.line() == "outcomes: none (the copy has no boxes, box_stage_history, load_history)"
    other = create_outcome_views(lambda sql: [], "crm", OutcomeSettings(), T0, "snowflake")
    assert other.skipped and "not on snowflake" in other.skipped

