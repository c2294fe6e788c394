"""The destination kinds (``streak_warehouse/targets/``): chosen once from configuration, and the
calling shapes they share with the rest of the warehouse (``sql.executor``, ``sql.driver_name``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from streak_warehouse.sql import driver_name, executor
from streak_warehouse.targets.configured import configured_target
from streak_warehouse.targets.duckdb_file import Connection, DuckDBFile
from streak_warehouse.targets.in_place import InPlace, lock_file
from streak_warehouse.targets.schema_swap import SchemaSwap


def test_the_configured_kind_follows_the_destination_type(
    dlt_isolated: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "w.duckdb"
    monkeypatch.setenv("DESTINATION__WAREHOUSE__DESTINATION_TYPE", "duckdb")
    monkeypatch.setenv("DESTINATION__WAREHOUSE__CREDENTIALS", str(path))
    assert configured_target() == DuckDBFile(path.resolve())
    monkeypatch.setenv("DESTINATION__WAREHOUSE__DESTINATION_TYPE", "postgres")
    assert configured_target() == SchemaSwap("postgres")
    monkeypatch.setenv("DESTINATION__WAREHOUSE__DESTINATION_TYPE", "filesystem")
    assert configured_target() == InPlace("filesystem")


def test_in_place_lock_files_differ_per_location_and_stay_put(dlt_isolated: Any) -> None:
    first, second = lock_file("s3://bucket/a"), lock_file("s3://bucket/b")
    assert first != second
    assert lock_file("s3://bucket/a") == first  # the main job and the events load meet on it
    assert first.parent == dlt_isolated.pipelines_dir.parent / "streak_runs"
    assert first.name.startswith("destination-") and first.suffix == ".lock"


def test_executor_reads_no_rows_as_an_empty_list_and_driver_names_duckdb() -> None:
    class Silent:
        def execute_sql(self, sql: str) -> None:
            return None

    assert executor(Silent())("CREATE TABLE t (x INT)") == []
    with duckdb.connect() as con:
        client = Connection(con)
        assert executor(client)("SELECT 1 + 1") == [(2,)]
        assert driver_name(client) == "duckdb"  # its class lives in ``_duckdb``
    assert driver_name(Silent()) == "builtins"  # no native connection
