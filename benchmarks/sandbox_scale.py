"""How fast the sandbox builds and serves big accounts: the timings the tests used to assert.

    python benchmarks/sandbox_scale.py [--boxes 20000] [--month-boxes 2000] [--days 30] [--json PATH]

Measures, on this machine: generating a ``--boxes`` account (day 0); serving one page of 1,000 boxes
of its largest pipeline; 50 child lookups of one box (they are indexed by box key); generating and
simulating ``--month-boxes`` boxes for ``--days`` days; generating the 300-box demo account. The
tests check what these do (page sizes, ground truth, the changes a month makes); how long they take
depends on the machine and its load, so it is measured here and never asserted in a test. Targets
(what the sandbox was built for): 20k boxes < 20 s, a page < 3 s, 50 lookups < 2 s, a month < 60 s,
the demo < 1 s. Prints one JSON object; ``--json`` also writes it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import requests

import streak_clock
from benchmarks.report import machine, publish
from streak_source.sandbox import Sandbox, generate_account

ANCHOR = "2025-03-14"
TARGETS_S = {"generate": 20.0, "page_of_1000": 3.0, "child_lookups_50": 2.0, "month": 60.0, "demo_generate": 1.0}


def timed(step: Any) -> tuple[Any, float]:
    began = time.perf_counter()
    value = step()
    return value, round(time.perf_counter() - began, 3)


def measure(boxes: int, month_boxes: int, days: int) -> dict[str, float]:
    sandbox, generate_s = timed(lambda: Sandbox(boxes=boxes, seed=2, anchor_date=ANCHOR))
    with sandbox, requests.Session() as session:
        session.auth = (sandbox.api_key, "")
        pipeline = max(sandbox.account.pipelines, key=lambda p: len(p.boxes))
        page, page_s = timed(lambda: session.get(sandbox.url(f"v1/pipelines/{pipeline.key}/boxes"),
                                                 params={"page": 1, "limit": 1000}, timeout=60))
        page.raise_for_status()
        box_key = page.json()["results"][0]["key"]
        _, lookups_s = timed(lambda: [session.get(sandbox.url(f"v2/boxes/{box_key}/tasks"), params={"limit": 1000},
                                                  timeout=30).raise_for_status() for _ in range(50)])
    _, month_s = timed(lambda: Sandbox(boxes=month_boxes, anchor_date=ANCHOR, day=days))  # built, not served
    _, demo_s = timed(lambda: generate_account(seed=3, boxes=300, anchor_date=ANCHOR))
    return {"generate": generate_s, "page_of_1000": page_s, "child_lookups_50": lookups_s, "month": month_s,
            "demo_generate": demo_s}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--boxes", type=int, default=20_000)
    parser.add_argument("--month-boxes", type=int, default=2_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    started = streak_clock.now()
    seconds = measure(args.boxes, args.month_boxes, args.days)
    result = {
        "benchmark": "sandbox_scale",
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "started_utc": started.isoformat(timespec="seconds"),
        "boxes": args.boxes, "month_boxes": args.month_boxes, "days": args.days,
        "machine": machine(),
        "seconds": seconds,
        "targets_s": TARGETS_S,
        "within_target": {name: seconds[name] <= target for name, target in TARGETS_S.items()},
    }
    publish(result, args.json, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
