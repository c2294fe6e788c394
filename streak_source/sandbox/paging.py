"""Streak's paging shapes, implemented exactly so the minimum call count is knowable.

* v2 ``page``/``limit`` (0-based ``page``): ``{"results": [...], "hasNextPage": bool}``, where
  ``hasNextPage`` is true iff items remain after this page (so a full last page says false).
* team contacts/organizations: ``{"results": [...], "cursor": str | null}``; ``cursor`` is null as
  soon as nothing remains after this page (never a trailing empty page).
* every ``limit`` is capped at :data:`LIMIT_CAP`; ``limit < 1`` or ``page < 0`` is a 400.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, Final

MAX_PAGE_SIZE: Final = 1000
"""The largest ``limit`` Streak documents (tasks 1..1000; contacts/organizations capped at 1000)."""

LIMIT_CAP: Final = MAX_PAGE_SIZE
"""The largest ``limit`` any sandbox endpoint honours: Streak's documented maximum, applied to
every paged endpoint (the reference documents no other cap)."""


@dataclass(frozen=True)
class PageSizes:
    """The ``limit`` a client sends to each paged endpoint; only used to count ``needed_calls``.

    The names are the paged list endpoints a complete extraction reads. A client that sends the
    largest page Streak allows (as the loader does by default) needs nothing else; tests that
    shrink pages pass a mapping (``{"tasks": 2}``) or any object with these attributes.
    """

    boxes: int = MAX_PAGE_SIZE
    tasks: int = MAX_PAGE_SIZE
    comments: int = MAX_PAGE_SIZE
    meetings: int = MAX_PAGE_SIZE
    teams: int = MAX_PAGE_SIZE
    team_users: int = MAX_PAGE_SIZE
    contacts: int = MAX_PAGE_SIZE
    organizations: int = MAX_PAGE_SIZE


DEFAULT_PAGE_SIZES: Final = PageSizes()

DEFAULT_LIMIT: Final = 100
"""``limit`` when a paged endpoint is asked without one (contacts/orgs: documented default)."""

_CURSOR_PREFIX: Final = "after:"


@dataclass(frozen=True)
class Window:
    """One page of a list: ``items[start:end]``, and whether anything remains after it."""

    start: int
    end: int
    has_next: bool


def page_window(total: int, page: int, limit: int) -> Window:
    start = min(total, page * limit)
    end = min(total, start + limit)
    return Window(start, end, end < total)


def encode_cursor(last_key: str) -> str:
    """Opaque cursor = the last key served (lists are ordered by key)."""
    return base64.urlsafe_b64encode((_CURSOR_PREFIX + last_key).encode()).decode()


def decode_cursor(cursor: str) -> str | None:
    """The last key served before this cursor, or None if the cursor is not one of ours."""
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if not text.startswith(_CURSOR_PREFIX):
        return None
    return text[len(_CURSOR_PREFIX) :]


def coerce_page_sizes(value: object) -> PageSizes:
    """``None`` -> Streak's maximum everywhere; a mapping overrides just the names it gives; any
    other object (e.g. the loader's own page-size dataclass) is read by attribute name."""
    if value is None:
        return DEFAULT_PAGE_SIZES
    if isinstance(value, PageSizes):
        return value
    known = {f.name for f in fields(PageSizes)}
    if not isinstance(value, Mapping):
        value = {name: getattr(value, name) for name in known if hasattr(value, name)}
    unknown = set(value) - known
    if unknown:
        raise ValueError(f"unknown page size name(s) {sorted(unknown)}; known: {sorted(known)}")
    for name, size in value.items():
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"page size {name} must be a positive integer, got {size!r}")
    return replace(DEFAULT_PAGE_SIZES, **dict(value))


def effective_page_sizes(page_sizes: PageSizes) -> PageSizes:
    """What the server actually serves per page: the requested sizes capped at LIMIT_CAP."""
    capped: dict[str, Any] = {
        f.name: min(getattr(page_sizes, f.name), LIMIT_CAP) for f in fields(PageSizes)
    }
    return PageSizes(**capped)
