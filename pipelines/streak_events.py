"""Events receiver and webhook management: ``python pipelines/streak_events.py serve|webhooks ...``.

Thin: everything is in the ``streak_eventlog`` package (its ``cli.py``; guide: docs/events.md).
"""

from __future__ import annotations

import sys

from streak_eventlog.cli import main

if __name__ == "__main__":
    sys.exit(main())
