"""Streak's unit of time, epoch milliseconds, to and from datetimes: the ONE conversion both ways.

Streak encodes every time as integer milliseconds since the Unix epoch; the destinations hold
datetimes. Rows are built with :func:`epoch_ms_to_datetime`; a loaded datetime is compared with a
fresh one from the API (history calls, refresh fingerprints) through :func:`datetime_to_epoch_ms`,
so ms -> datetime -> ms gives back the same integer.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

__all__ = ["epoch_ms_to_datetime", "datetime_to_epoch_ms"]

_MIN_MS: Final = 0
_MAX_MS: Final = 7_258_118_400_000
"""Timestamps outside this window are not real Streak times (year 1970..2200): kept raw instead."""

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_ms_to_datetime(value: Any) -> datetime | None:
    """Epoch milliseconds -> aware UTC datetime; None for anything that is not a plausible time.

    Booleans are ints in Python and are rejected explicitly; numeric strings are accepted because
    some clients and old payloads send them.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if not isinstance(value, (int, float)) or value != value:  # NaN
        return None
    if not (_MIN_MS <= value <= _MAX_MS):
        return None
    return datetime.fromtimestamp(value / 1000.0, tz=UTC)


def datetime_to_epoch_ms(moment: datetime) -> int:
    """A datetime as integer epoch milliseconds, exact to the ms; without a zone it is read as UTC
    (what the destinations store). Computed in integer microseconds and rounded half up, never
    through a float."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    delta = aware - _EPOCH
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return (micros + 500) // 1000
