"""Webhook routes (streak_api.md 6.18), over ``webhooks.WebhookHub``: create, list, get, delete.

* ``POST v2/webhooks?pipelineKey=K`` (or ``?teamKey=K``; N8N's body form ``{"pipelineKey": K}`` is
  accepted too) with ``{"event", "targetUrl", "token"?}`` -> the webhook object (``key``, ...).
  400: an unknown event, an event of the other scope (CONTACT_/ORG_ events are team-scoped), a
  ``targetUrl`` that is not http(s), a token that is not a string; 404: no such pipeline/team.
* ``GET v2/pipelines/{k}/webhooks``, ``GET v2/teams/{k}/webhooks``: that scope's webhooks (array).
* ``POST v2/webhooks/{key}``: edit any of ``event``, ``targetUrl``, ``token`` (same rules).
* ``GET v2/webhooks/{key}``: one webhook; ``DELETE v2/webhooks/{key}``: ``{"success": true}``; 404
  for a well-formed key of no webhook. Tokens are never served back.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from .responses import NOT_FOUND, ApiError, RouteBase, json_response, to_json_bytes
from .webhooks import PIPELINE_EVENTS, TEAM_EVENTS, WebhookHub


class WebhookRoutes(RouteBase):
    """Mixed into ``SandboxServer``, which provides the hub (``webhooks``)."""

    webhooks: WebhookHub

    @staticmethod
    def _json_body(request: Request) -> dict[str, Any]:
        try:
            body = json.loads(request.state.body or b"{}")
        except ValueError:
            raise ApiError(400, "the body is not valid JSON") from None
        if not isinstance(body, dict):
            raise ApiError(400, "the body must be a JSON object")
        return body

    @staticmethod
    def _check(event: Any, target: Any, token: Any) -> None:
        if event not in PIPELINE_EVENTS | TEAM_EVENTS:
            raise ApiError(400, f"unknown webhook event: {str(event)[:60]}")
        parts = urlsplit(str(target or ""))
        if not isinstance(target, str) or parts.scheme not in ("http", "https") or not parts.hostname:
            raise ApiError(400, "targetUrl must be an http(s) URL")
        if token is not None and (not isinstance(token, str) or not token):
            raise ApiError(400, "token must be a non-empty string")

    def create_webhook(self, request: Request) -> Response:
        body = self._json_body(request)
        pipeline_key = request.query_params.get("pipelineKey") or body.get("pipelineKey")
        team_key = request.query_params.get("teamKey") or body.get("teamKey")
        event, target, token = body.get("event"), body.get("targetUrl"), body.get("token")
        if bool(pipeline_key) == bool(team_key):
            raise ApiError(400, "give exactly one of pipelineKey or teamKey")
        self._check(event, target, token)
        if (event in TEAM_EVENTS) != bool(team_key):
            raise ApiError(400, f"{event} webhooks are {'team' if event in TEAM_EVENTS else 'pipeline'}-scoped")
        if pipeline_key:
            if str(pipeline_key) not in self.account.pipelines_by_key:
                raise ApiError(404, NOT_FOUND)
            scope, scope_key = "pipelineKey", str(pipeline_key)
        else:
            if str(team_key) not in self.account.teams_by_key:
                raise ApiError(404, NOT_FOUND)
            scope, scope_key = "teamKey", str(team_key)
        hook = self.webhooks.register(str(event), str(target), scope, scope_key, token, self.account.anchor_ms)
        return json_response(to_json_bytes(hook.as_json()))

    def pipeline_webhooks(self, request: Request) -> Response:
        pipeline = self._pipeline(request)
        hooks = self.webhooks.listed("pipelineKey", pipeline.key)
        return json_response(to_json_bytes([h.as_json() for h in hooks]))

    def team_webhooks(self, request: Request) -> Response:
        team = self._team(request)
        hooks = self.webhooks.listed("teamKey", team.key)
        return json_response(to_json_bytes([h.as_json() for h in hooks]))

    def webhook(self, request: Request) -> Response:
        hook = self.webhooks.get(self._path_key(request, "webhook_key"))
        if hook is None:
            raise ApiError(404, NOT_FOUND)
        return json_response(to_json_bytes(hook.as_json()))

    def edit_webhook(self, request: Request) -> Response:
        hook = self.webhooks.get(self._path_key(request, "webhook_key"))
        if hook is None:
            raise ApiError(404, NOT_FOUND)
        body = self._json_body(request)
        event = body.get("event", hook.event)
        target = body.get("targetUrl", hook.target_url)
        token = body.get("token", hook.token)
        self._check(event, target, token)
        if (event in TEAM_EVENTS) != (hook.scope == "teamKey"):
            raise ApiError(400, f"{event} does not fit this webhook's scope")
        hook = self.webhooks.edit(hook.key, event, target, token)
        return json_response(to_json_bytes(hook.as_json()))

    def delete_webhook(self, request: Request) -> Response:
        if not self.webhooks.delete(self._path_key(request, "webhook_key")):
            raise ApiError(404, NOT_FOUND)
        return json_response(to_json_bytes({"success": True}))
