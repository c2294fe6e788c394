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

from streak_source.settings import DEFAULT_PAGE_SIZES, MAX_PAGE_SIZE, PageSizes

LIMIT_CAP: Final = MAX_PAGE_SIZE
"""The largest ``limit`` any sandbox endpoint honours (Streak documents 1000 for tasks, contacts
and organizations; the sandbox applies it everywhere, as the source's settings assume)."""

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


def coerce_page_sizes(value: PageSizes | Mapping[str, int] | None) -> PageSizes:
    """``None`` -> the source's defaults; a mapping overrides just the names it gives."""
    if value is None:
        return DEFAULT_PAGE_SIZES
    if isinstance(value, PageSizes):
        return value
    known = {f.name for f in fields(PageSizes)}
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
