"""A deterministic Streak account: the sandbox's ground truth (data only, no HTTP).

``generate_account(seed, boxes, anchor_date)`` returns the same account for the same three inputs.
Shape of the default account (``boxes=300``):

* me plus a team of 7 users (me as Owner, humans from several locales, one pending invite,
  one AGENT); team contacts (boxes/2) and organizations (boxes/5), with team custom fields;
* 3 pipelines: "Sales" (60 % of the boxes; custom fields of all nine types, a stage that holds
  no box and is not last in ``stageOrder``), "Hiring" (40 %), and an empty personal pipeline
  "Partnerships 🤝" (``boxCount`` 0, ``teamKey`` null): "3 pipelines" = 2 with boxes + 1 empty;
* per box children with exact shares of boxes having at least one: tasks 60 %, email threads
  70 %, comments 50 %, meetings/call logs 30 %, files 30 %; about 1 % of boxes (at least 3) are
  "busy" with 12-30 children of every kind, more than a page holds at small page sizes;
* snippets, and each pipeline's newsfeed (its 50 newest events).

Custom-field value encodings in ``box.fields`` (streak_api.md section 6.5; the reference marks
PERSON, FORMULA and TEAM_* encodings as [L], so these are this sandbox's documented choices):

=================  =====================================================================
TEXT_INPUT         string; sometimes a JSON number (Streak returns numeric text as numbers)
DROPDOWN           option key string, e.g. "9002" (one value points at a deleted option)
CHECKBOX           bool (``false`` is a value)
DATE               int epoch ms (midnight UTC of the day)
PERSON             [L] list of ``{userKey, email, fullName, displayName}``
FORMULA            [L] a number (``0`` is a value); the definition is the field's defaultValue
TAG                list of tag keys, often several
TEAM_CONTACT       [L] list of team contact keys
TEAM_ORGANIZATION  [L] list of team organization keys
=================  =====================================================================

Awkward cases planted on purpose (when there are enough boxes): unicode and emoji in names and
notes, empty notes, a box with ``fields == {}``, present-but-empty values (``""``, ``[]``,
``null``), a DROPDOWN value whose option was deleted, multi-tag values, numeric TEXT_INPUT values,
absent (not null) optional timestamps, overdue / due-soon / done / undated tasks.

Times are relative to an anchor: midnight UTC of ``anchor_date`` (default: today). All history is
before the anchor; overdue due dates are at least a day before it and upcoming ones at least a day
after it, so "overdue" means the same thing to the sandbox and to a client running that day.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime
from typing import Any, Final

from .keys import KeyFactory, PathElement, datastore_key, team_entity_key
from .model import (
    Account,
    Box,
    BoxLink,
    Comment,
    Contact,
    Email,
    File,
    Meeting,
    Mention,
    NewsfeedEntry,
    Option,
    Organization,
    Pipeline,
    PipelineField,
    Reaction,
    Snippet,
    Stage,
    Task,
    Team,
    TeamField,
    TeamMember,
    Thread,
    User,
)
from .text import TextPools, ascii_slug

DEFAULT_SEED: Final = 7
DEFAULT_BOX_COUNT: Final = 300
NEWSFEED_CAP: Final = 50
"""Streak returns at most the 50 most recent newsfeed events (streak_api.md 6.13)."""

MINUTE_MS: Final = 60_000
HOUR_MS: Final = 60 * MINUTE_MS
DAY_MS: Final = 24 * HOUR_MS

CHILD_SHARES: Final[dict[str, float]] = {
    "tasks": 0.60,
    "threads": 0.70,
    "comments": 0.50,
    "meetings": 0.30,
    "files": 0.30,
}
"""Exact share of boxes that have at least one child of each kind."""

SALES_SHARE: Final = 0.6
AVATAR_ROOT: Final = "https://lh3.googleusercontent.com/a/"
INDUSTRIES: Final = (
    "Software",
    "Manufacturing",
    "Healthcare",
    "Financial services",
    "Retail",
    "Education",
    "Logistics",
    "Media",
)
EMPLOYEE_BANDS: Final = ("1-10", "11-50", "51-200", "201-1000", "1000+")
TASK_VERBS: Final = ("Call", "Email", "Send proposal to", "Follow up with", "Book a demo with")
REACTION_EMOJI: Final = ("👍", "🎉", "❤️", "👀")
HIRING_SOURCES: Final = ("LinkedIn", "Referral", "Job board", "Agency")
SALES_TAGS: Final = ("enterprise", "renewal", "🔥 hot lead", "partner", "inbound", "Übernahme")


def anchor_ms_for(anchor_date: date | str | None) -> int:
    """Midnight UTC of ``anchor_date`` (a date or ``YYYY-MM-DD``; default today) in epoch ms."""
    if anchor_date is None:
        anchor_date = datetime.now(UTC).date()
    elif isinstance(anchor_date, str):
        anchor_date = date.fromisoformat(anchor_date)
    midnight = datetime(anchor_date.year, anchor_date.month, anchor_date.day, tzinfo=UTC)
    return int(midnight.timestamp()) * 1000


def generate_account(
    seed: int = DEFAULT_SEED,
    boxes: int = DEFAULT_BOX_COUNT,
    anchor_date: date | str | None = None,
) -> Account:
    """The account for this seed, box count and anchor day (identical inputs, identical account)."""
    if boxes < 0:
        raise ValueError("boxes must be >= 0")
    return _AccountBuilder(seed, boxes, anchor_ms_for(anchor_date)).build()


class _AccountBuilder:
    """One generation run. Holds the RNGs and the pieces built so far."""

    def __init__(self, seed: int, box_count: int, anchor_ms: int) -> None:
        self.seed = seed
        self.box_count = box_count
        self.now = anchor_ms
        self.rng = random.Random(f"{seed}:account")
        self.keys = KeyFactory(random.Random(f"{seed}:keys"))
        self.text = TextPools(seed, size=min(1500, max(80, box_count)))
        self.domain = self.text.domains[0]
        self.org_root: PathElement = ("Organization", self.domain)
        self._email_locals: set[str] = set()

    # ------------------------------------------------------------------ helpers

    def key(self, kind: str) -> str:
        return self.keys.key(self.org_root, kind=kind)

    def between(self, start: int, end: int) -> int:
        """A random instant in [start, end] (end clamped to at least start).

        ``random()`` arithmetic, not ``randint``: this runs millions of times for big accounts.
        """
        return start + int(self.rng.random() * (max(0, end - start) + 1))

    def days_ago(self, low: int, high: int) -> int:
        return self.now - self.between(low * DAY_MS, high * DAY_MS)

    def maybe_emoji(self, text: str, probability: float) -> str:
        if self.rng.random() < probability:
            return f"{text} {self.rng.choice(self.text.emojis)}"
        return text

    def unique_email(self, given: str, family: str, domain: str) -> str:
        local = ascii_slug(f"{given} {family}") or self.rng.choice(self.text.user_names)
        candidate, suffix = local, 1
        while candidate in self._email_locals:
            suffix += 1
            candidate = f"{local}{suffix}"
        self._email_locals.add(candidate)
        return f"{candidate}@{domain}"

    # ------------------------------------------------------------------ build

    def build(self) -> Account:
        users = self.build_users()
        me = users[0]
        team = self.build_team(users)
        contacts, organizations = self.build_contacts_and_organizations(team)
        pipelines = self.build_pipelines(team, users)
        humans = [u for u in users if u.user_type == "HUMAN"]
        self.build_boxes(pipelines, humans, contacts, organizations)
        for pipeline in pipelines:
            pipeline.newsfeed = self.build_newsfeed(pipeline, humans)
        return Account(
            seed=self.seed,
            box_count=self.box_count,
            anchor_ms=self.now,
            me=me,
            users={user.key: user for user in users},
            teams=[team],
            pipelines=pipelines,
            snippets=self.build_snippets(me),
            contacts={team.key: sorted(contacts, key=lambda c: c.key)},
            organizations={team.key: sorted(organizations, key=lambda o: o.key)},
        )

    def build_users(self) -> list[User]:
        """Me first, then four colleagues, an invitee and an agent; names from several locales."""
        picks = [self.text.english_names[0]] + self.rng.sample(self.text.person_names, 5)
        users = []
        for index, (given, family) in enumerate(picks):
            users.append(
                User(
                    key=datastore_key(("User", self.keys.new_id())),
                    email=self.unique_email(given, family, self.domain),
                    given_name=given,
                    family_name=family,
                    display_name=given if index else f"{given} {family}",
                    image=f"{AVATAR_ROOT}{ascii_slug(family, '') or 'x'}{index}",
                    timezone_id=self.rng.choice(self.text.timezones),
                    user_type="HUMAN",
                    creation_ms=self.days_ago(500, 900),
                    last_seen_ms=self.days_ago(0, 3) if index < 5 else None,
                )
            )
        users.append(
            User(
                key=datastore_key(("User", self.keys.new_id())),
                email=f"agent+{self.keys.new_id() % 10_000}@{self.domain}",
                given_name="Streak",
                family_name="Agent",
                display_name="Streak Agent",
                image="",
                timezone_id="UTC",
                user_type="AGENT",
                creation_ms=self.days_ago(30, 60),
                last_seen_ms=None,
            )
        )
        return users

    def build_team(self, users: list[User]) -> Team:
        me = users[0]
        created = me.creation_ms + DAY_MS
        members = []
        for index, user in enumerate(users):
            pending = index == len(users) - 2
            members.append(
                TeamMember(
                    user=user,
                    role="Owner" if index == 0 else "Member",
                    invite_status="Pending" if pending else "Accepted",
                    invite_ms=max(created, user.creation_ms),
                )
            )
        contact_fields = [
            TeamField("1001", "Lead source", "TEXT_INPUT", updated_ms=created),
            TeamField(
                "1002",
                "Lifecycle stage",
                "DROPDOWN",
                [Option("9001", "Lead"), Option("9002", "Customer"), Option("9003", "Churned")],
                updated_ms=created,
            ),
        ]
        organization_fields = [
            TeamField(
                "1001",
                "Segment",
                "DROPDOWN",
                [Option("9001", "SMB"), Option("9002", "Mid-market"), Option("9003", "Enterprise")],
                updated_ms=created,
            ),
            TeamField("1002", "Account ID", "TEXT_INPUT", updated_ms=created),
        ]
        return Team(
            key=datastore_key(("Team", self.keys.new_id())),
            name=f"{self.text.companies[0]} team",
            creator_key=me.key,
            creation_ms=created,
            last_saved_ms=self.days_ago(1, 30),
            members=members,
            contact_fields=contact_fields,
            organization_fields=organization_fields,
        )

    def build_contacts_and_organizations(
        self, team: Team
    ) -> tuple[list[Contact], list[Organization]]:
        creators = [m.user.key for m in team.members if m.user.user_type == "HUMAN"]
        organizations = []
        for _ in range(max(5, round(self.box_count * 0.2))):
            created = self.days_ago(30, 700)
            domain = self.rng.choice(self.text.domains)
            organizations.append(
                Organization(
                    key=team_entity_key("TeamOrganization", self.keys.new_id()),
                    team_key=team.key,
                    name=self.maybe_emoji(self.rng.choice(self.text.companies), 0.03),
                    other=self.rng.choice(self.text.sentences) if self.rng.random() < 0.5 else "",
                    domains=[domain],
                    industry=self.rng.choice(INDUSTRIES),
                    phone_numbers=[self.rng.choice(self.text.phone_numbers)],
                    addresses=[self.rng.choice(self.text.addresses)],
                    employee_count=self.rng.choice(EMPLOYEE_BANDS),
                    logo_url=f"https://logo.clearbit.com/{domain}"
                    if self.rng.random() < 0.6
                    else None,
                    creator_key=self.rng.choice(creators),
                    creation_ms=created,
                    last_saved_ms=self.between(created, self.now - HOUR_MS),
                    enrichment_ms=self.between(created, self.now)
                    if self.rng.random() < 0.3
                    else None,
                    fields=self._team_field_values(team.organization_fields),
                )
            )
        contacts = []
        for _ in range(max(10, round(self.box_count * 0.5))):
            given, family = self.rng.choice(self.text.person_names)
            organization = self.rng.choice(organizations) if self.rng.random() < 0.7 else None
            domain = organization.domains[0] if organization else self.rng.choice(self.text.domains)
            created = self.days_ago(10, 700)
            contact = Contact(
                key=team_entity_key("TeamContact", self.keys.new_id()),
                team_key=team.key,
                given_name=given,
                family_name=family,
                title=self.rng.choice(self.text.jobs),
                other=self.rng.choice(self.text.sentences) if self.rng.random() < 0.4 else "",
                email_addresses=[self.unique_email(given, family, domain)],
                phone_numbers=[self.rng.choice(self.text.phone_numbers)]
                if self.rng.random() < 0.7
                else [],
                addresses=[self.rng.choice(self.text.addresses)] if self.rng.random() < 0.3 else [],
                linkedin_handle=ascii_slug(f"{given} {family}", "-") or None,
                twitter_handle=None,
                photo_url=None,
                creator_key=self.rng.choice(creators),
                creation_ms=created,
                last_saved_ms=self.between(created, self.now - HOUR_MS),
                enrichment_ms=None,
                organization_keys=[organization.key] if organization else [],
                fields=self._team_field_values(team.contact_fields),
            )
            if organization:
                organization.contact_keys.append(contact.key)
            contacts.append(contact)
        return contacts, organizations

    def _team_field_values(self, team_fields: list[TeamField]) -> dict[str, str]:
        """Team contact/org custom field values are strings (SPEC ``fields`` map)."""
        values: dict[str, str] = {}
        for team_field in team_fields:
            if self.rng.random() < 0.35:
                continue
            if team_field.options:
                values[team_field.key] = self.rng.choice(team_field.options).key
            else:
                values[team_field.key] = self.rng.choice(
                    [self.rng.choice(self.text.deal_labels), str(self.rng.randint(1000, 99999))]
                )
        return values

    def build_snippets(self, me: User) -> list[Snippet]:
        snippets = []
        for index in range(6):
            body = self.rng.choice(self.text.paragraphs)
            html = index % 3 == 2
            snippets.append(
                Snippet(
                    key=self.key("Snippet"),
                    user_key=me.key,
                    name=self.maybe_emoji(self.rng.choice(self.text.subjects), 0.2),
                    text=f"<p>{body}</p>" if html else body,
                    snippet_type="HTML" if html else "TEXT",
                    part_of_pipeline=index % 2 == 1,
                    creation_ms=self.days_ago(20, 400),
                )
            )
        return snippets

    # ------------------------------------------------------------------ pipelines

    def _stages(self, names: list[str]) -> list[Stage]:
        stages = []
        for index, name in enumerate(names):
            background = f"#{self.rng.randrange(0x1000000):06x}"
            light = sum(int(background[i : i + 2], 16) for i in (1, 3, 5)) > 384
            stages.append(
                Stage(str(5001 + index), name, "#000000" if light else "#ffffff", background)
            )
        return stages

    def _fields(
        self, created: int, specs: list[tuple[str, str, list[str], str | None]]
    ) -> list[PipelineField]:
        """Field keys 1001.., option keys 9001.. (one sequence per pipeline)."""
        option_numbers = iter(range(9001, 9999))
        fields = []
        for index, (name, field_type, labels, formula) in enumerate(specs):
            options = [Option(str(next(option_numbers)), label) for label in labels]
            if name == "Priority":
                next(option_numbers)  # 9004 "Urgent" was deleted; some boxes still hold it
            fields.append(
                PipelineField(
                    key=str(1001 + index),
                    name=name,
                    type=field_type,
                    options=options,
                    formula=formula,
                    updated_ms=created + index * MINUTE_MS,
                )
            )
        return fields

    def build_pipelines(self, team: Team, users: list[User]) -> list[Pipeline]:
        me = users[0]
        humans = [u.key for u in users if u.user_type == "HUMAN"]
        sales_created = self.days_ago(450, 480)
        sales_stages = self._stages(
            ["Lead", "Contacted", "Qualified", "Negotiation", "Won", "Lost", "On hold"]
        )
        sales = Pipeline(
            key=self.key("Workflow"),
            name="Sales",
            description=self.rng.choice(self.text.sentences),
            creator_key=me.key,
            team_key=team.key,
            stages=sales_stages,
            # "On hold" (5007) was added later and placed before "Won": display order != key order.
            stage_order=["5001", "5002", "5003", "5004", "5007", "5005", "5006"],
            fields=self._fields(
                sales_created,
                [
                    ("Deal size", "TEXT_INPUT", [], None),
                    ("Priority", "DROPDOWN", ["High", "Medium", "Low"], None),
                    ("NDA signed", "CHECKBOX", [], None),
                    ("Expected close", "DATE", [], None),
                    ("Account manager", "PERSON", [], None),
                    ("Weighted value", "FORMULA", [], "{Deal size} * {Probability}"),
                    ("Tags", "TAG", list(SALES_TAGS), None),
                    ("Main contact", "TEAM_CONTACT", [], None),
                    ("Company", "TEAM_ORGANIZATION", [], None),
                    ("Région / 地域", "TEXT_INPUT", [], None),
                ],
            ),
            acl_user_keys=humans,
            creation_ms=sales_created,
            last_updated_ms=self.days_ago(1, 5),
        )
        hiring_created = self.days_ago(300, 350)
        hiring = Pipeline(
            key=self.key("Workflow"),
            name="Hiring",
            description=None,
            creator_key=humans[1],
            team_key=team.key,
            stages=self._stages(
                ["Applied", "Phone screen", "Interview", "Offer", "Hired", "Rejected"]
            ),
            stage_order=["5001", "5002", "5003", "5004", "5005", "5006"],
            fields=self._fields(
                hiring_created,
                [
                    ("Role", "DROPDOWN", self.rng.sample(self.text.jobs, 4), None),
                    ("Source", "TAG", list(HIRING_SOURCES), None),
                    ("Salary expectation", "TEXT_INPUT", [], None),
                    ("Available from", "DATE", [], None),
                    ("Interviewers", "PERSON", [], None),
                    ("Remote OK", "CHECKBOX", [], None),
                    ("Score", "FORMULA", [], "AVERAGE({Interview scores})"),
                ],
            ),
            acl_user_keys=humans[:3],
            creation_ms=hiring_created,
            last_updated_ms=self.days_ago(1, 5),
        )
        partnerships_created = self.days_ago(20, 40)
        partnerships = Pipeline(
            key=self.key("Workflow"),
            name="Partnerships 🤝",
            description="",
            creator_key=me.key,
            team_key=None,
            stages=self._stages(["Prospect", "Active"]),
            stage_order=["5001", "5002"],
            fields=self._fields(
                partnerships_created,
                [
                    ("Partner type", "DROPDOWN", ["Reseller", "Technology"], None),
                    ("Contract value", "TEXT_INPUT", [], None),
                ],
            ),
            acl_user_keys=[me.key],
            creation_ms=partnerships_created,
            last_updated_ms=partnerships_created + HOUR_MS,
        )
        return [sales, hiring, partnerships]

    # ------------------------------------------------------------------ boxes

    def build_boxes(
        self,
        pipelines: list[Pipeline],
        humans: list[User],
        contacts: list[Contact],
        organizations: list[Organization],
    ) -> None:
        sales, hiring = pipelines[0], pipelines[1]
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
        stage_change = self.between(created, self.now - DAY_MS)
        stages = [s.key for s in pipeline.stages if s.name != "On hold"]
        weights = [max(1, 8 - i) for i in range(len(stages))]
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
            stage_key=self.rng.choices(stages, weights)[0],
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
            amount = rng.randrange(1_000, 250_000, 500)
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
            values["1005"] = [_person_value(u) for u in rng.sample(humans, rng.randint(1, 2))]
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
            salary = rng.randrange(40_000, 180_000, 1_000)
            values["1003"] = salary if rng.random() < 0.6 else f"{salary // 1000}k"
        if rng.random() < 0.5:
            values["1004"] = (self.now // DAY_MS + rng.randint(7, 120)) * DAY_MS
        if rng.random() < 0.5:
            values["1005"] = [_person_value(u) for u in rng.sample(humans, rng.randint(1, 3))]
        if rng.random() < 0.7:
            values["1006"] = rng.random() < 0.6
        if rng.random() < 0.8:
            values["1007"] = round(rng.uniform(0, 5), 1) if rng.random() < 0.9 else 0
        box.fields = values
        return box

    # ------------------------------------------------------------------ children

    def add_children(
        self,
        box: Box,
        counts: dict[str, int],
        humans: list[User],
        contacts: list[Contact],
        contacts_by_key: dict[str, Contact],
    ) -> None:
        rng = self.rng
        start, end = box.creation_ms + MINUTE_MS, self.now - MINUTE_MS
        for _ in range(counts["tasks"]):
            box.tasks.append(self.task(box, humans, start, end))
        box.tasks.sort(key=lambda t: (t.creation_ms, t.key))
        people = [contacts_by_key[link.key] for link in box.contact_links]
        for _ in range(counts["threads"]):
            box.threads.append(
                self.thread(box, humans, people or rng.sample(contacts, 1), start, end)
            )
        box.threads.sort(key=lambda t: (t.emails[-1].timestamp, t.key), reverse=True)
        addresses = {
            a for t in box.threads for a in t.email_addresses if not a.endswith(self.domain)
        }
        box.email_addresses = sorted(addresses)[:5]
        for _ in range(counts["files"]):
            box.files.append(self.file(box, humans, start, end))
        box.files.sort(key=lambda f: (f.creation_ms, f.key))
        for _ in range(counts["comments"]):
            box.comments.append(self.comment(box, humans, start, end))
        box.comments.sort(key=lambda c: (c.timestamp, c.key))
        self._thread_replies(box.comments)
        for _ in range(counts["meetings"]):
            box.meetings.append(self.meeting(humans, start, end))
        box.meetings.sort(key=lambda m: (m.start_ms, m.key))
        activity = [box.last_updated_ms]
        activity += [t.status_change_ms for t in box.tasks]
        activity += [t.emails[-1].timestamp for t in box.threads]
        activity += [c.timestamp for c in box.comments]
        activity += [m.creation_ms for m in box.meetings]
        activity += [f.creation_ms for f in box.files]
        box.last_updated_ms = max(activity)

    def task(self, box: Box, humans: list[User], start: int, end: int) -> Task:
        rng = self.rng
        created = self.between(start, end)
        creator = rng.choice(humans)
        assignees = [creator.key] if rng.random() < 0.7 else [u.key for u in rng.sample(humans, 2)]
        if rng.random() < 0.3:
            text = rng.choice(self.text.sentences)
        else:
            text = f"{rng.choice(TASK_VERBS)} {rng.choice(self.text.person_names)[0]}"
        roll = rng.random()
        if roll < 0.4:  # done
            done, due = True, (self.between(created, end) if rng.random() < 0.7 else None)
            changed, reminder = self.between(created, end), "NOT_REMINDED_BECAUSE_TASK_DONE"
        elif roll < 0.6:  # overdue: due at least a day before the anchor
            done, changed, reminder = False, created, "REMINDED"
            due = min(self.between(created, self.now - DAY_MS), self.now - DAY_MS)
        elif roll < 0.85:  # due soon: 1-14 days after the anchor
            done, changed, reminder = False, created, "SCHEDULED"
            due = self.now + rng.randint(DAY_MS, 14 * DAY_MS)
        else:  # no due date
            done, due, changed, reminder = False, None, created, "NONE"
        return Task(
            key=self.key("Task"),
            creator_key=creator.key,
            assignee_keys=assignees,
            text=text,
            done=done,
            due_ms=due,
            creation_ms=created,
            status_change_ms=changed,
            reminder_status=reminder,
        )

    def thread(
        self, box: Box, humans: list[User], people: list[Contact], start: int, end: int
    ) -> Thread:
        rng = self.rng
        teammate = rng.choice(humans)
        outsiders = rng.sample(people, min(len(people), rng.randint(1, 2)))
        first = self.between(start, end)
        last = min(end, first + rng.randint(0, 20) * DAY_MS + rng.randint(0, DAY_MS))
        moments = sorted(self.between(first, last) for _ in range(rng.randint(1, 8)))
        emails = []
        for moment in moments:
            sent = rng.random() < 0.5
            sender = teammate.email if sent else outsiders[0].email_addresses[0]
            emails.append(Email(moment, sent, sender))
        subject = rng.choice(self.text.subjects)
        if rng.random() < 0.1:
            subject = rng.choice(self.text.sentences)
        elif rng.random() < 0.3:
            subject = f"Re: {subject}"
        return Thread(
            key=self.key("Thread"),
            gmail_thread_key=self.key("GmailThread"),
            gmail_id=f"{rng.getrandbits(64):016x}",
            creator_key=teammate.key,
            subject=self.maybe_emoji(subject, 0.05),
            names=[teammate.full_name] + [f"{c.given_name} {c.family_name}" for c in outsiders],
            email_addresses=[teammate.email] + [c.email_addresses[0] for c in outsiders],
            emails=emails,
            file_keys=[],
            views=rng.randint(0, 6) if any(e.sent for e in emails) else 0,
        )

    def file(self, box: Box, humans: list[User], start: int, end: int) -> File:
        rng = self.rng
        stem, extension, mime_type = rng.choice(self.text.file_names)
        thread = rng.choice(box.threads) if box.threads and rng.random() < 0.6 else None
        created = self.between(start, end)
        file = File(
            key=self.key("File"),
            owner_key=rng.choice(humans).key,
            main_file_name=stem,
            extension=extension,
            mime_type=mime_type,
            size=rng.randint(2_000, 8_000_000),
            file_type="GMAIL_API" if thread else "DRIVE",
            thread_key=thread.key if thread else None,
            creation_ms=created,
        )
        if thread:
            thread.file_keys.append(file.key)
        return file

    def comment(self, box: Box, humans: list[User], start: int, end: int) -> Comment:
        rng = self.rng
        message = self.maybe_emoji(rng.choice(self.text.sentences), 0.15)
        mentions = []
        if rng.random() < 0.15:
            mentioned = rng.choice(humans)
            handle = f"@{mentioned.display_name}"
            message = f"{handle} {message}"
            mentions.append(Mention(mentioned.key, 0, len(handle)))
        reactions = []
        if rng.random() < 0.1:
            reactions.append(
                Reaction(
                    rng.choice(REACTION_EMOJI),
                    [u.key for u in rng.sample(humans, rng.randint(1, 2))],
                )
            )
        return Comment(
            key=self.key("Comment"),
            creator_key=rng.choice(humans).key,
            message=message,
            timestamp=self.between(start, end),
            parent_key=None,
            child_keys=[],
            mentions=mentions,
            reactions=reactions,
        )

    def _thread_replies(self, comments: list[Comment]) -> None:
        """Make some comments replies to an earlier top-level comment (``parent``/``children``)."""
        for index in range(1, len(comments)):
            if self.rng.random() < 0.15:
                parent = self.rng.choice(
                    [c for c in comments[:index] if c.parent_key is None] or [None]
                )
                if (
                    parent is not None
                    and comments[index].parent_key is None
                    and not comments[index].child_keys
                ):
                    comments[index].parent_key = parent.key
                    parent.child_keys.append(comments[index].key)

    def meeting(self, humans: list[User], start: int, end: int) -> Meeting:
        rng = self.rng
        call = rng.random() < 0.4
        started = self.between(start, end - 2 * HOUR_MS)
        duration = rng.randint(2, 45) * MINUTE_MS if call else rng.randint(3, 12) * 5 * MINUTE_MS
        roll = rng.random()
        if roll < 0.15:
            notes = ""
        elif call:
            notes = rng.choice(self.text.sentences)
        else:
            notes = rng.choice(self.text.paragraphs)
        return Meeting(
            key=self.key("Meeting"),
            creator_key=rng.choice(humans).key,
            meeting_type="CALL_LOG" if call else "MEETING_NOTES",
            start_ms=started,
            duration_ms=duration,
            notes=notes,
            creation_ms=min(end, started + duration + rng.randint(0, 30) * MINUTE_MS),
        )

    # ------------------------------------------------------------------ newsfeed

    def build_newsfeed(self, pipeline: Pipeline, humans: list[User]) -> list[NewsfeedEntry]:
        """The 50 newest events: pipeline/stage/field creation, box creation and stage moves."""
        candidates: list[tuple[int, str, str, str, dict[str, Any], str | None, str]] = [
            (
                pipeline.creation_ms,
                "PIPELINE",
                "CREATE",
                "PIPELINE_CREATED",
                {"pipelineName": pipeline.name},
                None,
                pipeline.creator_key,
            )
        ]
        for offset, stage in enumerate(pipeline.stages, start=1):
            candidates.append(
                (
                    pipeline.creation_ms + offset * 1000,
                    "PIPELINE",
                    "CREATE",
                    "STAGE_CREATED",
                    {"stageKey": stage.key, "stageName": stage.name},
                    None,
                    pipeline.creator_key,
                )
            )
        for field in pipeline.fields:
            candidates.append(
                (
                    field.updated_ms,
                    "PIPELINE",
                    "CREATE",
                    "FIELD_CREATED",
                    {"fieldKey": field.key, "fieldName": field.name, "fieldType": field.type},
                    None,
                    pipeline.creator_key,
                )
            )
        stage_names = {s.key: s.name for s in pipeline.stages}
        first_stage = pipeline.stage_order[0]
        for box in pipeline.boxes:
            candidates.append(
                (
                    box.creation_ms,
                    "BOX",
                    "CREATE",
                    "BOX_CREATED",
                    {"boxName": box.name},
                    box.key,
                    box.creator_key,
                )
            )
            if box.stage_key != first_stage and box.stage_change_ms > box.creation_ms:
                candidates.append(
                    (
                        box.stage_change_ms,
                        "BOX",
                        "UPDATE",
                        "BOX_STAGE_CHANGED",
                        {
                            "boxName": box.name,
                            "oldStageKey": first_stage,
                            "oldStageName": stage_names[first_stage],
                            "newStageKey": box.stage_key,
                            "newStageName": stage_names[box.stage_key],
                        },
                        box.key,
                        box.creator_key,
                    )
                )
        candidates.sort(key=lambda c: (c[0], c[3], c[5] or ""), reverse=True)
        return [
            NewsfeedEntry(
                key=self.key("NewsfeedEntry"),
                creator_key=creator,
                timestamp=timestamp,
                scope=scope,
                operation=operation,
                specific=specific,
                variables=variables,
                box_key=box_key,
            )
            for timestamp, scope, operation, specific, variables, box_key, creator in candidates[
                :NEWSFEED_CAP
            ]
        ]


def _person_value(user: User) -> dict[str, str]:
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
                    rng.randint(12, 30) if index in busy_set else rng.choice(typical)
                )

    def counts(self, index: int) -> dict[str, int]:
        return self._counts[index]
