"""Issue 12 #3: every paged read ends — on a repeated page or cursor, or an implausible count —
with an error naming the endpoint, after a handful of calls (stubbed transport, no sleeps)."""

from __future__ import annotations

from typing import Any

import pytest

from streak_source import paging, settings
from streak_source.client import StreakClient, StreakPagingError
from streak_source.reader import StreakReader
from tests.test_loader_support import BASE_URL, FakeStreak, run_source

pytestmark = pytest.mark.timeout(60)


def client() -> StreakClient:
    return StreakClient("test-key", BASE_URL, max_requests_per_second=1000)


def test_a_task_page_repeating_with_has_next_page_stops_on_the_second_call(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeStreak({"v2/boxes/b1/tasks": {"results": [{"key": "t1"}], "hasNextPage": True}}).install(monkeypatch)
    with pytest.raises(StreakPagingError, match=r"GET v2/boxes/\{box_key\}/tasks \(box_key=b1\): Streak repeated a page"):
        list(client().iter_page_envelopes(settings.BOX_TASKS.path, 1, box_key="b1"))
    assert len(fake.calls) == 2


def test_a_repeated_contacts_cursor_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    def contacts(params: dict[str, str]) -> Any:
        n = int(params.get("cursor", "c0")[1:]) + 1
        return {"results": [{"key": f"k{n}"}], "cursor": "c1" if n < 3 else "c1"}  # c1 again after c1

    fake = FakeStreak({"v2/teams/t1/contacts": contacts}).install(monkeypatch)
    with pytest.raises(StreakPagingError, match=r"contacts \(team_key=t1\): Streak repeated a cursor"):
        list(client().iter_cursor_pages(settings.CONTACTS.path, 1, team_key="t1"))
    assert len(fake.calls) == 2


def test_paging_that_invents_new_items_forever_hits_the_page_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(paging, "MAX_PAGES", 25)
    fake = FakeStreak({"v2/users/me/teams": lambda p: {"results": [{"key": f"t{p['page']}"}], "hasNextPage": True}})
    fake.install(monkeypatch)
    with pytest.raises(StreakPagingError, match=r"GET v2/users/me/teams: still more pages after 25"):
        list(client().iter_page_envelopes(settings.TEAMS.path, 1))
    assert len(fake.calls) == 25


def test_a_box_list_beyond_the_pipelines_box_count_is_implausible(monkeypatch: pytest.MonkeyPatch) -> None:
    def boxes(params: dict[str, str]) -> Any:
        page, limit = int(params["page"]), int(params["limit"])
        return [{"key": f"b{page}-{i}", "pipelineKey": "p1"} for i in range(limit)]  # always a full page of new keys

    fake = FakeStreak({"v1/pipelines/p1/boxes": boxes}).install(monkeypatch)
    reader = StreakReader(client(), settings.PageSizes(boxes=10))
    with pytest.raises(StreakPagingError, match=r"pipeline_key=p1\): 110 items is implausible \(5 expected"):
        for _ in reader.box_pages({"key": "p1", "boxCount": 5}):
            pass
    assert len(fake.calls) == 11  # boxCount 5 + margin 100 = at most 105 boxes: the 11th page of 10 is one too many
    assert paging.plausible_total(5) == 105 and paging.plausible_total(10_000) == 11_000
    assert paging.plausible_total(None) == paging.MAX_ITEMS


def test_a_server_that_ignores_paging_costs_no_error_when_every_box_came(monkeypatch: pytest.MonkeyPatch) -> None:
    everything = [{"key": f"b{i}", "pipelineKey": "p1"} for i in range(12)]
    fake = FakeStreak({"v1/pipelines/p1/boxes": everything}).install(monkeypatch)  # same array for every page
    reader = StreakReader(client(), settings.PageSizes(boxes=5))
    pages = list(reader.box_pages({"key": "p1", "boxCount": 12}))
    assert [len(p) for p in pages] == [12]
    assert len(fake.calls) == 2


def test_a_repeating_child_listing_fails_the_run_with_the_endpoint_named(
    dlt_isolated: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    box = {"key": "b1", "pipelineKey": "p1", "taskTotal": 2, "gmailThreadCount": 0, "commentCount": 0,
           "meetingNotesCount": 0, "callLogCount": 0, "fileCount": 0}
    fake = FakeStreak({
        "v1/users/me": {"key": "u1"}, "v2/users/me/teams": {"results": [], "hasNextPage": False},
        "v1/pipelines": [{"key": "p1", "boxCount": 1}], "v1/pipelines/p1/boxes": [box],
        "v1/pipelines/p1/newsfeed": [], "v1/snippets": [],
        "v2/boxes/b1/tasks": {"results": [{"key": "t1"}], "hasNextPage": True},
    }).install(monkeypatch)
    with pytest.raises(Exception) as failure:
        run_source(dlt_isolated, page_sizes={"tasks": 1})
    assert "GET v2/boxes/{box_key}/tasks (box_key=b1): Streak repeated a page" in str(failure.value)
    assert fake.paths().count("v2/boxes/b1/tasks") == 2
