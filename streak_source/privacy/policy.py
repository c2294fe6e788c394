"""The run's privacy policy: the settings resolved against the catalog, applied to raw Streak
objects as soon as they are read (docs/privacy.md).

:class:`PrivacyPolicy` knows, for every catalog column, its :class:`Treatment` (the preset's, or the
column's rule), and protects a raw object *in place*: the source's reader calls
:meth:`PrivacyPolicy.protect_items` on every answer before it is cached, built into rows, kept in
the refresh basis or rejected; the events receiver calls :meth:`protect_webhook_object` and
:meth:`protect_custom_event` before its spool is written. :meth:`protect_row` protects a row of the
copy already built (what rewriting kept tables under new settings needs). With preset ``none`` and no rules the
policy is inactive and returns everything untouched, at no cost.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from typing import Any, Final

from streak_source.privacy.catalog import (
    CATALOG, COLUMNS, DERIVED, DERIVED_KINDS, Column, kind_of_name, source_of_webhook,
)
from streak_source.privacy.hashing import Hasher, Kind
from streak_source.privacy.protect import DROPPED, Action, FieldKinds, Treatment, protect_shape, sweep_emails
from streak_source.privacy.settings import MIN_SALT_CHARS, PrivacyConfigError, PrivacySettings, checked_settings

__all__ = ["KEEP", "NO_PRIVACY", "PRESET_ACTIONS", "PrivacyPolicy", "field_kinds", "policy_from"]

PRESET_ACTIONS: Final[Mapping[Kind, Action]] = {"email": "hash", "phone": "hash", "name": "hash", "text": "drop",
                                               "url": "drop"}
"""What a preset does to each kind of value in the columns it covers: identifiers are hashed (they
still join and count), text people wrote and photos are dropped (a hash of a paragraph is no use)."""

KEEP: Final = Treatment()


def _preset_covers(preset: str, column: Column) -> bool:
    return preset == "strict" or (preset == "contacts" and column.scope == "contacts")


def _treatment(preset: str, rule: Action | None, column: Column) -> Treatment:
    if rule == "drop":
        return Treatment(drop_all=True)
    if rule is not None:
        return Treatment(by_kind=dict.fromkeys(column.kinds, rule))
    if not _preset_covers(preset, column):
        return KEEP
    by_kind = {kind: PRESET_ACTIONS[kind] for kind in column.kinds}
    return Treatment(drop_all=all(action == "drop" for action in by_kind.values()), by_kind=by_kind)


def field_kinds(definitions: Any) -> dict[str, Kind]:
    """Custom-field key -> kind, for the text fields whose name says e-mail, phone, name or notes.

    ``definitions``: a pipeline's ``fields`` list, or a team's ``contactSettings`` /
    ``organizationSettings`` (``{"fields": {key: {name, type}}}``). Only text fields count (a
    DROPDOWN named "Source" holds option keys; PERSON values are recognised by their shape)."""
    if isinstance(definitions, Mapping):
        definitions = definitions.get("fields")
    if isinstance(definitions, Mapping):
        definitions = [{"key": key, **value} for key, value in definitions.items() if isinstance(value, Mapping)]
    kinds: dict[str, Kind] = {}
    for definition in definitions if isinstance(definitions, list) else []:
        if not isinstance(definition, Mapping) or not isinstance(definition.get("name"), str):
            continue
        if str(definition.get("type", "TEXT_INPUT")).upper() not in ("TEXT_INPUT", "TEXT", "TEXT_AREA"):
            continue
        kind = kind_of_name(definition["name"])
        if kind is not None and definition.get("key") is not None:
            kinds[str(definition["key"])] = kind
    return kinds


class PrivacyPolicy:
    """The treatments of one configuration, and the functions that apply them (module doc)."""

    def __init__(self, settings: PrivacySettings) -> None:
        self.settings = settings
        self.preset = settings.preset
        self.treatments: dict[str, Treatment] = {
            column.name: _treatment(settings.preset, settings.rules.get(column.name), column) for column in CATALOG}
        self.active = any(treatment.active for treatment in self.treatments.values())
        hashes = [name for name, t in self.treatments.items() if any(a == "hash" for a in t.by_kind.values())
                  and not t.drop_all]
        if hashes and settings.salt is None:
            raise PrivacyConfigError(f"[privacy] salt is missing: {hashes[0]} (and {len(hashes) - 1} more) are hashed "
                                     "with it; set salt under [privacy] in .dlt/secrets.toml or env PRIVACY__SALT")
        if hashes and settings.salt is not None and len(settings.salt) < MIN_SALT_CHARS:
            raise PrivacyConfigError(f"[privacy] salt (env PRIVACY__SALT) is too short: at least {MIN_SALT_CHARS} "
                                     "characters (python -c \"import secrets; print(secrets.token_hex(32))\")")
        self._hasher = Hasher(settings.salt) if settings.salt else None
        self._email_sweep: Action = self.treatments["boxes.email_addresses"].action("email") \
            if settings.preset == "strict" else "keep"
        """Under ``strict``, e-mail addresses in fields the catalog does not name (newer than it) are hashed too."""
        self._by_source: dict[str, list[tuple[Column, Treatment]]] = {}
        self._known_keys: dict[str, set[str]] = {}
        for column in CATALOG:
            self._known_keys.setdefault(column.source, set()).update(path[0] for path in column.paths)
            if self.treatments[column.name].active:
                self._by_source.setdefault(column.source, []).append((column, self.treatments[column.name]))

    # -- what it does ------------------------------------------------------------------------------

    def treatment(self, name: str) -> Treatment:
        """The treatment of catalog column ``table.column`` (KeyError for another name)."""
        return self.treatments[name]

    @property
    def email_sweep(self) -> Action:
        """What happens to an e-mail address in a field the catalog does not name (``keep`` unless
        ``strict``): a rewrite of stored values (``streak_warehouse/privacy_rewrite.py``) does the same."""
        return self._email_sweep

    def protected(self) -> dict[str, Treatment]:
        """Every column something happens to, by ``table.column``."""
        return {name: t for name, t in self.treatments.items() if t.active}

    @property
    def fingerprint(self) -> str:
        """A digest of what the policy does (every active treatment, and the salt by an HMAC of a
        constant, never the salt itself): equal fingerprints protect equal values equally."""
        if not self.active:
            return "none"
        described = {name: [t.drop_all, sorted(t.by_kind.items())] for name, t in self.protected().items()}
        salt = (hmac.new(self.settings.salt.encode(), b"streak privacy salt check", hashlib.sha256).hexdigest()[:16]
                if self.settings.salt else None)
        text = json.dumps([described, self._email_sweep, salt], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def summary_line(self) -> str:
        """One line for the run's progress output."""
        if not self.active:
            return "privacy: off (preset none): personal data is copied as Streak holds it"
        protected = self.protected()
        hashed = sum(1 for t in protected.values() if not t.drop_all and "hash" in t.by_kind.values())
        dropped = sum(1 for t in protected.values() if t.drop_all)
        return (f"privacy: preset {self.preset}" + (f" + {len(self.settings.rules)} rule(s)" if self.settings.rules
                else "") + f": {hashed} columns hashed, {dropped} dropped, before anything is written")

    def hash(self, kind: Kind, value: Any) -> Any:
        """``value`` as this policy hashes a ``kind`` (``forget`` finds a person's hashed rows by it)."""
        if self._hasher is None:
            raise PrivacyConfigError("[privacy] salt is missing: nothing can be hashed without it")
        return self._hasher.hash(kind, value)

    # -- applying it -------------------------------------------------------------------------------

    def protect(self, source: str | None, obj: Any, field_kinds: FieldKinds | None = None) -> Any:
        """``obj`` (a raw object of ``source``, e.g. ``boxes``; None: a source the catalog does not
        know) with its personal values protected, in place; ``field_kinds`` for its custom fields."""
        if not self.active or not isinstance(obj, dict):
            return obj
        for column, treatment in self._by_source.get(source or "", ()):
            for path in column.paths:
                _at_path(obj, path, lambda value, c=column, t=treatment: protect_shape(
                    c.shape, value, c.kinds, t, self._hash, field_kinds))
        if self._email_sweep != "keep":
            known = self._known_keys.get(source or "", set())
            for name, value in obj.items():
                if name not in known and isinstance(value, (str, list, dict)):
                    obj[name] = sweep_emails(value, self._email_sweep, self._hash)
        return obj

    def protect_items(self, source: str | None, items: Iterable[Any], field_kinds: FieldKinds | None = None) -> list[Any]:
        """Every item of an answer protected (:meth:`protect`). An item that is not an object (a stray
        string in a list of contacts, kept in ``rejected_records``) is hashed as a name where its
        source holds personal data."""
        items = items if isinstance(items, list) else list(items)
        if not self.active:
            return items
        holds_people = bool(self._by_source.get(source or "")) or self._email_sweep != "keep"
        for index, item in enumerate(items):
            if isinstance(item, dict):
                self.protect(source, item, field_kinds)
            elif holds_people and item is not None and not isinstance(item, bool):
                items[index] = self._hash("email" if isinstance(item, str) and "@" in item else "name", item)
        return items

    def protect_webhook_object(self, event: str, obj: Any) -> Any:
        """A delivered object of Streak webhook ``event`` (``BOX_CHANGE_STAGE``...), protected as its
        table's objects are, before anything is taken from it."""
        return self.protect(source_of_webhook(event), obj)

    def protect_custom_event(self, properties: Mapping[str, Any], distinct_id: str | None) -> tuple[dict[str, Any], str | None]:
        """A custom event's ``properties`` and ``distinct_id`` as ``events.properties`` and
        ``events.distinct_id`` say."""
        if not self.active:
            return dict(properties), distinct_id
        protected = {"properties": dict(properties), "distinct_id": distinct_id}
        self.protect("events", protected)
        return protected.get("properties") or {}, protected.get("distinct_id")

    def protect_row(self, table: str, row: dict[str, Any], field_kinds: FieldKinds | None = None) -> dict[str, Any]:
        """A row of the copy *already built* (a version in a ``*_history`` table, say) protected as
        the same row built from a protected object would be, in place: its catalog columns, named
        as loaded (``display_name``) or as built (``displayName``; JSON columns as parsed values:
        lists, objects), and the columns derived from them
        (:data:`~streak_source.privacy.catalog.DERIVED_KINDS`). A dropped column becomes None.
        ``box_field_values`` rows are not covered: rebuild them from the protected ``boxes.fields``
        (``streak_source.field_values.box_field_value_rows``)."""
        if not self.active:
            return row
        built_from = _contact_name_parts(row) if table == "contacts" else None
        known: set[str] = set()
        for column in CATALOG:
            if column.table != table:
                continue
            names = {column.column, *(path[-1] for path in column.paths)}  # as loaded, or as built (raw names)
            known |= names
            treatment = self.treatments[column.name]
            for name in names:
                if treatment.active and row.get(name) is not None:
                    value = protect_shape(column.shape, row[name], column.kinds, treatment, self._hash, field_kinds)
                    row[name] = None if value is DROPPED else value
        for name, (kind, joined) in DERIVED_KINDS.items():
            derived_table, _, column_name = name.partition(".")
            value = row.get(column_name)
            if derived_table != table or not isinstance(value, str) or not value:
                continue
            action = self.treatments[DERIVED[name]].action(kind)
            if action == "drop":
                row[column_name] = None
            elif action == "hash":
                parts = value.split(", ") if joined else [value]
                row[column_name] = ", ".join(self._hash(kind, part) for part in parts)
        if built_from is not None:  # the name the transform joined from the parts: joined from protected parts
            parts = [row.get(name) for name in built_from]
            row["full_name"] = (" ".join(str(p) for p in parts if p) if len(built_from) == 2
                                else next(iter(parts[0] or []), None)) or None
        if table == "box_task_assignees" and not row.get("user_key"):
            row["assignee_id"] = row.get("email") or row.get("name") or row.get("assignee_id")
        if self._email_sweep != "keep":
            known |= {name.partition(".")[2] for name in DERIVED if name.startswith(table + ".")}
            for name, value in row.items():
                if name not in known and isinstance(value, (str, list, dict)):
                    row[name] = sweep_emails(value, self._email_sweep, self._hash)
        return row

    def _hash(self, kind: Kind, value: Any) -> Any:
        assert self._hasher is not None  # __init__ refused a policy that hashes without a salt
        return self._hasher.hash(kind, value)


def _contact_name_parts(row: Mapping[str, Any]) -> tuple[str, ...] | None:
    """Where a built contact row's ``full_name`` came from, when not from a name Streak sent
    (``people.contact_name``): the given and family name columns, or the addresses column."""
    def pick(*names: str) -> str | None:
        return next((name for name in names if name in row), None)

    given, family = pick("given_name", "givenName"), pick("family_name", "familyName")
    emails = pick("email_addresses", "emailAddresses")
    full = row.get("full_name")
    if not isinstance(full, str) or not full:
        return None
    parts = [row.get(name).strip() for name in (given, family)  # type: ignore[union-attr]
             if name is not None and isinstance(row.get(name), str) and row.get(name).strip()]
    if parts and full == " ".join(parts):
        return tuple(name for name in (given, family) if name is not None and isinstance(row.get(name), str)
                     and row[name].strip())
    addresses = row.get(emails) if emails is not None else None
    if not parts and isinstance(addresses, list) and addresses and full == addresses[0]:
        return (emails,)  # type: ignore[return-value]
    return None


def _at_path(node: Any, path: tuple[str, ...], protect: Any) -> None:
    """Apply ``protect`` to the value at ``path`` in ``node`` (``*``: each item of a list); a
    :data:`DROPPED` result removes the key."""
    head, rest = path[0], path[1:]
    if head == "*":
        for item in node if isinstance(node, list) else ():
            _at_path(item, rest, protect)
        return
    if not isinstance(node, dict) or head not in node:
        return
    if rest:
        _at_path(node[head], rest, protect)
        return
    value = protect(node[head])
    if value is DROPPED:
        del node[head]
    else:
        node[head] = value


def policy_from(preset: Any = None, salt: Any = None, rules: Any = None) -> PrivacyPolicy:
    """The policy of these raw settings (None: not set); raises :class:`PrivacyConfigError`."""
    return PrivacyPolicy(checked_settings(preset, salt, rules))


NO_PRIVACY: Final = PrivacyPolicy(PrivacySettings())
"""Preset ``none``, no rules: everything as Streak holds it."""

assert set(COLUMNS) == {column.name for column in CATALOG}  # no column listed twice
