"""What the source knows about Streak's API: paths, paging, page sizes, limits.

Kept apart from the HTTP code so the sandbox (which must count the calls a complete
extraction needs) and the benchmarks read the very same numbers the source uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

DEFAULT_BASE_URL: Final = "https://api.streak.com/api/"
"""Streak's current API root; every path below is relative to it (``v1/...``, ``v2/...``)."""

DEFAULT_MAX_REQUESTS_PER_SECOND: Final = 10.0
"""Streak asks clients to stay at or under 10 requests/second (FAQ)."""

DEFAULT_MAX_WORKERS: Final = 8
"""Requests in flight at once. With ~100-150 ms of latency per call, 8 workers are enough to
saturate a 10-40 req/s limit; the shared rate limiter, not this number, sets the pace."""

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

NEWSFEED_DETAIL_LEVEL: Final = "ALL"


@dataclass(frozen=True)
class ChildEndpoint:
    """A per-box child endpoint and the box counters that say whether it has anything to return."""

    table: str
    path: str
    paged: bool
    """True: v2 `{results, hasNextPage}` envelope with `page`/`limit`; False: v1 plain array."""
    page_size_attr: str | None
    counters: tuple[str, ...]
    """Box fields whose sum is the number of child items; all zero means the call is skipped."""


CHILD_ENDPOINTS: Final[tuple[ChildEndpoint, ...]] = (
    ChildEndpoint("box_tasks", BOX_TASKS_PATH, True, "tasks", ("taskTotal",)),
    ChildEndpoint("box_threads", BOX_THREADS_PATH, False, None, ("gmailThreadCount",)),
    ChildEndpoint("box_comments", BOX_COMMENTS_PATH, True, "comments", ("commentCount",)),
    ChildEndpoint(
        "box_meetings", BOX_MEETINGS_PATH, True, "meetings", ("meetingNotesCount", "callLogCount")
    ),
    ChildEndpoint("box_files", BOX_FILES_PATH, False, None, ("fileCount",)),
)
