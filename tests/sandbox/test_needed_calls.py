"""``needed_calls`` and the ground truth, checked by walking the API with a reference client."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from math import ceil
from typing import Any

import pytest
import requests

from streak_source.sandbox import TABLES, Sandbox
from streak_source.sandbox.paging import DEFAULT_PAGE_SIZES, PageSizes

pytestmark = pytest.mark.timeout(120)


class ReferenceClient:
    """The fewest-calls extraction the formula describes: largest pages, counters skip children.

    A record that cannot be keyed (no ``key``, a ``null`` item) is quarantined, counted in
    ``rejected`` per table, and never used in a path: what a correct loader does with the
    hostile account.
    """

    def __init__(self, base_url: str, api_key: str, sizes: PageSizes) -> None:
        self.base_url = base_url
        self.sizes = sizes
        self.session = requests.Session()
        self.session.auth = (api_key, "")
        self.calls = 0
        self.rejected: dict[str, int] = {}

    def keyed(self, table: str, items: list[Any], key: str = "key") -> list[Any]:
        kept = [item for item in items if isinstance(item, dict) and item.get(key)]
        if len(kept) < len(items):
            self.rejected[table] = self.rejected.get(table, 0) + len(items) - len(kept)
        return kept

    def get(self, path: str, **params: Any) -> Any:
        self.calls += 1
        response = self.session.get(self.base_url + path, params=params or None, timeout=30)
        assert response.status_code == 200, (path, response.status_code, response.text[:200])
        return response.json()

    def v2_pages(self, path: str, limit: int) -> list[Any]:
        items: list[Any] = []
        page = 0
        while True:
            body = self.get(path, page=page, limit=limit)
            items += body["results"]
            if not body["hasNextPage"]:
                return items
            page += 1

    def cursor_pages(self, path: str, limit: int) -> list[Any]:
        items: list[Any] = []
        cursor = None
        while True:
            body = self.get(path, limit=limit, **({"cursor": cursor} if cursor else {}))
            items += body["results"]
            cursor = body["cursor"]
            if cursor is None:
                return items

    def extract(self) -> dict[str, int]:
        rows = dict.fromkeys(TABLES, 0)
        sizes = self.sizes
        me = self.get("v1/users/me")
        user_keys = {me["key"]}
        teams = self.v2_pages("v2/users/me/teams", sizes.teams)
        rows["teams"] = len(teams)
        for team in teams:
            rows["team_members"] += len(self.keyed("team_members", team["members"], "userKey"))
            user_keys |= {
                u["key"] for u in self.v2_pages(f"v2/teams/{team['key']}/users", sizes.team_users)
            }
            rows["contacts"] += len(
                self.cursor_pages(f"v2/teams/{team['key']}/contacts", sizes.contacts)
            )
            rows["organizations"] += len(
                self.cursor_pages(f"v2/teams/{team['key']}/organizations", sizes.organizations)
            )
        rows["users"] = len(user_keys)
        pipelines = self.keyed("pipelines", self.get("v1/pipelines"))
        rows["snippets"] = len(self.get("v1/snippets"))
        rows["pipelines"] = len(pipelines)
        for pipeline in pipelines:
            key = pipeline["key"]
            rows["stages"] += len(pipeline["stages"])
            rows["pipeline_fields"] += len(pipeline["fields"])
            for field in pipeline["fields"]:
                rows["pipeline_field_options"] += len(
                    (field.get("dropdownSettings") or {}).get("items", [])
                )
                rows["pipeline_field_options"] += len(
                    (field.get("tagSettings") or {}).get("tags", [])
                )
            rows["pipeline_newsfeed"] += len(
                self.get(f"v1/pipelines/{key}/newsfeed", detailLevel="ALL")
            )
            boxes = (
                self.v2_pages(f"v1/pipelines/{key}/boxes", sizes.boxes)
                if pipeline["boxCount"]
                else []
            )
            boxes = self.keyed("boxes", boxes)
            rows["boxes"] += len(boxes)
            for box in boxes:
                rows["box_field_values"] += sum(
                    1 for v in box["fields"].values() if v not in (None, "", [])
                )
                self.children(box, rows)
        rows["rejected_records"] = sum(self.rejected.values())
        return rows

    def children(self, box: dict[str, Any], rows: dict[str, int]) -> None:
        key, sizes = box["key"], self.sizes
        found: dict[str, list[Any]] = {}
        if box["taskTotal"]:
            found["box_tasks"] = self.v2_pages(f"v2/boxes/{key}/tasks", sizes.tasks)
        if box["gmailThreadCount"]:
            found["box_threads"] = self.get(f"v1/boxes/{key}/threads")
        if box["commentCount"]:
            found["box_comments"] = self.v2_pages(f"v2/boxes/{key}/comments", sizes.comments)
        if box["meetingNotesCount"] + box["callLogCount"]:
            found["box_meetings"] = self.v2_pages(f"v2/boxes/{key}/meetings", sizes.meetings)
        if box["fileCount"]:
            found["box_files"] = self.get(f"v1/boxes/{key}/files")
        for table, items in found.items():
            rows[table] += len(self.keyed(table, items))


SMALL = PageSizes(
    boxes=7, tasks=3, comments=4, meetings=2, teams=1, team_users=2, contacts=9, organizations=5
)
EXACT_MULTIPLES = PageSizes(
    boxes=6, tasks=2, comments=2, meetings=1, teams=1, team_users=7, contacts=5, organizations=4
)


@pytest.mark.parametrize(
    "sizes", [DEFAULT_PAGE_SIZES, SMALL, EXACT_MULTIPLES], ids=["default", "small", "multiples"]
)
def test_reference_walk_makes_exactly_needed_calls_and_finds_ground_truth(
    make_sandbox: Callable[..., Sandbox], sizes: PageSizes
) -> None:
    sandbox = make_sandbox(boxes=80, seed=21, page_sizes=sizes)
    client = ReferenceClient(sandbox.base_url, sandbox.api_key, sizes)
    rows = client.extract()
    stats = sandbox.stats()
    assert client.calls == stats["requests_total"] == stats["needed_calls"]
    assert stats["responses_by_status"] == {"200": client.calls}
    assert rows == sandbox.ground_truth()
    over_http = requests.get(sandbox.base_url + "__sandbox__/stats", timeout=10).json()
    assert over_http["needed_calls"] == stats["needed_calls"]
    assert over_http["requests_total"] == client.calls, "__sandbox__ routes are not counted"
    assert requests.get(sandbox.base_url + "__sandbox__/account", timeout=10).json() == rows
    assert set(rows) == set(TABLES)
    assert client.rejected == {}


@pytest.mark.parametrize("sizes", [DEFAULT_PAGE_SIZES, SMALL], ids=["default", "small"])
def test_hostile_ground_truth_is_what_a_careful_client_ends_with(
    make_sandbox: Callable[..., Sandbox], sizes: PageSizes
) -> None:
    """Hostile account: a client that quarantines unkeyable records, and never puts a missing
    key in a path, finds the ground truth, the expected rejections, with needed_calls calls."""
    sandbox = make_sandbox(boxes=60, seed=21, page_sizes=sizes, account="hostile")
    client = ReferenceClient(sandbox.base_url, sandbox.api_key, sizes)
    rows = client.extract()
    stats = sandbox.stats()
    assert client.calls == stats["requests_total"] == stats["needed_calls"]
    assert stats["responses_by_status"] == {"200": client.calls}
    assert rows == sandbox.ground_truth()
    assert client.rejected == sandbox.rejected()
    assert client.rejected == {
        "box_tasks": 2,  # one task without its key, one null item
        "box_threads": 1,
        "boxes": 1,
        "pipelines": 1,
        "team_members": 1,
    }
    assert requests.get(sandbox.base_url + "__sandbox__/rejected", timeout=10).json() == (
        client.rejected
    )


def test_small_pages_need_more_calls_than_default(make_sandbox: Callable[..., Sandbox]) -> None:
    default = make_sandbox(boxes=80, seed=21)
    small = make_sandbox(boxes=80, seed=21, page_sizes={f.name: 2 for f in fields(PageSizes)})
    assert small.stats()["needed_calls"] > default.stats()["needed_calls"]
    boxes = default.account.all_boxes()
    per_box_default = sum(
        bool(b.tasks) + bool(b.threads) + bool(b.comments) + bool(b.meetings) + bool(b.files)
        for b in boxes
    )
    fixed = (
        1 + 1 + 3 + 1 + 1 + 3 + sum(ceil(len(p.boxes) / 1000) for p in default.account.pipelines)
    )
    assert default.stats()["needed_calls"] == fixed + per_box_default


def test_stats_reset_and_shape(make_sandbox: Callable[..., Sandbox]) -> None:
    sandbox = make_sandbox(boxes=10)
    session = requests.Session()
    session.auth = (sandbox.api_key, "")
    assert session.get(sandbox.url("v1/users/me"), timeout=10).status_code == 200
    assert session.get(sandbox.url("v1/pipelines/nope"), timeout=10).status_code == 400
    stats = sandbox.stats()
    assert stats["requests_total"] == 2
    assert stats["requests_by_route"] == {
        "/api/v1/users/me": 1,
        "/api/v1/pipelines/{pipeline_key}": 1,
    }
    assert stats["responses_by_status"] == {"200": 1, "400": 1}
    assert (
        requests.post(sandbox.base_url + "__sandbox__/reset-stats", timeout=10).status_code == 200
    )
    assert sandbox.stats()["requests_total"] == 0 and sandbox.stats()["requests_by_route"] == {}
    session.close()
