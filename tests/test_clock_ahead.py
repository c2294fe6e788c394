"""The suite's "any date" pass really moves the clock (.ci/run step 4, tests/clock_ahead/).

The file system stamps files with the kernel's real clock, which the pass leaves alone: the gap
between a new file's mtime and ``streak_clock.now()`` is the distance the pass asked for (0 days in
the ordinary run), in this process and in a subprocess, as the job's and sandbox's would be.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import streak_clock

DAY_S = 86_400
REPO = Path(__file__).resolve().parent.parent
CODE = ("streak_source", "streak_warehouse", "streak_eventlog", "pipelines", "dashboards", "benchmarks", "examples")
READS_THE_CLOCK = re.compile(r"\b(datetime\.(now|utcnow|today)\(|date\.today\(|time\.time(_ns)?\(|time\.(gmtime|localtime)\(\))")


def test_code_takes_now_from_the_one_seam() -> None:
    """Only streak_clock reads the wall clock; everything else asks it (monotonic timers are fine)."""
    readers = [f"{path.relative_to(REPO)}:{number}: {line.strip()}"
               for folder in CODE for path in sorted((REPO / folder).rglob("*.py"))
               for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
               if READS_THE_CLOCK.search(line)]
    assert readers == []


def days_ahead_of_the_kernel(tmp_path: Path) -> float:
    probe = tmp_path / "probe"
    probe.write_text("now")
    return (streak_clock.now().timestamp() - probe.stat().st_mtime) / DAY_S


def test_the_clock_is_where_the_run_asked_for(tmp_path: Path) -> None:
    asked = int(os.environ.get("STREAK_CLOCK_AHEAD_DAYS", "0")) if "clock_ahead" in os.environ.get("PYTHONPATH", "") else 0
    assert abs(days_ahead_of_the_kernel(tmp_path) - asked) < 0.01
    child = subprocess.run([sys.executable, "-c", "import streak_clock; print(streak_clock.now().timestamp())"],
                           capture_output=True, text=True, check=True)
    probe = tmp_path / "after"
    probe.write_text("now")
    assert abs((float(child.stdout) - probe.stat().st_mtime) / DAY_S - asked) < 0.01
