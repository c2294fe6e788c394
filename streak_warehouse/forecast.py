"""The forecast of won value: each open box's value, its stage's win probability, and the account's
own time to close from that stage (docs/metrics.md, "crm.forecast_monthly"). Pure: rows in, rows out.

Method. For every stay in an open stage, the time from entering the stage to the box's next entry
into a won or lost stage is an *event*; a stay whose box has not closed since is *censored* at the
reference time (or when the box was found deleted): it has taken at least that long, not forever.
The Kaplan-Meier estimate over these gives ``S(t)``, the share of boxes still not closed ``t`` days
after entering the stage (a stage with fewer than ``min_events`` closes uses its pipeline's stays
pooled). A box open ``a`` days in its stage closes between ``t1`` and ``t2`` days from now with
chance ``(S(a + t1) - S(a + t2)) / S(a)``, and, once it closes, is won with its stage's probability
``p``. So it is won in the period with chance ``p * (S(a + t1) - S(a + t2)) / S(a)``; the expected
won boxes and value are the sums over the open boxes. Where ``S(a)`` is 0 (open longer than any box
the history saw close), the box counts as not closing in the horizon.

Assumptions: whether a box is won does not depend on when it closes nor on how long it has waited;
boxes close independently; the past's times to close hold for the next months. The range is the
10th to 90th percentile of :data:`SIMULATIONS` draws of which boxes win (each with its own chance,
independently, seeded so a run is repeatable): it covers the luck of the draw, not the error of the
probabilities or of ``S``; the backtest (benchmarks/forecast_backtest.py) measures that.
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
    """A Kaplan-Meier survival curve: ``survival[i]`` holds from ``times[i]`` (days) on; 1 before."""

    times: tuple[float, ...] = ()
    survival: tuple[float, ...] = ()
    events: int = 0
    subjects: int = 0

    def at(self, days: float) -> float:
        index = bisect.bisect_right(self.times, days)
        return 1.0 if index == 0 else self.survival[index - 1]


def kaplan_meier(observations: Iterable[tuple[float, bool]]) -> Curve:
    """The curve of ``(days, closed)`` observations (``closed`` False: censored at ``days``). At a
    tie, closes count before censorings (the usual convention)."""
    ordered = sorted(observations, key=lambda item: (item[0], not item[1]))
    at_risk = len(ordered)
    survival, times, values, events = 1.0, [], [], 0
    index = 0
    while index < len(ordered):
        moment = ordered[index][0]
        closed = censored = 0
        while index < len(ordered) and ordered[index][0] == moment:
            closed += ordered[index][1]
            censored += not ordered[index][1]
            index += 1
        if closed:
            survival *= 1.0 - closed / at_risk
            times.append(moment)
            values.append(survival)
            events += closed
        at_risk -= closed + censored
    return Curve(tuple(times), tuple(values), events, len(ordered))


@dataclass(frozen=True)
class Stay:
    """One stay in a stage: when it began, when the box next closed (won or lost) after it, or until
    when it is known not to have (the reference time, or the box's deletion)."""

    pipeline_key: str
    stage_key: str
    entered_at: datetime
    closed_at: datetime | None
    observed_until: datetime


def stays_until_close(
    stays: Iterable[tuple[str, str, str, datetime]], closing: set[StageKey], as_of: datetime,
    deleted_at: Mapping[str, datetime] | None = None,
) -> list[Stay]:
    """``(box_key, pipeline_key, stage_key, entered_at)`` rows as :class:`Stay` of the open stages
    (not in ``closing``, the won and lost stages), each with its box's first entry into a closing
    stage after it. A stay observed for no time (entered at or after ``as_of``: clocks disagree) is
    censored at 0 days."""
    by_box: dict[str, list[tuple[datetime, str, str]]] = {}
    for box_key, pipeline_key, stage_key, entered_at in stays:
        by_box.setdefault(box_key, []).append((entered_at, pipeline_key, stage_key))
    result = []
    for box_key, entries in by_box.items():
        entries.sort()
        closes = [at for at, pipeline_key, stage_key in entries if (pipeline_key, stage_key) in closing]
        until = min(as_of, (deleted_at or {}).get(box_key, as_of))
        for at, pipeline_key, stage_key in entries:
            if (pipeline_key, stage_key) in closing:
                continue
            later = [close for close in closes if close > at]
            result.append(Stay(pipeline_key, stage_key, at, later[0] if later else None, max(until, at)))
    return result


CurveSource = Literal["stage", "pipeline"]


def stage_curves(stays: Sequence[Stay], min_events: int) -> dict[StageKey, tuple[Curve, CurveSource]]:
    """Each open stage's time-to-close curve; a stage with fewer than ``min_events`` closes takes its
    pipeline's stays pooled. Keys: every (pipeline, stage) of ``stays``."""
    def observation(stay: Stay) -> tuple[float, bool]:
        end = stay.closed_at if stay.closed_at is not None else stay.observed_until
        return max(0.0, (end - stay.entered_at).total_seconds() / DAY_S), stay.closed_at is not None

    by_stage: dict[StageKey, list[tuple[float, bool]]] = {}
    by_pipeline: dict[str, list[tuple[float, bool]]] = {}
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
    """Chance that a box open ``age_days`` in its stage closes between ``start_days`` and
    ``end_days`` from now."""
    still_open = curve.at(age_days)
    if still_open <= 0.0:
        return 0.0
    return max(0.0, (curve.at(age_days + start_days) - curve.at(age_days + end_days)) / still_open)


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
                float(box.probability or 0.0) * close_chance(
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
