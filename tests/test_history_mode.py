"""History mode (issue 23): every version of every keyed record, deletions, and the copy as of any run.

The rules are tested on hand-made tables (``record_versions`` in SQL on DuckDB), then end to end: a
short simulation (benchmarks/history_mode.py runs it long) loads the sandbox day by day, full loads
then ``--refresh changed``, and checks that ``streak_history.py as-of <run>`` gives exactly each
day's copy, that each run added as many versions as records changed, and that ``crm.deletions``
names the boxes the sandbox deleted; on DuckDB and Postgres.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from benchmarks.history_mode import BUSY, SEED, simulate
from pipelines import streak_history
from streak_source.sandbox import Sandbox
from streak_warehouse.as_of import AsOfError, Run, copy_run, parse_moment
from streak_warehouse.history_mode import TrackedTable, history_kept_tables, record_versions
from streak_warehouse.persistent import create_sql
from tests.destinations_support import Reader
from tests.loadtools import run_in_process

T0 = datetime(2030, 1, 1, tzinfo=UTC)
BOXES = TrackedTable("boxes", ("box_key",), (("box_key", "text"), ("name", "text"), ("amount", "double"),
                                            ("fields", "json")))
FEED = TrackedTable("box_newsfeed", ("newsfeed_key",), (("newsfeed_key", "text"), ("box_key", "text"),
                                                        ("_dlt_load_id", "text")), append_only=True)


def _type(data_type: str) -> str:
    return "JSON" if data_type == "json" else {"double": "DOUBLE", "text": "VARCHAR"}[data_type]


@pytest.fixture
def con() -> Any:
    with duckdb.connect() as connection:
        connection.execute("CREATE SCHEMA crm")
        connection.execute("SET TimeZone = 'UTC'")
        for table in (BOXES, FEED):
            columns = ", ".join(f"{name} {_type(kind)}" for name, kind in table.columns if name != "_dlt_load_id")
            connection.execute(f"CREATE TABLE crm.{table.name} ({columns}, _dlt_load_id VARCHAR NOT NULL, _dlt_id VARCHAR NOT NULL)")
        for table in history_kept_tables((BOXES, FEED)):
            connection.execute(create_sql(table, "crm"))
        connection.execute("CREATE TABLE crm._dlt_loads (load_id VARCHAR)")
        connection.execute("CREATE TABLE crm.load_history (run_id VARCHAR, finished_at TIMESTAMPTZ, outcome VARCHAR)")
        yield connection


def load(con: Any, at: datetime, boxes: list[tuple[Any, ...]], feed: list[str] = ()) -> dict[str, int]:
    """One "run": replace the copy's tables with ``boxes`` / ``feed`` and record its versions at ``at``."""
    load_id = str(at.timestamp())
    con.execute("DELETE FROM crm.boxes")
    con.execute("DELETE FROM crm.box_newsfeed")
    for key, name, amount, fields in boxes:
        con.execute("INSERT INTO crm.boxes VALUES (?, ?, ?, ?, ?, ?)", [key, name, amount, fields, load_id, key])
    for key in feed:
        con.execute("INSERT INTO crm.box_newsfeed VALUES (?, 'b1', ?, ?)", [key, load_id, key])
    con.execute("INSERT INTO crm._dlt_loads VALUES (?)", [load_id])
    added = record_versions(lambda sql: con.execute(sql).fetchall(), "crm", (BOXES, FEED), at, _type)
    con.execute("INSERT INTO crm.load_history VALUES (?, ?, 'ok')", [load_id, at])
    return added.opened


def history(con: Any) -> list[tuple[Any, ...]]:
    return con.execute("SELECT box_key, name, amount, valid_from, valid_to, deleted FROM crm.boxes_history "
                       "ORDER BY box_key, valid_from").fetchall()


def test_a_version_is_added_only_where_a_stored_value_changed_and_a_gone_record_is_marked_deleted(con: Any) -> None:
    t1, t2, t3, t4 = (T0 + timedelta(days=n) for n in range(4))
    assert load(con, t1, [("b1", "Acme", 10.0, '{"a": 1}'), ("b2", "Beta", None, None)])["boxes"] == 2
    assert load(con, t2, [("b1", "Acme", 10.0, '{"a": 1}'), ("b2", "Beta", None, None)])["boxes"] == 0  # nothing changed
    assert load(con, t3, [("b1", "Acme", 12.5, '{"a": 1}'), ("b3", "Gamma", 1.0, None)])["boxes"] == 2  # b1 changed, b3 new, b2 gone
    assert load(con, t4, [("b1", "Acme", 12.5, '{"a": 2}'), ("b2", "Beta", None, None), ("b3", "Gamma", 1.0, None)])["boxes"] == 2
    assert history(con) == [
        ("b1", "Acme", 10.0, t1, t3, False),
        ("b1", "Acme", 12.5, t3, t4, False),  # a JSON value changed: a new version
        ("b1", "Acme", 12.5, t4, None, False),
        ("b2", "Beta", None, t1, t3, True),  # gone at t3 ...
        ("b2", "Beta", None, t4, None, False),  # ... and back at t4
        ("b3", "Gamma", 1.0, t3, None, False),
    ]
    assert con.execute("SELECT table_name, record_key, name, last_seen, deleted_at FROM crm.deletions").fetchall() == [
        ("boxes", "b2", "Beta", t2, t3)]  # last seen by the run before the one that found it gone


def test_an_append_only_table_keeps_every_entry_ever_fetched_once_as_first_fetched(con: Any) -> None:
    t1, t2, t3 = (T0 + timedelta(days=n) for n in range(3))
    assert load(con, t1, [], ["n1", "n2"])["box_newsfeed"] == 2
    assert load(con, t2, [], ["n3"])["box_newsfeed"] == 1  # n1, n2 not fetched: not gone
    assert load(con, t3, [], ["n1"])["box_newsfeed"] == 0  # fetched again: already kept
    assert con.execute("SELECT newsfeed_key, _dlt_load_id FROM crm.box_newsfeed ORDER BY 1").fetchall() == [
        ("n1", str(t1.timestamp())), ("n2", str(t1.timestamp())), ("n3", str(t2.timestamp()))]
    assert con.execute("SELECT COUNT(*) FROM crm.box_newsfeed_history WHERE valid_to IS NOT NULL OR deleted").fetchall() == [(0,)]
    assert con.execute("SELECT COUNT(*) FROM crm.deletions").fetchall() == [(0,)]


def test_a_time_picks_the_copy_of_the_last_run_that_ended_by_then() -> None:
    runs = [Run("r1", T0, "ok"), Run("r2", T0 + timedelta(hours=1), "failed"), Run("r3", T0 + timedelta(days=1), "ok")]
    assert copy_run(runs, parse_moment("r3", runs)[0]).run_id == "r3"
    assert copy_run(runs, parse_moment("2030-01-01T12:00:00Z", runs)[0]).run_id == "r1"
    assert parse_moment("2030-01-02", runs)[0] == datetime(2030, 1, 2, tzinfo=UTC)  # a date: its start, in UTC
    with pytest.raises(AsOfError, match="run r2 did not complete"):
        parse_moment("r2", runs)
    with pytest.raises(AsOfError, match="no load had completed by 2029"):
        copy_run(runs, parse_moment("2029-12-31", runs)[0])
    with pytest.raises(AsOfError, match="neither an ISO 8601 time"):
        parse_moment("last tuesday", runs)


def test_as_of_says_in_one_line_what_is_wrong(dlt_isolated: Any, capsys: pytest.CaptureFixture[str]) -> None:
    out = dlt_isolated.root / "then.duckdb"
    assert streak_history.main(["as-of", "2030-01-01", "--out", str(out)]) == 1
    assert "no copy at" in capsys.readouterr().err
    assert streak_history.main(["as-of", "2030-01-01", "--out", str(dlt_isolated.duckdb_path)]) == 2
    assert "is the live copy itself" in capsys.readouterr().err
    assert not out.exists()


def _simulate(destination: str, boxes: int, days: int, request: pytest.FixtureRequest, dlt_isolated: Any) -> None:
    if destination == "duckdb":
        path = dlt_isolated.duckdb_path
        connect: Any = lambda: Reader(duckdb_path=path)
    else:
        url = request.getfixturevalue("postgres_warehouse")
        path = None
        connect = lambda: Reader(postgres_url=url)
    with Sandbox(boxes=boxes, seed=SEED, rates={**BUSY, "deleted": 0.03}) as sb:  # a few boxes deleted even in a short run
        found = simulate(sb, days, connect, dlt_isolated.root, path)
        sb.advance(1)
        summary = run_in_process({"api_key": sb.api_key, "base_url": sb.base_url, "max_requests_per_second": 1000})
        again = run_in_process({"api_key": sb.api_key, "base_url": sb.base_url, "max_requests_per_second": 1000})
    assert not found.problems, found.problems[:10]
    assert found.as_of_checked == days + 1
    modes = [day["mode"] for day in found.days]
    assert "changed" in modes and "full" in modes  # both ways of making the copy were exercised
    assert sum(day["records_deleted"] for day in found.days) > 0 and found.deleted_boxes > 0
    assert all(day["versions_added"] < found.days[0]["versions_added"] for day in found.days[1:])  # cost = change
    assert summary["versions_added"] and again["versions_added"] == {} and again["records_deleted"] == {}  # same day: nothing


def test_every_day_as_of_equals_that_days_copy_and_versions_equal_changes_on_duckdb(
    request: pytest.FixtureRequest, dlt_isolated: Any,
) -> None:
    _simulate("duckdb", 80, 4, request, dlt_isolated)


@pytest.mark.postgres
def test_every_day_as_of_equals_that_days_copy_and_versions_equal_changes_on_postgres(
    request: pytest.FixtureRequest, dlt_isolated: Any,
) -> None:
    _simulate("postgres", 50, 3, request, dlt_isolated)


def test_the_as_of_file_holds_the_wide_views_and_says_which_run_it_is(dlt_isolated: Any) -> None:
    with Sandbox(boxes=20, seed=4) as sb:
        first = run_in_process({"api_key": sb.api_key, "base_url": sb.base_url, "max_requests_per_second": 1000})
        sb.advance(2)
        run_in_process({"api_key": sb.api_key, "base_url": sb.base_url, "max_requests_per_second": 1000})
    out: Path = dlt_isolated.root / "then.duckdb"
    assert streak_history.main(["as-of", first["run_id"], "--out", str(out)]) == 0
    with duckdb.connect(str(out), read_only=True) as con:
        views = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables "
                                           "WHERE table_schema = 'crm' AND table_type = 'VIEW'").fetchall()}
        assert views and all(name.startswith("pipeline_") for name in views)
        [(run_id,)] = con.execute("SELECT run_id FROM crm.as_of").fetchall()
        boxes_then = con.execute("SELECT COUNT(*) FROM crm.boxes").fetchall()
        wide_then = con.execute(f"SELECT SUM(n) FROM ({' UNION ALL '.join(f'SELECT COUNT(*) AS n FROM crm.{v}' for v in views)})").fetchall()
    assert run_id == first["run_id"]
    assert boxes_then == [(first["rows"]["boxes"],)] == wide_then  # every box of that copy, in its pipeline's view


def test_as_of_a_copy_from_before_the_history_began_is_refused_not_empty(tmp_path: Path) -> None:
    from streak_warehouse.as_of import live_reader, write_copy_as_of

    path = tmp_path / "upgraded.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA crm")
        con.execute("CREATE TABLE crm.load_history (run_id VARCHAR, finished_at TIMESTAMPTZ, outcome VARCHAR)")
        con.execute("INSERT INTO crm.load_history VALUES ('old', ?, 'ok'), ('new', ?, 'ok')", [T0, T0 + timedelta(days=1)])
        con.execute("CREATE TABLE crm.boxes (box_key VARCHAR)")
        con.execute("CREATE TABLE crm.boxes_history (box_key VARCHAR, valid_from TIMESTAMPTZ, valid_to TIMESTAMPTZ, deleted BOOLEAN)")
        con.execute("INSERT INTO crm.boxes_history VALUES ('b1', ?, NULL, FALSE)", [T0 + timedelta(days=1)])
    with live_reader(path, None, "crm") as read:
        with pytest.raises(AsOfError, match="the history starts with the load that ended 2030-01-02"):
            write_copy_as_of(read, "crm", "old", tmp_path / "then.duckdb")
        result = write_copy_as_of(read, "crm", "new", tmp_path / "then.duckdb")
    assert result.rows == {"boxes": 1}
