"""HTTP routes that serve the account the way Streak does (Starlette routing, run by uvicorn).

Every API request goes through one pipeline, in this order: count it (``requests_by_route`` is
keyed by route template) -> latency -> rate limit (429 + ``Retry-After``) -> auth (401) ->
injected hang -> injected status -> gone box (404) -> the route's handler (400 malformed key or
bad parameter, 404 unknown key, 200) -> injected malformed body. ``__sandbox__`` routes skip it.

Shapes served (streak_api.md section 5), per route under ``/api/``:

==========================================  ===================================================
v1/users/me                                 User
v2/users/me/teams                           {results, hasNextPage}; page, limit
v2/teams/{team_key}                         Team
v2/teams/{team_key}/users                   {results, hasNextPage}; page, limit
v2/teams/{team_key}/contacts                {results, cursor}; cursor, limit, after (epoch s)
v2/teams/{team_key}/organizations           {results, cursor}; cursor, limit
v1/pipelines                                [Pipeline] (fields, stages, stageOrder, boxCount)
v1/pipelines/{pipeline_key}                 Pipeline
v1/pipelines/{pipeline_key}/stages          {stageKey: Stage}
v1/pipelines/{pipeline_key}/fields          [Field]
v1/pipelines/{pipeline_key}/boxes           [Box] without page/limit, else {results,
                                            hasNextPage} (a plain array if boxes_paged_as_array);
                                            sortBy, stageKey
v1/pipelines/{pipeline_key}/newsfeed        [Entry] (<= 50); detailLevel ALL|CONDENSED
v1/snippets                                 [Snippet]
v1/boxes/{box_key}                          Box
v2/boxes/{box_key}/tasks                    {results, hasNextPage}; page, limit
v1/boxes/{box_key}/threads                  [Thread]
v2/boxes/{box_key}/comments                 {results, hasNextPage}; everything without page/limit
v2/boxes/{box_key}/meetings                 {results, hasNextPage}; page, limit
v1/boxes/{box_key}/files                    [File]
==========================================  ===================================================

Defaults: ``limit`` 100 when absent (comments without paging parameters: everything), capped at
1000; ``page`` 0-based. Boxes are ordered newest first by ``sortBy`` (``creationTimestamp``
default, or ``lastUpdatedTimestamp``), ties by key; contacts and organizations by key. An unknown
``stageKey`` yields an empty list. ``detailLevel=CONDENSED`` serves the same entries as ``ALL``.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from streak_source import settings
from streak_source.settings import PageSizes

from . import render
from .faults import FaultInjector, FaultSpec, TokenBucket, hold, retry_after_seconds
from .ground_truth import needed_calls, table_counts
from .keys import is_well_formed_key
from .model import Account, Box, Pipeline, Team
from .paging import (
    DEFAULT_LIMIT,
    LIMIT_CAP,
    decode_cursor,
    effective_page_sizes,
    encode_cursor,
    page_window,
)
from .stats import RequestStats

API: Final = "/api/"
ME_ROUTE: Final = API + settings.ME_PATH
TEAMS_ROUTE: Final = API + settings.TEAMS_PATH
TEAM_ROUTE: Final = API + "v2/teams/{team_key}"
TEAM_USERS_ROUTE: Final = API + settings.TEAM_USERS_PATH
CONTACTS_ROUTE: Final = API + settings.CONTACTS_PATH
ORGANIZATIONS_ROUTE: Final = API + settings.ORGANIZATIONS_PATH
PIPELINES_ROUTE: Final = API + settings.PIPELINES_PATH
PIPELINE_ROUTE: Final = API + "v1/pipelines/{pipeline_key}"
STAGES_ROUTE: Final = API + "v1/pipelines/{pipeline_key}/stages"
FIELDS_ROUTE: Final = API + "v1/pipelines/{pipeline_key}/fields"
BOXES_ROUTE: Final = API + settings.BOXES_PATH
NEWSFEED_ROUTE: Final = API + settings.PIPELINE_NEWSFEED_PATH
SNIPPETS_ROUTE: Final = API + settings.SNIPPETS_PATH
BOX_ROUTE: Final = API + "v1/boxes/{box_key}"
BOX_TASKS_ROUTE: Final = API + settings.BOX_TASKS_PATH
BOX_THREADS_ROUTE: Final = API + settings.BOX_THREADS_PATH
BOX_COMMENTS_ROUTE: Final = API + settings.BOX_COMMENTS_PATH
BOX_MEETINGS_ROUTE: Final = API + settings.BOX_MEETINGS_PATH
BOX_FILES_ROUTE: Final = API + settings.BOX_FILES_PATH
UNKNOWN_ROUTE: Final = API + "{path:path}"

BOX_CHILD_TABLES: Final[dict[str, str]] = {
    BOX_TASKS_ROUTE: "box_tasks",
    BOX_THREADS_ROUTE: "box_threads",
    BOX_COMMENTS_ROUTE: "box_comments",
    BOX_MEETINGS_ROUTE: "box_meetings",
    BOX_FILES_ROUTE: "box_files",
}
BOX_ROUTES: Final = (BOX_ROUTE, *BOX_CHILD_TABLES)

STATS_ROUTE: Final = API + "__sandbox__/stats"
ACCOUNT_ROUTE: Final = API + "__sandbox__/account"
RESET_STATS_ROUTE: Final = API + "__sandbox__/reset-stats"

INVALID_API_KEY: Final = "invalid api key"
MALFORMED_KEY: Final = "Illegal Argument Exception in GetEntities, usually a key issue"
NOT_FOUND: Final = "existing entity does not exist"
BOX_SORTS: Final = {"creationTimestamp": "creation_ms", "lastUpdatedTimestamp": "last_updated_ms"}
DETAIL_LEVELS: Final = ("ALL", "CONDENSED")


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


def api_key_from(authorization: str | None) -> str | None:
    """The key from ``Basic base64(key:)``, ``Basic base64(key:key)`` or ``Bearer key``."""
    if not authorization:
        return None
    scheme, _, credentials = authorization.strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer":
        return credentials or None
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(credentials, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    user, separator, password = decoded.partition(":")
    if not user or not separator or password not in ("", user):
        return None
    return user


@dataclass(frozen=True)
class ServerOptions:
    """How the server behaves, beyond the account it serves."""

    seed: int
    latency_ms: float = 0.0
    rate_limit: float | None = None
    faults: tuple[FaultSpec, ...] = ()
    api_keys: tuple[str, ...] = ("demo",)
    page_sizes: PageSizes = settings.DEFAULT_PAGE_SIZES
    """Only used to compute ``needed_calls``; the server honours whatever ``limit`` is sent."""
    boxes_paged_as_array: bool = False
    """Serve the paged box list as a plain array (the reference leaves the shape unresolved)."""


Handler = Callable[[Request], Response]


@dataclass
class _Caches:
    """Serialized entities, built on first use (a 20,000-box account is never rendered whole)."""

    entity: dict[tuple[str, str], bytes] = field(default_factory=dict)
    items: dict[tuple[str, str], list[bytes]] = field(default_factory=dict)
    sorted_boxes: dict[tuple[str, str], list[Box]] = field(default_factory=dict)


class SandboxServer:
    """The Starlette app over one account, plus its stats and fault state."""

    def __init__(self, account: Account, options: ServerOptions, stop: threading.Event) -> None:
        if not options.api_keys:
            raise ValueError("the sandbox needs at least one API key")
        self.account = account
        self.options = options
        self.stop = stop
        self.stats = RequestStats()
        self.bucket = TokenBucket(options.rate_limit) if options.rate_limit else None
        routes = self._api_routes()
        self.faults = FaultInjector(
            options.faults,
            seed=options.seed,
            account=account,
            api_keys=options.api_keys,
            known_routes=[template for template, _ in routes],
            box_routes=BOX_ROUTES,
        )
        self.ground_truth = table_counts(account)
        self.page_sizes = effective_page_sizes(options.page_sizes)
        self.needed_calls = needed_calls(account, options.page_sizes)
        self._caches = _Caches()
        self.app = Starlette(
            routes=[
                Route(STATS_ROUTE, self._stats_endpoint, methods=["GET"]),
                Route(ACCOUNT_ROUTE, self._account_endpoint, methods=["GET"]),
                Route(RESET_STATS_ROUTE, self._reset_stats_endpoint, methods=["POST"]),
                *(
                    Route(template, self._api_endpoint(template, handler), methods=["GET"])
                    for template, handler in routes
                ),
            ]
        )

    def _api_routes(self) -> list[tuple[str, Handler]]:
        return [
            (ME_ROUTE, self.me),
            (TEAMS_ROUTE, self.teams),
            (TEAM_ROUTE, self.team),
            (TEAM_USERS_ROUTE, self.team_users),
            (CONTACTS_ROUTE, self.contacts),
            (ORGANIZATIONS_ROUTE, self.organizations),
            (PIPELINES_ROUTE, self.pipelines),
            (PIPELINE_ROUTE, self.pipeline),
            (STAGES_ROUTE, self.stages),
            (FIELDS_ROUTE, self.fields),
            (BOXES_ROUTE, self.boxes),
            (NEWSFEED_ROUTE, self.newsfeed),
            (SNIPPETS_ROUTE, self.snippets),
            (BOX_ROUTE, self.box),
            (BOX_TASKS_ROUTE, self.box_tasks),
            (BOX_THREADS_ROUTE, self.box_threads),
            (BOX_COMMENTS_ROUTE, self.box_comments),
            (BOX_MEETINGS_ROUTE, self.box_meetings),
            (BOX_FILES_ROUTE, self.box_files),
            (UNKNOWN_ROUTE, self.unknown),
        ]

    # ------------------------------------------------------------------ the request pipeline

    def _api_endpoint(
        self, template: str, handler: Handler
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            self.stats.begin(template)
            status: int | None = None
            try:
                response = await self._serve(request, template, handler)
                status = response.status_code
                return response
            finally:
                self.stats.end(status)

        return endpoint

    async def _serve(self, request: Request, template: str, handler: Handler) -> Response:
        if self.options.latency_ms > 0:
            await hold(self.options.latency_ms / 1000.0, self.stop)
        if self.bucket is not None:
            wait = self.bucket.take()
            if wait > 0:
                return error_response(
                    429, "rate limit exceeded", {"Retry-After": str(retry_after_seconds(wait))}
                )
        api_key = api_key_from(request.headers.get("authorization"))
        if (
            api_key is None
            or api_key not in self.options.api_keys
            or not self.faults.admit(api_key)
        ):
            return error_response(401, INVALID_API_KEY)
        identity = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        hang = self.faults.pick("hang", template, identity)
        if hang is not None and hang.amount:
            await hold(hang.amount, self.stop)
        injected = self.faults.pick("status", template, identity)
        if injected is not None:
            return error_response(
                int(injected.amount or 500), f"injected fault: HTTP {injected.amount:g}"
            )
        box_key = request.path_params.get("box_key")
        try:
            if box_key is not None and self.faults.is_gone(box_key, template):
                raise ApiError(404, NOT_FOUND)
            response = handler(request)
        except ApiError as error:
            return error_response(error.status, error.message)
        if response.status_code == 200 and self.faults.pick("malformed", template, identity):
            body = bytes(response.body)
            return json_response(body[: max(1, len(body) // 2)])
        return response

    # ------------------------------------------------------------------ __sandbox__

    def stats_snapshot(self) -> dict[str, Any]:
        snapshot = self.stats.snapshot()
        snapshot["needed_calls"] = self.needed_calls
        snapshot["page_sizes"] = vars(self.page_sizes).copy()
        faults = self.faults.snapshot()
        faults["gone_children"] = self._gone_children()
        snapshot["faults"] = faults
        snapshot["latency_ms"] = self.options.latency_ms
        snapshot["rate_limit"] = self.options.rate_limit
        return snapshot

    def _gone_children(self) -> dict[str, int]:
        """Children made unreachable by ``gone`` faults, per table (ground truth counts them)."""
        counts = dict.fromkeys(BOX_CHILD_TABLES.values(), 0)
        for box_key, routes in self.faults.gone_routes.items():
            box = self.account.boxes_by_key[box_key]
            for route, table in BOX_CHILD_TABLES.items():
                if route in routes:
                    counts[table] += len(getattr(box, table.removeprefix("box_")))
        return counts

    async def _stats_endpoint(self, request: Request) -> Response:
        return json_response(to_json_bytes(self.stats_snapshot()))

    async def _account_endpoint(self, request: Request) -> Response:
        return json_response(to_json_bytes(self.ground_truth))

    async def _reset_stats_endpoint(self, request: Request) -> Response:
        self.stats.reset()
        return json_response(to_json_bytes({"success": True}))

    # ------------------------------------------------------------------ lookups and parameters

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

    @staticmethod
    def _path_key(request: Request, name: str) -> str:
        key = str(request.path_params[name])
        if not is_well_formed_key(key):
            raise ApiError(400, MALFORMED_KEY)
        return key

    def _pipeline(self, request: Request) -> Pipeline:
        pipeline = self.account.pipelines_by_key.get(self._path_key(request, "pipeline_key"))
        if pipeline is None:
            raise ApiError(404, NOT_FOUND)
        return pipeline

    def _box(self, request: Request) -> Box:
        box = self.account.boxes_by_key.get(self._path_key(request, "box_key"))
        if box is None:
            raise ApiError(404, NOT_FOUND)
        return box

    def _team(self, request: Request) -> Team:
        team = self.account.teams_by_key.get(self._path_key(request, "team_key"))
        if team is None:
            raise ApiError(404, NOT_FOUND)
        return team

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

    def _v2_page(
        self, request: Request, items: list[bytes], *, all_without_params: bool = False
    ) -> Response:
        """``{results, hasNextPage}`` with 0-based ``page`` and capped ``limit``."""
        params = request.query_params
        if all_without_params and "page" not in params and "limit" not in params:
            return json_response(b'{"results":' + json_array(items) + b',"hasNextPage":false}')
        page = self._int_param(request, "page", 0, 0) or 0
        limit = self._limit(request) or DEFAULT_LIMIT
        window = page_window(len(items), page, limit)
        results = json_array(items[window.start : window.end])
        has_next = b"true" if window.has_next else b"false"
        return json_response(b'{"results":' + results + b',"hasNextPage":' + has_next + b"}")

    def _cursor_page(
        self,
        request: Request,
        keys: list[str],
        items: list[bytes],
        selected: list[int] | None = None,
    ) -> Response:
        """``{results, cursor}``: items ordered by key; cursor null when nothing remains."""
        limit = self._limit(request) or DEFAULT_LIMIT
        positions = selected if selected is not None else range(len(keys))
        start = 0
        cursor = request.query_params.get("cursor")
        if cursor:
            last_key = decode_cursor(cursor)
            if last_key is None:
                raise ApiError(400, "invalid cursor")
            start = bisect.bisect_right([keys[i] for i in positions], last_key)
        chosen = list(positions)[start : start + limit]
        remaining = start + limit < len(positions)
        next_cursor = encode_cursor(keys[chosen[-1]]) if remaining and chosen else None
        body = (
            b'{"results":'
            + json_array([items[i] for i in chosen])
            + b',"cursor":'
            + to_json_bytes(next_cursor)
            + b"}"
        )
        return json_response(body)

    # ------------------------------------------------------------------ users and teams

    def me(self, request: Request) -> Response:
        me = self.account.me
        return json_response(self._entity("user", me.key, lambda: render.render_user(me)))

    def teams(self, request: Request) -> Response:
        teams = self.account.teams
        items = self._items("teams", "", lambda: [render.render_team(t) for t in teams])
        return self._v2_page(request, items)

    def team(self, request: Request) -> Response:
        team = self._team(request)
        return json_response(self._entity("team", team.key, lambda: render.render_team(team)))

    def team_users(self, request: Request) -> Response:
        team = self._team(request)
        items = self._items(
            "team_users", team.key, lambda: [render.render_user(m.user) for m in team.members]
        )
        return self._v2_page(request, items)

    def contacts(self, request: Request) -> Response:
        team = self._team(request)
        contacts = self.account.contacts.get(team.key, [])
        items = self._items(
            "contacts", team.key, lambda: [render.render_contact(c) for c in contacts]
        )
        keys = [c.key for c in contacts]
        after = self._int_param(request, "after", None, 0)
        selected = None
        if after is not None:
            selected = [i for i, c in enumerate(contacts) if c.last_saved_ms >= after * 1000]
        return self._cursor_page(request, keys, items, selected)

    def organizations(self, request: Request) -> Response:
        team = self._team(request)
        organizations = self.account.organizations.get(team.key, [])
        items = self._items(
            "organizations",
            team.key,
            lambda: [render.render_organization(o) for o in organizations],
        )
        return self._cursor_page(request, [o.key for o in organizations], items)

    def snippets(self, request: Request) -> Response:
        snippets = self.account.snippets
        items = self._items("snippets", "", lambda: [render.render_snippet(s) for s in snippets])
        return json_response(json_array(items))

    # ------------------------------------------------------------------ pipelines

    def _pipeline_bytes(self, pipeline: Pipeline) -> bytes:
        return self._entity(
            "pipeline", pipeline.key, lambda: render.render_pipeline(pipeline, self.account)
        )

    def pipelines(self, request: Request) -> Response:
        sort_by = request.query_params.get("sortBy")
        pipelines = list(self.account.pipelines)
        if sort_by == "lastUpdatedTimestamp":
            pipelines.sort(key=lambda p: (p.last_updated_ms, p.key), reverse=True)
        elif sort_by not in (None, "", "creationTimestamp"):
            raise ApiError(400, f"invalid sortBy: {sort_by!r}")
        return json_response(json_array([self._pipeline_bytes(p) for p in pipelines]))

    def pipeline(self, request: Request) -> Response:
        return json_response(self._pipeline_bytes(self._pipeline(request)))

    def stages(self, request: Request) -> Response:
        pipeline = self._pipeline(request)
        return json_response(
            self._entity("stages", pipeline.key, lambda: render.render_stages(pipeline))
        )

    def fields(self, request: Request) -> Response:
        pipeline = self._pipeline(request)
        items = self._items(
            "fields", pipeline.key, lambda: [render.render_field(f) for f in pipeline.fields]
        )
        return json_response(json_array(items))

    def newsfeed(self, request: Request) -> Response:
        pipeline = self._pipeline(request)
        detail = request.query_params.get("detailLevel", "ALL")
        if detail not in DETAIL_LEVELS:
            raise ApiError(400, f"invalid detailLevel {detail!r}: use ALL or CONDENSED")
        items = self._items(
            "newsfeed",
            pipeline.key,
            lambda: [render.render_newsfeed_entry(e, pipeline.key) for e in pipeline.newsfeed],
        )
        return json_response(json_array(items))

    def _box_bytes(self, box: Box) -> bytes:
        return self._entity("box", box.key, lambda: render.render_box(box, self.account))

    def boxes(self, request: Request) -> Response:
        pipeline = self._pipeline(request)
        params = request.query_params
        sort_by = params.get("sortBy") or "creationTimestamp"
        if sort_by not in BOX_SORTS:
            raise ApiError(400, f"invalid sortBy: {sort_by!r}")
        ordered = self._caches.sorted_boxes.get((pipeline.key, sort_by))
        if ordered is None:
            attribute = BOX_SORTS[sort_by]
            ordered = sorted(
                pipeline.boxes, key=lambda b: (getattr(b, attribute), b.key), reverse=True
            )
            self._caches.sorted_boxes[(pipeline.key, sort_by)] = ordered
        stage_key = params.get("stageKey")
        if stage_key:
            ordered = [b for b in ordered if b.stage_key == stage_key]
        if "page" not in params and "limit" not in params:
            return json_response(json_array([self._box_bytes(b) for b in ordered]))
        page = self._int_param(request, "page", 0, 0) or 0
        limit = self._limit(request) or DEFAULT_LIMIT
        window = page_window(len(ordered), page, limit)
        results = json_array([self._box_bytes(b) for b in ordered[window.start : window.end]])
        if self.options.boxes_paged_as_array:
            return json_response(results)
        has_next = b"true" if window.has_next else b"false"
        return json_response(b'{"results":' + results + b',"hasNextPage":' + has_next + b"}")

    # ------------------------------------------------------------------ boxes

    def box(self, request: Request) -> Response:
        return json_response(self._box_bytes(self._box(request)))

    def box_tasks(self, request: Request) -> Response:
        box = self._box(request)
        items = self._items(
            "tasks", box.key, lambda: [render.render_task(t, box, self.account) for t in box.tasks]
        )
        return self._v2_page(request, items)

    def box_threads(self, request: Request) -> Response:
        box = self._box(request)
        items = self._items(
            "threads", box.key, lambda: [render.render_thread(t, box) for t in box.threads]
        )
        return json_response(json_array(items))

    def box_comments(self, request: Request) -> Response:
        box = self._box(request)
        items = self._items(
            "comments",
            box.key,
            lambda: [render.render_comment(c, box, self.account) for c in box.comments],
        )
        return self._v2_page(request, items, all_without_params=True)

    def box_meetings(self, request: Request) -> Response:
        box = self._box(request)
        items = self._items(
            "meetings", box.key, lambda: [render.render_meeting(m, box) for m in box.meetings]
        )
        return self._v2_page(request, items)

    def box_files(self, request: Request) -> Response:
        box = self._box(request)
        items = self._items(
            "files", box.key, lambda: [render.render_file(f, box) for f in box.files]
        )
        return json_response(json_array(items))

    def unknown(self, request: Request) -> Response:
        raise ApiError(404, f"no such endpoint: {request.url.path}")
