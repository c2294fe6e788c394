"""What the source knows about Streak's API: paths, paging, page sizes, limits.

Kept apart from the HTTP code so the sandbox (which must count the calls a complete
extraction needs) and the benchmarks read the very same numbers the source uses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from streak_source import transform

DEFAULT_BASE_URL: Final = "https://api.streak.com/api/"
"""Streak's current API root; every path below is relative to it (``v1/...``, ``v2/...``)."""

DEFAULT_MAX_REQUESTS_PER_SECOND: Final = 10.0
"""Streak asks clients to stay at or under 10 requests/second (FAQ)."""

MAX_PAGE_SIZE: Final = 1000
"""The largest `limit` Streak documents (tasks: 1..1000; contacts/organizations: capped at 1000).
Endpoints with no documented cap use it too."""


@dataclass(frozen=True)
class PageSizes:
    """`limit` sent to each paged endpoint. Tests shrink these to exercise paging."""

    boxes: int = MAX_PAGE_SIZE
    tasks: int = MAX_PAGE_SIZE
    comments: int = MAX_PAGE_SIZE
    meetings: int = MAX_PAGE_SIZE
    teams: int = MAX_PAGE_SIZE
    team_users: int = MAX_PAGE_SIZE
    contacts: int = MAX_PAGE_SIZE
    organizations: int = MAX_PAGE_SIZE


DEFAULT_PAGE_SIZES: Final = PageSizes()

# Paths relative to the base URL. v1 vs v2 is per resource in Streak's API.
ME_PATH: Final = "v1/users/me"
TEAMS_PATH: Final = "v2/users/me/teams"
TEAM_USERS_PATH: Final = "v2/teams/{team_key}/users"
PIPELINES_PATH: Final = "v1/pipelines"
BOXES_PATH: Final = "v1/pipelines/{pipeline_key}/boxes"
PIPELINE_NEWSFEED_PATH: Final = "v1/pipelines/{pipeline_key}/newsfeed"
SNIPPETS_PATH: Final = "v1/snippets"
CONTACTS_PATH: Final = "v2/teams/{team_key}/contacts"
ORGANIZATIONS_PATH: Final = "v2/teams/{team_key}/organizations"
BOX_TASKS_PATH: Final = "v2/boxes/{box_key}/tasks"
BOX_THREADS_PATH: Final = "v1/boxes/{box_key}/threads"
BOX_COMMENTS_PATH: Final = "v2/boxes/{box_key}/comments"
BOX_MEETINGS_PATH: Final = "v2/boxes/{box_key}/meetings"
BOX_FILES_PATH: Final = "v1/boxes/{box_key}/files"
BOX_NEWSFEED_PATH: Final = "v1/boxes/{box_key}/newsfeed"

NEWSFEED_DETAIL_LEVEL: Final = "ALL"
"""``detailLevel`` of both newsfeeds (pipeline and per box): every entry, not the condensed view."""


RowBuilder = Callable[[Any, dict[str, Any]], dict[str, Any]]
"""(child item, parent box row) -> the row to load; see streak_source/transform.py."""


@dataclass(frozen=True)
class ChildEndpoint:
    """Everything about one per-box child table, in one place: where it is read, how it pages,
    which box counters say it is empty, how a row is built and its key (its columns:
    streak_source/columns.py)."""

    table: str
    path: str
    paged: bool
    """True: v2 `{results, hasNextPage}` envelope with `page`/`limit`; False: v1 plain array."""
    page_size_attr: str | None
    counters: tuple[str, ...]
    """Box fields whose sum is the number of child items; all zero means the call is skipped."""
    build_row: RowBuilder = field(repr=False, compare=False)
    key_column: str
    params: tuple[tuple[str, str], ...] = ()
    """Query parameters sent with every call (besides paging)."""


CHILD_ENDPOINTS: Final[tuple[ChildEndpoint, ...]] = (
    ChildEndpoint(
        "box_tasks", BOX_TASKS_PATH, True, "tasks", ("taskTotal",), transform.task_row, "task_key",
    ),
    ChildEndpoint(
        "box_threads", BOX_THREADS_PATH, False, None, ("gmailThreadCount",), transform.thread_row, "thread_key",
    ),
    ChildEndpoint(
        "box_comments", BOX_COMMENTS_PATH, True, "comments", ("commentCount",), transform.comment_row,
        "comment_key",
    ),
    ChildEndpoint(
        "box_meetings", BOX_MEETINGS_PATH, True, "meetings", ("meetingNotesCount", "callLogCount"),
        transform.meeting_row, "meeting_key",
    ),
    ChildEndpoint("box_files", BOX_FILES_PATH, False, None, ("fileCount",), transform.file_row, "file_key"),
)
"""The per-box child tables (benchmarks and the source read this one table)."""

BOX_NEWSFEED: Final = ChildEndpoint(
    "box_newsfeed", BOX_NEWSFEED_PATH, False, None, (), transform.box_newsfeed_row, "newsfeed_key",
    (("detailLevel", NEWSFEED_DETAIL_LEVEL),),
)
"""The per-box newsfeed (streak_api.md 6.13: a plain array of the box's 50 newest events). Not in
:data:`CHILD_ENDPOINTS`: no box counter says it is empty, and a full load does not read it. Which boxes
it is read for is decided by streak_source/history_calls.py (new boxes and boxes whose stage moved)."""
