"""Find any entity of the account by its key, for the single-object routes (``v2/tasks/{key}``...).

Indexes are built on first use, so an account that is only listed never pays for them. A path
key is first checked for its FORM (400 ``Illegal Argument Exception`` when it cannot be a key of
that kind, as Streak answers), then looked up (404 ``existing entity does not exist``).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from functools import cached_property
from typing import Final, Protocol, TypeVar

from .keys import is_well_formed_key
from .model import (
    Account,
    Box,
    Comment,
    Contact,
    File,
    Meeting,
    NewsfeedEntry,
    Organization,
    Snippet,
    Task,
    Thread,
)


class _Keyed(Protocol):
    key: str


T = TypeVar("T", bound=_Keyed)

_NUMERIC: Final = re.compile(r"^[0-9]{1,18}$")
_TEAM_ENTITY: Final = re.compile(r"^(TeamContact|TeamOrganization),~~streaklongid~~[0-9]+$")


def is_numeric_key(key: str) -> bool:
    """Stage and field keys: short numeric strings (``"5001"``, ``"1001"``)."""
    return bool(_NUMERIC.match(key))


def is_team_entity_key(key: str) -> bool:
    """Newer contact/organization keys: base64 of ``TeamContact,~~streaklongid~~<n>``."""
    try:
        text = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return False
    return bool(_TEAM_ENTITY.match(text))


KEY_FORMS: Final[dict[str, Callable[[str], bool]]] = {
    "stage_key": is_numeric_key,
    "field_key": is_numeric_key,
    "contact_key": is_team_entity_key,
    "organization_key": is_team_entity_key,
}
"""Path parameter -> what a well-formed key of that kind looks like (default: a datastore key)."""


def is_well_formed(param: str, key: str) -> bool:
    return KEY_FORMS.get(param, is_well_formed_key)(key)


class Lookups:
    """Key -> (entity, its box) for every kind a single-object route serves."""

    def __init__(self, account: Account) -> None:
        self.account = account

    def _children(self, pick: Callable[[Box], list[T]]) -> dict[str, tuple[T, Box]]:
        found: dict[str, tuple[T, Box]] = {}
        for box in self.account.all_boxes():
            for item in pick(box):
                found[item.key] = (item, box)
        return found

    @cached_property
    def tasks(self) -> dict[str, tuple[Task, Box]]:
        return self._children(lambda b: b.tasks)

    @cached_property
    def threads(self) -> dict[str, tuple[Thread, Box]]:
        return self._children(lambda b: b.threads)

    @cached_property
    def comments(self) -> dict[str, tuple[Comment, Box]]:
        return self._children(lambda b: b.comments)

    @cached_property
    def meetings(self) -> dict[str, tuple[Meeting, Box]]:
        return self._children(lambda b: b.meetings)

    @cached_property
    def files(self) -> dict[str, tuple[File, Box]]:
        return self._children(lambda b: b.files)

    @cached_property
    def contacts(self) -> dict[str, Contact]:
        return {c.key: c for team in self.account.contacts.values() for c in team}

    @cached_property
    def organizations(self) -> dict[str, Organization]:
        return {o.key: o for team in self.account.organizations.values() for o in team}

    @cached_property
    def snippets(self) -> dict[str, Snippet]:
        return {s.key: s for s in self.account.snippets}

    @cached_property
    def box_events(self) -> dict[str, list[NewsfeedEntry]]:
        """Box key -> its newsfeed events, newest first."""
        events: dict[str, list[NewsfeedEntry]] = {}
        for pipeline in self.account.pipelines:
            for entry in pipeline.events:
                if entry.box_key is not None:
                    events.setdefault(entry.box_key, []).append(entry)
        return events

    @cached_property
    def all_events(self) -> list[NewsfeedEntry]:
        """Every event of every pipeline, newest first (the user-wide newsfeed's source)."""
        merged = [e for p in self.account.pipelines for e in p.events]
        merged.sort(key=lambda e: (e.timestamp, e.key), reverse=True)
        return merged
