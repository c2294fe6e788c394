"""Handlers for the account-wide routes: users, teams, contacts, organizations, snippets, search,
API keys, webhooks and reminders (paths and shapes: ``endpoints.py``)."""

from __future__ import annotations

import hashlib
from typing import Final

from starlette.requests import Request
from starlette.responses import Response

from . import render
from .model import Contact, Organization
from .responses import (
    NOT_FOUND,
    ApiError,
    RouteBase,
    json_array,
    json_response,
    to_json_bytes,
)

SEARCH_PAGE_SIZE: Final = 50
"""Hits per kind per search page (the reference gives no number)."""


def _masked(api_key: str) -> str:
    """An API key as a listing shows it: never the secret itself (the sandbox's keys are real
    secrets to whoever runs it), a stable digest instead."""
    return "masked-" + hashlib.sha256(api_key.encode()).hexdigest()[:12]


class AccountRoutes(RouteBase):
    """Users, teams and everything team-scoped."""

    accepted_api_keys: tuple[str, ...]

    # ------------------------------------------------------------------ users and teams

    def me(self, request: Request) -> Response:
        me = self.account.me
        return json_response(self._entity("user", me.key, lambda: render.render_user(me)))

    def user(self, request: Request) -> Response:
        """Streak: "each key can only read its own user object" (streak_api.md 2), and it answers
        401 rather than 403 for what a key may not see; the message is this sandbox's own."""
        user = self._found(self.account.users, request, "user_key")
        if user.key != self.account.me.key:
            raise ApiError(401, "an API key can only read its own user")
        return json_response(self._entity("user", user.key, lambda: render.render_user(user)))

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

    # ------------------------------------------------------------------ contacts, organizations

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

    def contact(self, request: Request) -> Response:
        contact: Contact = self._found(self.lookups.contacts, request, "contact_key")
        return json_response(
            self._entity("contact", contact.key, lambda: render.render_contact(contact))
        )

    def organization(self, request: Request) -> Response:
        organization: Organization = self._found(
            self.lookups.organizations, request, "organization_key"
        )
        return json_response(
            self._entity(
                "organization",
                organization.key,
                lambda: render.render_organization(organization),
            )
        )

    # ------------------------------------------------------------------ snippets

    def snippets(self, request: Request) -> Response:
        snippets = self.account.snippets
        items = self._items("snippets", "", lambda: [render.render_snippet(s) for s in snippets])
        return json_response(json_array(items))

    def snippet(self, request: Request) -> Response:
        snippet = self._found(self.lookups.snippets, request, "snippet_key")
        return json_response(
            self._entity("snippet", snippet.key, lambda: render.render_snippet(snippet))
        )

    # ------------------------------------------------------------------ search

    def search(self, request: Request) -> Response:
        """``query`` (case-insensitive substring of box names and notes, contact names and
        emails, organization names and domains) XOR ``name`` (exact box name); 0-based ``page``;
        repeated ``pipelineKey``/``stageKey`` filter boxes."""
        params = request.query_params
        query, name = params.get("query"), params.get("name")
        if (query is None) == (name is None) or not (query or name):
            raise ApiError(400, "exactly one of query or name is required")
        page = self._int_param(request, "page", 0, 0) or 0
        pipelines = set(params.getlist("pipelineKey"))
        stages = set(params.getlist("stageKey"))
        needle = (query or "").casefold()
        boxes = [
            b
            for b in self.account.all_boxes()
            if (not pipelines or b.pipeline_key in pipelines)
            and (not stages or b.stage_key in stages)
            and (b.name == name if name is not None else needle in f"{b.name}\n{b.notes}".casefold())
        ]
        contacts: list[Contact] = []
        organizations: list[Organization] = []
        if query is not None:
            contacts = [
                c
                for c in self.lookups.contacts.values()
                if needle
                in " ".join([c.given_name, c.family_name, *c.email_addresses]).casefold()
            ]
            organizations = [
                o
                for o in self.lookups.organizations.values()
                if needle in " ".join([o.name, *o.domains]).casefold()
            ]
        window = slice(page * SEARCH_PAGE_SIZE, (page + 1) * SEARCH_PAGE_SIZE)
        body = {
            "results": {
                "boxes": [
                    {
                        "boxKey": b.key,
                        "name": b.name,
                        "lastUpdatedTimestamp": b.last_updated_ms,
                        "assignedToKeys": b.assignee_keys,
                        "stageKey": b.stage_key,
                        "pipelineKey": b.pipeline_key,
                    }
                    for b in boxes[window]
                ],
                "contacts": [
                    {
                        key: value
                        for key, value in render.render_contact(c).items()
                        if key
                        in (
                            "key",
                            "givenName",
                            "familyName",
                            "other",
                            "title",
                            "addresses",
                            "emailAddresses",
                            "phoneNumbers",
                        )
                    }
                    for c in contacts[window]
                ],
                "orgs": [
                    {
                        key: value
                        for key, value in render.render_organization(o).items()
                        if key
                        in (
                            "key",
                            "name",
                            "other",
                            "industry",
                            "employeeCount",
                            "logoURL",
                            "domains",
                            "normalizedDomains",
                            "addresses",
                        )
                    }
                    for o in organizations[window]
                ],
            },
            "query": query,
            "page": page,
        }
        return json_response(to_json_bytes(body))

    # ------------------------------------------------------------------ keys, hooks, reminders

    def api_keys(self, request: Request) -> Response:
        me = self.account.me
        keys = [
            {
                "apiKey": _masked(key),
                "key": _masked(key),
                "creationTimestamp": me.creation_ms,
                "lastSavedTimestamp": me.creation_ms,
                "keyType": "USER",
            }
            for key in self.accepted_api_keys
        ]
        return json_response(to_json_bytes(keys))

    def reminder(self, request: Request) -> Response:
        self._path_key(request, "reminder_key")
        raise ApiError(404, NOT_FOUND)
