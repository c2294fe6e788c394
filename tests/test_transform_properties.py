"""Property tests: every row function of streak_source/transform.py against arbitrary JSON.

Streak promises shapes (a box has ``fields``, a team has a ``members`` list, a timestamp is epoch
milliseconds); these tests feed each row function those shapes with keys missing, nulls, wrong
types, huge and unicode strings, and negative, zero or absurd timestamps, and check that it never
raises and never loses a value: each input field is either decoded (epoch ms -> aware UTC
datetime) or kept exactly as it came.

Fixed budget (a few hundred examples in all, derandomized, no deadline, no example database in
the repository), applied per test so other modules keep their own settings. The end-to-end check
that odd data also survives dlt and DuckDB is in ``test_odd_account_loads_end_to_end`` below.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from streak_source.keys import as_key, entity_key
from streak_source.transform import (
    NEWSFEED_KEY_NAMES,
    box_row,
    child_count,
    comment_row,
    contact_row,
    epoch_ms_to_datetime,
    file_row,
    is_timestamp_field,
    meeting_row,
    newsfeed_row,
    organization_row,
    pipeline_field_rows,
    pipeline_row,
    snippet_row,
    stage_names,
    stage_rows,
    task_row,
    team_member_rows,
    team_row,
    thread_row,
    user_row,
)

settings.register_profile(
    "streak-transform-budget",
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
BUDGET = settings(settings.get_profile("streak-transform-budget"))

# ------------------------------------------------------------------------------------ strategies

timestamps = st.one_of(
    st.integers(min_value=-(10**15), max_value=10**16),
    st.sampled_from([0, -1, 1, 7_258_118_400_000, 7_258_118_400_001, 2**63, -(2**63)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["1513720521000", "2017-12-19T21:55:21Z", "", "-5", "NaN"]),
)
huge_strings = st.builds(lambda ch, n: ch * n, st.sampled_from(["x", "é", "日", "🦆", "\u200b", "\\"]),
                         st.integers(min_value=1_000, max_value=20_000))
texts = st.one_of(st.text(max_size=30), huge_strings, st.sampled_from(["", " ", "null", "Ünïcødé 🦆", "\u202e"]))
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), texts,
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)),
    max_leaves=10,
)
keys = st.one_of(st.text(min_size=1, max_size=20), json_values)


def odd(shape: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The promised shape (half the time), else a bare scalar or any JSON at all in its place."""
    return st.one_of(shape, shape, scalars, json_values)


def obj(required: dict[str, st.SearchStrategy[Any]] | None = None, **optional: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A Streak object: the named fields (each may be missing, null or mistyped) plus unknown extras."""
    shaped = st.fixed_dictionaries(
        {name: odd(value) for name, value in (required or {}).items()},
        optional={name: st.one_of(st.none(), odd(value)) for name, value in optional.items()},
    )
    extras = st.dictionaries(st.text(max_size=12), json_values, max_size=3)
    return odd(st.builds(lambda a, b: {**b, **a}, shaped, extras))


sharing_entry = obj(userKey=st.text(max_size=8), email=texts, fullName=texts, displayName=texts)
sharing_entries = st.lists(st.one_of(sharing_entry, texts), max_size=4)
common_times = {"creationTimestamp": timestamps, "lastUpdatedTimestamp": timestamps, "lastSavedTimestamp": timestamps}

users = obj(key=keys, userKey=keys, email=texts, displayName=texts, fullName=texts, **common_times)
members = obj(userKey=keys, email=texts, displayName=texts, isAdmin=st.booleans(), joinDate=timestamps)
teams = obj(key=keys, teamKey=keys, name=texts, members=st.lists(members, max_size=4), creationDate=timestamps)
stages = obj(key=keys, name=texts, color=obj(foregroundColor=texts, backgroundColor=texts),
             creationTimestamp=timestamps)
options = obj(key=keys, name=texts, tag=texts)
fields = obj(key=keys, name=texts, type=st.sampled_from(["TEXT_INPUT", "DROPDOWN", "TAG", "DATE", "??"]),
             dropdownSettings=obj(items=st.lists(options, max_size=3)),
             tagSettings=obj(tags=st.lists(options, max_size=3)), lastUpdatedTimestamp=timestamps)
stage_keys = st.sampled_from(["5001", "5002", "5003", "x"])
pipelines = obj(
    key=keys, pipelineKey=keys, name=texts,
    stages=st.one_of(st.dictionaries(stage_keys, stages, max_size=4), st.lists(stages, max_size=4)),
    stageOrder=st.lists(st.one_of(stage_keys, json_values), max_size=5),
    fields=st.lists(fields, max_size=4), **common_times,
)
counters = st.one_of(st.integers(min_value=-5, max_value=10**12), scalars)
boxes = obj(
    key=keys, boxKey=keys, pipelineKey=keys, name=texts, stageKey=st.one_of(stage_keys, json_values),
    fields=st.dictionaries(st.text(max_size=5), json_values, max_size=4),
    assignedToSharingEntries=sharing_entries, creatorSharingEntry=st.one_of(sharing_entry, texts),
    taskTotal=counters, gmailThreadCount=counters, commentCount=counters, meetingNotesCount=counters,
    callLogCount=counters, fileCount=counters, lastStageChangeTimestamp=timestamps, **common_times,
)
parent_boxes = st.fixed_dictionaries({"box_key": keys}, optional={"pipelineKey": keys, "boxKey": keys, "key": keys})
tasks = obj(key=keys, taskKey=keys, boxKey=keys, pipelineKey=keys, text=texts, status=texts,
            assignedTo=sharing_entries, assignedToSharingEntries=sharing_entries, creator=sharing_entry,
            dueDate=timestamps, creationDate=timestamps)
threads = obj(key=keys, threadKey=keys, boxKey=keys, subject=texts, lastEmailTimestamp=timestamps, **common_times)
comments = obj(key=keys, commentKey=keys, boxKey=keys, message=texts, timestamp=timestamps)
meetings = obj(key=keys, meetingKey=keys, boxKey=keys, notes=texts, startTimestamp=timestamps, duration=counters)
files = obj(key=keys, fileKey=keys, boxKey=keys, fileName=texts, size=counters, mimeType=texts)
snippets = obj(key=keys, snippetKey=keys, snippetName=texts, snippetText=texts, **common_times)
contacts = obj(key=keys, contactKey=keys, givenName=texts, familyName=texts,
               emailAddresses=st.lists(st.one_of(texts, json_values), max_size=3), creationDate=timestamps)
organizations = obj(key=keys, organizationKey=keys, orgKey=keys, name=texts, domains=st.lists(texts, max_size=2),
                    creationDate=timestamps)
newsfeed = obj(newsfeedItemKey=keys, key=keys, newsfeedEntryKey=keys, pipelineKey=keys, timestamp=timestamps,
               boxKey=keys, newsfeedEntrySpecific=texts, newsfeedEntryScope=texts, newsfeedEntryOperation=texts,
               specificVariables=obj(STAGE_KEY=texts, BOX_NAME=texts, STORY_AUTHOR_DISPLAY_NAME=texts),
               lastSavedTimestamp=timestamps)

# --------------------------------------------------------------------------------- invariants

_KEY_ALIASES: dict[str, tuple[str, ...]] = {
    "user_key": ("key", "userKey"),
    "team_key": ("key", "teamKey"),
    "pipeline_key": ("key", "pipelineKey"),
    "snippet_key": ("key", "snippetKey"),
    "contact_key": ("key", "contactKey"),
    "organization_key": ("key", "organizationKey", "orgKey"),
    "box_key": ("key", "boxKey"),
    "task_key": ("key", "taskKey"),
    "thread_key": ("key", "threadKey"),
    "comment_key": ("key", "commentKey"),
    "meeting_key": ("key", "meetingKey"),
    "file_key": ("key", "fileKey"),
    "newsfeed_key": NEWSFEED_KEY_NAMES,
}


def expected_key(source: dict[str, Any], key_column: str) -> str | None:
    """The one key rule (streak_source.keys); newsfeed entries look at ``newsfeedItemKey`` first."""
    names = _KEY_ALIASES[key_column]
    if key_column == "newsfeed_key":
        return next((k for k in (as_key(source.get(n)) for n in names) if k is not None), None)
    return entity_key(source, *(n for n in names if n != "key"))


def same(a: Any, b: Any) -> bool:
    """Equality that treats NaN as equal to itself (a kept NaN is not a lost value)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, (list, dict)) or isinstance(b, (list, dict)):
        return json.dumps(a, sort_keys=True, default=repr) == json.dumps(b, sort_keys=True, default=repr)
    return bool(a == b) and type(a) is type(b)


def as_loaded(value: Any) -> Any:
    """What a kept value looks like in a row: integers beyond 64 bits as their decimal text."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if -(2**63) <= value < 2**63 else str(value)
    if isinstance(value, list):
        return [as_loaded(v) for v in value]
    if isinstance(value, dict):
        return {k: as_loaded(v) for k, v in value.items()}
    return value


def number_like(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return False
        return True
    return isinstance(value, (int, float))


def decoded_or_kept(name: str, before: Any, row: dict[str, Any]) -> None:
    """An epoch-ms field holds the aware UTC datetime of its value; a number there that is not a
    plausible time leaves it null and keeps the raw text in ``<name>Raw``; anything else is kept."""
    after = row[name]
    if is_timestamp_field(name) and number_like(before):
        decoded = epoch_ms_to_datetime(before)
        if decoded is not None:
            assert isinstance(after, datetime) and after.utcoffset() == timedelta(0), (name, before, after)
            assert after == decoded
        else:
            assert after is None, (name, before, after)
            assert row[f"{name}Raw"] == (before if isinstance(before, str) else json.dumps(before))
    else:
        assert same(as_loaded(before), after), (name, before, after)


def check_entity(row: Any, source: Any, key_column: str, dropped: tuple[str, ...] = (),
                 added: tuple[str, ...] = ()) -> None:
    """Nothing lost: every input field is in the row (decoded or as it came), except the key
    aliases folded into ``key_column`` and the fields the function documents as moved out."""
    assert isinstance(row, dict)
    assert key_column in row
    assert all(isinstance(name, str) for name in row)
    if not isinstance(source, dict):
        assert same(row.get("value"), as_loaded(source))
        return
    aliases = _KEY_ALIASES[key_column]
    assert row[key_column] == expected_key(source, key_column)  # None: the source quarantines the object
    for name, value in source.items():
        if name in aliases or name in dropped or name in added or name == key_column:
            continue
        decoded_or_kept(name, value, row)


def check_child(row: dict[str, Any], item: Any, box: dict[str, Any], key_column: str) -> None:
    """A child row always says which box (and pipeline) it hangs off."""
    check_entity(row, item, key_column, dropped=("boxKey", "pipelineKey"))
    assert "boxKey" in row and "pipelineKey" in row
    own = item if isinstance(item, dict) else {}
    expected_box = own.get("boxKey") or box.get("box_key")  # the parent is a built box row
    assert same(row["boxKey"], as_loaded(expected_box))
    assert same(row["pipelineKey"], as_loaded(own.get("pipelineKey") or box.get("pipelineKey")))


def optional_text(value: Any) -> bool:
    return value is None or isinstance(value, str)


# -------------------------------------------------------------------------------------- tests


@BUDGET
@given(user=users, is_me=st.booleans())
def test_user_row(user: Any, is_me: bool) -> None:
    before = copy.deepcopy(user)
    row = user_row(user, is_me)
    check_entity(row, before, "user_key", added=("is_me",))
    assert row["is_me"] is is_me
    assert same(user, before)  # the input is never mutated


@BUDGET
@given(team=teams)
def test_team_row(team: Any) -> None:
    before = copy.deepcopy(team)
    row = team_row(team)
    check_entity(row, before, "team_key", dropped=("members",))
    assert "members" not in row


@BUDGET
@given(team=teams)
@example(team={"key": "t", "members": 5})  # found: a count where the member list belongs crashed
def test_team_member_rows(team: Any) -> None:
    before = copy.deepcopy(team)
    rows = team_member_rows(team)
    assert isinstance(rows, list)
    members = before.get("members") if isinstance(before, dict) else None
    expected = [m for m in members if isinstance(m, dict)] if isinstance(members, list) else []
    assert len(rows) == len(expected)
    team_key = before.get("key") or before.get("teamKey") if isinstance(before, dict) else None
    for row, member in zip(rows, expected):
        assert same(row["teamKey"], as_loaded(team_key))
        for name, value in member.items():
            if name != "teamKey":
                decoded_or_kept(name, value, row)


@BUDGET
@given(pipeline=pipelines)
def test_pipeline_row(pipeline: Any) -> None:
    before = copy.deepcopy(pipeline)
    row = pipeline_row(pipeline)
    check_entity(row, before, "pipeline_key", dropped=("stages", "fields"), added=("stage_count", "field_count"))
    assert "stages" not in row and "fields" not in row
    assert isinstance(row["stage_count"], int) and row["stage_count"] >= 0
    assert isinstance(row["field_count"], int) and row["field_count"] >= 0


@BUDGET
@given(pipeline=pipelines)
@example(pipeline=None)  # found: crashed on a pipeline that is not an object
@example(pipeline={"stageOrder": 5, "stages": {"a": {}}})  # found: crashed on a non-list stageOrder
@example(pipeline={"stageOrder": ["a", "a"], "stages": {"a": {}, "b": {}}})
def test_stage_rows_and_stage_names(pipeline: Any) -> None:
    rows = stage_rows(pipeline)
    names = stage_names(pipeline)
    assert isinstance(rows, list) and isinstance(names, dict)
    assert sorted(r["stage_key"] for r in rows) == sorted(names)
    assert len({r["stage_key"] for r in rows}) == len(rows)  # one row per stage
    pipeline_key = (pipeline.get("key") or pipeline.get("pipelineKey")) if isinstance(pipeline, dict) else None
    for row in rows:
        assert isinstance(row["stage_key"], str)
        assert same(row["pipeline_key"], as_loaded(pipeline_key))
        assert isinstance(row["stage_order"], int) and row["stage_order"] >= 0
        assert "color" not in row and {"foreground_color", "background_color"} <= set(row)


@BUDGET
@given(pipeline=pipelines)
@example(pipeline=[1])  # found: crashed on a pipeline that is not an object
@example(pipeline={"fields": 5})  # found: crashed on a non-list fields
@example(pipeline={"fields": [{"key": "1", "dropdownSettings": {"items": 5}, "tagSettings": {"tags": 5.5}}]})
def test_pipeline_field_rows(pipeline: Any) -> None:
    field_rows, option_rows = pipeline_field_rows(pipeline)
    assert isinstance(field_rows, list) and isinstance(option_rows, list)
    declared = pipeline.get("fields") if isinstance(pipeline, dict) else None
    dict_fields = [f for f in declared if isinstance(f, dict)] if isinstance(declared, list) else []
    assert len(field_rows) == len(dict_fields)
    for row, field in zip(field_rows, dict_fields):
        assert "field_key" in row and isinstance(row["field_order"], int)
        assert "dropdownSettings" not in row and "tagSettings" not in row
        for name, value in field.items():
            if name not in ("key", "fieldKey", "dropdownSettings", "tagSettings", "pipeline_key", "field_order"):
                decoded_or_kept(name, value, row)
    for row in option_rows:
        assert row["option_kind"] in ("DROPDOWN", "TAG")
        assert isinstance(row["option_order"], int)
        assert {"option_key", "label", "pipeline_key", "field_key"} <= set(row)


@BUDGET
@given(box=boxes, pipeline=pipelines)
def test_box_row(box: Any, pipeline: Any) -> None:
    before = copy.deepcopy(box)
    names = stage_names(pipeline)
    row = box_row(box, names)
    derived = ("stage_name", "assigned_to_names", "assigned_to_emails", "owner_name", "owner_email", "creator_name")
    check_entity(row, before, "box_key", added=derived)
    for column in derived:
        assert optional_text(row[column]) or column == "stage_name", (column, row[column])
    if isinstance(before, dict) and "fields" in before:
        assert same(row["fields"], as_loaded(before["fields"]))  # the raw map stays one JSON value


@pytest.mark.parametrize(
    ("build", "key_column", "items"),
    [
        pytest.param(task_row, "task_key", tasks, id="task_row"),
        pytest.param(thread_row, "thread_key", threads, id="thread_row"),
        pytest.param(comment_row, "comment_key", comments, id="comment_row"),
        pytest.param(meeting_row, "meeting_key", meetings, id="meeting_row"),
        pytest.param(file_row, "file_key", files, id="file_row"),
    ],
)
def test_box_child_rows(build: Callable[[Any, dict[str, Any]], dict[str, Any]], key_column: str,
                        items: st.SearchStrategy[Any]) -> None:
    @BUDGET
    @given(item=items, box=parent_boxes)
    def check(item: Any, box: dict[str, Any]) -> None:
        before = copy.deepcopy(item)
        row = build(item, box)
        check_child(row, before, box, key_column)
        if build is task_row:
            for column in ("assignee_names", "assignee_emails", "creator_name"):
                assert optional_text(row[column]), (column, row[column])

    check()


@BUDGET
@given(snippet=snippets)
def test_snippet_row(snippet: Any) -> None:
    before = copy.deepcopy(snippet)
    check_entity(snippet_row(snippet), before, "snippet_key")


@BUDGET
@given(contact=contacts)
def test_contact_row(contact: Any) -> None:
    before = copy.deepcopy(contact)
    row = contact_row(contact)
    check_entity(row, before, "contact_key", added=("full_name",))
    assert optional_text(row["full_name"])


@BUDGET
@given(organization=organizations)
def test_organization_row(organization: Any) -> None:
    before = copy.deepcopy(organization)
    check_entity(organization_row(organization), before, "organization_key")


@BUDGET
@given(entry=newsfeed, pipeline_key=keys)
def test_newsfeed_row_keeps_everything_and_never_invents_a_key(entry: Any, pipeline_key: Any) -> None:
    before = copy.deepcopy(entry)
    row = newsfeed_row(entry, pipeline_key)
    moved = ("pipelineKey", "newsfeedEntryScope", "newsfeedEntryOperation", "newsfeedEntrySpecific", "specificVariables")
    check_entity(row, before, "newsfeed_key", dropped=moved)
    if not isinstance(before, dict):
        return
    own = before.get("pipelineKey")
    assert same(row["pipelineKey"], as_loaded(own or pipeline_key))
    for name, column in (("newsfeedEntryScope", "scope"), ("newsfeedEntryOperation", "operation"),
                         ("newsfeedEntrySpecific", "specific"), ("specificVariables", "specific_variables")):
        assert same(row[column], as_loaded(before.get(name)))
    variables = before.get("specificVariables") if isinstance(before.get("specificVariables"), dict) else {}
    stage_key = variables.get("STAGE_KEY")
    assert row["stage_key"] == (stage_key if isinstance(stage_key, str) else None)


@BUDGET
@given(box=boxes, names=st.lists(st.sampled_from(
    ["taskTotal", "gmailThreadCount", "commentCount", "meetingNotesCount", "callLogCount", "fileCount"]),
    min_size=1, max_size=2, unique=True))
@example(box={"taskTotal": float("inf")}, names=["taskTotal"])  # found: OverflowError
@example(box={"taskTotal": float("nan")}, names=["taskTotal"])  # found: ValueError
@example(box={"taskTotal": 10**400}, names=["taskTotal"])
def test_child_count_is_a_count_or_unknown(box: Any, names: list[str]) -> None:
    count = child_count(box, tuple(names))
    assert count is None or (isinstance(count, int) and not isinstance(count, bool))
    values = [box.get(n) for n in names] if isinstance(box, dict) else [None]
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool)
                  and not (isinstance(v, float) and not math.isfinite(v)) for v in values)
    if numbers:
        assert count == sum(int(v) for v in values)
    else:  # a missing, null, mistyped or non-finite counter means "unknown: make the call"
        assert count is None


# ------------------------------------------------------------------ end to end: odd data loads


def _odd_account_middleware(app: Any, odd: dict[str, Any]) -> Any:
    """ASGI middleware over the sandbox: every object in an /api/ response gets the odd values.

    Keys, paging fields and the box counters stay as the sandbox sent them (so the calls and row
    counts still match the account's ground truth); everything else Streak promises a shape for is
    overwritten with what Hypothesis drew: nulls, wrong types, huge/unicode strings, negative or
    zero timestamps, garbage people and field values.
    """
    keep = {"key", "boxKey", "pipelineKey", "teamKey", "userKey", "stageKey", "results", "hasNextPage", "cursor",
            "taskTotal", "gmailThreadCount", "commentCount", "meetingNotesCount", "callLogCount", "fileCount",
            "members", "stages", "stageOrder", "fields", "contactKey", "organizationKey", "threadKey", "taskKey",
            "commentKey", "meetingKey", "fileKey", "snippetKey", "newsfeedEntryKey", "newsfeedItemKey", "type", "dropdownSettings",
            "tagSettings", "boxCount", "items", "tags"}
    key_names = ("key", "boxKey", "userKey", "teamKey", "pipelineKey", "contactKey", "newsfeedEntryKey",
                 "newsfeedItemKey")

    def corrupt(value: Any) -> Any:
        if isinstance(value, list):
            return [corrupt(v) for v in value]
        if not isinstance(value, dict):
            return value
        out = {k: corrupt(v) for k, v in value.items()}
        if any(k in value for k in key_names):  # an entity: overwrite what Streak promises a shape for
            for name, odd_value in odd["overwrite"].items():
                if name not in keep and (name in out or name.endswith(("Timestamp", "Date"))):
                    out[name] = odd_value
            out["oddText"] = odd["text"]
            out["oddNested"] = odd["nested"]
            if isinstance(value.get("fields"), dict) and value["fields"]:
                # Same field keys, odd values (never "empty", so box_field_values keeps its count).
                out["fields"] = {k: odd["field_values"][i % len(odd["field_values"])]
                                 for i, k in enumerate(value["fields"])}
        return out

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or "/__sandbox__/" in scope["path"]:
            await app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    body = b"".join(chunks)
                    if start.get("status") == 200:
                        body = json.dumps(corrupt(json.loads(body)), allow_nan=True).encode()
                    headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
                    headers.append((b"content-length", str(len(body)).encode()))
                    await send({**start, "headers": headers})
                    await send({"type": "http.response.body", "body": body})

        await app(scope, receive, capture)

    return wrapped


# What goes over the wire must be valid JSON: no NaN or Infinity (requests parses bodies with
# simplejson here, which rejects them; the client then fails with "not valid JSON", by design).
wire_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), texts,
)
wire_json = st.recursive(
    wire_scalars,
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(st.text(max_size=8), children, max_size=3)),
    max_leaves=8,
)
wire_timestamps = st.one_of(
    st.integers(min_value=-(10**15), max_value=10**16),
    st.sampled_from([0, -1, 2**63, -(2**63), 2**70, "1513720521000", "2017-12-19T21:55:21Z", ""]),
    st.floats(allow_nan=False, allow_infinity=False),
)
non_empty_field_values = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(), st.text(min_size=1, max_size=20), huge_strings,
    st.lists(st.one_of(st.text(max_size=5), st.integers(), st.none()), min_size=1, max_size=3),
    st.dictionaries(st.text(max_size=5), wire_scalars, min_size=1, max_size=2),
)
odd_data = st.fixed_dictionaries({
    "overwrite": st.dictionaries(
        st.sampled_from(["creationTimestamp", "lastUpdatedTimestamp", "dueDate", "timestamp", "notes", "subject",
                         "assignedToSharingEntries", "creatorSharingEntry", "assignedTo", "creator", "color",
                         "lastSavedTimestamp", "startTimestamp", "status", "duration", "domains", "name", "email",
                         "givenName", "familyName", "emailAddresses", "fullName", "displayName", "text"]),
        st.one_of(wire_timestamps, wire_json, huge_strings), max_size=8),
    "text": st.one_of(huge_strings, st.text(min_size=1, max_size=50)),
    "nested": wire_json,
    "field_values": st.lists(non_empty_field_values, min_size=1, max_size=5),
})
NASTY = {
    "overwrite": {"creationTimestamp": -1, "lastUpdatedTimestamp": 0, "dueDate": 2**70, "timestamp": -(2**63),
                  "notes": "🦆" * 20_000, "assignedToSharingEntries": 5, "creatorSharingEntry": [None, {"x": 1}],
                  "color": "red", "name": None, "email": ["a"], "startTimestamp": "2017-12-19T21:55:21Z",
                  "duration": 1e308, "givenName": {"a": [1]}, "lastSavedTimestamp": 1.5},
    "text": "Ünïcødé \u202e \u0000 \\ \" " + "日" * 5_000,
    "nested": {"a": [1, None, {"b": 2**70}], "": -0.0},
    "field_values": [2**70, -1e308, True, "x" * 20_000, [None, 1, "a"], {"k": None}, -1, 0],
}
"""Everything at once: always run, whatever Hypothesis draws."""


@settings(max_examples=2, deadline=None, derandomize=True, database=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck))
@given(odd=odd_data)
@example(odd=NASTY)
def test_odd_account_loads_end_to_end(odd: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> None:
    """A sandbox account whose every object carries odd values still loads completely.

    Real HTTP, the real client, reader, transform, dlt normalize and DuckDB: every table has the
    ground truth's row count, and the odd text arrives byte for byte.
    """
    import os

    from streak_source.sandbox import Sandbox
    from tests.loadtools import ACCOUNT_TABLES, run_in_process, table_counts

    root = tmp_path_factory.mktemp("odd")
    env = {"DLT_DATA_DIR": str(root / "dlt"), "DLT_LOCAL_DIR": str(root), "STREAK_DUCKDB_PATH": str(root / "streak.duckdb"),
           "DLT_PROJECT_DIR": str(Path(__file__).resolve().parent.parent)}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        sandbox = Sandbox(boxes=6, seed=31, anchor_date="2026-01-15")
        sandbox.server.app = _odd_account_middleware(sandbox.server.app, odd)
        with sandbox as sb:
            summary = run_in_process({"api_key": sb.api_key, "base_url": sb.base_url, "max_requests_per_second": 1000})
            truth = sb.ground_truth()
        counts = table_counts(root / "streak.duckdb")
        assert {t: counts.get(t) for t in ACCOUNT_TABLES} == {t: truth[t] for t in ACCOUNT_TABLES}
        assert summary["rows"]["boxes"] == truth["boxes"]
        import duckdb

        with duckdb.connect(str(root / "streak.duckdb"), read_only=True) as con:
            texts_loaded = {r[0] for r in con.execute("select odd_text from crm.boxes").fetchall()}
            assert texts_loaded == {odd["text"]}
            created = odd["overwrite"].get("creationTimestamp")
            if number_like(created):  # decoded, or null with the raw text kept next to it
                decoded = epoch_ms_to_datetime(created)
                if decoded is not None:
                    got = con.execute("select distinct creation_timestamp from crm.boxes").fetchall()
                    assert got == [(decoded,)]
                else:
                    got = con.execute("select distinct creation_timestamp, creation_timestamp_raw from crm.boxes").fetchall()
                    assert got == [(None, created if isinstance(created, str) else json.dumps(created))]
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
