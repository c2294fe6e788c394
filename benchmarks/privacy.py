"""What ``[privacy] preset = "strict"`` costs a full load (issue 25: at most 5 %), measured, not a test.

    python benchmarks/privacy.py [--boxes 2000] [--repeat 3] [--json benchmarks/results/privacy.json]

Two figures:

* ``loads``: the real main job (``benchmarks/full_load.py``'s ``project_load``: the sandbox as its own
  process, the job as a subprocess, rows checked against the ground truth) on the same account,
  with preset ``none`` and ``strict`` in turn, ``--repeat`` times each, interleaved so a change in the
  machine's load hits both. Zero latency and no rate limit: the load is bound by this machine's CPU,
  not by the API, so this is the worst case for privacy's share (against Streak's 10 requests/s a
  2,000-box load takes minutes and the same seconds of hashing vanish in it). The overhead is the
  difference of the medians, of wall time and of CPU time.
* ``protect_s``: the policy alone, in this process: every object of the account as Streak serves
  it (the sandbox's renderers) protected by ``strict``, timed; the CPU privacy adds, without the
  noise of a whole load.

The machine's load average is recorded with every load (a shared 2-core machine skews wall times).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import streak_clock
from benchmarks.full_load import UNLIMITED_CLIENT_RATE, project_load
from benchmarks.report import machine, publish

SALT = "benchmark-salt-0123456789abcdef"
SEED = 7


def protect_seconds(boxes: int) -> dict[str, Any]:
    """``strict`` applied to every rendered object of a ``boxes``-box account, timed."""
    from streak_source.privacy import field_kinds, policy_from
    from streak_source.sandbox import generate_account
    from streak_source.sandbox.render import (
        render_contact, render_newsfeed_entry, render_organization, render_pipeline, render_team, render_user,
    )
    from streak_source.sandbox.render_boxes import (
        render_box, render_comment, render_file, render_meeting, render_task, render_thread,
    )

    account = generate_account(seed=SEED, boxes=boxes)
    every = account.all_boxes()
    objects: list[tuple[str, dict[str, Any]]] = [
        *(("users", render_user(u)) for u in account.users.values()),
        *(("teams", render_team(t)) for t in account.teams),
        *(("contacts", render_contact(c)) for cs in account.contacts.values() for c in cs),
        *(("organizations", render_organization(o)) for os_ in account.organizations.values() for o in os_),
        *(("pipelines", render_pipeline(p, account)) for p in account.pipelines),
        *(("pipeline_newsfeed", render_newsfeed_entry(e)) for p in account.pipelines for e in p.newsfeed),
        *(("boxes", render_box(b, account)) for b in every),
        *(("box_tasks", render_task(t, b, account)) for b in every for t in b.tasks),
        *(("box_threads", render_thread(t, b)) for b in every for t in b.threads),
        *(("box_comments", render_comment(c, b, account)) for b in every for c in b.comments),
        *(("box_meetings", render_meeting(m, b)) for b in every for m in b.meetings),
        *(("box_files", render_file(f, b)) for b in every for f in b.files),
    ]
    policy = policy_from("strict", SALT)
    kinds = {p.key: field_kinds([{"key": f.key, "name": f.name, "type": f.type} for f in p.fields])
             for p in account.pipelines}
    started = time.process_time()
    for source, obj in objects:
        policy.protect(source, obj, kinds.get(obj.get("pipelineKey", "")) if source == "boxes" else None)
    return {"objects": len(objects), "protect_cpu_s": round(time.process_time() - started, 3)}


def loads(boxes: int, repeat: int, work: Path) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {"none": [], "strict": []}
    for round_ in range(repeat):
        for preset in ("none", "strict") if round_ % 2 == 0 else ("strict", "none"):
            os.environ["PRIVACY__PRESET"] = preset
            os.environ["PRIVACY__SALT"] = SALT
            run = project_load(boxes, 0.0, None, UNLIMITED_CLIENT_RATE, SEED, work / f"{preset}-{round_}")
            runs[preset].append({key: run[key] for key in ("wall_s", "cpu_s", "extract_s", "normalize_s", "load_s",
                                                           "rows_loaded", "peak_rss_mb", "load_avg_1m_before",
                                                           "load_avg_1m_after")})
            print(f"{preset:>6}: wall {run['wall_s']:.1f} s, cpu {run['cpu_s']:.1f} s, "
                  f"load avg {run['load_avg_1m_before']}", file=sys.stderr, flush=True)
    medians = {preset: {key: statistics.median(r[key] for r in found) for key in ("wall_s", "cpu_s", "extract_s")}
               for preset, found in runs.items()}
    overhead = {key: round(100 * (medians["strict"][key] / medians["none"][key] - 1), 1)
                for key in ("wall_s", "cpu_s", "extract_s")}
    return {"runs": runs, "medians": medians, "strict_overhead_percent": overhead}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--boxes", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3, help="loads per preset (interleaved)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    started = streak_clock.now()
    with tempfile.TemporaryDirectory(prefix="streak_privacy_bench_") as work:
        body = {"protect": protect_seconds(args.boxes), **loads(args.boxes, args.repeat, Path(work))}
    publish({"benchmark": "privacy", "command": "python benchmarks/privacy.py " + " ".join(sys.argv[1:]),
             "started_utc": started.isoformat(timespec="seconds"),
             "finished_utc": streak_clock.now().isoformat(timespec="seconds"), "machine": machine(),
             "boxes": args.boxes, **body}, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
