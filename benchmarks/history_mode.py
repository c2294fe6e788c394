"""History mode over simulated days, checked against what each load produced (issue 23; not a timed test).

    python benchmarks/history_mode.py [--boxes 2000] [--days 30] [--big-boxes 20000] [--big-days 7]
                                      [--json benchmarks/results/history_mode.json]

One load a day against the sandbox advanced day by day (busier than its defaults: moves, edits, new
and deleted boxes every day), the first half of the days full loads, the second half ``--refresh
changed`` (its first run falls back to a full load: no refresh basis yet; each day's mode is reported). After each load
the copy is read back and kept as a digest per table; at the end, for every day, ``streak_history.py
as-of <that day's run id>`` must give exactly that day's copy, table by table, row by row. Each
load's new versions must equal the records its copy changed, its deletions the records that went,
and ``crm.deletions`` the boxes the sandbox deleted. Reported per day: the run's seconds, the history
step's (``versions_s``) and its share, the versions added, the DuckDB file's size. The suite runs the
same :func:`simulate` short (tests/test_history_mode.py).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent

BUSY = {"changed": 0.25, "created": 0.01, "deleted": 0.005}
"""Busier than the sandbox's defaults, so every day holds moves, edits, new and deleted boxes."""
SEED = 23


@dataclass
class Simulation:
    """What :func:`simulate` found."""

    days: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    deleted_boxes: int = 0
    as_of_checked: int = 0


Connect = Callable[[], Any]
"""Opens a read connection to the live copy (``tests/destinations_support.Reader``-like: ``rows(sql)``)."""


def simulate(sandbox: Any, days: int, connect: Connect, work: Path, duckdb_path: Path | None = None,
             progress: Callable[[str], None] = lambda _: None) -> Simulation:
    """``days + 1`` loads (day 0 to ``days``) with the sandbox advanced between them; every check of
    the module docstring. The destination is whatever the environment configures."""
    import dlt

    from pipelines.job import run_full_load
    from pipelines.streak_history import main as history_main
    from streak_warehouse.destination import PIPELINE_NAME
    from streak_warehouse.history_mode import tracked_tables
    from streak_warehouse.history_mode_check import (
        DayCheck, TableSnapshot, changed_records, gone_records, multiset_digest, snapshot,
    )
    from streak_warehouse.sql import qualified, quote_identifier

    result = Simulation()
    args = {"api_key": sandbox.api_key, "base_url": sandbox.base_url, "max_requests_per_second": 1000}
    previous: dict[str, TableSnapshot] = {}
    digests: list[tuple[str, dict[str, tuple[int, str]]]] = []
    seen_boxes: set[str] = set()
    for day in range(days + 1):
        if day:
            sandbox.advance(1)
        mode = "full" if day < (days + 1) // 2 else "changed"  # the first changed run falls back: no basis yet
        started = time.monotonic()
        summary = run_full_load(dict(args), progress=None, refresh=mode)
        wall = time.monotonic() - started
        tracked = tracked_tables(dlt.attach(PIPELINE_NAME).default_schema)
        current: dict[str, TableSnapshot] = {}
        with connect() as db:
            for table in tracked:
                columns = table.copy_columns()
                rows = db.rows(f"SELECT {', '.join(quote_identifier(c) for c in columns)} "
                               f"FROM {qualified('crm', table.name)}")
                current[table.name] = snapshot(rows, len(table.key))
            seen_boxes |= {str(key[0]) for key in current["boxes"].by_key}
        expected = {name: changed_records(previous.get(name), snap) for name, snap in current.items()}
        gone = {t.name: gone_records(previous.get(t.name), current[t.name]) for t in tracked if not t.append_only}
        check = DayCheck(day, summary.run_id, summary.mode, summary.versions_added,
                         {k: v for k, v in expected.items() if v}, summary.records_deleted,
                         {k: v for k, v in gone.items() if v})
        result.problems += check.problems()
        digests.append((summary.run_id, {name: snap.digest() for name, snap in current.items()}))
        previous = current
        size = duckdb_path.stat().st_size if duckdb_path is not None and duckdb_path.exists() else None
        result.days.append({
            "day": day, "mode": summary.mode, "run_id": summary.run_id, "mode_reason": summary.mode_reason, "wall_s": round(wall, 2),
            "total_s": round(summary.total_s, 2), "versions_s": round(summary.versions_s, 3),
            "versions_share": round(summary.versions_s / summary.total_s, 4) if summary.total_s else None,
            "versions_added": sum(summary.versions_added.values()), "records_changed": sum(expected.values()),
            "records_deleted": sum(summary.records_deleted.values()), "file_bytes": size,
        })
        progress(f"day {day} ({summary.mode}): {result.days[-1]}")
    for day, (run_id, want) in enumerate(digests):
        out = work / f"as_of_day{day}.duckdb"
        if history_main(["as-of", run_id, "--out", str(out)]) != 0:
            result.problems.append(f"day {day}: as-of {run_id} failed")
            continue
        import duckdb

        with duckdb.connect(str(out), read_only=True) as con:
            for table in tracked:
                if table.name not in want:
                    continue
                columns = ", ".join(quote_identifier(c) for c in table.copy_columns())
                got = multiset_digest(con.execute(f"SELECT {columns} FROM {qualified('crm', table.name)}").fetchall())
                if got != want[table.name]:
                    result.problems.append(f"day {day}: as-of {table.name}: {got[0]} rows, the load's copy had "
                                           f"{want[table.name][0]} (or the same count, other values)")
        out.unlink()
        result.as_of_checked += 1
    truly_deleted = {c["box_key"] for c in sandbox.changes(0) if c["type"] == "BOX_DELETE"} & seen_boxes
    with connect() as db:
        recorded = {str(r[0]) for r in db.rows("SELECT record_key FROM crm.deletions WHERE table_name = 'boxes'")}
    if recorded != truly_deleted:
        result.problems.append(f"crm.deletions has boxes {sorted(recorded - truly_deleted)[:5]} the sandbox did not "
                               f"delete and lacks {sorted(truly_deleted - recorded)[:5]}")
    result.deleted_boxes = len(truly_deleted)
    return result


class ReadOnlyFile:
    """The live DuckDB file opened read-only, as :data:`Connect` wants it (``rows(sql)``, a context manager)."""

    def __init__(self, path: Path) -> None:
        import duckdb

        self._con = duckdb.connect(str(path), read_only=True)

    def __enter__(self) -> ReadOnlyFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._con.close()

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self._con.execute(sql).fetchall()]


def _run(boxes: int, days: int) -> dict[str, Any]:
    import os

    from streak_source.sandbox import Sandbox

    with tempfile.TemporaryDirectory(prefix="streak-history-mode-") as tmp:
        work = Path(tmp)
        os.environ.update({"DLT_DATA_DIR": str(work / "dlt"), "DLT_LOCAL_DIR": str(work),
                           "DLT_PROJECT_DIR": str(REPO_ROOT), "STREAK_DUCKDB_PATH": str(work / "streak.duckdb")})
        database = work / "streak.duckdb"
        with Sandbox(boxes=boxes, seed=SEED, rates=BUSY) as sb:
            found = simulate(sb, days, lambda: ReadOnlyFile(database), work, database,
                             progress=lambda line: print(line, flush=True))
        carry_s = _history_carry_seconds(database, work / "carry_probe.duckdb")
    per_day = found.days
    later = per_day[1:]
    growth = [b["file_bytes"] - a["file_bytes"] for a, b in zip(per_day, later, strict=False)
              if a["file_bytes"] and b["file_bytes"]]
    return {
        "boxes": boxes, "days": days, "problems": found.problems, "as_of_days_checked": found.as_of_checked,
        "deleted_boxes": found.deleted_boxes,
        "versions_share_max": max((d["versions_share"] or 0) for d in later) if later else None,
        "versions_share_mean": round(sum((d["versions_share"] or 0) for d in later) / len(later), 4) if later else None,
        "versions_per_day_mean": round(sum(d["versions_added"] for d in later) / len(later), 1) if later else None,
        "file_growth_bytes_per_day_mean": round(sum(growth) / len(growth)) if growth else None,
        "history_carry_s_last_day": carry_s,
        "history_share_with_carry_last_day": round((later[-1]["versions_s"] + carry_s) / later[-1]["total_s"], 4)
        if later and later[-1]["total_s"] else None,
        "per_day": per_day,
    }


def _history_carry_seconds(live: Path, probe: Path) -> float:
    """What the DuckDB file swap spends carrying the history tables into each new copy: the job's own
    carry (``persistent.carry_over_duckdb``) of exactly those tables into an empty file, timed."""
    import dlt

    from streak_warehouse.destination import PIPELINE_NAME
    from streak_warehouse.history_mode import history_kept_tables, tracked_tables
    from streak_warehouse.persistent import carry_over_duckdb

    tables = history_kept_tables(tracked_tables(dlt.attach(PIPELINE_NAME).default_schema))
    started = time.monotonic()
    carry_over_duckdb(live, probe, "crm", {}, None, tables)
    seconds = time.monotonic() - started
    probe.unlink(missing_ok=True)
    return round(seconds, 3)


def main(argv: list[str] | None = None) -> int:
    from benchmarks.report import machine, publish

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--boxes", type=int, default=2000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--big-boxes", type=int, default=20000, help="0 to skip the larger account")
    parser.add_argument("--big-days", type=int, default=7)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    import os

    load_before = os.getloadavg()[0]
    runs = [_run(args.boxes, args.days)]
    if args.big_boxes:
        runs.append(_run(args.big_boxes, args.big_days))
    result = {"benchmark": "history_mode", "command": " ".join(["python benchmarks/history_mode.py", *(argv or sys.argv[1:])]),
              "machine": machine(), "load_avg_1m_before": round(load_before, 2),
              "load_avg_1m_after": round(os.getloadavg()[0], 2), "runs": runs}
    publish(result, args.json)
    return 1 if any(run["problems"] for run in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
