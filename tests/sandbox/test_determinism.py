"""Same seed, size and anchor: byte-identical responses from two separate sandboxes."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests

from streak_source.sandbox import Sandbox

pytestmark = pytest.mark.timeout(60)


def every_url(sandbox: Sandbox) -> list[str]:
    """Every route of the account; child routes for every box."""
    account = sandbox.account
    team = account.teams[0]
    paths = [
        "v1/users/me",
        "v2/users/me/teams",
        f"v2/teams/{team.key}",
        f"v2/teams/{team.key}/users?limit=3",
        f"v2/teams/{team.key}/contacts?limit=1000",
        f"v2/teams/{team.key}/organizations?limit=7",
        "v1/pipelines",
        "v1/snippets",
    ]
    for pipeline in account.pipelines:
        base = f"v1/pipelines/{pipeline.key}"
        paths += [
            base,
            f"{base}/stages",
            f"{base}/fields",
            f"{base}/boxes",
            f"{base}/boxes?page=1&limit=5",
            f"{base}/newsfeed?detailLevel=ALL",
        ]
        for box in pipeline.boxes:
            paths += [
                f"v1/boxes/{box.key}",
                f"v2/boxes/{box.key}/tasks?limit=1000",
                f"v1/boxes/{box.key}/threads",
                f"v2/boxes/{box.key}/comments",
                f"v2/boxes/{box.key}/meetings?page=0&limit=2",
                f"v1/boxes/{box.key}/files",
            ]
    return paths


def bodies(sandbox: Sandbox, paths: list[str]) -> list[bytes]:
    with requests.Session() as session:
        session.auth = (sandbox.api_key, "")
        responses = [session.get(sandbox.url(path), timeout=10) for path in paths]
    assert all(r.status_code == 200 for r in responses)
    return [r.content for r in responses]


def test_two_sandboxes_serve_identical_bytes(make_sandbox: Callable[..., Sandbox]) -> None:
    first = make_sandbox(boxes=50, seed=31)
    second = make_sandbox(boxes=50, seed=31)
    paths = every_url(first)
    assert every_url(second) == paths
    assert len(paths) > 300
    assert bodies(first, paths) == bodies(second, paths)


def test_seed_and_anchor_change_the_bytes(make_sandbox: Callable[..., Sandbox]) -> None:
    base = make_sandbox(boxes=20, seed=31)
    other_seed = make_sandbox(boxes=20, seed=32)
    other_anchor = make_sandbox(boxes=20, seed=31, anchor_date="2025-06-01")
    assert bodies(base, ["v1/pipelines"]) != bodies(other_seed, ["v1/pipelines"])
    assert [b.key for b in base.account.all_boxes()] == [
        b.key for b in other_anchor.account.all_boxes()
    ]
    shift = other_anchor.account.anchor_ms - base.account.anchor_ms
    assert [b.creation_ms + shift for b in base.account.all_boxes()] == [
        b.creation_ms for b in other_anchor.account.all_boxes()
    ], "timestamps are relative to the anchor"
