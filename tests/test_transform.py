"""Unit tests of the row-shaping functions: plain dicts in, rows out, no HTTP."""

from __future__ import annotations

from datetime import datetime, timezone

from streak_source.field_values import field_options as decoder_options
from streak_source.keys import entity_key
from streak_source.people import task_assignee_rows
from streak_source.objects import BOX_CHILDREN
from streak_source.transform import (
    FieldOption,
    box_child_row,
    box_newsfeed_row,
    box_row,
    child_count,
    contact_row,
    convert_timestamps,
    epoch_ms_to_datetime,
    field_options,
    newsfeed_row,
    pipeline_field_rows,
    pipeline_row,
    stage_rows,
    task_row,
    team_member_rows,
    team_row,
    user_row,
)

MS = 1513720521000
AT = datetime(2017, 12, 19, 21, 55, 21, tzinfo=timezone.utc)

PIPELINE = {
    "key": "pipe1",
    "pipelineKey": "pipe1",
    "name": "Sales",
    "creationTimestamp": MS,
    "stageOrder": ["5002", "5001"],
    "stages": {
        "5001": {"key": "5001", "name": "Won", "color": {"foregroundColor": "#fff", "backgroundColor": "#0a0"}},
        "5002": {"key": "5002", "name": "Lead", "color": {"foregroundColor": "#000", "backgroundColor": "#ccc"}},
        "5003": {"key": "5003", "name": "Orphan"},
    },
    "fields": [
        {"key": "1001", "name": "Deal size", "type": "TEXT_INPUT"},
        {"key": "1002", "name": "Source", "type": "DROPDOWN",
         "dropdownSettings": {"items": [{"key": "9001", "name": "Web"}, {"key": "9002", "name": "Referral"}]}},
        {"key": "1003", "name": "Tags", "type": "TAG", "tagSettings": {"tags": [{"key": "9003", "tag": "hot"}]}},
    ],
}


def test_epoch_ms_converts_to_aware_utc() -> None:
    assert epoch_ms_to_datetime(MS) == AT
    assert epoch_ms_to_datetime(str(MS)) == AT
    assert epoch_ms_to_datetime(None) is None
    assert epoch_ms_to_datetime(True) is None
    assert epoch_ms_to_datetime("soon") is None
    assert epoch_ms_to_datetime(-5) is None
    assert epoch_ms_to_datetime(float("nan")) is None
    assert epoch_ms_to_datetime(10**16) is None


def test_convert_timestamps_only_touches_epoch_fields() -> None:
    row = convert_timestamps({"creationTimestamp": MS, "dueDate": MS, "timestamp": MS, "duration": MS,
                              "lastSeenTimestamp": None, "firstEmailTimestamp": "2017-12-19", "flagDate": True})
    assert row["creationTimestamp"] == AT and row["dueDate"] == AT and row["timestamp"] == AT
    assert row["duration"] == MS  # not a time, a length
    assert row["lastSeenTimestamp"] is None
    assert row["firstEmailTimestamp"] == "2017-12-19"  # not epoch ms: kept as it came
    assert row["flagDate"] is True


def test_user_and_team_rows_use_entity_keys() -> None:
    user = user_row({"key": "u1", "userKey": "u1", "email": "a@b.c", "creationTimestamp": MS}, is_me=True)
    assert user == {"user_key": "u1", "email": "a@b.c", "creationTimestamp": AT, "is_me": True}
    team = {"key": "t1", "name": "Team", "creationDate": MS,
            "members": [{"userKey": "u1", "role": "Owner", "inviteDate": MS}, {"userKey": "u2", "role": "Member"}]}
    assert team_row(team) == {"team_key": "t1", "name": "Team", "creationDate": AT}
    members = team_member_rows(team)
    assert [m["user_key"] for m in members] == ["u1", "u2"]
    assert all(m["team_key"] == "t1" for m in members)
    assert members[0]["inviteDate"] == AT
    assert team_member_rows("not a team") == []


def test_stage_rows_follow_stage_order_and_unordered_stages_sort_last() -> None:
    rows = {r["stage_key"]: r for r in stage_rows(PIPELINE)}
    assert rows["5002"]["stage_order"] == 0
    assert rows["5001"]["stage_order"] == 1
    assert rows["5003"]["stage_order"] == 2
    assert rows["5001"]["name"] == "Won" and rows["5001"]["background_color"] == "#0a0"
    assert rows["5003"]["foreground_color"] is None
    assert {r["pipeline_key"] for r in rows.values()} == {"pipe1"}


def test_a_stage_listed_twice_in_stage_order_keeps_its_first_place() -> None:
    pipeline = {"key": "p", "stageOrder": ["2", "2", "1"], "stages": {"1": {}, "2": {}, "3": {}}}
    assert {r["stage_key"]: r["stage_order"] for r in stage_rows(pipeline)} == {"2": 0, "1": 1, "3": 2}


def test_a_null_in_stage_order_is_no_stage_and_takes_no_place() -> None:
    """Issue 22: no key becomes the text "None": a null listed in ``stageOrder`` was the stage "None"
    and took a position, so a stage really keyed "None" sorted there and the next stages moved down."""
    pipeline = {"key": "p", "stageOrder": [None, "2", None, "None"], "stages": {"None": {}, "2": {}}}
    assert {r["stage_key"]: r["stage_order"] for r in stage_rows(pipeline)} == {"2": 0, "None": 1}


def test_stage_rows_accept_a_list_of_stages() -> None:
    pipeline = {"key": "p", "stageOrder": ["2"], "stages": [{"key": "2", "name": "Two"}, {"key": "1", "name": "One"}]}
    assert {r["stage_key"]: r["stage_order"] for r in stage_rows(pipeline)} == {"2": 0, "1": 1}


def test_pipeline_row_drops_embedded_schema_and_counts_it() -> None:
    row = pipeline_row(PIPELINE)
    assert row["pipeline_key"] == "pipe1" and "key" not in row and "pipelineKey" not in row
    assert "stages" not in row and "fields" not in row
    assert row["stage_count"] == 3 and row["field_count"] == 3
    assert row["creationTimestamp"] == AT


def test_pipeline_fields_and_options() -> None:
    fields, options = pipeline_field_rows(PIPELINE)
    assert [(f["field_key"], f["field_order"]) for f in fields] == [("1001", 0), ("1002", 1), ("1003", 2)]
    assert all("dropdownSettings" not in f and "tagSettings" not in f for f in fields)
    assert [(o["field_key"], o["option_key"], o["label"], o["option_kind"]) for o in options] == [
        ("1002", "9001", "Web", "DROPDOWN"), ("1002", "9002", "Referral", "DROPDOWN"), ("1003", "9003", "hot", "TAG")]
    assert {o["pipeline_key"] for o in options} == {"pipe1"}


def test_box_row_resolves_stage_and_people() -> None:
    box = {"key": "b1", "boxKey": "b1", "pipelineKey": "pipe1", "stageKey": "5002", "fields": {"1001": "x"},
           "lastUpdatedTimestamp": MS,
           "assignedToSharingEntries": [{"fullName": "Ada L", "email": "ada@x.io"}, {"displayName": "Bob", "email": "b@x.io"}],
           "creatorSharingEntry": {"email": "c@x.io"}}
    row = box_row(box, {"5002": "Lead"})
    assert row["box_key"] == "b1" and "key" not in row and "boxKey" not in row
    assert row["stage_name"] == "Lead"
    assert row["owner_name"] == "Ada L" and row["owner_email"] == "ada@x.io"
    assert row["assigned_to_names"] == "Ada L, Bob"
    assert row["assigned_to_emails"] == "ada@x.io, b@x.io"
    assert row["creator_name"] == "c@x.io"
    assert row["fields"] == {"1001": "x"}
    assert row["lastUpdatedTimestamp"] == AT


def test_box_row_unassigned_and_unknown_stage() -> None:
    row = box_row({"key": "b2", "stageKey": "9999"}, {"5002": "Lead"})
    assert row["stage_name"] is None and row["owner_name"] is None and row["assigned_to_names"] is None


def test_child_rows_carry_box_and_pipeline_keys() -> None:
    box = box_row({"key": "b1", "pipelineKey": "pipe1"}, {})
    row = box_child_row({"key": "c1", "message": "hi", "timestamp": MS}, "comment_key", box, "commentKey")
    assert row["comment_key"] == "c1" and row["boxKey"] == "b1" and row["pipelineKey"] == "pipe1"
    assert row["timestamp"] == AT


def test_task_row_names_assignees_from_either_shape() -> None:
    box = {"box_key": "b1", "pipelineKey": "p"}
    spec = task_row({"key": "t1", "assignedTo": [{"fullName": "Ada", "email": "a@x"}], "dueDate": MS}, box)
    assert spec["assignee_names"] == "Ada" and spec["assignee_emails"] == "a@x" and spec["dueDate"] == AT
    legacy = task_row({"key": "t2", "assignedToSharingEntries": [{"displayName": "Bo", "email": "b@x"}],
                       "dueDate": None}, box)
    assert legacy["assignee_names"] == "Bo" and legacy["dueDate"] is None


def test_contact_full_name_falls_back_to_email() -> None:
    assert contact_row({"key": "c", "givenName": "Ada", "familyName": "Lovelace"})["full_name"] == "Ada Lovelace"
    assert contact_row({"key": "c", "emailAddresses": ["x@y.z"]})["full_name"] == "x@y.z"
    assert contact_row({"key": "c"})["full_name"] is None


# A real Streak newsfeed entry (streak_api.md 6.13; TS SDK field list), as /v1/pipelines/{k}/newsfeed sends it.
REAL_NEWSFEED_ENTRY = {
    "newsfeedItemKey": "agxzfm1haWxmb29nYWVyGQsSDE5ld3NmZWVkSXRlbRiAgIDY9ZmNCgw",
    "boxKey": "agxzfm1haWxmb29nYWVyEQsSBENhc2UYgICA2NqVgQsM",
    "pipelineKey": "agxzfm1haWxmb29nYWVyFQsSCFdvcmtmbG93GICAgNiVy4sKDA",
    "creatorKey": "agxzfm1haWxmb29nYWVyEQsSBFVzZXIYgICAgICAgAoM",
    "timestamp": MS,
    "lastSavedTimestamp": MS,
    "newsfeedEntryScope": "BOX",
    "newsfeedEntryOperation": "UPDATE",
    "newsfeedEntrySpecific": "EDIT_STAGE",
    "specificVariables": {"STAGE_KEY": "5003", "BOX_NAME": "Acme renewal", "PIPELINE_NAME": "Sales",
                          "STORY_AUTHOR_DISPLAY_NAME": "Ada Lovelace"},
    "storyTextBox": "Ada Lovelace moved this box to Negotiation",
    "storyTextPipeline": "Ada Lovelace moved Acme renewal to Negotiation",
    "collapsedEntries": [],
    "moved": True,
}


def test_newsfeed_row_reads_the_real_streak_shape() -> None:
    """Issue 11 #10: key from newsfeedItemKey, specifics and UPPER_SNAKE variables as columns."""
    row = newsfeed_row(dict(REAL_NEWSFEED_ENTRY), "ignored-when-the-entry-has-one")
    assert row["newsfeed_key"] == REAL_NEWSFEED_ENTRY["newsfeedItemKey"]
    assert (row["specific"], row["scope"], row["operation"]) == ("EDIT_STAGE", "BOX", "UPDATE")
    assert (row["stage_key"], row["box_name"], row["pipeline_name"], row["author_name"]) == (
        "5003", "Acme renewal", "Sales", "Ada Lovelace")
    assert row["specific_variables"] == REAL_NEWSFEED_ENTRY["specificVariables"]
    assert row["boxKey"] == REAL_NEWSFEED_ENTRY["boxKey"] and row["pipelineKey"] == REAL_NEWSFEED_ENTRY["pipelineKey"]
    assert row["timestamp"] == AT and row["lastSavedTimestamp"] == AT
    assert "newsfeedItemKey" not in row and "newsfeedEntrySpecific" not in row


def test_newsfeed_key_fallbacks_and_no_digest() -> None:
    new_box = {"newsfeedEntrySpecific": "NEW_BOX", "specificVariables": {"BOX_NAME": "Zed"}, "timestamp": MS}
    assert newsfeed_row({**new_box, "key": "k1"}, "p1")["newsfeed_key"] == "k1"
    assert newsfeed_row({**new_box, "newsfeedEntryKey": "old"}, "p1")["newsfeed_key"] == "old"
    assert newsfeed_row({**new_box, "newsfeedItemKey": "item", "key": "k1"}, "p1")["newsfeed_key"] == "item"
    keyless = newsfeed_row(dict(new_box), "p1")
    assert keyless["newsfeed_key"] is None  # quarantined by the source, never keyed by a digest
    assert keyless["stage_key"] is None and keyless["box_name"] == "Zed" and keyless["pipelineKey"] == "p1"


def test_box_newsfeed_row_is_the_newsfeed_row_with_the_parent_box() -> None:
    """Issue 13: the per-box newsfeed goes through the same builder; the parent fills in what is missing."""
    box = box_row({"key": "b9", "pipelineKey": "p9"}, {})
    own = box_newsfeed_row(dict(REAL_NEWSFEED_ENTRY), box)
    assert own == newsfeed_row(dict(REAL_NEWSFEED_ENTRY), "p9")  # the entry's own keys win
    bare = {k: v for k, v in REAL_NEWSFEED_ENTRY.items() if k not in ("boxKey", "pipelineKey")}
    row = box_newsfeed_row(bare, box)
    assert (row["boxKey"], row["pipelineKey"], row["stage_key"]) == ("b9", "p9", "5003")
    assert "boxKey" not in newsfeed_row(bare, "p9")  # the pipeline newsfeed invents no box


def test_task_assignees_one_row_per_person_whatever_the_shape() -> None:
    """Issue 11 #4: the bridge behind "tasks per assignee" (each task counted once per assignee)."""
    box = {"box_key": "b1", "pipelineKey": "p"}
    task = task_row({"key": "t1", "assignedTo": [
        {"userKey": "u1", "email": "Ada@X.io", "fullName": "Ada"},
        {"userKey": "u1", "email": "ada@x.io", "fullName": "Ada"},  # listed twice: one row
        {"email": "Bo@X.io", "displayName": "Bo"},
        {"fullName": "Cy"},
        "dee@x.io",
        {"avatarUrl": "nobody"},
    ]}, box)
    rows = task_assignee_rows(task)
    assert [(r["assignee_id"], r["user_key"], r["email"], r["name"]) for r in rows] == [
        ("u1", "u1", "Ada@X.io", "Ada"), ("bo@x.io", None, "Bo@X.io", "Bo"), ("Cy", None, None, "Cy"),
        ("dee@x.io", None, "dee@x.io", None)]
    assert {(r["task_key"], r["box_key"], r["pipeline_key"]) for r in rows} == {("t1", "b1", "p")}
    legacy = task_row({"key": "t2", "assignedTo": [], "assignedToSharingEntries": [{"userKey": "u9"}]}, box)
    assert [r["assignee_id"] for r in task_assignee_rows(legacy)] == ["u9"]
    assert task_assignee_rows(task_row({"key": "t3"}, box)) == []


def test_entity_key_is_one_rule() -> None:
    assert entity_key({"key": "a", "boxKey": "b"}, "boxKey") == "a"
    assert entity_key({"key": "", "boxKey": "b"}, "boxKey") == "b"
    assert entity_key({"key": None, "boxKey": 7}, "boxKey") == "7"
    for junk in ({}, {"key": None}, {"key": "  "}, {"key": True}, {"key": {"a": 1}}, None, "box", ["k"]):
        assert entity_key(junk, "boxKey") is None, junk


def test_field_options_parse_once_for_the_table_and_the_decoder() -> None:
    field = {"key": "1002", "dropdownSettings": {"items": [{"key": "9001", "name": "Web"}, {"key": 9005, "label": "L"},
                                                          {"name": "no key"}, "junk"]},
             "tagSettings": {"tags": [{"key": "9003", "tag": "hot"}, {"key": "9004"}]}}
    assert field_options(field) == [FieldOption("DROPDOWN", "9001", "Web"), FieldOption("DROPDOWN", "9005", "L"),
                                    FieldOption("DROPDOWN", None, "no key"), FieldOption("TAG", "9003", "hot"),
                                    FieldOption("TAG", "9004", None)]
    assert decoder_options(field) == {"9001": "Web", "9005": "L", "9003": "hot"}


def test_child_count_is_unknown_when_a_counter_is_missing() -> None:
    meetings = next(e for e in BOX_CHILDREN if e.table == "box_meetings")
    assert child_count({"meetingNotesCount": 2, "callLogCount": 1}, meetings.counters) == 3
    assert child_count({"meetingNotesCount": 0, "callLogCount": 0}, meetings.counters) == 0
    assert child_count({"meetingNotesCount": 0}, meetings.counters) is None
    assert child_count({"meetingNotesCount": "2", "callLogCount": 0}, meetings.counters) is None
    assert child_count({"meetingNotesCount": True, "callLogCount": 0}, meetings.counters) is None


def test_name_clashes_are_suffixed_the_same_whatever_the_key_order() -> None:
    """Issue 12 #9: names dlt would fold into one column keep every value, deterministically."""
    from streak_source.clashes import resolve_clashes

    forward = {"DealSize": 1, "deal_size": "two", "!!!": "bangs", "🔥": "fire", "deal_size_2": "taken"}
    backward = dict(reversed(list(forward.items())))
    for row in (forward, backward):
        assert resolve_clashes(row) == 2
        # the keeper keeps its own name (dlt makes "!!!" column x); the others get the first free suffix
        assert {k: row[k] for k in sorted(row)} == {
            "!!!": "bangs", "deal_size": "two", "deal_size_2": "taken", "deal_size_3": 1, "x_2": "fire"}
    assert {k: forward[k] for k in sorted(forward)} == {k: backward[k] for k in sorted(backward)}
    plain = {"box_key": "b", "name": "n"}
    assert resolve_clashes(plain) == 0 and plain == {"box_key": "b", "name": "n"}
