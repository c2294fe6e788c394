"""The time axis of a bar chart per period (day, week from Monday, month, UTC): which periods it
covers, and where its ticks go.

Left to itself, Vega stretches the axis over whatever the data holds: one week of events becomes
one bar across the whole chart with the same date repeated on every tick, and one event dated year
9999 (which the events contract accepts) spreads the axis over eight thousand years, so every bar is
thinner than a pixel and the chart looks blank. So the axis covers the periods that matter:

* from the first period with data to the last one that is not after the current period (now),
  at most :data:`MAX_PERIODS` periods back from that last one;
* at least :data:`MIN_PERIODS` periods wide (empty periods before the first one), so a lone bar
  is a bar, not a wall;
* ticks only on period starts, at most :data:`MAX_TICKS` of them.

Rows outside are left off the chart and counted (:attr:`TimeWindow.before`, ``after``), so the
page can say how many and why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

import altair as alt
import pandas as pd

Grain = Literal["day", "week", "month"]
MIN_PERIODS: Final = 8
MAX_PERIODS: Final[dict[str, int]] = {"day": 366, "week": 260, "month": 240}
"""A year of days, five years of weeks, twenty years of months: a bar stays a few pixels wide."""
MAX_TICKS: Final = 10
DATE_FORMATS: Final[dict[str, str]] = {"day": "%b %-d, %Y", "week": "%b %-d, %Y", "month": "%b %Y"}
TOOLTIP_TITLES: Final[dict[str, str]] = {"day": "Day", "week": "Week of", "month": "Month"}


def period_start(moment: datetime | pd.Timestamp, grain: Grain) -> pd.Timestamp:
    """The start (UTC) of the period holding ``moment``, as ``DATE_TRUNC(grain, ...)`` gives it."""
    ts = pd.Timestamp(moment)
    ts = ts.tz_convert("UTC") if ts.tzinfo else ts.tz_localize("UTC")
    day = ts.normalize()
    if grain == "week":
        return day - pd.Timedelta(days=day.weekday())
    if grain == "month":
        return day.replace(day=1)
    return day


def shift(start: pd.Timestamp, grain: Grain, periods: int) -> pd.Timestamp:
    """``start`` moved by whole periods (months are calendar months)."""
    if grain == "month":
        return start + pd.DateOffset(months=periods)
    return start + pd.Timedelta(days=periods * (7 if grain == "week" else 1))


@dataclass(frozen=True)
class TimeWindow:
    """The periods a chart draws (``first`` to ``last``, period starts) and what falls outside."""

    grain: Grain
    first: pd.Timestamp
    last: pd.Timestamp
    before: int = 0
    """Rows' weight (events, entries) in periods before ``first``: more than MAX_PERIODS back."""
    after: int = 0
    """... in periods after ``last``, which is the latest period up to now: dated in the future."""
    latest_after: pd.Timestamp | None = None

    def holds(self, periods: pd.Series) -> pd.Series:
        return (periods >= self.first) & (periods <= self.last)

    def domain(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """The axis: at least :data:`MIN_PERIODS` periods, padded before the first, to the last's end."""
        return shift(self.first, self.grain, -max(0, MIN_PERIODS - self._count())), shift(self.last, self.grain, 1)

    def ticks(self) -> list[pd.Timestamp]:
        """Period starts on the axis, every n-th one (counted back from the newest) so that at most
        :data:`MAX_TICKS` show."""
        start, end = self.domain()
        starts = []
        moment = start
        while moment < end:
            starts.append(moment)
            moment = shift(moment, self.grain, 1)
        step = max(1, math.ceil(len(starts) / MAX_TICKS))
        return starts[len(starts) - 1::-step][::-1]

    def _count(self) -> int:
        if self.grain == "month":
            return (self.last.year - self.first.year) * 12 + self.last.month - self.first.month + 1
        return int((self.last - self.first) / pd.Timedelta(days=7 if self.grain == "week" else 1)) + 1

    def outside_note(self, noun: tuple[str, str]) -> str | None:
        """One sentence on the rows left off the chart (None when every row is on it); ``noun`` is
        (singular, plural): ("event", "events")."""
        def many(n: int) -> str:
            return f"{n:,} {noun[0] if n == 1 else noun[1]}"

        parts = []
        if self.after:
            latest = f" (the latest {_period_name(self.latest_after, self.grain)})" if self.latest_after is not None else ""
            parts.append(f"{many(self.after)} dated in the future{latest}")
        if self.before:
            parts.append(f"{many(self.before)} from before {self.first:%Y-%m-%d} (a chart shows at most "
                         f"{MAX_PERIODS[self.grain]:,} {self.grain}s)")
        return ("Not on this chart: " + "; ".join(parts) + ".") if parts else None


def _period_name(start: pd.Timestamp, grain: Grain) -> str:
    """A period by its start, read as a period, not as a day something happened on."""
    return {"day": f"on {start:%Y-%m-%d}", "week": f"in the week of {start:%Y-%m-%d}", "month": f"in {start:%B %Y}"}[grain]


def time_window(periods: pd.Series, weights: pd.Series, grain: Grain, now: datetime) -> TimeWindow | None:
    """The window of periods a chart of ``periods`` (each weighing ``weights``) draws; None when no
    period is in the present or past."""
    current = period_start(now, grain)
    past = periods <= current
    if not past.any():
        return None
    last = periods[past].max()
    first = max(periods[past].min(), shift(last, grain, 1 - MAX_PERIODS[grain]))
    after = periods > last
    return TimeWindow(
        grain=grain, first=first, last=last,
        before=int(weights[periods < first].sum()), after=int(weights[after].sum()),
        latest_after=periods[after].max() if after.any() else None,
    )


def _when(moment: pd.Timestamp) -> alt.DateTime:
    """A period start as Vega-Lite's date object (plain numbers on a time axis lose the date format)."""
    return alt.DateTime(year=moment.year, month=moment.month, date=moment.day, utc=True)


def period_x(window: TimeWindow, column: str = "period") -> tuple[alt.X, alt.X2, alt.Tooltip]:
    """x from each period's start to its end (``<column>_end``, see ``format.with_period_end``) on
    the window's axis, and the period's tooltip."""
    fmt = DATE_FORMATS[window.grain]
    start, end = window.domain()
    x = alt.X(f"{column}:T", title=None, scale=alt.Scale(domain=[_when(start), _when(end)]),
              axis=alt.Axis(format=fmt, values=[_when(t) for t in window.ticks()], labelOverlap=True))
    return x, alt.X2(f"{column}_end:T"), alt.Tooltip(f"{column}:T", title=TOOLTIP_TITLES[window.grain], format=fmt)
