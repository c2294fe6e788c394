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
        "v2/pipelines?limit=2",
        "v1/newsfeed",
        "v2/tasks?includeCompleted=true",
        "v1/search?query=a",
        "v1/apikeys",
    ]
    for pipeline in account.pipelines:
        if "key" in pipeline.patch:  # hostile: a keyless pipeline cannot be asked for
            continue
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
            if "key" in box.patch:
                continue
            paths += [
                f"v1/boxes/{box.key}/newsfeed",
                f"v2/boxes/{box.key}/timeline?limit=3",
                f"v1/boxes/{box.key}/fields",
                f"v1/boxes/{box.key}/md",
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


@pytest.mark.parametrize("account", ["default", "hostile"])
def test_two_sandboxes_serve_identical_bytes(
    make_sandbox: Callable[..., Sandbox], account: str
) -> None:
    first = make_sandbox(boxes=50, seed=31, account=account)
    second = make_sandbox(boxes=50, seed=31, account=account)
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


# ---------------------------------------------------------------------------- sandbox time

TIME_ROUTES = ["__sandbox__/history", "__sandbox__/changes", "__sandbox__/changes?since_day=1",
               "__sandbox__/account"]
BUSY_RATES = {"changed": 0.2, "created": 0.05, "deleted": 0.03, "stage_added": 0.5,
              "field_added": 0.5}


def test_day_zero_is_the_generated_account(make_sandbox: Callable[..., Sandbox]) -> None:
    plain = make_sandbox(boxes=50, seed=31)
    timed = make_sandbox(boxes=50, seed=31, day=0, rates=BUSY_RATES)
    paths = every_url(plain)
    assert every_url(timed) == paths
    assert bodies(plain, paths) == bodies(timed, paths)
    assert timed.changes() == [] and timed.needed_history_calls == 0


def test_same_seed_and_day_identical_bytes_however_reached(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    """``Sandbox(day=3)`` twice, and one moved on over HTTP (1 day, then 2): the same bytes."""
    direct = make_sandbox(boxes=50, seed=31, day=3, rates=BUSY_RATES)
    again = make_sandbox(boxes=50, seed=31, day=3, rates=BUSY_RATES)
    stepped = make_sandbox(boxes=50, seed=31, rates=BUSY_RATES)
    for days, day in ((1, 1), (2, 3)):
        response = requests.post(stepped.url("__sandbox__/advance"), params={"days": days}, timeout=30)
        assert response.status_code == 200 and response.json()["day"] == day
    paths = every_url(direct)
    assert len({c["type"] for c in direct.changes()}) >= 8
    assert every_url(again) == paths and every_url(stepped) == paths
    expected = bodies(direct, paths + TIME_ROUTES)
    assert bodies(again, paths + TIME_ROUTES) == expected
    assert bodies(stepped, paths + TIME_ROUTES) == expected
    for sandbox in (again, stepped):
        assert sandbox.needed_calls == direct.needed_calls
        assert sandbox.needed_history_calls == direct.needed_history_calls


def test_each_day_serves_different_bytes(make_sandbox: Callable[..., Sandbox]) -> None:
    sandbox = make_sandbox(boxes=50, seed=31, rates=BUSY_RATES)
    pipeline = sandbox.account.pipelines[0].key
    paths = [f"v1/pipelines/{pipeline}/boxes", f"v1/pipelines/{pipeline}/newsfeed"]
    seen = [bodies(sandbox, paths)]
    for _ in range(2):
        sandbox.advance(1)
        seen.append(bodies(sandbox, paths))
    assert seen[0] != seen[1] != seen[2]
