"""streak_warehouse.destination (which DuckDB file is the warehouse: one rule) and streak_warehouse.sql.

Regression (issue 11, "one home per rule"): the loader's ``duckdb_file_target`` treated a
``duckdb:///`` URL as "not a file" (so the load skipped the whole-file swap) while the dashboard's
``resolve_source`` stripped the prefix with a regex that made ``duckdb:////abs/x.duckdb`` relative:
the two disagreed about which file is the warehouse.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from streak_warehouse.destination import (
    duckdb_file_target,
    duckdb_path_from_credentials,
    warehouse_destination,
)
from streak_warehouse.sql import (
    catalog_sql,
    qualified,
    quote_identifier,
    string_literal,
)

CREDENTIALS = "DESTINATION__WAREHOUSE__CREDENTIALS"


@pytest.mark.parametrize(
    ("credentials", "expected"),
    [
        ("duckdb:///{root}/url.duckdb", "{root}/url.duckdb"),  # three slashes + absolute path
        ("{root}/plain.duckdb", "{root}/plain.duckdb"),
        ("duckdb:///relative.duckdb", "{root}/relative.duckdb"),  # relative: dlt's local dir
        ("relative2.duckdb", "{root}/relative2.duckdb"),
        (":memory:", None),
        ("duckdb:///:memory:", None),
        ("md:my_db", None),
    ],
)
def test_one_rule_for_which_duckdb_file_is_the_warehouse(
    credentials: str, expected: str | None, dlt_isolated: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = dlt_isolated.root.resolve()
    monkeypatch.setenv(CREDENTIALS, credentials.format(root=root))
    want = None if expected is None else Path(expected.format(root=root))
    assert duckdb_file_target() == want
    assert duckdb_path_from_credentials(credentials.format(root=root)) == want


def test_the_default_file_when_no_credentials_and_none_for_other_destinations(
    dlt_isolated: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert duckdb_file_target() == dlt_isolated.duckdb_path.resolve()
    monkeypatch.setenv("DESTINATION__WAREHOUSE__DESTINATION_TYPE", "postgres")
    assert duckdb_file_target() is None


def test_a_duckdb_url_loads_and_reads_the_same_file(dlt_isolated: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The destination the job loads and the one readers open are the file the rule names."""
    target = dlt_isolated.root / "by_url.duckdb"
    monkeypatch.setenv(CREDENTIALS, f"duckdb:///{target}")
    destination = warehouse_destination()
    assert Path(destination.config_params["credentials"]).resolve() == target.resolve()


def test_quoting_keeps_hostile_text_inside_identifiers_and_literals() -> None:
    hostile = "x\"; DROP TABLE boxes; -- ' \\ "
    with duckdb.connect() as con:
        con.execute("CREATE SCHEMA crm")
        con.execute(f"CREATE TABLE {qualified('crm', hostile)} ({quote_identifier(hostile)} VARCHAR)")
        con.execute(f"INSERT INTO {qualified('crm', hostile)} VALUES ({string_literal(hostile)})")
        assert con.execute(f"SELECT * FROM {qualified('crm', hostile)}").fetchall() == [(hostile,)]
        assert con.execute(catalog_sql("crm")).fetchall() == [(hostile, "BASE TABLE", hostile)]
    assert string_literal("a\x00b") == "E'ab'"  # NUL, which neither database stores, is dropped
