"""Render the account the way Streak's API does (streak_api.md sections 6.x): JSON-ready dicts.

Pure functions of the account, so the same account always renders to the same bytes.
Conventions followed throughout: every timestamp is an integer of epoch milliseconds; entities
carry ``key`` plus the alias real payloads have (``userKey``, ``pipelineKey``, ``boxKey``,
``commentKey``, ``fileKey``); v2 objects (tasks, meetings) carry ``key`` plus
``boxKey``/``pipelineKey``. Every field Streak's official SDK (``streak-crm``, generated from
Streak's OpenAPI file) marks as required is present. This module renders people, teams, contacts,
snippets, pipelines and the newsfeed; ``render_boxes.py`` renders boxes and their children.
An entity's ``patch`` (hostile account only) is applied last, by :func:`apply_patch`.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from .model import (
    DROP,
    Account,
    Contact,
    NewsfeedEntry,
    Organization,
    Patch,
    Pipeline,
    PipelineField,
    Snippet,
    Stage,
    Team,
    TeamField,
    TeamMember,
    User,
)

JsonDict = dict[str, Any]


def apply_patch(rendered: JsonDict, patch: Patch) -> JsonDict:
    """Raw JSON edits (hostile account): replace/add a property, or remove it with ``DROP``."""
    for name, value in patch.items():
        if value is DROP:
            rendered.pop(name, None)
        else:
            rendered[name] = value
    return rendered


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


def render_team_member(member: TeamMember) -> JsonDict:
    user = member.user
    rendered: JsonDict = {
        "userKey": user.key,
        "role": member.role,
        "inviteDate": member.invite_ms,
        "inviteStatus": member.invite_status,
        "displayName": user.display_name,
        "email": user.email,
        "fullName": user.full_name,
        "givenName": user.given_name,
        "image": user.image or None,
        "userType": user.user_type,
        "emailSharing": "Existence",
    }
    return apply_patch(rendered, member.patch)


def render_team(team: Team) -> JsonDict:
    return {
        "key": team.key,
        "name": team.name,
        "creationDate": team.creation_ms,
        "creator": team.creator_key,
        "members": [render_team_member(m) for m in team.members],
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


def _contact_domains(contact: Contact) -> list[str]:
    """A contact's website domains: those of its email addresses, first occurrence first."""
    domains: list[str] = []
    for address in contact.email_addresses:
        domain = address.rpartition("@")[2]
        if domain and domain not in domains:
            domains.append(domain)
    return domains


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
        "domains": _contact_domains(contact),
        "normalizedDomains": [d.lower() for d in _contact_domains(contact)],
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
    # Required by Streak's SDK on every field; no field of the account autofills with AI, so the
    # prompt is empty (the shape a field without an AI prompt has).
    rendered["aiSettings"] = {"prompt": "", "source": "BOX_TIMELINE"}
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
    rendered: JsonDict = {
        "key": pipeline.key,
        "pipelineKey": pipeline.key,
        "name": pipeline.name,
        "icon": pipeline.icon,
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
        "customPermissionSets": {},
        "defaultPermissionSetName": "EDITOR",
        "creationSourceType": "HUMAN",
        "boxCount": len(pipeline.boxes),
        "boxCountHint": len(pipeline.boxes),
    }
    return apply_patch(rendered, pipeline.patch)


def render_newsfeed_entry(entry: NewsfeedEntry) -> JsonDict:
    """Streak's newsfeed entry (streak_api.md 6.13): keyed by ``newsfeedItemKey``."""
    rendered: JsonDict = {
        "newsfeedItemKey": entry.key,
        "pipelineKey": entry.pipeline_key,
    }
    if entry.box_key is not None:
        rendered["boxKey"] = entry.box_key
    rendered |= {
        "creatorKey": entry.creator_key,
        "timestamp": entry.timestamp,
        "lastSavedTimestamp": entry.timestamp,
        "newsfeedEntryScope": entry.scope,
        "newsfeedEntryOperation": entry.operation,
        "newsfeedEntrySpecific": entry.specific,
        "specificVariables": entry.variables,
        "storyTextBox": entry.story_box,
        "storyTextPipeline": entry.story_pipeline,
        "storyTextGlobal": entry.story_global,
        "collapsedEntries": [],
        "moved": False,
    }
    return rendered
