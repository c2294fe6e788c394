"""``--backfill-history`` (issue 13): the flag, its up-front estimate, and a first run that reads every
box's newsfeed and records each path exactly as far back as the newsfeed reaches."""

from __future__ import annotations

import io
from typing import Any

from pipelines.cli import parse_args
from pipelines.progress import backfill_estimate
from streak_source.sandbox import Sandbox
from streak_warehouse.history_check import Coverage, check, feeds_of
from streak_warehouse.history_tables import PreviousHistory
from streak_warehouse.stage_history import to_ms
from tests.destinations_support import Reader
from tests.test_history_simulation import history_rows


def test_the_flag_is_documented_and_parsed(capsys: Any) -> None:
    assert parse_args(["--backfill-history"]).backfill_history is True
    assert parse_args([]).backfill_history is False
    try:
        parse_args(["--help"])
    except SystemExit:
        pass
    assert "--backfill-history" in capsys.readouterr().out


def test_the_estimate_names_calls_and_time_at_the_configured_rate() -> None:
    known = backfill_estimate(PreviousHistory({f"b{i}": None for i in range(20_000)}), {"max_requests_per_second": 10})
    assert "20,000 newsfeed calls" in known and "33.3 min at 10 requests/s" in known
    first = backfill_estimate(PreviousHistory(), {"max_requests_per_second": 10})
    assert "100 s per 1,000 boxes at 10 requests/s" in first


def test_a_first_run_with_backfill_reads_every_box_and_records_paths_exactly(dlt_isolated: Any) -> None:
    from pipelines.job import run_full_load

    with Sandbox(boxes=40, seed=8) as sb:
        out = io.StringIO()
        summary = run_full_load({"api_key": sb.api_key, "base_url": sb.base_url, "max_requests_per_second": 1000},
                                progress=out, backfill_history=True)
        stats = sb.stats()
        truth = sb.history()
    assert "--backfill-history: one newsfeed call per box" in out.getvalue()
    assert summary.history_calls == stats["needed_backfill_calls"] == 40
    assert stats["requests_total"] == summary.api_calls == stats["needed_calls"] + stats["needed_backfill_calls"]
    coverage = Coverage()
    with Reader(duckdb_path=dlt_isolated.duckdb_path) as db:
        feeds = feeds_of(db.rows("select box_key, specific, timestamp from crm.box_newsfeed"))
        coverage.add_load(feeds, truth)
        rows = history_rows(db)
    verdict = check(rows, truth, coverage)
    assert not verdict.problems, verdict.problems[:10]
    assert verdict.covered_stays and verdict.exact >= verdict.covered_stays
    exact = [row for row in rows if row["exact"]]
    assert "newsfeed" in {row["known_from"] for row in exact}
    for row in exact:  # the newsfeed, or the snapshot for a stay older than a capped feed reaches
        if row["known_from"] != "newsfeed":
            feed = feeds[row["box_key"]]
            assert row["known_from"] == "snapshot" and "NEW_BOX" not in {s for s, _ in feed}, row
            assert to_ms(row["entered_at"]) < min(t for _, t in feed) and row["left_at"] is None, row
