"""A later load of the demo account, for the dashboard tests that read the history (``history_db``).

``python -m tests.dashboard.later_load DAY0`` (the destination from the environment, as for the main
job) serves the demo account of day 0 ``DAY0`` :data:`DAYS` simulated days on, busier than the
sandbox's default rates (:data:`RATES`) so that two days bring boxes created, deleted and moved,
field values edited, tasks added and completed; and with :func:`by_hand`'s edits, as a user would
make them in Streak: boxes given to other people (the sandbox's days never reassign a box) and tasks
completed (so the list has rows whatever the day's draw). The main job loads it as ``--demo`` does
(the same origin and closed stages), on top of the demo load.
"""

from __future__ import annotations

import sys
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


def main(day0: str) -> None:
    sandbox = Sandbox(anchor_date=day0, day=DAYS, rates=RATES)
    by_hand(sandbox.account)
    with sandbox:
        run_full_load(demo_source_args(sandbox, None), progress=None, account_defaults=DEMO_SETTINGS)


if __name__ == "__main__":
    main(sys.argv[1])
