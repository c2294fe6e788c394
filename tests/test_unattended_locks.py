"""One run at a time, the cases tests/test_warehouse_locks.py leaves out (issue 16 item 1).

* the events loader (``streak_events.py load``) and the main job, both real processes, never write
  the destination at the same moment: whichever comes second exits 75 naming the first, and its
  ``--summary-json`` says ``locked`` with the holder;
* a Postgres advisory lock held by a process killed with SIGKILL is gone with its session, so the
  next run takes it over (the DuckDB file-lock case: ``test_kill_9_in_any_phase_never_locks_later_runs_out``).

Synchronisation is on observable state (the lock file's content, a line the holder prints, the
sandbox's counters), never on sleeps.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import jsonschema
import pytest

from streak_eventlog.spool import Spool, SpoolRecord
from streak_source.sandbox import Sandbox
from tests.loadtools import ACCOUNT_TABLES, MAIN_JOB, REPO_ROOT, table_counts

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]
EVENTS_CLI = REPO_ROOT / "pipelines" / "streak_events.py"
LOCKED = 75
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z in ms


def source_env(sb: Sandbox, rate: float) -> dict[str, str]:
    return {"SOURCES__STREAK__API_KEY": sb.api_key, "SOURCES__STREAK__BASE_URL": sb.base_url,
            "SOURCES__STREAK__MAX_REQUESTS_PER_SECOND": str(rate)}


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment (the test's dlt dirs, spool) without any other source/destination."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "DESTINATION__"))}
    return {**base, **extra}


@pytest.fixture
def procs() -> Iterator[Any]:
    """``start(args, env)``: a background ``python ARGS``; killed at teardown if still running."""
    started: list[subprocess.Popen[str]] = []

    def start(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
        proc = subprocess.Popen([sys.executable, *args], env=env, text=True, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(REPO_ROOT.parent))
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)


def one_error_line_naming(stderr: str, pid: int) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: another run is loading"), stderr
    assert f"pid {pid} " in lines[0] and "started 20" in lines[0], lines[0]
    return lines[0]


def spool_one_event(path: Path, key: str) -> None:
    with Spool(path) as spool:
        spool.write([SpoolRecord(key, "Offer made", "api", T0, distinct_id=key, properties={})])


def test_events_load_during_a_main_job_exits_75_naming_it_and_loads_once_it_is_done(
    dlt_isolated: Any, procs: Any, wait_until: Any, tmp_path: Path
) -> None:
    """Both real processes. Also the loser's --summary-json (locked, with the holder) and the
    winner's --quiet line and document (ok)."""
    spool = dlt_isolated.root / "events_spool.sqlite"
    spool_one_event(spool, "api:during-the-load")
    lock = Path(f"{dlt_isolated.duckdb_path}.lock")
    # the snippets call is held 12 s once: the main job holds the lock at least that long, plus
    # its normalize and load; the losers need a few seconds to start
    hold = "hang=12:route=/api/v1/snippets:times=1"
    with Sandbox(boxes=12, seed=31, faults=[hold]) as sb:
        env = clean_env(**source_env(sb, rate=500), EVENTS__SPOOL_PATH=str(spool), RUNTIME__REQUEST_TIMEOUT="60")
        first = procs([str(MAIN_JOB), "--quiet", "--summary-json", str(tmp_path / "first.json")], env)
        wait_until(lambda: sb.stats()["faults"]["injected"].get(hold, 0) == 1, 90, "the main job's held call")
        assert f'"pid": {first.pid}' in lock.read_text()
        # both losers at once; the second main job has its own dlt working dir, so only the
        # destination lock can stop it
        events = procs([str(EVENTS_CLI), "load"], env)
        second = procs([str(MAIN_JOB), "--quiet", "--summary-json", str(tmp_path / "second.json")],
                       {**env, "DLT_DATA_DIR": str(tmp_path / "other_dlt")})
        events_out, events_err = events.communicate(timeout=120)
        second_out, second_err = second.communicate(timeout=120)
        assert first.poll() is None, "the main job ended before the losers did: the test proves nothing"
        assert events.returncode == LOCKED, events_err
        one_error_line_naming(events_err, first.pid)
        assert second.returncode == LOCKED, second_err
        line = one_error_line_naming(second_err, first.pid)
        assert second_out == ""
        assert Spool(spool, writer=False).pending() == 1  # the events loader touched nothing

        first_out, first_err = first.communicate(timeout=180)
        assert first.returncode == 0, first_err
        truth = sb.ground_truth()

    schema = jsonschema.Draft202012Validator(json.loads((REPO_ROOT / "docs" / "summary.schema.json").read_text()))
    locked = json.loads((tmp_path / "second.json").read_text())
    schema.validate(locked)
    assert locked["status"] == "locked" and locked["exit_code"] == LOCKED
    assert locked["exit_reason"] == line.removeprefix("error: ")
    assert locked["locked_by"]["pid"] == first.pid and locked["api_calls"] is None
    ok = json.loads((tmp_path / "first.json").read_text())
    schema.validate(ok)
    assert ok["status"] == "ok" and ok["exit_code"] == 0 and ok["locked_by"] is None
    assert first_out.splitlines() == [first_out.strip()] and first_out.startswith("ok: ")  # --quiet: one line
    assert f"{ok['api_calls']:,} API calls" in first_out
    assert {t: ok["rows"].get(t) for t in ACCOUNT_TABLES} == {t: truth[t] for t in ACCOUNT_TABLES}
    counts = table_counts(dlt_isolated.duckdb_path)
    assert {t: counts.get(t) for t in ACCOUNT_TABLES} == {t: truth[t] for t in ACCOUNT_TABLES}
    # the main job drained the spool itself when it published
    with duckdb.connect(str(dlt_isolated.duckdb_path), read_only=True) as con:
        assert con.execute("select count(*) from crm.events where event_key = 'api:during-the-load'").fetchone() == (1,)


def test_a_main_job_during_an_events_load_exits_75_naming_it_and_touches_nothing(
    dlt_isolated: Any, procs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The events loader (in this process, the real ``load_spooled_events``) holds the lock while
    its merge is in progress; a real main job started then stops at once."""
    from pipelines import events_load
    from streak_warehouse import events_table

    spool = dlt_isolated.root / "events_spool.sqlite"
    monkeypatch.setenv("EVENTS__SPOOL_PATH", str(spool))
    spool_one_event(spool, "api:held")
    merging, may_finish = threading.Event(), threading.Event()
    original = events_table.merge_rows

    def held_merge(*args: Any, **kwargs: Any) -> Any:
        merging.set()
        assert may_finish.wait(120), "the test never let the merge finish"
        return original(*args, **kwargs)

    monkeypatch.setattr(events_table, "merge_rows", held_merge)
    result: dict[str, Any] = {}
    loader = threading.Thread(target=lambda: result.update(loaded=events_load.load_spooled_events()))
    loader.start()
    try:
        assert merging.wait(60), "the events load never reached its merge"
        with Sandbox(boxes=3, seed=32) as sb:
            job = procs([str(MAIN_JOB), "--quiet"], clean_env(**source_env(sb, rate=500)))
            out, err = job.communicate(timeout=120)
            calls = sb.stats()["requests_total"]
        assert job.returncode == LOCKED, err
        one_error_line_naming(err, os.getpid())
        assert out == "" and calls == 0  # stopped before reading Streak
    finally:
        may_finish.set()
        loader.join(60)
    assert result["loaded"].events == 1
    with duckdb.connect(str(dlt_isolated.duckdb_path), read_only=True) as con:
        assert con.execute("select event_key from crm.events").fetchall() == [("api:held",)]
        boxes = con.execute("select count(*) from information_schema.tables where table_name = 'boxes'").fetchone()
    assert boxes == (0,)  # the main job wrote nothing


HOLD_POSTGRES_LOCK = """
import sys
import dlt
from streak_warehouse.targets.schema_swap import run_lock
from streak_warehouse.destination import DATASET_NAME, PIPELINE_NAME, use_project_settings, warehouse_destination
from streak_warehouse.locks import RunOwner

use_project_settings()
pipeline = dlt.pipeline(pipeline_name=PIPELINE_NAME, destination=warehouse_destination(), dataset_name=DATASET_NAME)
with run_lock(pipeline, DATASET_NAME, RunOwner.this_process()):
    print("locked", flush=True)
    sys.stdin.read()  # until killed
"""


@pytest.mark.postgres
def test_a_postgres_run_lock_of_a_process_killed_with_sigkill_is_taken_over(
    postgres_warehouse: str, procs: Any, wait_until: Any
) -> None:
    import dlt

    from streak_warehouse.targets.schema_swap import run_lock
    from streak_warehouse.destination import DATASET_NAME, PIPELINE_NAME, use_project_settings, warehouse_destination
    from streak_warehouse.locks import LoadAlreadyRunning, RunOwner

    holder = procs(["-c", HOLD_POSTGRES_LOCK], dict(os.environ))
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked", holder.stderr
    use_project_settings()
    pipeline = dlt.pipeline(pipeline_name=PIPELINE_NAME, destination=warehouse_destination(), dataset_name=DATASET_NAME)
    with pytest.raises(LoadAlreadyRunning) as refused, run_lock(pipeline, DATASET_NAME, RunOwner.this_process()):
        pass
    assert refused.value.owner is not None and refused.value.owner.pid == holder.pid

    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)

    def taken() -> bool:  # the server ends the dead client's session as soon as it sees the socket close
        try:
            with run_lock(pipeline, DATASET_NAME, RunOwner.this_process()):
                return True
        except LoadAlreadyRunning:
            return False

    assert wait_until(taken, 30, "the killed holder's advisory lock to go")
