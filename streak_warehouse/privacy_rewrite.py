"""A change of the ``[privacy]`` rules reaches what was kept under the old ones (docs/privacy.md,
"Changing the rules").

The copy is replaced by every run, so it follows the new rules by itself, and the refresh basis is
not reused under other settings (its fingerprint). What is kept across runs is not: the history
tables (``<table>_history``, and ``box_newsfeed``, refilled from its history), ``crm.events`` and
the events spool. Every load records the fingerprint of its policy in ``load_history.privacy``;
when the previous complete load's differs (none recorded: written with nothing protected), the
publishing run applies its policy to the stored values of every kept table, inside the publishing
transaction, before this run's versions are compared with them:

* every stored version through ``PrivacyPolicy.protect_row`` (the policy's own rule for a row
  already built: catalog columns by their shape, the columns derived from them, the ``strict``
  sweep of e-mail addresses), so an unchanged record compares equal to what the source now writes
  and gets no new version; ``box_field_values``, which the source builds from ``boxes.fields``,
  by :func:`protect_field_value`;
* events as the receiver and the derived events treat them (custom events' ``properties`` and
  ``distinct_id``, the ``api:`` key built from it; a webhook's or derived event's properties as
  its object's fields).

Values already hashed stay as they are and dropped ones are NULL, so applying a policy twice changes
nothing. A rule made weaker (``strict`` -> ``none``) cannot bring back what was hashed or dropped.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from streak_source.field_values import NameLookups, box_field_value_rows
from streak_source.privacy import COLUMNS, DERIVED, Kind, PrivacyPolicy, field_kinds
from streak_source.privacy.protect import protect_shape, sweep_emails
from streak_warehouse.forget_values import json_text_like
from streak_warehouse.history_mode import TrackedTable
from streak_warehouse.sql import columns_of, qualified, string_literal
from streak_warehouse.table_rewrite import Execute, TextColumn, rewrite_rows, row_ids, text_columns

PRIVACY_COLUMN: Final = "privacy"
"""``load_history`` column: the fingerprint of the policy each complete load ran under."""
NONE: Final = "none"

def previous_fingerprint(execute: Execute, dataset: str, run_id: str) -> str | None:
    """The fingerprint of the newest complete load before ``run_id`` in ``dataset`` (``none``: it
    recorded none); None when there was no complete load before."""
    columns = columns_of(execute, dataset, "load_history")
    if not columns:
        return None
    recorded = PRIVACY_COLUMN if PRIVACY_COLUMN in columns else "NULL"
    rows = execute(f"SELECT {recorded} FROM {qualified(dataset, 'load_history')} WHERE outcome = 'ok' "
                   f"AND run_id <> {string_literal(run_id)} ORDER BY finished_at DESC LIMIT 1")
    if not rows:
        return None
    return str(rows[0][0]) if rows[0][0] else NONE


@dataclass(frozen=True)
class Lookups:
    """What the treatments of custom fields need, read from the fresh copy (protected by this run)."""

    box_fields: Mapping[str, Mapping[str, Kind]]
    """pipeline key -> custom-field key -> kind (by the field's name)."""
    contact_fields: Mapping[str, Kind]
    organization_fields: Mapping[str, Kind]
    names: NameLookups = NameLookups()
    """Contact and organization key -> name as this run's copy shows it (TEAM_* field labels)."""

    def fields_of(self, table: str, row: Mapping[str, Any]) -> Mapping[str, Kind]:
        if table == "contacts":
            return self.contact_fields
        if table == "organizations":
            return self.organization_fields
        return self.box_fields.get(str(row.get("pipeline_key")), {})


def _names_by_key(execute: Execute, dataset: str, table: str, key: str, name: str) -> dict[str, str]:
    if not {key, name} <= columns_of(execute, dataset, table):
        return {}
    return {str(k): str(v) for k, v in execute(f"SELECT {key}, {name} FROM {qualified(dataset, table)}")
            if k is not None and v is not None}


def read_lookups(execute: Execute, dataset: str) -> Lookups:
    box_fields: dict[str, list[dict[str, Any]]] = {}
    if {"pipeline_key", "field_key", "name", "type"} <= columns_of(execute, dataset, "pipeline_fields"):
        for pipeline, key, name, kind in execute(
                f"SELECT pipeline_key, field_key, name, type FROM {qualified(dataset, 'pipeline_fields')}"):
            box_fields.setdefault(str(pipeline), []).append({"key": key, "name": name, "type": kind})
    team: dict[str, dict[str, Kind]] = {"contact_settings": {}, "organization_settings": {}}
    for column in [name for name in team if name in columns_of(execute, dataset, "teams")]:
        for (text,) in execute(f"SELECT CAST({column} AS VARCHAR) FROM {qualified(dataset, 'teams')}"):
            team[column].update(field_kinds(json.loads(text)) if text else {})
    names = NameLookups(contacts=_names_by_key(execute, dataset, "contacts", "contact_key", "full_name"),
                        organizations=_names_by_key(execute, dataset, "organizations", "organization_key", "name"))
    return Lookups({pipeline: field_kinds(fields) for pipeline, fields in box_fields.items()},
                   team["contact_settings"], team["organization_settings"], names)


# --- box_field_values ---------------------------------------------------------------------------------


REBUILT_TYPES: Final = frozenset({"PERSON", "TEAM_CONTACT", "TEAM_ORGANIZATION", "TEXT_INPUT"})
"""Field types whose decoded columns are rebuilt from the protected raw value by the source's own
decoder (``field_values.box_field_value_rows``): their decoding needs no option lists."""


def protect_field_value(policy: PrivacyPolicy, row: dict[str, Any], kinds: Mapping[str, Kind],
                        names: NameLookups = NameLookups()) -> None:
    """A stored ``box_field_values`` row (``PrivacyPolicy.protect_row`` leaves it alone: the source
    builds it from ``boxes.fields``), in place: ``value_raw`` as ``boxes.fields`` treats the raw
    value (``kinds``: the field kinds of the box's pipeline); then ``value_text``, ``value_labels``
    and ``value_number`` decoded from it again as the source decodes them (a PERSON value's names
    from its protected sharing entries, a TEAM_CONTACT's from ``names``: this run's protected
    contacts); other types (dropdowns, tags) keep their labels, e-mail addresses in them treated as
    ``boxes.fields`` treats them."""
    fields = policy.treatment("boxes.fields")
    key, field_type = str(row.get("field_key")), str(row.get("field_type") or "").upper()
    raw = row.get("value_raw")
    if not isinstance(raw, str) or not raw:
        return
    holder = {key: json.loads(raw)}
    protect_shape("fields", holder, COLUMNS["boxes.fields"].kinds, fields, policy.hash, kinds)
    if key not in holder:  # the whole value dropped: the source writes no row for it
        row.update({name: None for name in ("value_raw", "value_text", "value_labels", "value_number") if name in row})
        return
    row["value_raw"] = json_text_like(raw, holder[key])
    if field_type in REBUILT_TYPES:
        definition = {key: {"key": key, "name": row.get("field_name"), "type": field_type}}
        decoded = box_field_value_rows({"fields": holder}, definition, names)[0]
        row.update({name: decoded[name] for name in ("value_text", "value_labels", "value_number") if name in row})
        return
    for column in [name for name in ("value_text", "value_labels") if name in row]:
        row[column] = sweep_emails(row[column], fields.action("email"), policy.hash)


def _touches(policy: PrivacyPolicy, table: str) -> bool:
    """Whether ``policy`` changes anything stored in ``table`` (else its history is not read)."""
    if policy.email_sweep != "keep":
        return True
    names = [c.name for c in COLUMNS.values() if c.table == table]
    names += [followed for derived, followed in DERIVED.items() if derived.startswith(table + ".")]
    if table == "box_field_values":
        names += ["contacts.full_name", "organizations.name"]
    return any(policy.treatment(name).active for name in names)


# --- a history table ---------------------------------------------------------------------------------


def _history_change(policy: PrivacyPolicy, table: TrackedTable, lookups: Lookups,
                    json_columns: set[str]) -> Callable[[Mapping[str, str | None]], dict[str, str | None]]:
    """The change of one stored version of ``table``: ``PrivacyPolicy.protect_row`` (and
    :func:`protect_field_value`) on its values, the cells that differ as text again."""

    def change(cells: Mapping[str, str | None]) -> dict[str, str | None]:
        def parsed(name: str, text: str | None) -> Any:
            return json.loads(text) if text is not None and name in json_columns else text

        row = {name: parsed(name, text) for name, text in cells.items()}
        policy.protect_row(table.name, row, lookups.fields_of(table.name, row))
        if table.name == "box_field_values":
            protect_field_value(policy, row, lookups.fields_of("boxes", row), lookups.names)
        changed: dict[str, str | None] = {}
        for name, text in cells.items():
            value = row.get(name)
            if value == parsed(name, text) or (name == "value_number" and value is not None and text is not None
                                                 and float(value) == float(text)):
                continue
            if value is None:
                changed[name] = None
            elif name in json_columns:
                changed[name] = json_text_like(text, value) if text is not None else json.dumps(value)
            else:
                changed[name] = str(value)
        return changed

    return change


def protect_history(execute: Execute, dataset: str, policy: PrivacyPolicy, tables: Sequence[TrackedTable],
                    driver: str, native: Any = None) -> dict[str, int]:
    """Apply ``policy`` to the stored values of every ``<table>_history`` of ``dataset``; rows
    rewritten per history table. Call inside the publishing transaction, before this run's versions
    (``native``: the DuckDB connection behind ``execute``, for its fast path)."""
    lookups = read_lookups(execute, dataset)
    present = text_columns(execute, dataset)
    ids = row_ids(driver, native)
    written: dict[str, int] = {}
    for table in tables:
        if table.history_name not in present or not _touches(policy, table.name):
            continue
        json_columns = {column for column, kind in table.columns if kind == "json"}
        columns = [c for c in present[table.history_name] if c.name in dict(table.columns)]
        if table.name == "box_field_values" and "value_number" in dict(table.columns):
            columns.append(TextColumn("value_number", "DOUBLE", True))
        count = rewrite_rows(execute, dataset, table.history_name, columns,
                             _history_change(policy, table, lookups, json_columns), ids)
        if count:
            written[table.history_name] = count
    return written


# --- events ------------------------------------------------------------------------------------------


def protected_event(policy: PrivacyPolicy, event: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of one event (``event_key``, ``event_name``, ``source``, ``distinct_id``,
    ``properties`` as an object) that ``policy`` changes, with their new values."""
    from streak_warehouse.derived_events import KINDS as DERIVED_KINDS

    properties = event.get("properties")
    if not isinstance(properties, dict):
        return {}
    distinct_id, name = event.get("distinct_id"), str(event.get("event_name"))
    if event.get("source") == "api":
        new_properties, new_id = policy.protect_custom_event(properties, distinct_id)
    elif event.get("source") == "derived":
        tables = {kind.event: kind.table for kind in DERIVED_KINDS}
        new_properties, new_id = policy.protect(tables.get(name), json.loads(json.dumps(properties))), distinct_id
    else:
        new_properties, new_id = policy.protect_webhook_object(name, json.loads(json.dumps(properties))), distinct_id
    changed: dict[str, Any] = {}
    if new_properties != properties:
        changed["properties"] = new_properties
    if new_id != distinct_id:
        changed["distinct_id"] = new_id
        if event.get("event_key") == f"api:{distinct_id}":
            changed["event_key"] = f"api:{new_id}"
    return changed


EVENT_COLUMNS: Final = ("event_key", "event_name", "source", "distinct_id", "properties")


def event_change(policy: PrivacyPolicy, taken: set[str], superseded: list[str]) -> Callable[
        [Mapping[str, str | None]], dict[str, str | None]]:
    """The change of one stored event's text cells (:data:`EVENT_COLUMNS`). A custom event's key
    follows its hashed ``distinct_id``; when an event already holds that key (the same id, sent
    again under the new rules), the old one is superseded: its key goes to ``superseded`` for the
    caller to delete. ``taken``: every key there is (kept up to date)."""

    def change(cells: Mapping[str, str | None]) -> dict[str, str | None]:
        text = cells.get("properties")
        try:
            properties = json.loads(text) if text else None
        except ValueError:
            return {}
        new = protected_event(policy, {**cells, "properties": properties})
        key = new.get("event_key")
        if key is not None:
            if key in taken:
                superseded.append(str(cells["event_key"]))
                return {}
            taken.add(key)
        changed: dict[str, str | None] = {name: value for name, value in new.items() if name != "properties"}
        if "properties" in new and text is not None:
            changed["properties"] = json_text_like(text, new["properties"])
        return changed

    return change


def protect_events(execute: Execute, dataset: str, policy: PrivacyPolicy, driver: str, native: Any = None) -> int:
    """Apply ``policy`` to every event stored in ``dataset.events``; rows rewritten (or superseded)."""
    stored = {c.name: c for c in text_columns(execute, dataset).get("events", [])}
    if not set(EVENT_COLUMNS) <= set(stored):
        return 0
    taken = {str(row[0]) for row in execute(f"SELECT event_key FROM {qualified(dataset, 'events')}")}
    superseded: list[str] = []
    count = rewrite_rows(execute, dataset, "events", [stored[name] for name in EVENT_COLUMNS],
                         event_change(policy, taken, superseded), row_ids(driver, native))
    for start in range(0, len(superseded), 500):
        keys = ", ".join(string_literal(key) for key in superseded[start:start + 500])
        execute(f"DELETE FROM {qualified(dataset, 'events')} WHERE event_key IN ({keys})")
    return count + len(superseded)


def protect_pending(policy: PrivacyPolicy, rows: Sequence[dict[str, Any]], rejected: Sequence[Any]) -> None:
    """Spooled events about to be merged (``crm.events`` rows, and the raw rows of those that cannot
    be loaded), protected in place: the spool may hold them as received under other rules."""
    for row in rows:
        row.update(protected_event(policy, row))
    for event in rejected:
        raw = getattr(event, "raw", None)
        if isinstance(raw, dict):
            raw.update(event_change(policy, set(), [])({name: raw.get(name) for name in EVENT_COLUMNS}))
