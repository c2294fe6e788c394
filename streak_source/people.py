"""People and organizations: the ONE rule for each name shown for them, and the task-assignee bridge.

``contacts.full_name`` and TEAM_CONTACT field labels both come from :func:`contact_name`; users and
sharing entries from :func:`person_name`; organizations from :func:`organization_name`. Pure
functions, no HTTP, no dlt.
"""

from __future__ import annotations

from typing import Any

from streak_source.keys import as_key

__all__ = ["person_name", "people", "contact_name", "organization_name", "task_assignee_rows"]


def person_name(entry: Any) -> str | None:
    """The best human name in a sharing entry / user brief: full name, display name, then email."""
    if not isinstance(entry, dict):
        return entry if isinstance(entry, str) and entry else None
    for name in ("fullName", "displayName", "email"):
        value = entry.get(name)
        if isinstance(value, str) and value.strip():
            return value
    return None


def people(entries: Any) -> tuple[list[str], list[str]]:
    """Names and emails of a list of sharing entries / user briefs (non-lists give nothing)."""
    if not isinstance(entries, list):
        return [], []
    names = [n for n in (person_name(e) for e in entries) if n]
    emails = [e["email"] for e in entries if isinstance(e, dict) and isinstance(e.get("email"), str)]
    return names, emails


def contact_name(contact: Any) -> str | None:
    """What a person calls a contact: ``fullName`` / ``name``, else ``Given Family``, else the first
    email address. The ONE rule: ``contacts.full_name`` and TEAM_CONTACT field labels both use it."""
    if not isinstance(contact, dict):
        return None
    for name in ("fullName", "name"):
        value = contact.get(name)
        if isinstance(value, str) and value.strip():
            return value
    parts = [p.strip() for p in (contact.get("givenName"), contact.get("familyName")) if isinstance(p, str) and p.strip()]
    if parts:
        return " ".join(parts)
    emails = contact.get("emailAddresses")
    return next((e for e in _as_list(emails) if isinstance(e, str) and e.strip()), None)


def organization_name(organization: Any) -> str | None:
    """An organization's ``name``, else its first domain: the label of TEAM_ORGANIZATION values."""
    if not isinstance(organization, dict):
        return None
    name = organization.get("name")
    if isinstance(name, str) and name.strip():
        return name
    return next((d for d in _as_list(organization.get("domains")) if isinstance(d, str) and d.strip()), None)


def task_assignee_rows(task: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``box_task_assignees`` bridge: one row per (task, assignee) of a built task row.

    Assignees come from ``assignedTo`` (UserBriefs), or ``assignedToSharingEntries`` when that is
    empty. ``assignee_id`` = user key, else lower-cased email, else name: the same person listed
    twice counts once. An entry with none of the three is left out (there is nobody to count).
    """
    assignees = task.get("assignedTo")
    if not isinstance(assignees, list) or not assignees:
        assignees = task.get("assignedToSharingEntries")
    rows: dict[str, dict[str, Any]] = {}
    for entry in _as_list(assignees):
        if isinstance(entry, str):  # a bare email or name
            entry = {"email": entry} if "@" in entry else {"fullName": entry}
        if not isinstance(entry, dict):
            continue
        user_key = as_key(entry.get("userKey")) or as_key(entry.get("key"))
        email = next((v for v in (entry.get("email"),) if isinstance(v, str) and v.strip()), None)
        name = next((v for v in (entry.get("fullName"), entry.get("displayName")) if isinstance(v, str) and v.strip()),
                    None)
        assignee_id = user_key or (email.strip().lower() if email else None) or name
        if assignee_id is None or assignee_id in rows:
            continue
        rows[assignee_id] = {
            "task_key": task.get("task_key"), "assignee_id": assignee_id, "box_key": task.get("boxKey"),
            "pipeline_key": task.get("pipelineKey"), "user_key": user_key, "email": email, "name": name,
        }
    return list(rows.values())


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
