"""Faults for paging that never ends (issue 12 #3): ``repeat-page`` and ``invent-boxes``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from streak_source.sandbox import FaultSpecError, Sandbox, parse_fault

pytestmark = pytest.mark.timeout(60)

TASKS_ROUTE = "/api/v2/boxes/{box_key}/tasks"
CONTACTS_ROUTE = "/api/v2/teams/{team_key}/contacts"


def getter(sandbox: Sandbox) -> Callable[..., Any]:
    session = requests.Session()
    session.auth = (sandbox.api_key, "")

    def get(path: str, **params: Any) -> Any:
        answer = session.get(sandbox.url(path), params=params, timeout=10)
        assert answer.status_code == 200, answer.text[:200]
        return answer.json()

    return get


def test_specs_parse_and_are_checked() -> None:
    spec = parse_fault("repeat-page:route=v2/boxes/{box_key}/tasks:times=5")
    assert (spec.kind, spec.route, spec.times) == ("repeat-page", TASKS_ROUTE, 5)
    assert parse_fault("invent-boxes").kind == "invent-boxes"
    with pytest.raises(FaultSpecError, match="takes no value"):
        parse_fault("repeat-page=3")
    with pytest.raises(FaultSpecError, match="does not apply"):
        parse_fault("invent-boxes:route=/api/v1/snippets")


def test_a_tasks_page_repeats_with_has_next_page_true(make_sandbox: Callable[..., Sandbox]) -> None:
    sandbox = make_sandbox(faults=[f"repeat-page:route={TASKS_ROUTE}"])
    box = next(b for b in sandbox.account.all_boxes() if len(b.tasks) >= 3)
    get = getter(sandbox)
    pages = [get(f"v2/boxes/{box.key}/tasks", page=page, limit=2) for page in range(5)]
    assert all(p["hasNextPage"] is True for p in pages)
    assert all(p["results"] == pages[0]["results"] for p in pages)
    assert len(pages[0]["results"]) == 2
    assert sandbox.stats()["faults"]["injected"][f"repeat-page:route={TASKS_ROUTE}"] == 5


def test_a_contacts_cursor_repeats(make_sandbox: Callable[..., Sandbox]) -> None:
    sandbox = make_sandbox(faults=[f"repeat-page:route={CONTACTS_ROUTE}"])
    team = sandbox.account.teams[0].key
    get = getter(sandbox)
    first = get(f"v2/teams/{team}/contacts", limit=3)
    second = get(f"v2/teams/{team}/contacts", limit=3, cursor=first["cursor"])
    assert first["cursor"] and second["cursor"] == first["cursor"]
    assert second["results"] == first["results"]


def test_the_box_list_invents_keys_forever(make_sandbox: Callable[..., Sandbox]) -> None:
    sandbox = make_sandbox(faults=["invent-boxes"])
    pipeline = sandbox.account.pipelines[0]
    get = getter(sandbox)
    seen: set[str] = set()
    for page in range(6):
        body = get(f"v1/pipelines/{pipeline.key}/boxes", page=page, limit=50)
        assert body["hasNextPage"] is True and len(body["results"]) == 50
        keys = {b["key"] for b in body["results"]}
        invented = body["results"][0]
        assert invented["pipelineKey"] == pipeline.key and invented["taskTotal"] == 0
        assert not keys & seen
        seen |= keys
    assert len(seen) > pipeline_box_count(sandbox)
    # Without paging parameters the list is a plain array, untouched.
    assert isinstance(get(f"v1/pipelines/{pipeline.key}/boxes"), list)


def pipeline_box_count(sandbox: Sandbox) -> int:
    return len(sandbox.account.pipelines[0].boxes)


def test_times_bounds_the_fault(make_sandbox: Callable[..., Sandbox]) -> None:
    sandbox = make_sandbox(faults=[f"repeat-page:route={TASKS_ROUTE}:times=1"])
    box = next(b for b in sandbox.account.all_boxes() if len(b.tasks) >= 3)
    get = getter(sandbox)
    assert get(f"v2/boxes/{box.key}/tasks", page=5, limit=2)["hasNextPage"] is True
    assert get(f"v2/boxes/{box.key}/tasks", page=50, limit=2) == {
        "results": [],
        "hasNextPage": False,
    }
