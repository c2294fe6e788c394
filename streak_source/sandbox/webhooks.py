"""Webhooks (streak_api.md 6.18): the registry behind ``/v2/webhooks``, and delivery on ``advance``.

Registry: a webhook is ``{key, event, targetUrl, pipelineKey | teamKey, creationTimestamp}`` plus
its token, which is kept for deliveries but never served back (listings omit it).

Delivery, as the reference describes Streak's: after ``advance`` every change whose type a webhook
subscribes to (in its pipeline) is POSTed to its ``targetUrl`` as a JSON **array** of the updated
objects, in their REST shape, with no event name; with a token, header ``X-Streak-Webhook-Token``.
The sandbox sends one delivery per webhook and simulated day (at most ``CHUNK`` objects each).
Each object is rendered after the day, with the change's own time stamped on it
(``lastUpdatedTimestamp``; for ``BOX_CHANGE_STAGE`` also ``stageKey`` = the stage entered and
``lastStageChangeTimestamp``; ``TASK_DUE`` keeps its ``dueDate``, which is the change's time), so
two changes of one object are two distinct deliveries (ASSUMED: Streak sends the object as saved).

Replies: 2xx = delivered; 410 = the webhook is deleted (nothing more is sent to it); anything else
(or no answer) = retried with exponential backoff (``backoff_s`` x 2^n, capped at 30 s) up to
``attempts`` tries, then given up. One background thread sends everything, so the server's event
loop is never blocked by a slow receiver; ``advance`` only renders and queues.
``log()`` lists every attempt; ``wait_idle()`` waits until nothing is queued or in flight.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

import requests

from .keys import datastore_key
from .model import Account
from .render import render_stage
from .render_boxes import render_box, render_comment, render_meeting, render_task
from .responses import to_json_bytes
from .timeline import Change, Timeline

PIPELINE_EVENTS: Final = frozenset(
    {
        "BOX_CREATE", "BOX_DELETE", "BOX_EDIT", "BOX_CHANGE_STAGE", "BOX_CHANGE_PIPELINE",
        "BOX_NEW_EMAIL_ADDRESS", "STAGE_CREATE", "COMMENT_CREATE", "MEETING_CREATE",
        "MEETING_UPDATE", "TASK_CREATE", "TASK_COMPLETE", "TASK_DUE",
    }
)
TEAM_EVENTS: Final = frozenset(
    {"CONTACT_CREATE", "CONTACT_UPDATE", "CONTACT_DELETE", "ORG_CREATE", "ORG_UPDATE", "ORG_DELETE"}
)
TOKEN_HEADER: Final = "X-Streak-Webhook-Token"
CHUNK: Final = 100
MAX_BACKOFF_S: Final = 30.0
REQUEST_TIMEOUT_S: Final = 10.0


@dataclass
class Webhook:
    key: str
    event: str
    target_url: str
    scope: str
    """``pipelineKey`` or ``teamKey``."""
    scope_key: str
    token: str | None
    created_ms: int

    def as_json(self) -> dict[str, Any]:
        """What the API serves: never the token."""
        return {
            "key": self.key,
            "event": self.event,
            "targetUrl": self.target_url,
            self.scope: self.scope_key,
            "creationTimestamp": self.created_ms,
            "hasToken": self.token is not None,
        }


@dataclass(order=True)
class _Job:
    due: float
    seq: int
    webhook_key: str = field(compare=False)
    body: bytes = field(compare=False)
    objects: int = field(compare=False)
    day: int = field(compare=False)
    attempt: int = field(compare=False, default=1)


def _box_object(account: Account, timeline: Timeline, change: Change) -> dict[str, Any]:
    box = account.boxes_by_key.get(change.key) or timeline.deleted_boxes.get(change.key)
    if box is None:
        return {"key": change.key, "boxKey": change.key, "pipelineKey": change.pipeline_key}
    return render_box(box, account)


def render_change(account: Account, timeline: Timeline, lookups: Any, change: Change) -> dict[str, Any]:
    """The object a delivery of ``change`` carries, stamped with the change's time."""
    kind = change.type
    obj: dict[str, Any]
    if kind.startswith("BOX_"):
        obj = _box_object(account, timeline, change)
    elif kind.startswith("TASK_") and change.key in lookups.tasks:
        task, box = lookups.tasks[change.key]
        obj = render_task(task, box, account)
    elif kind == "COMMENT_CREATE" and change.key in lookups.comments:
        comment, box = lookups.comments[change.key]
        obj = render_comment(comment, box, account)
    elif kind.startswith("MEETING_") and change.key in lookups.meetings:
        meeting, box = lookups.meetings[change.key]
        obj = render_meeting(meeting, box)
    elif kind == "STAGE_CREATE" and change.pipeline_key in account.pipelines_by_key:
        pipeline = account.pipelines_by_key[change.pipeline_key]
        stage = next((s for s in pipeline.stages if s.key == change.key), None)
        count = sum(1 for b in pipeline.boxes if b.stage_key == change.key)
        obj = render_stage(stage, count) if stage is not None else {"key": change.key}
        obj["pipelineKey"] = change.pipeline_key
    else:  # the object is gone since (its box was deleted later the same advance)
        obj = {"key": change.key, "boxKey": change.box_key, "pipelineKey": change.pipeline_key}
    obj = dict(obj)
    extra = dict(change.extra)
    if kind == "TASK_DUE":
        obj["dueDate"] = change.at
    else:
        obj["lastUpdatedTimestamp"] = change.at
        if "lastSavedTimestamp" in obj:
            obj["lastSavedTimestamp"] = change.at
    if kind == "BOX_CHANGE_STAGE":
        obj["stageKey"] = extra.get("stage_key", obj.get("stageKey"))
        obj["lastStageChangeTimestamp"] = change.at
    return obj


class WebhookHub:
    """The registry and the delivery thread of one sandbox server."""

    def __init__(self, attempts: int = 8, backoff_s: float = 0.25) -> None:
        self.attempts = attempts
        self.backoff_s = backoff_s
        self._hooks: dict[str, Webhook] = {}
        self._ids = itertools.count(1)
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._queue: list[_Job] = []
        self._in_flight = 0
        self._log: list[dict[str, Any]] = []
        self._stopped = False
        self._thread: threading.Thread | None = None
        self._session = requests.Session()

    # ------------------------------------------------------------------ registry

    def register(self, event: str, target_url: str, scope: str, scope_key: str, token: str | None, now_ms: int) -> Webhook:
        with self._cond:
            key = datastore_key(("Webhook", 900_000 + next(self._ids)))
            hook = Webhook(key, event, target_url, scope, scope_key, token, now_ms)
            self._hooks[key] = hook
            return hook

    def get(self, key: str) -> Webhook | None:
        with self._cond:
            return self._hooks.get(key)

    def edit(self, key: str, event: str, target_url: str, token: str | None) -> Webhook:
        with self._cond:
            hook = self._hooks[key]
            hook.event, hook.target_url, hook.token = event, target_url, token
            return hook

    def delete(self, key: str) -> bool:
        with self._cond:
            return self._hooks.pop(key, None) is not None

    def listed(self, scope: str, scope_key: str) -> list[Webhook]:
        with self._cond:
            return [h for h in self._hooks.values() if h.scope == scope and h.scope_key == scope_key]

    # ------------------------------------------------------------------ delivery

    def changed(self, account: Account, timeline: Timeline, lookups: Any, changes: Iterable[Change]) -> int:
        """Queue the deliveries of ``changes`` (called under the server's state lock); returns how many."""
        with self._cond:
            hooks = list(self._hooks.values())
        if not hooks:
            return 0
        by_hook: dict[tuple[str, int], list[dict[str, Any]]] = {}
        for change in changes:
            for hook in hooks:
                if hook.event == change.type and hook.scope == "pipelineKey" and hook.scope_key == change.pipeline_key:
                    by_hook.setdefault((hook.key, change.day), []).append(
                        render_change(account, timeline, lookups, change)
                    )
        now = time.monotonic()
        queued = 0
        with self._cond:
            for (hook_key, day), objects in by_hook.items():
                for start in range(0, len(objects), CHUNK):
                    part = objects[start : start + CHUNK]
                    heapq.heappush(self._queue, _Job(now, next(self._seq), hook_key, to_json_bytes(part), len(part), day))
                    queued += 1
            self._ensure_thread()
            self._cond.notify_all()
        return queued

    def _ensure_thread(self) -> None:
        if self._thread is None and not self._stopped:
            self._thread = threading.Thread(target=self._run, name="sandbox-webhooks", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (not self._queue or self._queue[0].due > time.monotonic()):
                    wait = self._queue[0].due - time.monotonic() if self._queue else None
                    self._cond.wait(wait)
                if self._stopped:
                    return
                job = heapq.heappop(self._queue)
                hook = self._hooks.get(job.webhook_key)
                if hook is None:  # deleted meanwhile
                    self._cond.notify_all()
                    continue
                self._in_flight += 1
            status, error = self._send(hook, job.body)
            with self._cond:
                self._in_flight -= 1
                attempt = job.attempt
                outcome = self._settle(hook, job, status)
                self._log.append(
                    {
                        "webhook_key": hook.key, "event": hook.event, "target_url": hook.target_url,
                        "day": job.day, "objects": job.objects, "attempt": attempt,
                        "status": status, "error": error, "outcome": outcome,
                    }
                )
                self._cond.notify_all()

    def _send(self, hook: Webhook, body: bytes) -> tuple[int | None, str | None]:
        headers = {"Content-Type": "application/json"}
        if hook.token is not None:
            headers[TOKEN_HEADER] = hook.token
        try:
            reply = self._session.post(hook.target_url, data=body, headers=headers, timeout=REQUEST_TIMEOUT_S)
        except requests.RequestException as exc:
            return None, type(exc).__name__
        return reply.status_code, None

    def _settle(self, hook: Webhook, job: _Job, status: int | None) -> str:
        """Called with the lock held: what the reply means for the webhook and the job."""
        if status is not None and 200 <= status < 300:
            return "delivered"
        if status == 410:
            self._hooks.pop(hook.key, None)
            return "webhook deleted"
        if job.attempt >= self.attempts:
            return "given up"
        delay = min(MAX_BACKOFF_S, self.backoff_s * 2 ** (job.attempt - 1))
        job.attempt += 1
        job.due = time.monotonic() + delay
        heapq.heappush(self._queue, job)
        return "retry"

    def log(self) -> list[dict[str, Any]]:
        with self._cond:
            return [dict(entry) for entry in self._log]

    def summary(self) -> dict[str, Any]:
        """For ``__sandbox__/stats``: registered webhooks, attempts by outcome, what is pending."""
        with self._cond:
            outcomes: dict[str, int] = {}
            for entry in self._log:
                outcomes[entry["outcome"]] = outcomes.get(entry["outcome"], 0) + 1
            return {
                "registered": len(self._hooks),
                "attempts": len(self._log),
                "by_outcome": outcomes,
                "pending": len(self._queue) + self._in_flight,
            }

    def pending(self) -> int:
        with self._cond:
            return len(self._queue) + self._in_flight

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Wait until nothing is queued or in flight (retries included); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._in_flight, timeout)

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(REQUEST_TIMEOUT_S + 5)
        self._session.close()
