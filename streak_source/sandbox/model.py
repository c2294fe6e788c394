"""The sandbox account as plain data: what exists, not how Streak renders it.

The generator (`account.py`) fills these; the renderer (`render.py`) turns them into Streak's JSON.
Box counters (``taskTotal``, ``commentCount``, ...) are deliberately NOT stored here: the renderer
derives them from the children a box actually holds, so they cannot disagree with what is served.
All times are integer epoch milliseconds (UTC); ``None`` means "absent".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from .sales_process import PipelineProcess


class _Drop:
    """The value of a :data:`Patch` entry that removes the property from the rendered object."""

    def __repr__(self) -> str:
        return "DROP"


DROP: Final = _Drop()

Patch = dict[str, Any]
"""Raw JSON edits applied last when an entity is rendered: a value replaces or adds the property,
:data:`DROP` removes it. Only the hostile account uses them (a box without ``boxKey``, a box with
extra properties whose names collide after snake_case, ...); the default account has none."""


def keyless(patch: Patch) -> bool:
    """True when the rendered entity carries no key at all (hostile account): its ``key`` (or,
    for a team member, ``userKey``) is dropped."""
    return patch.get("key") is DROP or patch.get("userKey") is DROP

NEWSFEED_CAP: Final = 50
"""Streak returns at most the 50 most recent newsfeed events (streak_api.md 6.13)."""

FIELD_TYPES: tuple[str, ...] = (
    "TEXT_INPUT",
    "DROPDOWN",
    "CHECKBOX",
    "DATE",
    "PERSON",
    "FORMULA",
    "TAG",
    "TEAM_CONTACT",
    "TEAM_ORGANIZATION",
)
"""Streak's FIELD_TYPE enum (streak_api.md section 6.5)."""


@dataclass(slots=True)
class User:
    key: str
    email: str
    given_name: str
    family_name: str
    display_name: str
    image: str
    timezone_id: str
    user_type: str  # HUMAN | AGENT
    creation_ms: int
    last_seen_ms: int | None

    @property
    def full_name(self) -> str:
        return f"{self.given_name} {self.family_name}".strip()


@dataclass(slots=True)
class TeamMember:
    user: User
    role: str  # Owner | Member | PayerOnly | ArchiveOnly
    invite_status: str  # Accepted | Pending
    invite_ms: int
    patch: Patch = field(default_factory=dict)


@dataclass(slots=True)
class Option:
    """A DROPDOWN item or a TAG of a field."""

    key: str
    label: str


@dataclass(slots=True)
class TeamField:
    """A custom field of team contacts or organizations (values are strings)."""

    key: str
    name: str
    type: str
    options: list[Option] = field(default_factory=list)
    updated_ms: int = 0


@dataclass(slots=True)
class Team:
    key: str
    name: str
    creator_key: str
    creation_ms: int
    last_saved_ms: int
    members: list[TeamMember]
    contact_fields: list[TeamField]
    organization_fields: list[TeamField]


@dataclass(slots=True)
class Contact:
    key: str
    team_key: str
    given_name: str
    family_name: str
    title: str
    other: str
    email_addresses: list[str]
    phone_numbers: list[str]
    addresses: list[str]
    linkedin_handle: str | None
    twitter_handle: str | None
    photo_url: str | None
    creator_key: str
    creation_ms: int
    last_saved_ms: int
    enrichment_ms: int | None
    organization_keys: list[str]
    fields: dict[str, str]


@dataclass(slots=True)
class Organization:
    key: str
    team_key: str
    name: str
    other: str
    domains: list[str]
    industry: str
    phone_numbers: list[str]
    addresses: list[str]
    employee_count: str
    logo_url: str | None
    creator_key: str
    creation_ms: int
    last_saved_ms: int
    enrichment_ms: int | None
    contact_keys: list[str] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Stage:
    key: str
    name: str
    foreground_color: str
    background_color: str


@dataclass(slots=True)
class PipelineField:
    key: str
    name: str
    type: str
    options: list[Option]
    """DROPDOWN items or TAG tags (empty for other types)."""
    formula: str | None
    """FORMULA definition (rendered as ``defaultValue``)."""
    updated_ms: int


@dataclass(slots=True)
class Task:
    key: str
    creator_key: str
    assignee_keys: list[str]
    text: str
    done: bool
    due_ms: int | None
    creation_ms: int
    status_change_ms: int
    reminder_status: str
    patch: Patch = field(default_factory=dict)


@dataclass(slots=True)
class Email:
    """One message of a thread; only what the box's email aggregates need."""

    timestamp: int
    sent: bool
    sender: str


@dataclass(slots=True)
class Thread:
    key: str
    gmail_thread_key: str
    gmail_id: str
    creator_key: str
    subject: str
    names: list[str]
    email_addresses: list[str]
    emails: list[Email]
    """Oldest first; never empty."""
    file_keys: list[str]
    views: int
    patch: Patch = field(default_factory=dict)


@dataclass(slots=True)
class Reaction:
    emoji: str
    user_keys: list[str]


@dataclass(slots=True)
class Mention:
    user_key: str
    offset: int
    length: int


@dataclass(slots=True)
class Comment:
    key: str
    creator_key: str
    message: str
    timestamp: int
    parent_key: str | None
    child_keys: list[str]
    mentions: list[Mention]
    reactions: list[Reaction]


@dataclass(slots=True)
class Meeting:
    key: str
    creator_key: str
    meeting_type: str  # MEETING_NOTES | CALL_LOG
    start_ms: int
    duration_ms: int
    notes: str
    creation_ms: int


@dataclass(slots=True)
class File:
    key: str
    owner_key: str
    main_file_name: str
    extension: str
    mime_type: str
    size: int
    file_type: str  # GMAIL_API | DRIVE
    thread_key: str | None
    creation_ms: int

    @property
    def file_name(self) -> str:
        return f"{self.main_file_name}.{self.extension}"


@dataclass(slots=True)
class BoxLink:
    """An entry of ``box.contacts`` / ``box.organizations``."""

    key: str
    starred: bool
    autoboxed: bool


@dataclass(slots=True)
class Box:
    key: str
    pipeline_key: str
    name: str
    notes: str
    stage_key: str | None
    """None only in the hostile account (rendered as ``"stageKey": null``)."""
    fields: dict[str, Any]
    """Rendered as is: Streak's encodings per field type (see account.py)."""
    creator_key: str
    assignee_keys: list[str]
    follower_keys: list[str]
    contact_links: list[BoxLink]
    organization_links: list[BoxLink]
    linked_box_keys: list[str]
    email_addresses: list[str]
    creation_ms: int
    last_updated_ms: int
    stage_change_ms: int
    """``lastStageChangeTimestamp``: the time of the last entry of ``stage_path``."""
    stage_path: list[tuple[str, int]] = field(default_factory=list)
    """Every stage the box was in, ``(stage key, entered at ms)``, oldest first; the first entry
    is its creation. The ONE record of its moves: its newsfeed's ``NEW_BOX``/``EDIT_STAGE``
    entries are built from it and sandbox time appends to it (the timeline's ``history()`` is
    these lists). Not rendered: Streak serves no such list."""
    tasks: list[Task] = field(default_factory=list)
    threads: list[Thread] = field(default_factory=list)
    comments: list[Comment] = field(default_factory=list)
    meetings: list[Meeting] = field(default_factory=list)
    files: list[File] = field(default_factory=list)
    patch: Patch = field(default_factory=dict)
    null_items: tuple[str, ...] = ()
    """Child lists (``"tasks"``, ``"threads"``, ...) served with a ``null`` item at the end."""


@dataclass(slots=True)
class NewsfeedEntry:
    """One history event in Streak's newsfeed shape (streak_api.md 6.13)."""

    key: str
    """Rendered as ``newsfeedItemKey``."""
    creator_key: str
    timestamp: int
    scope: str  # BOX | PIPELINE
    operation: str  # CREATE | UPDATE | DELETE
    specific: str
    """``NEW_BOX``, ``EDIT_STAGE``, ``ADD_TASK``, ``ADD_MEETING``."""
    variables: dict[str, Any]
    """UPPER_SNAKE keys: ``BOX_NAME``, ``PIPELINE_NAME``, ``STAGE_KEY``, ..."""
    pipeline_key: str
    box_key: str | None
    story_box: str = ""
    story_pipeline: str = ""
    story_global: str = ""


@dataclass(slots=True)
class Pipeline:
    key: str
    name: str
    description: str | None
    creator_key: str
    team_key: str | None
    stages: list[Stage]
    """In creation (key) order; display order is ``stage_order``."""
    stage_order: list[str]
    fields: list[PipelineField]
    acl_user_keys: list[str]
    creation_ms: int
    last_updated_ms: int
    boxes: list[Box] = field(default_factory=list)
    events: list[NewsfeedEntry] = field(default_factory=list)
    """Every history event of the pipeline and its boxes, newest first."""
    icon: str = "pipeline"
    patch: Patch = field(default_factory=dict)

    @property
    def newsfeed(self) -> list[NewsfeedEntry]:
        """What the pipeline newsfeed serves: the 50 newest events (Streak's cap)."""
        return self.events[:NEWSFEED_CAP]


@dataclass(slots=True)
class Snippet:
    key: str
    user_key: str
    name: str
    text: str
    snippet_type: str  # TEXT | HTML
    part_of_pipeline: bool
    creation_ms: int


@dataclass(slots=True)
class Account:
    """A whole generated Streak account plus lookup indexes the server needs."""

    seed: int
    box_count: int
    anchor_ms: int
    """The account's "now": all history is before it, future due dates after it. On day 0 it is
    midnight UTC of the anchor date; sandbox time (timeline.py) moves it on a day per day."""
    me: User
    users: dict[str, User]
    """Every user of the account (me and every team user), by key."""
    teams: list[Team]
    pipelines: list[Pipeline]
    snippets: list[Snippet]
    contacts: dict[str, list[Contact]]
    """Team contacts by team key, in the order the list endpoint serves them (by key)."""
    organizations: dict[str, list[Organization]]
    """Team organizations by team key, ordered by key."""
    name: str = "default"
    """``default`` or ``hostile`` (see hostile.py)."""
    day: int = 0
    """Simulated days since the generated account (timeline.py); 0 = as generated."""
    processes: dict[str, PipelineProcess] = field(default_factory=dict)
    """Pipeline key -> the sales process its boxes move by (sales_process.py; the pipelines with
    boxes), resolved to stage keys when the account was generated."""
    boxes_by_key: dict[str, Box] = field(default_factory=dict)
    pipelines_by_key: dict[str, Pipeline] = field(default_factory=dict)
    teams_by_key: dict[str, Team] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.pipelines_by_key = {pipeline.key: pipeline for pipeline in self.pipelines}
        # A keyless pipeline or box (hostile account) is still indexed: the key is only dropped
        # from what is rendered, so no client can ever name it in a path.
        self.teams_by_key = {team.key: team for team in self.teams}
        self.boxes_by_key = {box.key: box for pipeline in self.pipelines for box in pipeline.boxes}

    def all_boxes(self) -> list[Box]:
        return [box for pipeline in self.pipelines for box in pipeline.boxes]
