"""Stage history over a simulated month, checked against the sandbox's truth (issue 13; not a timed test).

    python benchmarks/history.py [--boxes 2000] [--days 30] [--big-boxes 20000] [--big-days 3]
                                 [--day-rate changed=0.01 ...] [--backfill-first]
                                 [--json benchmarks/results/history.json]

For each simulated day N = 0..days it starts the sandbox as its own process with ``serve --day N``
(same seed: day N is the account N days on), points the main job at it through the environment
only (``SOURCES__STREAK__API_KEY``, ``SOURCES__STREAK__BASE_URL``), runs one full load into a
DuckDB file that lives for the whole month, and stops the sandbox. Per day it records the calls
the job made, the sandbox's ``needed_calls`` and ``needed_history_calls`` (they must add up to the
calls made), the history calls, the seconds, and what the load's per-box newsfeeds covered. At
the end ``crm.box_stage_history`` is checked against ``__sandbox__/history`` with
streak_warehouse/history_check.py (no stay invented or duplicated; exact where a newsfeed covered it; the
inexact and unreached stays counted). ``--backfill-first``: day 0's load runs with
``--backfill-history`` (one newsfeed call per box: its calls must equal ``needed_calls +
needed_backfill_calls``). ``--big-boxes``: the same for a few days of a larger account
(0 to skip). Everything runs in a temp dir.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import requests

import streak_clock

REPO_ROOT = Path(__file__).resolve().parent.parent
SEED = 13
CLIENT_RATE = "1000"
"""The local sandbox has no rate limit: the client limit is set out of reach, so time is the loader's own."""


def serve(boxes: int, day: int, rates: list[str]) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, "-m", "streak_source.sandbox", "serve", "--port", "0", "--boxes", str(boxes),
               "--seed", str(SEED), "--day", str(day)]
    for rate in rates:
        command += ["--day-rate", rate]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=str(REPO_ROOT))
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def simulate(boxes: int, days: int, rates: list[str], work: Path, backfill_first: bool = False) -> dict[str, Any]:
    from pipelines.job import run_full_load
    from streak_warehouse.history_check import FETCHED_NEWSFEED_SQL, Coverage, check, feeds_of
    from streak_warehouse.stage_history import COLUMNS

    database = work / f"history-{boxes}.duckdb"
    os.environ.update({"DLT_DATA_DIR": str(work / f"dlt-{boxes}"), "STREAK_DUCKDB_PATH": str(database),
                       "SOURCES__STREAK__API_KEY": "demo", "SOURCES__STREAK__MAX_REQUESTS_PER_SECOND": CLIENT_RATE})
    coverage = Coverage()
    per_day: list[dict[str, Any]] = []
    truth: dict[str, Any] = {}
    started = time.monotonic()
    for day in range(days + 1):
        proc, base_url = serve(boxes, day, rates)
        try:
            os.environ["SOURCES__STREAK__BASE_URL"] = base_url
            clock = time.monotonic()
            backfill = backfill_first and day == 0
            summary = run_full_load({}, progress=None, backfill_history=backfill)
            seconds = time.monotonic() - clock
            stats = requests.get(base_url + "__sandbox__/stats", timeout=30).json()
            truth = requests.get(base_url + "__sandbox__/history", timeout=120).json()
        finally:
            proc.terminate()
            proc.wait(timeout=60)
        with duckdb.connect(str(database), read_only=True) as con:
            coverage.add_load(feeds_of(con.execute(FETCHED_NEWSFEED_SQL).fetchall()),
                              truth)
        history_needed = stats["needed_backfill_calls"] if backfill else stats["needed_history_calls"]
        needed = stats["needed_calls"] + history_needed
        per_day.append({
            "day": day, "api_calls": summary.api_calls, "sandbox_requests": stats["requests_total"],
            "needed_calls": stats["needed_calls"], "needed_history_calls": history_needed, "backfill": backfill,
            "history_calls": summary.history_calls, "calls_equal_needed": summary.api_calls == needed == stats["requests_total"],
            "stays": summary.history_stays, "new_stays": summary.history_added, "inexact_stays": summary.history_inexact,
            "seconds": round(seconds, 1), "history_s": round(summary.history_s, 2),
        })
        print(json.dumps(per_day[-1]), flush=True)
    names = [name for name, _ in COLUMNS]
    with duckdb.connect(str(database), read_only=True) as con:
        rows = [dict(zip(names, row, strict=True))
                for row in con.execute(f"select {', '.join(names)} from crm.box_stage_history").fetchall()]
    verdict = check(rows, truth, coverage)
    print(verdict.line(), flush=True)
    return {
        "boxes": boxes, "days": days, "day_rates": rates or "sandbox defaults", "seed": SEED,
        "backfill_first": backfill_first,
        "client_rate_per_s": float(CLIENT_RATE),
        "calls_equal_needed_every_day": all(d["calls_equal_needed"] for d in per_day),
        "history_calls_total": sum(d["history_calls"] for d in per_day),
        "needed_history_calls_total": sum(d["needed_history_calls"] for d in per_day),
        "newsfeeds_read": coverage.fetched, "check": verdict.as_dict(), "problems_sample": verdict.problems[:10],
        "seconds_total": round(time.monotonic() - started, 1),
        "seconds_per_load_median": sorted(d["seconds"] for d in per_day)[len(per_day) // 2],
        "per_day": per_day,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--boxes", type=int, default=2000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--big-boxes", type=int, default=20000, help="a larger account for --big-days (0: skip)")
    parser.add_argument("--big-days", type=int, default=3)
    parser.add_argument("--day-rate", action="append", default=[], metavar="NAME=F",
                        help="the sandbox's day rates (serve --day-rate), default its own")
    parser.add_argument("--backfill-first", action="store_true", help="day 0's load with --backfill-history")
    parser.add_argument("--json", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "history.json")
    args = parser.parse_args()
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    results: dict[str, Any] = {
        "command": "python benchmarks/history.py " + " ".join(sys.argv[1:]),
        "when": streak_clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"), "machine": platform.platform(),
        "cpus": os.cpu_count(), "load_average_at_start": os.getloadavg(), "runs": [],
    }
    with tempfile.TemporaryDirectory(prefix="streak-history-") as tmp:
        sizes = [(args.boxes, args.days)] + ([(args.big_boxes, args.big_days)] if args.big_boxes else [])
        for boxes, days in sizes:
            results["runs"].append(simulate(boxes, days, args.day_rate, Path(tmp), args.backfill_first))
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(results, indent=2) + "\n")  # written after each size
    results["load_average_at_end"] = os.getloadavg()
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    ok = all(run["calls_equal_needed_every_day"] and not run["check"]["problems"] for run in results["runs"])
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
