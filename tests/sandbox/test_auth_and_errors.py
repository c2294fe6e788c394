"""Auth as Streak does it, and its error answers: 401, 400 for malformed keys, 404 for unknown."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest
import requests

from streak_source.sandbox import Sandbox
from streak_source.sandbox.keys import datastore_key

pytestmark = pytest.mark.timeout(60)

INVALID_KEY_BODY = {"success": False, "error": "invalid api key"}
MALFORMED_BODY = {
    "success": False,
    "error": "Illegal Argument Exception in GetEntities, usually a key issue",
}


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture(scope="module")
def sandbox() -> Any:
    with Sandbox(boxes=20, anchor_date="2025-03-14", api_keys=["demo", "strk_second"]) as running:
        yield running


def get(sandbox: Sandbox, path: str, authorization: str | None) -> requests.Response:
    headers = {"Authorization": authorization} if authorization is not None else {}
    return requests.get(sandbox.url(path), headers=headers, timeout=10)


@pytest.mark.parametrize(
    "authorization",
    [
        basic("demo", ""),
        basic("demo", "demo"),
        "Bearer demo",
        "bearer demo",
        basic("strk_second", ""),
        "Bearer strk_second",
    ],
)
def test_accepted_credentials(sandbox: Sandbox, authorization: str) -> None:
    response = get(sandbox, "v1/users/me", authorization)
    assert response.status_code == 200
    assert response.json()["key"] == sandbox.account.me.key


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        basic("wrong", ""),
        basic("demo", "other"),
        basic("", "demo"),
        "Bearer wrong",
        "Bearer ",
        "Token demo",
        "Basic !!!",
    ],
)
def test_missing_or_wrong_key_is_401(sandbox: Sandbox, authorization: str | None) -> None:
    for path in ("v1/users/me", "v1/pipelines", "v1/boxes/not-even-a-key", "v9/nothing/here"):
        response = get(sandbox, path, authorization)
        assert response.status_code == 401
        assert response.json() == INVALID_KEY_BODY


@pytest.mark.parametrize(
    "path",
    [
        "v1/boxes/{bad}",
        "v2/boxes/{bad}/tasks",
        "v1/boxes/{bad}/threads",
        "v2/boxes/{bad}/comments",
        "v2/boxes/{bad}/meetings",
        "v1/boxes/{bad}/files",
        "v1/pipelines/{bad}",
        "v1/pipelines/{bad}/boxes",
        "v1/pipelines/{bad}/stages",
        "v1/pipelines/{bad}/fields",
        "v1/pipelines/{bad}/newsfeed",
        "v2/teams/{bad}",
        "v2/teams/{bad}/users",
        "v2/teams/{bad}/contacts",
        "v2/teams/{bad}/organizations",
    ],
)
def test_malformed_key_is_400_and_unknown_key_is_404(sandbox: Sandbox, path: str) -> None:
    for bad in ("abc", "agxzfm1haWxmb29nYWVyZZZZ", "agptYWlIEVXNlchgBDA"):
        response = get(sandbox, path.format(bad=bad), "Bearer demo")
        assert response.status_code == 400, bad
        assert response.json() == MALFORMED_BODY
    unknown = datastore_key(("Organization", "nowhere.example"), ("Case", 4242424242424242))
    response = get(sandbox, path.format(bad=unknown), "Bearer demo")
    assert response.status_code == 404
    assert response.json()["success"] is False and response.json()["error"]


def test_unknown_endpoint_is_404_after_auth(sandbox: Sandbox) -> None:
    assert get(sandbox, "v1/no/such/thing", "Bearer demo").status_code == 404
    assert get(sandbox, "v1/no/such/thing", None).status_code == 401


def test_newsfeed_detail_level_is_validated(sandbox: Sandbox) -> None:
    pipeline = sandbox.account.pipelines[0]
    path = f"v1/pipelines/{pipeline.key}/newsfeed"
    for level in ("ALL", "CONDENSED"):
        response = requests.get(
            sandbox.url(path), params={"detailLevel": level}, auth=("demo", ""), timeout=10
        )
        assert response.status_code == 200 and isinstance(response.json(), list)
    for level in ("all", "FULL", "x"):
        response = requests.get(
            sandbox.url(path), params={"detailLevel": level}, auth=("demo", ""), timeout=10
        )
        assert response.status_code == 400
        assert response.json()["success"] is False


def test_sort_by_is_validated(sandbox: Sandbox) -> None:
    pipeline = sandbox.account.pipelines[0]
    path = sandbox.url(f"v1/pipelines/{pipeline.key}/boxes")
    updated = requests.get(
        path, params={"sortBy": "lastUpdatedTimestamp"}, auth=("demo", ""), timeout=10
    ).json()
    stamps = [b["lastUpdatedTimestamp"] for b in updated]
    assert stamps == sorted(stamps, reverse=True)
    assert (
        requests.get(path, params={"sortBy": "name"}, auth=("demo", ""), timeout=10).status_code
        == 400
    )


def test_sandbox_routes_need_no_auth_and_are_not_counted(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    sandbox = make_sandbox(boxes=5)
    assert requests.get(sandbox.url("__sandbox__/stats"), timeout=10).status_code == 200
    assert requests.get(sandbox.url("__sandbox__/account"), timeout=10).status_code == 200
    assert get(sandbox, "v1/users/me", None).status_code == 401
    stats = requests.get(sandbox.url("__sandbox__/stats"), timeout=10).json()
    assert stats["requests_total"] == 1 and stats["responses_by_status"] == {"401": 1}
    assert stats == {**sandbox.stats(), "in_flight": stats["in_flight"]}
