"""Two loads of the demo account, for the dashboard tests that read the history (``history_db``).

``python -m tests.dashboard.two_loads TODAY`` (the destination from the environment, as for the main
job) loads the demo account as it was :data:`DAYS` days before ``TODAY``, then the same account
:data:`DAYS` simulated days on, which is as it is today (so nothing in the copy is dated after the
loads, and the pages that count days from now read sensible numbers). The days are busier than the
sandbox's default rates (:data:`RATES`), so they bring boxes created, deleted and moved, field values
edited, tasks added and completed; and :func:`by_hand` makes the edits a user would make in Streak
that the sandbox's days do not: boxes given to other people, and tasks completed (so that list has
rows whatever the days' draw). The main job loads both as ``--demo`` does (the same origin and
closed stages).
"""

from __future__ import annotations

import sys
from datetime import date, timedelta
from typing import Any, Final

from pipelines.cli import demo_source_args
from pipelines.job import run_full_load
from streak_source.sandbox import DEMO_SETTINGS, Sandbox

DAYS: Final = 2
RATES: Final = {"changed": 0.1, "created": 0.02, "deleted": 0.01}


def by_hand(account: Any) -> None:
    """Three boxes change hands (the first assigned ones by key): one gets another owner, one a second
    assignee, one nobody; and the two open tasks of the next boxes by key are completed."""
    people = sorted(u.key for u in account.users.values() if u.user_type == "HUMAN")
    boxes = sorted(account.all_boxes(), key=lambda box: box.key)
    assigned = [box for box in boxes if box.assignee_keys][:3]
    assigned[0].assignee_keys = [next(k for k in people if k not in assigned[0].assignee_keys),
                                 *assigned[0].assignee_keys[1:]]
    assigned[1].assignee_keys = [*assigned[1].assignee_keys, next(k for k in people if k not in assigned[1].assignee_keys)]
    assigned[2].assignee_keys = []
    open_tasks = [task for box in boxes if box not in assigned for task in box.tasks if not task.done][:2]
    for task in open_tasks:
        task.done = True
        task.status_change_ms = max(account.anchor_ms - 3_600_000, task.creation_ms + 1)
        task.reminder_status = "NOT_REMINDED_BECAUSE_TASK_DONE"


def main(today: str) -> None:
    start = date.fromisoformat(today) - timedelta(days=DAYS)
    with Sandbox(anchor_date=start, rates=RATES) as before:
        run_full_load(demo_source_args(before, None), progress=None, account_defaults=DEMO_SETTINGS)
    later = Sandbox(anchor_date=start, day=DAYS, rates=RATES)
    by_hand(later.account)
    with later:
        run_full_load(demo_source_args(later, None), progress=None, account_defaults=DEMO_SETTINGS)


if __name__ == "__main__":
    main(sys.argv[1])
