"""The fault matrix: the main job against the sandbox's fault injection, one test per row.

Every row states its expected outcome in its docstring. Two kinds of check:

* a run that must complete: every table equals a fault-free load of the same account, row for row
  (dlt's per-load ``_dlt_*`` columns aside), has the ground truth's row count, and no primary key
  repeats: nothing lost, nothing duplicated;
* a run that must fail: exit 1 and one ``error: ...`` line naming the endpoint (never the key), and
  "destination untouched": after a good load, every table of the dataset (dlt's own included) has
  exactly the same rows, compared as an order-independent digest of all rows, not only counts.

The good load is made once per module and copied (DuckDB file + dlt working dir) into each test's
private directory. Retries and timeouts are set low through dlt's ``RUNTIME__*`` variables so the
whole file takes seconds, not minutes.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest
import requests

from streak_source.sandbox import Sandbox
from streak_warehouse.history_mode import HISTORY_SUFFIX
from streak_warehouse.kept_tables import KEPT_TABLES
from streak_warehouse.outcome_sql import FORECAST_MONTHLY
from tests.loadtools import MAIN_JOB, REPO_ROOT, run_in_process, run_main_job

pytestmark = pytest.mark.timeout(120)

BOXES, SEED, ANCHOR = 12, 4242, "2026-01-15"
KEY = "fault-matrix-key"
FAST_CLIENT = 1000  # requests/second: the client-side limiter never slows these tests
DATASET = "crm"
CHILD_TABLES = ("box_tasks", "box_task_assignees", "box_threads", "box_comments", "box_meetings", "box_files")

FAST_RETRIES = {
    "RUNTIME__REQUEST_MAX_ATTEMPTS": "8",
    "RUNTIME__REQUEST_BACKOFF_FACTOR": "0.01",
    "RUNTIME__REQUEST_MAX_RETRY_DELAY": "0.05",
    "RUNTIME__REQUEST_TIMEOUT": "5",
}


# ----------------------------------------------------------------------------- reading tables


def _tables(con: duckdb.DuckDBPyConnection, dataset: str, kind: str = "BASE TABLE") -> list[str]:
    return sorted(r[0] for r in con.execute(
        "select table_name from information_schema.tables where table_schema = ? and table_type = ? "
        "and table_catalog = current_database()", [dataset, kind]).fetchall())


def _rows(con: duckdb.DuckDBPyConnection, dataset: str, table: str, with_dlt_columns: bool) -> list[str]:
    """The table's rows as sorted JSON strings: an order-independent picture of its contents."""
    columns = [r[0] for r in con.execute(
        "select column_name from information_schema.columns where table_schema = ? and table_name = ? "
        "and table_catalog = current_database() order by column_name", [dataset, table]).fetchall()]
    if not with_dlt_columns:
        columns = [c for c in columns if not c.startswith("_dlt_")]
    select = ", ".join(f'"{c}"' for c in columns)
    rows = con.execute(f'select {select} from "{dataset}"."{table}"').fetchall()
    return sorted(json.dumps(dict(zip(columns, row)), sort_keys=True, default=str) for row in rows)


def dataset_digest(duckdb_path: Path, dataset: str = DATASET) -> dict[str, str]:
    """sha256 of every table's sorted rows (all columns, dlt's tables included) and of the views'
    definitions: equal digests = the destination was not touched."""
    with duckdb.connect(str(duckdb_path), read_only=True) as con:
        digest = {t: hashlib.sha256("\n".join(_rows(con, dataset, t, True)).encode()).hexdigest()
                  for t in _tables(con, dataset)}
        views = con.execute("select view_name, sql from duckdb_views() where schema_name = ? "
                            "and database_name = current_database() order by view_name", [dataset]).fetchall()
        digest["<views>"] = hashlib.sha256(json.dumps(views).encode()).hexdigest()
        return digest


def account_rows(duckdb_path: Path, dataset: str = DATASET) -> dict[str, list[str]]:
    """Every data table's rows without dlt's per-load columns: what two loads of one account share
    (the tables kept across runs, such as load_history and each table's ``<table>_history``, grow with
    every run: left out)."""
    kept = {table.name for table in KEPT_TABLES}
    with duckdb.connect(str(duckdb_path), read_only=True) as con:
        tables = _tables(con, dataset)
        versions = {t for t in tables if t.endswith(HISTORY_SUFFIX) and t.removesuffix(HISTORY_SUFFIX) in tables}
        return {t: _rows(con, dataset, t, False) for t in tables
                if not t.startswith("_dlt") and t not in kept and t not in versions and t != FORECAST_MONTHLY}


def primary_key_repeats(duckdb_path: Path, dataset: str = DATASET) -> dict[str, int]:
    """Rows whose primary key (as declared in the schema dlt stored) is held by another row."""
    with duckdb.connect(str(duckdb_path), read_only=True) as con:
        schema = json.loads(con.execute(
            f'select schema from "{dataset}"."_dlt_version" order by inserted_at desc limit 1').fetchone()[0])
        repeats = {}
        for name, table in schema["tables"].items():
            keys = [c for c, col in table.get("columns", {}).items() if col.get("primary_key")]
            if name.startswith("_dlt") or not keys:
                continue
            cols = ", ".join(f'"{k}"' for k in keys)
            repeats[name] = con.execute(
                f'select count(*) - count(distinct ({cols})) from "{dataset}"."{name}"').fetchone()[0]
        assert repeats, "no table declares a primary key"
        return repeats


def assert_complete_and_exact(duckdb_path: Path, baseline: Baseline, minus_boxes: set[str] = frozenset()) -> None:
    """Nothing lost, nothing duplicated: the baseline's rows exactly (children of ``minus_boxes``
    left out), the ground truth's counts, unique primary keys."""
    got = account_rows(duckdb_path)
    expected = dict(baseline.rows)
    for table in (t for t in CHILD_TABLES if t in expected):
        expected[table] = [r for r in expected[table] if json.loads(r)["box_key"] not in minus_boxes]
    assert sorted(got) == sorted(expected)
    for table in expected:
        assert got[table] == expected[table], f"{table}: {len(got[table])} rows, expected {len(expected[table])}"
    if not minus_boxes:
        assert {t: len(got[t]) for t in baseline.truth if t in got} == {t: n for t, n in baseline.truth.items() if t in got}
    assert set(primary_key_repeats(duckdb_path).values()) == {0}


# ------------------------------------------------------------------------- the good load, once


@dataclass(frozen=True)
class Baseline:
    root: Path
    truth: dict[str, int]
    needed_calls: int
    rows: dict[str, list[str]]
    digest: dict[str, str]


def _isolated_env(root: Path) -> dict[str, str]:
    return {"DLT_DATA_DIR": str(root / "dlt"), "DLT_LOCAL_DIR": str(root), "DLT_PROJECT_DIR": str(REPO_ROOT),
            "STREAK_DUCKDB_PATH": str(root / "streak.duckdb")}


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Baseline:
    """A fault-free load of the account every row uses, in its own directory."""
    root = tmp_path_factory.mktemp("baseline")
    (root / "dlt").mkdir()
    with pytest.MonkeyPatch.context() as mp:
        for name, value in _isolated_env(root).items():
            mp.setenv(name, value)
        with Sandbox(boxes=BOXES, seed=SEED, anchor_date=ANCHOR, api_keys=[KEY]) as sb:
            run_in_process({"api_key": sb.api_key, "base_url": sb.base_url, "max_requests_per_second": FAST_CLIENT})
            truth, needed = sb.ground_truth(), sb.needed_calls
    path = root / "streak.duckdb"
    return Baseline(root, truth, needed, account_rows(path), dataset_digest(path))


@pytest.fixture
def after_good_load(dlt_isolated: Any, baseline: Baseline) -> Any:
    """This test's directory holds the good load (DuckDB file and dlt's working dir)."""
    shutil.copytree(baseline.root, dlt_isolated.root, dirs_exist_ok=True)
    assert dataset_digest(dlt_isolated.duckdb_path) == baseline.digest
    return dlt_isolated


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name, value in FAST_RETRIES.items():
        monkeypatch.setenv(name, value)
    return FAST_RETRIES


def sandbox(*faults: str, **kwargs: Any) -> Sandbox:
    """The baseline's account, with faults."""
    return Sandbox(boxes=BOXES, seed=SEED, anchor_date=ANCHOR, api_keys=[KEY], faults=list(faults), **kwargs)


def job_env(base_url: str, key: str = KEY, **extra: str) -> dict[str, str]:
    return {"SOURCES__STREAK__API_KEY": key, "SOURCES__STREAK__BASE_URL": base_url,
            "SOURCES__STREAK__MAX_REQUESTS_PER_SECOND": str(FAST_CLIENT), **extra}


def start_main_job(env: Mapping[str, str]) -> subprocess.Popen[str]:
    """``python pipelines/streak_full.py`` in the background, env as run_main_job builds it."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "DESTINATION__"))}
    return subprocess.Popen([sys.executable, str(MAIN_JOB)], env={**base, **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=str(REPO_ROOT.parent))


@pytest.fixture
def background_jobs() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test starts; any still running at teardown are killed (by their own pid)."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=20)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    return lines[0]


def assert_untouched(dlt_dirs: Any, baseline: Baseline) -> None:
    assert dataset_digest(dlt_dirs.duckdb_path) == baseline.digest


# ----------------------------------------------------------------------------- runs that complete


def test_transient_5xx_on_every_route_are_retried_and_the_load_is_complete(
    dlt_isolated: Any, baseline: Baseline, fast_retries: Any
) -> None:
    """500, 502 and 503 answers on a share of every route's requests: each is retried (Retry-After
    or backoff), the load completes, every table equals the fault-free load, and the only extra
    calls are exactly the retries of the failed ones."""
    with sandbox("status=500:share=0.1", "status=502:share=0.1", "status=503:share=0.1") as sb:
        summary = run_in_process({"api_key": KEY, "base_url": sb.base_url, "max_requests_per_second": FAST_CLIENT})
        stats = sb.stats()
    by_status = stats["responses_by_status"]
    failed = sum(by_status.get(code, 0) for code in ("500", "502", "503"))
    assert all(by_status.get(code, 0) > 0 for code in ("500", "502", "503")), by_status
    assert stats["requests_total"] == baseline.needed_calls + failed == summary["api_calls"]
    assert summary["boxes_gone"] == []
    assert_complete_and_exact(dlt_isolated.duckdb_path, baseline)


def test_429_bursts_with_retry_after_are_honoured_and_the_load_is_complete(
    dlt_isolated: Any, baseline: Baseline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server allows 15 requests/s, the client is set to send 1000/s: bursts get 429 with
    Retry-After, the client waits as told (max retry delay above Retry-After) and resends, the load
    completes exactly, and 429s show in the stats; no request needed more than a few tries."""
    monkeypatch.setenv("RUNTIME__REQUEST_MAX_ATTEMPTS", "6")
    monkeypatch.setenv("RUNTIME__REQUEST_BACKOFF_FACTOR", "0.01")
    monkeypatch.setenv("RUNTIME__REQUEST_MAX_RETRY_DELAY", "2")  # >= Retry-After (1 s): honoured
    monkeypatch.setenv("RUNTIME__REQUEST_TIMEOUT", "5")
    with sandbox(rate_limit=15) as sb:
        started = time.monotonic()
        summary = run_in_process({"api_key": KEY, "base_url": sb.base_url, "max_requests_per_second": FAST_CLIENT})
        elapsed = time.monotonic() - started
        stats = sb.stats()
    throttled = stats["responses_by_status"].get("429", 0)
    assert throttled > 0, stats["responses_by_status"]
    assert stats["requests_total"] == baseline.needed_calls + throttled == summary["api_calls"]
    # Honoured: a client that retried at once would meet an empty bucket again and again (and run
    # out of its 6 tries); waiting Retry-After keeps the 429s below one per needed call, and the
    # calls beyond the first second's 15 take at least (calls - 15) / 15 s.
    assert throttled < baseline.needed_calls
    assert elapsed >= (baseline.needed_calls - 15) / 15 * 0.9
    assert_complete_and_exact(dlt_isolated.duckdb_path, baseline)


def test_a_hang_past_the_timeout_is_retried_and_the_load_is_complete(
    dlt_isolated: Any, baseline: Baseline, fast_retries: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pipelines list and two box-list calls hang for 4 s, past a 1 s timeout: each is
    abandoned, sent again, answered, and the load completes exactly."""
    monkeypatch.setenv("RUNTIME__REQUEST_TIMEOUT", "1")
    with sandbox("hang=4:route=/api/v1/pipelines:times=1",
                 "hang=4:route=/api/v1/pipelines/{pipeline_key}/boxes:times=2") as sb:
        summary = run_in_process({"api_key": KEY, "base_url": sb.base_url, "max_requests_per_second": FAST_CLIENT})
        stats = sb.stats()
    assert sum(stats["faults"]["injected"].values()) == 3
    assert stats["requests_total"] == baseline.needed_calls + 3 == summary["api_calls"]
    assert_complete_and_exact(dlt_isolated.duckdb_path, baseline)


def test_children_of_boxes_deleted_mid_run_are_skipped_counted_and_reported(
    dlt_isolated: Any, baseline: Baseline, fast_retries: Any
) -> None:
    """Two listed boxes are deleted before their children are read (404 on their child routes): the
    load completes; their children are skipped, not retried and not fatal; the summary counts and
    names them; every other row equals the fault-free load."""
    from pipelines.progress import LoadSummary, print_summary

    with sandbox("gone=2") as sb:
        summary = run_in_process({"api_key": KEY, "base_url": sb.base_url, "max_requests_per_second": FAST_CLIENT})
        stats = sb.stats()
    gone = set(stats["faults"]["gone_box_keys"])
    assert len(gone) == 2 and stats["faults"]["gone_hits"] > 0
    assert set(summary["boxes_gone"]) == gone
    assert stats["responses_by_status"].get("404", 0) == stats["faults"]["gone_hits"]  # a 404 is not retried
    printed = io.StringIO()
    print_summary(LoadSummary(**summary), printed)
    assert f"Boxes gone during the run (their children skipped): 2: {', '.join(sorted(gone))}" in printed.getvalue()
    assert_complete_and_exact(dlt_isolated.duckdb_path, baseline, minus_boxes=gone)
    assert account_rows(dlt_isolated.duckdb_path)["boxes"] == baseline.rows["boxes"]  # the boxes stay


# -------------------------------------------------------------------------------- runs that fail


def test_a_hang_that_persists_fails_clearly_and_leaves_the_destination_untouched(
    after_good_load: Any, baseline: Baseline, fast_retries: Any
) -> None:
    """The snippets list never answers within the 1 s timeout: 2 tries, then exit 1 with one line
    naming the endpoint and the timeout; the previous load is untouched."""
    with sandbox("hang=5:route=/api/v1/snippets") as sb:
        result = run_main_job([], env=job_env(sb.base_url, RUNTIME__REQUEST_TIMEOUT="1",
                                              RUNTIME__REQUEST_MAX_ATTEMPTS="2"))
    assert result.returncode == 1, result.stderr
    line = one_error_line(result.stderr)
    assert "GET v1/snippets: Streak did not answer in time after 2 tries of 1 s" in line, line
    assert "the destination keeps its previous load" in line
    assert_untouched(after_good_load, baseline)


def test_a_malformed_json_body_fails_naming_the_endpoint_and_leaves_the_destination_untouched(
    after_good_load: Any, baseline: Baseline, fast_retries: Any
) -> None:
    """One tasks call answers 200 with a truncated JSON body: not retried (it is not transient),
    exit 1, one line naming the endpoint; the previous load is untouched."""
    with sandbox("malformed:route=/api/v2/boxes/{box_key}/tasks:times=1") as sb:
        result = run_main_job([], env=job_env(sb.base_url))
    assert result.returncode == 1, result.stderr
    line = one_error_line(result.stderr)
    assert "GET v2/boxes/{box_key}/tasks: Streak sent a body that is not valid JSON" in line, line
    assert_untouched(after_good_load, baseline)


@pytest.mark.parametrize(("route", "promised"), [("v1/users/me", "an object"), ("v1/snippets", "a list")])
def test_a_null_body_fails_naming_the_endpoint_and_leaves_the_destination_untouched(
    after_good_load: Any, baseline: Baseline, fast_retries: Any, route: str, promised: str
) -> None:
    """One call answers 200 with the valid JSON ``null`` where Streak's reference promises an object
    (the user behind the key) or a list: a broken response like a malformed body, never an empty
    account: exit 1, one line naming the endpoint; the previous load is untouched."""
    with sandbox(f"null:route=/api/{route}:times=1") as sb:
        result = run_main_job([], env=job_env(sb.base_url))
    assert result.returncode == 1, result.stderr
    line = one_error_line(result.stderr)
    assert f"GET {route}: Streak sent null where its reference promises {promised}" in line, line
    assert_untouched(after_good_load, baseline)


def test_a_key_revoked_mid_run_fails_with_a_clear_401_and_leaves_the_destination_untouched(
    after_good_load: Any, baseline: Baseline, fast_retries: Any
) -> None:
    """The key works for 15 calls, then Streak answers 401: exit 1, one line saying the key was
    rejected and on which endpoint, never the key; the previous load is untouched."""
    with sandbox("revoke-after=15") as sb:
        result = run_main_job([], env=job_env(sb.base_url))
        stats = sb.stats()
    assert stats["faults"]["revoked_calls"] > 0
    assert result.returncode == 1, result.stderr
    line = one_error_line(result.stderr)
    assert ": Streak rejected the API key (401 Unauthorized)" in line and line.startswith("error: GET "), line
    assert KEY not in result.stdout + result.stderr
    assert_untouched(after_good_load, baseline)


def test_the_sandbox_killed_mid_run_fails_with_a_clear_connection_error_and_leaves_the_destination_untouched(
    after_good_load: Any, baseline: Baseline, fast_retries: Any, background_jobs: list[Any], wait_until: Any
) -> None:
    """The API server process dies (SIGKILL) while the job extracts: the job retries, then exits 1
    with one line saying it cannot reach the server; the previous load is untouched."""
    server = subprocess.Popen(
        [sys.executable, "-m", "streak_source.sandbox", "serve", "--port", "0", "--boxes", str(BOXES),
         "--seed", str(SEED), "--anchor-date", ANCHOR, "--api-key", KEY, "--latency-ms", "150"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=str(REPO_ROOT))
    background_jobs.append(server)
    assert server.stdout is not None
    base_url = server.stdout.readline().strip()
    assert base_url.startswith("http://127.0.0.1:"), base_url
    job = start_main_job(job_env(base_url, RUNTIME__REQUEST_MAX_ATTEMPTS="3"))
    background_jobs.append(job)
    wait_until(lambda: requests.get(base_url + "__sandbox__/stats", timeout=5).json()["requests_total"] >= 8,
               timeout=60, what="the job to be extracting")
    server.kill()
    server.wait(timeout=20)
    stdout, stderr = job.communicate(timeout=90)
    assert job.returncode == 1, stderr
    line = one_error_line(stderr)
    assert f"cannot connect to {base_url} after 3 tries" in line or f"the connection to {base_url} broke" in line, line
    assert "normalizing..." not in stdout
    assert_untouched(after_good_load, baseline)


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_sigint_mid_extract_leaves_the_destination_untouched_and_the_next_run_completes(
    after_good_load: Any, baseline: Baseline, fast_retries: Any, background_jobs: list[Any], wait_until: Any,
    stop_signal: signal.Signals,
) -> None:
    """Ctrl-C (SIGINT), or a scheduler's SIGTERM, while the job extracts: exit 130 with one line
    saying it was interrupted, the previous load untouched; the next run drops the unfinished work
    and completes exactly."""
    with sandbox(latency_ms=150) as sb:
        job = start_main_job(job_env(sb.base_url))
        background_jobs.append(job)
        wait_until(lambda: sb.stats()["requests_total"] >= 8, timeout=60, what="the job to be extracting")
        job.send_signal(stop_signal)
        stdout, stderr = job.communicate(timeout=60)
        assert job.returncode == 130, (stdout, stderr)
        assert one_error_line(stderr) == "error: interrupted; the destination keeps its previous complete load"
        assert "normalizing..." not in stdout  # it was stopped while extracting
        assert_untouched(after_good_load, baseline)

        run_in_process({"api_key": KEY, "base_url": sb.base_url, "max_requests_per_second": FAST_CLIENT})
    assert_complete_and_exact(after_good_load.duckdb_path, baseline)
    with duckdb.connect(str(after_good_load.duckdb_path), read_only=True) as con:
        loads = con.execute(f'select count(*) from "{DATASET}"."_dlt_loads"').fetchone()[0]
    assert loads == 1  # each DuckDB load is a fresh file: only the run after the interrupt is recorded
