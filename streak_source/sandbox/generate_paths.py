"""Day 0's past: the stages every generated box went through before the anchor (issue 21).

A box's path is a list of ``(stage key, entered at ms)``, oldest first; the first entry is its
creation. It is the one record the rest is built from, so nothing can disagree with it: the box's
``stageKey`` and ``lastStageChangeTimestamp`` are its last entry (its creation when it never
moved), the newsfeed's ``NEW_BOX`` and ``EDIT_STAGE`` entries are its entries
(generate_newsfeed.py), and sandbox time's ``history()`` starts from it (timeline.py).

How a box travels through a pipeline (:class:`Funnel`): it is created in the first stage of
``stageOrder`` and works down the pipeline's *line* (Lead, Contacted, Qualified, Negotiation; or
Applied, Phone screen, Interview, Offer). From each stage it may advance (from the last one into
the *won* stage: Won, Hired), drop out into the *lost* stage (Lost, Rejected; likelier the
further it got), go back a stage, take a detour through a *side* stage ("On hold") and come back
to the stage it left, or stall where it is (an open box nobody touches any more). A closed box is
sometimes reopened: it goes back to the stage it was closed from and carries on. Times in a stage
are drawn (exponential; later stages take longer), every move lies in ``[creation, end]`` and
moves are at least a minute apart; a side detour is taken only when the box is back from it by
``end``, so no day-0 box sits in a side stage ("On hold" holds no box, see account.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from .generator import DAY_MS, MINUTE_MS, GeneratorBase
from .model import Pipeline

StagePath = list[tuple[str, int]]
"""``[(stage key, entered at ms), ...]``, oldest first; the first entry is the creation."""

SIDE_STAGE_NAMES: Final = frozenset({"On hold"})
"""Stages a box visits and comes back from, never one it works through."""
CLOSING_STAGES: Final = 2
"""The last two stages of the line in ``stageOrder`` close a box: won, then lost (as evolve.py's
new stages assume: they are inserted before them)."""

FIRST_STAGE_DAYS: Final = 8.0
"""Mean days in the first stage of the line; each later stage takes ``LATER_STAGE_FACTOR`` longer."""
LATER_STAGE_FACTOR: Final = 1.5
SIDE_STAGE_DAYS: Final = 12.0
CLOSED_DAYS: Final = 20.0
"""Mean days a closed box stays closed before it is reopened (when it is)."""

STALL: Final = 0.12
"""Chance, at each stage of the line, that the box stops moving and stays open where it is."""
LOSE: Final = 0.10
LOSE_PER_STAGE: Final = 0.04
"""Chance of dropping out into the lost stage: ``LOSE`` from the first stage, more further on."""
BACK: Final = 0.10
DETOUR: Final = 0.07
REOPEN: Final = 0.08


@dataclass(frozen=True, slots=True)
class Funnel:
    """A pipeline's stages by the part they play in a box's path."""

    line: tuple[str, ...]
    won: str | None
    lost: str | None
    side: str | None

    @classmethod
    def of(cls, pipeline: Pipeline) -> Funnel:
        names = {stage.key: stage.name for stage in pipeline.stages}
        side = [key for key in pipeline.stage_order if names.get(key) in SIDE_STAGE_NAMES]
        main = [key for key in pipeline.stage_order if key not in side]
        if len(main) <= CLOSING_STAGES:  # too few stages to close a box: all of them are the line
            return cls(tuple(main), None, None, side[0] if side else None)
        won, lost = main[-CLOSING_STAGES:]
        return cls(tuple(main[:-CLOSING_STAGES]), won, lost, side[0] if side else None)


class PathBuilder(GeneratorBase):
    """Draws day-0 stage paths from the shared RNG (a few draws per move: 20,000 boxes stay fast)."""

    def stage_path(self, funnel: Funnel, created: int, end: int) -> StagePath:
        """A box's path from its creation at ``created``; no move after ``end``."""
        if not funnel.line:
            return [("", created)]
        path: StagePath = [(funnel.line[0], created)]
        while True:
            stage, at = path[-1]
            if stage in (funnel.won, funnel.lost):
                if self.rng.random() >= REOPEN:
                    return path
                moves = [(path[-2][0], at + self._dwell(CLOSED_DAYS))]
            else:
                moves = self._next_moves(funnel, stage, at)
            if not moves or moves[-1][1] > end:
                return path
            path.extend(moves)

    def _next_moves(self, funnel: Funnel, stage: str, at: int) -> StagePath:
        """The move(s) out of ``stage`` of the line (a detour is two: there and back); [] = stall."""
        rng = self.rng
        index = funnel.line.index(stage)
        if rng.random() < STALL:
            return []
        leaves = at + self._dwell(FIRST_STAGE_DAYS * LATER_STAGE_FACTOR**index)
        roll = rng.random()
        lose = LOSE + LOSE_PER_STAGE * index
        if funnel.lost is not None and roll < lose:
            return [(funnel.lost, leaves)]
        roll -= lose
        if index and roll < BACK:
            return [(funnel.line[index - 1], leaves)]
        roll -= BACK
        if index and funnel.side is not None and roll < DETOUR:
            return [(funnel.side, leaves), (stage, leaves + self._dwell(SIDE_STAGE_DAYS))]
        if index + 1 < len(funnel.line):
            return [(funnel.line[index + 1], leaves)]
        return [(funnel.won, leaves)] if funnel.won is not None else []

    def _dwell(self, mean_days: float) -> int:
        """Time in a stage: exponential with this mean, at least a minute."""
        return MINUTE_MS + int(self.rng.expovariate(1.0) * mean_days * DAY_MS)
