"""Boxes and their children (tasks, threads, files, comments, meetings) for the generated account.

Custom-field value encodings and the planted awkward cases are described in ``account.py``.
"""

from __future__ import annotations

import random
from typing import Any, Final

from .generate_children import ChildBuilder
from .generate_paths import PathBuilder
from .generator import DAY_MS, HOUR_MS
from .model import Box, BoxLink, Contact, Organization, Pipeline, User
from .sales_process import PipelineProcess, resolve_all

CHILD_SHARES: Final[dict[str, float]] = {
    "tasks": 0.60,
    "threads": 0.70,
    "comments": 0.50,
    "meetings": 0.30,
    "files": 0.30,
}
"""Exact share of boxes that have at least one child of each kind."""

SALES_SHARE: Final = 0.6
BUSY_CHILDREN: Final = (12, 30)
"""Children of each kind a busy box has (the busiest: the most)."""


class BoxBuilder(ChildBuilder, PathBuilder):
    """Builds every box of the Sales and Hiring pipelines (each with its past: generate_paths.py),
    then their children."""

    def build_boxes(
        self,
        pipelines: list[Pipeline],
        humans: list[User],
        contacts: list[Contact],
        organizations: list[Organization],
    ) -> None:
        sales, hiring = pipelines[0], pipelines[1]
        self.processes: dict[str, PipelineProcess] = resolve_all(pipelines)
        sales_count = round(self.box_count * SALES_SHARE)
        sales_keys = [self.key("Case") for _ in range(sales_count)]
        hiring_keys = [self.key("Case") for _ in range(self.box_count - sales_count)]
        contacts_by_org: dict[str, list[Contact]] = {}
        for contact in contacts:
            for org_key in contact.organization_keys:
                contacts_by_org.setdefault(org_key, []).append(contact)
        specials = _SpecialBoxes(self.rng, sales_count)
        sales.boxes = [
            self.sales_box(
                sales, key, index, sales_keys, humans, organizations, contacts_by_org, specials
            )
            for index, key in enumerate(sales_keys)
        ]
        hiring.boxes = [self.hiring_box(hiring, key, humans, hiring_keys) for key in hiring_keys]
        all_boxes = sales.boxes + hiring.boxes
        plan = _ChildPlan(self.rng, len(all_boxes))
        contacts_by_key = {contact.key: contact for contact in contacts}
        for index, box in enumerate(all_boxes):
            self.add_children(box, plan.counts(index), humans, contacts, contacts_by_key)

    def _base_box(
        self, pipeline: Pipeline, key: str, name: str, humans: list[User], sibling_keys: list[str]
    ) -> Box:
        created = self.days_ago(3, 420)
        path = self.stage_path(
            pipeline, self.processes.get(pipeline.key), created, self.now - DAY_MS
        )
        stage, stage_change = path[-1]
        linked = []
        if len(sibling_keys) > 1 and self.rng.random() < 0.05:
            other = self.rng.choice(sibling_keys)
            linked = [other] if other != key else []
        note_roll = self.rng.random()
        if note_roll < 0.15:
            notes = ""
        elif note_roll < 0.4:
            notes = self.maybe_emoji(self.rng.choice(self.text.sentences), 0.2)
        else:
            notes = (
                self.rng.choice(self.text.paragraphs)
                + "\n\n"
                + self.rng.choice(self.text.sentences)
            )
        return Box(
            key=key,
            pipeline_key=pipeline.key,
            name=name,
            notes=notes,
            stage_key=stage,
            fields={},
            creator_key=self.rng.choice(humans).key,
            assignee_keys=[
                u.key for u in self.rng.sample(humans, self.rng.choice((0, 1, 1, 1, 2)))
            ],
            follower_keys=[u.key for u in self.rng.sample(humans, self.rng.randint(0, 3))],
            contact_links=[],
            organization_links=[],
            linked_box_keys=linked,
            email_addresses=[],
            creation_ms=created,
            last_updated_ms=self.between(stage_change, self.now - HOUR_MS),
            stage_change_ms=stage_change,
            stage_path=path,
        )

    def sales_box(
        self,
        pipeline: Pipeline,
        key: str,
        index: int,
        sibling_keys: list[str],
        humans: list[User],
        organizations: list[Organization],
        contacts_by_org: dict[str, list[Contact]],
        specials: _SpecialBoxes,
    ) -> Box:
        company = self.rng.choice(self.text.companies)
        if self.rng.random() < 0.3:
            company = f"{company} – {self.rng.choice(self.text.deal_labels)}"
        box = self._base_box(pipeline, key, self.maybe_emoji(company, 0.08), humans, sibling_keys)
        if index == specials.emoji_name:
            box.name = f"{company} 🚀"
        if index == specials.empty_notes:
            box.notes = ""
        if self.rng.random() < 0.8 and organizations:
            organization = self.rng.choice(organizations)
            box.organization_links = [BoxLink(organization.key, self.rng.random() < 0.2, False)]
            people = contacts_by_org.get(organization.key, [])
            for contact in self.rng.sample(people, min(len(people), self.rng.randint(0, 3))):
                box.contact_links.append(
                    BoxLink(contact.key, self.rng.random() < 0.3, self.rng.random() < 0.5)
                )
        if index != specials.no_fields:
            box.fields = self.sales_field_values(pipeline, box, humans, index, specials)
        return box

    def sales_field_values(
        self,
        pipeline: Pipeline,
        box: Box,
        humans: list[User],
        index: int,
        specials: _SpecialBoxes,
    ) -> dict[str, Any]:
        by_name = {f.name: f for f in pipeline.fields}
        values: dict[str, Any] = {}
        rng = self.rng
        deal_size: float | None = None
        if rng.random() < 0.7 or index == specials.numeric_text:
            amount = self.processes[pipeline.key].model.value.draw(rng)
            roll = rng.random()
            if roll < 0.5 or index == specials.numeric_text:
                values["1001"] = amount  # numeric text value: a JSON number
                deal_size = amount
            elif roll < 0.8:
                values["1001"] = str(amount)
                deal_size = amount
            elif roll < 0.95:
                values["1001"] = f"{amount:,} €"
            else:
                values["1001"] = ""
        priority = by_name["Priority"]
        if index == specials.deleted_option or rng.random() < 0.03:
            values["1002"] = "9004"  # option "Urgent" no longer in dropdownSettings.items
        elif rng.random() < 0.75:
            values["1002"] = rng.choice(priority.options).key
        if rng.random() < 0.6:
            values["1003"] = rng.random() < 0.5
        if rng.random() < 0.6:
            values["1004"] = (self.now // DAY_MS + rng.randint(-60, 120)) * DAY_MS
        elif rng.random() < 0.05:
            values["1004"] = None
        if rng.random() < 0.6:
            values["1005"] = [person_value(u) for u in rng.sample(humans, rng.randint(1, 2))]
        elif rng.random() < 0.05:
            values["1005"] = []
        probability = {"9001": 0.6, "9002": 0.3, "9003": 0.1}.get(values.get("1002", ""), 0.0)
        values["1006"] = round((deal_size or 0) * probability, 2)
        tags = by_name["Tags"].options
        if index == specials.multi_tag:
            values["1007"] = [t.key for t in rng.sample(tags, 3)]
        elif rng.random() < 0.5:
            values["1007"] = [t.key for t in rng.sample(tags, rng.randint(1, 3))]
        elif rng.random() < 0.05:
            values["1007"] = []
        if box.contact_links:
            values["1008"] = [link.key for link in box.contact_links[:2]]
        if box.organization_links:
            values["1009"] = [box.organization_links[0].key]
        if rng.random() < 0.4:
            values["1010"] = rng.choice(self.text.cities)
        return values

    def hiring_box(
        self, pipeline: Pipeline, key: str, humans: list[User], sibling_keys: list[str]
    ) -> Box:
        given, family = self.rng.choice(self.text.person_names)
        box = self._base_box(
            pipeline, key, self.maybe_emoji(f"{given} {family}", 0.05), humans, sibling_keys
        )
        rng = self.rng
        fields = pipeline.fields
        values: dict[str, Any] = {}
        if rng.random() < 0.85:
            values["1001"] = rng.choice(fields[0].options).key
        if rng.random() < 0.7:
            values["1002"] = [t.key for t in rng.sample(fields[1].options, rng.randint(1, 2))]
        if rng.random() < 0.6:
            salary = self.processes[pipeline.key].model.value.draw(rng)
            values["1003"] = salary if rng.random() < 0.6 else f"{salary // 1000}k"
        if rng.random() < 0.5:
            values["1004"] = (self.now // DAY_MS + rng.randint(7, 120)) * DAY_MS
        if rng.random() < 0.5:
            values["1005"] = [person_value(u) for u in rng.sample(humans, rng.randint(1, 3))]
        if rng.random() < 0.7:
            values["1006"] = rng.random() < 0.6
        if rng.random() < 0.8:
            values["1007"] = round(rng.uniform(0, 5), 1) if rng.random() < 0.9 else 0
        box.fields = values
        return box


def person_value(user: User) -> dict[str, str]:
    """A PERSON field value entry (sharing-entry shape, [L])."""
    return {
        "userKey": user.key,
        "email": user.email,
        "fullName": user.full_name,
        "displayName": user.display_name,
    }


class _SpecialBoxes:
    """Which Sales boxes (by index) carry the planted awkward cases; distinct when possible."""

    def __init__(self, rng: random.Random, count: int) -> None:
        picks = rng.sample(range(count), min(count, 6)) + [-1] * 6
        (
            self.no_fields,
            self.deleted_option,
            self.numeric_text,
            self.multi_tag,
            self.empty_notes,
            self.emoji_name,
        ) = picks[:6]


class _ChildPlan:
    """How many children of each kind every box gets (exact shares, a few busy boxes)."""

    def __init__(self, rng: random.Random, box_count: int) -> None:
        self._counts: list[dict[str, int]] = [
            dict.fromkeys(CHILD_SHARES, 0) for _ in range(box_count)
        ]
        smallest_share = min(CHILD_SHARES.values())
        busy_count = min(max(3, box_count // 100), round(box_count * smallest_share))
        busy = rng.sample(range(box_count), busy_count)
        busy_set = set(busy)
        others = [i for i in range(box_count) if i not in busy_set]
        typical = (1, 1, 1, 2, 2, 3, 4, 6)
        for kind, share in CHILD_SHARES.items():
            wanted = round(box_count * share)
            chosen = busy + rng.sample(others, wanted - len(busy))
            for index in chosen:
                self._counts[index][kind] = (
                    rng.randint(*BUSY_CHILDREN) if index in busy_set else rng.choice(typical)
                )
        if busy:  # the busiest: its history (tasks, meetings, moves) outgrows the newsfeed's cap
            self._counts[busy[0]] = dict.fromkeys(CHILD_SHARES, BUSY_CHILDREN[1])

    def counts(self, index: int) -> dict[str, int]:
        return self._counts[index]
