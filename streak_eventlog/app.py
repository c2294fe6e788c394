"""The receiver's HTTP side (ASGI, with Starlette's Request and Response): the custom-events
contract (one event, or a batch), Streak deliveries, health. Any other path answers 404, a known
path with another method 405, both one line of JSON.

Order of checks on the POST routes: auth (401) -> content type (415) -> body size (413, read in
chunks and cut at the limit, so an oversized body is never held whole) -> JSON, what may be stored
(``contract.check_storable``: NUL, lone surrogates, integers beyond 64 bits, nesting) and the
contract (400) -> durable commit -> 2xx. An error answers one line of JSON
``{"error": ..., "field": ...}`` and stores nothing. Everything a commit could choke on is refused
before it, so a bad body never shares a commit group (and its failure) with other requests. Keys
and tokens are compared with :func:`hmac.compare_digest` and never echoed.

A batch goes through the same checks as a whole (a fault of the body refuses it all), then each
event by the single route's rules: the good ones are submitted together (one commit) and the answer,
sent after that commit, holds a result per event in order: what the single route would have answered
for it (``{"status": 202, "event_key": ...}`` or ``{"status": 400, "error": ..., "field": ...}``).

Privacy (``[privacy]``, streak_source/privacy/): a delivered Streak object is protected as its
table's objects are before anything is taken from it, and a custom event's ``properties`` and
``distinct_id`` as ``events.properties`` / ``events.distinct_id`` say, all before the spool is written.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from streak_source.privacy import NO_PRIVACY, PrivacyPolicy

from .contract import ContractError, CustomEvent, parse_body, parse_custom_batch, parse_custom_event
from .spool import Spool, SpoolRecord, now_ms
from .webhook_events import WEBHOOK_EVENTS, event_from_object

INGESTION_PATH: Final = "/events/ingestion/v1"
BATCH_PATH: Final = "/events/ingestion/v1/batch"
WEBHOOK_PREFIX: Final = "/webhooks/streak/"
"""Followed by the Streak event's name: ``/webhooks/streak/BOX_CHANGE_STAGE``."""
HEALTH_PATH: Final = "/health"
API_KEY_HEADER: Final = "x-api-key"
TOKEN_HEADER: Final = "x-streak-webhook-token"


@dataclass(frozen=True)
class ReceiverSettings:
    api_key: str
    webhook_token: str
    max_body_bytes: int


def _error_body(field: str, reason: str) -> dict[str, str]:
    return {"error": f"{field} {reason}", "field": field}


def _error(status: int, field: str, reason: str) -> Response:
    return Response(
        json.dumps(_error_body(field, reason), ensure_ascii=False) + "\n",
        status_code=status,
        media_type="application/json",
    )


def _ok(body: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(body) + "\n", status_code=status, media_type="application/json")


def _same(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def _is_json(request: Request) -> bool:
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json"))


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ContractError(413, "body", f"is larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ContractError(413, "body", f"is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def api_record(event: CustomEvent, received_ms: int, privacy: PrivacyPolicy = NO_PRIVACY) -> SpoolRecord:
    """A custom event as the spool stores it: keyed ``api:<distinct_id>`` (so a repeat updates it),
    or ``api:~<random>`` without one (every post a new event); ``privacy`` applied first."""
    if privacy.active:
        properties, distinct_id = privacy.protect_custom_event(event.properties, event.distinct_id)
        event = dataclasses.replace(event, properties=properties, distinct_id=distinct_id)
    if event.distinct_id is not None:
        key = "api:" + event.distinct_id
    else:
        key = "api:~" + uuid.uuid4().hex
    return SpoolRecord(
        event_key=key,
        event_name=event.event_name,
        source="api",
        received_ms=received_ms,
        timestamp_ms=event.timestamp_ms,
        distinct_id=event.distinct_id,
        location_id=event.location_id,
        contact_key=event.contact_key,
        box_key=event.box_key,
        properties=event.properties,
    )


Handler = Callable[[Request], Awaitable[Response]]


class Receiver:
    """The routes over one spool. ``app`` is the ASGI app."""

    def __init__(self, spool: Spool, settings: ReceiverSettings, privacy: PrivacyPolicy = NO_PRIVACY) -> None:
        self.spool = spool
        self.settings = settings
        self.privacy = privacy
        self.routes: dict[str, tuple[str, Handler]] = {
            INGESTION_PATH: ("POST", self.ingest),
            BATCH_PATH: ("POST", self.ingest_batch),
            HEALTH_PATH: ("GET", self.health),
        }

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI app: four fixed routes found by a dict lookup. (Starlette's router and middleware
        cost about 30 us a request, an eighth of a single event's whole CPU; its Request and Response
        are kept.)"""
        if scope["type"] == "lifespan":  # nothing to start or stop (serve.py turns it off; test clients send it)
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return  # no websockets
        path, method = scope["path"], scope["method"]
        route = self.routes.get(path)
        if route is None and path.startswith(WEBHOOK_PREFIX) and "/" not in path[len(WEBHOOK_PREFIX):]:
            scope["path_params"] = {"event": path[len(WEBHOOK_PREFIX):]}
            route = ("POST", self.webhook)
        if route is None:
            response = _error(404, "path", "is not a route of the events receiver")
        elif method != route[0]:
            response = _error(405, "method", f"must be {route[0]}")
            response.headers["allow"] = route[0]
        else:
            response = await route[1](Request(scope, receive))
        await response(scope, receive, send)

    async def _store(self, records: list[SpoolRecord]) -> None:
        if records:
            await asyncio.wrap_future(self.spool.submit(records))

    async def _guarded(self, request: Request, header: str, secret: str, field: str) -> bytes:
        if not _same(request.headers.get(header), secret):
            raise ContractError(401, field, "missing or wrong")
        if not _is_json(request):
            raise ContractError(415, "content-type", "must be application/json")
        return await _body(request, self.settings.max_body_bytes)

    async def ingest(self, request: Request) -> Response:
        received = now_ms()
        try:
            raw = await self._guarded(request, API_KEY_HEADER, self.settings.api_key, "X-API-Key")
            event = parse_custom_event(raw)
        except ContractError as exc:
            return _error(exc.status, exc.field, exc.reason)
        record = api_record(event, received, self.privacy)
        try:
            await self._store([record])
        except Exception as exc:  # noqa: BLE001 - not stored: the client must retry
            return _error(503, "spool", f"not stored ({type(exc).__name__})")
        return _ok({"success": True, "event_key": record.event_key}, 202)

    async def ingest_batch(self, request: Request) -> Response:
        received = now_ms()
        try:
            raw = await self._guarded(request, API_KEY_HEADER, self.settings.api_key, "X-API-Key")
            parsed = parse_custom_batch(raw)
        except ContractError as exc:
            return _error(exc.status, exc.field, exc.reason)
        records = [api_record(one, received, self.privacy) for one in parsed if isinstance(one, CustomEvent)]
        try:
            await self._store(records)
        except Exception as exc:  # noqa: BLE001 - none stored: the client must retry the batch
            return _error(503, "spool", f"not stored ({type(exc).__name__})")
        stored = iter(records)
        results = [
            {"status": one.status, **_error_body(one.field, one.reason)}
            if isinstance(one, ContractError)
            else {"status": 202, "event_key": next(stored).event_key}
            for one in parsed
        ]
        return _ok(
            {"success": len(records) == len(parsed), "accepted": len(records),
             "refused": len(parsed) - len(records), "results": results}
        )

    async def webhook(self, request: Request) -> Response:
        received = now_ms()
        event = request.path_params["event"]
        if event not in WEBHOOK_EVENTS:
            return _error(404, "event", f"unknown Streak webhook event {event[:60]!r}")
        try:
            raw = await self._guarded(request, TOKEN_HEADER, self.settings.webhook_token, "X-Streak-Webhook-Token")
            body = parse_body(raw)
            if not isinstance(body, list) or not all(isinstance(o, dict) for o in body):
                raise ContractError(400, "body", "must be a JSON array of objects")
            found = [event_from_object(event, self.privacy.protect_webhook_object(event, obj), f"body[{i}]")
                     for i, obj in enumerate(body)]
        except ContractError as exc:
            return _error(exc.status, exc.field, exc.reason)
        records = []
        for one in found:
            records.append(
                SpoolRecord(
                    event_key=one.distinct_id,
                    event_name=event,
                    source="webhook",
                    received_ms=received,
                    timestamp_ms=one.timestamp_ms,
                    distinct_id=one.distinct_id,
                    contact_key=one.contact_key,
                    box_key=one.box_key,
                    pipeline_key=one.pipeline_key,
                    properties=one.properties,
                )
            )
        try:
            await self._store(records)
        except Exception as exc:  # noqa: BLE001 - Streak retries a non-2xx
            return _error(503, "spool", f"not stored ({type(exc).__name__})")
        return _ok({"success": True, "stored": len(records)})

    async def health(self, request: Request) -> Response:
        return _ok({"ok": True, "spool_commits": self.spool.commits, "events_written": self.spool.events_written})
