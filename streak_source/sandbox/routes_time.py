"""``__sandbox__`` routes of sandbox time (timeline.py): move the account on, and its ground truth.

* ``POST advance?days=N`` (default 1): simulate N more days; ``{"day": D, "changes": n}``.
  Everything served afterwards (API routes, ``account``, ``stats``' ``needed_calls``) is day D,
  byte-identical to a sandbox started at day D.
* ``GET history``: ``{box_key: [{"stage_key": ..., "entered_at": <ms>}, ...]}``, deleted boxes
  included.
* ``GET changes?since_day=N`` (default 0): ``{"day": D, "since_day": N, "changes": [...]}``, every
  change made after day N, oldest first: ``{"day", "type", "at", "pipeline_key", "box_key",
  "key", ...}`` (evolve.py lists the types and their extra keys).
* ``GET sales_process``: the true parameters of the sales process the boxes move by, and its exact
  figures, per pipeline key (sales_process.py ``describe``; docs/sandbox.md shows the shape).

No auth, not counted in the stats, like every ``__sandbox__`` route.
"""

from __future__ import annotations

import threading
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from .endpoints import API_PREFIX
from .model import Account
from .responses import error_response, json_response, to_json_bytes
from .sales_process import describe
from .timeline import MAX_DAYS, Change, Timeline

ADVANCE_ROUTE: Final = API_PREFIX + "__sandbox__/advance"
HISTORY_ROUTE: Final = API_PREFIX + "__sandbox__/history"
CHANGES_ROUTE: Final = API_PREFIX + "__sandbox__/changes"
SALES_PROCESS_ROUTE: Final = API_PREFIX + "__sandbox__/sales_process"


def sales_process_of(account: Account, pace: float = 1.0) -> dict[str, Any]:
    """Pipeline key -> its sales process's parameters and exact figures at ``pace`` (``Rates.pace``);
    pipelines without one, such as the empty "Partnerships", are left out."""
    return {
        key: describe(process, account.pipelines_by_key[key], pace)
        for key, process in account.processes.items()
        if key in account.pipelines_by_key
    }


def _int_query(request: Request, name: str, default: int) -> int | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        return None


class TimeRoutes:
    """Mixed into ``SandboxServer``, which provides the timeline, the lock and ``advance``."""

    sim_time: Timeline
    account: Account
    """The account's timeline (named so: ``timeline`` is the box timeline route's handler)."""
    state_lock: threading.RLock

    def advance(self, days: int) -> list[Change]:  # pragma: no cover - SandboxServer has it
        raise NotImplementedError

    async def _advance_endpoint(self, request: Request) -> Response:
        days = _int_query(request, "days", 1)
        if days is None or not 0 <= days <= MAX_DAYS:
            return error_response(400, f"days must be an integer between 0 and {MAX_DAYS}")
        try:
            made = self.advance(days)
        except ValueError as exc:
            return error_response(400, str(exc))
        return json_response(to_json_bytes({"day": self.sim_time.day, "changes": len(made)}))

    async def _history_endpoint(self, request: Request) -> Response:
        with self.state_lock:
            history = self.sim_time.history()
        return json_response(to_json_bytes(history))

    async def _changes_endpoint(self, request: Request) -> Response:
        since = _int_query(request, "since_day", 0)
        with self.state_lock:
            day = self.sim_time.day
            if since is None or not 0 <= since <= day:
                return error_response(400, f"since_day must be an integer between 0 and {day}")
            changes = self.sim_time.changes(since)
        return json_response(to_json_bytes({"day": day, "since_day": since, "changes": changes}))

    async def _sales_process_endpoint(self, request: Request) -> Response:
        with self.state_lock:
            process = sales_process_of(self.account, self.sim_time.rates.pace)
        return json_response(to_json_bytes(process))
