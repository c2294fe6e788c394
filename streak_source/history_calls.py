"""Which boxes get a per-box newsfeed call: the ONE rule for issue 13's "calls scale with change".

Stage history is built from the per-box newsfeed (``GET /v1/boxes/{boxKey}/newsfeed``, the box's 50
newest events; streak_api.md 6.13). One call per box would double a full load's cost, so a run asks
only for the boxes whose stage may have changed since the previous complete run:

* ``previous is None`` (no previous run known: the first load, or a destination without ``boxes``):
  **no** per-box newsfeed call. The first run costs exactly what a full load costs; history starts
  from the snapshot (each box's current stage, entered at its ``lastStageChangeTimestamp``).
* ``backfill=True`` (``--backfill-history``): every box. The one-off that fetches each box's last
  50 events, to reach back before the first run; it costs one call per box (see
  :func:`estimated_seconds` for the up-front estimate).
* otherwise: a box absent from ``previous`` (new since then) or whose ``lastStageChangeTimestamp``
  differs from the one recorded then (it moved, at least once; a move and a move back still change
  the timestamp). A box whose timestamp is unknown both times is not fetched: nothing says it moved.

Only the timestamp is compared, not the stage key: Streak sets ``lastStageChangeTimestamp`` on every
stage move, so the timestamp catches everything the stage key would, plus A -> B -> A round trips
that leave the stage key as it was. ``previous`` therefore maps box key -> timestamp and nothing else.

Timestamps may come as epoch milliseconds (Streak's JSON, ``epoch_ms(...)`` in SQL) or as datetimes
(the ``boxes`` row the source builds, ``crm.boxes.last_stage_change_timestamp`` read back from
DuckDB or Postgres); :func:`stage_change_ms` turns both into the same integer, so one previous run's
values compare equal to the same box read again.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from streak_source.epoch import datetime_to_epoch_ms
from streak_source.keys import as_key, entity_key

__all__ = ["HistoryPlan", "PreviousStageChanges", "estimated_seconds", "needs_newsfeed", "stage_change_ms"]

PreviousStageChanges = Mapping[str, int | float | datetime | None]
"""box key -> that box's ``lastStageChangeTimestamp`` at the previous complete run (ms, datetime or None)."""

STAGE_CHANGE_FIELD: Final = "lastStageChangeTimestamp"


def stage_change_ms(value: Any) -> int | None:
    """A stage-change time as integer epoch milliseconds; None when there is none or it is not a time.

    A datetime is converted by :func:`streak_source.epoch.datetime_to_epoch_ms` (no zone: UTC), so
    ms -> datetime -> ms gives the same integer.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, datetime):
        return datetime_to_epoch_ms(value)
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return round(value)
    return None


def box_stage_change(box: Mapping[str, Any]) -> int | None:
    """The box's ``lastStageChangeTimestamp`` (raw API box or the ``boxes`` row) in epoch ms."""
    return stage_change_ms(box.get(STAGE_CHANGE_FIELD, box.get("last_stage_change_timestamp")))


def _box_key(box: Mapping[str, Any]) -> str | None:
    return as_key(box.get("box_key")) or entity_key(box, "boxKey")


def needs_newsfeed(box: Mapping[str, Any], previous: PreviousStageChanges | None, backfill: bool = False) -> bool:
    """True when this run must fetch the box's newsfeed (the rule is in the module docstring)."""
    if backfill:
        return True
    if previous is None:
        return False
    key = _box_key(box)
    if key is None:
        return False  # a keyless box is quarantined, never called
    if key not in previous:
        return True
    return box_stage_change(box) != stage_change_ms(previous[key])


@dataclass(frozen=True)
class HistoryPlan:
    """The rule bound to one run's inputs. ``previous`` is copied once into plain ms values, so a
    20,000-box map is compared cheaply and a caller changing its mapping mid-run changes nothing."""

    previous: Mapping[str, int | None] | None = None
    backfill: bool = False

    @classmethod
    def of(cls, previous: PreviousStageChanges | None, backfill: bool = False) -> HistoryPlan:
        if previous is not None and not isinstance(previous, Mapping):
            raise TypeError(f"previous_stage_changes must be a mapping box_key -> epoch ms, got {type(previous).__name__}")
        frozen = None if previous is None else {
            key: stage_change_ms(v) for k, v in previous.items() if (key := as_key(k)) is not None
        }
        return cls(frozen, bool(backfill))

    def needs(self, box: Mapping[str, Any]) -> bool:
        return needs_newsfeed(box, self.previous, self.backfill)

    def __repr__(self) -> str:  # never print 20k keys into a log or a trace
        size = "None" if self.previous is None else f"{len(self.previous)} boxes"
        return f"HistoryPlan(previous={size}, backfill={self.backfill})"


def estimated_seconds(history_calls: int, max_requests_per_second: float) -> float:
    """Time ``history_calls`` extra calls add at the configured rate (for ``--backfill-history``'s
    up-front estimate: the calls of a backfill = the number of boxes)."""
    if max_requests_per_second <= 0:
        raise ValueError(f"max_requests_per_second must be > 0, got {max_requests_per_second!r}")
    return max(0, history_calls) / max_requests_per_second
