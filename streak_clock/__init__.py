"""The one place every part of the project takes "now" from: the job, the warehouse steps, the events
receiver, the dashboard and the sandbox's day 0.

Why a package of its own: the sandbox may import nothing from the source and the source nothing
from the warehouse, yet all of them must agree on the clock. Everything calls ``streak_clock.now()``
(never ``datetime.now``), so one patch moves every part at once: tests pin it with
``monkeypatch.setattr(streak_clock, "now", ...)`` or move the whole process with ``faketime``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

__all__ = ["now", "now_ms", "today"]


def now() -> datetime:
    """The current instant, timezone-aware UTC."""
    return datetime.now(UTC)


def now_ms() -> int:
    """The current instant in epoch milliseconds (Streak's unit)."""
    return int(now().timestamp() * 1000)


def today() -> date:
    """Today's date in UTC."""
    return now().date()
