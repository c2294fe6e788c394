"""End-to-end loads against the live sandbox: every table equals the account's ground truth,
with exactly the calls the account needs, and the main job's CLI contract."""

from __future__ import annotations

import signal
import subprocess
import sys
from typing import Any

import pytest

from streak_source.sandbox import Sandbox
from tests.loadtools import REPO_ROOT, ACCOUNT_TABLES, SMALL_PAGES, run_in_process, run_main_job, table_counts

pytestmark = pytest.mark.timeout(300)


def expected_counts(sandbox: Any) -> dict[str, int]:
    truth = sandbox.ground_truth()
    return {table: truth[table] for table in ACCOUNT_TABLES}


def test_full_load_equals_ground_truth_with_the_fewest_calls(dlt_isolated: Any) -> None:
    with Sandbox(boxes=40, seed=11, page_sizes=SMALL_PAGES) as sb:
        summary = run_in_process({"api_key": sb.api_key, "base_url": sb.base_url, "page_sizes": SMALL_PAGES,
                                  "max_requests_per_second": 500})
        stats = sb.stats()
        truth = expected_counts(sb)
    counts = table_counts(dlt_isolated.duckdb_path)
    assert {t: counts.get(t) for t in ACCOUNT_TABLES} == truth
    assert summary["api_calls"] == stats["requests_total"] == stats["needed_calls"]
    assert summary["boxes_gone"] == []
    assert summary["rows"]["boxes"] == truth["boxes"]


def test_second_run_replaces_instead_of_appending(dlt_isolated: Any) -> None:
    with Sandbox(boxes=15, seed=3) as sb:
        args = {"api_key": sb.api_key, "base_url": sb.base_url, "max_requests_per_second": 500}
        run_in_process(args)
        first = table_counts(dlt_isolated.duckdb_path)
        run_in_process(args)
        second = table_counts(dlt_isolated.duckdb_path)
        truth = expected_counts(sb)
    assert {t: second[t] for t in ACCOUNT_TABLES} == truth
    assert {t: first[t] for t in ACCOUNT_TABLES} == {t: second[t] for t in ACCOUNT_TABLES}


def test_without_skipping_every_box_gets_every_child_call(dlt_isolated: Any) -> None:
    with Sandbox(boxes=12, seed=5) as sb:
        summary = run_in_process({"api_key": sb.api_key, "base_url": sb.base_url, "skip_empty_children": False,
                                  "max_requests_per_second": 500})
        stats = sb.stats()
        truth = expected_counts(sb)
    counts = table_counts(dlt_isolated.duckdb_path)
    assert {t: counts.get(t) for t in ACCOUNT_TABLES} == truth
    assert summary["child_calls_skipped"] == 0
    child_routes = [r for r in stats["requests_by_route"] if "/boxes/{box_key}/" in r]
    assert len(child_routes) == 5
    assert all(stats["requests_by_route"][r] == truth["boxes"] for r in child_routes)
    assert summary["api_calls"] > stats["needed_calls"]


def test_children_of_a_box_deleted_mid_run_are_skipped_and_reported(dlt_isolated: Any) -> None:
    with Sandbox(boxes=30, seed=2, faults=["gone=2"]) as sb:
        summary = run_in_process({"api_key": sb.api_key, "base_url": sb.base_url, "max_requests_per_second": 500})
        gone = set(sb.stats()["faults"]["gone_box_keys"])
        truth = expected_counts(sb)
    assert len(gone) == 2
    assert set(summary["boxes_gone"]) == gone
    counts = table_counts(dlt_isolated.duckdb_path)
    assert counts["boxes"] == truth["boxes"]  # the boxes themselves were listed before they went
    import duckdb

    with duckdb.connect(str(dlt_isolated.duckdb_path), read_only=True) as con:
        for table in ("box_tasks", "box_threads", "box_comments", "box_meetings", "box_files"):
            keys = {r[0] for r in con.execute(f"select distinct box_key from crm.{table}").fetchall()}
            assert not keys & gone, table


def test_cli_demo_loads_every_table(dlt_isolated: Any) -> None:
    result = run_main_job(["--demo", "--demo-boxes", "25"], env={})
    assert result.returncode == 0, result.stderr
    assert "Loaded a full copy" in result.stdout
    counts = table_counts(dlt_isolated.duckdb_path)
    with Sandbox(boxes=25) as sb:
        truth = expected_counts(sb)
    assert {t: counts.get(t) for t in ACCOUNT_TABLES} == truth


def test_cli_reads_key_and_base_url_from_environment_only(dlt_isolated: Any, wait_until: Any) -> None:
    server = subprocess.Popen(
        [sys.executable, "-m", "streak_source.sandbox", "serve", "--port", "0", "--boxes", "20",
         "--api-key", "env-only-key"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        cwd=str(REPO_ROOT),
    )
    try:
        assert server.stdout is not None
        base_url = server.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:"), base_url
        result = run_main_job([], env={"SOURCES__STREAK__API_KEY": "env-only-key",
                                       "SOURCES__STREAK__BASE_URL": base_url,
                                       "SOURCES__STREAK__MAX_REQUESTS_PER_SECOND": "200"})
        assert result.returncode == 0, result.stderr
        import requests

        truth = requests.get(base_url + "__sandbox__/account", timeout=10).json()
        stats = requests.get(base_url + "__sandbox__/stats", timeout=10).json()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)
        if server.stdout is not None:
            server.stdout.close()
    counts = table_counts(dlt_isolated.duckdb_path)
    assert {t: counts.get(t) for t in ACCOUNT_TABLES} == {t: truth[t] for t in ACCOUNT_TABLES}
    assert stats["requests_total"] == stats["needed_calls"]


def test_cli_without_a_key_names_the_three_ways_to_give_one(dlt_isolated: Any) -> None:
    result = run_main_job([], env={})
    assert result.returncode == 3  # configuration error (2 is argparse's bad arguments)
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1
    for way in (".dlt/secrets.toml", "SOURCES__STREAK__API_KEY", "--demo"):
        assert way in message
    assert not dlt_isolated.duckdb_path.exists()


def test_cli_with_a_rejected_key_fails_in_one_line_and_keeps_the_last_load(dlt_isolated: Any) -> None:
    with Sandbox(boxes=10, seed=4, api_keys=["good-key"]) as sb:
        ok = run_main_job([], env={"SOURCES__STREAK__API_KEY": "good-key", "SOURCES__STREAK__BASE_URL": sb.base_url,
                                   "SOURCES__STREAK__MAX_REQUESTS_PER_SECOND": "200"})
        assert ok.returncode == 0, ok.stderr
        before = table_counts(dlt_isolated.duckdb_path)
        bad = run_main_job([], env={"SOURCES__STREAK__API_KEY": "wrong-key-123", "SOURCES__STREAK__BASE_URL": sb.base_url})
    assert bad.returncode == 1
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and "rejected the API key" in lines[0], bad.stderr
    assert "wrong-key-123" not in bad.stderr + bad.stdout
    assert table_counts(dlt_isolated.duckdb_path) == before
