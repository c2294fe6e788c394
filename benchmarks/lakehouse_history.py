"""History mode on the lakehouse: what writing ``<table>_history`` as Delta / Iceberg tables costs a daily run.

    python benchmarks/lakehouse_history.py [--boxes 2000] [--days 3] [--formats delta,iceberg]
                                           [--json benchmarks/results/lakehouse_history.json]

Per format, one load a day into the filesystem destination with that ``table_format`` (a temp
folder), the sandbox advanced day by day at benchmarks/history_mode.py's busy rates. Reported per
day: the run's seconds, the history step's (``versions_s``, streak_warehouse/history_lakehouse.py)
and its share, the versions added and records found gone, and the history tables' bytes on disk.
Correctness is the tests' (tests/test_lakehouse_history.py); this only times it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent


def _history_bytes(dataset: Path) -> int:
    return sum(f.stat().st_size for d in dataset.glob("*_history") for f in d.rglob("*") if f.is_file())


def _run(table_format: str, boxes: int, days: int) -> dict[str, Any]:
    from benchmarks.history_mode import BUSY, SEED
    from pipelines.job import run_full_load
    from streak_source.sandbox import Sandbox

    per_day = []
    with tempfile.TemporaryDirectory(prefix=f"streak-lake-history-{table_format}-") as tmp:
        work = Path(tmp)
        os.environ.update({"DLT_DATA_DIR": str(work / "dlt"), "DLT_LOCAL_DIR": str(work), "DLT_PROJECT_DIR": str(REPO_ROOT),
                           "DESTINATION__WAREHOUSE__DESTINATION_TYPE": "filesystem",
                           "DESTINATION__WAREHOUSE__BUCKET_URL": (work / "lake").as_uri(),
                           "DESTINATION__WAREHOUSE__TABLE_FORMAT": table_format})
        with Sandbox(boxes=boxes, seed=SEED, rates=BUSY) as sb:
            for day in range(days):
                if day:
                    sb.advance(1)
                started = time.monotonic()
                summary = asdict(run_full_load({"api_key": sb.api_key, "base_url": sb.base_url,
                                                "max_requests_per_second": 100_000}, progress=None))
                run_s = time.monotonic() - started
                per_day.append({"day": day, "run_s": round(run_s, 2), "versions_s": round(summary["versions_s"], 2),
                                "versions_share": round(summary["versions_s"] / run_s, 4),
                                "versions_added": sum(summary["versions_added"].values()),
                                "records_deleted": sum(summary["records_deleted"].values()),
                                "history_bytes": _history_bytes(work / "lake" / "crm")})
                print(table_format, per_day[-1], flush=True)
    later = per_day[1:]
    return {"table_format": table_format, "boxes": boxes, "days": days,
            "versions_share_max_after_first": max((d["versions_share"] for d in later), default=None),
            "per_day": per_day}


def main(argv: list[str] | None = None) -> int:
    from benchmarks.report import machine, publish

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--boxes", type=int, default=2000)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--formats", default="delta,iceberg")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    runs = [_run(table_format, args.boxes, args.days) for table_format in args.formats.split(",")]
    publish({"benchmark": "lakehouse_history",
             "command": " ".join(["python benchmarks/lakehouse_history.py", *(argv or sys.argv[1:])]),
             "machine": machine(), "load_avg_1m_before": round(load_before, 2),
             "load_avg_1m_after": round(os.getloadavg()[0], 2), "runs": runs}, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
