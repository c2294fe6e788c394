"""What deriving events costs a run (issue 14): on a real copy of a large sandbox account.

    python benchmarks/derived_events.py [--boxes 20000] [--days 3] [--copy PATH.duckdb]
                                        [--json benchmarks/results/derived_events.json]

Loads the sandbox account (``--boxes``, ``--days`` simulated days on, so some stays follow others)
into a DuckDB file with the main job (skipped with ``--copy``, an existing copy), then times the
main job's derived-events step (``events_table.add_derived_events``) on a scratch copy of it, the
way a run does it: inside one transaction on the fresh file.

* ``first``: ``crm.events`` empty, so every derived event is new (a first run);
* ``reload``: the same copy again, every event already stored (every later run of an unchanged
  account: only the ids are compared, no row is built);
* ``row_by_row``: for comparison, derived rows through the spool's upsert (``merge_rows``,
  multi-row ``INSERT ... ON CONFLICT DO UPDATE`` of escaped literals), which is what merging them
  like spooled events would cost: timed on the first :data:`ROW_BY_ROW_SAMPLE` rows (see
  ``inserted_per_s``).

Each is split into reading the copy, the pure derivation and the insert. Everything runs in a temp
dir; the machine's load average is recorded (other test suites may share it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import streak_clock
from benchmarks.report import machine, publish

REPO_ROOT = Path(__file__).resolve().parent.parent
DATASET = "crm"
ROW_BY_ROW_SAMPLE = 10_000
"""The upsert path is timed on this many rows only (its rate is what matters; all rows take minutes)."""


def build_copy(boxes: int, days: int, work: Path) -> Path:
    from pipelines.job import run_full_load
    from streak_source.sandbox import Sandbox

    target = work / f"copy-{boxes}.duckdb"
    os.environ.update({"DLT_DATA_DIR": str(work / "dlt"), "DLT_PROJECT_DIR": str(REPO_ROOT),
                       "STREAK_DUCKDB_PATH": str(target)})
    with Sandbox(boxes=boxes, seed=7, day=days) as sb:
        run_full_load({"api_key": sb.api_key, "base_url": sb.base_url, "max_requests_per_second": 1_000_000},
                      progress=None)
    return target


def timed_step(copy: Path, scratch: Path, how: str, keep_events: bool) -> dict[str, Any]:
    """One derived-events step on ``scratch`` (a copy of ``copy``), timed by phase."""
    import dlt
    import duckdb

    from streak_warehouse import events_table
    from streak_warehouse.derived_events import derive_events

    if not keep_events:
        shutil.copyfile(copy, scratch)
        with duckdb.connect(str(scratch)) as con:
            con.execute(f"DROP TABLE IF EXISTS {DATASET}.events")
    started = time.perf_counter()
    client = dlt.dataset(dlt.destinations.duckdb(credentials=str(scratch)), DATASET).sql_client
    with client, client.begin_transaction():
        execute = client.execute_sql
        events_table.ensure_sql(execute, DATASET)
        tables = events_table.read_copy(execute, DATASET)
        moves = events_table.read_stage_change_events(execute, DATASET)
        known = events_table.stored_event_keys(execute, DATASET) if how != "row_by_row" else set()
        read_s = time.perf_counter() - started
        step = time.perf_counter()
        rows = derive_events(tables, moves, streak_clock.now(), known)
        derive_s = time.perf_counter() - step
        step = time.perf_counter()
        if how == "row_by_row":
            rows = rows[:ROW_BY_ROW_SAMPLE]
            events_table.merge_rows(execute, DATASET, rows)
            added = int(execute(f"SELECT COUNT(*) FROM {DATASET}.events")[0][0])
        else:
            added = events_table.add_new_events(client, DATASET, rows)
        insert_s = time.perf_counter() - step
    total_s = time.perf_counter() - started  # with the commit
    run = {"how": how, "copy_rows_read": sum(len(v) for v in tables.values()), "stored_before": len(known),
           "derived_new": len(rows), "added": added, "read_s": round(read_s, 2), "derive_s": round(derive_s, 2),
           "insert_s": round(insert_s, 2), "total_s": round(total_s, 2),
           "inserted_per_s": round(added / insert_s) if added else None}
    print(json.dumps(run), file=sys.stderr, flush=True)
    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--boxes", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--copy", type=Path, help="an existing copy (DuckDB file) instead of loading one")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    started = streak_clock.now()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="derived-events-") as tmp:
        work = Path(tmp)
        copy = args.copy or build_copy(args.boxes, args.days, work)
        scratch = work / "scratch.duckdb"
        runs = [timed_step(copy, scratch, "first", keep_events=False),
                timed_step(copy, scratch, "reload", keep_events=True),
                timed_step(copy, scratch, "row_by_row", keep_events=False)]
    result = {
        "benchmark": "derived_events",
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "started_utc": started.isoformat(timespec="seconds"),
        "boxes": None if args.copy else args.boxes, "days": None if args.copy else args.days,
        "machine": machine(),
        "load_avg_1m_before": round(load_before, 2), "load_avg_1m_after": round(os.getloadavg()[0], 2),
        "runs": runs,
    }
    publish(result, args.json, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
