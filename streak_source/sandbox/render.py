"""Render the account the way Streak's API does (streak_api.md sections 6.x): JSON-ready dicts.

Pure functions of the account, so the same account always renders to the same bytes.
Conventions followed throughout: every timestamp is an integer of epoch milliseconds; entities
carry ``key`` plus the alias real payloads have (``userKey``, ``pipelineKey``, ``boxKey``,
``commentKey``, ``fileKey``); v2 objects (tasks, meetings) carry ``key`` plus
``boxKey``/``pipelineKey``; optional box timestamps are ABSENT (not null) when there is nothing
to report; box counters are computed here from the children the box holds, so they always agree
with what the child endpoints serve.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from .model import (
    Account,
    Box,
    Comment,
    Contact,
    File,
    Meeting,
    NewsfeedEntry,
    Organization,
    Pipeline,
    PipelineField,
    Snippet,
    Stage,
    Task,
    Team,
    TeamField,
    Thread,
    User,
)

JsonDict = dict[str, Any]
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


# ---------------------------------------------------------------------------- people


def sharing_entry(user: User) -> JsonDict:
    """Box-style SharingEntry (assignees, followers, creator)."""
    return {
        "displayName": user.display_name,
        "fullName": user.full_name,
        "email": user.email,
        "image": user.image,
        "userKey": user.key,
    }


def user_brief(user: User) -> JsonDict:
    """SPEC UserBrief (task creator / assignees, reactions)."""
    return {
        "userKey": user.key,
        "email": user.email,
        "displayName": user.display_name,
        "fullName": user.full_name,
        "givenName": user.given_name,
        "avatarUrl": user.image,
    }


def render_user(user: User) -> JsonDict:
    last_saved = max(user.creation_ms, user.last_seen_ms or 0)
    human = user.user_type == "HUMAN"
    return {
        "key": user.key,
        "userKey": user.key,
        "email": user.email,
        "lowercaseEmail": user.email.lower(),
        "displayName": user.display_name,
        "creationTimestamp": user.creation_ms,
        "lastUpdatedTimestamp": last_saved,
        "lastSavedTimestamp": last_saved,
        "lastSeenTimestamp": user.last_seen_ms,
        "isOauthComplete": human,
        "firstOauthTimestamp": user.creation_ms if human else None,
        "googleProfileFullName": user.full_name if human else None,
        "googleProfileFirstName": user.given_name if human else None,
        "googleProfileLastName": user.family_name if human else None,
        "googleProfilePhotoUrl": user.image or None,
        "timezoneId": user.timezone_id,
        "userType": user.user_type,
        "wantsTaskDigestEmail": human,
    }


# ---------------------------------------------------------------------------- teams


def _team_field(team_field: TeamField) -> JsonDict:
    rendered: JsonDict = {
        "name": team_field.name,
        "key": team_field.key,
        "type": team_field.type,
        "lastUpdatedTimestamp": team_field.updated_ms,
    }
    if team_field.type == "DROPDOWN":
        rendered["dropdownSettings"] = {
            "items": [{"key": o.key, "name": o.label} for o in team_field.options]
        }
    return rendered


def render_team(team: Team) -> JsonDict:
    return {
        "key": team.key,
        "name": team.name,
        "creationDate": team.creation_ms,
        "creator": team.creator_key,
        "members": [
            {
                "userKey": m.user.key,
                "role": m.role,
                "inviteDate": m.invite_ms,
                "inviteStatus": m.invite_status,
                "displayName": m.user.display_name,
                "email": m.user.email,
                "fullName": m.user.full_name,
                "givenName": m.user.given_name,
                "image": m.user.image or None,
                "userType": m.user.user_type,
                "emailSharing": "Existence",
            }
            for m in team.members
        ],
        "sharingRestrictedToTeam": False,
        "automaticallyApproveJoinRequests": False,
        "automaticallySendInvoiceEmails": False,
        "emailsToSendInvoiceTo": [],
        "billingAdmin": team.creator_key,
        "lastSavedTimestamp": team.last_saved_ms,
        "contactOrgListPermissions": {},
        "contactSettings": {"fields": {f.key: _team_field(f) for f in team.contact_fields}},
        "organizationSettings": {
            "fields": {f.key: _team_field(f) for f in team.organization_fields}
        },
    }


def render_contact(contact: Contact) -> JsonDict:
    return {
        "key": contact.key,
        "teamKey": contact.team_key,
        "givenName": contact.given_name,
        "familyName": contact.family_name,
        "other": contact.other,
        "title": contact.title,
        "emailAddresses": contact.email_addresses,
        "phoneNumbers": contact.phone_numbers,
        "addresses": contact.addresses,
        "twitterHandle": contact.twitter_handle,
        "linkedinHandle": contact.linkedin_handle,
        "photoUrl": contact.photo_url,
        "lastSavedUserKey": contact.creator_key,
        "creatorKey": contact.creator_key,
        "creationDate": contact.creation_ms,
        "versionTimestamp": contact.last_saved_ms,
        "lastSavedTimestamp": contact.last_saved_ms,
        "lastEnrichmentTimestamp": contact.enrichment_ms,
        "contactLinks": [],
        "orgLinks": [
            {"key": key, "isMagicLinked": False, "creationTimestamp": contact.creation_ms}
            for key in contact.organization_keys
        ],
        "fields": contact.fields,
    }


def render_organization(organization: Organization) -> JsonDict:
    return {
        "key": organization.key,
        "teamKey": organization.team_key,
        "name": organization.name,
        "other": organization.other,
        "domains": organization.domains,
        "normalizedDomains": [d.lower() for d in organization.domains],
        "industry": organization.industry,
        "phoneNumbers": organization.phone_numbers,
        "addresses": organization.addresses,
        "employeeCount": organization.employee_count,
        "logoURL": organization.logo_url,
        "lastSavedUserKey": organization.creator_key,
        "creatorKey": organization.creator_key,
        "creationDate": organization.creation_ms,
        "versionTimestamp": organization.last_saved_ms,
        "lastSavedTimestamp": organization.last_saved_ms,
        "lastEnrichmentTimestamp": organization.enrichment_ms,
        "contactLinks": [
            {"key": key, "isMagicLinked": False, "creationTimestamp": organization.creation_ms}
            for key in organization.contact_keys
        ],
        "orgLinks": [],
        "fields": organization.fields,
    }


def render_snippet(snippet: Snippet) -> JsonDict:
    return {
        "key": snippet.key,
        "userKey": snippet.user_key,
        "creationDate": snippet.creation_ms,
        "partOfPipeline": snippet.part_of_pipeline,
        "snippetName": snippet.name,
        "snippetText": snippet.text,
        "snippetType": snippet.snippet_type,
    }


# ---------------------------------------------------------------------------- pipelines


def render_field(pipeline_field: PipelineField) -> JsonDict:
    rendered: JsonDict = {
        "key": pipeline_field.key,
        "name": pipeline_field.name,
        "type": pipeline_field.type,
        "lastUpdatedTimestamp": pipeline_field.updated_ms,
        "lastDefaultValueUpdatedTimestamp": pipeline_field.updated_ms
        if pipeline_field.formula is not None
        else None,
        "dropdownSettings": {
            "items": [{"key": o.key, "name": o.label} for o in pipeline_field.options]
        }
        if pipeline_field.type == "DROPDOWN"
        else None,
        "tagSettings": {"tags": [{"key": o.key, "tag": o.label} for o in pipeline_field.options]}
        if pipeline_field.type == "TAG"
        else None,
    }
    if pipeline_field.formula is not None:
        rendered["defaultValue"] = pipeline_field.formula
    return rendered


def render_stage(stage: Stage, box_count: int) -> JsonDict:
    return {
        "key": stage.key,
        "name": stage.name,
        "color": {
            "foregroundColor": stage.foreground_color,
            "backgroundColor": stage.background_color,
        },
        "isColorFromTheme": False,
        "boxCount": box_count,
    }


def render_stages(pipeline: Pipeline) -> JsonDict:
    """The v1 stages object map, keyed by stage key."""
    counts = Counter(box.stage_key for box in pipeline.boxes)
    return {stage.key: render_stage(stage, counts[stage.key]) for stage in pipeline.stages}


def render_pipeline(pipeline: Pipeline, account: Account) -> JsonDict:
    formula_times = [f.updated_ms for f in pipeline.fields if f.type == "FORMULA"]
    return {
        "key": pipeline.key,
        "pipelineKey": pipeline.key,
        "name": pipeline.name,
        "description": pipeline.description,
        "creatorKey": pipeline.creator_key,
        "teamKey": pipeline.team_key,
        "fields": [render_field(f) for f in pipeline.fields],
        "stages": render_stages(pipeline),
        "stageOrder": pipeline.stage_order,
        "stageColorTheme": "DEFAULT",
        "creationTimestamp": pipeline.creation_ms,
        "lastUpdatedTimestamp": pipeline.last_updated_ms,
        "lastSavedTimestamp": pipeline.last_updated_ms,
        "formulasLastUpdatedTimestamp": max(formula_times) if formula_times else None,
        "aclEntries": [
            {
                "userKey": user.key,
                "permissionSetName": "OWNER" if user.key == pipeline.creator_key else "EDITOR",
                "email": user.email,
                "displayName": user.display_name,
                "fullName": user.full_name,
                "givenName": user.given_name,
                "image": user.image,
                "userType": user.user_type,
                "isReadOnly": False,
            }
            for user in (account.users[key] for key in pipeline.acl_user_keys)
        ],
        "sharingRestrictedToTeam": False,
        "teamWide": pipeline.team_key is not None,
        "defaultPermissionSetName": "EDITOR",
        "creationSourceType": "HUMAN",
        "boxCount": len(pipeline.boxes),
        "boxCountHint": len(pipeline.boxes),
    }


def render_newsfeed_entry(entry: NewsfeedEntry, pipeline_key: str) -> JsonDict:
    rendered: JsonDict = {"key": entry.key, "pipelineKey": pipeline_key}
    if entry.box_key is not None:
        rendered["boxKey"] = entry.box_key
    rendered |= {
        "creatorKey": entry.creator_key,
        "timestamp": entry.timestamp,
        "newsfeedEntryScope": entry.scope,
        "newsfeedEntryOperation": entry.operation,
        "newsfeedEntrySpecific": entry.specific,
        "specificVariables": entry.variables,
    }
    return rendered


# ---------------------------------------------------------------------------- boxes


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
    return rendered


# ---------------------------------------------------------------------------- box children


def render_task(task: Task, box: Box, account: Account) -> JsonDict:
    users = account.users
    creator = users[task.creator_key]
    assignees = [users[k] for k in task.assignee_keys]
    return {
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
    return {
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
