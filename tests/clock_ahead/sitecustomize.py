"""Moves every Python process's wall clock ahead, for the suite's "any date" pass (.ci/run, step 4).

On ``PYTHONPATH``, Python imports this at start-up in the test run and in every process it starts
(xdist workers, the main job, the sandbox and receiver subprocesses), so all of them agree on a
date ``STREAK_CLOCK_AHEAD_DAYS`` (default 400) ahead of today. Only the wall clock moves
(``time.time``, ``datetime.now``, ``date.today``): monotonic time, sleeps and timeouts stay real.
Why not Debian's ``faketime``: libfaketime 0.9.10 either makes Python's ``time.sleep`` fail with
EINVAL (``FAKETIME_DONT_FAKE_MONOTONIC=1``) or turns every timed lock wait into a 400-day wait.

    STREAK_CLOCK_AHEAD_DAYS=400 PYTHONPATH=$PWD/tests/clock_ahead python -m pytest
"""

import datetime
import os

import time_machine

_DAYS = int(os.environ.get("STREAK_CLOCK_AHEAD_DAYS", "400"))
time_machine.travel(datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=_DAYS), tick=True).start()
