"""Pure functions that turn Streak's JSON into analyst-ready rows. No HTTP, no dlt state.

Streak encodes every time as integer milliseconds since the Unix epoch; dlt would load those as
bigints (a ``timestamp`` hint alone does not convert them), so they are converted here.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import datetime, timezone
from typing import Any

# Timestamps outside this window are not real Streak times (year 1970..2200): kept raw instead.
_MIN_MS = 0
_MAX_MS = 7_258_118_400_000


def epoch_ms_to_datetime(value: Any) -> datetime | None:
    """Epoch milliseconds -> aware UTC datetime; None for anything that is not a plausible time.

    Booleans are ints in Python and are rejected explicitly; numeric strings are accepted because
    some clients and old payloads send them.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if not isinstance(value, (int, float)) or value != value:  # NaN
        return None
    if not (_MIN_MS <= value <= _MAX_MS):
        return None
    return datetime.fromtimestamp(value / 1000.0, tz=timezone.utc)


# ---------------------------------------------------------------------------------------------
# Row shaping: one function per table. Each takes the API object (and the parent it hangs off)
# and returns the row to load. Unknown fields pass through untouched (dlt names them snake_case).

_TIMESTAMP_SUFFIXES = ("Timestamp", "Date")


def is_timestamp_field(name: str) -> bool:
    """Streak's epoch-ms fields are named ``...Timestamp`` / ``...Date`` (or plain ``timestamp``)."""
    return name == "timestamp" or name.endswith(_TIMESTAMP_SUFFIXES)


def convert_timestamps(row: dict[str, Any]) -> dict[str, Any]:
    """Turn every epoch-ms field of ``row`` into a UTC datetime, in place.

    null stays null; a value that is not a number (an ISO string, a bool) is left as it came, for
    dlt to parse or keep in a variant column. A number (or numeric string) that is not a plausible
    epoch-ms time is moved, as text, to a ``<name>Raw`` field and the timestamp left null: dlt
    would otherwise read it as epoch *seconds* (-1 ms -> 23:59:59 on 31 Dec 1969) or, beyond
    year 9999, fail the whole load. Integers too big for 64 bits, at any depth, become their
    decimal text (see :func:`loadable`). Nothing is lost either way.
    """
    raw: dict[str, str] = {}
    for name, value in row.items():
        if is_timestamp_field(name) and _is_number_like(value):
            converted = epoch_ms_to_datetime(value)
            if converted is None:
                raw[f"{name}Raw"] = value if isinstance(value, str) else json.dumps(value)
            row[name] = converted
            continue
        row[name] = loadable(value)
    row.update(raw)
    return row


def _is_number_like(value: Any) -> bool:
    """An int/float (not a bool), or a string that Python reads as a number ("-5", "1e3", " nan")."""
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    if isinstance(value, str):
        try:
            float(value.strip())
        except ValueError:
            return False
        return True
    return False


_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


def loadable(value: Any) -> Any:
    """``value`` with every integer outside 64 bits replaced by its decimal text, at any depth.

    JSON allows any integer, but no destination column (and not dlt's extract writer, which fails
    with "Integer exceeds 64-bit range") holds one: the digits are kept, as text, not dropped.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return value if _INT64_MIN <= value <= _INT64_MAX else str(value)
    if isinstance(value, list):
        return [loadable(item) for item in value]
    if isinstance(value, dict):
        return {name: loadable(item) for name, item in value.items()}
    return value


def entity_row(obj: Any, key_column: str, *aliases: str) -> dict[str, Any]:
    """Copy an API object, name its key ``<entity>_key`` and drop the duplicate ``key`` aliases."""
    row = dict(obj) if isinstance(obj, dict) else {"value": obj}
    key = row.pop("key", None)
    for alias in aliases:
        alias_value = row.pop(alias, None)
        key = key if key is not None else alias_value
    row[key_column] = key
    return convert_timestamps(row)


def person_name(entry: Any) -> str | None:
    """The best human name in a sharing entry / user brief: full name, display name, then email."""
    if not isinstance(entry, dict):
        return entry if isinstance(entry, str) and entry else None
    for name in ("fullName", "displayName", "email"):
        value = entry.get(name)
        if isinstance(value, str) and value.strip():
            return value
    return None


def _people(entries: Any) -> tuple[list[str], list[str]]:
    """Names and emails of a list of sharing entries / user briefs (non-lists give nothing)."""
    if not isinstance(entries, list):
        return [], []
    names = [n for n in (person_name(e) for e in entries) if n]
    emails = [e["email"] for e in entries if isinstance(e, dict) and isinstance(e.get("email"), str)]
    return names, emails


def user_row(user: Any, is_me: bool) -> dict[str, Any]:
    row = entity_row(user, "user_key", "userKey")
    row["is_me"] = is_me
    return row


def team_row(team: Any) -> dict[str, Any]:
    row = entity_row(team, "team_key", "teamKey")
    row.pop("members", None)
    return row


def team_member_rows(team: Any) -> list[dict[str, Any]]:
    """One row per member; members without a user key cannot be keyed and are kept with key None."""
    if not isinstance(team, dict):
        return []
    team_key = team.get("key") or team.get("teamKey")
    rows = []
    for member in _list(team.get("members")):
        if isinstance(member, dict):
            rows.append(convert_timestamps({**member, "teamKey": team_key}))
    return rows


def stage_order_index(pipeline: Any) -> dict[str, int]:
    """Stage key -> 0-based position in the pipeline's ``stageOrder`` (the funnel order)."""
    order = pipeline.get("stageOrder") if isinstance(pipeline, dict) else None
    index: dict[str, int] = {}
    for key in _list(order):  # a key listed twice keeps its first place: positions stay unique
        index.setdefault(str(key), len(index))
    return index


def stages_map(pipeline: Any) -> dict[str, dict[str, Any]]:
    """The pipeline's stages keyed by stage key; v1 sends an object map, be tolerant of a list."""
    stages = pipeline.get("stages") if isinstance(pipeline, dict) else None
    if isinstance(stages, dict):
        return {str(k): v for k, v in stages.items() if isinstance(v, dict)}
    if isinstance(stages, list):
        return {str(s.get("key")): s for s in stages if isinstance(s, dict) and s.get("key") is not None}
    return {}


def stage_names(pipeline: Any) -> dict[str, str | None]:
    return {key: stage.get("name") for key, stage in stages_map(pipeline).items()}


def pipeline_row(pipeline: Any) -> dict[str, Any]:
    row = entity_row(pipeline, "pipeline_key", "pipelineKey")
    row["stage_count"] = len(stages_map(pipeline))
    fields = row.pop("fields", None)
    row["field_count"] = len(fields) if isinstance(fields, list) else 0
    row.pop("stages", None)
    return row


def stage_rows(pipeline: Any) -> list[dict[str, Any]]:
    """Stages with their funnel position; stages missing from ``stageOrder`` sort last."""
    pipeline_key = (pipeline.get("key") or pipeline.get("pipelineKey")) if isinstance(pipeline, dict) else None
    order = stage_order_index(pipeline)
    rows = []
    for stage_key, stage in stages_map(pipeline).items():
        row = entity_row(stage, "stage_key", "stageKey")
        row["stage_key"] = stage_key
        row["pipeline_key"] = loadable(pipeline_key)
        row.pop("pipelineKey", None)
        row["stage_order"] = order.get(stage_key)
        color = row.pop("color", None)
        color = color if isinstance(color, dict) else {}
        row["foreground_color"] = color.get("foregroundColor")
        row["background_color"] = color.get("backgroundColor")
        rows.append(row)
    unordered = len(order)
    for row in sorted((r for r in rows if r["stage_order"] is None), key=lambda r: r["stage_key"]):
        row["stage_order"] = unordered
        unordered += 1
    return rows


def field_option_rows(pipeline_key: Any, field: dict[str, Any]) -> list[dict[str, Any]]:
    """DROPDOWN items and TAG tags of a field, as (option_key, label) rows."""
    rows = []
    dropdown = field.get("dropdownSettings")
    for item in _list(dropdown.get("items") if isinstance(dropdown, dict) else None):
        if isinstance(item, dict):
            rows.append({"option_key": item.get("key"), "label": item.get("name"), "option_kind": "DROPDOWN"})
    tags = field.get("tagSettings")
    for tag in _list(tags.get("tags") if isinstance(tags, dict) else None):
        if isinstance(tag, dict):
            rows.append({"option_key": tag.get("key"), "label": tag.get("tag"), "option_kind": "TAG"})
    for position, row in enumerate(rows):
        row.update(pipeline_key=pipeline_key, field_key=field.get("key"), option_order=position)
    return [loadable(row) for row in rows]


def pipeline_field_rows(pipeline: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A pipeline's custom fields (with their position) and their dropdown/tag options."""
    if not isinstance(pipeline, dict):
        return [], []
    pipeline_key = pipeline.get("key") or pipeline.get("pipelineKey")
    fields, options = [], []
    for position, field in enumerate(_list(pipeline.get("fields"))):
        if not isinstance(field, dict):
            continue
        row = entity_row(field, "field_key", "fieldKey")
        row.update(pipeline_key=loadable(pipeline_key), field_order=position)
        row.pop("dropdownSettings", None)
        row.pop("tagSettings", None)
        fields.append(row)
        options.extend(field_option_rows(pipeline_key, field))
    return fields, options


def box_row(box: Any, stage_name_by_key: dict[str, str | None]) -> dict[str, Any]:
    """A box with its stage name and its people resolved; the raw ``fields`` map stays one JSON value."""
    row = entity_row(box, "box_key", "boxKey")
    stage_key = row.get("stageKey")
    row["stage_name"] = loadable(stage_name_by_key.get(str(stage_key))) if stage_key is not None else None
    names, emails = _people(row.get("assignedToSharingEntries"))
    row["assigned_to_names"] = ", ".join(names) or None
    row["assigned_to_emails"] = ", ".join(emails) or None
    row["owner_name"] = names[0] if names else None
    row["owner_email"] = emails[0] if emails else None
    row["creator_name"] = person_name(row.get("creatorSharingEntry"))
    return row


def box_child_row(obj: Any, key_column: str, box: dict[str, Any], *aliases: str) -> dict[str, Any]:
    """A per-box child row; always carries the parent box's ``box_key`` and ``pipeline_key``."""
    row = entity_row(obj, key_column, *aliases)
    row["boxKey"] = row.get("boxKey") or loadable(box.get("box_key") or box.get("boxKey") or box.get("key"))
    row["pipelineKey"] = row.get("pipelineKey") or loadable(box.get("pipelineKey"))
    return row


def task_row(task: Any, box: dict[str, Any]) -> dict[str, Any]:
    row = box_child_row(task, "task_key", box, "taskKey")
    assignees = row.get("assignedTo")
    if not isinstance(assignees, list) or not assignees:
        assignees = row.get("assignedToSharingEntries")
    names, emails = _people(assignees)
    row["assignee_names"] = ", ".join(names) or None
    row["assignee_emails"] = ", ".join(emails) or None
    creator = row.get("creator") or row.get("creatorSharingEntry")
    row["creator_name"] = person_name(creator)
    return row


def thread_row(thread: Any, box: dict[str, Any]) -> dict[str, Any]:
    return box_child_row(thread, "thread_key", box, "threadKey")


def comment_row(comment: Any, box: dict[str, Any]) -> dict[str, Any]:
    return box_child_row(comment, "comment_key", box, "commentKey")


def meeting_row(meeting: Any, box: dict[str, Any]) -> dict[str, Any]:
    return box_child_row(meeting, "meeting_key", box, "meetingKey")


def file_row(file: Any, box: dict[str, Any]) -> dict[str, Any]:
    return box_child_row(file, "file_key", box, "fileKey")


def snippet_row(snippet: Any) -> dict[str, Any]:
    return entity_row(snippet, "snippet_key", "snippetKey")


def contact_name(contact: Any) -> str | None:
    """``Given Family``, else the first email address: what a person calls a contact."""
    if not isinstance(contact, dict):
        return None
    parts = [p for p in (contact.get("givenName"), contact.get("familyName")) if isinstance(p, str) and p.strip()]
    if parts:
        return " ".join(parts)
    emails = contact.get("emailAddresses")
    if isinstance(emails, list) and emails and isinstance(emails[0], str):
        return emails[0]
    return None


def contact_row(contact: Any) -> dict[str, Any]:
    row = entity_row(contact, "contact_key", "contactKey")
    row["full_name"] = contact_name(contact)
    return row


def organization_row(organization: Any) -> dict[str, Any]:
    return entity_row(organization, "organization_key", "organizationKey", "orgKey")


def newsfeed_row(entry: Any, pipeline_key: Any) -> dict[str, Any]:
    """A pipeline history event. Entries may lack a key [L]: derive a stable one from the content."""
    row = entity_row(entry, "newsfeed_key", "newsfeedEntryKey")
    row["pipelineKey"] = row.get("pipelineKey") or loadable(pipeline_key)
    if row["newsfeed_key"] is None:
        digest = hashlib.sha1(json.dumps(entry, sort_keys=True, default=str).encode()).hexdigest()[:20]
        row["newsfeed_key"] = f"{pipeline_key}:{digest}"
    return row


def child_count(box: Any, counters: tuple[str, ...]) -> int | None:
    """Sum of the box's counters for a child endpoint; None when any counter is missing or odd,
    which means "unknown: call the endpoint" rather than "skip"."""
    if not isinstance(box, dict):
        return None
    total = 0
    for counter in counters:
        value = box.get(counter)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (
            isinstance(value, float) and not math.isfinite(value)
        ):
            return None
        total += int(value)
    return total


def _list(value: Any) -> list[Any]:
    """``value`` if it is a JSON array, else nothing to iterate (a count or a string where Streak
    promises a list must not crash the load, nor be walked character by character)."""
    return value if isinstance(value, list) else []
