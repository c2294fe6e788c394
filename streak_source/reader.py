"""Account-level reads made once per run and shared by every resource that needs them.

Several tables come from one response (``/v1/pipelines`` feeds pipelines, stages, fields and the box
listing; team contacts feed the contacts table and the names used to decode TEAM_CONTACT fields), so
each list is fetched at most once, under a lock, whichever resource asks first. That keeps the
number of calls at the minimum whatever order dlt extracts the resources in.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from streak_source import settings
from streak_source.client import StreakClient, StreakNotFound
from streak_source.field_values import NameLookups, Person
from streak_source.settings import ChildEndpoint, PageSizes
from streak_source.transform import child_count, contact_name, person_name

log = logging.getLogger(__name__)

T = TypeVar("T")


class StreakReader:
    """Memoized reads of the account's lists on top of one :class:`StreakClient`."""

    def __init__(self, client: StreakClient, page_sizes: PageSizes, skip_empty_children: bool = True) -> None:
        self.client = client
        self.page_sizes = page_sizes
        self.skip_empty_children = skip_empty_children
        self._cache: dict[tuple[str, ...], Any] = {}
        self._locks: dict[tuple[str, ...], threading.Lock] = {}
        self._guard = threading.Lock()

    def _once(self, key: tuple[str, ...], load: Callable[[], T]) -> T:
        """Run ``load`` at most once per key, even when threads ask at the same time."""
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._cache:
                self._cache[key] = load()
            return self._cache[key]  # type: ignore[no-any-return]

    # -- account-level lists -------------------------------------------------------------------

    def me(self) -> dict[str, Any]:
        return self._once(("me",), lambda: self.client.get_json(settings.ME_PATH))

    def teams(self) -> list[dict[str, Any]]:
        return self._once(("teams",), lambda: _flatten(
            self.client.iter_page_envelopes(settings.TEAMS_PATH, self.page_sizes.teams)
        ))

    def team_users(self, team_key: str) -> list[dict[str, Any]]:
        return self._once(("team_users", team_key), lambda: _flatten(
            self.client.iter_page_envelopes(settings.TEAM_USERS_PATH, self.page_sizes.team_users, team_key=team_key)
        ))

    def pipelines(self) -> list[dict[str, Any]]:
        """Pipelines (objects only: anything else in the list cannot be one)."""
        return self._once(("pipelines",), lambda: [
            p for p in self.client.get_list(settings.PIPELINES_PATH) if isinstance(p, dict)
        ])

    def snippets(self) -> list[dict[str, Any]]:
        return self.client.get_list(settings.SNIPPETS_PATH)

    def contacts(self, team_key: str) -> list[dict[str, Any]]:
        return self._once(("contacts", team_key), lambda: _flatten(
            self.client.iter_cursor_pages(settings.CONTACTS_PATH, self.page_sizes.contacts, team_key=team_key)
        ))

    def organizations(self, team_key: str) -> list[dict[str, Any]]:
        return self._once(("organizations", team_key), lambda: _flatten(
            self.client.iter_cursor_pages(
                settings.ORGANIZATIONS_PATH, self.page_sizes.organizations, team_key=team_key
            )
        ))

    def team_keys(self) -> list[str]:
        return [str(t.get("key") or t.get("teamKey")) for t in self.teams() if t.get("key") or t.get("teamKey")]

    def users(self) -> list[tuple[dict[str, Any], bool]]:
        """Distinct users: you first, then every user of every team; (user, is_me) pairs."""
        me = self.me()
        me_key = me.get("key") or me.get("userKey")
        seen = {me_key}
        result: list[tuple[dict[str, Any], bool]] = [(me, True)]
        for team_key in self.team_keys():
            for user in self.team_users(team_key):
                user_key = user.get("key") or user.get("userKey")
                if user_key not in seen:
                    seen.add(user_key)
                    result.append((user, False))
        return result

    def name_lookups(self) -> NameLookups:
        """Names for decoding PERSON / TEAM_CONTACT / TEAM_ORGANIZATION field values."""

        def build() -> NameLookups:
            people: dict[str, Person] = {}
            for user, _ in self.users():
                key = user.get("key") or user.get("userKey")
                if key:
                    people[str(key)] = Person(name=person_name(user), email=user.get("email"))
            contacts: dict[str, str] = {}
            organizations: dict[str, str] = {}
            for team_key in self.team_keys():
                for contact in self.contacts(team_key):
                    name = contact_name(contact)
                    if contact.get("key") and name:
                        contacts[str(contact["key"])] = name
                for org in self.organizations(team_key):
                    if org.get("key") and isinstance(org.get("name"), str):
                        organizations[str(org["key"])] = org["name"]
            return NameLookups(users=people, contacts=contacts, organizations=organizations)

        return self._once(("name_lookups",), build)

    # -- boxes and their children --------------------------------------------------------------

    def box_pages(self, pipeline: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
        """Pages of a pipeline's boxes. An empty pipeline (``boxCount`` 0) costs no call.

        The box list takes ``page``/``limit``; Streak may answer with the ``{results, hasNextPage}``
        envelope or a plain array. A server that ignored ``page`` would send the same page forever,
        so a page with no box not seen before ends the listing.
        """
        pipeline_key = str(pipeline.get("key") or pipeline.get("pipelineKey"))
        if self.skip_empty_children and pipeline.get("boxCount") == 0:
            return
        seen: set[str] = set()
        for page in self.client.iter_page_envelopes(settings.BOXES_PATH, self.page_sizes.boxes, pipeline_key=pipeline_key):
            fresh = [b for b in page if isinstance(b, dict) and str(b.get("key") or b.get("boxKey")) not in seen]
            if page and not fresh:
                log.warning("GET %s repeated a page for pipeline %s: stopping there", settings.BOXES_PATH, pipeline_key)
                return
            seen.update(str(b.get("key") or b.get("boxKey")) for b in fresh)
            yield fresh

    def needs_call(self, box: dict[str, Any], endpoint: ChildEndpoint) -> bool:
        """False when the box's own counters say the endpoint has nothing for it."""
        if not self.skip_empty_children:
            return True
        count = child_count(box, endpoint.counters)
        return count is None or count > 0

    def box_children(self, box_key: str, endpoint: ChildEndpoint) -> list[dict[str, Any]]:
        """All items of one child endpoint for one box; [] (and a warning) if the box vanished."""
        try:
            if endpoint.paged:
                limit = getattr(self.page_sizes, endpoint.page_size_attr or "", settings.MAX_PAGE_SIZE)
                return _flatten(self.client.iter_page_envelopes(endpoint.path, limit, box_key=box_key))
            return self.client.get_list(endpoint.path, box_key=box_key)
        except StreakNotFound:
            log.warning("box %s is gone (404 on GET %s): its %s are skipped", box_key, endpoint.path, endpoint.table)
            self.client.report.box_vanished(box_key)
            return []

    def pipeline_newsfeed(self, pipeline_key: str) -> list[dict[str, Any]]:
        return self.client.get_list(
            settings.PIPELINE_NEWSFEED_PATH, {"detailLevel": settings.NEWSFEED_DETAIL_LEVEL}, pipeline_key=pipeline_key
        )


def _flatten(pages: Iterator[list[Any]]) -> list[Any]:
    return [item for page in pages for item in page if isinstance(item, dict)]
