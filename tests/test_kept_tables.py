"""The one list of tables kept across replace runs (``streak_warehouse/kept_tables.py``)."""

from __future__ import annotations

from pathlib import Path

import duckdb

from streak_warehouse import layout_version, migrations
from streak_warehouse.kept_tables import KEPT_TABLES, MIGRATIONS
from streak_warehouse.persistent import carry_over_duckdb, ensure_table
from streak_warehouse.sql import ANSI_TYPES, columns_of


def test_every_declaration_is_well_formed() -> None:
    """One name per table, a primary key among its columns, types the SQL text knows, and migrations
    only for tables of the list (a migration naming another table would silently do nothing)."""
    names = [table.name for table in KEPT_TABLES]
    assert len(names) == len(set(names)), names
    for table in KEPT_TABLES:
        columns = table.column_names()
        assert len(columns) == len(set(columns)), table.name
        assert table.primary_key and set(table.primary_key) <= set(columns), table.name
        assert {kind for _, kind in table.columns} <= set(ANSI_TYPES), table.name
    assert {m.table for m in MIGRATIONS} <= set(names)
    migrations.check(MIGRATIONS, layout_version.LAYOUT_VERSION)


def test_a_first_run_creates_exactly_the_declared_tables(tmp_path: Path) -> None:
    carry_over_duckdb(tmp_path / "no-live-copy-yet.duckdb", tmp_path / "fresh.duckdb", "crm", {})
    with duckdb.connect(str(tmp_path / "fresh.duckdb"), read_only=True) as con:
        execute = lambda sql: con.execute(sql).fetchall()
        tables = {row[0] for row in execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'crm'")}
        assert tables == {table.name for table in KEPT_TABLES}
        for table in KEPT_TABLES:
            assert columns_of(execute, "crm", table.name) == set(table.column_names()), table.name


def test_ensure_table_creates_a_missing_table_and_adds_missing_columns() -> None:
    """The one rule every kept table (``events`` included) is created or upgraded by."""
    table = KEPT_TABLES[0]
    with duckdb.connect() as con:
        execute = lambda sql: con.execute(sql).fetchall()
        con.execute("CREATE SCHEMA crm")
        ensure_table(execute, table, "crm")
        assert columns_of(execute, "crm", table.name) == set(table.column_names())
        dropped = table.column_names()[-1]
        con.execute(f'ALTER TABLE crm.{table.name} DROP COLUMN "{dropped}"')
        ensure_table(execute, table, "crm")  # an old table: the newer column is added, nothing else changes
        assert columns_of(execute, "crm", table.name) == set(table.column_names())
