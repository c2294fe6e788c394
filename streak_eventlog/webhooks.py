"""``webhooks register|list|delete``: Streak webhooks pointing at this receiver (streak_api.md 6.18).

* register: one webhook per (scope, event), ``targetUrl`` = ``<receiver URL>webhooks/streak/<EVENT>``
  (the receiver learns the event from its URL), token = ``[events] webhook_token``. Pipelines: the
  ones named (by name or key), else all; default events: every pipeline event; ``--team`` adds the
  team-scoped events (CONTACT_*, ORG_*) for each of the user's teams. Existing identical webhooks
  are left alone (registering twice is idempotent).
* list: every webhook of every pipeline and team the key sees.
* delete KEY, or ``--all-ours``: every webhook whose ``targetUrl`` is one of ours (path
  ``/webhooks/streak/<EVENT>``; with ``--url``, only those under that receiver URL).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from streak_source.client import StreakAPIError, StreakClient

from .streak_api import send_json
from .webhook_events import PIPELINE_EVENTS, TEAM_EVENTS

OUR_PATH: Final = "webhooks/streak/"


@dataclass(frozen=True)
class Hook:
    key: str
    event: str
    target_url: str
    scope: str
    scope_key: str
    scope_name: str

    def line(self) -> str:
        return f"{self.key}\t{self.event}\t{self.scope}={self.scope_name}\t{self.target_url}"


def target_for(receiver_url: str, event: str) -> str:
    return receiver_url.rstrip("/") + "/" + OUR_PATH + event


def is_ours(target_url: str, receiver_url: str | None = None) -> bool:
    if receiver_url is not None and not target_url.startswith(receiver_url.rstrip("/") + "/"):
        return False
    head, _, event = target_url.rpartition("/")
    return head.endswith("/" + OUR_PATH.rstrip("/")) and event in set(PIPELINE_EVENTS) | set(TEAM_EVENTS)


def _pipelines(client: StreakClient) -> list[dict[str, Any]]:
    return [p for p in client.get_list("v1/pipelines") if isinstance(p, dict)]


def _teams(client: StreakClient) -> list[dict[str, Any]]:
    body = client.get_json("v2/users/me/teams")
    items = body.get("results", []) if isinstance(body, dict) else body
    return [t for t in items or [] if isinstance(t, dict)]


def _key(obj: dict[str, Any], *names: str) -> str:
    for name in ("key", *names):
        if isinstance(obj.get(name), str) and obj[name]:
            return str(obj[name])
    return ""


def resolve_pipelines(client: StreakClient, wanted: Sequence[str]) -> list[tuple[str, str]]:
    """(key, name) of the pipelines named (by key or exact name), or of all; unknown -> error."""
    found = [(_key(p, "pipelineKey"), str(p.get("name", ""))) for p in _pipelines(client)]
    found = [(k, n) for k, n in found if k]
    if not wanted:
        return found
    chosen = []
    for want in wanted:
        match = [(k, n) for k, n in found if want in (k, n)]
        if not match:
            raise StreakAPIError(f"no pipeline named or keyed {want!r}")
        chosen += [m for m in match if m not in chosen]
    return chosen


def list_hooks(client: StreakClient) -> list[Hook]:
    hooks: list[Hook] = []
    for key, name in resolve_pipelines(client, ()):
        for h in client.get_list("v2/pipelines/{pipeline_key}/webhooks", pipeline_key=key):
            hooks.append(Hook(_key(h), str(h.get("event")), str(h.get("targetUrl")), "pipeline", key, name))
    for team in _teams(client):
        key = _key(team, "teamKey")
        for h in client.get_list("v2/teams/{team_key}/webhooks", team_key=key):
            hooks.append(Hook(_key(h), str(h.get("event")), str(h.get("targetUrl")), "team", key, str(team.get("name", key))))
    return hooks


def register(
    client: StreakClient,
    receiver_url: str,
    token: str,
    events: Iterable[str] = (),
    pipelines: Sequence[str] = (),
    team: bool = False,
) -> list[Hook]:
    """Create the missing webhooks; returns the ones created."""
    chosen = list(dict.fromkeys(events))
    unknown = [e for e in chosen if e not in PIPELINE_EVENTS and e not in TEAM_EVENTS]
    if unknown:
        raise ValueError(f"unknown Streak webhook event(s): {', '.join(unknown)}")
    pipeline_events = [e for e in chosen if e in PIPELINE_EVENTS] if chosen else list(PIPELINE_EVENTS)
    team_events = [e for e in chosen if e in TEAM_EVENTS] if chosen else list(TEAM_EVENTS) if team else []
    if team_events and not team:
        raise ValueError(f"{', '.join(team_events)} are team events: add --team")
    existing = {(h.scope_key, h.event, h.target_url) for h in list_hooks(client)}
    scopes: list[tuple[str, str, str, list[str]]] = []
    if pipeline_events:
        scopes += [("pipelineKey", k, n, pipeline_events) for k, n in resolve_pipelines(client, pipelines)]
    if team_events:
        scopes += [("teamKey", _key(t, "teamKey"), str(t.get("name", "")), team_events) for t in _teams(client)]
    created = []
    for scope, key, name, scope_events in scopes:
        for event in scope_events:
            target = target_for(receiver_url, event)
            if (key, event, target) in existing:
                continue
            body = send_json(client, "POST", "v2/webhooks", {"event": event, "targetUrl": target, "token": token}, {scope: key})
            created.append(Hook(_key(body or {}), event, target, scope.removesuffix("Key"), key, name))
    return created


def delete(client: StreakClient, key: str) -> None:
    send_json(client, "DELETE", f"v2/webhooks/{key}")


def delete_ours(client: StreakClient, receiver_url: str | None = None) -> list[Hook]:
    gone = [h for h in list_hooks(client) if is_ours(h.target_url, receiver_url)]
    for hook in gone:
        delete(client, hook.key)
    return gone
