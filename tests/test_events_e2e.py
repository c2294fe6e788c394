"""End to end (issue 14): sandbox webhooks -> the receiver (a real subprocess) -> the spool.

Ten simulated days with webhooks registered through the management code; the receiver is
restarted (SIGTERM) on day 4 and SIGKILLed while day 7's deliveries are in flight; afterwards the
spool holds exactly the sandbox's ``changes`` of the subscribed kinds, once each.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import requests
from events_support import API_KEY, ROOT, TOKEN, ReceiverProcess, receiver_env

from streak_eventlog import webhooks
from streak_eventlog.spool import Spool
from streak_source.client import StreakClient
from streak_source.sandbox import Sandbox

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


@pytest.mark.slow
def test_ten_days_of_webhooks_through_a_restart_and_a_sigkill(tmp_path: Path) -> None:
    spool_path = tmp_path / "spool.sqlite"
    receiver = ReceiverProcess(spool_path, tmp_path)
    port = receiver.port
    killed_mid_stream = -1
    with Sandbox(boxes=300, seed=7, anchor_date="2025-03-14", rates={"changed": 0.05},
                 webhook_backoff_s=0.2, webhook_attempts=12) as sb:
        client = StreakClient(sb.api_key, sb.base_url, 200)
        made = webhooks.register(client, receiver.url, TOKEN, KINDS)
        assert len(made) == len(KINDS) * len(sb.account.pipelines)
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
        finally:
            receiver.stop(signal.SIGTERM)
        truth = [c for c in sb.changes(0) if c["type"] in KINDS]
        log = sb.deliveries()
    assert killed_mid_stream > 0, "the SIGKILL came after day 7's deliveries had all been sent"
    assert not [e for e in log if e["outcome"] != "delivered" and e["outcome"] != "retry"]
    with Spool(spool_path, writer=False) as spool:
        rows = spool.all_rows()
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
    # no secret in the spool or in the receiver's logs
    blob = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert TOKEN.encode() not in blob and API_KEY.encode() not in blob
    assert os.path.getsize(spool_path) > 0
