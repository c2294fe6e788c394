"""A change of the ``[privacy]`` rules reaches what was kept under the old ones (docs/privacy.md,
"Changing the rules").

The copy is replaced by every run, so it follows the new rules by itself, and the refresh basis is
not reused under other settings (its fingerprint). What is kept across runs is not: the history
tables (``<table>_history``, and ``box_newsfeed``, refilled from its history), ``crm.events`` and
the events spool. Every load records the fingerprint of its policy in ``load_history.privacy``;
when the previous complete load's differs (none recorded: written with nothing protected), the
publishing run applies its policy to the stored values of every kept table, inside the publishing
transaction, before this run's versions are compared with them:

* a catalog column (``streak_source/privacy/catalog.py``) gets its treatment by its shape, exactly
  as the source treats the raw value it was built from (the same walkers, the same keyed hash), so
  an unchanged record compares equal and gets no new version;
* a column computed from one (``DERIVED``: ``boxes.owner_email``, ``box_field_values.value_text``...)
  follows it, each value (or each part of a ``", "``-joined list) as the kind its name says;
* under ``strict``, every other text column has its e-mail addresses hashed, as the source does;
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

from streak_source.privacy import COLUMNS, DERIVED, Kind, PrivacyPolicy, field_kinds, kind_of_name, looks_like_email
from streak_source.privacy.protect import DROPPED, Treatment, protect_shape, sweep_emails
from streak_warehouse.forget_values import json_text_like
from streak_warehouse.history_mode import HISTORY_SUFFIX, TrackedTable
from streak_warehouse.sql import columns_of, qualified, quote_identifier, string_literal
from streak_warehouse.table_rewrite import Execute, TextColumn, rewrite_rows, row_ids

PRIVACY_COLUMN: Final = "privacy"
"""``load_history`` column: the fingerprint of the policy each complete load ran under."""
NONE: Final = "none"

Cell = Callable[[Any, Mapping[str, Any]], Any]
"""A column's protection: (its value, parsed JSON where it is JSON; the row's other values) -> the
protected value or ``DROPPED``."""


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
    """What the treatments of custom fields need, read from the fresh copy."""

    box_fields: Mapping[str, Mapping[str, Kind]]
    """pipeline key -> custom-field key -> kind (by the field's name)."""
    contact_fields: Mapping[str, Kind]
    organization_fields: Mapping[str, Kind]

    def fields_of(self, table: str, row: Mapping[str, Any]) -> Mapping[str, Kind]:
        if table == "contacts":
            return self.contact_fields
        if table == "organizations":
            return self.organization_fields
        return self.box_fields.get(str(row.get("pipeline_key")), {})


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
    return Lookups({pipeline: field_kinds(fields) for pipeline, fields in box_fields.items()},
                   team["contact_settings"], team["organization_settings"])


# --- one column -------------------------------------------------------------------------------------


def _derived(value: Any, kind: Kind | None, treatment: Treatment, hash_: Callable[[Kind, Any], Any]) -> Any:
    """A value computed from a protected column: a string (each part of a ", "-joined list), or a list."""
    if isinstance(value, list):
        items = [_derived(item, kind, treatment, hash_) for item in value]
        return DROPPED if any(item is DROPPED for item in items) else items
    if not isinstance(value, str) or not value:
        return value
    parts = []
    for part in value.split(", "):
        own = kind or ("email" if looks_like_email(part) else None)
        action = treatment.action(own) if own is not None else "keep"
        if action == "drop":
            return DROPPED
        parts.append(hash_(own, part) if action == "hash" and own is not None else part)
    return ", ".join(parts)


def _field_value(policy: PrivacyPolicy, column: str) -> Cell:
    """``box_field_values``: ``value_raw`` as ``boxes.fields`` treats the raw value; the names in
    ``value_text`` / ``value_labels`` as the column they come from (PERSON: the sharing entries,
    TEAM_CONTACT: ``contacts.full_name``, TEAM_ORGANIZATION: ``organizations.name``), a text as its
    field's name says, any e-mail address as one."""
    fields = policy.treatment("boxes.fields")
    by_type = {"PERSON": fields, "TEAM_CONTACT": policy.treatment("contacts.full_name"),
               "TEAM_ORGANIZATION": policy.treatment("organizations.name")}

    def protect(value: Any, row: Mapping[str, Any], lookups: Lookups) -> Any:
        key = str(row.get("field_key"))
        kinds = lookups.fields_of("boxes", row)
        if column == "value_raw":  # the compact JSON text of the raw value
            holder = {key: json.loads(value) if isinstance(value, str) else value}
            protect_shape("fields", holder, COLUMNS["boxes.fields"].kinds, fields, policy.hash, kinds)
            if key not in holder:
                return DROPPED
            return json_text_like(value, holder[key]) if isinstance(value, str) else holder[key]
        field_type = str(row.get("field_type") or "").upper()
        if field_type in by_type:
            return _derived(value, "name", by_type[field_type], policy.hash)
        return _derived(value, kinds.get(key), fields, policy.hash)

    return protect  # type: ignore[return-value]


def cell_protection(policy: PrivacyPolicy, table: str, column: str) -> Callable[..., Any] | None:
    """How ``table.column`` of the copy is protected by ``policy`` (None: it is kept as it is):
    ``protect(value, row, lookups)`` (module doc)."""
    name = f"{table}.{column}"
    if name in COLUMNS:
        catalog, treatment = COLUMNS[name], policy.treatment(name)
        if not treatment.active:
            return None
        return lambda value, row, lookups: protect_shape(catalog.shape, value, catalog.kinds, treatment, policy.hash,
                                                         lookups.fields_of(table, row))
    if name in DERIVED:
        if table == "box_field_values":
            return _field_value(policy, column) if policy.treatment(DERIVED[name]).active or any(
                policy.treatment(n).active for n in ("contacts.full_name", "organizations.name")) else None
        treatment = policy.treatment(DERIVED[name])
        if not treatment.active:
            return None
        kind = kind_of_name(column)
        return lambda value, row, lookups: _derived(value, kind, treatment, policy.hash)
    if policy.email_sweep != "keep":
        return lambda value, row, lookups: sweep_emails(value, policy.email_sweep, policy.hash)
    return None


# --- a history table ---------------------------------------------------------------------------------


def _history_change(policy: PrivacyPolicy, table: TrackedTable, lookups: Lookups,
                    json_columns: set[str]) -> tuple[list[str], Callable[[Mapping[str, str | None]], dict[str, str | None]]]:
    """The columns to read of ``<table>_history`` and the change of one of its rows."""
    protections = {column: cell for column, _ in table.columns if column not in table.key
                   and (cell := cell_protection(policy, table.name, column)) is not None}
    context = [column for column in ("pipeline_key", "field_key", "field_type") if column in dict(table.columns)]

    def change(cells: Mapping[str, str | None]) -> dict[str, str | None]:
        row = {name: cells.get(name) for name in context}
        changed: dict[str, str | None] = {}
        for column, protect in protections.items():
            text = cells.get(column)
            if text is None:
                continue
            value = json.loads(text) if column in json_columns else text
            new = protect(value, row, lookups)
            if new is DROPPED or new is None:
                changed[column] = None
            elif column in json_columns:
                if new != json.loads(text):
                    changed[column] = json_text_like(text, new)
            elif new != text:
                changed[column] = str(new)
        if table.name == "box_field_values" and "value_text" in changed and cells.get("value_number") is not None:
            changed["value_number"] = None  # a number read from a text now protected (a phone's digits)
        return changed

    return [*protections, *context, *(["value_number"] if table.name == "box_field_values" else [])], change


def protect_history(execute: Execute, dataset: str, policy: PrivacyPolicy, tables: Sequence[TrackedTable],
                    driver: str) -> dict[str, int]:
    """Apply ``policy`` to the stored values of every ``<table>_history`` of ``dataset``; rows
    rewritten per history table. Call inside the publishing transaction, before this run's versions."""
    from streak_warehouse.table_rewrite import text_columns

    lookups = read_lookups(execute, dataset)
    present = text_columns(execute, dataset)
    ids = row_ids(driver)
    written: dict[str, int] = {}
    for table in tables:
        if table.history_name not in present:
            continue
        json_columns = {column for column, kind in table.columns if kind == "json"}
        names, change = _history_change(policy, table, lookups, json_columns)
        stored = {c.name: c for c in present[table.history_name]}
        columns = [stored.get(name) or TextColumn(name, "DOUBLE", True) for name in names
                   if name in stored or name in dict(table.columns)]
        if not any(name in stored for name in names):
            continue
        count = rewrite_rows(execute, dataset, table.history_name, columns, change, ids,
                             where=" OR ".join(f"{quote_identifier(c.name)} IS NOT NULL" for c in columns
                                               if c.name in stored))
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


def protect_events(execute: Execute, dataset: str, policy: PrivacyPolicy, driver: str) -> int:
    """Apply ``policy`` to every event stored in ``dataset.events``; rows rewritten (or superseded)."""
    from streak_warehouse.table_rewrite import text_columns

    stored = {c.name: c for c in text_columns(execute, dataset).get("events", [])}
    if not set(EVENT_COLUMNS) <= set(stored):
        return 0
    taken = {str(row[0]) for row in execute(f"SELECT event_key FROM {qualified(dataset, 'events')}")}
    superseded: list[str] = []
    count = rewrite_rows(execute, dataset, "events", [stored[name] for name in EVENT_COLUMNS],
                         event_change(policy, taken, superseded), row_ids(driver))
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
