"""Whole-table writes of the stage history tables (issue 13): the bulk paths keep every value as it
was (text with tabs, newlines, backslashes and quotes, NULLs, booleans, timestamps), on DuckDB and
Postgres, and a run that gives no contents for a ``whole`` table carries the live rows instead."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from streak_warehouse.history_tables import BOX_STAGE_HISTORY, STAGE_TRANSITIONS
from streak_warehouse.persistent import bulk_insert, carry_over_duckdb, create_sql

NASTY = "tab\there\nnewline \\N back\\slash 'quote' \"dq\" \r 🤝 地域"


def sample_rows() -> list[dict[str, Any]]:
    at = datetime(2026, 3, 1, 12, 30, 15, 123000, tzinfo=UTC)
    return [
        {"stay_key": "k1", "box_key": "b1", "pipeline_key": "p", "stage_key": "s1", "stage_name": NASTY,
         "stage_order": 3, "entered_at": at, "left_at": None, "time_in_stage_s": None, "known_from": "snapshot",
         "exact": False, "entered_exact": False, "left_exact": None, "last_seen_at": at, "box_deleted_at": None},
        {"stay_key": "k2", "box_key": "b1", "pipeline_key": "p", "stage_key": "s0", "stage_name": None,
         "stage_order": None, "entered_at": at.replace(hour=1), "left_at": at, "time_in_stage_s": 41415.123,
         "known_from": "newsfeed", "exact": True, "entered_exact": True, "left_exact": True, "last_seen_at": None,
         "box_deleted_at": at},
    ]


def read(execute: Any, schema: str) -> list[tuple[Any, ...]]:
    names = ", ".join(BOX_STAGE_HISTORY.column_names())
    return [tuple(r) for r in execute(f"select {names} from {schema}.box_stage_history order by stay_key")]


def as_tuples(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [tuple(row[name] for name in BOX_STAGE_HISTORY.column_names()) for row in rows]


def test_duckdb_fresh_file_gets_the_given_contents_or_carries_the_live_rows(tmp_path: Path) -> None:
    live, fresh, again = tmp_path / "live.duckdb", tmp_path / "fresh.duckdb", tmp_path / "again.duckdb"
    rows = sample_rows()
    carry_over_duckdb(live, fresh, "crm", {BOX_STAGE_HISTORY.name: rows, STAGE_TRANSITIONS.name: []})
    with duckdb.connect(str(fresh), read_only=True) as con:
        assert read(lambda sql: con.execute(sql).fetchall(), "crm") == as_tuples(rows)
    fresh.rename(live)
    carry_over_duckdb(live, again, "crm", {BOX_STAGE_HISTORY.name: rows[:1]})  # whole contents: k2 is gone
    with duckdb.connect(str(again), read_only=True) as con:
        assert [r[0] for r in read(lambda sql: con.execute(sql).fetchall(), "crm")] == ["k1"]
    carry_over_duckdb(again, tmp_path / "carried.duckdb", "crm", {})  # no contents given: carried as is
    with duckdb.connect(str(tmp_path / "carried.duckdb"), read_only=True) as con:
        assert [r[0] for r in read(lambda sql: con.execute(sql).fetchall(), "crm")] == ["k1"]


@pytest.mark.postgres
def test_postgres_copy_keeps_every_value(fresh_postgres_url: str) -> None:
    import psycopg2

    class Client:  # the two members of dlt's sql client that bulk_insert uses
        def __init__(self) -> None:
            self.native_connection = psycopg2.connect(fresh_postgres_url)

        def execute_sql(self, sql: str) -> Any:
            with self.native_connection.cursor() as cursor:
                cursor.execute(sql)
                return cursor.fetchall() if cursor.description else None

    client = Client()
    try:
        client.execute_sql("create schema crm")
        client.execute_sql(create_sql(BOX_STAGE_HISTORY, "crm"))
        bulk_insert(client, BOX_STAGE_HISTORY, "crm", sample_rows())
        assert read(client.execute_sql, "crm") == as_tuples(sample_rows())
    finally:
        client.native_connection.close()
