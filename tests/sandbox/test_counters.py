"""Box counters agree, for every box, with the children the child endpoints actually serve."""

from __future__ import annotations

from typing import Any

import pytest

from streak_source.sandbox import Sandbox

pytestmark = pytest.mark.timeout(120)


def test_counters_agree_with_children_for_every_box(
    crawl: dict[str, Any], shared_sandbox: Sandbox
) -> None:
    now = shared_sandbox.account.anchor_ms
    boxes = [box for listing in crawl["boxes"].values() for box in listing]
    assert len(boxes) == 300
    for box in boxes:
        key = box["key"]
        tasks, threads = crawl["tasks"][key], crawl["threads"][key]
        comments, meetings, files = (
            crawl["comments"][key],
            crawl["meetings"][key],
            crawl["files"][key],
        )
        done = [t for t in tasks if t["status"] == "DONE"]
        overdue = [
            t
            for t in tasks
            if t["status"] != "DONE" and t["dueDate"] is not None and t["dueDate"] < now
        ]
        assert box["taskTotal"] == len(tasks), key
        assert box["taskCompleteCount"] == len(done), key
        assert box["taskIncompleteCount"] == len(tasks) - len(done), key
        assert box["taskOverdueCount"] == len(overdue), key
        assert box["gmailThreadCount"] == len(threads), key
        assert box["commentCount"] == len(comments), key
        assert box["meetingNotesCount"] == sum(
            m["meetingType"] == "MEETING_NOTES" for m in meetings
        ), key
        assert box["callLogCount"] == sum(m["meetingType"] == "CALL_LOG" for m in meetings), key
        assert box["fileCount"] == len(files), key
        assert (
            box["followerCount"] == len(box["followerKeys"]) == len(box["followerSharingEntries"])
        ), key
        assert box["totalCallLogDuration"] == sum(
            m["duration"] for m in meetings if m["meetingType"] == "CALL_LOG"
        )
        assert set(box["taskAssigneeKeySet"]) == {
            a["userKey"] for t in tasks for a in t["assignedTo"]
        }
        if overdue:
            assert box["earliestOverdueTaskDueDate"] == min(t["dueDate"] for t in overdue)
        else:
            assert "earliestOverdueTaskDueDate" not in box
        if comments:
            assert box["lastCommentTimestamp"] == max(c["timestamp"] for c in comments)
        if threads:
            assert box["lastEmailUpdatedTimestamp"] == max(t["lastEmailTimestamp"] for t in threads)


def test_counters_are_not_trivially_zero(crawl: dict[str, Any]) -> None:
    boxes = [box for listing in crawl["boxes"].values() for box in listing]
    for counter in (
        "taskTotal",
        "taskOverdueCount",
        "taskCompleteCount",
        "gmailThreadCount",
        "commentCount",
        "meetingNotesCount",
        "callLogCount",
        "fileCount",
        "followerCount",
    ):
        assert any(box[counter] > 0 for box in boxes), counter
        assert any(box[counter] == 0 for box in boxes), counter


def test_stage_box_counts_match_listing_by_stage(
    shared_sandbox: Sandbox, api: Any, crawl: dict[str, Any]
) -> None:
    for pipeline in crawl["pipelines"]:
        for stage_key, stage in pipeline["stages"].items():
            response = api.get_path(f"v1/pipelines/{pipeline['key']}/boxes", stageKey=stage_key)
            assert response.status_code == 200
            listed = response.json()
            assert len(listed) == stage["boxCount"]
            assert all(box["stageKey"] == stage_key for box in listed)
