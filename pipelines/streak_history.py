"""The copy's past (history mode, docs/history.md): the copy as of an earlier time, and the runs to pick from.

    python pipelines/streak_history.py as-of 2026-11-30 --out last_month.duckdb
    python pipelines/streak_history.py as-of 2026-11-30T18:00:00Z --out then.duckdb
    python pipelines/streak_history.py as-of RUN_ID --out then.duckdb   # exactly the copy that run produced
    python pipelines/streak_history.py runs                             # the loads, newest last

It reads the destination the main job writes (``streak.duckdb`` in the project root unless configured
otherwise; Postgres or any SQL warehouse by the same configuration) and writes a DuckDB file with
dataset ``crm``: every copied table and wide view as they were, plus ``crm.as_of`` saying which run's
copy it is. Exit 0 on success; on failure one line on stderr and exit 1 (2: bad arguments).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pipelines.failures import EXIT_FAILED, EXIT_OK, EXIT_USAGE, one_line
from streak_warehouse.as_of import AsOfError, live_reader, read_runs, write_copy_as_of
from streak_warehouse.destination import DATASET_NAME, duckdb_file_target, use_project_settings, warehouse_destination


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="streak_history.py", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    as_of = commands.add_parser("as-of", help="write the copy as it stood at TIME to a DuckDB file")
    as_of.add_argument("time", metavar="TIME",
                       help="ISO 8601 (2026-11-30, 2026-11-30T18:00:00Z; no offset: UTC) or a run id of load_history")
    as_of.add_argument("--out", required=True, type=Path, metavar="FILE.duckdb",
                       help="the DuckDB file to write (replaced if it exists)")
    commands.add_parser("runs", help="list the loads (run id, end, outcome): the times a copy changed")
    args = parser.parse_args(argv)
    use_project_settings()
    live = duckdb_file_target()
    try:
        if args.command == "runs":
            with live_reader(live, warehouse_destination(), DATASET_NAME) as read:
                for run in read_runs(read, DATASET_NAME):
                    print(f"{run.run_id}  {run.finished_at.isoformat()}  {run.outcome}")
            return EXIT_OK
        out = args.out.resolve()
        if live is not None and out == live.resolve():
            print(f"error: --out {args.out} is the live copy itself; name another file", file=sys.stderr)
            return EXIT_USAGE
        if out.suffix != ".duckdb":
            print(f"error: --out {args.out}: the file name must end in .duckdb", file=sys.stderr)
            return EXIT_USAGE
        with live_reader(live, warehouse_destination(), DATASET_NAME) as read:
            result = write_copy_as_of(read, DATASET_NAME, args.time, out)
    except AsOfError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:  # noqa: BLE001 - one line, whatever the database said
        print(f"error: {one_line(f'reading the history failed: {exc}')}", file=sys.stderr)
        return EXIT_FAILED
    total = sum(result.rows.values())
    print(f"{result.out}: {result.described} (run {result.run.run_id}, ended {result.run.finished_at.isoformat()}): "
          f"{len(result.rows)} tables, {total:,} rows; wide views: {', '.join(result.views) or 'none'}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
