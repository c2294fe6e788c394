"""Day 0's past: the stages every generated box went through before the anchor (issue 21).

A box's path is a list of ``(stage key, entered at ms)``, oldest first; the first entry is its
creation. It is the one record the rest is built from, so nothing can disagree with it: the box's
``stageKey`` and ``lastStageChangeTimestamp`` are its last entry (its creation when it never
moved), the newsfeed's ``NEW_BOX`` and ``EDIT_STAGE`` entries are its entries
(generate_newsfeed.py), and sandbox time's ``history()`` starts from it (timeline.py).

How a box travels is the pipeline's sales process (sales_process.py), the same one every simulated
day continues: it is created in the first stage of the line (Lead, Applied), advances, slips back,
goes on hold and returns, and ends won or lost, at random times drawn from the process's rates, up
to ``end``; a closed box never moves again, and a box still open at ``end`` is where it stopped.
One exception keeps a planted awkward case: a hold is taken only when the box is back from it by
``end``, so no day-0 box sits in "On hold" (a stage in the middle of ``stageOrder`` that holds no
box, see account.py); simulated days put boxes on hold like any other move.
"""

from __future__ import annotations

from .generator import GeneratorBase
from .model import Pipeline
from .sales_process import PipelineProcess

StagePath = list[tuple[str, int]]
"""``[(stage key, entered at ms), ...]``, oldest first; the first entry is the creation."""


class PathBuilder(GeneratorBase):
    """Draws day-0 stage paths from the shared RNG (a few draws per move: 20,000 boxes stay fast)."""

    def stage_path(
        self, pipeline: Pipeline, process: PipelineProcess | None, created: int, end: int
    ) -> StagePath:
        """A box's path from its creation at ``created``; no move at or after ``end``. A pipeline
        without a process: the box stays in the first stage of ``stageOrder``."""
        if process is None:
            return [(pipeline.stage_order[0] if pipeline.stage_order else "", created)]
        path: StagePath = [(process.first_stage, created)]
        path += process.walk(self.rng, path, created, end, finish_holds=True)
        return path
