"""Stage history over simulated days against the sandbox's true paths (issue 13, "done means", short).

One full load per simulated day (the sandbox is advanced between loads; key and base URL are given
to the job as source arguments): after every load the calls equal the sandbox's ``needed_calls +
needed_history_calls``; at the end ``box_stage_history`` is checked stay by stay against
``__sandbox__/history`` (streak_warehouse/history_check.py says exactly what is checked) and the inexact and
unreached stays are printed. The 30-day, 2,000-box run is benchmarks/history.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from streak_source.sandbox import Sandbox
from streak_warehouse.history_check import FETCHED_NEWSFEED_SQL, Coverage, check, feeds_of
from streak_warehouse.stage_history import COLUMNS
from tests.destinations_support import Reader
from tests.loadtools import run_in_process

BUSY = {"changed": 0.25, "created": 0.01, "deleted": 0.005, "pace": 20}
"""Busier than the defaults (the sales process 20 times as fast), so a few days hold moves, moves
back, several moves a day, new and deleted boxes."""


def where(destination: str, request: pytest.FixtureRequest, dlt_dirs: Any) -> dict[str, Any]:
    if destination == "duckdb":
        return {"duckdb_path": dlt_dirs.duckdb_path}
    return {"postgres_url": request.getfixturevalue("postgres_warehouse")}  # sets the env too


def history_rows(db: Reader) -> list[dict[str, Any]]:
    names = [name for name, _ in COLUMNS]
    return [dict(zip(names, row, strict=True))
            for row in db.rows(f"select {', '.join(names)} from crm.box_stage_history")]


@pytest.mark.parametrize(("destination", "boxes", "days"), [
    ("duckdb", 150, 4),
    pytest.param("postgres", 80, 3, marks=pytest.mark.postgres),
])
def test_daily_loads_record_the_true_stage_history_with_calls_that_scale_with_change(
    destination: str, boxes: int, days: int, request: pytest.FixtureRequest, dlt_isolated: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    target = where(destination, request, dlt_isolated)
    coverage = Coverage()
    per_day = []
    with Sandbox(boxes=boxes, seed=13, rates=BUSY) as sb:
        args = {"api_key": sb.api_key, "base_url": sb.base_url, "max_requests_per_second": 1000}
        for day in range(days + 1):
            if day:
                sb.advance(1)
            before = sb.stats()["requests_total"]
            summary = run_in_process(args)
            stats = sb.stats()
            calls = stats["requests_total"] - before
            per_day.append((day, calls, stats["needed_calls"], stats["needed_history_calls"], summary["history_calls"]))
            assert calls == summary["api_calls"] == stats["needed_calls"] + stats["needed_history_calls"], per_day[-1]
            assert summary["history_calls"] == stats["needed_history_calls"]
            with Reader(**target) as db:
                coverage.add_load(feeds_of(db.rows(FETCHED_NEWSFEED_SQL)),
                                  sb.history())
        truth = sb.history()
        with Reader(**target) as db:
            rows = history_rows(db)
            transitions = db.count("stage_transitions")
            recorded_calls = [r[0] for r in db.rows("select history_calls from crm.load_history order by started_at")]

    verdict = check(rows, truth, coverage)
    with capsys.disabled():
        print(f"\n[{destination}, {boxes} boxes x {days} days] {verdict.line()}; "
              f"newsfeeds read: {coverage.fetched}; calls/day (day, made, needed, history needed, history made): {per_day}")
    assert not verdict.problems, verdict.problems[:10]
    assert verdict.exact and verdict.covered_stays  # the simulation really exercised the newsfeed
    assert transitions == len(rows)
    assert recorded_calls == [d[4] for d in per_day]  # load_history counts the history calls
    assert sum(d[3] for d in per_day) > 0
