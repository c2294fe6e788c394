"""The walkers that protect values in place inside a raw Streak object, one per catalog ``shape``
(streak_source/privacy/catalog.py). Pure: they take the column's :class:`Treatment` and a hashing
function, no configuration, no I/O.

Each returns the protected value, or :data:`DROPPED` when the whole value is to go (the caller then
removes the key, so the column is NULL).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from streak_source.privacy.catalog import PERSON_KEYS, Shape, kind_of_name
from streak_source.privacy.hashing import Kind, looks_like_email

__all__ = ["ACTIONS", "DROPPED", "Action", "FieldKinds", "Treatment", "protect_shape", "sweep_emails"]

Action = Literal["hash", "drop", "keep"]
ACTIONS: Final[tuple[Action, ...]] = ("hash", "drop", "keep")

FieldKinds = Mapping[str, Kind]
"""Custom-field key -> the kind of personal value the field holds (by its name; see
:func:`streak_source.privacy.policy.field_kinds`)."""

Hash = Callable[[Kind, Any], Any]


class _Dropped:
    def __repr__(self) -> str:
        return "DROPPED"


DROPPED: Final = _Dropped()


@dataclass(frozen=True)
class Treatment:
    """What happens to one column: all of it dropped, or each kind of value in it hashed, dropped or kept."""

    drop_all: bool = False
    by_kind: Mapping[Kind, Action] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.drop_all or any(action != "keep" for action in self.by_kind.values())

    def action(self, kind: Kind) -> Action:
        return "drop" if self.drop_all else self.by_kind.get(kind, "keep")

    def describe(self) -> str:
        """``hash``, ``drop``, ``keep`` or, for a column of several kinds, ``hash email, name; drop url``."""
        if self.drop_all:
            return "drop"
        actions = set(self.by_kind.values())
        if len(actions) <= 1:
            return next(iter(actions), "keep")
        return "; ".join(f"{action} {', '.join(k for k, a in self.by_kind.items() if a == action)}"
                         for action in ACTIONS if action in actions)


def protect_shape(shape: Shape, value: Any, kinds: tuple[Kind, ...], treatment: Treatment, hash_: Hash,
                  field_kinds: FieldKinds | None = None) -> Any:
    """``value`` (found at a column's path) protected by the column's ``treatment``."""
    if treatment.drop_all:
        return DROPPED
    if shape == "value":
        return _values(value, kinds[0], treatment, hash_)
    if shape == "people":
        return _people(value, treatment, hash_)
    if shape == "fields":
        return _fields(value, field_kinds or {}, treatment, hash_)
    if shape in ("variables", "free"):
        return _by_key_names(value, treatment, hash_)
    if shape == "emails_only":
        return _one(value, "email", treatment, hash_) if looks_like_email(value) else value
    raise ValueError(f"unknown shape {shape!r}")


def sweep_emails(value: Any, action: Action, hash_: Hash) -> Any:
    """``value`` with every string in it that is an e-mail address hashed (or dropped), at any depth."""
    if action == "keep":
        return value
    if isinstance(value, str):
        return value if not looks_like_email(value) else (hash_("email", value) if action == "hash" else None)
    if isinstance(value, list):
        return [sweep_emails(item, action, hash_) for item in value]
    if isinstance(value, dict):
        for name, item in value.items():
            if isinstance(item, (str, list, dict)):
                value[name] = sweep_emails(item, action, hash_)
    return value


def _one(value: Any, kind: Kind, treatment: Treatment, hash_: Hash) -> Any:
    """A single value of ``kind``; objects and lists inside are swept for e-mail addresses."""
    action = treatment.action(kind)
    if action == "keep" or value is None:
        return value
    if isinstance(value, (dict, list)):
        if action == "drop":
            return DROPPED
        return sweep_emails(value, treatment.action("email") if "email" in treatment.by_kind else action, hash_)
    return DROPPED if action == "drop" else hash_(kind, value)


def _values(value: Any, kind: Kind, treatment: Treatment, hash_: Hash) -> Any:
    """A string of ``kind``, or a list of them (a dropped list goes whole)."""
    if isinstance(value, list):
        if treatment.action(kind) == "drop":
            return DROPPED
        return [_one(item, kind, treatment, hash_) for item in value]
    return _one(value, kind, treatment, hash_)


def _people(value: Any, treatment: Treatment, hash_: Hash) -> Any:
    """Sharing entries / user briefs: each known key by its kind, nested lists and objects (a
    reaction's ``users``) walked, a bare string an e-mail address or a name."""
    if isinstance(value, list):
        kept = [_people(item, treatment, hash_) for item in value]
        return [item for item in kept if item is not DROPPED]
    if isinstance(value, str):
        return _one(value, "email" if looks_like_email(value) else "name", treatment, hash_)
    if not isinstance(value, dict):
        return value
    for name in list(value):
        item = value[name]
        kind = PERSON_KEYS.get(name)
        if kind is not None and not isinstance(item, (dict, list)):
            protected = _one(item, kind, treatment, hash_)
        elif isinstance(item, (dict, list)):
            protected = _people(item, treatment, hash_)
        else:
            protected = sweep_emails(item, treatment.action("email"), hash_)
        _store(value, name, protected)
    return value


def _is_person(value: Any) -> bool:
    """A PERSON field value: a sharing-entry object, or a list holding one."""
    if isinstance(value, list):
        return any(_is_person(item) for item in value)
    return isinstance(value, dict) and any(PERSON_KEYS.get(name) in ("email", "name") for name in value)


def _fields(value: Any, field_kinds: FieldKinds, treatment: Treatment, hash_: Hash) -> Any:
    """A custom-field map (or the ``[{key, value}]`` list of the per-box fields endpoint)."""
    if isinstance(value, list):
        for entry in value:
            if isinstance(entry, dict) and "value" in entry:
                protected = _field(str(entry.get("key")), entry["value"], field_kinds, treatment, hash_)
                if protected is DROPPED:
                    del entry["value"]
                else:
                    entry["value"] = protected
        return value
    if not isinstance(value, dict):
        return sweep_emails(value, treatment.action("email"), hash_)
    for key in list(value):
        protected = _field(str(key), value[key], field_kinds, treatment, hash_)
        if protected is DROPPED:
            del value[key]
        else:
            value[key] = protected
    return value


def _field(key: str, value: Any, field_kinds: FieldKinds, treatment: Treatment, hash_: Hash) -> Any:
    if _is_person(value):
        return _people(value, treatment, hash_)
    kind = field_kinds.get(key)
    if kind is not None:
        return _values(value, kind, treatment, hash_)
    return sweep_emails(value, treatment.action("email"), hash_)


def _by_key_names(value: Any, treatment: Treatment, hash_: Hash) -> Any:
    """Variables / free-form properties: each key's kind from its name, nested objects walked,
    e-mail addresses anywhere."""
    if isinstance(value, list):
        return [_by_key_names(item, treatment, hash_) for item in value]
    if not isinstance(value, dict):
        return sweep_emails(value, treatment.action("email"), hash_)
    for name in list(value):
        item = value[name]
        kind = kind_of_name(str(name))
        nested = isinstance(item, dict) or (isinstance(item, list) and any(isinstance(x, (dict, list)) for x in item))
        if kind is not None and nested:
            protected = _all_leaves(item, kind, treatment, hash_)
        elif kind is not None:
            protected = _values(item, kind, treatment, hash_)
        elif nested:
            protected = _by_key_names(item, treatment, hash_)
        else:
            protected = sweep_emails(item, treatment.action("email"), hash_)
        _store(value, name, protected)
    return value


def _all_leaves(value: Any, kind: Kind, treatment: Treatment, hash_: Hash) -> Any:
    """An object or list under a key that names ``kind``: dropped whole, kept, or every string and
    number in it hashed as that kind."""
    action = treatment.action(kind)
    if action != "hash":
        return DROPPED if action == "drop" else value
    if isinstance(value, list):
        return [_all_leaves(item, kind, treatment, hash_) for item in value]
    if isinstance(value, dict):
        return {name: _all_leaves(item, kind, treatment, hash_) for name, item in value.items()}
    return hash_(kind, value) if value is not None and not isinstance(value, bool) else value


def _store(obj: dict[Any, Any], name: Any, protected: Any) -> None:
    """``protected`` in place of ``obj[name]``; a dropped value leaves no key behind."""
    if protected is DROPPED:
        del obj[name]
    else:
        obj[name] = protected
