"""Paging returns every item exactly once in every shape, and says "no more" exactly when true."""

from __future__ import annotations

from collections.abc import Callable
from math import ceil
from typing import Any

import pytest

from streak_source.sandbox import Sandbox

pytestmark = pytest.mark.timeout(120)


def keys_of(items: list[dict[str, Any]]) -> list[str]:
    return [item["key"] for item in items]


def walk_v2(session: Any, path: str, limit: int, **params: Any) -> tuple[list[dict[str, Any]], int]:
    """All items of a ``{results, hasNextPage}`` list, asserting exact paging; (items, calls)."""
    items: list[dict[str, Any]] = []
    page = 0
    while True:
        response = session.get_path(path, page=page, limit=limit, **params)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"results", "hasNextPage"}
        items += body["results"]
        if not body["hasNextPage"]:
            break
        assert len(body["results"]) == limit, "only the last page may be short"
        page += 1
    assert body["results"] or page == 0, "no trailing empty page"
    return items, page + 1


def walk_cursor(
    session: Any, path: str, limit: int, **params: Any
) -> tuple[list[dict[str, Any]], int]:
    """All items of a ``{results, cursor}`` list, asserting exact paging; returns (items, calls)."""
    items: list[dict[str, Any]] = []
    cursor = None
    calls = 0
    while True:
        extra: dict[str, Any] = {"cursor": cursor} if cursor else {}
        response = session.get_path(path, limit=limit, **params, **extra)
        calls += 1
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"results", "cursor"}
        items += body["results"]
        cursor = body["cursor"]
        if cursor is None:
            break
        assert len(body["results"]) == limit
    assert body["results"] or calls == 1, "no trailing empty page"
    return items, calls


@pytest.fixture(scope="module")
def paging_sandbox() -> Any:
    with Sandbox(boxes=60, seed=5, anchor_date="2025-03-14") as sandbox:
        yield sandbox


@pytest.fixture
def session(paging_sandbox: Sandbox, session_factory: Callable[..., Any]) -> Any:
    return session_factory(paging_sandbox)


def busiest_box(sandbox: Sandbox) -> Any:
    return max(
        sandbox.account.all_boxes(), key=lambda b: len(b.tasks) + len(b.comments) + len(b.meetings)
    )


@pytest.mark.parametrize("kind", ["tasks", "comments", "meetings"])
@pytest.mark.parametrize("limit", [1, 3, 4])
def test_v2_box_children_every_item_once(
    paging_sandbox: Sandbox, session: Any, kind: str, limit: int
) -> None:
    box = busiest_box(paging_sandbox)
    expected = [item.key for item in getattr(box, kind)]
    assert len(expected) > 10
    items, calls = walk_v2(session, f"v2/boxes/{box.key}/{kind}", limit)
    assert keys_of(items) == expected
    assert calls == ceil(len(expected) / limit)


@pytest.mark.parametrize("kind", ["tasks", "comments", "meetings"])
def test_full_last_page_says_no_next_page(paging_sandbox: Sandbox, session: Any, kind: str) -> None:
    box = busiest_box(paging_sandbox)
    total = len(getattr(box, kind))
    body = session.get_path(f"v2/boxes/{box.key}/{kind}", page=0, limit=total).json()
    assert len(body["results"]) == total and body["hasNextPage"] is False
    beyond = session.get_path(f"v2/boxes/{box.key}/{kind}", page=5, limit=total).json()
    assert beyond == {"results": [], "hasNextPage": False}


def test_empty_child_lists(paging_sandbox: Sandbox, session: Any) -> None:
    box = next(b for b in paging_sandbox.account.all_boxes() if not b.tasks and not b.files)
    assert session.get_path(f"v2/boxes/{box.key}/tasks", page=0, limit=10).json() == {
        "results": [],
        "hasNextPage": False,
    }
    assert session.get_path(f"v1/boxes/{box.key}/files").json() == []


def test_comments_without_paging_parameters_return_everything(
    paging_sandbox: Sandbox, session: Any
) -> None:
    box = busiest_box(paging_sandbox)
    body = session.get_path(f"v2/boxes/{box.key}/comments").json()
    assert (
        keys_of(body["results"]) == [c.key for c in box.comments] and body["hasNextPage"] is False
    )


@pytest.mark.parametrize("limit", [1, 2, 7])
def test_teams_and_team_users(paging_sandbox: Sandbox, session: Any, limit: int) -> None:
    teams, calls = walk_v2(session, "v2/users/me/teams", limit)
    assert keys_of(teams) == [t.key for t in paging_sandbox.account.teams] and calls == 1
    team = paging_sandbox.account.teams[0]
    users, calls = walk_v2(session, f"v2/teams/{team.key}/users", limit)
    assert keys_of(users) == [m.user.key for m in team.members]
    assert calls == ceil(len(team.members) / limit)


@pytest.mark.parametrize("limit", [1, 7, 30])
def test_contacts_and_organizations_by_cursor(
    paging_sandbox: Sandbox, session: Any, limit: int
) -> None:
    team = paging_sandbox.account.teams[0]
    for kind, expected in (
        ("contacts", paging_sandbox.account.contacts[team.key]),
        ("organizations", paging_sandbox.account.organizations[team.key]),
    ):
        items, calls = walk_cursor(session, f"v2/teams/{team.key}/{kind}", limit)
        assert keys_of(items) == [e.key for e in expected]
        assert keys_of(items) == sorted(keys_of(items)), "ordered by key"
        assert calls == max(1, ceil(len(expected) / limit))


def test_cursor_is_null_after_an_exactly_full_page(paging_sandbox: Sandbox, session: Any) -> None:
    team = paging_sandbox.account.teams[0]
    total = len(paging_sandbox.account.contacts[team.key])
    body = session.get_path(f"v2/teams/{team.key}/contacts", limit=total).json()
    assert len(body["results"]) == total and body["cursor"] is None
    half = session.get_path(f"v2/teams/{team.key}/contacts", limit=total // 2).json()
    rest = session.get_path(
        f"v2/teams/{team.key}/contacts", limit=total, cursor=half["cursor"]
    ).json()
    assert keys_of(half["results"]) + keys_of(rest["results"]) == keys_of(body["results"])
    assert rest["cursor"] is None


def test_contacts_after_filters_by_last_saved_seconds(
    paging_sandbox: Sandbox, session: Any
) -> None:
    team = paging_sandbox.account.teams[0]
    contacts = paging_sandbox.account.contacts[team.key]
    middle = sorted(c.last_saved_ms for c in contacts)[len(contacts) // 2] // 1000
    expected = [c.key for c in contacts if c.last_saved_ms >= middle * 1000]
    assert 0 < len(expected) < len(contacts)
    items, calls = walk_cursor(session, f"v2/teams/{team.key}/contacts", 4, after=middle)
    assert keys_of(items) == expected and calls == ceil(len(expected) / 4)


@pytest.mark.parametrize("limit", [1, 7, 36])
def test_boxes_envelope_every_box_once(paging_sandbox: Sandbox, session: Any, limit: int) -> None:
    pipeline = paging_sandbox.account.pipelines[0]
    assert len(pipeline.boxes) == 36
    everything = session.get_path(f"v1/pipelines/{pipeline.key}/boxes").json()
    assert isinstance(everything, list) and len(everything) == 36
    items, calls = walk_v2(session, f"v1/pipelines/{pipeline.key}/boxes", limit)
    assert keys_of(items) == keys_of(everything)
    assert calls == ceil(36 / limit)
    creation = [b["creationTimestamp"] for b in items]
    assert creation == sorted(creation, reverse=True), "newest first"


def test_boxes_limit_only_is_the_first_page(paging_sandbox: Sandbox, session: Any) -> None:
    pipeline = paging_sandbox.account.pipelines[0]
    body = session.get_path(f"v1/pipelines/{pipeline.key}/boxes", limit=5).json()
    assert len(body["results"]) == 5 and body["hasNextPage"] is True


def test_boxes_paged_as_array_flag(
    make_sandbox: Callable[..., Sandbox], session_factory: Callable[..., Any]
) -> None:
    sandbox = make_sandbox(boxes=30, boxes_paged_as_array=True)
    session = session_factory(sandbox)
    pipeline = sandbox.account.pipelines[0]
    pages = []
    for page in range(4):
        body = session.get_path(f"v1/pipelines/{pipeline.key}/boxes", page=page, limit=5).json()
        assert isinstance(body, list)
        pages += body
    assert keys_of(pages) == keys_of(session.get_path(f"v1/pipelines/{pipeline.key}/boxes").json())
    assert len(pages) == 18


def test_empty_pipeline_boxes(paging_sandbox: Sandbox, session: Any) -> None:
    empty = paging_sandbox.account.pipelines[2]
    assert session.get_path(f"v1/pipelines/{empty.key}/boxes").json() == []
    assert session.get_path(f"v1/pipelines/{empty.key}/boxes", page=0, limit=10).json() == {
        "results": [],
        "hasNextPage": False,
    }


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": -3},
        {"limit": "ten"},
        {"page": -1, "limit": 5},
        {"page": "x", "limit": 5},
    ],
)
def test_bad_paging_parameters_are_400(
    paging_sandbox: Sandbox, session: Any, params: dict[str, Any]
) -> None:
    box = busiest_box(paging_sandbox)
    for path in (f"v2/boxes/{box.key}/tasks", f"v1/pipelines/{box.pipeline_key}/boxes"):
        response = session.get_path(path, **params)
        assert response.status_code == 400
        assert response.json()["success"] is False and response.json()["error"]


def test_bad_cursor_is_400(paging_sandbox: Sandbox, session: Any) -> None:
    team = paging_sandbox.account.teams[0]
    response = session.get_path(f"v2/teams/{team.key}/contacts", cursor="definitely-not-ours")
    assert response.status_code == 400


def test_limits_are_capped_at_1000(
    make_sandbox: Callable[..., Sandbox], session_factory: Callable[..., Any]
) -> None:
    sandbox = make_sandbox(boxes=2100)
    session = session_factory(sandbox)
    team = sandbox.account.teams[0]
    assert len(sandbox.account.contacts[team.key]) > 1000
    contacts = session.get_path(f"v2/teams/{team.key}/contacts", limit=5000).json()
    assert len(contacts["results"]) == 1000 and contacts["cursor"] is not None
    default = session.get_path(f"v2/teams/{team.key}/contacts").json()
    assert len(default["results"]) == 100, "documented default limit"
    pipeline = sandbox.account.pipelines[0]
    assert len(pipeline.boxes) > 1000
    boxes = session.get_path(f"v1/pipelines/{pipeline.key}/boxes", page=0, limit=5000).json()
    assert len(boxes["results"]) == 1000 and boxes["hasNextPage"] is True
    second = session.get_path(f"v1/pipelines/{pipeline.key}/boxes", page=1, limit=5000).json()
    assert len(second["results"]) == len(pipeline.boxes) - 1000 and second["hasNextPage"] is False
