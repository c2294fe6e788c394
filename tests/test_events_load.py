"""``python pipelines/streak_events.py load``: spool -> ``crm.events`` (merge on event_key), under the
main job's run lock, acking only after the commit; ``crm.events`` survives the main job's replace runs
(DuckDB file swap and Postgres schema swap), and the main job drains the spool itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

from streak_eventlog.spool import ROW_COLUMNS, Spool, SpoolRecord
from tests.loadtools import MAIN_JOB, REPO_ROOT

EVENTS_CLI = REPO_ROOT / "pipelines" / "streak_events.py"
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z in ms


def rec(key: str, name: str, received_ms: int, props: dict[str, Any] | None = None, **ids: Any) -> SpoolRecord:
    return SpoolRecord(key, name, "api", received_ms, distinct_id=key.removeprefix("api:"), properties=props or {}, **ids)


def run(script: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(script), *args], env=dict(os.environ), capture_output=True,
                          text=True, check=False, timeout=timeout, cwd=str(REPO_ROOT.parent))


@pytest.fixture
def spool_path(dlt_isolated: Any, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = dlt_isolated.root / "events_spool.sqlite"
    monkeypatch.setenv("EVENTS__SPOOL_PATH", str(path))
    return path


def spool_events(path: Path, *records: SpoolRecord) -> None:
    with Spool(path) as spool:
        spool.write(list(records))


NOT_DERIVED = "WHERE source <> 'derived'"
"""The main job also adds events derived from the copy (tests/test_derived_events.py); these tests
look at the spooled ones."""


def duckdb_events(path: Path, where: str = NOT_DERIVED) -> dict[str, dict[str, Any]]:
    with duckdb.connect(str(path), read_only=True) as con:
        cursor = con.execute(f"SELECT {', '.join(ROW_COLUMNS)} FROM crm.events {where}")
        return {row[0]: dict(zip(ROW_COLUMNS, row, strict=True)) for row in cursor.fetchall()}


def postgres_events(url: str, where: str = NOT_DERIVED) -> dict[str, dict[str, Any]]:
    import psycopg2

    with psycopg2.connect(url) as con, con.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(ROW_COLUMNS)} FROM crm.events {where}")
        return {row[0]: dict(zip(ROW_COLUMNS, row, strict=True)) for row in cursor.fetchall()}


def check_load_update_and_swap(spool_path: Path, read: Any) -> None:
    spool_events(spool_path, rec("api:offer-1", "Offer made", T0, {"amount": 10}, box_key="box1"),
                 rec("api:paid-1", "Payment received", T0 + 1000, {"plan": "pro"}))
    first = run(EVENTS_CLI, "load")
    assert first.returncode == 0, first.stderr
    assert "loaded 2 events" in first.stdout
    rows = read()
    assert set(rows) == {"api:offer-1", "api:paid-1"}
    assert set(rows["api:offer-1"]) == set(ROW_COLUMNS)
    assert rows["api:offer-1"]["event_name"] == "Offer made" and rows["api:offer-1"]["box_key"] == "box1"
    assert rows["api:offer-1"]["source"] == "api"
    first_ts = rows["api:offer-1"]["timestamp"]

    # the same distinct_id again, later: name/properties/last_received_at updated, first timestamp kept
    spool_events(spool_path, rec("api:offer-1", "Offer accepted", T0 + 86_400_000, {"amount": 12}))
    second = run(EVENTS_CLI, "load")
    assert second.returncode == 0, second.stderr
    rows = read()
    assert len(rows) == 2
    offer = rows["api:offer-1"]
    assert offer["event_name"] == "Offer accepted"
    assert '"amount": 12' in str(offer["properties"])
    assert offer["timestamp"] == first_ts and offer["first_received_at"] == first_ts
    assert offer["last_received_at"] > first_ts
    assert offer["box_key"] == "box1"  # an update without a box keeps the box
    assert Spool(spool_path, writer=False).pending() == 0

    # the main job replaces the whole dataset: crm.events is carried into the new copy, and it
    # drains what the spool received since
    spool_events(spool_path, rec("api:late-1", "Tag added", T0 + 2 * 86_400_000))
    job = run(MAIN_JOB, "--demo", "--demo-boxes", "25", "--quiet")
    assert job.returncode == 0, job.stderr
    rows = read()
    assert set(rows) == {"api:offer-1", "api:paid-1", "api:late-1"}
    assert rows["api:offer-1"]["timestamp"] == first_ts and rows["api:offer-1"]["event_name"] == "Offer accepted"
    assert Spool(spool_path, writer=False).pending() == 0
    derived = read("WHERE source = 'derived'")
    assert derived and {r["event_name"] for r in derived.values()} >= {"BOX_CREATE", "TASK_CREATE"}

    # and a second replace run keeps them all again, deriving nothing new from the same account
    job = run(MAIN_JOB, "--demo", "--demo-boxes", "25", "--quiet")
    assert job.returncode == 0, job.stderr
    assert set(read()) == {"api:offer-1", "api:paid-1", "api:late-1"}
    assert read("WHERE source = 'derived'") == derived


def test_load_merges_and_events_survive_the_duckdb_swap(dlt_isolated: Any, spool_path: Path) -> None:
    check_load_update_and_swap(spool_path, lambda *where: duckdb_events(dlt_isolated.duckdb_path, *where))


def test_load_merges_and_events_survive_the_postgres_schema_swap(
    postgres_warehouse: str, spool_path: Path
) -> None:
    check_load_update_and_swap(spool_path, lambda *where: postgres_events(postgres_warehouse, *where))


def test_load_while_the_main_job_holds_the_lock_exits_75_naming_it(dlt_isolated: Any, spool_path: Path) -> None:
    from streak_warehouse.targets.duckdb_file import lock_path
    from streak_warehouse.locks import FileRunLock, RunOwner

    spool_events(spool_path, rec("api:x", "Offer made", T0))
    target = dlt_isolated.duckdb_path
    with FileRunLock(lock_path(target), str(target), RunOwner.this_process()):
        result = run(EVENTS_CLI, "load")
    assert result.returncode == 75, result.stderr
    assert f"pid {os.getpid()}" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not target.exists()
    assert Spool(spool_path, writer=False).pending() == 1


def test_load_while_the_main_job_holds_the_postgres_lock_exits_75(postgres_warehouse: str, spool_path: Path) -> None:
    import dlt

    from streak_warehouse.targets.schema_swap import run_lock
    from streak_warehouse.destination import (
        DATASET_NAME,
        PIPELINE_NAME,
        use_project_settings,
        warehouse_destination,
    )
    from streak_warehouse.locks import RunOwner

    spool_events(spool_path, rec("api:x", "Offer made", T0))
    use_project_settings()
    pipeline = dlt.pipeline(pipeline_name=PIPELINE_NAME, destination=warehouse_destination(), dataset_name=DATASET_NAME)
    with run_lock(pipeline, DATASET_NAME, RunOwner.this_process()):
        result = run(EVENTS_CLI, "load")
    assert result.returncode == 75, result.stderr
    assert f"pid={os.getpid()}" in result.stderr or f"pid {os.getpid()}" in result.stderr
    assert Spool(spool_path, writer=False).pending() == 1


def test_a_failing_load_acks_nothing(dlt_isolated: Any, spool_path: Path) -> None:
    spool_events(spool_path, rec("api:a", "Offer made", T0), rec("api:b", "Paid", T0 + 1))
    dlt_isolated.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    dlt_isolated.duckdb_path.write_bytes(b"this is not a DuckDB file" * 200)
    result = run(EVENTS_CLI, "load")
    assert result.returncode == 1, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("error: ")
    assert Spool(spool_path, writer=False).pending() == 2

    # in process: the merge itself fails mid-load -> the transaction rolls back, nothing acked
    dlt_isolated.duckdb_path.unlink()
    from pipelines.events_load import load_spooled_events
    from streak_warehouse import events_table

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk on fire")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(events_table, "merge_rows", broken)
        with pytest.raises(RuntimeError, match="disk on fire"):
            load_spooled_events()
    assert Spool(spool_path, writer=False).pending() == 2
    assert load_spooled_events().events == 2
    assert set(duckdb_events(dlt_isolated.duckdb_path)) == {"api:a", "api:b"}


@pytest.mark.parametrize("offset", [1, -1], ids=["newer", "older"])
def test_load_into_a_copy_of_another_layout_stops_and_keeps_the_spool(
    dlt_isolated: Any, spool_path: Path, offset: int
) -> None:
    """Only the main job migrates a copy (streak_warehouse/upgrade.py): ``load`` into a copy written
    by another warehouse layout stops with one line, writes nothing, acks nothing."""
    from streak_warehouse.layout_version import LAYOUT_VERSION

    written = LAYOUT_VERSION + offset
    path = dlt_isolated.duckdb_path
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA crm")
        con.execute("CREATE TABLE crm.load_history (run_id TEXT, outcome TEXT, finished_at TIMESTAMPTZ, "
                    "layout_version BIGINT)")
        con.execute(f"INSERT INTO crm.load_history VALUES ('r1', 'ok', now(), {written})")
    spool_events(spool_path, rec("api:a", "Offer made", T0))
    result = run(EVENTS_CLI, "load")
    assert result.returncode == 3, result.stderr  # EXIT_CONFIG: the destination is not one to load into
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"written by warehouse layout {written}" in lines[0], lines
    assert Spool(spool_path, writer=False).pending() == 1
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'events'").fetchone() == (0,)


def test_without_a_spool_load_does_nothing(dlt_isolated: Any, spool_path: Path) -> None:
    result = run(EVENTS_CLI, "load")
    assert result.returncode == 0, result.stderr
    assert "loaded 0 events" in result.stdout
    assert not spool_path.exists()


def test_box_change_stage_events_feed_the_stage_history(
    dlt_isolated: Any, spool_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BOX_CHANGE_STAGE webhook events, from the live crm.events and from the spool, reach the stage
    history computation of the next run; the move they describe stays one stay."""
    from pipelines import job
    from pipelines.events_load import load_spooled_events
    from streak_source.sandbox import Sandbox
    from streak_warehouse.stage_history import StageChangeEvent
    from tests.loadtools import run_in_process

    def hook(box: str, stage: str, pipeline: str, at_ms: int) -> SpoolRecord:
        key = f"streak:BOX_CHANGE_STAGE:{box}:{at_ms}"
        return SpoolRecord(key, "BOX_CHANGE_STAGE", "webhook", at_ms + 900, timestamp_ms=at_ms, distinct_id=key,
                           box_key=box, pipeline_key=pipeline, properties={"object_key": box, "stageKey": stage})

    seen: list[StageChangeEvent] = []
    original = job.new_history

    def spying(*args: Any, **kwargs: Any) -> Any:
        seen.extend(kwargs.get("webhook_events", ()))
        return original(*args, **kwargs)

    monkeypatch.setattr(job, "new_history", spying)
    with Sandbox(boxes=8, seed=11) as sb:
        args = {"api_key": sb.api_key, "base_url": sb.base_url, "max_requests_per_second": 500}
        run_in_process(args)
        with duckdb.connect(str(dlt_isolated.duckdb_path), read_only=True) as con:
            stays = con.execute(
                "SELECT box_key, pipeline_key, stage_key, epoch_ms(entered_at) FROM crm.box_stage_history "
                "WHERE left_at IS NULL ORDER BY box_key LIMIT 2").fetchall()
            before = con.execute("SELECT COUNT(*) FROM crm.box_stage_history").fetchone()[0]
        assert len(stays) == 2
        (b1, p1, s1, t1), (b2, p2, s2, t2) = stays
        spool_events(spool_path, hook(b1, s1, p1, t1))
        assert load_spooled_events().events == 1  # now in the live crm.events
        spool_events(spool_path, hook(b2, s2, p2, t2),  # only in the spool
                     SpoolRecord("streak:BOX_CHANGE_STAGE:sha256:ab", "BOX_CHANGE_STAGE", "webhook", T0,
                                 box_key=b2, properties={"stageKey": s2}))  # no exact time: not used
        seen.clear()
        run_in_process(args)
    assert set(seen) == {StageChangeEvent(b1, s1, t1, p1), StageChangeEvent(b2, s2, t2, p2)}
    with duckdb.connect(str(dlt_isolated.duckdb_path), read_only=True) as con:
        assert con.execute("SELECT COUNT(*) FROM crm.box_stage_history").fetchone()[0] == before
        assert con.execute("SELECT COUNT(*) FROM crm.events WHERE event_name = 'BOX_CHANGE_STAGE' "
                           "AND source = 'webhook'").fetchone()[0] == 3
    assert Spool(spool_path, writer=False).pending() == 0


POISON = {
    "streak:BOX_CREATE:b1:9000000000000000": "timestamp is outside 1970-01-01 .. 9999-12-31",  # year 287168
    "api:a\x00b": "event_key contains a NUL character (\\u0000)",
    "api:inf": "properties is not valid JSON",  # {"x": Infinity}
}


def check_poisoned_rows_are_kept_aside(spool_path: Path, read: Any, query: Any) -> None:
    """Rows an older receiver spooled that cannot be loaded (written straight into the spool): ``load``
    exits 0, loads the rest, keeps them in ``crm.rejected_records``; the main job's replace runs keep
    them there; nothing is written twice."""
    spool_events(spool_path, rec("api:before", "Offer made", T0),
                 SpoolRecord("streak:BOX_CREATE:b1:9000000000000000", "BOX_CREATE", "webhook", T0,
                             timestamp_ms=9_000_000_000_000_000, box_key="b1"),
                 rec("api:a\x00b", "Offer made", T0), rec("api:ab", "Paid", T0),
                 rec("api:inf", "Offer made", T0, {"x": float("inf")}), rec("api:after", "Offer made", T0 + 1))
    rejected_sql = "SELECT reason, raw_json FROM crm.rejected_records WHERE table_name = 'events'"

    def rejected() -> dict[str, str]:
        kept = {json.loads(raw)["event_key"]: reason for reason, raw in query(rejected_sql)}
        assert len(kept) == len(query(rejected_sql)), "a rejected event written twice"
        return kept

    first = run(EVENTS_CLI, "load")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("loaded 3 events") and "3 could not be loaded (kept in crm.rejected_records)" in first.stdout
    assert set(read()) == {"api:before", "api:ab", "api:after"}
    assert read()["api:ab"]["event_name"] == "Paid"
    assert rejected() == POISON
    assert Spool(spool_path, writer=False).pending() == 0

    spool_events(spool_path, rec("api:later", "Tag added", T0 + 2))
    again = run(EVENTS_CLI, "load")
    assert again.returncode == 0 and again.stdout.startswith("loaded 1 events"), again.stderr
    assert rejected() == POISON

    job = run(MAIN_JOB, "--demo", "--demo-boxes", "12", "--quiet")  # replaces rejected_records: kept all the same
    assert job.returncode == 0, job.stderr
    assert set(read()) == {"api:before", "api:ab", "api:after", "api:later"}
    assert rejected() == POISON
    assert run(EVENTS_CLI, "load").returncode == 0
    assert rejected() == POISON


def test_rows_that_cannot_be_loaded_go_to_rejected_records_duckdb(dlt_isolated: Any, spool_path: Path) -> None:
    def query(sql: str) -> list[Any]:
        with duckdb.connect(str(dlt_isolated.duckdb_path), read_only=True) as con:
            return con.execute(sql).fetchall()

    check_poisoned_rows_are_kept_aside(spool_path, lambda: duckdb_events(dlt_isolated.duckdb_path), query)


def test_rows_that_cannot_be_loaded_go_to_rejected_records_postgres(postgres_warehouse: str, spool_path: Path) -> None:
    import psycopg2

    def query(sql: str) -> list[Any]:
        with psycopg2.connect(postgres_warehouse) as con, con.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall()

    check_poisoned_rows_are_kept_aside(spool_path, lambda: postgres_events(postgres_warehouse), query)
