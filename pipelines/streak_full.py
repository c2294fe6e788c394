"""The main job: a full ``replace`` load of a whole Streak account.

    python pipelines/streak_full.py            # your account (API key from secrets.toml or env)
    python pipelines/streak_full.py --demo     # the built-in sandbox's demo account, no key needed

Exit statuses: ``--help`` (0 ok, 1 failed, 2 bad arguments, 3 configuration, 75 another run is
loading, 130 interrupted). On failure one line on stderr names the cause, and the destination keeps
its previous complete load. The code lives in ``pipelines/cli.py`` and ``pipelines/job.py``.
"""

from __future__ import annotations

from pipelines import stopping
from pipelines.cli import main

if __name__ == "__main__":
    stopping.exit_process(main())
