"""What outlives a replace run: dlt's state and the persistent tables (issue 11, defects 1 and 3).

Regressions: on the old code ``crm._dlt_pipeline_state`` held 0 rows after the second run (dlt wrote
state only when it changed, into the fresh file/schema), and "loads so far" was always 1 (the file or
schema is replaced whole, ``_dlt_loads`` keeps one row; there was no ``load_history``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest
from dlt.pipeline.exceptions import PipelineStepFailed

from streak_source.sandbox import Sandbox
from streak_warehouse import kept_tables
from streak_warehouse.kept_tables import PersistentTable
from streak_warehouse.persistent import carry_over_duckdb, carry_over_schema
from tests.destinations_support import Reader
from tests.loadtools import run_in_process

BOTH = ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)]
FAULT = "malformed:route=/api/v2/boxes/{box_key}/tasks:times=1"


def reader_kwargs(destination: str, request: pytest.FixtureRequest, dlt_dirs: Any) -> dict[str, Any]:
    if destination == "duckdb":
        return {"duckdb_path": dlt_dirs.duckdb_path}
    return {"postgres_url": request.getfixturevalue("postgres_warehouse")}  # sets the env too


def load(sandbox: Sandbox) -> dict[str, Any]:
    return run_in_process({"api_key": sandbox.api_key, "base_url": sandbox.base_url, "max_requests_per_second": 500})


def history(where: dict[str, Any]) -> list[tuple[Any, ...]]:
    with Reader(**where) as db:
        return db.rows("select run_id, outcome, error, rows_total, api_calls, boxes_read, rows_per_table, "
                       "rejected_records from crm.load_history order by started_at")


def forget_this_machine(dlt_dirs: Any) -> None:
    """A fresh machine: dlt's data dir (pipelines, side records, logs) is gone; the destination stays."""
    shutil.rmtree(dlt_dirs.pipelines_dir.parent)
    dlt_dirs.pipelines_dir.parent.mkdir()


@pytest.mark.parametrize("destination", BOTH)
def test_dlt_state_is_in_the_destination_after_every_run_and_restores_on_a_fresh_machine(
    destination: str, request: pytest.FixtureRequest, dlt_isolated: Any
) -> None:
    import dlt
    from dlt.common.versioned_state import decompress_state

    from streak_warehouse.destination import (
        DATASET_NAME,
        PIPELINE_NAME,
        warehouse_destination,
    )

    where = reader_kwargs(destination, request, dlt_isolated)
    with Sandbox(boxes=10, seed=3) as sb:
        for _ in range(2):
            load(sb)
            with Reader(**where) as db:
                assert db.count("_dlt_pipeline_state") >= 1  # 0 after the 2nd run on the old code
                states = [decompress_state(blob) for blob, in db.rows("select state from crm._dlt_pipeline_state")]
            assert {state["dataset_name"] for state in states} == {"crm"}  # not the run's own schema
    forget_this_machine(dlt_isolated)
    restored = dlt.pipeline(pipeline_name=PIPELINE_NAME, destination=warehouse_destination(), dataset_name=DATASET_NAME)
    assert restored.default_schema_name is None
    restored.sync_destination()
    assert restored.default_schema_name == "streak"
    assert restored.state["_state_version"] >= 1
    assert "boxes" in restored.default_schema.tables


@pytest.mark.parametrize("destination", BOTH)
def test_load_history_survives_swaps_failed_runs_and_a_fresh_machine(
    destination: str, request: pytest.FixtureRequest, dlt_isolated: Any
) -> None:
    where = reader_kwargs(destination, request, dlt_isolated)
    with Sandbox(boxes=12, seed=5) as sb:
        first = load(sb)
        assert [row[1] for row in history(where)] == ["ok"]
        with Reader(**where) as db:
            before = db.snapshot()
        with Sandbox(boxes=12, seed=6, faults=[FAULT]) as bad, pytest.raises(PipelineStepFailed):
            load(bad)
        with Reader(**where) as db:  # the failed run did not touch the live copy, history included
            assert db.snapshot() == before
        second = load(sb)
        forget_this_machine(dlt_isolated)
        third = load(sb)

    rows = history(where)
    assert [(row[0], row[1]) for row in rows] == [
        (first["run_id"], "ok"), (rows[1][0], "failed"), (second["run_id"], "ok"), (third["run_id"], "ok"),
    ]
    assert "not valid JSON" in rows[1][2]  # the failed run's one-line error, carried by the next run
    ok = [row for row in rows if row[1] == "ok"]
    assert all(row[2] is None for row in ok)
    last = ok[-1]
    assert json.loads(last[6]) == third["rows"] and last[3] == sum(third["rows"].values())
    assert (last[4], last[5]) == (third["api_calls"], third["boxes_read"])
    # the loader's quarantine count (issue 12 #6/#11): in the summary and in the history row
    assert third["rejected_records"] == 0 and last[7] == 0
    assert not list(Path(dlt_isolated.pipelines_dir.parent).rglob("unrecorded-*.jsonl"))  # side records stored


# --- the one list: any kept table declared there is carried the same way ----------------------------

PROBE = PersistentTable("probe_history", (("k", "text"), ("n", "bigint"), ("added_later", "text")), ("k",))


@pytest.fixture
def probe_declared(monkeypatch: pytest.MonkeyPatch) -> PersistentTable:
    monkeypatch.setattr(kept_tables, "KEPT_TABLES", (*kept_tables.KEPT_TABLES, PROBE))
    return PROBE


def test_a_declared_kept_table_is_copied_into_the_fresh_duckdb_file_and_upgraded(
    probe_declared: PersistentTable, tmp_path: Path
) -> None:
    live, fresh = tmp_path / "live.duckdb", tmp_path / "fresh.duckdb"
    with duckdb.connect(str(live)) as con:  # written by an older version: no `added_later` column
        con.execute("CREATE SCHEMA crm; CREATE TABLE crm.probe_history (k VARCHAR PRIMARY KEY, n BIGINT)")
        con.execute("INSERT INTO crm.probe_history VALUES ('old', 1)")
    live_bytes = live.read_bytes()
    carry_over_duckdb(live, fresh, "crm", {"probe_history": [{"k": "new", "n": 2, "added_later": "x"},
                                                             {"k": "old", "n": 9}]})  # same key: kept once
    with duckdb.connect(str(fresh), read_only=True) as con:
        rows = con.execute("SELECT k, n, added_later FROM crm.probe_history ORDER BY k").fetchall()
        assert con.execute("SELECT count(*) FROM crm.load_history").fetchone() == (0,)
    assert rows == [("new", 2, "x"), ("old", 1, None)]
    assert live.read_bytes() == live_bytes  # the live copy is only read


class _PsycopgClient:
    """The two methods carry_over_schema needs, over a psycopg2 connection."""

    def __init__(self, connection: Any) -> None:
        self._cur = connection.cursor()

    def execute_sql(self, sql: str) -> list[tuple[Any, ...]] | None:
        self._cur.execute(sql)
        return self._cur.fetchall() if self._cur.description else None


@pytest.mark.postgres
def test_a_declared_kept_table_is_moved_into_the_fresh_schema_inside_the_swap_transaction(
    probe_declared: PersistentTable, fresh_postgres_url: str
) -> None:
    import psycopg2

    with psycopg2.connect(fresh_postgres_url) as con, con.cursor() as cur:
        cur.execute("CREATE SCHEMA crm; CREATE SCHEMA crm_load_1")
        cur.execute("CREATE TABLE crm.probe_history (k TEXT PRIMARY KEY, n BIGINT); INSERT INTO crm.probe_history VALUES ('old', 1)")
    con = psycopg2.connect(fresh_postgres_url)
    try:
        carry_over_schema(_PsycopgClient(con), "crm", "crm_load_1", True, {"probe_history": [{"k": "new", "n": 2}]})
        con.rollback()  # the swap failed: nothing moved
        with con.cursor() as cur:
            cur.execute("SELECT k FROM crm.probe_history")
            assert cur.fetchall() == [("old",)]
        carry_over_schema(_PsycopgClient(con), "crm", "crm_load_1", True, {"probe_history": [{"k": "new", "n": 2}]})
        con.commit()
        with con.cursor() as cur:
            cur.execute("SELECT k, n, added_later FROM crm_load_1.probe_history ORDER BY k")
            assert cur.fetchall() == [("new", 2, None), ("old", 1, None)]
            cur.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'crm'")
            assert cur.fetchone() == (0,)
    finally:
        con.close()
