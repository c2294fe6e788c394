"""Reading the DuckDB file from another process while the main job loads it.

What DuckDB 2.0 does (checked here with real processes): a file has one lock. A process with the
file open, even read-only, holds a shared lock for the whole life of its connection; several
read-only processes can share it, but a writer cannot get in while any of them is there, and the
other way round a read-only open fails with "Could not set lock on file" while a writer holds it.

So the main job never writes the file people read: it loads ``streak.duckdb.loading`` and renames
it over ``streak.duckdb`` when tables and views are complete (streak_warehouse/targets/duckdb_file.py). A reader
with the old file open keeps reading the previous copy and never blocks the load; a reader that
opens after the rename gets the new copy; nobody ever sees half a load. The dashboard opens
short-lived read-only connections and retries briefly on a lock error (another writer, e.g. a
DuckDB shell). These tests run the job as a real process against a real second process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.loadtools import REPO_ROOT
from tests.test_fault_matrix import (  # noqa: F401 - fixtures used by name
    Baseline,
    after_good_load,
    assert_complete_and_exact,
    background_jobs,
    baseline,
    fast_retries,
    job_env,
    sandbox,
    start_main_job,
)

pytestmark = pytest.mark.timeout(120)

# A second process on the DuckDB file. "hold": one read-only connection, open until a line arrives
# on stdin. "poll": what the dashboard does, until a line arrives on stdin: open read-only through
# dashboards.data.connection.open_duckdb (short-lived, retried on the lock error), read, close, again.
READER = r"""
import json, sys, threading, time
sys.path.insert(0, sys.argv[3])
path, mode = sys.argv[1], sys.argv[2]
if mode == "hold":
    import duckdb
    con = duckdb.connect(path, read_only=True)
    last_load = "select max(load_id) from crm._dlt_loads"
    print(json.dumps({"open": con.execute("select count(*) from crm.boxes").fetchone()[0],
                      "load": con.execute(last_load).fetchone()[0]}), flush=True)
    sys.stdin.readline()
    still = con.execute(last_load).fetchone()[0]  # what this open connection reads now
    con.close()
    print(json.dumps({"closed": True, "load": still}), flush=True)
    sys.exit(0)
from dashboards.data.connection import open_duckdb
from dashboards.data.errors import DatabaseBusy
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
seen, busy, retried, errors = [], 0, 0, []
while not stop.is_set() or not seen:
    try:
        runner, tries = open_duckdb(__import__("pathlib").Path(path), attempts=4, delay_s=0.05)
        try:  # a page: several queries on one connection, then close
            page = [int(runner.df(f"select count(*) as n from {table}")["n"][0])
                    for table in ("boxes", "box_tasks", "box_field_values", "stages")]
            seen.append(page)
            retried += tries > 1
        finally:
            runner.close()
    except DatabaseBusy:
        busy += 1
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
    if len(seen) == 1 and not stop.is_set():
        print(json.dumps({"polling": True}), flush=True)
    time.sleep(0.02)  # a user clicking around, not synchronisation
print(json.dumps({"reads": len(seen), "counts": sorted(set(map(tuple, seen))), "busy": busy,
                  "retried_opens": retried, "errors": errors}), flush=True)
"""


class Reader:
    """The second process and the JSON lines it prints."""

    def __init__(self, duckdb_path: Path, mode: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", READER, str(duckdb_path), mode, str(REPO_ROOT)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, cwd=str(REPO_ROOT))

    def line(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        text = self.proc.stdout.readline()
        assert text, f"reader ended: {self.proc.stderr.read() if self.proc.stderr else ''}"
        return json.loads(text)

    def release(self) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        return self.line()


@pytest.fixture
def readers() -> Iterator[list[Reader]]:
    started: list[Reader] = []
    yield started
    for reader in started:
        if reader.proc.poll() is None:
            reader.proc.kill()
        reader.proc.wait(timeout=20)
        for stream in (reader.proc.stdin, reader.proc.stdout, reader.proc.stderr):
            if stream is not None:
                stream.close()


class Lines:
    """A background job's stdout, collected line by line as it comes (for wait_until)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._pump, args=(proc,), daemon=True)
        self._thread.start()

    def _pump(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def text(self) -> str:
        self._thread.join(timeout=30)
        return "\n".join(self.lines)

    def has(self, fragment: str) -> bool:
        return any(fragment in line for line in self.lines)


def test_a_reader_holding_the_file_open_through_the_whole_load_neither_blocks_it_nor_sees_it_change(
    after_good_load: Any, baseline: Baseline, fast_retries: Any, readers: list[Reader],
) -> None:
    """A reader opens the file before the load and keeps it open until the load is done: the job
    completes (exit 0, no waiting), the reader's open connection still reads the previous copy, and
    the file now holds the new complete copy."""
    from tests.loadtools import run_main_job

    reader = Reader(after_good_load.duckdb_path, "hold")
    readers.append(reader)
    opened = reader.line()
    assert opened["open"] == baseline.truth["boxes"]
    with sandbox() as sb:
        result = run_main_job([], env=job_env(sb.base_url))
    assert result.returncode == 0, result.stderr
    assert "Loaded a full copy" in result.stdout
    assert reader.release() == {"closed": True, "load": opened["load"]}  # its view never changed
    assert_complete_and_exact(after_good_load.duckdb_path, baseline)
    import duckdb

    with duckdb.connect(str(after_good_load.duckdb_path), read_only=True) as con:
        assert con.execute("select max(load_id) from crm._dlt_loads").fetchone()[0] != opened["load"]


def test_a_dashboard_polling_during_the_whole_load_neither_fails_the_load_nor_crashes(
    after_good_load: Any, baseline: Baseline, fast_retries: Any, readers: list[Reader],
    background_jobs: list[Any], wait_until: Any,
) -> None:
    """The dashboard's reader opens, reads and closes the file over and over during a whole load:
    the load completes; every read either saw a complete copy or was told "busy" (never an error,
    never half a table)."""
    reader = Reader(after_good_load.duckdb_path, "poll")
    readers.append(reader)
    assert reader.line() == {"polling": True}
    with sandbox() as sb:
        job = start_main_job(job_env(sb.base_url))
        background_jobs.append(job)
        out = Lines(job)
        assert job.wait(timeout=90) == 0, (out.text(), job.stderr.read() if job.stderr else "")
    report = reader.release()
    assert report["errors"] == []
    complete = [baseline.truth[t] for t in ("boxes", "box_tasks", "box_field_values", "stages")]
    assert report["reads"] > 0 and report["counts"] == [complete], report  # never half a table
    assert "Loaded a full copy" in out.text()
    assert_complete_and_exact(after_good_load.duckdb_path, baseline)


def test_the_dashboard_is_told_busy_not_crashed_while_a_writer_holds_the_file(
    after_good_load: Any, readers: list[Reader],
) -> None:
    """The other direction, with the dashboard's own opener: while another process holds the write
    lock, open_duckdb retries briefly and raises DatabaseBusy (the page shows "a load is writing");
    once the writer is gone it opens at once."""
    from dashboards.data.connection import open_duckdb
    from dashboards.data.errors import DatabaseBusy

    writer = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('writing', flush=True); "
         "sys.stdin.readline(); c.close()", str(after_good_load.duckdb_path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "writing"
        with pytest.raises(DatabaseBusy) as busy:
            open_duckdb(after_good_load.duckdb_path, attempts=3, delay_s=0.01)
        assert busy.value.attempts == 3 and "Could not set lock" in busy.value.cause
    finally:
        assert writer.stdin is not None
        writer.stdin.write("\n")
        writer.stdin.close()
        writer.wait(timeout=20)
        writer.stdout.close() if writer.stdout else None
    runner, tries = open_duckdb(after_good_load.duckdb_path, attempts=3, delay_s=0.01)
    try:
        assert tries == 1
    finally:
        runner.close()
