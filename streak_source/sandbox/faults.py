"""Network conditions and injected faults: latency, a server-side rate limit, and ``--fault`` specs.

Everything here is decided deterministically from the sandbox seed, so a failing run repeats: the
share of requests a fault hits is drawn from a hash of (seed, fault, request URL, how many times
that URL was asked), not from arrival order, so concurrency does not change which requests fail.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

from .model import Account

FAULT_SYNTAX: Final = """\
fault specs (--fault SPEC, repeatable; SPEC = KIND[=VALUE][:OPTION=VALUE]...):
  status=CODE       answer HTTP CODE (e.g. 500, 502, 503) with a JSON error body instead of the
                    real response
  hang=SECONDS      hold the request SECONDS (e.g. longer than the client's timeout), then answer
                    normally; never blocks other requests
  malformed         answer 200 with a truncated, invalid JSON body
  null              answer 200 with the valid JSON body null where the reference promises an
                    object or a list (e.g. route=/api/v1/users/me)
  gone=N            N boxes, chosen from the seed among boxes that have children, are "deleted
                    mid-run": still listed in their pipeline, but GET /v1/boxes/{box_key} and their
                    child endpoints answer 404. Their keys: stats()["faults"]["gone_box_keys"]
  revoke-after=N    the API key authenticates N calls, then answers 401 from then on
  repeat-page       a paged list never ends: whatever page or cursor is asked, the first page
                    again, with hasNextPage true ({results, hasNextPage} routes) or a cursor that
                    leads back to the start ({results, cursor} routes). Give route=, e.g.
                    route=/api/v2/boxes/{box_key}/tasks or /api/v2/teams/{team_key}/contacts
  invent-boxes      the paged box list (v1/pipelines/{pipeline_key}/boxes with page/limit) never
                    ends and never repeats: every page is full of boxes with new keys
options:
  route=TEMPLATE    only this route template, as in stats' requests_by_route, e.g.
                    /api/v2/boxes/{box_key}/tasks (the /api prefix may be left out). Default: every
                    route; for gone: the single-box route and the five box child routes
  share=F           fraction 0..1 of matching requests hit (default 1). Deterministic: a hash of the
                    seed, the fault, the request URL and how often that URL was asked
  times=N           inject at most N times in all (default: no limit)
  key=KEY           revoke-after only: which API key (default: the first --api-key)
examples:
  --fault status=503:share=0.2:route=/api/v2/boxes/{box_key}/tasks
  --fault hang=30:route=/api/v1/pipelines/{pipeline_key}/boxes:times=1
  --fault gone=3
  --fault malformed:route=/api/v1/snippets:times=2
  --fault null:route=/api/v1/users/me
  --fault revoke-after=200
  --fault repeat-page:route=/api/v2/boxes/{box_key}/tasks
  --fault invent-boxes
"""

FAULT_KINDS: Final = (
    "status",
    "hang",
    "malformed",
    "null",
    "gone",
    "revoke-after",
    "repeat-page",
    "invent-boxes",
)
_OPTIONS_BY_KIND: Final[dict[str, frozenset[str]]] = {
    "status": frozenset({"route", "share", "times"}),
    "hang": frozenset({"route", "share", "times"}),
    "malformed": frozenset({"route", "share", "times"}),
    "null": frozenset({"route", "share", "times"}),
    "gone": frozenset({"route"}),
    "revoke-after": frozenset({"key"}),
    "repeat-page": frozenset({"route", "share", "times"}),
    "invent-boxes": frozenset({"times"}),
}
_OPTION_SPLIT: Final = re.compile(r":(?=(?:route|share|times|key)=)")


class FaultSpecError(ValueError):
    """A ``--fault`` spec that does not parse or does not fit the account/routes."""


@dataclass(frozen=True)
class FaultSpec:
    kind: str
    amount: float | None
    """status: the HTTP code; hang: seconds; gone: box count; revoke-after: call count."""
    route: str | None = None
    share: float = 1.0
    times: int | None = None
    key: str | None = None
    text: str = ""
    """The spec as written, used to label it in stats."""


def normalize_route(route: str) -> str:
    """``v2/boxes/{box_key}/tasks`` and ``/api/v2/...`` both mean the full template."""
    route = route.strip()
    if route.startswith("/api/"):
        return route
    return "/api/" + route.lstrip("/")


def _number(kind: str, raw: str | None, integer: bool, minimum: float) -> float:
    if raw is None or raw == "":
        raise FaultSpecError(f"{kind} needs a value, e.g. {kind}=3")
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        raise FaultSpecError(
            f"{kind}={raw}: not a{'n integer' if integer else ' number'}"
        ) from None
    if value < minimum or (not integer and not math.isfinite(value)):
        raise FaultSpecError(f"{kind}={raw}: must be >= {minimum:g}")
    return value


def parse_fault(text: str) -> FaultSpec:
    """Parse one ``--fault`` spec (syntax: :data:`FAULT_SYNTAX`)."""
    head, *option_parts = _OPTION_SPLIT.split(text.strip())
    kind, has_value, raw_value = head.partition("=")
    kind = kind.strip().lower()
    if kind not in FAULT_KINDS:
        raise FaultSpecError(
            f"unknown fault kind {kind!r} in {text!r}; known: {', '.join(FAULT_KINDS)}"
        )
    options: dict[str, str] = {}
    for part in option_parts:
        name, _, value = part.partition("=")
        if name in options:
            raise FaultSpecError(f"option {name} given twice in {text!r}")
        if name not in _OPTIONS_BY_KIND[kind]:
            allowed = ", ".join(sorted(_OPTIONS_BY_KIND[kind])) or "none"
            raise FaultSpecError(f"option {name} does not apply to {kind} (allowed: {allowed})")
        options[name] = value
    amount: float | None
    if kind == "status":
        amount = _number(kind, raw_value, integer=True, minimum=400)
        if amount > 599:
            raise FaultSpecError(f"status={raw_value}: must be an HTTP error code 400..599")
    elif kind == "hang":
        amount = _number(kind, raw_value, integer=False, minimum=0)
    elif kind in ("malformed", "null", "repeat-page", "invent-boxes"):
        if has_value:
            raise FaultSpecError(f"{kind} takes no value")
        amount = None
    else:
        amount = _number(kind, raw_value, integer=True, minimum=1)
    share = 1.0
    if "share" in options:
        share = _number("share", options["share"], integer=False, minimum=0)
        if share > 1:
            raise FaultSpecError(f"share={options['share']}: must be within 0..1")
    times = (
        int(_number("times", options["times"], integer=True, minimum=1))
        if "times" in options
        else None
    )
    route = normalize_route(options["route"]) if options.get("route") else None
    return FaultSpec(kind, amount, route, share, times, options.get("key") or None, text.strip())


class TokenBucket:
    """Server-side rate limit: capacity = one second's worth of requests, refilled continuously."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError("rate limit must be > 0 requests/second")
        self.rate = rate
        self.capacity = max(1.0, rate)
        self._tokens = self.capacity
        self._clock = clock
        self._last = clock()

    def take(self) -> float:
        """Take a token: 0.0 if allowed, else the seconds until one is available."""
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rate


def retry_after_seconds(wait: float) -> int:
    """``Retry-After`` is whole seconds; never 0, or clients would hammer."""
    return max(1, math.ceil(wait))


async def hold(seconds: float, stop: threading.Event) -> None:
    """Sleep without blocking the loop; cut short when the sandbox shuts down."""
    deadline = time.monotonic() + seconds
    while not stop.is_set():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        await asyncio.sleep(min(remaining, 0.05))


def _unit_draw(seed: int, fault_index: int, identity: str, occurrence: int) -> float:
    digest = hashlib.blake2b(
        f"{seed}|{fault_index}|{identity}|{occurrence}".encode(), digest_size=8
    )
    return int.from_bytes(digest.digest(), "big") / 2**64


class FaultInjector:
    """Live state of the configured faults: who is gone, which keys are revoked, what was hit."""

    def __init__(
        self,
        specs: Iterable[FaultSpec],
        *,
        seed: int,
        account: Account,
        api_keys: tuple[str, ...],
        known_routes: Iterable[str],
        box_routes: Iterable[str],
    ) -> None:
        self.specs = tuple(specs)
        self.seed = seed
        known = set(known_routes)
        box_route_set = tuple(box_routes)
        for spec in self.specs:
            if spec.route is not None and spec.route not in known:
                raise FaultSpecError(
                    f"{spec.text}: unknown route {spec.route}; "
                    f"known routes: {', '.join(sorted(known))}"
                )
            if spec.kind == "gone" and spec.route is not None and spec.route not in box_route_set:
                raise FaultSpecError(
                    f"{spec.text}: gone applies to box routes only: {', '.join(box_route_set)}"
                )
            if spec.kind == "revoke-after" and spec.key is not None and spec.key not in api_keys:
                raise FaultSpecError(f"{spec.text}: key is not one of the sandbox's API keys")
        self._injected = [0] * len(self.specs)
        self._occurrences: Counter[tuple[int, str]] = Counter()
        self._revoke_limits: dict[str, int] = {}
        for spec in self.specs:
            if spec.kind == "revoke-after":
                assert spec.amount is not None
                key = spec.key or api_keys[0]
                self._revoke_limits[key] = min(
                    int(spec.amount), self._revoke_limits.get(key, 1 << 62)
                )
        self._authenticated: Counter[str] = Counter()
        self.revoked_keys: list[str] = []
        self.revoked_calls = 0
        self.gone_hits = 0
        self.gone_routes: dict[str, frozenset[str]] = self._choose_gone(account, box_route_set)

    def _choose_gone(
        self, account: Account, box_routes: tuple[str, ...]
    ) -> dict[str, frozenset[str]]:
        """Box key -> routes that answer 404 for it. Chosen among boxes a client must visit."""
        candidates = sorted(
            box.key
            for box in account.all_boxes()
            if box.tasks or box.threads or box.comments or box.meetings or box.files
        )
        gone: dict[str, frozenset[str]] = {}
        for index, spec in enumerate(self.specs):
            if spec.kind != "gone":
                continue
            assert spec.amount is not None
            wanted = int(spec.amount)
            if wanted > len(candidates):
                raise FaultSpecError(
                    f"{spec.text}: the account has only {len(candidates)} boxes with children"
                )
            routes = frozenset([spec.route]) if spec.route else frozenset(box_routes)
            for box_key in random.Random(f"{self.seed}:gone:{index}").sample(candidates, wanted):
                gone[box_key] = gone.get(box_key, frozenset()) | routes
        return gone

    @property
    def gone_box_keys(self) -> list[str]:
        return sorted(self.gone_routes)

    def is_gone(self, box_key: str, route: str) -> bool:
        routes = self.gone_routes.get(box_key)
        if routes is None or route not in routes:
            return False
        self.gone_hits += 1
        return True

    def admit(self, api_key: str) -> bool:
        """Count an authenticated call; False once the key's revoke-after budget is spent."""
        limit = self._revoke_limits.get(api_key)
        if limit is None:
            return True
        if self._authenticated[api_key] >= limit:
            if api_key not in self.revoked_keys:
                self.revoked_keys.append(api_key)
            self.revoked_calls += 1
            return False
        self._authenticated[api_key] += 1
        return True

    def pick(self, kind: str, route: str, identity: str) -> FaultSpec | None:
        """The first ``kind`` fault that hits this request, if any (and count the hit)."""
        for index, spec in enumerate(self.specs):
            if spec.kind != kind or (spec.route is not None and spec.route != route):
                continue
            if spec.times is not None and self._injected[index] >= spec.times:
                continue
            self._occurrences[(index, identity)] += 1
            occurrence = self._occurrences[(index, identity)]
            if (
                spec.share < 1.0
                and _unit_draw(self.seed, index, identity, occurrence) >= spec.share
            ):
                continue
            self._injected[index] += 1
            return spec
        return None

    def snapshot(self) -> dict[str, Any]:
        return {
            "specs": [spec.text for spec in self.specs],
            "injected": {
                spec.text: count
                for spec, count in zip(self.specs, self._injected, strict=True)
                if spec.kind in ("status", "hang", "malformed", "null", "repeat-page", "invent-boxes")
            },
            "gone_box_keys": self.gone_box_keys,
            "gone_hits": self.gone_hits,
            "revoked_keys_count": len(self.revoked_keys),
            "revoked_calls": self.revoked_calls,
        }
