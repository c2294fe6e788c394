"""Stage history outlives everything a replace run can do to the copy (issue 13, DuckDB and Postgres).

One account, day by day: the history a published load wrote must be exactly what the live copy
holds after a rerun on the same day (nothing added), a run that fails after computing the new
history (before publishing), and a run killed with SIGKILL while loading; the next runs continue
from it through the swap, also from a fresh dlt working dir (everything is read from the
destination), and calls stay at ``needed_calls + needed_history_calls``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from streak_source.sandbox import Sandbox
from streak_warehouse.history_check import FETCHED_NEWSFEED_SQL, Coverage, check, feeds_of
from streak_warehouse.stage_history import COLUMNS, TRANSITION_COLUMNS
from tests.destinations_support import Reader
from tests.loadtools import MAIN_JOB, REPO_ROOT, run_in_process
from tests.test_history_simulation import BUSY, history_rows, where
from tests.test_warehouse_history import forget_this_machine

BOTH = ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)]


def tables(target: dict[str, Any]) -> dict[str, list[tuple[Any, ...]]]:
    """Both stage history tables, every history-mode table (``<table>_history``, ``deletions``) and
    load_history's run ids, every row, in a fixed order."""
    with Reader(**target) as db:
        stays = sorted(db.rows(f"select {', '.join(n for n, _ in COLUMNS)} from crm.box_stage_history"), key=repr)
        moves = sorted(db.rows(f"select {', '.join(chr(34) + n + chr(34) for n, _ in TRANSITION_COLUMNS)} from crm.stage_transitions"),
                       key=repr)
        runs = db.rows("select run_id from crm.load_history order by started_at")
        versions = {name: sorted(db.rows(f"select * from crm.{name}"), key=repr) for name in db.relations()
                    if name.endswith("_history") and name not in ("box_stage_history", "load_history")}
        deletions = sorted(db.rows("select * from crm.deletions"), key=repr)
    assert len(versions) >= 18 and versions["boxes_history"]
    return {"box_stage_history": stays, "stage_transitions": moves, "load_history": runs, "deletions": deletions,
            **versions}


def exact_closed(target: dict[str, Any]) -> set[tuple[Any, ...]]:
    with Reader(**target) as db:
        return {(r["stay_key"], r["left_at"]) for r in history_rows(db) if r["exact"] and r["left_at"] is not None}


@pytest.fixture
def killed_jobs() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def kill_while_loading(sb: Sandbox, jobs: list[subprocess.Popen[str]]) -> str:
    """Run the main job in a subprocess (same env: destination, dlt dirs) and SIGKILL it as soon as
    it says it is loading. Returns what it printed."""
    env = {**os.environ, "SOURCES__STREAK__API_KEY": sb.api_key, "SOURCES__STREAK__BASE_URL": sb.base_url,
           "SOURCES__STREAK__MAX_REQUESTS_PER_SECOND": "1000"}
    proc = subprocess.Popen([sys.executable, str(MAIN_JOB)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=str(REPO_ROOT.parent))
    jobs.append(proc)
    assert proc.stdout is not None
    printed = []
    for line in proc.stdout:
        printed.append(line)
        if line.startswith("loading..."):
            os.kill(proc.pid, signal.SIGKILL)
            break
    assert proc.wait(timeout=30) == -signal.SIGKILL, "".join(printed)
    return "".join(printed)


def load_day(sb: Sandbox, target: dict[str, Any], coverage: Coverage, same_day: bool = False) -> dict[str, Any]:
    """One published load; checks its calls (a rerun on the same day needs no history call) and
    records what its newsfeeds covered."""
    before = sb.stats()["requests_total"]
    summary = run_in_process({"api_key": sb.api_key, "base_url": sb.base_url, "max_requests_per_second": 1000})
    stats = sb.stats()
    history_needed = 0 if same_day else stats["needed_history_calls"]
    assert stats["requests_total"] - before == stats["needed_calls"] + history_needed
    assert summary["history_calls"] == history_needed
    with Reader(**target) as db:
        coverage.add_load(feeds_of(db.rows(FETCHED_NEWSFEED_SQL)), sb.history())
    return summary


@pytest.mark.parametrize("destination", BOTH)
def test_history_survives_reruns_failed_and_killed_runs_the_swap_and_a_fresh_working_dir(
    destination: str, request: pytest.FixtureRequest, dlt_isolated: Any, monkeypatch: pytest.MonkeyPatch,
    killed_jobs: list[subprocess.Popen[str]],
) -> None:
    import pipelines.job

    target = where(destination, request, dlt_isolated)
    coverage = Coverage()
    with Sandbox(boxes=60, seed=21, rates=BUSY) as sb:
        load_day(sb, target, coverage)
        sb.advance(1)
        load_day(sb, target, coverage)
        day1 = tables(target)
        assert any(row[9] == "newsfeed" for row in day1["box_stage_history"])  # known_from: moves were read

        rerun = load_day(sb, target, coverage, same_day=True)  # the same day again: nothing to read, nothing added
        again = tables(target)
        assert rerun["history_calls"] == 0 and rerun["history_added"] == 0
        assert {k: v for k, v in again.items() if k != "load_history"} == \
            {k: v for k, v in day1.items() if k != "load_history"}
        day1 = again

        sb.advance(1)
        real = pipelines.job.new_history

        def computed_then_failed(*args: Any, **kwargs: Any) -> Any:
            result = real(*args, **kwargs)
            assert result.added > 0  # there was something new to lose
            raise RuntimeError("disk full while writing stage history")

        monkeypatch.setattr(pipelines.job, "new_history", computed_then_failed)
        with pytest.raises(RuntimeError, match="disk full"):
            run_in_process({"api_key": sb.api_key, "base_url": sb.base_url, "max_requests_per_second": 1000})
        monkeypatch.setattr(pipelines.job, "new_history", real)
        assert tables(target) == day1  # the failed run changed nothing

        real_versions = pipelines.job.record_versions

        def recorded_then_failed(*args: Any, **kwargs: Any) -> Any:
            added = real_versions(*args, **kwargs)
            assert added.total > 0  # versions were written into the fresh copy, then lost with it
            raise RuntimeError("connection lost while publishing")

        monkeypatch.setattr(pipelines.job, "record_versions", recorded_then_failed)
        with pytest.raises(RuntimeError, match="connection lost"):
            run_in_process({"api_key": sb.api_key, "base_url": sb.base_url, "max_requests_per_second": 1000})
        monkeypatch.setattr(pipelines.job, "record_versions", real_versions)
        assert tables(target) == day1  # nor did one that failed inside the publishing transaction

        printed = kill_while_loading(sb, killed_jobs)
        assert "loading..." in printed
        assert tables(target) == day1  # nor did the killed one

        load_day(sb, target, coverage)  # day 2 published: continues from day 1
        assert exact_closed(target) >= exact_closed_of(day1)
        day2 = tables(target)
        assert versions_kept(day1, day2)
        assert len(day2["box_stage_history"]) > len(day1["box_stage_history"])

        forget_this_machine(dlt_isolated)  # a fresh machine: the dlt working dir is gone
        sb.advance(1)
        fresh = load_day(sb, target, coverage)  # calls = needed + history needed: the map came from the destination
        assert fresh["history_calls"] > 0
        assert exact_closed(target) >= exact_closed_of(day2)
        assert versions_kept(day2, tables(target))  # the history came from the destination, not the working dir
        with Reader(**target) as db:
            rows = history_rows(db)
            statuses = db.rows("select outcome from crm.load_history order by started_at")
        verdict = check(rows, sb.history(), coverage)
    assert not verdict.problems, verdict.problems[:10]
    assert [s for s, in statuses].count("ok") == 5  # the failed runs recorded too (their side records)
    assert "failed" in [s for s, in statuses]


def exact_closed_of(snapshot: dict[str, list[tuple[Any, ...]]]) -> set[tuple[Any, ...]]:
    return {(r[0], r[7]) for r in snapshot["box_stage_history"] if r[10] and r[7] is not None}


def versions_kept(before: dict[str, list[tuple[Any, ...]]], after: dict[str, list[tuple[Any, ...]]]) -> bool:
    """Every version ``before`` held is still in ``after``, unchanged but for the end a later run gave
    the current ones (``valid_to``, ``deleted``: the last two columns); and something was added."""
    names = [name for name in before if name.endswith("_history") and name not in ("box_stage_history", "load_history")]
    grew = False
    for name in names:
        later = {row[:-2]: row for row in after[name]}
        for row in before[name]:
            kept = later.get(row[:-2])
            if kept is None or (row[-2] is not None and kept[-2:] != row[-2:]):
                return False
        grew = grew or len(after[name]) > len(before[name])
    return grew
