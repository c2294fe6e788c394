"""The sandbox's sales process: how a deal (or a candidate) travels through its pipeline, and the
exact figures of that process, so outcomes, cycle times and forecasts read from the sandbox can be
checked against the truth that made them (issue 24).

A box in an open stage of its pipeline's *line* (Sales: Lead, Contacted, Qualified, Negotiation;
Hiring: Applied, Phone screen, Interview, Offer) leaves it at a random, memoryless time: a
continuous-time Markov chain with, per open stage, a rate per day for each way out (:class:`StageRates`):
*advance* to the next stage of the line, slip *back* to the previous one, be *won* (Won, Hired),
be *lost* (Lost, Rejected), or be put *on hold* (Sales' "On hold", from where it returns to the
stage it left after ``hold_days`` on average). Won and lost are final: a closed box never moves
again. A box is created in the first stage of the line.

Continuous, not stepped by day, so that ONE process draws both day 0's past (generate_paths.py: a
box's life from its creation to the anchor) and every simulated day (evolve.py: the chain continued
from where each box stands; memorylessness makes the two the same process); moves fall at any time
of day and a box may, rarely, move twice in one. A rate of 0.02 a day is about a 2 % chance a day:
exactly, the chance that a box's first move out of a stage happens within a day and is that move
is ``rate / total * (1 - exp(-total))`` (``daily_chances`` in :func:`describe`).

Exact figures of the chain (:class:`ChainFigures`): from each stage, the chance to end won (absorbing
probabilities), the mean days until the box closes either way, and the chance to be won within 30,
60 and 90 days (the transition matrix of one day, by uniformization, to the power of the days).

A box's value (:class:`ValueModel`: "Deal size" in Sales, "Salary expectation" in Hiring) is drawn
once, log-normal, rounded and clipped, independent of its stage and outcome.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final

from .generator import DAY_MS, MINUTE_MS

if TYPE_CHECKING:
    from .model import Pipeline

WON: Final = "won"
LOST: Final = "lost"
WITHIN_DAYS: Final = (30, 60, 90)
"""Horizons of the ``won_within_days`` figures (a forecast's next one, two and three months)."""

State = int | str
"""A chain state: an int is transient (line stage ``i``, or on hold from it: ``len(line) + i``);
:data:`WON` and :data:`LOST` absorb."""


@dataclass(frozen=True, slots=True)
class StageRates:
    """Moves per day out of one open stage, by where they go (expected moves while in the stage)."""

    advance: float = 0.0
    back: float = 0.0
    won: float = 0.0
    lost: float = 0.0
    hold: float = 0.0

    @property
    def total(self) -> float:
        return self.advance + self.back + self.won + self.lost + self.hold

    def as_json(self) -> dict[str, float]:
        return {"advance": self.advance, "back": self.back, "won": self.won, "lost": self.lost,
                "hold": self.hold}

    def times(self, pace: float) -> StageRates:
        return StageRates(self.advance * pace, self.back * pace, self.won * pace,
                          self.lost * pace, self.hold * pace)


@dataclass(frozen=True, slots=True)
class ValueModel:
    """A pipeline's value field and how its values are drawn: log-normal around ``median`` (spread
    ``sigma``), rounded to ``step``, clipped to ``[low, high]``."""

    field_name: str
    median: float
    sigma: float
    low: int
    high: int
    step: int

    def draw(self, rng: random.Random) -> int:
        amount = rng.lognormvariate(math.log(self.median), self.sigma)
        return min(self.high, max(self.low, round(amount / self.step) * self.step))

    def as_json(self) -> dict[str, Any]:
        return {"name": self.field_name, "distribution": "lognormal", "median": self.median,
                "sigma": self.sigma, "min": self.low, "max": self.high, "step": self.step}


@dataclass(frozen=True, slots=True)
class PipelineModel:
    """One pipeline's process, by stage names."""

    pipeline_name: str
    line: tuple[str, ...]
    """Open stages a box works through, first to last."""
    rates: tuple[StageRates, ...]
    """One per stage of ``line``."""
    won: str
    lost: str
    value: ValueModel
    hold: str | None = None
    hold_days: float = 0.0
    """Mean days on hold before the box returns to the stage it left."""

    def __post_init__(self) -> None:
        last = len(self.line) - 1
        if len(self.rates) != len(self.line) or not self.line:
            raise ValueError(f"{self.pipeline_name}: one StageRates per stage of the line")
        if self.rates[0].back or self.rates[last].advance:
            raise ValueError(
                f"{self.pipeline_name}: no slip back from the first stage, no advance from the last"
            )
        if any(r.hold for r in self.rates) and (self.hold is None or self.hold_days <= 0):
            raise ValueError(
                f"{self.pipeline_name}: a hold rate needs a hold stage and hold_days > 0"
            )
        if any(r.total <= 0 for r in self.rates):
            raise ValueError(f"{self.pipeline_name}: every open stage needs a way out")

    def at_pace(self, pace: float) -> PipelineModel:
        """The same process ``pace`` times as fast: the same chances, times divided by ``pace``."""
        if pace == 1:
            return self
        return replace(self, rates=tuple(r.times(pace) for r in self.rates),
                       hold_days=self.hold_days / pace)


SALES_PROCESS: Final = (
    PipelineModel(
        pipeline_name="Sales",
        line=("Lead", "Contacted", "Qualified", "Negotiation"),
        rates=(
            StageRates(advance=0.012, lost=0.013, hold=0.001),
            StageRates(advance=0.019, back=0.002, lost=0.011, hold=0.001),
            StageRates(advance=0.016, back=0.003, won=0.001, lost=0.007, hold=0.002),
            StageRates(back=0.003, won=0.022, lost=0.007, hold=0.002),
        ),
        won="Won",
        lost="Lost",
        value=ValueModel("Deal size", median=18_000, sigma=0.9, low=1_000, high=250_000, step=500),
        hold="On hold",
        hold_days=14.0,
    ),
    PipelineModel(
        pipeline_name="Hiring",
        line=("Applied", "Phone screen", "Interview", "Offer"),
        rates=(
            StageRates(advance=0.018, lost=0.027),
            StageRates(advance=0.040, back=0.002, lost=0.030),
            StageRates(advance=0.025, back=0.003, lost=0.030),
            StageRates(back=0.004, won=0.090, lost=0.030),
        ),
        won="Hired",
        lost="Rejected",
        value=ValueModel(
            "Salary expectation", median=80_000, sigma=0.3, low=40_000, high=180_000, step=1_000
        ),
    ),
)
"""The demo account's pipelines with boxes. Cycle times of weeks to a few months; the chance to be
won rises stage by stage (exact figures: :class:`ChainFigures`, tabled in docs/sandbox.md)."""

MODELS_BY_NAME: Final = {model.pipeline_name: model for model in SALES_PROCESS}


# ---------------------------------------------------------------------------- the chain's figures


@lru_cache(maxsize=None)
def exits(model: PipelineModel) -> tuple[tuple[tuple[State, float], ...], ...]:
    """Per transient state, its ways out ``(state, rate per day)`` (zero rates left out)."""
    n = len(model.line)
    found: list[tuple[tuple[State, float], ...]] = []
    for i, rates in enumerate(model.rates):
        ways: list[tuple[State, float]] = [
            (i + 1, rates.advance), (i - 1, rates.back), (WON, rates.won), (LOST, rates.lost),
            (n + i, rates.hold),
        ]
        found.append(tuple((state, rate) for state, rate in ways if rate > 0))
    if model.hold is not None:
        found += [((i, 1.0 / model.hold_days),) for i in range(n)]
    return tuple(found)


def _solve(matrix: list[list[float]], rhs: list[float]) -> list[float]:
    """``matrix @ x = rhs`` by Gaussian elimination with partial pivoting (a dozen states)."""
    size = len(rhs)
    rows = [row[:] + [value] for row, value in zip(matrix, rhs, strict=True)]
    for col in range(size):
        pivot = max(range(col, size), key=lambda r: abs(rows[r][col]))
        rows[col], rows[pivot] = rows[pivot], rows[col]
        for r in range(col + 1, size):
            factor = rows[r][col] / rows[col][col]
            if factor:
                rows[r] = [a - factor * b for a, b in zip(rows[r], rows[col], strict=True)]
    x = [0.0] * size
    for r in range(size - 1, -1, -1):
        x[r] = (rows[r][size] - sum(rows[r][c] * x[c] for c in range(r + 1, size))) / rows[r][r]
    return x


def _first_step(
    model: PipelineModel, reward: dict[State, float], per_state: Sequence[float]
) -> list[float]:
    """Solves ``total_i x_i - sum_j rate_ij x_j = per_state_i + sum_a rate_ia reward[a]`` (``a``
    absorbing): with ``reward = {WON: 1}`` and no ``per_state`` the chance to end won; with
    ``per_state`` all 1 the expected days to close; with ``per_state`` the chances to end won, the
    expected days to close counted only when the box is won."""
    ways = exits(model)
    size = len(ways)
    matrix = [[0.0] * size for _ in range(size)]
    rhs = list(per_state) or [0.0] * size
    for i, out in enumerate(ways):
        for state, rate in out:
            matrix[i][i] += rate
            if isinstance(state, int):
                matrix[i][state] -= rate
            else:
                rhs[i] += rate * reward.get(state, 0.0)
    return _solve(matrix, rhs)


def _one_day(model: PipelineModel) -> list[list[float]]:
    """The chain's transition matrix over one day (transient states, then WON, then LOST), by
    uniformization: ``sum_k Poisson(k; u) M^k`` with ``M = I + Q / u``, ``u`` the largest exit rate."""
    ways = exits(model)
    size = len(ways) + 2
    index: dict[State, int] = {WON: size - 2, LOST: size - 1}
    u = max(sum(rate for _, rate in out) for out in ways)
    step = [[float(i == j) for j in range(size)] for i in range(size)]
    for i, out in enumerate(ways):
        for state, rate in out:
            j = state if isinstance(state, int) else index[state]
            step[i][j] += rate / u
            step[i][i] -= rate / u
    result = [[0.0] * size for _ in range(size)]
    power = [[float(i == j) for j in range(size)] for i in range(size)]
    weight, k = math.exp(-u), 0
    while True:
        for i in range(size):
            for j in range(size):
                result[i][j] += weight * power[i][j]
        k += 1
        weight *= u / k
        if weight < 1e-18 and k > u:
            return result
        power = _multiply(power, step)


def _multiply(a: list[list[float]], b: list[list[float]]) -> list[list[float]]:
    columns = list(zip(*b, strict=True))
    return [[sum(x * y for x, y in zip(row, col, strict=True)) for col in columns] for row in a]


def distribution_by_day(model: PipelineModel, days: int, start: int = 0) -> list[list[float]]:
    """For d = 0..days, the chance that a box in line stage ``start`` at day 0 (default: a new
    box) is in each state at day d: the transient states (line, then on hold from each), WON, LOST."""
    day = _one_day(model)
    size = len(day)
    row = [float(j == start) for j in range(size)]
    rows = [row]
    for _ in range(days):
        row = [sum(row[i] * day[i][j] for i in range(size)) for j in range(size)]
        rows.append(row)
    return rows


@dataclass(frozen=True, slots=True)
class ChainFigures:
    """Exact figures per transient state (line stages first, then on hold from each)."""

    win_probability: tuple[float, ...]
    mean_days_to_close: tuple[float, ...]
    """Until won or lost."""
    mean_days_to_win: tuple[float, ...]
    """Until won, over the boxes that end won."""
    won_within: dict[int, tuple[float, ...]]
    """Horizon in days -> chance to be won within it."""


@lru_cache(maxsize=None)
def figures(model: PipelineModel) -> ChainFigures:
    win = _first_step(model, {WON: 1.0}, ())
    days = _first_step(model, {}, [1.0] * len(win))
    days_if_won = _first_step(model, {}, win)
    day = _one_day(model)
    power, within, won_column = day, {}, len(day) - 2
    for horizon in range(1, max(WITHIN_DAYS) + 1):
        if horizon in WITHIN_DAYS:
            within[horizon] = tuple(row[won_column] for row in power[: len(win)])
        power = _multiply(power, day)
    days_to_win = tuple(d / w for d, w in zip(days_if_won, win, strict=True))
    return ChainFigures(tuple(win), tuple(days), days_to_win, within)


# ---------------------------------------------------------------------------- one account's pipelines


@dataclass(frozen=True, slots=True)
class PipelineProcess:
    """A :class:`PipelineModel` resolved to one pipeline's stage and field keys."""

    model: PipelineModel
    pipeline_key: str
    line: tuple[str, ...]
    won: str
    lost: str
    hold: str | None
    value_field: str | None

    @classmethod
    def resolve(cls, pipeline: Pipeline) -> PipelineProcess | None:
        """The process of a pipeline named like one of :data:`SALES_PROCESS` whose stages are all
        there; None for any other (the empty "Partnerships" pipeline has none)."""
        model = MODELS_BY_NAME.get(pipeline.name)
        if model is None:
            return None
        keys = {stage.name: stage.key for stage in pipeline.stages}
        needed = (*model.line, model.won, model.lost, *((model.hold,) if model.hold else ()))
        if any(name not in keys for name in needed):
            return None
        value_field = next((f.key for f in pipeline.fields if f.name == model.value.field_name), None)
        return cls(model, pipeline.key, tuple(keys[name] for name in model.line), keys[model.won],
                   keys[model.lost], keys[model.hold] if model.hold else None, value_field)

    @property
    def first_stage(self) -> str:
        return self.line[0]

    def at_pace(self, pace: float) -> PipelineProcess:
        """This process ``pace`` times as fast (``Rates.pace`` of simulated days)."""
        return replace(self, model=self.model.at_pace(pace))

    def is_closed(self, stage_key: str | None) -> bool:
        return stage_key in (self.won, self.lost)

    def _key(self, state: State) -> str:
        if state == WON:
            return self.won
        if state == LOST:
            return self.lost
        assert isinstance(state, int)
        return self.line[state] if state < len(self.line) else str(self.hold)

    def _state(self, path: Sequence[tuple[str, int]]) -> State | None:
        """Where a box whose path is ``path`` stands in the chain; None outside it."""
        stage = path[-1][0]
        if stage in self.line:
            return self.line.index(stage)
        if stage == self.hold and len(path) >= 2 and path[-2][0] in self.line:
            return len(self.line) + self.line.index(path[-2][0])
        return {self.won: WON, self.lost: LOST}.get(stage)

    def walk(
        self, rng: random.Random, path: Sequence[tuple[str, int]], since: int, until: int,
        finish_holds: bool = False,
    ) -> list[tuple[str, int]]:
        """The moves ``[(stage key, at ms)]`` a box whose path so far is ``path`` makes in
        ``[since, until)`` (each at least a minute after the one before). ``finish_holds``: a hold
        is taken only when the box is back from it before ``until`` (day 0 leaves no box on hold)."""
        state = self._state(path)
        last = path[-1][1]
        at = max(since, last)
        moves: list[tuple[str, int]] = []
        ways = exits(self.model)
        while isinstance(state, int):
            out = ways[state]
            total = sum(rate for _, rate in out)
            at = max(at + int(rng.expovariate(total) * DAY_MS), last + MINUTE_MS)
            if at >= until:
                break
            roll = rng.random() * total
            target = out[-1][0]
            for candidate, rate in out:
                if roll < rate:
                    target = candidate
                    break
                roll -= rate
            if finish_holds and isinstance(target, int) and target >= len(self.line):
                back = at + max(MINUTE_MS, int(rng.expovariate(1.0 / self.model.hold_days) * DAY_MS))
                if back < until:
                    moves += [(str(self.hold), at), (self._key(state), back)]
                    last = at = back
                continue
            moves.append((self._key(target), at))
            last, state = at, target
        return moves


def resolve_all(pipelines: Sequence[Pipeline]) -> dict[str, PipelineProcess]:
    """Pipeline key -> its process, for every pipeline that has one."""
    found = {p.key: PipelineProcess.resolve(p) for p in pipelines}
    return {key: process for key, process in found.items() if process is not None}


def describe(process: PipelineProcess, pipeline: Pipeline, pace: float = 1.0) -> dict[str, Any]:
    """The process's true parameters and exact figures, by stage key, as simulated days run it
    (at ``pace``; ``__sandbox__/sales_process``)."""
    process = process.at_pace(pace)
    model, line = process.model, process.line
    chain = figures(model)
    names = {stage.key: stage.name for stage in pipeline.stages}
    stages: dict[str, dict[str, Any]] = {}
    for key in pipeline.stage_order:
        entry: dict[str, Any] = {"name": names.get(key, key)}
        if key in line:
            i = line.index(key)
            rates = model.rates[i]
            total = rates.total
            entry |= {
                "role": "open", "kind": "line", "position": i,
                "rates_per_day": rates.as_json(),
                "daily_chances": {move: rate / total * (1 - math.exp(-total))
                                  for move, rate in rates.as_json().items()},
                "mean_days_in_stage": 1 / total,
                "win_probability": chain.win_probability[i],
                "mean_days_to_close": chain.mean_days_to_close[i],
                "mean_days_to_win": chain.mean_days_to_win[i],
                "won_within_days": {str(d): chain.won_within[d][i] for d in WITHIN_DAYS},
            }
        elif key == process.hold:
            entry |= {"role": "open", "kind": "hold", "resume_rate_per_day": 1 / model.hold_days,
                      "mean_days_in_stage": model.hold_days}
        elif key in (process.won, process.lost):
            entry |= {"role": WON if key == process.won else LOST, "kind": "closed"}
        else:
            entry |= {"role": "open", "kind": "unused"}
        stages[key] = entry
    return {
        "pipeline_name": pipeline.name,
        "pace": pace,
        "first_stage_key": process.first_stage,
        "open_stage_keys": [k for k in pipeline.stage_order if stages[k]["role"] == "open"],
        "won_stage_keys": [process.won],
        "lost_stage_keys": [process.lost],
        "value_field": {"key": process.value_field, **model.value.as_json()},
        "stages": stages,
    }
