"""Personal data under the user's control: ``python pipelines/streak_privacy.py forget --email ADDRESS``
(or ``--contact KEY``) erases one person from the copy, its history, the events, the refresh basis,
``rejected_records``, the events spool and dlt's working dir (docs/privacy.md, "Forget a person").

Thin: the command is ``pipelines/privacy_cli.py``; the erasure ``streak_warehouse/forget.py``.
Exit statuses: 0 done, 1 failed, 2 bad arguments, 3 configuration error, 75 a load is running.
"""

from __future__ import annotations

import sys

from pipelines.privacy_cli import main

if __name__ == "__main__":
    sys.exit(main())
