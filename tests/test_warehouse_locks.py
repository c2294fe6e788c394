"""One run at a time, real processes and real signals (issue 12 #1, #2, #4, #8; issue 16 item 1).

Regressions, each failing on the old code:
* two concurrent runs into one Postgres shared ``crm_next`` with no lock (doubled or empty tables);
* ``kill -9`` during normalize left forked workers holding the ``flock``: every later DuckDB run
  said "another run is loading";
* SIGTERM waited for extract workers to finish their request and retries (up to ~300 s);
* two runs sharing a dlt working dir (different DuckDB files) dropped each other's packages.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import psutil
import pytest

from streak_source.sandbox import Sandbox
from streak_warehouse.locks import FileRunLock, RunOwner
from tests.destinations_support import Reader, postgres_env
from tests.loadtools import ACCOUNT_TABLES, MAIN_JOB, REPO_ROOT, table_counts

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]
LOCKED = 75


def source_env(sb: Sandbox, rate: float = 500) -> dict[str, str]:
    return {"SOURCES__STREAK__API_KEY": sb.api_key, "SOURCES__STREAK__BASE_URL": sb.base_url,
            "SOURCES__STREAK__MAX_REQUESTS_PER_SECOND": str(rate)}


@pytest.fixture
def jobs() -> Iterator[Any]:
    """``start(env, *args)`` runs the main job in the background; everything it started (its
    orphaned normalize workers included) is killed at teardown, by pid."""
    started: list[subprocess.Popen[str]] = []
    family: set[int] = set()

    def start(env: Mapping[str, str], *args: str) -> subprocess.Popen[str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "DESTINATION__"))}
        proc = subprocess.Popen([sys.executable, str(MAIN_JOB), *args], env={**base, **env}, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(REPO_ROOT.parent))
        started.append(proc)
        return proc

    start.remember_children = lambda proc: family.update(  # type: ignore[attr-defined]
        child.pid for child in psutil.Process(proc.pid).children(recursive=True))
    yield start
    for pid in family:  # first: orphans keep the victim's output pipes open
        try:
            psutil.Process(pid).kill()
        except psutil.Error:
            pass
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def finished(proc: subprocess.Popen[str], timeout: float = 180) -> tuple[int, str, str]:
    stdout, stderr = proc.communicate(timeout=timeout)
    return proc.returncode, stdout, stderr


def read_until(proc: subprocess.Popen[str], marker: str) -> None:
    """Read the job's progress lines until ``marker`` (it prints them as it goes)."""
    assert proc.stdout is not None
    for line in proc.stdout:
        if marker in line:
            return
    raise AssertionError(f"the job ended before printing {marker!r}: {proc.wait()} {proc.stderr.read() if proc.stderr else ''}")


def assert_names_the_running_job(stderr: str, holder: subprocess.Popen[str]) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: another run is loading"), stderr
    assert f"pid {holder.pid} " in lines[0] and "started 20" in lines[0], lines[0]


# --- #1 / issue 16: the loser exits at once with 75, naming the running job ---------------------


def test_a_second_duckdb_run_exits_75_naming_the_first_which_completes(
    dlt_isolated: Any, jobs: Any, wait_until: Any, tmp_path: Path
) -> None:
    with Sandbox(boxes=30, seed=8) as sb:
        first = jobs(source_env(sb, rate=4), "--quiet")
        lock = Path(f"{dlt_isolated.duckdb_path}.lock")
        wait_until(lambda: lock.exists() and f'"pid": {first.pid}' in lock.read_text(), 60, "the first run's lock")
        # its own dlt working dir, so only the destination lock can stop it
        second = jobs({**source_env(sb), "DLT_DATA_DIR": str(tmp_path / "other_dlt")}, "--quiet")
        started = time.monotonic()
        code, _, stderr = finished(second)
        assert code == LOCKED, stderr
        assert time.monotonic() - started < 30 and first.poll() is None  # at once, while the first runs
        assert_names_the_running_job(stderr, first)
        assert finished(first)[0] == 0
        truth = sb.ground_truth()
    counts = table_counts(dlt_isolated.duckdb_path)
    assert {t: counts.get(t) for t in ACCOUNT_TABLES} == {t: truth[t] for t in ACCOUNT_TABLES}


@pytest.mark.postgres
def test_two_concurrent_postgres_runs_one_loads_the_other_exits_75_and_crm_is_exact(
    postgres_warehouse: str, jobs: Any, wait_until: Any, tmp_path: Path
) -> None:
    env = postgres_env(postgres_warehouse)

    def lock_holders() -> int:
        with Reader(postgres_url=postgres_warehouse) as db:
            return int(db.rows("select count(*) from pg_locks where locktype = 'advisory' and granted")[0][0])

    with Sandbox(boxes=30, seed=9) as sb:
        first = jobs({**source_env(sb, rate=4), **env, "DLT_DATA_DIR": str(tmp_path / "a")}, "--quiet")
        wait_until(lock_holders, 60, "the first run's advisory lock")
        second = jobs({**source_env(sb), **env, "DLT_DATA_DIR": str(tmp_path / "b")}, "--quiet")
        code, _, stderr = finished(second)
        assert code == LOCKED, stderr
        assert first.poll() is None
        assert_names_the_running_job(stderr, first)
        assert finished(first)[0] == 0
        truth = sb.ground_truth()
    with Reader(postgres_url=postgres_warehouse) as db:
        assert {t: db.count(t) for t in ACCOUNT_TABLES} == {t: truth[t] for t in ACCOUNT_TABLES}  # not doubled
        assert not [s for s in db.schemas() if s.startswith("crm_")]  # no staging left, none shared
        assert [r[0] for r in db.rows("select outcome from crm.load_history")] == ["ok"]


def test_two_runs_sharing_a_dlt_working_dir_into_different_files_do_not_collide(
    dlt_isolated: Any, jobs: Any, wait_until: Any, tmp_path: Path
) -> None:
    with Sandbox(boxes=30, seed=10) as sb:
        first = jobs(source_env(sb, rate=4), "--quiet")
        lock = dlt_isolated.pipelines_dir / ".streak.lock"
        wait_until(lambda: lock.exists() and f'"pid": {first.pid}' in lock.read_text(), 60, "the working dir lock")
        other_file = tmp_path / "other.duckdb"
        code, _, stderr = finished(jobs({**source_env(sb), "STREAK_DUCKDB_PATH": str(other_file)}, "--quiet"))
        assert code == LOCKED and "dlt working dir" in stderr, stderr
        assert_names_the_running_job(stderr, first)
        assert finished(first)[0] == 0
    assert not other_file.exists()


# --- #2: kill -9 in every phase, then a normal run ---------------------------------------------


@pytest.mark.parametrize("phase", ["extracting...", "normalizing...", "loading..."])
def test_kill_9_in_any_phase_never_locks_later_runs_out(
    phase: str, dlt_isolated: Any, jobs: Any, wait_until: Any
) -> None:
    with Sandbox(boxes=250, seed=11) as sb:
        # parallel_from_mb 0: forked normalize workers even for a package this small (the old bug needs them)
        victim = jobs({**source_env(sb, rate=2000), "NORMALIZE__PARALLEL_FROM_MB": "0"})
        read_until(victim, phase)
        if phase == "normalizing...":  # the old bug: forked workers inherited the flock
            wait_until(lambda: psutil.Process(victim.pid).children(), 60, "normalize workers")
            jobs.remember_children(victim)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
        code, _, stderr = finished(jobs(source_env(sb, rate=2000), "--quiet"))
        assert code == 0, stderr
        truth = sb.ground_truth()
    counts = table_counts(dlt_isolated.duckdb_path)
    assert {t: counts.get(t) for t in ACCOUNT_TABLES} == {t: truth[t] for t in ACCOUNT_TABLES}
    assert not list(dlt_isolated.root.glob("*.loading*"))


def test_a_lock_is_not_inherited_by_forked_children(tmp_path: Path) -> None:
    """The mechanism behind the test above: a child forked while the lock is held holds nothing."""
    path = tmp_path / "x.lock"
    with FileRunLock(path, "x", RunOwner.this_process()):
        child = os.fork()
        if child == 0:  # pragma: no cover - the child only sleeps until killed
            time.sleep(60)
            os._exit(0)
    try:
        with FileRunLock(path, "x", RunOwner.this_process()):
            pass  # would raise LoadAlreadyRunning had the child inherited it (flock)
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)


# --- #4: SIGTERM stops at once whatever the workers do -------------------------------------------


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_ends_the_job_within_seconds_even_while_workers_hang(
    stop_signal: signal.Signals, dlt_isolated: Any, jobs: Any, wait_until: Any
) -> None:
    with Sandbox(boxes=12, seed=12) as sb:
        assert finished(jobs(source_env(sb), "--quiet"))[0] == 0
    with Reader(duckdb_path=dlt_isolated.duckdb_path) as db:
        before = db.snapshot()
    hang = "hang=120:route=/api/v2/boxes/{box_key}/tasks"  # every task call hangs for 2 minutes
    with Sandbox(boxes=12, seed=12, faults=[hang]) as sb:
        job = jobs({**source_env(sb), "RUNTIME__REQUEST_TIMEOUT": "100"})
        wait_until(lambda: sb.stats()["faults"]["injected"].get(hang, 0) >= 2, 60, "workers stuck in a request")
        job.send_signal(stop_signal)
        stopped = time.monotonic()
        code, _, stderr = finished(job, timeout=60)
        assert time.monotonic() - stopped < 10, "stopped too late"
        assert code == 130, stderr
        assert stderr.strip().splitlines()[-1] == "error: interrupted; the destination keeps its previous complete load"
    with Reader(duckdb_path=dlt_isolated.duckdb_path) as db:
        assert db.snapshot() == before  # untouched
    assert not list(dlt_isolated.root.glob("*.loading*"))
    with Sandbox(boxes=12, seed=12) as sb:  # the lock was released; the interruption is on record
        assert finished(jobs(source_env(sb), "--quiet"))[0] == 0
    with Reader(duckdb_path=dlt_isolated.duckdb_path) as db:
        assert [r[0] for r in db.rows("select outcome from crm.load_history order by started_at")] == [
            "ok", "interrupted", "ok"]
