"""A demo account's copy with real history: day 0 loaded, then one simulated day and one load at a time.

Used by ``benchmarks/dashboard_render.py --boxes N --days D`` so the dashboard is measured on what a
user who has run the job daily for D days holds: history tables, stage history, events and outcome
views written by the job itself, not fabricated rows.

* The sandbox runs as its own process (``python -m streak_source.sandbox serve``), so it and the job
  use both cores; it is moved on with ``POST __sandbox__/advance?days=1`` (docs/sandbox.md).
* Its day 0 is ``D`` days before today, so the last load is today's and the dashboard's "now" (the
  wall clock) falls just after it.
* Each load runs in this process (``pipelines.job.run_full_load``) as ``--demo`` runs it (the demo's
  settings, its past read on day 0), with ``streak_clock`` set to the sandbox's day plus a minute,
  as the forecast backtest does: each load finishes on its simulated day, so the history spans D days.
* ``--refresh changed`` every day: the job's default policy then makes a full load whenever the last
  one is more than ``full_refresh_every_days`` (7) old, ``changed`` otherwise (docs/refresh.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
SEED = 7
"""The demo account's seed (``streak_source.sandbox.DEFAULT_SEED``)."""


@dataclass(frozen=True)
class ServedSandbox:
    """A sandbox process: where it answers and the day-0 anchor it was started with."""

    base_url: str
    anchor: date
    process: subprocess.Popen[str]

    def advance(self) -> dict[str, Any]:
        """One more simulated day; the sandbox's answer (``{"day": D, "changes": n}``)."""
        request = urllib.request.Request(f"{self.base_url}__sandbox__/advance?days=1", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=600) as response:
            return json.loads(response.read())

    def moment(self, day: int) -> datetime:
        """The sandbox's "now" on ``day`` (midnight UTC of anchor + day) plus a minute: when that day's load runs."""
        midnight = datetime(self.anchor.year, self.anchor.month, self.anchor.day, tzinfo=UTC)
        return midnight + timedelta(days=day, minutes=1)


@contextmanager
def served_sandbox(boxes: int, anchor: date) -> Iterator[ServedSandbox]:
    """``python -m streak_source.sandbox serve`` with the demo account of ``boxes`` anchored at ``anchor``."""
    command = [sys.executable, "-m", "streak_source.sandbox", "serve", "--boxes", str(boxes),
               "--seed", str(SEED), "--anchor-date", anchor.isoformat()]
    process = subprocess.Popen(command, cwd=str(REPO_ROOT), stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        if not base_url.startswith("http"):
            raise RuntimeError(f"the sandbox did not start (exit {process.poll()})")
        yield ServedSandbox(base_url, anchor, process)
    finally:
        process.terminate()
        process.wait(timeout=60)


def build_history(boxes: int, days: int, path: Path, rate: float,
                  progress: Callable[[str], None] = lambda _: None) -> list[dict[str, Any]]:
    """Load the demo account of ``boxes`` into the DuckDB file ``path`` on day 0 and after each of
    ``days`` simulated days; returns one line per load (day, mode, seconds, versions added)."""
    import streak_clock
    from pipelines.job import run_full_load
    from streak_source.sandbox import DEMO_SETTINGS

    os.environ["STREAK_DUCKDB_PATH"] = str(path)
    anchor = streak_clock.today() - timedelta(days=days)
    loads: list[dict[str, Any]] = []
    wall_clock = streak_clock.now
    with served_sandbox(boxes, anchor) as sandbox:
        args = {"api_key": "demo", "base_url": sandbox.base_url, "max_requests_per_second": rate,
                "origin": f"demo sandbox (seed {SEED}, {boxes} boxes)"}
        try:
            for day in range(days + 1):
                changes = sandbox.advance()["changes"] if day else None
                moment = sandbox.moment(day)
                streak_clock.now = lambda moment=moment: moment  # type: ignore[misc]
                started = time.monotonic()
                summary = run_full_load(dict(args), progress=None, refresh="changed",
                                        account_defaults=DEMO_SETTINGS, backfill_first_load=True)
                loads.append({"day": day, "sandbox_changes": changes, "mode": summary.mode,
                              "wall_s": round(time.monotonic() - started, 1),
                              "versions_added": sum(summary.versions_added.values()),
                              "file_mb": round(path.stat().st_size / 2**20, 1)})
                progress(f"day {day}/{days}: {loads[-1]}")
        finally:
            streak_clock.now = wall_clock
    return loads


def recreate_outcome_views(path: Path) -> None:
    """Create the copy's outcome tables and views again as this code writes them (``create_outcome_views``,
    what the job runs at the end of every load, with the copy's own account settings and its last
    load's end as "now"): a copy built by older code then holds the views a load by this code leaves."""
    import duckdb

    from streak_warehouse import account_defaults as defaults
    from streak_warehouse.destination import use_project_settings
    from streak_warehouse.outcome_config import configured_settings
    from streak_warehouse.outcome_views import create_outcome_views

    use_project_settings()
    with duckdb.connect(str(path)) as con:
        con.execute("SET TimeZone = 'UTC'")

        def execute(sql: str) -> list[tuple[Any, ...]]:
            return con.execute(sql).fetchall()

        account = defaults.parse_defaults(execute(
            f"SELECT {defaults.SETTING}, {defaults.VALUE_JSON} FROM crm.{defaults.VIEW}"))
        (at,) = execute("SELECT MAX(finished_at) FROM crm.load_history WHERE outcome = 'ok'")[0]
        report = create_outcome_views(execute, "crm", configured_settings(account), at, "duckdb")
    if report.skipped:
        raise RuntimeError(f"outcome views not created: {report.skipped}")
