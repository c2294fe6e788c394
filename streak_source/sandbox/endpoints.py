"""Streak's read endpoints, as listed in the API reference (``streak_api.md`` section 6): the ONE list.

The server routes from this list, the route-coverage test walks it, and the docs table is made
from it. It is written from the reference, not from the loader's settings, so a wrong path in the
loader cannot be copied by its stand-in (``tests/test_sandbox_contract.py`` checks they agree).

Each entry: method, path template (relative to ``.../api/``; the version is its first segment),
the paging shape of the answer, the reference's confidence tag, the handler that serves it, and a
note where the reference is unsure (served in its most likely shape, as the note says).

Paging shapes:

=========  ================================================================================
object     one JSON object
array      a plain JSON array (v1 lists)
map        a JSON object keyed by entity key (v1/v2 stages)
page       ``{"results": [...], "hasNextPage": bool}``; ``page`` (0-based) and ``limit``
cursor     ``{"results": [...], "cursor": str | null}``; ``cursor`` and ``limit``
token      ``{"entries": [...], "nextPage": str | null}``; the next call sends only the token
search     ``{"results": {"boxes", "contacts", "orgs"}, "query", "page"}``
markdown   ``text/markdown``
bytes      raw file contents (``application/octet-stream`` or the file's MIME type)
=========  ================================================================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

Paging = Literal["object", "array", "map", "page", "cursor", "token", "search", "markdown", "bytes"]
Confidence = Literal["H", "M", "L"]

API_PREFIX: Final = "/api/"


@dataclass(frozen=True)
class Endpoint:
    """One read route of Streak's API, as the reference describes it."""

    path: str
    paging: Paging
    confidence: Confidence
    handler: str
    """Name of the ``SandboxServer`` method that answers it."""
    note: str = ""
    """Why the shape served is a guess, when the reference is not sure."""
    method: str = "GET"
    has_sample: bool = True
    """False when a correct account holds nothing this route could return (no reminders, no
    webhooks): the route exists, but every well-formed key answers 404."""

    @property
    def version(self) -> str:
        return self.path.split("/", 1)[0]

    @property
    def template(self) -> str:
        """The route template as the server registers it and ``requests_by_route`` counts it."""
        return API_PREFIX + self.path

    @property
    def params(self) -> tuple[str, ...]:
        return tuple(re.findall(r"\{(\w+)\}", self.path))


E = Endpoint
ENDPOINTS: Final[tuple[Endpoint, ...]] = (
    # 6.1 users
    E("v1/users/me", "object", "H", "me"),
    E(
        "v1/users/{user_key}",
        "object",
        "H",
        "user",
        "a key reads only its own user (streak_api.md 2): another user's key answers 401",
    ),
    # 6.2 teams
    E("v2/users/me/teams", "page", "H", "teams"),
    E("v2/teams/{team_key}", "object", "H", "team"),
    E("v2/teams/{team_key}/users", "page", "H", "team_users"),
    # 6.3 pipelines
    E("v1/pipelines", "array", "H", "pipelines"),
    E("v1/pipelines/{pipeline_key}", "object", "H", "pipeline"),
    E("v2/pipelines", "page", "H", "pipelines_v2"),
    E("v2/pipelines/{pipeline_key}", "object", "H", "pipeline"),
    # 6.4 stages
    E("v1/pipelines/{pipeline_key}/stages", "map", "H", "stages"),
    E("v1/pipelines/{pipeline_key}/stages/{stage_key}", "object", "H", "stage"),
    E(
        "v2/pipelines/{pipeline_key}/stages",
        "map",
        "M",
        "stages",
        "SPEC documents it; one 2026 report says it answered 400: served like v1 stages",
    ),
    E("v2/pipelines/{pipeline_key}/stages/{stage_key}", "object", "M", "stage"),
    # 6.5 fields and box field values
    E("v1/pipelines/{pipeline_key}/fields", "array", "H", "fields"),
    E("v1/pipelines/{pipeline_key}/fields/{field_key}", "object", "H", "field"),
    E("v1/boxes/{box_key}/fields", "array", "H", "box_fields"),
    E("v1/boxes/{box_key}/fields/{field_key}", "object", "H", "box_field"),
    # 6.6 boxes
    E(
        "v1/pipelines/{pipeline_key}/boxes",
        "page",
        "M",
        "boxes",
        "a plain array without page/limit [H]; {results, hasNextPage} with them [M]",
    ),
    E(
        "v2/pipelines/{pipeline_key}/boxes",
        "page",
        "L",
        "boxes_v2",
        "third-party code only, not in SPEC: served as {results, hasNextPage} with page/limit",
    ),
    E("v1/boxes", "array", "M", "all_boxes", "old docs; every box the user can access"),
    E("v1/boxes/{box_key}", "object", "H", "box"),
    E(
        "v1/boxes/{box_key}/md",
        "markdown",
        "H",
        "box_markdown",
        "structure not stable per SPEC: a plain overview with ISO timestamps",
    ),
    # 6.7 tasks
    E("v2/boxes/{box_key}/tasks", "page", "H", "box_tasks"),
    E("v2/tasks/{task_key}", "object", "H", "task"),
    E("v2/tasks", "page", "H", "agenda"),
    # 6.8 threads
    E("v1/boxes/{box_key}/threads", "array", "H", "box_threads"),
    E("v1/threads/{thread_key}", "object", "H", "thread"),
    # 6.9 comments
    E("v2/boxes/{box_key}/comments", "page", "H", "box_comments"),
    E("v2/comments/{comment_key}", "object", "H", "comment"),
    E(
        "v1/boxes/{box_key}/comments",
        "array",
        "M",
        "box_comments_v1",
        "legacy v1 list: served as a plain array of the same comment objects",
    ),
    # 6.10 meetings
    E("v2/boxes/{box_key}/meetings", "page", "H", "box_meetings"),
    E("v2/meetings/{meeting_key}", "object", "H", "meeting"),
    # 6.11 files
    E("v1/boxes/{box_key}/files", "array", "H", "box_files"),
    E("v1/files/{file_key}", "object", "M", "file"),
    E(
        "v1/files/{file_key}/contents",
        "bytes",
        "M",
        "file_contents",
        "raw bytes; the sandbox serves deterministic placeholder bytes of the file's size",
    ),
    E(
        "v1/files/{file_key}/link",
        "object",
        "L",
        "file_link",
        "shape unknown: {fileKey, url} pointing at this sandbox's contents route",
    ),
    # 6.12 reminders (legacy)
    E(
        "v1/boxes/{box_key}/reminders",
        "array",
        "M",
        "box_reminders",
        "legacy feature superseded by tasks: an empty list (the account has no reminders)",
    ),
    E("v1/reminders/{reminder_key}", "object", "M", "reminder", has_sample=False),
    # 6.13 newsfeed
    E("v1/boxes/{box_key}/newsfeed", "array", "H", "box_newsfeed"),
    E("v1/pipelines/{pipeline_key}/newsfeed", "array", "H", "pipeline_newsfeed"),
    E("v1/newsfeed", "array", "M", "user_newsfeed", "user-wide: the 50 newest entries"),
    # 6.14 timeline
    E(
        "v2/boxes/{box_key}/timeline",
        "token",
        "M",
        "timeline",
        "entry shapes undocumented: each entry is {type, timestamp, <the entity as served>}",
    ),
    # 6.15 snippets
    E("v1/snippets", "array", "M", "snippets"),
    E("v1/snippets/{snippet_key}", "object", "M", "snippet"),
    # 6.16 contacts and organizations
    E("v2/teams/{team_key}/contacts", "cursor", "H", "contacts"),
    E("v2/teams/{team_key}/organizations", "cursor", "H", "organizations"),
    E("v2/contacts/{contact_key}", "object", "H", "contact"),
    E("v2/organizations/{organization_key}", "object", "H", "organization"),
    # 6.17 search
    E("v1/search", "search", "H", "search"),
    # 6.18 webhooks
    E(
        "v2/pipelines/{pipeline_key}/webhooks",
        "array",
        "M",
        "pipeline_webhooks",
        "the webhooks registered with the sandbox (none at start): an empty list",
    ),
    E(
        "v2/teams/{team_key}/webhooks",
        "array",
        "M",
        "team_webhooks",
        "the webhooks registered with the sandbox (none at start): an empty list",
    ),
    E("v2/webhooks/{webhook_key}", "object", "H", "webhook", has_sample=False),
    # 6.19 API keys
    E(
        "v1/apikeys",
        "array",
        "H",
        "api_keys",
        "SPEC's SDK reads a plain array; the sandbox's own keys, the secret masked",
    ),
)
"""Every GET route of the reference's endpoint tables, v1 and v2."""


WRITE_ENDPOINTS: Final[tuple[Endpoint, ...]] = (
    E(
        "v2/webhooks",
        "object",
        "H",
        "create_webhook",
        "?pipelineKey= or ?teamKey= (N8N's body form too); {event, targetUrl, token}: the webhook",
        method="POST",
        has_sample=False,
    ),
    E(
        "v2/webhooks/{webhook_key}",
        "object",
        "H",
        "edit_webhook",
        "edit: any of {event, targetUrl, token} (same rules as create); the webhook",
        method="POST",
        has_sample=False,
    ),
    E(
        "v2/webhooks/{webhook_key}",
        "object",
        "H",
        "delete_webhook",
        "{success: true}; delivery on advance: webhooks.py",
        method="DELETE",
        has_sample=False,
    ),
)
"""The write routes the sandbox serves (webhook management, streak_api.md 6.18): kept apart from
``ENDPOINTS``, which is the reference's list of read routes (a GET each, walked by the coverage
test). Their tests: tests/sandbox/test_webhooks.py."""


def endpoint_for(path: str) -> Endpoint:
    """The entry with this path template (``v1/boxes/{box_key}``); KeyError if none."""
    for endpoint in ENDPOINTS:
        if endpoint.path == path:
            return endpoint
    raise KeyError(path)
