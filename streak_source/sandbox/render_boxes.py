"""Render boxes and their children the way Streak's API does (conventions: see ``render.py``).

Optional box timestamps are ABSENT (not null) when there is nothing to report; box counters are
computed here from the children the box holds, so they always agree with what the child endpoints
serve.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .model import Account, Box, Comment, File, Meeting, Task, Thread
from .render import (
    JsonDict,
    apply_patch,
    render_newsfeed_entry,
    sharing_entry,
    user_brief,
)

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


def _put_if(target: JsonDict, name: str, value: Any) -> None:
    """Optional box fields are absent, not null, when there is nothing to report."""
    if value is not None:
        target[name] = value


def _sorted_keys(keys: Any) -> list[str]:
    return sorted(set(keys))


def render_box(box: Box, account: Account) -> JsonDict:
    users = account.users
    now = account.anchor_ms
    tasks = box.tasks
    done = [t for t in tasks if t.done]
    open_tasks = [t for t in tasks if not t.done]
    overdue = [t for t in open_tasks if t.due_ms is not None and t.due_ms < now]
    upcoming = [t.due_ms for t in open_tasks if t.due_ms is not None and t.due_ms >= now]
    assignees = _sorted_keys(k for t in tasks for k in t.assignee_keys)
    open_assignees = _sorted_keys(k for t in open_tasks for k in t.assignee_keys)
    overdue_assignees = _sorted_keys(k for t in overdue for k in t.assignee_keys)

    emails = sorted((e for t in box.threads for e in t.emails), key=lambda e: e.timestamp)
    sent = [e for e in emails if e.sent]
    received = [e for e in emails if not e.sent]
    views = sum(t.views for t in box.threads)
    last_sent_thread = max(
        (t for t in box.threads if any(e.sent for e in t.emails)),
        key=lambda t: max(e.timestamp for e in t.emails if e.sent),
        default=None,
    )
    meeting_notes = [m for m in box.meetings if m.meeting_type == "MEETING_NOTES"]
    call_logs = [m for m in box.meetings if m.meeting_type == "CALL_LOG"]
    touchpoints = [(e.timestamp, "EMAIL") for e in emails[-1:]]
    touchpoints += [(m.start_ms, m.meeting_type) for m in box.meetings]

    rendered: JsonDict = {
        "key": box.key,
        "boxKey": box.key,
        "pipelineKey": box.pipeline_key,
        "creatorKey": box.creator_key,
        "name": box.name,
        "notes": box.notes,
        "stageKey": box.stage_key,
        "fields": box.fields,
        "creationTimestamp": box.creation_ms,
        "lastUpdatedTimestamp": box.last_updated_ms,
        "lastSavedTimestamp": box.last_updated_ms,
        "lastStageChangeTimestamp": box.stage_change_ms,
        "creationSourceType": "HUMAN",
        "freshness": round(1.0 / (1.0 + (now - box.last_updated_ms) / (30 * DAY_MS)), 4),
        "assignedToSharingEntries": [sharing_entry(users[k]) for k in box.assignee_keys],
        "creatorSharingEntry": sharing_entry(users[box.creator_key]),
        "followerKeys": box.follower_keys,
        "followerSharingEntries": [sharing_entry(users[k]) for k in box.follower_keys],
        "followerCount": len(box.follower_keys),
        "linkedBoxKeys": box.linked_box_keys,
    }
    if box.contact_links:
        rendered["contacts"] = [
            {"key": c.key, "isStarred": c.starred, "isAutoboxed": c.autoboxed}
            for c in box.contact_links
        ]
    if box.organization_links:
        rendered["organizations"] = [
            {"key": o.key, "isStarred": o.starred, "isAutoboxed": o.autoboxed}
            for o in box.organization_links
        ]
    rendered |= {
        "emailAddresses": box.email_addresses,
        "emailAddressesAutoExtracted": box.email_addresses,
        "emailAddressesBlacklist": [],
        "gmailThreadCount": len(box.threads),
        "totalNumberOfEmails": len(emails),
        "totalNumberOfSentEmails": len(sent),
        "totalNumberOfReceivedEmails": len(received),
        "totalNumberOfSentEmailsViews": views,
        "totalNumberOfLastSentEmailViews": last_sent_thread.views if last_sent_thread else 0,
        "totalNumberOfLastSentEmailLinksClicks": (last_sent_thread.views // 2)
        if last_sent_thread
        else 0,
    }
    if emails:
        rendered["firstEmailTimestamp"] = emails[0].timestamp
        rendered["lastEmailUpdatedTimestamp"] = emails[-1].timestamp
        rendered["firstEmailFrom"] = emails[0].sender
        rendered["lastEmailFrom"] = emails[-1].sender
    if received:
        rendered["firstEmailReceivedTimestamp"] = received[0].timestamp
        rendered["lastEmailReceivedTimestamp"] = received[-1].timestamp
    if sent:
        rendered["firstEmailSentTimestamp"] = sent[0].timestamp
        rendered["lastEmailSentTimestamp"] = sent[-1].timestamp
    if views and sent:
        seen = min(now - 1, sent[-1].timestamp + HOUR_MS)
        rendered["mostRecentSentEmailsViewsTimestamp"] = seen
        rendered["mostRecentLastSentEmailViewsTimestamp"] = seen
    if touchpoints:
        moment, kind = max(touchpoints)
        rendered["lastTouchpointTimestamp"] = moment
        rendered["lastTouchpointType"] = kind
    rendered |= {
        "taskTotal": len(tasks),
        "taskCompleteCount": len(done),
        "taskIncompleteCount": len(open_tasks),
        "taskOverdueCount": len(overdue),
    }
    if tasks:
        rendered["taskPercentageComplete"] = round(100.0 * len(done) / len(tasks), 2)
    _put_if(rendered, "soonestTaskDueDate", min(upcoming) if upcoming else None)
    _put_if(
        rendered,
        "earliestOverdueTaskDueDate",
        min(t.due_ms for t in overdue if t.due_ms is not None) if overdue else None,
    )
    rendered |= {
        "taskAssigneeKeySet": assignees,
        "incompleteTaskAssigneeKeySet": open_assignees,
        "overdueTaskAssigneeKeySet": overdue_assignees,
        "taskAssigneeSharingEntrySet": [sharing_entry(users[k]) for k in assignees],
        "incompleteTaskAssigneeSharingEntrySet": [sharing_entry(users[k]) for k in open_assignees],
        "overdueTaskAssigneeSharingEntrySet": [sharing_entry(users[k]) for k in overdue_assignees],
        "commentCount": len(box.comments),
    }
    _put_if(
        rendered, "lastCommentTimestamp", max((c.timestamp for c in box.comments), default=None)
    )
    rendered |= {
        "callLogCount": len(call_logs),
        "meetingNotesCount": len(meeting_notes),
        "totalCallLogDuration": sum(m.duration_ms for m in call_logs),
        "totalMeetingNotesDuration": sum(m.duration_ms for m in meeting_notes),
    }
    _put_if(rendered, "firstCallLogTimestamp", min((m.start_ms for m in call_logs), default=None))
    _put_if(
        rendered, "mostRecentCallLogTimestamp", max((m.start_ms for m in call_logs), default=None)
    )
    _put_if(
        rendered,
        "firstMeetingNotesTimestamp",
        min((m.start_ms for m in meeting_notes), default=None),
    )
    _put_if(
        rendered,
        "mostRecentMeetingNotesTimestamp",
        max((m.start_ms for m in meeting_notes), default=None),
    )
    rendered["fileCount"] = len(box.files)
    return apply_patch(rendered, box.patch)


# ---------------------------------------------------------------------------- box children


def render_task(task: Task, box: Box, account: Account) -> JsonDict:
    users = account.users
    creator = users[task.creator_key]
    assignees = [users[k] for k in task.assignee_keys]
    rendered: JsonDict = {
        "key": task.key,
        "boxKey": box.key,
        "pipelineKey": box.pipeline_key,
        "creatorKey": task.creator_key,
        "creator": user_brief(creator),
        "assignedTo": [user_brief(u) for u in assignees],
        "creatorSharingEntry": sharing_entry(creator),
        "assignedToSharingEntries": [sharing_entry(u) for u in assignees],
        "creationDate": task.creation_ms,
        "lastSavedTimestamp": task.status_change_ms,
        "lastStatusChangeDate": task.status_change_ms,
        "dueDate": task.due_ms,
        "text": task.text,
        "actions": None,
        "status": "DONE" if task.done else "NOT_DONE",
        "reminderStatus": task.reminder_status,
        "meetingKey": None,
        "isDraft": False,
        "sortOrder": f"{task.due_ms or task.creation_ms:015d}{task.creation_ms:015d}",
    }
    return apply_patch(rendered, task.patch)


def render_file(file: File, box: Box) -> JsonDict:
    return {
        "key": file.key,
        "fileKey": file.key,
        "boxKey": box.key,
        "pipelineKey": box.pipeline_key,
        "fileOwner": file.owner_key,
        "size": file.size,
        "mimeType": file.mime_type,
        "fileName": file.file_name,
        "mainFileName": file.main_file_name,
        "fileType": file.file_type,
    }


def render_thread(thread: Thread, box: Box) -> JsonDict:
    files_by_key = {f.key: f for f in box.files if f.thread_key == thread.key}
    rendered: JsonDict = {
        "key": thread.key,
        "boxKey": box.key,
        "pipelineKey": box.pipeline_key,
        "creatorKey": thread.creator_key,
        "creationTimestamp": thread.emails[0].timestamp,
        "lastUpdatedTimestamp": thread.emails[-1].timestamp,
        "lastEmailTimestamp": thread.emails[-1].timestamp,
        "subject": thread.subject,
        "names": thread.names,
        "emailAddresses": thread.email_addresses,
        "threadGmailId": thread.gmail_id,
        "gmailThreadKey": thread.gmail_thread_key,
        "fileKeys": thread.file_keys,
        "files": [render_file(files_by_key[k], box) for k in thread.file_keys],
    }
    return apply_patch(rendered, thread.patch)


def render_comment(comment: Comment, box: Box, account: Account) -> JsonDict:
    return {
        "key": comment.key,
        "commentKey": comment.key,
        "boxKey": box.key,
        "pipelineKey": box.pipeline_key,
        "creatorKey": comment.creator_key,
        "newsfeedEntryKey": None,
        "timestamp": comment.timestamp,
        "message": comment.message,
        "mentions": [
            {"userKey": m.user_key, "offset": m.offset, "length": m.length}
            for m in comment.mentions
        ]
        or None,
        "parent": comment.parent_key,
        "children": comment.child_keys or None,
        "reactionSummary": [
            {
                "emoji": r.emoji,
                "count": len(r.user_keys),
                "users": [user_brief(account.users[k]) for k in r.user_keys],
            }
            for r in comment.reactions
        ],
        "lastSavedTimestamp": comment.timestamp,
    }


def render_meeting(meeting: Meeting, box: Box) -> JsonDict:
    return {
        "key": meeting.key,
        "boxKey": box.key,
        "pipelineKey": box.pipeline_key,
        "creatorKey": meeting.creator_key,
        "isDraft": False,
        "taskKeys": [],
        "creationDate": meeting.creation_ms,
        "meetingType": meeting.meeting_type,
        "startTimestamp": meeting.start_ms,
        "duration": meeting.duration_ms,
        "notes": meeting.notes,
        "lastSavedTimestamp": meeting.creation_ms,
    }


# ---------------------------------------------------------------------------- other box views


def render_box_field_values(box: Box, account: Account) -> list[JsonDict]:
    """``GET /v1/boxes/{k}/fields``: ``{key, value}`` per field the box holds, in the pipeline's
    field order (keys the pipeline does not define, if any, last)."""
    pipeline = account.pipelines_by_key[box.pipeline_key]
    order = [f.key for f in pipeline.fields if f.key in box.fields]
    order += [k for k in box.fields if k not in order]
    return [{"key": key, "value": box.fields[key]} for key in order]


def _iso(ms: int) -> str:
    seconds, millis = divmod(ms, 1000)
    moment = datetime.fromtimestamp(seconds, UTC).replace(microsecond=millis * 1000)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def render_box_markdown(box: Box, account: Account) -> str:
    """``GET /v1/boxes/{k}/md``: SPEC says the structure is not stable; a plain overview with
    ISO-8601 timestamps (the one thing SPEC states)."""
    pipeline = account.pipelines_by_key[box.pipeline_key]
    stages = {s.key: s.name for s in pipeline.stages}
    lines = [
        f"# {box.name}",
        "",
        f"- Pipeline: {pipeline.name}",
        f"- Stage: {stages.get(box.stage_key or '', '')}",
        f"- Created: {_iso(box.creation_ms)}",
        f"- Last updated: {_iso(box.last_updated_ms)}",
        "",
        "## Notes",
        "",
        box.notes,
        "",
        "## Tasks",
        "",
        *(f"- [{'x' if t.done else ' '}] {t.text}" for t in box.tasks),
        "",
        "## Timeline",
        "",
        *(f"- {_iso(ms)} {kind}" for ms, kind, _ in timeline_items(box, account)),
    ]
    return "\n".join(lines) + "\n"


def timeline_items(box: Box, account: Account) -> list[tuple[int, str, JsonDict]]:
    """(timestamp, type, entry) of a box's timeline, newest first (ties by type, then key).

    The reference does not document entry shapes: each entry is the entity as its own route
    serves it, plus ``type`` (the filter name it answers to) and ``timestamp``.
    """
    items: list[tuple[int, str, JsonDict]] = []
    for thread in box.threads:
        items.append((thread.emails[-1].timestamp, "EMAILS", render_thread(thread, box)))
    for comment in box.comments:
        items.append((comment.timestamp, "COMMENTS", render_comment(comment, box, account)))
    for meeting in box.meetings:
        kind = "CALL_LOGS" if meeting.meeting_type == "CALL_LOG" else "MEETING_NOTES"
        items.append((meeting.start_ms, kind, render_meeting(meeting, box)))
    for file in box.files:
        items.append((file.creation_ms, "FILES", render_file(file, box)))
    pipeline = account.pipelines_by_key[box.pipeline_key]
    for entry in pipeline.events:
        if entry.box_key == box.key and entry.specific in ("NEW_BOX", "EDIT_STAGE"):
            items.append((entry.timestamp, "NEWSFEED_BOX_CREATION_MOVE", render_newsfeed_entry(entry)))
    items.sort(key=lambda item: (item[0], item[1], str(item[2].get("key", ""))), reverse=True)
    return [(ms, kind, {"type": kind, "timestamp": ms, **entry}) for ms, kind, entry in items]
