"""The forecast of won value: each open box's value, its stage's win probability, and the account's
own times from that stage to a win (docs/metrics.md, "crm.forecast_monthly"). Pure: rows in, rows out.

Method. For every stay in an open stage, the time from entering the stage to the box's next entry
into a won or lost stage is an *event* (a close, won or lost); a stay whose box has not closed since
is *censored* at the reference time (or when the box was found deleted): it has taken at least that
long, not forever. Over these, the Kaplan-Meier estimate gives ``S(t)``, the share not yet closed
``t`` days after entering the stage, and the Aalen-Johansen estimate gives ``W(t)``, the share
*won* by then (at each close time ``u``: ``W`` grows by ``S(u-) * wins(u) / at risk(u)``; losses are
the competing event). A stage with fewer than ``min_events`` closes uses its pipeline's stays pooled.

A box open ``a`` days in its stage is won, eventually, with its stage's probability ``p``; given that
it is won, the win falls between ``t1`` and ``t2`` days from now with chance
``(W(a + t2) - W(a + t1)) / (W(inf) - W(a))``: the account's own timing of wins from that stage, for a
box that has already waited ``a`` days. So it is won in the period with chance
``p * (W(a + t2) - W(a + t1)) / (W(inf) - W(a))``; the expected won boxes and value are the sums over
the open boxes. Where no win came later than ``a`` days (``W(inf) = W(a)``), the box counts as not
being won in the horizon.

Why wins, not closes: closing soon and winning are not independent (from an early stage the quick
closes are losses, wins take several steps), so "chance to close in the period x chance to win"
over-counts wins early in the pipeline; the backtest measured that (docs/metrics.md).

Assumptions: a box's chance to be won does not depend on how long it has waited; boxes close
independently; the past's times to a win hold for the next months. The range is the 10th to 90th
percentile of :data:`SIMULATIONS` draws of which boxes win (each with its own chance, independently,
seeded so a run is repeatable): it covers the luck of the draw, not the error of the probabilities
or of ``W``; the backtest (benchmarks/forecast_backtest.py) measures that.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, Literal

SIMULATIONS: Final = 1000
SEED: Final = 20240601
LOW_QUANTILE: Final = 0.10
HIGH_QUANTILE: Final = 0.90
DAY_S: Final = 86_400.0

StageKey = tuple[str, str]


@dataclass(frozen=True)
class Curve:
    """Kaplan-Meier ``survival`` (not yet closed) and Aalen-Johansen ``won`` (won by then): each value
    holds from ``times[i]`` (days) on; before the first time, survival 1 and won 0."""

    times: tuple[float, ...] = ()
    survival: tuple[float, ...] = ()
    events: int = 0
    subjects: int = 0
    won: tuple[float, ...] = ()
    wins: int = 0

    def at(self, days: float) -> float:
        index = bisect.bisect_right(self.times, days)
        return 1.0 if index == 0 else self.survival[index - 1]

    def won_at(self, days: float) -> float:
        index = bisect.bisect_right(self.times, days)
        return 0.0 if index == 0 or not self.won else self.won[index - 1]

    @property
    def won_ever(self) -> float:
        return self.won[-1] if self.won else 0.0


Observation = tuple[float, bool] | tuple[float, bool, bool]
"""``(days, closed)`` or ``(days, closed, won)``: ``closed`` False is censored at ``days``."""


def kaplan_meier(observations: Iterable[Observation]) -> Curve:
    """The curves of the observations. At a tie, closes count before censorings (the usual
    convention)."""
    ordered = sorted(observations, key=lambda item: (item[0], not item[1]))
    at_risk = len(ordered)
    survival, won_share, times, values, won_values, events, wins = 1.0, 0.0, [], [], [], 0, 0
    index = 0
    while index < len(ordered):
        moment = ordered[index][0]
        closed = censored = won = 0
        while index < len(ordered) and ordered[index][0] == moment:
            item = ordered[index]
            closed += item[1]
            censored += not item[1]
            won += bool(item[1] and len(item) > 2 and item[2])
            index += 1
        if closed:
            won_share += survival * won / at_risk
            survival *= 1.0 - closed / at_risk
            times.append(moment)
            values.append(survival)
            won_values.append(won_share)
            events += closed
            wins += won
        at_risk -= closed + censored
    return Curve(tuple(times), tuple(values), events, len(ordered), tuple(won_values), wins)


@dataclass(frozen=True)
class Stay:
    """One stay in a stage: when it began, when the box next closed (won or lost) after it, or until
    when it is known not to have (the reference time, or the box's deletion)."""

    pipeline_key: str
    stage_key: str
    entered_at: datetime
    closed_at: datetime | None
    observed_until: datetime
    won: bool = False
    """The close was into a won stage."""


def stays_until_close(
    stays: Iterable[tuple[str, str, str, datetime]], closing: set[StageKey], as_of: datetime,
    deleted_at: Mapping[str, datetime] | None = None, winning: set[StageKey] | frozenset[StageKey] = frozenset(),
) -> list[Stay]:
    """``(box_key, pipeline_key, stage_key, entered_at)`` rows as :class:`Stay` of the open stages
    (not in ``closing``, the won and lost stages), each with its box's first entry into a closing
    stage after it, won when that stage is in ``winning``. A stay observed for no time (entered at
    or after ``as_of``: clocks disagree) is censored at 0 days."""
    by_box: dict[str, list[tuple[datetime, str, str]]] = {}
    for box_key, pipeline_key, stage_key, entered_at in stays:
        by_box.setdefault(box_key, []).append((entered_at, pipeline_key, stage_key))
    result = []
    for box_key, entries in by_box.items():
        entries.sort()
        closes = [(at, (pipeline_key, stage_key) in winning) for at, pipeline_key, stage_key in entries
                  if (pipeline_key, stage_key) in closing]
        until = min(as_of, (deleted_at or {}).get(box_key, as_of))
        for at, pipeline_key, stage_key in entries:
            if (pipeline_key, stage_key) in closing:
                continue
            later = [close for close in closes if close[0] > at]
            result.append(Stay(pipeline_key, stage_key, at, later[0][0] if later else None, max(until, at),
                               bool(later and later[0][1])))
    return result


CurveSource = Literal["stage", "pipeline"]


def stage_curves(stays: Sequence[Stay], min_events: int) -> dict[StageKey, tuple[Curve, CurveSource]]:
    """Each open stage's time-to-close curve; a stage with fewer than ``min_events`` closes takes its
    pipeline's stays pooled. Keys: every (pipeline, stage) of ``stays``."""
    def observation(stay: Stay) -> tuple[float, bool, bool]:
        end = stay.closed_at if stay.closed_at is not None else stay.observed_until
        return max(0.0, (end - stay.entered_at).total_seconds() / DAY_S), stay.closed_at is not None, stay.won

    by_stage: dict[StageKey, list[Observation]] = {}
    by_pipeline: dict[str, list[Observation]] = {}
    for stay in stays:
        item = observation(stay)
        by_stage.setdefault((stay.pipeline_key, stay.stage_key), []).append(item)
        by_pipeline.setdefault(stay.pipeline_key, []).append(item)
    pooled = {key: kaplan_meier(items) for key, items in by_pipeline.items()}
    curves: dict[StageKey, tuple[Curve, CurveSource]] = {}
    for key, items in by_stage.items():
        own = kaplan_meier(items)
        curves[key] = (own, "stage") if own.events >= min_events else (pooled[key[0]], "pipeline")
    return curves


def close_chance(curve: Curve, age_days: float, start_days: float, end_days: float) -> float:
    """Chance that a box open ``age_days`` in its stage closes (won or lost) between ``start_days``
    and ``end_days`` from now."""
    still_open = curve.at(age_days)
    if still_open <= 0.0:
        return 0.0
    return max(0.0, (curve.at(age_days + start_days) - curve.at(age_days + end_days)) / still_open)


def win_timing(curve: Curve, age_days: float, start_days: float, end_days: float) -> float:
    """Chance that a box open ``age_days`` in its stage, if it is won, is won between ``start_days``
    and ``end_days`` from now: ``(W(a + t2) - W(a + t1)) / (W(inf) - W(a))``; 0 when no win ever
    came later than ``age_days``."""
    still_to_win = curve.won_ever - curve.won_at(age_days)
    if still_to_win <= 1e-12:
        return 0.0
    return max(0.0, (curve.won_at(age_days + end_days) - curve.won_at(age_days + start_days)) / still_to_win)


@dataclass(frozen=True)
class OpenBox:
    box_key: str
    pipeline_key: str
    stage_key: str
    stage_entered_at: datetime
    value: float | None
    probability: float | None


@dataclass(frozen=True)
class Period:
    month: date
    start: datetime
    end: datetime


def month_periods(as_of: datetime, months: int = 3) -> list[Period]:
    """This month from ``as_of`` on, then the next ``months - 1`` whole months (UTC)."""
    at = as_of.astimezone(UTC)
    periods, start, first = [], at, date(at.year, at.month, 1)
    for _ in range(months):
        following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
        end = datetime(following.year, following.month, 1, tzinfo=UTC)
        periods.append(Period(first, start, end))
        first, start = following, end
    return periods


@dataclass(frozen=True)
class ForecastRow:
    pipeline_key: str
    period: Period
    open_boxes: int
    boxes_without_probability: int
    expected_won_boxes: float
    won_boxes_low: float
    won_boxes_high: float
    expected_won_value: float
    won_value_low: float
    won_value_high: float


def forecast(
    boxes: Sequence[OpenBox], curves: Mapping[StageKey, tuple[Curve, CurveSource]], as_of: datetime,
    periods: Sequence[Period], pipelines: Iterable[str] = (), simulations: int = SIMULATIONS, seed: int = SEED,
) -> list[ForecastRow]:
    """Expected won boxes and value per pipeline and period, with the simulated range. Every
    pipeline of ``pipelines`` gets its rows, boxes or not."""
    import numpy as np

    rng = np.random.default_rng(seed)
    keys = sorted({*pipelines, *(box.pipeline_key for box in boxes)})
    rows = []
    for pipeline_key in keys:
        own = [box for box in boxes if box.pipeline_key == pipeline_key]
        usable = [box for box in own if box.probability is not None]
        values = np.array([box.value or 0.0 for box in usable], dtype=float)
        for period in periods:
            start = max(0.0, (period.start - as_of).total_seconds() / DAY_S)
            end = max(start, (period.end - as_of).total_seconds() / DAY_S)
            chances = np.array([
                float(box.probability or 0.0) * win_timing(
                    curves.get((box.pipeline_key, box.stage_key), (Curve(), "stage"))[0],
                    max(0.0, (as_of - box.stage_entered_at).total_seconds() / DAY_S), start, end)
                for box in usable], dtype=float)
            won_counts, won_values = _simulate(rng, chances, values, simulations)
            rows.append(ForecastRow(
                pipeline_key, period, len(own), len(own) - len(usable),
                float(chances.sum()), *_range(won_counts), float(chances @ values) if len(usable) else 0.0,
                *_range(won_values)))
    return rows


def _simulate(rng: Any, chances: Any, values: Any, simulations: int) -> tuple[Any, Any]:
    """``simulations`` draws of which boxes win: (won boxes, won value) per draw, in chunks of boxes."""
    import numpy as np

    counts = np.zeros(simulations)
    totals = np.zeros(simulations)
    for first in range(0, len(chances), 2000):
        part = slice(first, first + 2000)
        wins = rng.random((simulations, len(chances[part]))) < chances[part]
        counts += wins.sum(axis=1)
        totals += wins @ values[part]
    return counts, totals


def _range(draws: Any) -> tuple[float, float]:
    import numpy as np

    return float(np.quantile(draws, LOW_QUANTILE)), float(np.quantile(draws, HIGH_QUANTILE))


def horizon(as_of: datetime, days: int) -> Period:
    """One period of ``days`` from ``as_of`` (for a backtest of "the next 30 days")."""
    return Period(as_of.date(), as_of, as_of + timedelta(days=days))
