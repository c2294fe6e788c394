"""Route coverage (issue 17): every read route of the reference, walked from the ONE endpoint list.

Each route answers 200 for a valid key and path, 404 with Streak's error body for a well-formed
key of nothing, 400 for a key that cannot be one, 401 without auth; every auth form Streak
accepts works. A route missing from the server answers ``no such endpoint`` and fails here.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest
import requests

from streak_source.sandbox import ENDPOINTS, Endpoint, Sandbox
from streak_source.sandbox.keys import datastore_key, team_entity_key
from streak_source.sandbox.model import Account, Box

UNKNOWN_KEYS: dict[str, str] = {
    "stage_key": "5999",
    "field_key": "1999",
    "contact_key": team_entity_key("TeamContact", 1),
    "organization_key": team_entity_key("TeamOrganization", 1),
}
UNKNOWN_DATASTORE_KEY = datastore_key(("Organization", "nowhere.example"), ("Thing", 12345))


def sample_params(account: Account) -> dict[str, str]:
    """A valid value for every path parameter the endpoint list uses (one connected set)."""
    box = next(
        b
        for b in account.all_boxes()
        if b.tasks and b.threads and b.comments and b.meetings and b.files and b.fields
    )
    pipeline = account.pipelines_by_key[box.pipeline_key]
    gmail_file = next(
        (f for b in account.all_boxes() for f in b.files if f.file_type == "GMAIL_API"), None
    )
    assert gmail_file is not None
    team = account.teams[0]
    return {
        "user_key": account.me.key,
        "team_key": team.key,
        "pipeline_key": pipeline.key,
        "stage_key": pipeline.stages[0].key,
        "field_key": next(k for k in box.fields),
        "box_key": box.key,
        "task_key": box.tasks[0].key,
        "thread_key": box.threads[0].key,
        "comment_key": box.comments[0].key,
        "meeting_key": box.meetings[0].key,
        "file_key": gmail_file.key,
        "snippet_key": account.snippets[0].key,
        "contact_key": account.contacts[team.key][0].key,
        "organization_key": account.organizations[team.key][0].key,
        "reminder_key": UNKNOWN_DATASTORE_KEY,
        "webhook_key": UNKNOWN_DATASTORE_KEY,
    }


def path_for(endpoint: Endpoint, values: dict[str, str]) -> str:
    return endpoint.path.format(**{name: values[name] for name in endpoint.params})


QUERY: dict[str, dict[str, str]] = {
    "v1/search": {"query": "a"},
    "v1/pipelines/{pipeline_key}/boxes": {"page": "0"},
}
"""Routes that need a parameter to answer 200."""


@pytest.fixture(scope="module")
def sandbox() -> Any:
    # seed 4: one box has more history (52 newsfeed entries) than the newsfeed serves
    with Sandbox(boxes=40, seed=4, anchor_date="2025-03-14") as sb:
        yield sb


def get(sandbox: Sandbox, path: str, auth: Any = "default", **params: str) -> requests.Response:
    if auth == "default":
        auth = (sandbox.api_key, "")
    return requests.get(sandbox.url(path), params=params or None, auth=auth, timeout=30)


def test_the_endpoint_list_is_the_reference_list() -> None:
    paths = [e.path for e in ENDPOINTS]
    assert len(paths) == len(set(paths))
    assert all(e.method == "GET" and e.version in ("v1", "v2") for e in ENDPOINTS)
    assert all(e.confidence in ("H", "M", "L") for e in ENDPOINTS)
    # The routes issue 17 measured as missing, by name.
    for path in (
        "v1/pipelines/{pipeline_key}/stages/{stage_key}",
        "v1/boxes/{box_key}/fields",
        "v1/boxes/{box_key}/comments",
        "v1/boxes/{box_key}/newsfeed",
        "v1/boxes/{box_key}/reminders",
        "v1/threads/{thread_key}",
        "v1/files/{file_key}",
        "v2/boxes/{box_key}/timeline",
        "v1/newsfeed",
    ):
        assert path in paths
    uncertain = [e for e in ENDPOINTS if e.confidence != "H"]
    assert uncertain and all(e.note or not e.has_sample for e in uncertain if e.confidence == "L")


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.path)
def test_every_read_route_answers(sandbox: Sandbox, endpoint: Endpoint) -> None:
    values = sample_params(sandbox.account)
    path = path_for(endpoint, values)
    params = QUERY.get(endpoint.path, {})
    answer = get(sandbox, path, **params)
    if endpoint.has_sample:
        assert answer.status_code == 200, (path, answer.text[:300])
        if endpoint.paging not in ("markdown", "bytes"):
            assert answer.headers["content-type"] == "application/json"
            body = answer.json()
            expected: type = {"array": list}.get(endpoint.paging, dict)
            assert isinstance(body, expected), (path, type(body))
    else:
        assert answer.status_code == 404 and answer.json() == {
            "success": False,
            "error": "existing entity does not exist",
        }
    assert get(sandbox, path, auth=None, **params).status_code == 401
    if endpoint.params:
        unknown = {
            name: UNKNOWN_KEYS.get(name, UNKNOWN_DATASTORE_KEY) for name in endpoint.params
        }
        missing = get(sandbox, path_for(endpoint, unknown), **params)
        assert missing.status_code == 404, (endpoint.path, missing.text[:200])
        assert missing.json() == {"success": False, "error": "existing entity does not exist"}
        malformed = get(sandbox, path_for(endpoint, dict.fromkeys(endpoint.params, "x!y")))
        assert malformed.status_code == 400
        assert malformed.json()["success"] is False


def test_a_path_that_is_no_route_is_404_not_a_crash(sandbox: Sandbox) -> None:
    answer = get(sandbox, "v1/no/such/thing")
    assert answer.status_code == 404 and "no such endpoint" in answer.json()["error"]


def _basic(text: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(text.encode()).decode()}


AUTH_FORMS: dict[str, Callable[[str], dict[str, str]]] = {
    "basic key:": lambda key: _basic(f"{key}:"),
    "basic key:key": lambda key: _basic(f"{key}:{key}"),
    "basic key (no colon, Streak's Node client)": lambda key: _basic(key),
    "bearer": lambda key: {"Authorization": f"Bearer {key}"},
}


@pytest.mark.parametrize("form", AUTH_FORMS)
def test_the_four_auth_forms_work(sandbox: Sandbox, form: str) -> None:
    headers = AUTH_FORMS[form](sandbox.api_key)
    assert requests.get(sandbox.url("v1/users/me"), headers=headers, timeout=10).status_code == 200
    wrong = AUTH_FORMS[form]("not-a-key")
    answer = requests.get(sandbox.url("v1/users/me"), headers=wrong, timeout=10)
    assert answer.status_code == 401 and answer.json()["error"] == "invalid api key"


def test_other_passwords_are_refused(sandbox: Sandbox) -> None:
    headers = _basic(f"{sandbox.api_key}:something-else")
    assert requests.get(sandbox.url("v1/users/me"), headers=headers, timeout=10).status_code == 401


def test_new_single_object_routes_serve_the_listed_objects(sandbox: Sandbox) -> None:
    """A single GET serves exactly the object its list serves."""
    values = sample_params(sandbox.account)
    box = values["box_key"]
    threads = get(sandbox, f"v1/boxes/{box}/threads").json()
    assert get(sandbox, f"v1/threads/{threads[0]['key']}").json() == threads[0]
    files = get(sandbox, f"v1/boxes/{box}/files").json()
    assert get(sandbox, f"v1/files/{files[0]['key']}").json() == files[0]
    tasks = get(sandbox, f"v2/boxes/{box}/tasks", limit="1000").json()["results"]
    assert get(sandbox, f"v2/tasks/{tasks[0]['key']}").json() == tasks[0]
    comments = get(sandbox, f"v2/boxes/{box}/comments").json()["results"]
    assert get(sandbox, f"v1/boxes/{box}/comments").json() == comments
    pipeline = values["pipeline_key"]
    stages = get(sandbox, f"v1/pipelines/{pipeline}/stages").json()
    for key, stage in stages.items():
        assert get(sandbox, f"v1/pipelines/{pipeline}/stages/{key}").json() == stage
    assert get(sandbox, f"v2/pipelines/{pipeline}").json() == get(
        sandbox, f"v1/pipelines/{pipeline}"
    ).json()
    assert get(sandbox, f"v1/boxes/{box}/reminders").json() == []


def test_a_key_reads_only_its_own_user(sandbox: Sandbox) -> None:
    me = sandbox.account.me
    assert get(sandbox, f"v1/users/{me.key}").json() == get(sandbox, "v1/users/me").json()
    colleague = next(key for key in sandbox.account.users if key != me.key)
    assert get(sandbox, f"v1/users/{colleague}").status_code == 401


def test_box_field_values_match_the_box(sandbox: Sandbox) -> None:
    box_key = sample_params(sandbox.account)["box_key"]
    box = get(sandbox, f"v1/boxes/{box_key}").json()
    values = get(sandbox, f"v1/boxes/{box_key}/fields").json()
    assert {v["key"]: v["value"] for v in values} == box["fields"]
    key, value = next(iter(box["fields"].items()))
    assert get(sandbox, f"v1/boxes/{box_key}/fields/{key}").json() == {"key": key, "value": value}


def test_box_newsfeed_is_that_boxs_fifty_newest_entries(sandbox: Sandbox) -> None:
    account = sandbox.account
    for box in account.pipelines[0].boxes[:10]:
        entries = get(sandbox, f"v1/boxes/{box.key}/newsfeed").json()
        assert 0 < len(entries) <= 50
        assert {e["boxKey"] for e in entries} == {box.key}
        stamps = [e["timestamp"] for e in entries]
        assert stamps == sorted(stamps, reverse=True)
        assert entries[-1]["newsfeedEntrySpecific"] == "NEW_BOX" or len(entries) == 50
    def history_of(box: Box) -> int:  # NEW_BOX and an EDIT_STAGE per move, ADD_TASK, ADD_MEETING
        return len(box.stage_path) + len(box.tasks) + len(box.meetings)

    busiest = max(account.all_boxes(), key=history_of)
    history = history_of(busiest)
    assert history > 50, "the account needs a box with more history than the cap"
    capped = get(sandbox, f"v1/boxes/{busiest.key}/newsfeed").json()
    assert len(capped) == 50
    newest = sorted(
        (e for p in account.pipelines for e in p.events if e.box_key == busiest.key),
        key=lambda e: (e.timestamp, e.key),
        reverse=True,
    )[:50]
    assert {e["newsfeedItemKey"] for e in capped} == {e.key for e in newest}
    assert get(sandbox, f"v1/boxes/{box.key}/newsfeed", detailLevel="NOPE").status_code == 400
    user_wide = get(sandbox, "v1/newsfeed").json()
    assert len(user_wide) == 50


def test_timeline_pages_by_token_alone(sandbox: Sandbox) -> None:
    box_key = sample_params(sandbox.account)["box_key"]
    first = get(sandbox, f"v2/boxes/{box_key}/timeline", limit="3").json()
    assert len(first["entries"]) == 3 and first["nextPage"]
    seen = list(first["entries"])
    token = first["nextPage"]
    while token:
        page = get(sandbox, f"v2/boxes/{box_key}/timeline", nextPage=token).json()
        seen += page["entries"]
        token = page["nextPage"]
    stamps = [e["timestamp"] for e in seen]
    assert stamps == sorted(stamps, reverse=True)
    everything = get(sandbox, f"v2/boxes/{box_key}/timeline", limit="1000").json()
    assert everything["entries"] == seen and everything["nextPage"] is None
    with_other = get(sandbox, f"v2/boxes/{box_key}/timeline", nextPage=first["nextPage"], limit="2")
    assert with_other.status_code == 400
    comments = get(sandbox, f"v2/boxes/{box_key}/timeline", filters="[COMMENTS]", limit="1000")
    assert {e["type"] for e in comments.json()["entries"]} == {"COMMENTS"}


def test_search_finds_boxes_by_exact_name(sandbox: Sandbox) -> None:
    box = sandbox.account.pipelines[0].boxes[0]
    found = get(sandbox, "v1/search", name=box.name).json()
    assert box.key in [b["boxKey"] for b in found["results"]["boxes"]]
    assert set(found["results"]) == {"boxes", "contacts", "orgs"}
    assert get(sandbox, "v1/search").status_code == 400



def test_the_docs_list_every_route() -> None:
    """docs/sandbox.md's route table is the endpoint list, row for row."""
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[2] / "docs" / "sandbox.md").read_text("utf-8")
    documented = [
        line.split("`")[1] for line in docs.splitlines() if line.startswith("| `v")
    ]
    assert documented == [e.path for e in ENDPOINTS]
