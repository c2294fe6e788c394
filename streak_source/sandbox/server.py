"""The Starlette app: every read route of ``endpoints.ENDPOINTS``, one request pipeline, the stats.

Every API request goes through one pipeline, in this order: count it (``requests_by_route`` is
keyed by route template) -> latency -> rate limit (429 + ``Retry-After``) -> auth (401) ->
injected hang -> injected status -> gone box (404) -> the route's handler (400 malformed key or
bad parameter, 404 unknown key, 200) -> injected malformed or null body. ``__sandbox__`` routes
skip it.
A path that is no route answers 404 ``no such endpoint`` (after auth, like any other).

The handlers live in ``routes_account.py`` (users, teams, contacts, organizations, snippets,
search, API keys, webhooks) and ``routes_boxes.py`` (pipelines, stages, fields, boxes and
everything under a box); this module holds what they share: caching of serialized entities,
path-key lookups, the three paging shapes, and the error body.

Defaults: ``limit`` 100 when absent (comments without paging parameters: everything), capped at
1000; ``page`` 0-based. Boxes are ordered newest first by ``sortBy`` (``creationTimestamp``
default, or ``lastUpdatedTimestamp``), ties by key; contacts and organizations by key.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .auth import api_key_from
from .endpoints import API_PREFIX, ENDPOINTS, WRITE_ENDPOINTS, endpoint_for
from .faults import FaultInjector, FaultSpec, TokenBucket, hold, retry_after_seconds
from .ground_truth import needed_calls, rejected_counts, table_counts
from .lookups import Lookups
from .model import Account
from .paging import DEFAULT_PAGE_SIZES, PageSizes, effective_page_sizes, encode_cursor
from .responses import ApiError, Caches, error_response, json_response, to_json_bytes
from .routes_account import AccountRoutes
from .routes_boxes import BoxRoutes
from .routes_time import (
    ADVANCE_ROUTE,
    CHANGES_ROUTE,
    HISTORY_ROUTE,
    SALES_PROCESS_ROUTE,
    TimeRoutes,
)
from .routes_webhooks import WebhookRoutes
from .stats import RequestStats
from .timeline import Change, Timeline
from .webhooks import WebhookHub

UNKNOWN_ROUTE: Final = API_PREFIX + "{path:path}"
STATS_ROUTE: Final = API_PREFIX + "__sandbox__/stats"
ACCOUNT_ROUTE: Final = API_PREFIX + "__sandbox__/account"
REJECTED_ROUTE: Final = API_PREFIX + "__sandbox__/rejected"
RESET_STATS_ROUTE: Final = API_PREFIX + "__sandbox__/reset-stats"

INVALID_API_KEY: Final = "invalid api key"

BOX_CHILD_TABLES: Final[dict[str, str]] = {
    endpoint_for("v2/boxes/{box_key}/tasks").template: "box_tasks",
    endpoint_for("v1/boxes/{box_key}/threads").template: "box_threads",
    endpoint_for("v2/boxes/{box_key}/comments").template: "box_comments",
    endpoint_for("v2/boxes/{box_key}/meetings").template: "box_meetings",
    endpoint_for("v1/boxes/{box_key}/files").template: "box_files",
}
"""The box child routes a complete extraction reads, and the table each fills."""
BOX_ROUTES: Final = (endpoint_for("v1/boxes/{box_key}").template, *BOX_CHILD_TABLES)
"""What a ``gone`` fault makes answer 404 by default."""
BOXES_ROUTE: Final = endpoint_for("v1/pipelines/{pipeline_key}/boxes").template
PAGED_ROUTES: Final = frozenset(e.template for e in ENDPOINTS if e.paging in ("page", "cursor"))
"""Where a ``repeat-page`` fault applies."""


@dataclass(frozen=True)
class ServerOptions:
    """How the server behaves, beyond the account it serves."""

    seed: int
    latency_ms: float = 0.0
    rate_limit: float | None = None
    faults: tuple[FaultSpec, ...] = ()
    api_keys: tuple[str, ...] = ("demo",)
    page_sizes: PageSizes = DEFAULT_PAGE_SIZES
    """Only used to compute ``needed_calls``; the server honours whatever ``limit`` is sent."""
    boxes_paged_as_array: bool = False
    """Serve the paged box list as a plain array (the reference leaves the shape unresolved)."""
    webhook_attempts: int = 8
    """Tries per webhook delivery before giving up (webhooks.py)."""
    webhook_backoff_s: float = 0.25
    """First retry delay of a failed delivery; doubled per try, capped at 30 s."""


Handler = Callable[[Request], Response]


class SandboxServer(WebhookRoutes, AccountRoutes, BoxRoutes, TimeRoutes):
    """The Starlette app over one account, plus its stats, fault state and timeline.

    ``state_lock`` makes moving the account on (``advance``) and answering a request exclusive:
    a request sees one day or the next, never half of one.
    """

    def __init__(
        self,
        account: Account,
        options: ServerOptions,
        stop: threading.Event,
        timeline: Timeline | None = None,
    ) -> None:
        if not options.api_keys:
            raise ValueError("the sandbox needs at least one API key")
        self.account = account
        self.options = options
        self.stop = stop
        self.sim_time = timeline if timeline is not None else Timeline(account)
        self.state_lock = threading.RLock()
        self.accepted_api_keys = options.api_keys
        self.boxes_paged_as_array = options.boxes_paged_as_array
        self.stats = RequestStats()
        self.webhooks = WebhookHub(options.webhook_attempts, options.webhook_backoff_s)
        self.bucket = TokenBucket(options.rate_limit) if options.rate_limit else None
        routes: list[tuple[str, Handler]] = [
            (endpoint.template, getattr(self, endpoint.handler)) for endpoint in ENDPOINTS
        ]
        writes: list[tuple[str, Handler, str]] = [
            (endpoint.template, getattr(self, endpoint.handler), endpoint.method)
            for endpoint in WRITE_ENDPOINTS
        ]
        routes.append((UNKNOWN_ROUTE, self.unknown))
        self.faults = FaultInjector(
            options.faults,
            seed=options.seed,
            account=account,
            api_keys=options.api_keys,
            known_routes=[template for template, _ in routes],
            box_routes=BOX_ROUTES,
        )
        self.page_sizes = effective_page_sizes(options.page_sizes)
        self._derive()
        self.app = Starlette(
            routes=[
                Route(ADVANCE_ROUTE, self._advance_endpoint, methods=["POST"]),
                Route(HISTORY_ROUTE, self._history_endpoint, methods=["GET"]),
                Route(CHANGES_ROUTE, self._changes_endpoint, methods=["GET"]),
                Route(SALES_PROCESS_ROUTE, self._sales_process_endpoint, methods=["GET"]),
                Route(STATS_ROUTE, self._stats_endpoint, methods=["GET"]),
                Route(ACCOUNT_ROUTE, self._account_endpoint, methods=["GET"]),
                Route(REJECTED_ROUTE, self._rejected_endpoint, methods=["GET"]),
                Route(RESET_STATS_ROUTE, self._reset_stats_endpoint, methods=["POST"]),
                *(
                    Route(template, self._api_endpoint(template, handler), methods=["GET"])
                    for template, handler in routes
                ),
                *(
                    Route(template, self._api_endpoint(template, handler, body=True), methods=[method])
                    for template, handler, method in writes
                ),
            ]
        )

    def _derive(self) -> None:
        """Everything computed from the account: lookups, cached bytes, ground truth, calls."""
        self.lookups = Lookups(self.account)
        self._caches = Caches()
        self.ground_truth = table_counts(self.account)
        self.needed_calls = needed_calls(self.account, self.options.page_sizes)
        self.needed_history_calls = self.sim_time.history_calls()
        self.needed_backfill_calls = self.sim_time.backfill_calls()

    def advance(self, days: int) -> list[Change]:
        """Simulate ``days`` more days (timeline.py); what is served next is the new day. The
        webhooks subscribed to what changed are rendered here and sent by the hub's thread."""
        with self.state_lock:
            made = self.sim_time.advance(days)
            if days:
                self._derive()
                self.webhooks.changed(self.account, self.sim_time, self.lookups, made)
            return made

    # ------------------------------------------------------------------ the request pipeline

    def _api_endpoint(
        self, template: str, handler: Handler, body: bool = False
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            if body:  # write routes: handlers are synchronous, so the body is read first
                request.state.body = await request.body()
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
        with self.state_lock:
            return self._answer(request, template, handler, identity)

    def _answer(self, request: Request, template: str, handler: Handler, identity: str) -> Response:
        box_key = request.path_params.get("box_key")
        try:
            if box_key is not None and self.faults.is_gone(box_key, template):
                raise ApiError(404, "existing entity does not exist")
            response = handler(request)
            if response.status_code == 200 and template in PAGED_ROUTES:
                endless = self.faults.pick("repeat-page", template, identity)
                if endless is not None:
                    response = self._endless(request, handler)
                elif (
                    template == BOXES_ROUTE
                    and {"page", "limit"} & set(request.query_params)
                    and self.faults.pick("invent-boxes", template, identity)
                ):
                    response = self.invented_boxes(request)
        except ApiError as error:
            return error_response(error.status, error.message)
        if response.status_code == 200 and self.faults.pick("malformed", template, identity):
            body = bytes(response.body)
            return json_response(body[: max(1, len(body) // 2)])
        if response.status_code == 200 and self.faults.pick("null", template, identity):
            return json_response(b"null")
        return response

    # ------------------------------------------------------------------ __sandbox__

    def stats_snapshot(self) -> dict[str, Any]:
        snapshot = self.stats.snapshot()
        snapshot["needed_calls"] = self.needed_calls
        snapshot["day"] = self.sim_time.day
        snapshot["needed_history_calls"] = self.needed_history_calls
        snapshot["needed_backfill_calls"] = self.needed_backfill_calls
        snapshot["page_sizes"] = vars(self.page_sizes).copy()
        faults = self.faults.snapshot()
        faults["gone_children"] = self._gone_children()
        snapshot["faults"] = faults
        snapshot["latency_ms"] = self.options.latency_ms
        snapshot["rate_limit"] = self.options.rate_limit
        snapshot["account"] = self.account.name
        snapshot["webhooks"] = self.webhooks.summary()
        return snapshot

    def _gone_children(self) -> dict[str, int]:
        """Children made unreachable by ``gone`` faults, per table (ground truth counts them)."""
        counts = dict.fromkeys(BOX_CHILD_TABLES.values(), 0)
        for box_key, routes in self.faults.gone_routes.items():
            box = self.account.boxes_by_key.get(box_key)
            if box is None:  # deleted since (sandbox time)
                continue
            for route, table in BOX_CHILD_TABLES.items():
                if route in routes:
                    counts[table] += len(getattr(box, table.removeprefix("box_")))
        return counts

    async def _stats_endpoint(self, request: Request) -> Response:
        return json_response(to_json_bytes(self.stats_snapshot()))

    async def _account_endpoint(self, request: Request) -> Response:
        return json_response(to_json_bytes(self.ground_truth))

    async def _rejected_endpoint(self, request: Request) -> Response:
        return json_response(to_json_bytes(rejected_counts(self.account)))

    async def _reset_stats_endpoint(self, request: Request) -> Response:
        self.stats.reset()
        return json_response(to_json_bytes({"success": True}))

    def _endless(self, request: Request, handler: Handler) -> Response:
        """``repeat-page``: whatever page or cursor is asked, page 0 again, saying more follow
        (``hasNextPage: true``; a cursor that leads back to the start). On the box list,
        ``invent-boxes`` is the endless variant that never repeats (see ``BoxRoutes.boxes``)."""
        scope = dict(request.scope)
        query = [(k, v) for k, v in request.query_params.multi_items() if k not in ("page", "cursor")]
        scope["query_string"] = urlencode(query).encode()
        first = json.loads(bytes(handler(Request(scope)).body))
        if not isinstance(first, dict):  # the box list asked without page/limit: not paged
            return handler(request)
        if "cursor" in first:
            first["cursor"] = encode_cursor("")
        else:
            first["hasNextPage"] = True
        return json_response(to_json_bytes(first))

    def unknown(self, request: Request) -> Response:
        raise ApiError(404, f"no such endpoint: {request.url.path}")
