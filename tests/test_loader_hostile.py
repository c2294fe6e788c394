"""A hostile account through the real source, dlt normalize and DuckDB (stubbed transport).

Regression tests for issue 12 #6 (records that cannot be keyed are quarantined, never called with
"None", the rest loads), #9 (name clashes inside an object are suffixed, not dropped), and issue 11
#2 (numeric text), #4 (box_task_assignees) and #10 (the real newsfeed shape) end to end.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from streak_source import RunReport
from tests.test_loader_support import FakeStreak, query, run_source

pytestmark = pytest.mark.timeout(120)

ME = {"key": "u1", "userKey": "u1", "email": "me@x.io", "fullName": "Me Myself"}
U2 = {"key": "u2", "userKey": "u2", "email": "bo@x.io", "fullName": "Bo"}
BOX = {
    "key": "b1", "boxKey": "b1", "pipelineKey": "p1", "stageKey": "5001", "name": "Acme",
    "fields": {"1001": "119,500 €", "1002": "lots"},
    "taskTotal": 3, "gmailThreadCount": 2, "commentCount": 0, "meetingNotesCount": 0, "callLogCount": 0,
    "fileCount": 0,
    # issue 12 #9: four names, two columns, if nothing is done
    "DealSize": 1, "deal_size": "two", "!!!": "bangs", "🔥": "fire",
}
NEWSFEED_ENTRY = {
    "newsfeedItemKey": "nf1", "boxKey": "b1", "pipelineKey": "p1", "creatorKey": "u1", "timestamp": 1513720521000,
    "lastSavedTimestamp": 1513720521000, "newsfeedEntryScope": "BOX", "newsfeedEntryOperation": "UPDATE",
    "newsfeedEntrySpecific": "EDIT_STAGE",
    "specificVariables": {"STAGE_KEY": "5001", "BOX_NAME": "Acme", "PIPELINE_NAME": "Sales",
                          "STORY_AUTHOR_DISPLAY_NAME": "Me Myself"},
    "storyTextBox": "Me Myself moved this box to Won", "collapsedEntries": [], "moved": True,
}
ROUTES: dict[str, Any] = {
    "v1/users/me": ME,
    "v2/users/me/teams": {"results": [
        {"key": "t1", "name": "Team", "members": [{"userKey": "u1", "role": "Owner"}, {"email": "nokey@x.io"}, None]},
        {"name": "a team without a key"},
    ], "hasNextPage": False},
    "v2/teams/t1/users": {"results": [ME, U2, {"email": "keyless-user@x.io"}], "hasNextPage": False},
    "v1/pipelines": [
        {"key": "p1", "pipelineKey": "p1", "name": "Sales", "boxCount": 2, "stageOrder": ["5001"],
         "stages": {"5001": {"key": "5001", "name": "Won"}},
         "fields": [{"key": "1001", "name": "Deal size", "type": "TEXT_INPUT"},
                    {"key": "1002", "name": "Note", "type": "TEXT_INPUT"},
                    {"key": "1003", "name": "Source", "type": "DROPDOWN",
                     "dropdownSettings": {"items": [{"key": "9001", "name": "Web"}, {"name": "an option without a key"}]}},
                    {"name": "a field without a key", "type": "TEXT_INPUT"}]},
        {"name": "a pipeline without a key", "boxCount": 5},
        None,
    ],
    "v1/pipelines/p1/boxes": [BOX, {"name": "a box without a key", "pipelineKey": "p1", "taskTotal": 4}],
    "v1/pipelines/p1/newsfeed": [NEWSFEED_ENTRY, {"newsfeedEntrySpecific": "NEW_BOX", "timestamp": 1}],
    "v1/snippets": [],
    "v2/teams/t1/contacts": {"results": [{"key": "c1", "givenName": "Grace"}], "cursor": None},
    "v2/teams/t1/organizations": {"results": [], "cursor": None},
    "v2/boxes/b1/tasks": {"results": [
        {"key": "tk1", "boxKey": "b1", "pipelineKey": "p1", "text": "call",
         "assignedTo": [{"userKey": "u1", "email": "me@x.io"}, {"userKey": "u2", "email": "bo@x.io"}]},
        None,
        {"text": "a task without a key", "boxKey": "b1"},
    ], "hasNextPage": False},
    "v1/boxes/b1/threads": [None, {"key": "th1", "subject": "hi"}],
}


@pytest.fixture
def loaded(dlt_isolated: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, FakeStreak, RunReport]:
    fake = FakeStreak(ROUTES).install(monkeypatch)
    report = RunReport()
    run_source(dlt_isolated, report=report)
    return dlt_isolated, fake, report


def test_unkeyable_records_are_quarantined_and_the_rest_loads(loaded: tuple[Any, FakeStreak, RunReport]) -> None:
    dirs, fake, report = loaded
    assert not [p for p in fake.paths() if "None" in p], fake.paths()
    rejected = query(dirs, "select table_name, reason, raw_json, parent_key from crm.rejected_records order by all")
    by_table: dict[str, int] = {}
    for table, reason, raw, _ in rejected:
        by_table[table] = by_table.get(table, 0) + 1
        assert reason and raw is not None
    assert by_table == {"boxes": 1, "box_tasks": 2, "box_threads": 1, "pipeline_newsfeed": 1, "pipelines": 2,
                        "team_members": 2, "teams": 1, "users": 1, "pipeline_fields": 1, "pipeline_field_options": 1}
    assert dict(report.rejected) == by_table
    box_reject = next(r for r in rejected if r[0] == "boxes")
    assert json.loads(box_reject[2])["name"] == "a box without a key" and box_reject[3] == "p1"
    assert ("box_tasks", "null item in the list", "null", "b1") in rejected
    # the rest of the account is there
    assert query(dirs, "select box_key from crm.boxes") == [("b1",)]
    assert query(dirs, "select task_key from crm.box_tasks") == [("tk1",)]
    assert query(dirs, "select thread_key from crm.box_threads") == [("th1",)]
    assert query(dirs, "select pipeline_key from crm.pipelines") == [("p1",)]
    assert sorted(query(dirs, "select user_key from crm.users")) == [("u1",), ("u2",)]
    assert query(dirs, "select team_key, user_key from crm.team_members") == [("t1", "u1")]
    assert query(dirs, "select field_key from crm.pipeline_fields order by 1") == [("1001",), ("1002",), ("1003",)]
    assert query(dirs, "select option_key, label from crm.pipeline_field_options") == [("9001", "Web")]


def test_clashing_names_in_one_object_keep_every_value(loaded: tuple[Any, FakeStreak, RunReport]) -> None:
    dirs, _, report = loaded
    [row] = query(dirs, "select deal_size, deal_size_2, x, x_2 from crm.boxes")
    assert row == ("two", 1, "bangs", "fire")  # deal_size keeps its own name; DealSize -> deal_size_2
    assert report.renamed_columns["boxes"] == 2


def test_numeric_text_gets_value_number_and_keeps_its_text(loaded: tuple[Any, FakeStreak, RunReport]) -> None:
    dirs, _, _ = loaded
    rows = query(dirs, "select field_key, value_text, value_number, decode_status from crm.box_field_values "
                       "order by field_key")
    assert rows == [("1001", "119,500 €", 119500.0, "ok"), ("1002", "lots", None, "ok")]


def test_task_assignees_bridge(loaded: tuple[Any, FakeStreak, RunReport]) -> None:
    dirs, _, _ = loaded
    assert query(dirs, "select task_key, assignee_id, box_key, pipeline_key, user_key, email "
                       "from crm.box_task_assignees order by assignee_id") == [
        ("tk1", "u1", "b1", "p1", "u1", "me@x.io"), ("tk1", "u2", "b1", "p1", "u2", "bo@x.io")]


def test_newsfeed_loads_the_real_shape(loaded: tuple[Any, FakeStreak, RunReport]) -> None:
    dirs, _, _ = loaded
    [row] = query(dirs, "select newsfeed_key, pipeline_key, box_key, stage_key, specific, scope, operation, "
                        "author_name, box_name, specific_variables from crm.pipeline_newsfeed")
    assert row[:9] == ("nf1", "p1", "b1", "5001", "EDIT_STAGE", "BOX", "UPDATE", "Me Myself", "Acme")
    assert json.loads(row[9])["STAGE_KEY"] == "5001"


def test_rejected_records_are_replaced_by_a_clean_run(dlt_isolated: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    FakeStreak(ROUTES).install(monkeypatch)
    run_source(dlt_isolated)
    sales = ROUTES["v1/pipelines"][0]
    clean = {**ROUTES, "v1/pipelines": [{**sales, "fields": sales["fields"][:2]}], "v1/pipelines/p1/boxes": [BOX],
             "v2/users/me/teams": {"results": [], "hasNextPage": False}, "v1/boxes/b1/threads": [],
             "v2/boxes/b1/tasks": {"results": [], "hasNextPage": False}, "v1/pipelines/p1/newsfeed": []}
    FakeStreak(clean).install(monkeypatch)
    run_source(dlt_isolated)
    assert query(dlt_isolated, "select count(*) from crm.rejected_records") == [(0,)]


@pytest.mark.postgres
def test_quarantine_and_bridge_on_postgres(dlt_isolated: Any, fresh_postgres_url: str,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import psycopg2

    FakeStreak(ROUTES).install(monkeypatch)
    report = RunReport()
    run_source(dlt_isolated, report=report, postgres_url=fresh_postgres_url)
    with psycopg2.connect(fresh_postgres_url) as con, con.cursor() as cur:
        cur.execute("select count(*) from crm.rejected_records")
        assert cur.fetchone() == (sum(report.rejected.values()),)
        cur.execute("select count(*) from crm.box_task_assignees")
        assert cur.fetchone() == (2,)
        cur.execute("select deal_size, deal_size_2, x, x_2 from crm.boxes")
        assert cur.fetchall() == [("two", 1, "bangs", "fire")]
    con.close()


@pytest.mark.parametrize("missing", [None, "", "None", "  "])
def test_a_call_with_a_missing_key_is_refused_before_it_is_sent(missing: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from streak_source.client import StreakAPIError, StreakClient
    from tests.test_loader_support import BASE_URL

    fake = FakeStreak({}).install(monkeypatch)
    client = StreakClient("test-key", BASE_URL, max_requests_per_second=1000)
    with pytest.raises(StreakAPIError, match=r"GET v1/boxes/\{box_key\}/threads: refusing to call it with box_key="):
        client.get_list("v1/boxes/{box_key}/threads", box_key=missing)
    assert fake.calls == []
