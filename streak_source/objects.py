"""Every Streak object the source loads, as one table: where it is read, how it pages (its
:class:`~streak_source.settings.Endpoint`), its primary key and how a row is built.

:data:`ACCOUNT_OBJECTS` are read once per run (per team or per pipeline where their path says so);
:data:`BOX_CHILDREN` once per box, skipped when the box's own counters say they are empty and reused
from the refresh basis when the box did not change; :data:`BOX_NEWSFEED` only for the boxes the
history plan picks. streak_source/resources.py turns each row into a dlt resource (the one place
that does), streak_source/reader.py does the HTTP, streak_source/transform.py builds the rows and
streak_source/columns.py types their columns. Derived tables without an endpoint of their own
(``box_field_values``, ``box_task_assignees``) and the run's own tables (``rejected_records``,
``refresh_basis*``) are declared in resources.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from streak_source import settings, transform
from streak_source.client import RunReport
from streak_source.keys import entity_key
from streak_source.reader import StreakReader
from streak_source.settings import Endpoint

__all__ = ["ACCOUNT_OBJECTS", "BOX_CHILDREN", "BOX_NEWSFEED", "AccountObject", "BoxChild", "Parent", "Per"]

Row = dict[str, Any]

Per = Literal["account", "team", "pipeline"]
"""What an account-level object is read under: the account itself, each keyed team or each keyed
pipeline (its key fills the endpoint's ``{team_key}`` / ``{pipeline_key}``)."""


@dataclass(frozen=True)
class Parent:
    """The team or pipeline a list is read under (``obj`` and ``key`` None: the account)."""

    obj: dict[str, Any] | None
    key: str | None
    me_key: Callable[[], str | None] = field(repr=False, compare=False)
    """Your user key (one call, made only when a row builder asks)."""


RowBuilder = Callable[[Any, Parent], Row]
"""(raw item, its parent) -> the row to load; None in a primary-key column sends the item to
``rejected_records``."""
RowsBuilder = Callable[[dict[str, Any]], list[Row]]
"""A parent object -> the rows of a table embedded in it as a whole (stages keep the pipeline's order)."""
Read = Callable[[StreakReader, "AccountObject", Parent], Iterable[list[Any]]]
"""How the raw items are read, in batches (each batch is built and emitted together)."""


def read_endpoint(reader: StreakReader, obj: AccountObject, parent: Parent) -> Iterable[list[Any]]:
    """The usual read: the object's endpoint under its parent, once per run (shared with lookups)."""
    if parent.key is None:
        return [reader.read(obj.endpoint)]
    return [reader.read(obj.endpoint, **{f"{obj.per}_key": parent.key})]


def _users(reader: StreakReader, _obj: AccountObject, _parent: Parent) -> Iterable[list[Any]]:
    """You (``v1/users/me``), then every user of every team (``endpoint``), each once."""
    return [reader.users()]


def _members(_reader: StreakReader, _obj: AccountObject, team: Parent) -> Iterable[list[Any]]:
    """A team's ``members``, embedded in the team list: no call of their own."""
    return [transform.team_members(team.obj)]


def _box_pages(reader: StreakReader, _obj: AccountObject, pipeline: Parent) -> Iterable[list[Any]]:
    """The pipeline's boxes page by page (bounded by its ``boxCount``; none asked when it is 0)."""
    return reader.box_pages(pipeline.obj or {})


@dataclass(frozen=True)
class AccountObject:
    """One account-level table. Exactly one of ``build_row`` (a row per item read) and ``build_rows``
    (rows embedded in the parent object, no call of their own) is given."""

    table: str
    endpoint: Endpoint
    """Where its items are read (embedded tables: the endpoint whose answer carries them)."""
    primary_key: tuple[str, ...]
    build_row: RowBuilder | None = field(default=None, repr=False, compare=False)
    build_rows: RowsBuilder | None = field(default=None, repr=False, compare=False)
    per: Per = "account"
    read: Read = field(default=read_endpoint, repr=False, compare=False)
    deferred: bool = False
    """One call per parent, run in dlt's extract thread pool."""
    listed: Callable[[RunReport, int], None] | None = field(default=None, repr=False, compare=False)
    """Told how many rows each batch gave (the boxes read, for progress and the summary)."""

    def __post_init__(self) -> None:
        if (self.build_row is None) == (self.build_rows is None):
            raise ValueError(f"{self.table}: give exactly one of build_row and build_rows")


def without_parent(build: Callable[[Any], Row]) -> RowBuilder:
    """A row builder that needs no parent."""
    return lambda item, _parent: build(item)


ACCOUNT_OBJECTS: Final[tuple[AccountObject, ...]] = (
    AccountObject("users", settings.TEAM_USERS, ("user_key",), read=_users,
                  build_row=lambda user, p: transform.user_row(user, entity_key(user, "userKey") == p.me_key())),
    AccountObject("teams", settings.TEAMS, ("team_key",), without_parent(transform.team_row)),
    AccountObject("team_members", settings.TEAMS, ("team_key", "user_key"), per="team", read=_members,
                  build_row=lambda member, team: transform.team_member_row(member, team.key)),
    AccountObject("pipelines", settings.PIPELINES, ("pipeline_key",), without_parent(transform.pipeline_row)),
    AccountObject("stages", settings.PIPELINES, ("pipeline_key", "stage_key"), per="pipeline",
                  build_rows=transform.stage_rows),
    AccountObject("pipeline_fields", settings.PIPELINES, ("pipeline_key", "field_key"), per="pipeline",
                  build_rows=lambda pipeline: transform.pipeline_field_rows(pipeline)[0]),
    AccountObject("pipeline_field_options", settings.PIPELINES, ("pipeline_key", "field_key", "option_key"),
                  per="pipeline", build_rows=lambda pipeline: transform.pipeline_field_rows(pipeline)[1]),
    AccountObject("pipeline_newsfeed", settings.PIPELINE_NEWSFEED, ("newsfeed_key",), per="pipeline", deferred=True,
                  build_row=lambda entry, pipeline: transform.newsfeed_row(entry, pipeline.key)),
    AccountObject("snippets", settings.SNIPPETS, ("snippet_key",), without_parent(transform.snippet_row)),
    AccountObject("contacts", settings.CONTACTS, ("contact_key",), without_parent(transform.contact_row), per="team"),
    AccountObject("organizations", settings.ORGANIZATIONS, ("organization_key",), per="team",
                  build_row=without_parent(transform.organization_row)),
    AccountObject("boxes", settings.BOXES, ("box_key",), per="pipeline", read=_box_pages, listed=RunReport.boxes_listed,
                  build_row=lambda box, pipeline: transform.box_row(box, transform.stage_names(pipeline.obj))),
)
"""The account-level tables, in the order their resources are extracted; ``boxes`` is the parent of
every per-box table."""


BoxRowBuilder = Callable[[Any, dict[str, Any]], Row]
"""(child item, parent box row) -> the row to load; see streak_source/transform.py."""


@dataclass(frozen=True)
class BoxChild:
    """One per-box table: where it is read, which box counters say it is empty, its key and row builder."""

    table: str
    endpoint: Endpoint
    """Path with ``{box_key}``; a paged endpoint is bounded by the counters' sum."""
    primary_key: str
    build_row: BoxRowBuilder = field(repr=False, compare=False)
    counters: tuple[str, ...] = ()
    """Box fields whose sum is the number of child items; all zero means the call is skipped."""


BOX_CHILDREN: Final[tuple[BoxChild, ...]] = (
    BoxChild("box_tasks", settings.BOX_TASKS, "task_key", transform.task_row, ("taskTotal",)),
    BoxChild("box_threads", settings.BOX_THREADS, "thread_key", transform.thread_row, ("gmailThreadCount",)),
    BoxChild("box_comments", settings.BOX_COMMENTS, "comment_key", transform.comment_row, ("commentCount",)),
    BoxChild("box_meetings", settings.BOX_MEETINGS, "meeting_key", transform.meeting_row,
             ("meetingNotesCount", "callLogCount")),
    BoxChild("box_files", settings.BOX_FILES, "file_key", transform.file_row, ("fileCount",)),
)
"""The per-box child tables read for every box (benchmarks and the source read this one table)."""

BOX_NEWSFEED: Final = BoxChild("box_newsfeed", settings.BOX_NEWSFEED, "newsfeed_key", transform.box_newsfeed_row)
"""The per-box newsfeed. Not in :data:`BOX_CHILDREN`: no box counter says it is empty, and a full load
does not read it. Which boxes it is read for is decided by streak_source/history_calls.py (new boxes
and boxes whose stage moved)."""
