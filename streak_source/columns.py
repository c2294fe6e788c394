"""Every column of every table the source writes, with its type: the ONE declaration dlt gets as hints.

Why declare them all: dlt infers a column's type from its values, so a column that is NULL in every
row of a load (a task's ``actions``, a comment's ``newsfeedEntryKey`` in most accounts) gets no type,
is left out of the destination and makes dlt warn ("did not receive any data ... could not have
their types inferred") in every pipeline that uses the source, a user's own included. Declared, each
column exists with its type whether or not a row has a value, and the tables keep one layout from
account to account. Names are dlt's snake_case of Streak's fields (streak_api.md section 6, as the
sandbox renders them) plus the columns the transform adds (``stage_name``, ``owner_name``, ...).

A field Streak sends that is declared nowhere (a field newer than this list) still loads, typed by its
values. NULLs are not sent at all (:func:`ready_to_load`): a declared column is NULL where a row has
no value, and an undeclared one that is NULL in every row would not be created anyway, only warned
about.

Column order in a new table is the order here: keys and names first, then text, numbers, flags,
times and JSON.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

from dlt.common.schema.typing import TColumnSchema, TDataType

__all__ = ["TABLE_COLUMNS", "declared", "ready_to_load"]

_ORDER: Final[tuple[TDataType, ...]] = ("text", "bigint", "double", "bool", "timestamp", "json")


def declared(**names_by_type: tuple[str, ...]) -> dict[str, TColumnSchema]:
    """Column hints from ``text=(...)``, ``bigint=(...)``, ``timestamp=(...)``...; timestamps are UTC."""
    unknown = set(names_by_type) - set(_ORDER)
    if unknown:
        raise ValueError(f"unknown column types: {sorted(unknown)}")
    columns: dict[str, TColumnSchema] = {}
    for data_type in _ORDER:
        for name in names_by_type.get(data_type, ()):
            if name in columns:
                raise ValueError(f"column {name!r} declared twice")
            column = TColumnSchema(data_type=data_type)
            if data_type == "timestamp":
                column["timezone"] = True
            columns[name] = column
    return columns


_NEWSFEED: Final = declared(
    text=("newsfeed_key", "pipeline_key", "box_key", "stage_key", "box_name", "pipeline_name", "author_name",
          "scope", "operation", "specific", "creator_key", "story_text_box", "story_text_pipeline",
          "story_text_global"),
    bool=("moved",),
    timestamp=("timestamp", "last_saved_timestamp"),
    json=("specific_variables", "collapsed_entries"),
)

_PEOPLE_TIMES: Final = ("creation_date", "last_saved_timestamp", "version_timestamp", "last_enrichment_timestamp")

TABLE_COLUMNS: Final[Mapping[str, dict[str, TColumnSchema]]] = {
    "users": declared(
        text=("user_key", "display_name", "email", "lowercase_email", "google_profile_full_name",
              "google_profile_first_name", "google_profile_last_name", "google_profile_photo_url", "timezone_id",
              "user_type"),
        bool=("is_me", "is_oauth_complete", "wants_task_digest_email"),
        timestamp=("creation_timestamp", "last_updated_timestamp", "last_saved_timestamp", "last_seen_timestamp",
                   "first_oauth_timestamp"),
    ),
    "teams": declared(
        text=("team_key", "name", "creator", "billing_admin"),
        bool=("sharing_restricted_to_team", "automatically_approve_join_requests",
              "automatically_send_invoice_emails"),
        timestamp=("creation_date", "last_saved_timestamp"),
        json=("emails_to_send_invoice_to", "contact_org_list_permissions", "contact_settings",
              "organization_settings"),
    ),
    "team_members": declared(
        text=("team_key", "user_key", "full_name", "display_name", "given_name", "email", "role", "invite_status",
              "image", "user_type", "email_sharing"),
        timestamp=("invite_date",),
    ),
    "pipelines": declared(
        text=("pipeline_key", "name", "description", "icon", "team_key", "creator_key", "stage_color_theme",
              "default_permission_set_name", "creation_source_type"),
        bigint=("box_count", "box_count_hint", "stage_count", "field_count"),
        bool=("sharing_restricted_to_team", "team_wide"),
        timestamp=("creation_timestamp", "last_updated_timestamp", "last_saved_timestamp",
                   "formulas_last_updated_timestamp"),
        json=("stage_order", "acl_entries", "custom_permission_sets"),
    ),
    "stages": declared(
        text=("pipeline_key", "stage_key", "name", "foreground_color", "background_color"),
        bigint=("stage_order", "box_count"),
        bool=("is_color_from_theme",),
    ),
    "pipeline_fields": declared(
        text=("pipeline_key", "field_key", "name", "type", "default_value"),
        bigint=("field_order",),
        timestamp=("last_updated_timestamp", "last_default_value_updated_timestamp"),
        json=("ai_settings",),
    ),
    "pipeline_field_options": declared(
        text=("pipeline_key", "field_key", "option_key", "label", "option_kind"),
        bigint=("option_order",),
    ),
    "pipeline_newsfeed": _NEWSFEED,
    "box_newsfeed": _NEWSFEED,
    "snippets": declared(
        text=("snippet_key", "snippet_name", "snippet_text", "snippet_type", "user_key"),
        bool=("part_of_pipeline",),
        timestamp=("creation_date",),
    ),
    "contacts": declared(
        text=("contact_key", "team_key", "full_name", "given_name", "family_name", "title", "other",
              "linkedin_handle", "twitter_handle", "photo_url", "creator_key", "last_saved_user_key"),
        timestamp=_PEOPLE_TIMES,
        json=("email_addresses", "phone_numbers", "addresses", "domains", "normalized_domains", "contact_links",
              "org_links", "fields"),
    ),
    "organizations": declared(
        text=("organization_key", "team_key", "name", "industry", "employee_count", "other", "logo_url",
              "creator_key", "last_saved_user_key"),
        timestamp=_PEOPLE_TIMES,
        json=("domains", "normalized_domains", "phone_numbers", "addresses", "contact_links", "org_links", "fields"),
    ),
    "boxes": declared(
        text=("box_key", "pipeline_key", "name", "stage_key", "stage_name", "owner_name", "owner_email",
              "assigned_to_names", "assigned_to_emails", "creator_key", "creator_name", "notes",
              "creation_source_type", "first_email_from", "last_email_from", "last_touchpoint_type"),
        bigint=("task_total", "task_complete_count", "task_incomplete_count", "task_overdue_count",
                "gmail_thread_count", "total_number_of_emails", "total_number_of_sent_emails",
                "total_number_of_received_emails", "total_number_of_sent_emails_views",
                "total_number_of_last_sent_email_views", "total_number_of_last_sent_email_links_clicks",
                "comment_count", "call_log_count", "meeting_notes_count", "total_call_log_duration",
                "total_meeting_notes_duration", "file_count", "follower_count"),
        double=("freshness", "task_percentage_complete"),
        timestamp=("creation_timestamp", "last_updated_timestamp", "last_saved_timestamp",
                   "last_stage_change_timestamp", "first_email_timestamp", "last_email_updated_timestamp",
                   "first_email_received_timestamp", "last_email_received_timestamp", "first_email_sent_timestamp",
                   "last_email_sent_timestamp", "last_comment_timestamp", "soonest_task_due_date",
                   "earliest_overdue_task_due_date", "first_call_log_timestamp", "most_recent_call_log_timestamp",
                   "first_meeting_notes_timestamp", "most_recent_meeting_notes_timestamp",
                   "last_touchpoint_timestamp", "most_recent_sent_emails_views_timestamp",
                   "most_recent_last_sent_email_views_timestamp"),
        json=("fields", "assigned_to_sharing_entries", "creator_sharing_entry", "follower_keys",
              "follower_sharing_entries", "linked_box_keys", "contacts", "organizations", "email_addresses",
              "email_addresses_auto_extracted", "email_addresses_blacklist", "task_assignee_key_set",
              "incomplete_task_assignee_key_set", "overdue_task_assignee_key_set", "task_assignee_sharing_entry_set",
              "incomplete_task_assignee_sharing_entry_set", "overdue_task_assignee_sharing_entry_set"),
    ),
    "box_tasks": declared(
        text=("task_key", "box_key", "pipeline_key", "text", "status", "reminder_status", "assignee_names",
              "assignee_emails", "creator_key", "creator_name", "meeting_key", "sort_order"),
        bool=("is_draft",),
        timestamp=("creation_date", "due_date", "last_status_change_date", "last_saved_timestamp"),
        json=("actions", "creator", "assigned_to", "creator_sharing_entry", "assigned_to_sharing_entries"),
    ),
    "box_threads": declared(
        text=("thread_key", "box_key", "pipeline_key", "subject", "creator_key", "thread_gmail_id",
              "gmail_thread_key"),
        timestamp=("creation_timestamp", "last_updated_timestamp", "last_email_timestamp"),
        json=("names", "email_addresses", "file_keys", "files"),
    ),
    "box_comments": declared(
        text=("comment_key", "box_key", "pipeline_key", "message", "creator_key", "parent", "newsfeed_entry_key"),
        timestamp=("timestamp", "last_saved_timestamp"),
        json=("mentions", "reaction_summary", "children"),
    ),
    "box_meetings": declared(
        text=("meeting_key", "box_key", "pipeline_key", "meeting_type", "notes", "creator_key"),
        bigint=("duration",),
        bool=("is_draft",),
        timestamp=("creation_date", "start_timestamp", "last_saved_timestamp"),
        json=("task_keys",),
    ),
    "box_files": declared(
        text=("file_key", "box_key", "pipeline_key", "file_name", "main_file_name", "mime_type", "file_type",
              "file_owner"),
        bigint=("size",),
    ),
    "box_task_assignees": {
        "task_key": {"data_type": "text", "nullable": False, "primary_key": True},
        "assignee_id": {"data_type": "text", "nullable": False, "primary_key": True},
        **declared(text=("box_key", "pipeline_key", "user_key", "email", "name")),
    },
    "refresh_basis": {
        "loaded_at": {"data_type": "timestamp", "timezone": True, "nullable": False, "primary_key": True},
        **declared(text=("account_key", "base_url", "mode", "mode_reason", "privacy"),
                   bigint=("layout_version", "basis_format"),
                   timestamp=("last_full_load_at",)),
    },
    "refresh_basis_children": {
        "box_key": {"data_type": "text", "nullable": False, "primary_key": True},
        "child_table": {"data_type": "text", "nullable": False, "primary_key": True},
        **declared(text=("pipeline_key", "fingerprint")),
        "items_json": {"data_type": "text", "nullable": False},
    },
}
"""Table name -> its columns (``box_field_values`` and ``rejected_records`` are declared next to the code
that builds their rows: ``field_values.BOX_FIELD_VALUES_COLUMNS``, ``quarantine.REJECTED_COLUMNS``)."""


_INT64_LIMIT: Final = 2**63


def ready_to_load(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` as its columns can take it (in place; values inside JSON columns stay as they are).

    * NULLs are left out: the row loads the same (its declared columns are NULL where it has no
      value, and a column no row has a value for is not created), and dlt has nothing to warn about;
    * a number too large for a 64-bit integer that came as a float (``1e308`` where Streak promises
      a duration in ms) is kept as its text: dlt would turn it into an integer for a ``bigint``
      column, which no writer can hold, and the whole load would fail. As text it goes to a
      variant column next to the typed one, like any other value of the wrong type.
    """
    for name, value in list(row.items()):
        if value is None:
            del row[name]
        elif isinstance(value, float) and math.isfinite(value) and abs(value) >= _INT64_LIMIT:
            row[name] = repr(value)
    return row
