"""Events receiver and webhook management: ``python pipelines/streak_events.py serve|webhooks ...``.

Thin: the commands are ``pipelines/events_cli.py``, the receiver the ``streak_eventlog`` package
(guide: docs/events.md).
"""

from __future__ import annotations

import sys

from pipelines.events_cli import main

if __name__ == "__main__":
    sys.exit(main())
