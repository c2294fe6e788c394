"""Pure functions that turn Streak's JSON into analyst-ready rows. No HTTP, no dlt state.

Streak encodes every time as integer milliseconds since the Unix epoch; dlt would load those as
bigints (a ``timestamp`` hint alone does not convert them), so they are converted here (by
streak_source/epoch.py).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from streak_source.epoch import epoch_ms_to_datetime
from streak_source.keys import as_key, entity_key
from streak_source.people import contact_name, people, person_name

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
    """Copy an API object, name its key ``<entity>_key`` (see :func:`streak_source.keys.entity_key`)
    and drop the duplicate ``key`` aliases. No usable key leaves ``<entity>_key`` None: the source
    then quarantines the object in ``rejected_records`` instead of loading it."""
    key = entity_key(obj, *aliases)
    row = dict(obj) if isinstance(obj, dict) else {"value": obj}
    for name in ("key", *aliases):
        row.pop(name, None)
    row[key_column] = key
    return convert_timestamps(row)


def user_row(user: Any, is_me: bool) -> dict[str, Any]:
    row = entity_row(user, "user_key", "userKey")
    row["is_me"] = is_me
    return row


def team_row(team: Any) -> dict[str, Any]:
    row = entity_row(team, "team_key", "teamKey")
    row.pop("members", None)
    return row


def team_members(team: Any) -> list[Any]:
    """The raw ``members`` of a team (anything in the list, for the source to key or reject)."""
    return _list(team.get("members")) if isinstance(team, dict) else []


def team_member_row(member: Any, team_key: str | None) -> dict[str, Any]:
    """A member with ``team_key`` and ``user_key`` (None when the member has no usable user key)."""
    row = entity_row(member, "user_key", "userKey")
    row.pop("teamKey", None)
    row["team_key"] = team_key
    return row


def team_member_rows(team: Any) -> list[dict[str, Any]]:
    """One row per member object (rows with ``user_key`` None are quarantined by the source)."""
    team_key = entity_key(team, "teamKey")
    return [team_member_row(m, team_key) for m in team_members(team) if isinstance(m, dict)]


def stage_order_index(pipeline: Any) -> dict[str, int]:
    """Stage key -> 0-based position in the pipeline's ``stageOrder`` (the funnel order)."""
    order = pipeline.get("stageOrder") if isinstance(pipeline, dict) else None
    index: dict[str, int] = {}
    for key in (as_key(entry) for entry in _list(order)):  # a key listed twice keeps its first place
        if key is not None:  # a null is no stage (never the stage "None"): it takes no position
            index.setdefault(key, len(index))
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
    pipeline_key = entity_key(pipeline, "pipelineKey")
    order = stage_order_index(pipeline)
    rows = []
    for stage_key, stage in stages_map(pipeline).items():
        row = entity_row(stage, "stage_key", "stageKey")
        row["stage_key"] = stage_key
        row["pipeline_key"] = pipeline_key
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


@dataclass(frozen=True)
class FieldOption:
    """One DROPDOWN item or TAG tag of a field: the ONE parse of ``dropdownSettings`` / ``tagSettings``."""

    kind: str
    """``DROPDOWN`` or ``TAG``."""
    key: str | None
    label: str | None
    """``name`` for a dropdown item (``label`` tolerated); ``tag`` for a tag (``name``/``label`` tolerated)."""


_OPTION_SETTINGS = (
    ("DROPDOWN", "dropdownSettings", "items", ("name", "label")),
    ("TAG", "tagSettings", "tags", ("tag", "name", "label")),
)


def field_options(field: Any) -> list[FieldOption]:
    """Every option object of a field, in order (junk entries that are not objects are skipped)."""
    if not isinstance(field, dict):
        return []
    options = []
    for kind, settings_name, list_name, label_names in _OPTION_SETTINGS:
        holder = field.get(settings_name)
        for entry in _list(holder.get(list_name) if isinstance(holder, dict) else None):
            if isinstance(entry, dict):
                labels = (_label(entry.get(name)) for name in label_names)
                options.append(FieldOption(kind, as_key(entry.get("key")), next((x for x in labels if x), None)))
    return options


def _label(value: Any) -> str | None:
    """A usable label: a string as is, a scalar as its JSON text; objects and lists are no label."""
    if value is None or isinstance(value, (dict, list)):
        return None
    return value if isinstance(value, str) else json.dumps(value)


def field_option_rows(pipeline_key: Any, field: dict[str, Any]) -> list[dict[str, Any]]:
    """DROPDOWN items and TAG tags of a field, as (option_key, label) rows."""
    field_key = entity_key(field, "fieldKey")
    return [
        {"option_key": option.key, "label": option.label, "option_kind": option.kind,
         "pipeline_key": pipeline_key, "field_key": field_key, "option_order": position}
        for position, option in enumerate(field_options(field))
    ]


def pipeline_field_rows(pipeline: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A pipeline's custom fields (with their position) and their dropdown/tag options."""
    if not isinstance(pipeline, dict):
        return [], []
    pipeline_key = entity_key(pipeline, "pipelineKey")
    fields, options = [], []
    for position, field in enumerate(_list(pipeline.get("fields"))):
        if not isinstance(field, dict):
            continue
        row = entity_row(field, "field_key", "fieldKey")
        row.update(pipeline_key=pipeline_key, field_order=position)
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
    names, emails = people(row.get("assignedToSharingEntries"))
    row["assigned_to_names"] = ", ".join(names) or None
    row["assigned_to_emails"] = ", ".join(emails) or None
    row["owner_name"] = names[0] if names else None
    row["owner_email"] = emails[0] if emails else None
    row["creator_name"] = person_name(row.get("creatorSharingEntry"))
    return row


def box_child_row(obj: Any, key_column: str, box: dict[str, Any], *aliases: str) -> dict[str, Any]:
    """A per-box child row; always carries the parent box's ``box_key`` and ``pipeline_key``."""
    row = entity_row(obj, key_column, *aliases)
    row["boxKey"] = row.get("boxKey") or loadable(box.get("box_key"))
    row["pipelineKey"] = row.get("pipelineKey") or loadable(box.get("pipelineKey"))
    return row


def task_row(task: Any, box: dict[str, Any]) -> dict[str, Any]:
    row = box_child_row(task, "task_key", box, "taskKey")
    assignees = row.get("assignedTo")
    if not isinstance(assignees, list) or not assignees:
        assignees = row.get("assignedToSharingEntries")
    names, emails = people(assignees)
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


def contact_row(contact: Any) -> dict[str, Any]:
    row = entity_row(contact, "contact_key", "contactKey")
    row["full_name"] = contact_name(contact)
    return row


def organization_row(organization: Any) -> dict[str, Any]:
    return entity_row(organization, "organization_key", "organizationKey", "orgKey")


NEWSFEED_KEY_NAMES = ("newsfeedItemKey", "key", "newsfeedEntryKey")
"""Where a newsfeed entry's key is, in order: Streak sends ``newsfeedItemKey`` (streak_api.md 6.13);
``key`` is the generic alias every entity may carry; ``newsfeedEntryKey`` is the name older clients
used. An entry with none of them is quarantined, never keyed by a digest of its content."""

NEWSFEED_VARIABLE_COLUMNS = {
    "STAGE_KEY": "stage_key",
    "BOX_NAME": "box_name",
    "PIPELINE_NAME": "pipeline_name",
    "STORY_AUTHOR_DISPLAY_NAME": "author_name",
}
"""``specificVariables`` entries promoted to their own column; all of them stay in ``specific_variables``."""


def newsfeed_row(entry: Any, pipeline_key: Any, box_key: Any = None) -> dict[str, Any]:
    """A history event in Streak's real shape (pipeline and per-box newsfeed alike): ``newsfeedItemKey``,
    ``newsfeedEntryScope`` / ``Operation`` / ``Specific`` (-> ``scope``, ``operation``, ``specific``:
    ``NEW_BOX``, ``EDIT_STAGE``...) and ``specificVariables`` (UPPER_SNAKE keys, kept whole as JSON;
    STAGE_KEY, BOX_NAME, PIPELINE_NAME and STORY_AUTHOR_DISPLAY_NAME also get a column). The entry's own
    ``pipelineKey`` / ``boxKey`` win; the parent's fill them in when absent. ``newsfeed_key`` None means
    "quarantine"."""
    key = next((k for k in (as_key(entry.get(n)) for n in NEWSFEED_KEY_NAMES) if k), None) if isinstance(
        entry, dict) else None
    row = entity_row(entry, "newsfeed_key", *NEWSFEED_KEY_NAMES)
    row["newsfeed_key"] = key
    row["pipelineKey"] = row.get("pipelineKey") or loadable(pipeline_key)
    if box_key is not None:
        row["boxKey"] = row.get("boxKey") or loadable(box_key)
    for name, column in (("newsfeedEntryScope", "scope"), ("newsfeedEntryOperation", "operation"),
                         ("newsfeedEntrySpecific", "specific")):
        row[column] = row.pop(name, None)
    variables = row.pop("specificVariables", None)
    row["specific_variables"] = variables
    variables = variables if isinstance(variables, dict) else {}
    for name, column in NEWSFEED_VARIABLE_COLUMNS.items():
        value = variables.get(name)
        row[column] = value if isinstance(value, str) else None
    return row


def box_newsfeed_row(entry: Any, box: dict[str, Any]) -> dict[str, Any]:
    """A per-box newsfeed event: :func:`newsfeed_row` with the parent box's ``box_key``/``pipeline_key``."""
    return newsfeed_row(entry, box.get("pipelineKey"), box.get("box_key"))


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
