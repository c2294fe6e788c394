"""Every route serves the fields streak_api.md marks [H] for its object, with the right types."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from streak_source.sandbox import Sandbox

pytestmark = pytest.mark.timeout(120)

# Type names: str, int (not bool), number (int/float, not bool), bool, list, dict; "?": nullable.
USER = {
    "key": "str",
    "userKey": "str",
    "email": "str",
    "displayName": "str",
    "creationTimestamp": "int",
    "lastUpdatedTimestamp": "int",
    "lastSavedTimestamp": "int",
    "lastSeenTimestamp": "int?",
    "isOauthComplete": "bool",
    "firstOauthTimestamp": "int?",
    "googleProfileFullName": "str?",
    "googleProfilePhotoUrl": "str?",
    "timezoneId": "str?",
    "userType": "str",
    "wantsTaskDigestEmail": "bool",
}
TEAM = {
    "key": "str",
    "name": "str",
    "creationDate": "int",
    "creator": "str",
    "members": "list",
    "sharingRestrictedToTeam": "bool",
    "automaticallyApproveJoinRequests": "bool",
    "automaticallySendInvoiceEmails": "bool",
    "emailsToSendInvoiceTo": "list",
    "billingAdmin": "str?",
    "lastSavedTimestamp": "int",
    "contactOrgListPermissions": "dict",
    "contactSettings": "dict",
    "organizationSettings": "dict",
}
TEAM_MEMBER = {
    "userKey": "str",
    "role": "str",
    "inviteDate": "int",
    "inviteStatus": "str",
    "displayName": "str?",
    "email": "str?",
    "fullName": "str?",
    "givenName": "str?",
    "image": "str?",
    "userType": "str",
    "emailSharing": "str",
}
PIPELINE = {
    "key": "str",
    "pipelineKey": "str",
    "name": "str",
    "description": "str?",
    "creatorKey": "str",
    "teamKey": "str?",
    "fields": "list",
    "stages": "dict",
    "stageOrder": "list",
    "stageColorTheme": "str",
    "creationTimestamp": "int",
    "lastUpdatedTimestamp": "int",
    "lastSavedTimestamp": "int",
    "formulasLastUpdatedTimestamp": "int?",
    "aclEntries": "list",
    "boxCount": "int",
}
STAGE = {
    "key": "str",
    "name": "str",
    "color": "dict",
    "isColorFromTheme": "bool",
    "boxCount": "int",
}
FIELD = {
    "key": "str",
    "name": "str",
    "type": "str",
    "lastUpdatedTimestamp": "int?",
    "lastDefaultValueUpdatedTimestamp": "int?",
    "dropdownSettings": "dict?",
    "tagSettings": "dict?",
}
SHARING_ENTRY = {
    "displayName": "str",
    "fullName": "str",
    "email": "str",
    "image": "str",
    "userKey": "str",
}
BOX = {
    "key": "str",
    "boxKey": "str",
    "pipelineKey": "str",
    "creatorKey": "str",
    "name": "str",
    "notes": "str",
    "stageKey": "str",
    "fields": "dict",
    "creationTimestamp": "int",
    "lastUpdatedTimestamp": "int",
    "lastSavedTimestamp": "int",
    "lastStageChangeTimestamp": "int",
    "freshness": "number",
    "assignedToSharingEntries": "list",
    "creatorSharingEntry": "dict",
    "followerKeys": "list",
    "followerSharingEntries": "list",
    "followerCount": "int",
    "linkedBoxKeys": "list",
    "emailAddresses": "list",
    "emailAddressesAutoExtracted": "list",
    "emailAddressesBlacklist": "list",
    "gmailThreadCount": "int",
    "totalNumberOfEmails": "int",
    "totalNumberOfSentEmails": "int",
    "totalNumberOfReceivedEmails": "int",
    "totalNumberOfSentEmailsViews": "int",
    "totalNumberOfLastSentEmailViews": "int",
    "totalNumberOfLastSentEmailLinksClicks": "int",
    "taskTotal": "int",
    "taskCompleteCount": "int",
    "taskIncompleteCount": "int",
    "taskOverdueCount": "int",
    "taskAssigneeKeySet": "list",
    "incompleteTaskAssigneeKeySet": "list",
    "overdueTaskAssigneeKeySet": "list",
    "taskAssigneeSharingEntrySet": "list",
    "incompleteTaskAssigneeSharingEntrySet": "list",
    "overdueTaskAssigneeSharingEntrySet": "list",
    "commentCount": "int",
    "callLogCount": "int",
    "meetingNotesCount": "int",
    "totalCallLogDuration": "int",
    "totalMeetingNotesDuration": "int",
    "fileCount": "int",
}
OPTIONAL_BOX_FIELDS = {
    "firstEmailTimestamp": "int",
    "lastEmailUpdatedTimestamp": "int",
    "firstEmailReceivedTimestamp": "int",
    "lastEmailReceivedTimestamp": "int",
    "firstEmailSentTimestamp": "int",
    "lastEmailSentTimestamp": "int",
    "firstEmailFrom": "str",
    "lastEmailFrom": "str",
    "mostRecentSentEmailsViewsTimestamp": "int",
    "mostRecentLastSentEmailViewsTimestamp": "int",
    "lastTouchpointTimestamp": "int",
    "lastTouchpointType": "str",
    "taskPercentageComplete": "number",
    "soonestTaskDueDate": "int",
    "earliestOverdueTaskDueDate": "int",
    "lastCommentTimestamp": "int",
    "firstCallLogTimestamp": "int",
    "mostRecentCallLogTimestamp": "int",
    "firstMeetingNotesTimestamp": "int",
    "mostRecentMeetingNotesTimestamp": "int",
    "contacts": "list",
    "organizations": "list",
}
USER_BRIEF = {
    "userKey": "str",
    "email": "str",
    "displayName": "str",
    "fullName": "str",
    "givenName": "str",
    "avatarUrl": "str",
}
TASK = {
    "key": "str",
    "boxKey": "str",
    "pipelineKey": "str",
    "creatorKey": "str",
    "creator": "dict",
    "assignedTo": "list",
    "assignedToSharingEntries": "list",
    "creationDate": "int",
    "lastSavedTimestamp": "int",
    "lastStatusChangeDate": "int",
    "dueDate": "int?",
    "text": "str",
    "actions": "list?",
    "status": "str",
    "reminderStatus": "str",
    "meetingKey": "str?",
}
THREAD = {
    "key": "str",
    "boxKey": "str",
    "pipelineKey": "str",
    "creatorKey": "str",
    "creationTimestamp": "int",
    "lastUpdatedTimestamp": "int",
    "lastEmailTimestamp": "int",
    "subject": "str",
    "names": "list",
    "emailAddresses": "list",
    "threadGmailId": "str",
    "gmailThreadKey": "str",
    "fileKeys": "list",
    "files": "list",
}
COMMENT = {
    "key": "str",
    "commentKey": "str",
    "boxKey": "str",
    "pipelineKey": "str",
    "creatorKey": "str",
    "newsfeedEntryKey": "str?",
    "timestamp": "int?",
    "message": "str?",
    "mentions": "list?",
    "parent": "str?",
    "children": "list?",
    "reactionSummary": "list",
    "lastSavedTimestamp": "int?",
}
MEETING = {
    "key": "str",
    "boxKey": "str",
    "pipelineKey": "str",
    "creatorKey": "str",
    "isDraft": "bool",
    "taskKeys": "list",
    "creationDate": "int",
    "meetingType": "str",
    "startTimestamp": "int",
    "duration": "int",
    "notes": "str",
    "lastSavedTimestamp": "int",
}
FILE = {
    "key": "str",
    "fileKey": "str",
    "boxKey": "str",
    "fileOwner": "str",
    "size": "int",
    "mimeType": "str",
    "fileName": "str",
    "mainFileName": "str",
    "fileType": "str",
}
SNIPPET = {
    "key": "str",
    "userKey": "str",
    "creationDate": "int",
    "partOfPipeline": "bool",
    "snippetName": "str",
    "snippetText": "str",
    "snippetType": "str",
}
CONTACT = {
    "key": "str",
    "teamKey": "str",
    "givenName": "str?",
    "familyName": "str?",
    "other": "str?",
    "title": "str?",
    "emailAddresses": "list",
    "phoneNumbers": "list",
    "addresses": "list",
    "photoUrl": "str?",
    "lastSavedUserKey": "str?",
    "creatorKey": "str?",
    "creationDate": "int",
    "versionTimestamp": "int",
    "lastSavedTimestamp": "int",
    "lastEnrichmentTimestamp": "int?",
    "contactLinks": "list",
    "orgLinks": "list",
    "fields": "dict",
}
ORGANIZATION = {
    "key": "str",
    "teamKey": "str",
    "name": "str",
    "other": "str?",
    "domains": "list",
    "normalizedDomains": "list",
    "industry": "str?",
    "phoneNumbers": "list",
    "addresses": "list",
    "employeeCount": "str?",
    "logoURL": "str?",
    "lastSavedUserKey": "str?",
    "creatorKey": "str?",
    "creationDate": "int",
    "versionTimestamp": "int",
    "lastSavedTimestamp": "int",
    "lastEnrichmentTimestamp": "int?",
    "contactLinks": "list",
    "orgLinks": "list",
    "fields": "dict",
}
NEWSFEED_ENTRY = {
    "newsfeedItemKey": "str",
    "pipelineKey": "str",
    "boxKey": "str",
    "creatorKey": "str",
    "timestamp": "int",
    "lastSavedTimestamp": "int",
    "newsfeedEntryScope": "str",
    "newsfeedEntryOperation": "str",
    "newsfeedEntrySpecific": "str",
    "specificVariables": "dict",
    "storyTextBox": "str",
    "storyTextPipeline": "str",
    "storyTextGlobal": "str",
    "collapsedEntries": "list",
    "moved": "bool",
}
"""Streak's real newsfeed entry (streak_api.md 6.13): ``newsfeedItemKey``, never
``newsfeedEntryKey``; specifics and variable names in UPPER_SNAKE."""
NEWSFEED_SPECIFICS = ("NEW_BOX", "EDIT_STAGE", "ADD_TASK", "ADD_MEETING")


def matches(value: Any, type_name: str) -> bool:
    if type_name.endswith("?"):
        return value is None or matches(value, type_name[:-1])
    if type_name == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if type_name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, {"str": str, "bool": bool, "list": list, "dict": dict}[type_name])


def assert_shape(obj: dict[str, Any], schema: dict[str, str], where: str) -> None:
    missing = [name for name in schema if name not in obj]
    assert not missing, f"{where}: missing {missing}"
    wrong = {
        name: obj[name] for name, type_name in schema.items() if not matches(obj[name], type_name)
    }
    assert not wrong, f"{where}: wrong types {wrong}"


def walk(value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield key, item
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)


def test_users_and_teams(crawl: dict[str, Any]) -> None:
    assert_shape(crawl["me"], USER, "users/me")
    assert crawl["me"]["key"] == crawl["me"]["userKey"]
    for user in crawl["team_users"]:
        assert_shape(user, USER, "team user")
    for team in crawl["teams"] + [crawl["team"]]:
        assert_shape(team, TEAM, "team")
        for member in team["members"]:
            assert_shape(member, TEAM_MEMBER, "team member")
        for settings_name in ("contactSettings", "organizationSettings"):
            for field in team[settings_name]["fields"].values():
                assert_shape(field, {"name": "str", "key": "str", "type": "str"}, settings_name)
    assert crawl["team"] == crawl["teams"][0]
    assert crawl["me"]["key"] in {u["key"] for u in crawl["team_users"]}


def test_pipelines_stages_fields(crawl: dict[str, Any]) -> None:
    for pipeline in crawl["pipelines"]:
        assert_shape(pipeline, PIPELINE, "pipeline")
        assert pipeline["key"] == pipeline["pipelineKey"]
        assert crawl["pipeline"][pipeline["key"]] == pipeline
        stages = crawl["stages"][pipeline["key"]]
        assert stages == pipeline["stages"], "the stages route serves the embedded map"
        assert set(pipeline["stageOrder"]) == set(stages)
        for stage_key, stage in stages.items():
            assert_shape(stage, STAGE, "stage")
            assert stage["key"] == stage_key
            assert_shape(
                stage["color"], {"foregroundColor": "str", "backgroundColor": "str"}, "stage color"
            )
        assert crawl["fields"][pipeline["key"]] == pipeline["fields"]
        for field in pipeline["fields"]:
            assert_shape(field, FIELD, "field")
            if field["type"] == "DROPDOWN":
                assert all(set(i) == {"key", "name"} for i in field["dropdownSettings"]["items"])
            if field["type"] == "TAG":
                assert all(set(t) == {"key", "tag"} for t in field["tagSettings"]["tags"])
            if field["type"] == "FORMULA":
                assert isinstance(field["defaultValue"], str)
        assert pipeline["boxCount"] == len(crawl["boxes"][pipeline["key"]])
        assert sum(s["boxCount"] for s in stages.values()) == pipeline["boxCount"]


def test_boxes(crawl: dict[str, Any]) -> None:
    boxes = [box for listing in crawl["boxes"].values() for box in listing]
    assert boxes
    for box in boxes:
        assert_shape(box, BOX, "box")
        assert box["key"] == box["boxKey"]
        for entry in (
            box["assignedToSharingEntries"]
            + box["followerSharingEntries"]
            + [box["creatorSharingEntry"]]
        ):
            assert_shape(entry, SHARING_ENTRY, "sharing entry")
        for name, type_name in OPTIONAL_BOX_FIELDS.items():
            if name in box:
                assert matches(box[name], type_name) and box[name] != [], (
                    f"{name} present but empty/null"
                )
        for link in box.get("contacts", []) + box.get("organizations", []):
            assert_shape(
                link, {"key": "str", "isStarred": "bool", "isAutoboxed": "bool"}, "box link"
            )
    for box_key, single in crawl["box"].items():
        assert single == next(b for b in boxes if b["key"] == box_key)
    # absent, not null: boxes without threads/comments/links do not carry the keys at all
    quiet = [b for b in boxes if b["gmailThreadCount"] == 0]
    assert quiet and all("firstEmailTimestamp" not in b for b in quiet)
    assert any("lastCommentTimestamp" not in b for b in boxes if b["commentCount"] == 0)
    assert any("contacts" not in b for b in boxes) and any("contacts" in b for b in boxes)


def test_box_field_values_use_streaks_encodings(crawl: dict[str, Any]) -> None:
    contact_keys = {c["key"] for c in crawl["contacts"]}
    organization_keys = {o["key"] for o in crawl["organizations"]}
    seen_types: set[str] = set()
    for pipeline in crawl["pipelines"]:
        fields = {f["key"]: f for f in pipeline["fields"]}
        for box in crawl["boxes"][pipeline["key"]]:
            for field_key, value in box["fields"].items():
                field = fields[field_key]
                if value in (None, "", []):
                    continue
                kind = field["type"]
                seen_types.add(kind)
                if kind == "TEXT_INPUT":
                    assert isinstance(value, (str, int, float)) and not isinstance(value, bool)
                elif kind == "DROPDOWN":
                    assert isinstance(value, str) and value.isdigit()
                elif kind == "CHECKBOX":
                    assert isinstance(value, bool)
                elif kind == "DATE":
                    assert matches(value, "int") and value > 10**12
                elif kind == "PERSON":
                    for person in value:
                        assert_shape(
                            person,
                            {
                                "userKey": "str",
                                "email": "str",
                                "fullName": "str",
                                "displayName": "str",
                            },
                            "PERSON",
                        )
                elif kind == "FORMULA":
                    assert matches(value, "number")
                elif kind == "TAG":
                    tag_keys = {t["key"] for t in field["tagSettings"]["tags"]}
                    assert isinstance(value, list) and set(value) <= tag_keys
                elif kind == "TEAM_CONTACT":
                    assert set(value) <= contact_keys
                elif kind == "TEAM_ORGANIZATION":
                    assert set(value) <= organization_keys
    assert len(seen_types) == 9


def test_box_children(crawl: dict[str, Any]) -> None:
    counts = {kind: 0 for kind in ("tasks", "threads", "comments", "meetings", "files")}
    for kind, schema in (
        ("tasks", TASK),
        ("threads", THREAD),
        ("comments", COMMENT),
        ("meetings", MEETING),
        ("files", FILE),
    ):
        for box_key, items in crawl[kind].items():
            for item in items:
                counts[kind] += 1
                assert_shape(item, schema, kind)
                assert item["boxKey"] == box_key
                if kind == "tasks":
                    assert_shape(item["creator"], USER_BRIEF, "task creator")
                    for brief in item["assignedTo"]:
                        assert_shape(brief, USER_BRIEF, "task assignee")
                    for entry in item["assignedToSharingEntries"]:
                        assert_shape(entry, SHARING_ENTRY, "task assignee entry")
                    assert item["status"] in ("DONE", "NOT_DONE")
                if kind == "meetings":
                    assert item["meetingType"] in ("MEETING_NOTES", "CALL_LOG")
                if kind == "files":
                    assert (
                        item["fileType"] in ("GMAIL_API", "DRIVE")
                        and item["key"] == item["fileKey"]
                    )
                if kind == "comments":
                    assert item["key"] == item["commentKey"]
                if kind == "threads":
                    for file in item["files"]:
                        assert_shape(file, FILE, "thread file")
    assert all(counts.values()), counts


def test_snippets_contacts_organizations_newsfeed(crawl: dict[str, Any]) -> None:
    for snippet in crawl["snippets"]:
        assert_shape(snippet, SNIPPET, "snippet")
        assert snippet["snippetType"] in ("TEXT", "HTML")
    for contact in crawl["contacts"]:
        assert_shape(contact, CONTACT, "contact")
    for organization in crawl["organizations"]:
        assert_shape(organization, ORGANIZATION, "organization")
    specifics: set[str] = set()
    for pipeline_key, entries in crawl["newsfeed"].items():
        assert len(entries) <= 50
        assert (len(entries) > 0) == bool(crawl["boxes"][pipeline_key])
        for entry in entries:
            assert_shape(entry, NEWSFEED_ENTRY, "newsfeed entry")
            assert "newsfeedEntryKey" not in entry and "key" not in entry
            assert entry["pipelineKey"] == pipeline_key
            assert entry["newsfeedEntryScope"] == "BOX"
            assert entry["newsfeedEntryOperation"] in ("CREATE", "UPDATE", "DELETE")
            assert entry["newsfeedEntrySpecific"] in NEWSFEED_SPECIFICS
            variables = entry["specificVariables"]
            assert {"BOX_NAME", "PIPELINE_NAME", "STORY_AUTHOR_DISPLAY_NAME"} <= set(variables)
            assert all(name == name.upper() for name in variables), variables
            specifics.add(entry["newsfeedEntrySpecific"])
    assert {"NEW_BOX", "EDIT_STAGE"} <= specifics


def test_edit_stage_names_the_stage_entered(crawl: dict[str, Any]) -> None:
    """The newest EDIT_STAGE of a box names the stage the box is in now (STAGE_KEY = entered)."""
    boxes = {b["key"]: b for listed in crawl["boxes"].values() for b in listed}
    checked = 0
    for entries in crawl["newsfeed"].values():
        seen: set[str] = set()
        for entry in entries:  # newest first
            if entry["newsfeedEntrySpecific"] == "EDIT_STAGE" and entry["boxKey"] not in seen:
                seen.add(entry["boxKey"])
                assert entry["specificVariables"]["STAGE_KEY"] == boxes[entry["boxKey"]]["stageKey"]
                checked += 1
    assert checked > 0


def test_every_timestamp_is_epoch_milliseconds(crawl: dict[str, Any]) -> None:
    checked = 0
    for name, value in walk(crawl):
        if name.endswith(("Timestamp", "Date")) or name in ("timestamp", "inviteDate"):
            assert value is None or (matches(value, "int") and 10**12 < value < 10**13), (
                name,
                value,
            )
            checked += 1
    assert checked > 1000


def test_responses_are_json(shared_sandbox: Sandbox, api: Any) -> None:
    for path in ("v1/users/me", "v1/pipelines", "v2/users/me/teams", "v1/snippets"):
        response = api.get_path(path)
        assert response.headers["content-type"] == "application/json"
