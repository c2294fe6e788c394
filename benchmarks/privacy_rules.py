"""What a change of the ``[privacy]`` rules and a ``forget`` cost on a copy with history (issue 25;
not a timed test).

    python benchmarks/privacy_rules.py [--boxes 2000] [--days 2] [--events 2000] [--postgres URL]
                                       [--json benchmarks/results/privacy_rules.json]

Against the sandbox with its canary planted, into a DuckDB file (``--postgres URL``: into that
database's ``crm`` schema instead; use an empty database): ``days + 1`` loads under preset
``none`` a simulated day apart (history versions, a refresh basis, ``--events`` custom events in the
spool merged into ``crm.events``), then one load under ``strict`` (the rule change: the kept tables,
the events and the spool rewritten, the file written anew), then one more ``strict`` load (no
change: the same run without the rewrite), then ``forget --email`` of one contact. Reported: each
run's seconds, the rewrite step's own seconds and rows per table (from the run's progress line),
the file rewrite's seconds (measured apart on a copy of the final file), forget's seconds, the
file's size, and the planted markers left in clear anywhere (must be 0).
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
CANARY = "zqxbench"
SALT = "benchmark-salt-0123456789abcdef"


def _run(source: dict[str, Any]) -> tuple[float, str, dict[str, int]]:
    """One load: its seconds, its progress lines, the history versions it added per table."""
    from pipelines.job import run_full_load

    out = io.StringIO()
    started = time.monotonic()
    summary = run_full_load(dict(source), progress=out, refresh="changed")
    return time.monotonic() - started, out.getvalue(), dict(summary.versions_added)


def measure(boxes: int, days: int, events: int, work: Path, postgres: str | None = None) -> dict[str, Any]:
    from benchmarks.marker_search import found_in, pg_dump

    import streak_clock
    from pipelines.privacy_cli import main as privacy_main
    from streak_eventlog.spool import Spool, SpoolRecord
    from streak_source.sandbox import Sandbox
    from streak_warehouse.targets.duckdb_file import rewrite_duckdb_file

    duckdb_path = work / "streak.duckdb"
    os.environ.update(DLT_DATA_DIR=str(work / "dlt"), DLT_LOCAL_DIR=str(work), DLT_PROJECT_DIR=str(REPO_ROOT),
                      STREAK_DUCKDB_PATH=str(duckdb_path), EVENTS__SPOOL_PATH=str(work / "spool.sqlite"),
                      PRIVACY__PRESET="none")
    if postgres is not None:
        os.environ.update(DESTINATION__WAREHOUSE__DESTINATION_TYPE="postgres", DESTINATION__WAREHOUSE__CREDENTIALS=postgres)
    result: dict[str, Any] = {"boxes": boxes, "days": days, "events": events,
                              "destination": "postgres" if postgres else "duckdb", "runs": []}
    with Sandbox(boxes=boxes, seed=25, canary=CANARY) as sb:
        source = {"api_key": sb.api_key, "base_url": sb.base_url, "max_requests_per_second": 1000}
        contacts = [c for team in sb.account.contacts.values() for c in team]
        now = streak_clock.now_ms()
        with Spool(work / "spool.sqlite") as spool:
            spool.write([SpoolRecord(event_key=f"api:{c.email_addresses[0]}", event_name="signup", source="api",
                                     received_ms=now, distinct_id=c.email_addresses[0],
                                     properties={"email": c.email_addresses[0], "plan": "pro"})
                         for c in (contacts * (events // max(len(contacts), 1) + 1))[:events]])
        for day in range(days + 1):
            if day:
                sb.advance(1)
            seconds, _, versions = _run(source)
            result["runs"].append({"preset": "none", "seconds": round(seconds, 1), "versions": sum(versions.values())})
        os.environ.update(PRIVACY__PRESET="strict", PRIVACY__SALT=SALT)
        seconds, progress, versions = _run(source)
        line = next((text for text in progress.splitlines() if text.startswith("privacy: the rules changed")), "")
        step = re.search(r"\(([\d.]+) s\)", line)
        result["runs"].append({"preset": "strict (rules changed)", "seconds": round(seconds, 1),
                               "versions": versions})
        result["rewrite_line"] = line
        result["rewrite_step_s"] = float(step.group(1)) if step else None
        seconds, _, versions = _run(source)
        result["runs"].append({"preset": "strict (unchanged)", "seconds": round(seconds, 1), "versions": versions})
        if postgres is None:
            result["file_mb"] = round(duckdb_path.stat().st_size / 2**20, 1)
            copy = work / "measure.duckdb"
            shutil.copyfile(duckdb_path, copy)
            started = time.monotonic()
            rewrite_duckdb_file(copy, work / "measure.rewritten.duckdb")
            result["file_rewrite_s"] = round(time.monotonic() - started, 1)
            copy.unlink()
            (work / "measure.rewritten.duckdb").unlink()
        result["clear_markers_left"] = found_in(work, CANARY)[:10]
        if postgres is not None and CANARY in pg_dump(postgres, work / "dump.sql").read_text():
            result["clear_markers_left"].append("pg_dump")
        (work / "dump.sql").unlink(missing_ok=True)
        os.environ.update(SOURCES__STREAK__API_KEY=sb.api_key, SOURCES__STREAK__BASE_URL=sb.base_url)
        started = time.monotonic()
        out = io.StringIO()
        sys.stdout, real = out, sys.stdout
        try:
            status = privacy_main(["forget", "--email", contacts[0].email_addresses[0]])
        finally:
            sys.stdout = real
        result["forget_s"] = round(time.monotonic() - started, 1)
        result["forget_status"] = status
        result["forget_output"] = out.getvalue().splitlines()
    return result


def main() -> None:
    from benchmarks.report import machine, publish

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--boxes", type=int, default=2000)
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--postgres", default=None, metavar="URL", help="load into this (empty) Postgres database")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="streak-privacy-rules-") as work:
        result = measure(args.boxes, args.days, args.events, Path(work), args.postgres)
    result["command"] = "python benchmarks/privacy_rules.py " + " ".join(sys.argv[1:])
    result["machine"] = machine()
    publish(result, args.json)


if __name__ == "__main__":
    main()
