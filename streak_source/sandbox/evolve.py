"""One simulated day of the sandbox account, applied in place (sandbox time: see timeline.py).

A day, in this order, each step drawing from the day's own RNG (seeded by seed and day):

1. occasionally a stage (``Rates.stage_added``) or a field (``Rates.field_added``) is added to a
   pipeline that holds boxes, in the day's first hour;
2. ``Rates.deleted`` x live boxes are deleted (never one another box links to: the reference
   does not say what Streak does with such a link);
3. ``Rates.created`` x live boxes are created, in a pipeline picked by its box count, in the first
   stage of its sales process (as on day 0), some field values borrowed from a sibling and a value
   (deal size, salary expectation) drawn from the process's value model;
4. every open box that is not being deleted moves as its pipeline's sales process says
   (sales_process.py: the chain day 0's past was drawn from, continued over the day, at
   ``Rates.pace``): it advances, slips back, goes on hold or returns, or closes won or lost; a
   closed box never moves;
5. ``Rates.changed`` x live boxes get 1-3 things done to them (see ``ACTIONS``): a task added or
   completed, a comment, an email thread, a meeting or call log, a file, a field value (or the
   notes) edited (an edited value field gets a value drawn from the process's value model);
6. ``TASK_DUE`` is recorded for every open task whose due date falls in the day.

Fractional counts are drawn: 2.3 expected boxes means 2, or 3 with probability 0.3.

What moves, and where the reference is silent, what was assumed:

* counters and ``last*``/``mostRecent*``/``soonest*`` timestamps are derived from the children
  at render time (render_boxes.py), so they follow every added child and completed task; the
  overdue figures and ``freshness`` follow the clock (a due date passing changes them with no
  event and no ``lastUpdatedTimestamp`` change: ASSUMED, Streak computes them at read time);
* ``lastUpdatedTimestamp`` (= ``lastSavedTimestamp``) = the time of the box's latest change of
  any kind here, children included (ASSUMED, as day 0's generator does: Streak's own rule is not
  documented); an email thread moves it to its last email;
* ``lastStageChangeTimestamp`` = the time of the box's latest move (Streak's [H] meaning);
* newsfeed entries only for the specifics the reference knows: ``NEW_BOX`` (``STAGE_KEY`` = the
  creation stage), ``EDIT_STAGE`` (``STAGE_KEY`` = the stage entered), ``ADD_TASK`` (``STATUS`` as
  created), ``ADD_MEETING``. Completed tasks, comments, threads, files and edits add none
  (ASSUMED: the reference names no specific for them). A deleted box's entries leave its
  pipeline's newsfeed (ASSUMED; the reference names no deletion entry either);
* a pipeline's ``lastUpdatedTimestamp`` moves when a stage or field is added to it, not when its
  boxes change (ASSUMED); FORMULA values are not recomputed after an edit (ASSUMED).

Change types are Streak's webhook event names (streak_api.md 6.18) where one fits: BOX_CREATE,
BOX_DELETE, BOX_CHANGE_STAGE, BOX_EDIT, BOX_NEW_EMAIL_ADDRESS, STAGE_CREATE, TASK_CREATE,
TASK_COMPLETE, TASK_DUE, COMMENT_CREATE, MEETING_CREATE; where none does, the sandbox's own:
THREAD_CREATE, FILE_CREATE, FIELD_CREATE.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Final

from .evolve_activity import ActivityMaker, Change
from .generator import DAY_MS, HOUR_MS, foreground_for
from .model import Account, Box, Option, Pipeline, PipelineField, Stage

__all__ = ["ACTIONS", "DAY_MS", "Change", "Evolver", "Rates"]


@dataclass(frozen=True)
class Rates:
    """How much happens per simulated day (shares of the live boxes; chances per day)."""

    changed: float = 0.01
    """Share of live boxes that get something done to them (moved, a task, a comment, ...)."""
    created: float = 0.0025
    """New boxes, as a share of the live boxes."""
    deleted: float = 0.001
    """Deleted boxes, as a share of the live boxes."""
    stage_added: float = 0.03
    """Chance that a stage is added to one pipeline that day."""
    field_added: float = 0.03
    """Chance that a field is added to one pipeline that day."""
    pace: float = 1.0
    """How fast the sales process runs on simulated days: every rate of sales_process.py times this
    (the same chances to be won, times divided by it; day 0's past always runs at 1). Above 0."""


ACTIONS: Final[dict[str, float]] = {
    "task": 0.15,
    "complete": 0.10,
    "comment": 0.12,
    "thread": 0.10,
    "meeting": 0.06,
    "file": 0.05,
    "edit": 0.07,
}
"""What a changed box gets done to it, with relative weights (moves: the sales process)."""
ACTIONS_PER_BOX: Final = ((1, 0.6), (2, 0.3), (3, 0.1))

NEW_STAGE_NAMES: Final = (
    "Demo scheduled",
    "Proposal sent",
    "Follow-up",
    "Reference check",
    "Paused",
)
NEW_FIELDS: Final = (
    ("Next step", "TEXT_INPUT"),
    ("Budget approved", "CHECKBOX"),
    ("Channel", "DROPDOWN"),
    ("Referral code", "TEXT_INPUT"),
    ("Follow-up by", "DATE"),
)
CHANNEL_OPTIONS: Final = ("Email", "Phone", "In person")


def _count(rng: random.Random, expected: float) -> int:
    whole = int(expected)
    return whole + (1 if rng.random() < expected - whole else 0)


class Evolver(ActivityMaker):
    """Runs days on one account; holds what stays the same from day to day (text pools, keys)."""

    def __init__(
        self,
        account: Account,
        rates: Rates,
        paths: dict[str, list[tuple[str, int]]],
        deleted_boxes: dict[str, Box],
    ) -> None:
        super().__init__(account)
        self.rates = rates
        self.processes = {key: p.at_pace(rates.pace) for key, p in account.processes.items()}
        """The sales process of each pipeline at ``rates.pace``."""
        self.paths = paths
        self.deleted_boxes = deleted_boxes

    # ------------------------------------------------------------------ the day

    def run_day(self, day: int, day_start: int) -> list[Change]:
        self.begin_day(day, day_start)
        rng = self.rng
        account = self.account
        if rng.random() < self.rates.stage_added:
            self._add_stage(self._busy_pipeline(), day_start + self.between(0, HOUR_MS - 1))
        if rng.random() < self.rates.field_added:
            self._add_field(self._busy_pipeline(), day_start + self.between(0, HOUR_MS - 1))
        live = account.all_boxes()
        linked = {k for box in live for k in box.linked_box_keys}
        deletable = [b for b in live if b.key not in linked]
        doomed = rng.sample(
            deletable, min(len(deletable), _count(rng, len(live) * self.rates.deleted))
        )
        doomed_keys = {b.key for b in doomed}
        for _ in range(_count(rng, len(live) * self.rates.created)):
            self._create_box(self.event_time())
        for box in account.all_boxes():
            if box.key not in doomed_keys:
                self._follow_process(box)
        survivors = [b for b in live if b.key not in doomed_keys]
        changed = rng.sample(
            survivors, min(len(survivors), _count(rng, len(live) * self.rates.changed))
        )
        for box in changed:
            count = rng.choices([n for n, _ in ACTIONS_PER_BOX], [w for _, w in ACTIONS_PER_BOX])[0]
            for when in sorted(self.event_time() for _ in range(count)):
                self._act(box, rng.choices(list(ACTIONS), list(ACTIONS.values()))[0], when)
        for box in doomed:
            self._delete_box(box, self.event_time())
        self._tasks_due(day_start)
        self._publish_events()
        return sorted(self.changes, key=lambda c: c.at)

    def _busy_pipeline(self) -> Pipeline:
        candidates = [p for p in self.account.pipelines if p.boxes and p.stage_order]
        return self.rng.choice(candidates or self.account.pipelines)

    def _publish_events(self) -> None:
        """Today's newsfeed entries, newest first, go before every older one (all earlier)."""
        gone = self.deleted_today
        for pipeline in self.account.pipelines:
            fresh = self.new_events.get(pipeline.key, [])
            fresh.sort(key=lambda e: (e.timestamp, e.specific, e.box_key or ""), reverse=True)
            older = pipeline.events
            if gone:
                older = [e for e in older if e.box_key not in gone]
            if fresh or gone:
                pipeline.events = [e for e in fresh if e.box_key not in gone] + older

    def _tasks_due(self, day_start: int) -> None:
        day_end = day_start + DAY_MS
        for box in self.account.all_boxes():
            for task in box.tasks:
                if not task.done and task.due_ms is not None and day_start <= task.due_ms < day_end:
                    self.record("TASK_DUE", task.due_ms, box, task.key)

    # ------------------------------------------------------------------ pipelines

    def _add_stage(self, pipeline: Pipeline, when: int) -> None:
        taken = {s.name for s in pipeline.stages}
        name = next((n for n in NEW_STAGE_NAMES if n not in taken), f"Stage {len(taken) + 1}")
        key = str(max((int(s.key) for s in pipeline.stages), default=5000) + 1)
        background = f"#{self.rng.randrange(0x1000000):06x}"
        pipeline.stages.append(Stage(key, name, foreground_for(background), background))
        # Before the closing stages (Won/Lost, Hired/Rejected), as "On hold" was on day 0.
        pipeline.stage_order.insert(max(1, len(pipeline.stage_order) - 2), key)
        pipeline.last_updated_ms = when
        self.changes.append(Change(self.day, when, "STAGE_CREATE", pipeline.key, None, key))

    def _add_field(self, pipeline: Pipeline, when: int) -> None:
        taken = {f.name for f in pipeline.fields}
        name, field_type = next(
            (spec for spec in NEW_FIELDS if spec[0] not in taken),
            (f"Field {len(taken) + 1}", "TEXT_INPUT"),
        )
        key = str(max((int(f.key) for f in pipeline.fields), default=1000) + 1)
        options: list[Option] = []
        if field_type == "DROPDOWN":
            last = max((int(o.key) for f in pipeline.fields for o in f.options), default=9000)
            options = [Option(str(last + 1 + i), label) for i, label in enumerate(CHANNEL_OPTIONS)]
        pipeline.fields.append(PipelineField(key, name, field_type, options, None, when))
        pipeline.last_updated_ms = when
        self.changes.append(
            Change(self.day, when, "FIELD_CREATE", pipeline.key, None, key, (("field_key", key),))
        )

    # ------------------------------------------------------------------ boxes

    def _create_box(self, when: int) -> None:
        pipelines = [p for p in self.account.pipelines if p.boxes and p.stage_order]
        if not pipelines:
            return
        pipeline = self.rng.choices(pipelines, [len(p.boxes) for p in pipelines])[0]
        sibling = self.rng.choice(pipeline.boxes)
        creator = self.rng.choice(self.humans)
        process = self.account.processes.get(pipeline.key)
        stage = process.first_stage if process is not None else pipeline.stage_order[0]
        borrowed = {
            k: v
            for k, v in sibling.fields.items()
            if self.field_types(pipeline).get(k) not in ("TEAM_CONTACT", "TEAM_ORGANIZATION")
        }
        if process is not None and process.value_field is not None:
            borrowed[process.value_field] = process.model.value.draw(self.rng)
        box = Box(
            key=self.fresh_key("Case"),
            pipeline_key=pipeline.key,
            name=self.rng.choice(self.box_names[pipeline.key]),
            notes=self.rng.choice(self.sentences) if self.rng.random() < 0.5 else "",
            stage_key=stage,
            fields=borrowed,
            creator_key=creator.key,
            assignee_keys=[creator.key],
            follower_keys=[],
            contact_links=[],
            organization_links=[],
            linked_box_keys=[],
            email_addresses=[],
            creation_ms=when,
            last_updated_ms=when,
            stage_change_ms=when,
            stage_path=[(stage, when)],
        )
        pipeline.boxes.append(box)
        self.account.boxes_by_key[box.key] = box
        self.paths[box.key] = box.stage_path
        self.add_event(
            box, when, "NEW_BOX", "CREATE", creator.key, {"STAGE_KEY": stage}, "created this box"
        )
        self.record("BOX_CREATE", when, box, box.key, stage_key=stage)

    def _delete_box(self, box: Box, when: int) -> None:
        pipeline = self.account.pipelines_by_key[box.pipeline_key]
        # by identity: ``list.remove`` would compare whole Box dataclasses field by field
        del pipeline.boxes[next(i for i, b in enumerate(pipeline.boxes) if b is box)]
        del self.account.boxes_by_key[box.key]
        self.deleted_boxes[box.key] = box
        self.deleted_today.add(box.key)
        self.record("BOX_DELETE", when, box, box.key, stage_key=box.stage_key)

    def _act(self, box: Box, action: str, when: int) -> None:
        if action == "complete" and any(not t.done for t in box.tasks):
            self.complete_task(box, when)
        elif action in ("task", "complete"):
            self.add_task(box, when)
        elif action == "comment":
            self.add_comment(box, when)
        elif action == "thread":
            self.add_thread(box, when)
        elif action == "meeting":
            self.add_meeting(box, when)
        elif action == "file":
            self.add_file(box, when)
        else:
            self.edit_box(box, when)

    def _follow_process(self, box: Box) -> None:
        """The day's moves of one box, as its pipeline's sales process draws them."""
        process = self.processes.get(box.pipeline_key)
        if process is None or box.stage_key is None or process.is_closed(box.stage_key):
            return
        path = self.paths[box.key]
        for target, when in process.walk(self.rng, path, self.day_start, self.day_end):
            self._move(box, target, when)

    def _move(self, box: Box, target: str, when: int) -> None:
        pipeline = self.account.pipelines_by_key[box.pipeline_key]
        current = box.stage_key
        box.stage_key = target
        box.stage_change_ms = when
        box.last_updated_ms = max(box.last_updated_ms, when)
        self.paths[box.key].append((target, when))
        stage_name = next((s.name for s in pipeline.stages if s.key == target), target)
        self.add_event(
            box,
            when,
            "EDIT_STAGE",
            "UPDATE",
            self.rng.choice(self.humans).key,
            {"STAGE_KEY": target},
            f"moved this box to {stage_name}",
        )
        self.record(
            "BOX_CHANGE_STAGE", when, box, box.key, stage_key=target, from_stage_key=current
        )
