"""A deterministic Streak account: the sandbox's ground truth (data only, no HTTP).

``generate_account(seed, boxes, anchor_date, account)`` returns the same account for the same
inputs; ``account="hostile"`` plants bad input in it (hostile.py). Shape of the default account
(``boxes=300``):

* me plus a team of 7 users (me as Owner, humans from several locales, one pending invite,
  one AGENT); team contacts (boxes/2) and organizations (boxes/5), with team custom fields;
* 3 pipelines: "Sales" (60 % of the boxes; custom fields of all nine types, a stage that holds
  no box and is not last in ``stageOrder``), "Hiring" (40 %), and an empty personal pipeline
  "Partnerships 🤝" (``boxCount`` 0, ``teamKey`` null): "3 pipelines" = 2 with boxes + 1 empty;
* per box children with exact shares of boxes having at least one: tasks 60 %, email threads
  70 %, comments 50 %, meetings/call logs 30 %, files 30 %; about 1 % of boxes (at least 3) are
  "busy" with 12-30 children of every kind, more than a page holds at small page sizes (the
  busiest with 30 of each, so its newsfeed history is longer than the 50 entries served);
* every box's past: created over the 14 months before the anchor, it moved through its pipeline by
  the pipeline's sales process (sales_process.py, generate_paths.py): most old boxes are closed
  (Won, Lost, Hired, Rejected), recent ones are still open; "On hold" is passed through but holds
  no box; deal sizes and salary expectations are drawn from the process's value model;
* snippets, and every box's history in the newsfeed shape (generate_newsfeed.py), one entry per
  move, so ``lastStageChangeTimestamp`` is always its last move (or its creation); a pipeline's
  newsfeed serves its 50 newest events.

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

from datetime import date
from typing import Final

from .generate_boxes import BoxBuilder
from .generate_newsfeed import NEWSFEED_CAP, NewsfeedBuilder
from .generator import DAY_MS, HOUR_MS, MINUTE_MS, anchor_ms_for, foreground_for
from .hostile import HostileEditor
from .keys import datastore_key, team_entity_key
from .model import (
    Account,
    Contact,
    Option,
    Organization,
    Pipeline,
    PipelineField,
    Snippet,
    Stage,
    Team,
    TeamField,
    TeamMember,
    User,
)
from .text import ascii_slug

DEFAULT_SEED: Final = 7
DEFAULT_BOX_COUNT: Final = 300

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
HIRING_SOURCES: Final = ("LinkedIn", "Referral", "Job board", "Agency")
SALES_TAGS: Final = ("enterprise", "renewal", "🔥 hot lead", "partner", "inbound", "Übernahme")

__all__ = [
    "ACCOUNT_KINDS",
    "DEFAULT_BOX_COUNT",
    "DEFAULT_SEED",
    "NEWSFEED_CAP",
    "anchor_ms_for",
    "generate_account",
]


ACCOUNT_KINDS: Final = ("default", "hostile")


def generate_account(
    seed: int = DEFAULT_SEED,
    boxes: int = DEFAULT_BOX_COUNT,
    anchor_date: date | str | None = None,
    account: str = "default",
) -> Account:
    """The account for this seed, box count, anchor day and kind (identical inputs, identical
    account). ``account="hostile"``: see hostile.py."""
    if boxes < 0:
        raise ValueError("boxes must be >= 0")
    if account not in ACCOUNT_KINDS:
        raise ValueError(f"unknown account {account!r}; known: {', '.join(ACCOUNT_KINDS)}")
    return _AccountBuilder(seed, boxes, anchor_ms_for(anchor_date)).build(account)


class _AccountBuilder(BoxBuilder, NewsfeedBuilder, HostileEditor):
    """One generation run: people, teams, contacts, snippets and pipelines here; boxes, children
    and newsfeed in the builders it inherits (one RNG, drawn in a fixed order)."""

    def build(self, kind: str = "default") -> Account:
        users = self.build_users()
        me = users[0]
        team = self.build_team(users)
        contacts, organizations = self.build_contacts_and_organizations(team)
        pipelines = self.build_pipelines(team, users)
        humans = [u for u in users if u.user_type == "HUMAN"]
        self.build_boxes(pipelines, humans, contacts, organizations)
        if kind == "hostile":
            self.make_hostile(pipelines, users, team)
        users_by_key = {user.key: user for user in users}
        for pipeline in pipelines:
            pipeline.events = self.build_events(pipeline, users_by_key)
        return Account(
            seed=self.seed,
            box_count=self.box_count,
            anchor_ms=self.now,
            me=me,
            users=users_by_key,
            teams=[team],
            pipelines=pipelines,
            snippets=self.build_snippets(me),
            contacts={team.key: sorted(contacts, key=lambda c: c.key)},
            organizations={team.key: sorted(organizations, key=lambda o: o.key)},
            name=kind,
            processes=self.processes,
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
            stages.append(Stage(str(5001 + index), name, foreground_for(background), background))
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
            icon="briefcase",
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
            icon="person",
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
            icon="handshake",
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
