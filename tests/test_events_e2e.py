"""End to end (issue 14): sandbox webhooks -> the receiver (a real subprocess) -> the spool ->
``streak_events.py load`` -> ``crm.events`` -> the main job, which adds the events derived from the copy.

Ten simulated days with webhooks registered by ``streak_events.py webhooks register``; the receiver
(a subprocess) is restarted (SIGTERM) on day 4 and SIGKILLed while day 7's deliveries are in
flight; ``load`` runs on day 5 (the receiver running) and at the end. Afterwards the spool and
``crm.events`` hold exactly the sandbox's ``changes`` of the subscribed kinds, once each; then the
main job on that account adds derived events without duplicating any webhook event. The commands
other than ``serve`` run in this process through their ``main`` (their command lines are tested in
test_events_webhooks_cli.py and test_events_load.py): a subprocess costs seconds of imports.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import pytest
import requests
from events_support import API_KEY, ROOT, TOKEN, ReceiverProcess, receiver_env

from pipelines.events_cli import main
from streak_eventlog.spool import Spool
from streak_source.sandbox import Sandbox
from tests.loadtools import run_in_process

ANCHOR_MS = 1_741_910_400_000  # 2025-03-14T00:00:00Z, the sandbox's anchor_date: day 1 starts here
KINDS = ("BOX_CREATE", "BOX_DELETE", "BOX_CHANGE_STAGE", "BOX_EDIT", "TASK_CREATE", "TASK_COMPLETE", "COMMENT_CREATE", "MEETING_CREATE", "STAGE_CREATE")


def test_serve_refuses_to_start_without_keys(tmp_path: Path) -> None:
    env = receiver_env(tmp_path / "s.sqlite", DLT_PROJECT_DIR=str(tmp_path))
    del env["EVENTS__WEBHOOK_TOKEN"]
    done = subprocess.run(
        [sys.executable, str(ROOT / "pipelines" / "streak_events.py"), "serve", "--port", "0"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 3 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "EVENTS__WEBHOOK_TOKEN" in done.stderr
    assert API_KEY not in done.stderr


def test_serve_prints_its_url_binds_localhost_and_stops_on_sigterm(tmp_path: Path) -> None:
    receiver = ReceiverProcess(tmp_path / "s.sqlite", tmp_path)
    try:
        assert receiver.url.startswith("http://127.0.0.1:") and receiver.url.endswith("/")
        assert requests.get(receiver.url + "health", timeout=10).json()["ok"] is True
    finally:
        assert receiver.stop(signal.SIGTERM) == 0


DERIVABLE = ("BOX_CREATE", "BOX_CHANGE_STAGE", "TASK_CREATE", "TASK_COMPLETE", "COMMENT_CREATE", "MEETING_CREATE")
"""The subscribed kinds the main job also derives from the copy."""


def events_main(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """``streak_events.py ARGV`` in this process; its stdout (it must exit 0)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    assert TOKEN not in out + err and API_KEY not in out + err
    return out


def warehouse_events(path: Path) -> list[dict[str, Any]]:
    names = ("event_key", "event_name", "object_key", "at_ms", "source", "box_key", "pipeline_key")
    with duckdb.connect(str(path), read_only=True) as con:
        cursor = con.execute("SELECT event_key, event_name, json_extract_string(properties, '$.object_key'), "
                             "epoch_ms(timestamp), source, box_key, pipeline_key FROM crm.events")
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def identity(row: dict[str, Any]) -> tuple[str, str, int]:
    return row["event_name"], row["object_key"], row["at_ms"]


@pytest.mark.slow
def test_ten_days_of_webhooks_through_a_restart_and_a_sigkill_into_the_warehouse(
    tmp_path: Path, dlt_isolated: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spool_path = tmp_path / "spool.sqlite"
    for name, value in receiver_env(spool_path).items():
        if name.startswith("EVENTS__"):
            monkeypatch.setenv(name, value)  # the receiver's settings; the warehouse is dlt_isolated's
    receiver = ReceiverProcess(spool_path, tmp_path)
    port = receiver.port
    killed_mid_stream = -1
    with Sandbox(boxes=200, seed=7, anchor_date="2025-03-14", rates={"changed": 0.05, "created": 0.02},
                 webhook_backoff_s=0.2, webhook_attempts=12) as sb:
        monkeypatch.setenv("SOURCES__STREAK__API_KEY", sb.api_key)
        monkeypatch.setenv("SOURCES__STREAK__BASE_URL", sb.base_url)
        monkeypatch.setenv("SOURCES__STREAK__MAX_REQUESTS_PER_SECOND", "1000")
        made = events_main(capsys, "webhooks", "register", "--url", receiver.url,
                           *(arg for kind in KINDS for arg in ("--event", kind)))
        assert made.count("created\t") == len(KINDS) * len(sb.account.pipelines)
        try:
            for day in range(1, 11):
                sb.advance(1)
                if day == 7:
                    killed_mid_stream = sb.server.webhooks.pending()
                    receiver.stop(signal.SIGKILL)
                    receiver = ReceiverProcess(spool_path, tmp_path, port)
                assert sb.wait_for_deliveries(120)
                if day == 4:
                    assert receiver.stop(signal.SIGTERM) == 0
                    receiver = ReceiverProcess(spool_path, tmp_path, port)
                if day == 5:  # a load while the receiver runs: later deliveries go in the next one
                    assert events_main(capsys, "load").startswith("loaded ")
        finally:
            receiver.stop(signal.SIGTERM)
        truth = [c for c in sb.changes(0) if c["type"] in KINDS]
        log = sb.deliveries()
        assert events_main(capsys, "load").startswith("loaded ")
        webhook_rows = warehouse_events(dlt_isolated.duckdb_path)

        # the main job on the same account: the events derived from its copy join the webhook ones
        run_in_process({"api_key": sb.api_key, "base_url": sb.base_url, "max_requests_per_second": 1000})
        threads = [c for c in sb.changes(0) if c["type"] == "THREAD_CREATE" and c["box_key"] in sb.account.boxes_by_key]
    assert killed_mid_stream > 0, "the SIGKILL came after day 7's deliveries had all been sent"
    assert not [e for e in log if e["outcome"] != "delivered" and e["outcome"] != "retry"]

    # the spool: every acknowledged delivery, once
    with Spool(spool_path, writer=False) as spool:
        rows = spool.all_rows()
        assert spool.pending() == 0
    assert len({r["event_key"] for r in rows}) == len(rows)
    got = Counter(
        (r["event_name"], r["properties"]["object_key"], round(r["timestamp"].timestamp() * 1000)) for r in rows
    )
    expected = Counter((c["type"], c["key"], c["at"]) for c in truth)
    assert max(expected.values()) == 1  # the truth has no two identical changes
    assert got == expected
    assert all(r["source"] == "webhook" and r["pipeline_key"] for r in rows)
    assert {r["box_key"] for r in rows if r["event_name"].startswith(("BOX_", "TASK_"))} <= {
        c["box_key"] for c in truth
    }

    # crm.events after `load`: the same events, once each
    assert Counter(map(identity, webhook_rows)) == expected
    assert {r["source"] for r in webhook_rows} == {"webhook"}

    # after the main job: the webhook events unchanged, no event twice, derived ones beside them
    final = warehouse_events(dlt_isolated.duckdb_path)
    assert sorted(r["event_key"] for r in final if r["source"] == "webhook") == sorted(r["event_key"] for r in webhook_rows)
    assert max(Counter(map(identity, final)).values()) == 1
    once = {*DERIVABLE, "THREAD_CREATE"} - {"BOX_CHANGE_STAGE"}
    once_per_object = [(r["event_name"], r["object_key"]) for r in final if r["event_name"] in once]
    assert max(Counter(once_per_object).values()) == 1  # created once, completed once (the sandbox never reopens)
    derived = [r for r in final if r["source"] == "derived"]
    assert not [r for r in derived if (r["event_name"], r["object_key"], r["at_ms"]) in expected]
    hooked_moves = {(r["object_key"], r["at_ms"]) for r in webhook_rows if r["event_name"] == "BOX_CHANGE_STAGE"}
    assert not [r for r in derived if r["event_name"] == "BOX_CHANGE_STAGE" and any(
        box == r["object_key"] and abs(at - r["at_ms"]) <= 2_000 for box, at in hooked_moves)]
    # what only the copy knows: day 0's history and the email threads (no Streak webhook for those)
    assert {r["event_name"] for r in derived if r["at_ms"] < ANCHOR_MS} >= set(DERIVABLE) - {"BOX_CHANGE_STAGE"}
    assert threads and {("THREAD_CREATE", c["key"]) for c in threads} <= {(r["event_name"], r["object_key"]) for r in derived}
    assert set(Counter(r["source"] for r in final)) == {"webhook", "derived"}
    # the dashboard's Events page, with no filter set, counts every event, by source (most first)
    from dashboards.app_pages.events_queries import events_summary
    from dashboards.data.connection import DuckDBRunner
    from dashboards.data.filters import Filters

    with duckdb.connect(str(dlt_isolated.duckdb_path), read_only=True) as con:
        shown = events_summary(DuckDBRunner(con), Filters())["by_source"]
    assert list(shown.items()) == Counter(r["source"] for r in final).most_common()
    # no secret in the spool, the warehouse or the receiver's logs
    blob = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert TOKEN.encode() not in blob and API_KEY.encode() not in blob
    assert os.path.getsize(spool_path) > 0
