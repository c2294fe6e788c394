"""What every route handler shares: Streak's error body, JSON bytes, caching, path keys, paging.

``RouteBase`` is the base of the two handler mixins (``routes_account.py``, ``routes_boxes.py``);
``SandboxServer`` sets the attributes it declares.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from .lookups import Lookups, is_well_formed
from .model import Account, Box, Pipeline, Team
from .paging import DEFAULT_LIMIT, LIMIT_CAP, decode_cursor, encode_cursor, page_window

MALFORMED_KEY: Final = "Illegal Argument Exception in GetEntities, usually a key issue"
NOT_FOUND: Final = "existing entity does not exist"


class ApiError(Exception):
    """Answer with Streak's error shape: ``{"success": false, "error": message}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def to_json_bytes(value: Any) -> bytes:
    """Compact UTF-8 JSON, as Streak sends it; deterministic for deterministic input."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def json_response(
    body: bytes, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return json_response(to_json_bytes({"success": False, "error": message}), status, headers)


def json_array(items: Sequence[bytes]) -> bytes:
    return b"[" + b",".join(items) + b"]"


def page_body(items: Sequence[bytes], has_next: bool) -> bytes:
    return b'{"results":' + json_array(items) + b',"hasNextPage":' + to_json_bytes(has_next) + b"}"


def cursor_body(items: Sequence[bytes], cursor: str | None) -> bytes:
    return b'{"results":' + json_array(items) + b',"cursor":' + to_json_bytes(cursor) + b"}"


@dataclass
class Caches:
    """Serialized entities, built on first use (a 20,000-box account is never rendered whole)."""

    entity: dict[tuple[str, str], bytes] = field(default_factory=dict)
    items: dict[tuple[str, str], list[bytes]] = field(default_factory=dict)
    sorted_boxes: dict[tuple[str, str], list[Box]] = field(default_factory=dict)


class RouteBase:
    """Lookups, parameters and paging shared by every handler."""

    account: Account
    lookups: Lookups
    _caches: Caches

    # ------------------------------------------------------------------ caching

    def _entity(self, kind: str, key: str, build: Callable[[], Any]) -> bytes:
        cached = self._caches.entity.get((kind, key))
        if cached is None:
            cached = self._caches.entity[(kind, key)] = to_json_bytes(build())
        return cached

    def _items(self, kind: str, key: str, build: Callable[[], list[Any]]) -> list[bytes]:
        cached = self._caches.items.get((kind, key))
        if cached is None:
            cached = self._caches.items[(kind, key)] = [to_json_bytes(item) for item in build()]
        return cached

    # ------------------------------------------------------------------ path keys

    @staticmethod
    def _path_key(request: Request, name: str) -> str:
        """The path parameter ``name``; 400 when it cannot be a key of that kind."""
        key = str(request.path_params[name])
        if not is_well_formed(name, key):
            raise ApiError(400, MALFORMED_KEY)
        return key

    def _found(self, mapping: dict[str, Any], request: Request, name: str) -> Any:
        found = mapping.get(self._path_key(request, name))
        if found is None:
            raise ApiError(404, NOT_FOUND)
        return found

    def _pipeline(self, request: Request) -> Pipeline:
        return self._found(self.account.pipelines_by_key, request, "pipeline_key")  # type: ignore[no-any-return]

    def _box(self, request: Request) -> Box:
        return self._found(self.account.boxes_by_key, request, "box_key")  # type: ignore[no-any-return]

    def _team(self, request: Request) -> Team:
        return self._found(self.account.teams_by_key, request, "team_key")  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ parameters

    @staticmethod
    def _int_param(request: Request, name: str, default: int | None, minimum: int) -> int | None:
        raw = request.query_params.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ApiError(400, f"invalid {name}: {raw!r} is not an integer") from None
        if value < minimum:
            raise ApiError(400, f"invalid {name}: must be >= {minimum}")
        return value

    def _limit(self, request: Request, default: int | None = DEFAULT_LIMIT) -> int | None:
        limit = self._int_param(request, "limit", default, 1)
        return None if limit is None else min(limit, LIMIT_CAP)

    # ------------------------------------------------------------------ paging shapes

    def _v2_page(
        self, request: Request, items: list[bytes], *, all_without_params: bool = False
    ) -> Response:
        """``{results, hasNextPage}`` with 0-based ``page`` and capped ``limit``."""
        params = request.query_params
        if all_without_params and "page" not in params and "limit" not in params:
            return json_response(page_body(items, False))
        page = self._int_param(request, "page", 0, 0) or 0
        limit = self._limit(request) or DEFAULT_LIMIT
        window = page_window(len(items), page, limit)
        return json_response(page_body(items[window.start : window.end], window.has_next))

    def _cursor_page(
        self,
        request: Request,
        keys: list[str],
        items: list[bytes],
        selected: list[int] | None = None,
    ) -> Response:
        """``{results, cursor}``: items ordered by key; cursor null when nothing remains."""
        limit = self._limit(request) or DEFAULT_LIMIT
        positions = list(selected if selected is not None else range(len(keys)))
        start = 0
        cursor = request.query_params.get("cursor")
        if cursor:
            last_key = decode_cursor(cursor)
            if last_key is None:
                raise ApiError(400, "invalid cursor")
            start = bisect.bisect_right([keys[i] for i in positions], last_key)
        chosen = positions[start : start + limit]
        remaining = start + limit < len(positions)
        next_cursor = encode_cursor(keys[chosen[-1]]) if remaining and chosen else None
        return json_response(cursor_body([items[i] for i in chosen], next_cursor))
