"""The hostile account: the default account plus every bad input a loader and a dashboard must survive.

``Sandbox(account="hostile")`` / ``serve --account hostile`` / ``generate_account(...,
account="hostile")``. Built from the default account of the same seed and box count (at least
``MIN_BOXES``), then edited here with its own RNG, so the default account is untouched.

What it holds (the docs page ``docs/sandbox.md`` has the same list for users):

* names that are markup: a pipeline named with a markdown image pointing outside
  (``![x](http://example.invalid/x.png)``), a link, LaTeX (``$x^2$``) and ``<script>``; stage,
  owner (user display/full names) and field names likewise; emoji and non-Latin names
  ("Partnerships 🤝", "Région / 地域", "取引 🚀");
* records without their key: a pipeline (no ``key``/``pipelineKey``), a box (no ``key``/``boxKey``,
  no children, so nothing under it can be reached), a task, a thread (no ``key``), a team member
  (no ``userKey``); and a ``null`` item at the end of one box's task list;
* a box whose extra top-level properties collide after snake_case (``DealSize``/``deal_size``,
  ``!!!``/``🔥``), a box with ``"stageKey": null``, a pipeline with no stages, fields or boxes;
* numeric-looking text values in the "Deal size" TEXT_INPUT field: ``119,500 €``, ``$1,234.50``,
  ``1.234.567``, ``12%``, ``1.5k``, ``n/a``, ``<b>99</b>``.

Ground truth (``ground_truth.table_counts``) leaves the keyless records and the ``null`` item out:
a correct loader loads everything else and quarantines exactly ``ground_truth.rejected_counts``.
"""

from __future__ import annotations

import random
from typing import Final

from .generator import GeneratorBase
from .model import DROP, Box, Pipeline, Team, User

MIN_BOXES: Final = 20
"""Enough Sales boxes with tasks and threads for every planted case to land on its own box."""

OUTSIDE: Final = "http://example.invalid"
PIPELINE_NAME: Final = (
    f"Sales ![x]({OUTSIDE}/x.png) [click me]({OUTSIDE}/phish) $x^2$ <script>alert(1)</script>"
)
HIRING_NAME: Final = "Région / 地域 **Hiring** :red[colour]"
STAGE_NAMES: Final = (
    f"Lead ![s]({OUTSIDE}/stage.png)",
    f"[Contacted]({OUTSIDE}/stage)",
    "$\\frac{1}{2}$ Qualified",
    "<b>Negotiation</b> <script>alert(2)</script>",
    "Gewonnen ✅",
    "取引 🚫 Lost",
    "On hold\n# heading",
)
OWNER_NAMES: Final = (
    (f"![me]({OUTSIDE}/me.png)", "<img src=x onerror=alert(3)>"),
    ("**Bold**", "[Link]" + f"({OUTSIDE}/owner)"),
    ("$\\sqrt{2}$", "Ørsted-Ōtsuka 大谷"),
)
FIELD_NAMES: Final = {
    "1001": f"Deal size ![f]({OUTSIDE}/field.png)",
    "1002": "<script>alert(4)</script> Priority",
    "1003": "NDA $signed$",
}
NUMERIC_TEXTS: Final = ("119,500 €", "$1,234.50", "1.234.567", "12%", "1.5k", "n/a", "<b>99</b>")
COLLIDING_PROPERTIES: Final = {"DealSize": 1, "deal_size": "two", "!!!": "bangs", "🔥": "fire"}


class HostileEditor(GeneratorBase):
    """Turns the freshly built default account into the hostile one (before its newsfeed)."""

    def make_hostile(self, pipelines: list[Pipeline], users: list[User], team: Team) -> None:
        if self.box_count < MIN_BOXES:
            raise ValueError(f"the hostile account needs at least {MIN_BOXES} boxes")
        rng = random.Random(f"{self.seed}:hostile")
        sales, hiring = pipelines[0], pipelines[1]
        sales.name, hiring.name = PIPELINE_NAME, HIRING_NAME
        for stage, name in zip(sales.stages, STAGE_NAMES, strict=False):
            stage.name = name
        for user, (given, family) in zip(users, OWNER_NAMES, strict=False):
            user.given_name, user.family_name = given, family
            user.display_name = f"{given} {family}"
        for pipeline_field in sales.fields:
            pipeline_field.name = FIELD_NAMES.get(pipeline_field.key, pipeline_field.name)
        team.members[2].patch = {"userKey": DROP}

        boxes = list(sales.boxes)
        rng.shuffle(boxes)
        with_tasks = [b for b in boxes if len(b.tasks) >= 2]
        with_threads = [b for b in boxes if b.threads and b not in with_tasks[:2]]
        plain = [b for b in boxes if b not in with_tasks[:2] and b not in with_threads[:1]]

        keyless_task, null_item = with_tasks[0], with_tasks[1]
        keyless_task.tasks[0].patch = {"key": DROP}
        null_item.null_items = ("tasks",)
        with_threads[0].threads[0].patch = {"key": DROP}
        keyless_box, colliding, no_stage, named = plain[0], plain[1], plain[2], plain[3]
        _strip_children(keyless_box)
        keyless_box.fields = {}
        keyless_box.patch = {"key": DROP, "boxKey": DROP}
        colliding.patch = dict(COLLIDING_PROPERTIES)
        no_stage.stage_key = None
        named.name = "取引 🚀 <b>deal</b> ![b](" + OUTSIDE + "/box.png)"
        for box, text in zip(plain[4:], NUMERIC_TEXTS, strict=False):
            box.fields["1001"] = text

        pipelines.append(self._pipeline("Untitled <i>keyless</i>", users[0], team, keyless=True))
        pipelines.append(self._pipeline("Empty 📭 pipeline", users[0], team, keyless=False))

    def _pipeline(self, name: str, owner: User, team: Team, keyless: bool) -> Pipeline:
        created = self.now - 10 * 86_400_000
        pipeline = Pipeline(
            key=self.key("Workflow"),
            name=name,
            description=None,
            creator_key=owner.key,
            team_key=team.key,
            stages=[],
            stage_order=[],
            fields=[],
            acl_user_keys=[owner.key],
            creation_ms=created,
            last_updated_ms=created,
            icon="warning",
        )
        if keyless:
            pipeline.patch = {"key": DROP, "pipelineKey": DROP}
        return pipeline


def _strip_children(box: Box) -> None:
    """A keyless box can have nothing under it that a client could reach."""
    box.tasks, box.threads, box.comments, box.meetings, box.files = [], [], [], [], []

