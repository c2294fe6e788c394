"""Streak's paging shapes, with guards so that no listing can run forever.

Shapes (streak_api.md section 5): v1 lists are one plain array; v2 lists take ``page`` (0-based) +
``limit`` and answer ``{results, hasNextPage}``; contacts/organizations take ``cursor`` + ``limit``
and answer ``{results, cursor}``. The v1 box listing takes ``page``/``limit`` too and may answer
either way.

Guards (issue 12 #3: a tasks page repeating with ``hasNextPage: true`` once ran 57k requests):

* a page whose items equal an earlier page's, or a cursor seen before, ends the listing with
  :class:`PagingError` — unless the caller's ``expected`` count is already reached, which is what
  a server that ignores ``page`` looks like (it sent everything at once): then the listing ends;
* more items than plausible: over ``expected + margin`` when a count is known (a box's
  ``taskTotal``, a pipeline's ``boxCount``), with ``margin = max(MIN_MARGIN, expected // 10)`` for
  items added while the run reads; and never more than ``MAX_ITEMS`` items or ``MAX_PAGES`` pages
  for any one listing, count or not;
* only a 20-byte digest per page is remembered, so memory stays flat while paging.

Why not dlt's ``RESTClient`` paginators (benchmarks/naive_rest_api.py uses them): with
``has_more_path="hasNextPage"`` ``PageNumberPaginator`` raises when the flag is absent, which Streak
allows (``hasNextPage`` is optional; the v1 box list may be a plain array); without it, it stops only
on an empty page, one extra call per listing whose last page is not empty — more calls than the
sandbox's ``needed_calls``. The guards above would need a custom paginator anyway, and the cursor
paginator does not notice a repeated cursor. Twenty lines of loops are simpler than that.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

log = logging.getLogger(__name__)

MAX_PAGES: Final = 10_000
"""Pages of one listing at most (10M items at Streak's largest page size)."""
MAX_ITEMS: Final = 1_000_000
"""Items of one listing at most: more than any real pipeline, team or box holds."""
MIN_MARGIN: Final = 100
"""Items a listing may exceed its known count by (things created while the run reads)."""

GetJson = Callable[..., Any]
"""``get_json(path_template, params, **path_params)`` of :class:`streak_source.client.StreakClient`."""


class PagingError(RuntimeError):
    """A listing that does not end the way Streak's paging promises (named in the message).

    A subclass of :class:`streak_source.client.StreakAPIError` is raised in practice; this base
    keeps this module free of the HTTP client.
    """


def plausible_total(expected: int | None) -> int:
    """The most items a listing with ``expected`` items may return before it is called implausible."""
    if expected is None or expected < 0:
        return MAX_ITEMS
    return min(MAX_ITEMS, expected + max(MIN_MARGIN, expected // 10))


def items_of(body: Any, path_template: str, error: type[Exception]) -> list[Any]:
    """The list inside a response: a plain array, or the ``results`` (``entries``) of an envelope."""
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        for name in ("results", "entries"):
            if isinstance(body.get(name), list):
                return list(body[name])
        raise error(f"GET {path_template}: unexpected response shape (an object with no list of results)")
    raise error(f"GET {path_template}: Streak sent {json_kind(body)} where its reference promises a list")


def json_kind(value: Any) -> str:
    """``null``, ``a list``, ``a string``...: what a JSON value is, in the words of an error line."""
    if value is None:
        return "null"
    kinds = ((bool, "a boolean"), (int, "a number"), (float, "a number"), (str, "a string"), (list, "a list"),
             (dict, "an object"))
    return next((name for kind, name in kinds if isinstance(value, kind)), type(value).__name__)


class _Guard:
    """Counts one listing's pages and items and spots repeats, in bounded memory."""

    def __init__(self, path_template: str, path_params: Mapping[str, str], expected: int | None,
                 error: type[Exception]) -> None:
        where = ", ".join(f"{k}={v}" for k, v in path_params.items())
        self.endpoint = f"GET {path_template}" + (f" ({where})" if where else "")
        self.expected = expected
        self.limit_items = plausible_total(expected)
        self.error = error
        self.pages = 0
        self.items = 0
        self._digests: set[bytes] = set()
        self._cursors: set[str] = set()

    def page(self, items: list[Any]) -> bool:
        """Account one page; False when it repeats an earlier one and the listing is complete."""
        self.pages += 1
        digest = hashlib.sha1(json.dumps(items, sort_keys=True, default=repr).encode()).digest()
        if digest in self._digests:
            return self._repeat("page")
        self._digests.add(digest)
        self.items += len(items)
        if self.items > self.limit_items:
            known = f"{self.expected} expected" if self.expected is not None else "no count known"
            raise self.error(f"{self.endpoint}: {self.items:,} items is implausible ({known}, "
                             f"at most {self.limit_items:,} accepted); stopped after {self.pages} pages")
        if self.pages >= MAX_PAGES:
            raise self.error(f"{self.endpoint}: still more pages after {MAX_PAGES:,}; stopped")
        return True

    def cursor(self, cursor: str) -> bool:
        """Account one next-page cursor; False when it was seen before and the listing is complete."""
        if cursor in self._cursors:
            return self._repeat("cursor")
        self._cursors.add(cursor)
        return True

    def _repeat(self, what: str) -> bool:
        if self.expected is not None and self.items >= self.expected:
            log.warning("%s repeated a %s after all %d expected items: stopping there", self.endpoint, what,
                        self.expected)
            return False
        raise self.error(f"{self.endpoint}: Streak repeated a {what} (page {self.pages}, {self.items:,} items "
                         "so far); stopped instead of reading it forever")


def iter_page_envelopes(
    get_json: GetJson, path_template: str, limit: int, params: Mapping[str, Any] | None = None, *,
    expected: int | None = None, error: type[Exception] = PagingError, **path_params: str,
) -> Iterator[list[Any]]:
    """``page`` + ``limit`` -> ``{results, hasNextPage}`` (or a plain array), page by page.

    Ends when ``hasNextPage`` is false, or, where the flag is absent, when a page comes back shorter
    than ``limit`` (a server that ignores paging costs exactly one call), or on an empty page.
    """
    guard = _Guard(path_template, path_params, expected, error)
    page = 0
    while True:
        body = get_json(path_template, {**(params or {}), "page": page, "limit": limit}, **path_params)
        items = items_of(body, path_template, error)
        if not guard.page(items):
            return
        yield items
        has_next = body.get("hasNextPage") if isinstance(body, dict) else None
        if has_next is False or (has_next is None and len(items) < limit) or not items:
            return
        page += 1


def iter_cursor_pages(
    get_json: GetJson, path_template: str, limit: int, params: Mapping[str, Any] | None = None, *,
    expected: int | None = None, error: type[Exception] = PagingError, **path_params: str,
) -> Iterator[list[Any]]:
    """``cursor`` + ``limit`` -> ``{results, cursor}`` until the cursor is null or a page is empty."""
    guard = _Guard(path_template, path_params, expected, error)
    cursor: str | None = None
    while True:
        query = {**(params or {}), "limit": limit}
        if cursor:
            query["cursor"] = cursor
        body = get_json(path_template, query, **path_params)
        items = items_of(body, path_template, error)
        if not guard.page(items):
            return
        yield items
        next_cursor = body.get("cursor") if isinstance(body, dict) else None
        if not next_cursor or not items:
            return
        cursor = str(next_cursor)
        if not guard.cursor(cursor):
            return
