"""What the source knows about Streak's API: endpoints (path and paging), page sizes, limits.

Constants only, kept apart from the HTTP code (streak_source/client.py, reader.py) and from the table
of objects built from them (streak_source/objects.py), so the sandbox contract test and the benchmarks
read the very same numbers the source uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

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

Paging = Literal["object", "array", "page", "cursor"]
"""How an endpoint answers: one object; a plain array (v1); ``{results, hasNextPage}`` page envelopes
taking ``page``/``limit`` (v2); or cursor pages taking ``limit`` (v2 contacts, organizations)."""


@dataclass(frozen=True)
class Endpoint:
    """One path of Streak's API and how it is read."""

    path: str
    """Relative to the base URL (v1 vs v2 is per resource in Streak's API); ``{team_key}``-style
    placeholders are filled per parent."""
    paging: Paging
    page_size: str | None = None
    """The :class:`PageSizes` field giving its ``limit`` (paged endpoints only)."""
    params: tuple[tuple[str, str], ...] = ()
    """Query parameters sent with every call (besides paging)."""

    @property
    def paged(self) -> bool:
        """True for the v2 page envelope (the one paging a box's counters can bound)."""
        return self.paging == "page"


NEWSFEED_DETAIL_LEVEL: Final = "ALL"
"""``detailLevel`` of both newsfeeds (pipeline and per box): every entry, not the condensed view."""

_NEWSFEED_PARAMS: Final = (("detailLevel", NEWSFEED_DETAIL_LEVEL),)

ME: Final = Endpoint("v1/users/me", "object")
TEAMS: Final = Endpoint("v2/users/me/teams", "page", "teams")
TEAM_USERS: Final = Endpoint("v2/teams/{team_key}/users", "page", "team_users")
PIPELINES: Final = Endpoint("v1/pipelines", "array")
BOXES: Final = Endpoint("v1/pipelines/{pipeline_key}/boxes", "page", "boxes")
"""Streak may answer the box list with the page envelope or a plain array: both are read."""
PIPELINE_NEWSFEED: Final = Endpoint("v1/pipelines/{pipeline_key}/newsfeed", "array", params=_NEWSFEED_PARAMS)
SNIPPETS: Final = Endpoint("v1/snippets", "array")
CONTACTS: Final = Endpoint("v2/teams/{team_key}/contacts", "cursor", "contacts")
ORGANIZATIONS: Final = Endpoint("v2/teams/{team_key}/organizations", "cursor", "organizations")
BOX_TASKS: Final = Endpoint("v2/boxes/{box_key}/tasks", "page", "tasks")
BOX_THREADS: Final = Endpoint("v1/boxes/{box_key}/threads", "array")
BOX_COMMENTS: Final = Endpoint("v2/boxes/{box_key}/comments", "page", "comments")
BOX_MEETINGS: Final = Endpoint("v2/boxes/{box_key}/meetings", "page", "meetings")
BOX_FILES: Final = Endpoint("v1/boxes/{box_key}/files", "array")
BOX_NEWSFEED: Final = Endpoint("v1/boxes/{box_key}/newsfeed", "array", params=_NEWSFEED_PARAMS)
"""The per-box newsfeed (streak_api.md 6.13: a plain array of the box's 50 newest events)."""
