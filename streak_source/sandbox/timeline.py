"""Sandbox time: the account as it stands after N simulated days, and the truth about how it got there.

Day 0 is the generated account, untouched (byte-identical to a sandbox without time). Each later
day is simulated by ``evolve.py`` on the previous day's account, in place, with an RNG seeded by
(seed, day): so day N is a function of (seed, boxes, anchor, rates, N), however it was reached
(``Sandbox(day=5)``, ``serve --day 5`` or ``advance`` 2 then 3). Day ``d``'s events are timestamped
inside ``[anchor + (d - 1) days, anchor + d days)``, after everything day 0 holds; once day ``d`` is
reached the account's clock (``Account.anchor_ms``, which every "overdue"/"freshness" figure reads)
is ``anchor + d days``.

What the timeline keeps beside the account:

* ``history()``: every box's true stage path, ``{box_key: [{"stage_key", "entered_at"}, ...]}``,
  deleted boxes included: each box's own ``Box.stage_path`` (the same list, which the simulation
  appends to). Day 0's paths are the generated past (generate_paths.py), which day 0's newsfeed
  tells entry for entry; on every day a box's ``lastStageChangeTimestamp`` is the time of its
  path's last entry, so it always has a move (or the creation) behind it.
* ``changes(since_day)``: every change made after day ``since_day``, oldest first, as
  :class:`Change` (type names: Streak's webhook events where one fits, see ``evolve.py``).
* ``deleted_boxes``: deleted boxes as they were when deleted (for webhook payloads).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, fields
from typing import Any, Final

from .evolve import DAY_MS, Change, Evolver, Rates
from .model import Account, Box, keyless

__all__ = ["MAX_DAYS", "MAX_PACE", "Change", "Rates", "Timeline", "coerce_rates"]

MAX_DAYS: Final = 3650
"""The furthest a sandbox can be moved in one call (a guard against typos, not a model limit)."""
MAX_PACE: Final = 100.0
"""The fastest ``Rates.pace`` (a guard against typos: at 100 a deal closes in about a day)."""

HISTORY_TYPES: Final = frozenset({"BOX_CREATE", "BOX_CHANGE_STAGE"})
"""Changes after which a daily run reads a box's newsfeed: the box is new, or its
``lastStageChangeTimestamp`` moved."""


def coerce_rates(value: Rates | Mapping[str, float] | None) -> Rates:
    """``None`` -> the defaults; a mapping such as ``{"changed": 0.05}`` -> those, others default.
    Shares and chances are between 0 and 1; ``pace`` above 0, at most :data:`MAX_PACE`."""
    if value is None:
        return Rates()
    if isinstance(value, Rates):
        return value
    known = {f.name for f in fields(Rates)}
    unknown = sorted(set(value) - known)
    if unknown:
        raise ValueError(
            f"unknown day rate(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    rates = Rates(**{name: float(rate) for name, rate in value.items()})
    for name, rate in asdict(rates).items():
        if name == "pace":
            if not 0.0 < rate <= MAX_PACE:
                raise ValueError(f"day rate pace={rate} is not above 0 and at most {MAX_PACE:g}")
        elif not 0.0 <= rate <= 1.0:
            raise ValueError(f"day rate {name}={rate} is not between 0 and 1")
    return rates


class Timeline:
    """The account's simulated days: ``advance(days)``, ``history()``, ``changes(since_day)``."""

    def __init__(self, account: Account, rates: Rates | Mapping[str, float] | None = None) -> None:
        if account.day != 0:
            raise ValueError("a timeline starts from a day-0 account")
        self.account = account
        self.rates = coerce_rates(rates)
        self.start_ms = account.anchor_ms
        self._paths: dict[str, list[tuple[str, int]]] = {
            box.key: box.stage_path for box in account.all_boxes() if not keyless(box.patch)
        }
        """Every box's ``stage_path`` (the lists themselves), deleted boxes' included."""
        self._changes: list[Change] = []
        self._after_day: list[int] = [0]
        """``_after_day[d]``: index into ``_changes`` of the first change made after day d."""
        self.deleted_boxes: dict[str, Box] = {}
        self._evolver: Evolver | None = None
        self.after_advance: list[Callable[[], None]] = []
        """Called after every ``advance`` that simulated a day, before anything is served or
        delivered (the canary marks what the days added)."""

    @property
    def day(self) -> int:
        return self.account.day

    def advance(self, days: int = 1) -> list[Change]:
        """Simulate ``days`` more days; returns their changes, oldest first."""
        if not 0 <= days <= MAX_DAYS or self.day + days > MAX_DAYS:
            raise ValueError(f"days must be between 0 and {MAX_DAYS} (in total)")
        if days and self.account.name != "default":
            raise ValueError("time is simulated for the default account only")
        if days and self._evolver is None:
            self._evolver = Evolver(self.account, self.rates, self._paths, self.deleted_boxes)
        made: list[Change] = []
        for _ in range(days):
            assert self._evolver is not None
            day = self.day + 1
            made += self._evolver.run_day(day, self.start_ms + (day - 1) * DAY_MS)
            self.account.day = day
            self.account.anchor_ms = self.start_ms + day * DAY_MS
            self._after_day.append(len(self._changes) + len(made))
        self._changes += made
        if days:
            for hook in self.after_advance:
                hook()
        return made

    # ------------------------------------------------------------------ ground truth

    def history(self) -> dict[str, list[dict[str, Any]]]:
        """Every box's true stage path (deleted boxes included), by box key."""
        return {
            key: [{"stage_key": stage, "entered_at": at} for stage, at in path]
            for key, path in sorted(self._paths.items())
        }

    def path(self, box_key: str) -> list[tuple[str, int]]:
        return list(self._paths[box_key])

    def _since(self, since_day: int) -> list[Change]:
        if not 0 <= since_day <= self.day:
            raise ValueError(f"since_day must be between 0 and the current day ({self.day})")
        return self._changes[self._after_day[since_day] :]

    def changes(self, since_day: int = 0) -> list[dict[str, Any]]:
        """Every change made after day ``since_day`` (0: all of them), oldest first, as JSON."""
        return [change.as_json() for change in self._since(since_day)]

    def history_calls(self, since_day: int | None = None) -> int:
        """Per-box newsfeed calls a run needs to catch up from a run on day ``since_day``
        (default: yesterday): one per existing box that is new or whose
        ``lastStageChangeTimestamp`` moved since. 0 on day 0 (there is no yesterday)."""
        if since_day is None:
            since_day = max(0, self.day - 1)
        boxes = self.account.boxes_by_key
        moved = {c.box_key for c in self._since(since_day) if c.type in HISTORY_TYPES}
        return sum(1 for key in moved if key in boxes)

    def backfill_calls(self) -> int:
        """Per-box newsfeed calls of a one-off backfill: one per existing, keyed box."""
        return sum(1 for box in self.account.all_boxes() if not keyless(box.patch))
