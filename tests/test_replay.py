"""The source against recorded Streak traffic, with no server running (vcrpy replay).

The cassette was recorded from a small sandbox account by tests/cassettes/record.py; its sidecar
JSON holds that account's ground truth, so the replayed load must reproduce every table exactly and
play every recorded call exactly once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import vcr

from tests.cassettes.record import CASSETTE, META, one_request_at_a_time, vcr_config
from tests.loadtools import ACCOUNT_TABLES, run_in_process, table_counts

pytestmark = pytest.mark.timeout(180)


def test_replayed_load_reproduces_the_recorded_account(dlt_isolated: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    meta = json.loads(META.read_text())
    monkeypatch.setenv("RUNTIME__REQUEST_MAX_ATTEMPTS", "1")  # a miss must fail, not retry
    replay = vcr.VCR(record_mode="none", **vcr_config())
    with one_request_at_a_time(), replay.use_cassette(str(CASSETTE), allow_playback_repeats=False) as cassette:
        summary = run_in_process({"api_key": "replay-needs-no-key", "base_url": meta["base_url"],
                                  "page_sizes": meta["page_sizes"], "max_requests_per_second": 1000})
        assert cassette.all_played, f"{len(cassette) - cassette.play_count} recorded calls were not made"
        assert cassette.play_count == meta["api_calls"] == summary["api_calls"]
    counts = table_counts(dlt_isolated.duckdb_path)
    assert {t: counts.get(t) for t in ACCOUNT_TABLES} == {t: meta["ground_truth"][t] for t in ACCOUNT_TABLES}
    import duckdb

    with duckdb.connect(str(dlt_isolated.duckdb_path), read_only=True) as con:  # the real newsfeed shape
        moves = con.execute("select count(*), count(stage_key) from crm.pipeline_newsfeed where specific = 'EDIT_STAGE'")
        total, with_stage = moves.fetchall()[0]
    assert total > 0 and with_stage == total


def test_cassette_holds_no_credentials() -> None:
    """Recorded with the sandbox's default key ``demo``: neither it nor its Basic form may be inside."""
    import base64

    text = Path(CASSETTE).read_text()
    assert "authorization" not in text.lower()
    for secret in ("Basic ", "Bearer ", base64.b64encode(b"demo:").decode()):
        assert secret not in text
