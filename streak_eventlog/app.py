"""The receiver's HTTP side (plain ASGI): the custom-events
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

Plain ASGI, no framework: four fixed routes found by a dict lookup, the three headers a route reads
taken from the scope, the body read from ``receive``, the answer sent in two messages: a single
event's CPU is mostly per-request overhead, so none is spent on a framework (docs/events.md,
"Performance").
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

import orjson

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
API_KEY_HEADER: Final = b"x-api-key"
TOKEN_HEADER: Final = b"x-streak-webhook-token"
JSON_HEADERS: Final = [(b"content-type", b"application/json")]


@dataclass(frozen=True)
class ReceiverSettings:
    api_key: str
    webhook_token: str
    max_body_bytes: int


def _error_body(field: str, reason: str) -> dict[str, str]:
    return {"error": f"{field} {reason}", "field": field}


@dataclass(frozen=True)
class Answer:
    """A response: status, one line of JSON, extra headers (``allow`` on a 405)."""

    status: int
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...] = ()

    async def __call__(self, send: Send) -> None:
        headers = [*JSON_HEADERS, (b"content-length", str(len(self.body)).encode()), *self.headers]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


def _json_line(body: dict[str, Any]) -> bytes:
    """``body`` as one line of JSON (UTF-8): orjson, or ``json`` for what orjson refuses."""
    try:
        return orjson.dumps(body) + b"\n"
    except orjson.JSONEncodeError:
        return (json.dumps(body) + "\n").encode()


def _error(status: int, field: str, reason: str) -> Answer:
    return Answer(status, _json_line(_error_body(field, reason)))


def _ok(body: dict[str, Any], status: int = 200) -> Answer:
    return Answer(status, _json_line(body))


class Disconnected(Exception):
    """The client went away before its body was read: nothing is stored, nothing answered."""


@dataclass
class Call:
    """One HTTP request as a route sees it: the scope's headers (names lower-case, the first of
    each kept, values as Latin-1 text like any ASGI framework gives them) and the unread body."""

    scope: Scope
    receive: Receive

    def header(self, name: bytes) -> str | None:
        for key, value in self.scope["headers"]:
            if key == name:
                return value.decode("latin-1")
        return None

    @property
    def path_params(self) -> dict[str, str]:
        return self.scope["path_params"]


def _same(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def _is_json(call: Call) -> bool:
    kind = (call.header(b"content-type") or "").split(";", 1)[0].strip().lower()
    return kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json"))


async def _body(call: Call, limit: int) -> bytes:
    declared = call.header(b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ContractError(413, "body", f"is larger than {limit} bytes")
    chunks, size = [], 0
    while True:
        message = await call.receive()
        if message["type"] != "http.request":
            raise Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise ContractError(413, "body", f"is larger than {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


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


Handler = Callable[[Call], Awaitable[Answer]]


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
        """The ASGI app: four fixed routes found by a dict lookup."""
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
            response = dataclasses.replace(response, headers=((b"allow", route[0].encode()),))
        else:
            try:
                response = await route[1](Call(scope, receive))
            except Disconnected:
                return
        await response(send)

    async def _store(self, records: list[SpoolRecord]) -> None:
        if records:
            await self.spool.write_async(records)

    async def _guarded(self, call: Call, header: bytes, secret: str, field: str) -> bytes:
        if not _same(call.header(header), secret):
            raise ContractError(401, field, "missing or wrong")
        if not _is_json(call):
            raise ContractError(415, "content-type", "must be application/json")
        return await _body(call, self.settings.max_body_bytes)

    async def ingest(self, call: Call) -> Answer:
        received = now_ms()
        try:
            raw = await self._guarded(call, API_KEY_HEADER, self.settings.api_key, "X-API-Key")
            event = parse_custom_event(raw)
        except ContractError as exc:
            return _error(exc.status, exc.field, exc.reason)
        record = api_record(event, received, self.privacy)
        try:
            await self._store([record])
        except Exception as exc:  # noqa: BLE001 - not stored: the client must retry
            return _error(503, "spool", f"not stored ({type(exc).__name__})")
        return _ok({"success": True, "event_key": record.event_key}, 202)

    async def ingest_batch(self, call: Call) -> Answer:
        received = now_ms()
        try:
            raw = await self._guarded(call, API_KEY_HEADER, self.settings.api_key, "X-API-Key")
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

    async def webhook(self, call: Call) -> Answer:
        received = now_ms()
        event = call.path_params["event"]
        if event not in WEBHOOK_EVENTS:
            return _error(404, "event", f"unknown Streak webhook event {event[:60]!r}")
        try:
            raw = await self._guarded(call, TOKEN_HEADER, self.settings.webhook_token, "X-Streak-Webhook-Token")
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

    async def health(self, call: Call) -> Answer:
        return _ok({"ok": True, "spool_commits": self.spool.commits, "events_written": self.spool.events_written})
