"""Streak's write calls for webhook management, through the main job's ``StreakClient``.

``StreakClient`` (streak_source/client.py) only reads (``get_json``). Rather than edit it, this
module sends POST/DELETE through the client's own dlt HTTP client (``client._http``: the same
session auth, rate limiter, retry policy and timeouts as every read of the main job). That is a
private attribute of our own class: tests/test_events_webhooks_cli.py fails if it goes away.
Errors are one line, without the key (``from None`` keeps the request out of tracebacks).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import requests
from dlt.common.configuration import resolve_configuration

from streak_source.client import StreakAPIError, StreakAuthError, StreakClient
from streak_source.config import StreakSourceConfiguration


def client_from_config() -> StreakClient:
    """The main job's client from ``[sources.streak]`` (api_key, base_url, max_requests_per_second)."""
    config = resolve_configuration(StreakSourceConfiguration(), sections=("sources", "streak"))
    return StreakClient(str(config.api_key), config.base_url, config.max_requests_per_second)


def send_json(
    client: StreakClient,
    method: str,
    path: str,
    body: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
) -> Any:
    """POST/DELETE ``path`` (relative to the API root) and return the JSON answer."""
    url = client.base_url + path.lstrip("/")
    what = f"{method} {path.split('?', 1)[0]}"
    try:
        response = client._http.request(
            method, url, params=dict(params or {}), json=dict(body) if body is not None else None
        )
    except requests.RequestException as exc:
        raise StreakAPIError(f"{what}: no answer from Streak ({type(exc).__name__})") from None
    if response.status_code == 401:
        raise StreakAuthError(f"{what}: Streak rejected the API key (401 Unauthorized)")
    if response.status_code >= 400:
        try:
            message = response.json().get("error", "")
        except (ValueError, AttributeError):
            message = ""
        raise StreakAPIError(f"{what}: HTTP {response.status_code} {str(message)[:200]}".rstrip())
    try:
        return response.json()
    except (ValueError, json.JSONDecodeError):
        return None
