"""The source's reads: any endpoint of streak_source/settings.py by its paging, the box listing and
a box's children, on top of one :class:`StreakClient` (the HTTP).

Account-level lists are read once per run and shared: several tables come from one response
(``/v1/pipelines`` feeds pipelines, stages, fields and the box listing; team contacts feed the
contacts table and the names used to decode TEAM_CONTACT fields), so each list is fetched at most
once, under a lock, whichever resource asks first. That keeps the number of calls at the minimum
whatever order dlt extracts the resources in.

Every answer goes through the run's privacy policy (streak_source/privacy/) as it arrives, before
it is cached, built into rows, kept in the refresh basis or rejected: what ``[privacy]`` protects
is never held in clear past this point.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import Any, TypeVar, cast

from streak_source import settings
from streak_source.client import StreakClient, StreakNotFound
from streak_source.field_values import NameLookups, Person
from streak_source.keys import as_key, entity_key
from streak_source.people import contact_name, organization_name, person_name
from streak_source.privacy import NO_PRIVACY, PrivacyPolicy, field_kinds, source_of_endpoint
from streak_source.settings import Endpoint, PageSizes
from streak_source.transform import child_count

log = logging.getLogger(__name__)

T = TypeVar("T")


class StreakReader:
    """Memoized reads of the account's lists on top of one :class:`StreakClient`."""

    def __init__(self, client: StreakClient, page_sizes: PageSizes, skip_empty_children: bool = True,
                 privacy: PrivacyPolicy = NO_PRIVACY) -> None:
        self.client = client
        self.page_sizes = page_sizes
        self.skip_empty_children = skip_empty_children
        self.privacy = privacy
        self._cache: dict[tuple[str, ...], Any] = {}
        self._failed: dict[tuple[str, ...], Exception] = {}
        self._locks: dict[tuple[str, ...], threading.Lock] = {}
        self._guard = threading.Lock()
        self._prefetching = False
        self.run_in_background: Callable[[Callable[[], object]], None] = _start_daemon
        """How :meth:`prefetch` starts a read (tests run them in place)."""

    def _once(self, key: tuple[str, ...], load: Callable[[], T]) -> T:
        """Run ``load`` at most once per key, even when threads ask at the same time; a read that
        failed fails the same way for every later asker, without calling again."""
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key in self._failed:
                raise self._failed[key]
            if key not in self._cache:
                try:
                    self._cache[key] = load()
                except Exception as exc:
                    self._failed[key] = exc
                    raise
            return self._cache[key]  # type: ignore[no-any-return]

    def prefetch(self, reads: Iterable[Callable[[], object]]) -> None:
        """Start each of ``reads`` (memoized reads of this reader) now, each in a thread of its own,
        so the calls the start of a run would make one after another, each waiting on the one
        before, are in flight together; whoever asks for the same list later waits for it instead
        of calling again. A read that fails is this reader's to report to the asker (:meth:`_once`),
        so the thread drops it; daemon threads, so a stopped run does not wait for them."""
        for read in reads:
            self.run_in_background(partial(_quietly, read))

    def prefetch_once(self, reads: Callable[[], Iterable[Callable[[], object]]]) -> None:
        """:meth:`prefetch` the reads ``reads()`` names, the first time this is asked only."""
        with self._guard:
            if self._prefetching:
                return
            self._prefetching = True
        self.prefetch(reads())

    # -- account-level lists -------------------------------------------------------------------

    def read(self, endpoint: Endpoint, **path_params: str) -> list[Any]:
        """Every item of ``endpoint`` (path placeholders filled from ``path_params``), read once per run
        whichever resource or lookup asks first; the items are passed on as sent, objects or not."""
        return self._once((endpoint.path, *path_params.values()), lambda: self._fetch(endpoint, path_params))

    def _fetch(self, endpoint: Endpoint, path_params: dict[str, str]) -> list[Any]:
        params = dict(endpoint.params) or None
        if endpoint.paging == "object":
            items = [self.client.get_object(endpoint.path, params, **path_params)]
        elif endpoint.paging == "array":
            items = self.client.get_list(endpoint.path, params, **path_params)
        elif endpoint.paging == "page":
            items = _flatten(self.client.iter_page_envelopes(endpoint.path, self._limit(endpoint), params,
                                                             **path_params))
        else:
            items = _flatten(self.client.iter_cursor_pages(endpoint.path, self._limit(endpoint), params,
                                                           **path_params))
        return self.privacy.protect_items(source_of_endpoint(endpoint.path), items,
                                          self._team_field_kinds(endpoint, path_params.get("team_key")))

    def _team_field_kinds(self, endpoint: Endpoint, team_key: str | None) -> dict[str, Any] | None:
        """The kinds of a team's custom contact / organization fields (by their names), for protecting
        those values; None for other endpoints or when nothing is protected."""
        settings_name = {settings.CONTACTS.path: "contactSettings",
                         settings.ORGANIZATIONS.path: "organizationSettings"}.get(endpoint.path)
        if settings_name is None or team_key is None or not self.privacy.active:
            return None
        team = next((t for t in self.teams() if entity_key(t, "teamKey") == team_key), None)
        return field_kinds(team.get(settings_name)) if isinstance(team, dict) else None

    def _limit(self, endpoint: Endpoint) -> int:
        return int(getattr(self.page_sizes, endpoint.page_size or "", settings.MAX_PAGE_SIZE))

    # -- account-level lists -------------------------------------------------------------------

    def me(self) -> dict[str, Any]:
        return cast(dict[str, Any], self.read(settings.ME)[0])

    def me_key(self) -> str | None:
        return entity_key(self.me(), "userKey")

    def teams(self) -> list[Any]:
        return self.read(settings.TEAMS)

    def team_users(self, team_key: str) -> list[Any]:
        return self.read(settings.TEAM_USERS, team_key=team_key)

    def pipelines(self) -> list[Any]:
        """Everything in the pipeline list (keyed or not: the pipelines resource rejects the others)."""
        return self.read(settings.PIPELINES)

    def keyed_pipelines(self) -> list[dict[str, Any]]:
        """Pipelines that have a key: only those are listed, decoded or asked for boxes and newsfeed."""
        return self.keyed(self.pipelines(), "pipelineKey")

    def keyed_teams(self) -> list[dict[str, Any]]:
        """Teams that have a key: only those are asked for users, contacts and organizations."""
        return self.keyed(self.teams(), "teamKey")

    @staticmethod
    def keyed(items: list[Any], *aliases: str) -> list[dict[str, Any]]:
        return [item for item in items if entity_key(item, *aliases) is not None]

    def contacts(self, team_key: str) -> list[Any]:
        return self.read(settings.CONTACTS, team_key=team_key)

    def organizations(self, team_key: str) -> list[Any]:
        return self.read(settings.ORGANIZATIONS, team_key=team_key)

    def team_keys(self) -> list[str]:
        return [key for key in (entity_key(t, "teamKey") for t in self.teams()) if key is not None]

    def users(self) -> list[Any]:
        """Distinct users: you first, then every user of every team (unkeyed ones kept, to be rejected)."""
        me = self.me()
        seen = {entity_key(me, "userKey")}
        result: list[Any] = [me]
        for team_key in self.team_keys():
            for user in self.team_users(team_key):
                user_key = entity_key(user, "userKey")
                if user_key is None or user_key not in seen:
                    seen.add(user_key)
                    result.append(user)
        return result

    def name_lookups(self) -> NameLookups:
        """Names for decoding PERSON / TEAM_CONTACT / TEAM_ORGANIZATION field values."""

        def build() -> NameLookups:
            people: dict[str, Person] = {}
            for user in self.users():
                key = entity_key(user, "userKey")
                if key:
                    people[key] = Person(name=person_name(user), email=user.get("email"))
            contacts: dict[str, str] = {}
            organizations: dict[str, str] = {}
            for team_key in self.team_keys():
                for contact in self.contacts(team_key):
                    key, name = entity_key(contact, "contactKey"), contact_name(contact)
                    if key and name:
                        contacts[key] = name
                for org in self.organizations(team_key):
                    key, name = entity_key(org, "organizationKey", "orgKey"), organization_name(org)
                    if key and name:
                        organizations[key] = name
            return NameLookups(users=people, contacts=contacts, organizations=organizations)

        return self._once(("name_lookups",), build)

    # -- boxes and their children --------------------------------------------------------------

    def box_pages(self, pipeline: dict[str, Any]) -> Iterator[list[Any]]:
        """Pages of a keyed pipeline's boxes. An empty pipeline (``boxCount`` 0) costs no call.

        The box list takes ``page``/``limit``; Streak may answer with the ``{results, hasNextPage}``
        envelope or a plain array. The pipeline's ``boxCount`` bounds the listing (see
        streak_source/paging.py); a box listed twice is yielded once. Unkeyed items are passed on
        for the boxes resource to reject.
        """
        pipeline_key = entity_key(pipeline, "pipelineKey")
        box_count = _count(pipeline.get("boxCount"))
        if pipeline_key is None or (self.skip_empty_children and box_count == 0):
            return
        seen: set[str] = set()
        kinds = field_kinds(pipeline.get("fields")) if self.privacy.active else None
        for page in self.client.iter_page_envelopes(
            settings.BOXES.path, self._limit(settings.BOXES), expected=box_count, pipeline_key=pipeline_key
        ):
            page = self.privacy.protect_items("boxes", page, kinds)
            fresh = []
            for box in page:
                key = entity_key(box, "boxKey")
                if key is None or key not in seen:
                    fresh.append(box)
                    if key is not None:
                        seen.add(key)
            yield fresh

    def needs_call(self, box: dict[str, Any], counters: tuple[str, ...]) -> bool:
        """False when the box's own ``counters`` (for one child endpoint) say it has nothing for the box."""
        if not self.skip_empty_children:
            return True
        count = child_count(box, counters)
        return count is None or count > 0

    def box_children(self, box: dict[str, Any], endpoint: Endpoint, counters: tuple[str, ...],
                     table: str) -> list[Any] | None:
        """All items of one child endpoint for one keyed box row; None (and a warning) if the box
        vanished: the caller loads no rows for it and keeps no refresh basis for a box never read.

        The box's own ``counters`` bound a paged listing (``expected``): a page repeating forever ends
        with an error naming the endpoint instead of running on.
        """
        box_key = as_key(box.get("box_key"))
        if box_key is None:
            raise ValueError(f"{table}: a box row without box_key cannot be read (keyed boxes only)")
        params = dict(endpoint.params)
        try:
            if endpoint.paged:
                items = _flatten(self.client.iter_page_envelopes(
                    endpoint.path, self._limit(endpoint), params, expected=child_count(box, counters),
                    box_key=box_key,
                ))
            else:
                items = self.client.get_list(endpoint.path, params, box_key=box_key)
            return self.privacy.protect_items(source_of_endpoint(endpoint.path), items)
        except StreakNotFound:
            log.warning("box %s is gone (404 on GET %s): its %s are skipped", box_key, endpoint.path, table)
            self.client.report.box_vanished(box_key)
            return None


def _quietly(read: Callable[[], object]) -> None:
    with contextlib.suppress(Exception):
        read()


def _start_daemon(read: Callable[[], object]) -> None:
    threading.Thread(target=read, name="streak-prefetch", daemon=True).start()


def _flatten(pages: Iterator[list[Any]]) -> list[Any]:
    """Every item of every page, objects or not (the resources reject what is not an object)."""
    return [item for page in pages for item in page]


def _count(value: Any) -> int | None:
    """A counter as an int, or None when it is missing or not a plain non-negative number."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value
