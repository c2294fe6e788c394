"""The settings an account comes with, kept in its copy (streak_warehouse/account_defaults.py)."""

from __future__ import annotations

import duckdb

from streak_source.sandbox import DEMO_SETTINGS
from streak_warehouse.account_defaults import VIEW, defaults_view_sql, parse_defaults
from streak_warehouse.sql import ansi_dialect


def _run(con: duckdb.DuckDBPyConnection, settings: dict[str, object]) -> None:
    for statement in defaults_view_sql(settings, ansi_dialect("crm")):
        con.execute(statement)


def _relations(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return dict(con.execute("SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = 'crm'").fetchall())


def test_settings_round_trip_as_a_view_and_go_when_an_account_brings_none() -> None:
    con = duckdb.connect()
    try:
        con.execute("CREATE SCHEMA crm")
        odd = {**DEMO_SETTINGS, "x.quote": ["it's", "\"q\"", "Région / 地域"]}
        _run(con, odd)
        assert _relations(con) == {VIEW: "VIEW"}  # a view: no table, the warehouse layout is unchanged
        assert parse_defaults(con.execute(f"SELECT setting, value_json FROM crm.{VIEW}").fetchall()) == odd
        _run(con, {})  # the next run loads a user's own account into the same place
        assert _relations(con) == {}
    finally:
        con.close()


def test_a_value_that_is_not_json_is_left_out() -> None:
    assert parse_defaults([("a", "[1]"), ("b", "not json"), ("c", None)]) == {"a": [1]}
