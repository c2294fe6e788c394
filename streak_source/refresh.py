"""``--refresh changed``: the ONE rule for which boxes' children are re-read, and when a run falls
back to a full load (issue 15; docs/refresh.md).

A full load reads every box's children (tasks, threads, comments, meetings, files): about two calls
per box. A ``changed`` refresh lists every box as a full load does (pages of 1,000), re-reads the
children only of the boxes whose **fingerprint** moved since the previous complete load, and takes
the others' children from that load's *basis*: the raw API responses it read, kept per box and
child table in ``crm.refresh_basis_children``. The very transform a full load runs is then run on
them, so a kept box gives exactly the rows a fresh read would, whatever changed around it (user,
stage and field definitions are re-read every run; field values come from the box listing).

The fingerprint (:func:`box_fingerprint`) is a digest of the box's own fields that describe its
children and move when they do (:data:`FINGERPRINT_FIELDS`): ``lastUpdatedTimestamp``,
``lastSavedTimestamp``, ``lastStageChangeTimestamp``, ``pipelineKey``, the child counters and the
``first*``/``last*``/``mostRecent*`` child timestamps, the task assignee key sets, and the earliest
due date of the open tasks (:data:`EARLIEST_OPEN_DUE`). Left out on purpose, because they move with
the clock while no child changes (they would re-read boxes for nothing): ``freshness``,
``taskOverdueCount``, the overdue assignee sets, ``soonestTaskDueDate`` and
``earliestOverdueTaskDueDate`` one by one (a due date passing moves a task from one to the other;
their minimum does not move), and the e-mail *view* figures (no child row carries them; the box row
itself is re-read every run). A box without a usable ``lastUpdatedTimestamp`` has no fingerprint:
nothing says it did not change, so its children are always re-read.

Fallbacks to a full load, each with its reason (:func:`first_decision`, :func:`account_decision`):
no basis in the destination (no previous complete load, or one made before this mode existed, or a
destination that keeps none), a basis from another layout version or basis format, another base
URL, another account (the ``/v1/users/me`` user key; checked once that call, which every run makes,
has answered), a basis kept under other ``[privacy]`` settings (its raw items are protected as the
policy then said), or a last full load older than ``full_refresh_every_days``.

Pure rules, no HTTP and no dlt: :class:`RefreshPlan` binds them to one run and is shared by the
source's extract threads (a lock guards its one lazy decision and its counters).
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import threading
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, Literal

import streak_clock
from streak_source.epoch import datetime_to_epoch_ms
from streak_source.keys import as_key, entity_key
from streak_source.spill import SpillFile

__all__ = [
    "BASIS_CHILDREN_TABLE", "BASIS_FORMAT", "BASIS_TABLE", "DEFAULT_FULL_REFRESH_EVERY_DAYS", "REFRESH_MODES",
    "BasisStamp", "Decision", "RefreshBasis", "RefreshPlan", "account_decision", "box_fingerprint",
    "children_json", "first_decision",
]

RefreshMode = Literal["full", "changed"]
REFRESH_MODES: Final[tuple[RefreshMode, ...]] = ("full", "changed")
DEFAULT_REFRESH: Final[RefreshMode] = "full"
DEFAULT_FULL_REFRESH_EVERY_DAYS: Final = 7.0

BASIS_TABLE: Final = "refresh_basis"
"""One row: whose account, from which base URL, which layout and basis format, when the last full
load was made (the stamp a ``changed`` refresh checks before trusting the basis)."""
BASIS_CHILDREN_TABLE: Final = "refresh_basis_children"
"""One row per (box, child table) read: the box's fingerprint then and the raw items as Streak sent them."""

BASIS_FORMAT: Final = 1
"""Bump when :data:`FINGERPRINT_FIELDS`, :func:`box_fingerprint` or the stored item format change:
a basis of another format is not compared, the run falls back to a full load."""

FINGERPRINT_FIELDS: Final[tuple[str, ...]] = (
    "pipelineKey", "lastUpdatedTimestamp", "lastSavedTimestamp", "lastStageChangeTimestamp",
    # tasks
    "taskTotal", "taskCompleteCount", "taskIncompleteCount", "taskAssigneeKeySet", "incompleteTaskAssigneeKeySet",
    # email threads
    "gmailThreadCount", "totalNumberOfEmails", "totalNumberOfSentEmails", "totalNumberOfReceivedEmails",
    "firstEmailTimestamp", "lastEmailUpdatedTimestamp", "firstEmailReceivedTimestamp", "lastEmailReceivedTimestamp",
    "firstEmailSentTimestamp", "lastEmailSentTimestamp", "lastTouchpointTimestamp",
    # comments
    "commentCount", "lastCommentTimestamp",
    # meetings and call logs
    "meetingNotesCount", "callLogCount", "totalMeetingNotesDuration", "totalCallLogDuration",
    "firstMeetingNotesTimestamp", "mostRecentMeetingNotesTimestamp", "firstCallLogTimestamp",
    "mostRecentCallLogTimestamp",
    # files
    "fileCount",
)
"""Box fields whose values go into the fingerprint as Streak sends them (absent = null)."""

EARLIEST_OPEN_DUE: Final = ("soonestTaskDueDate", "earliestOverdueTaskDueDate")
"""Their minimum, the earliest due date of the box's open tasks, is in the fingerprint: it moves when
a task's due date is edited, added or done, never because the clock passed a due date."""

UPDATED_FIELD: Final = "lastUpdatedTimestamp"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def box_fingerprint(box: Mapping[str, Any]) -> str | None:
    """A digest of the box's child-describing fields; None when ``lastUpdatedTimestamp`` is not a number.

    ``box`` is Streak's box object or the ``boxes`` row the source builds from it (same field names,
    times as datetimes): a datetime counts as its epoch milliseconds, so both give one digest."""
    values: dict[str, Any] = {name: _plain(box.get(name)) for name in FINGERPRINT_FIELDS}
    if _number(values[UPDATED_FIELD]) is None:
        return None
    dues = [n for n in (_number(_plain(box.get(name))) for name in EARLIEST_OPEN_DUE) if n is not None]
    values["earliestOpenTaskDue"] = min(dues) if dues else None
    text = json.dumps([BASIS_FORMAT, values], sort_keys=True, separators=(",", ":"), default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _plain(value: Any) -> Any:
    """A datetime as integer epoch milliseconds (exact to the ms); anything else as it is."""
    return datetime_to_epoch_ms(value) if isinstance(value, datetime) else value


def children_json(items: list[Any]) -> str:
    """Raw child items as stored in the basis: JSON, ASCII only (no NUL byte, which Postgres text
    refuses, can reach the table), read back by ``json.loads`` into exactly the same values."""
    return json.dumps(items, ensure_ascii=True, separators=(",", ":"))


# --- the basis and the decision ----------------------------------------------------------------


@dataclass(frozen=True)
class BasisStamp:
    """The ``refresh_basis`` row of the previous complete load."""

    account_key: str | None
    base_url: str | None
    layout_version: int | None
    basis_format: int | None
    last_full_load_at: datetime | None
    privacy: str | None = None
    """The fingerprint of the ``[privacy]`` policy its raw items were protected by (None: a basis
    written before privacy existed, i.e. nothing protected)."""


@dataclass
class RefreshBasis:
    """What the previous complete load kept for a refresh (read from the LIVE copy).

    Only an index stays in memory: per box and child table, the fingerprint and where the items
    are. The raw items go zlib-compressed into a :class:`~streak_source.spill.SpillFile` as they
    are read, and only the kept boxes' items are read back and inflated. A 20,000-box account's
    ~140 MB of JSON is then ~30 MB of temporary file and ~15 MB of index; held compressed in
    memory it took ~90 MB for the whole run. :meth:`release` drops both once extract is done."""

    stamp: BasisStamp
    _index: dict[tuple[str, str], tuple[str | None, int, int]] = field(default_factory=dict, repr=False)
    _items: SpillFile = field(default_factory=lambda: SpillFile("streak-refresh-basis-"), repr=False)
    _released: bool = field(default=False, repr=False)

    def keep(self, box_key: str, table: str, fingerprint: str | None, items_json: str) -> None:
        offset, length = self._items.append(zlib.compress(items_json.encode(), 1))
        # One string per box key and table name, however many rows repeat it (an index entry
        # each would otherwise hold its own copy of both).
        self._index[(sys.intern(box_key), sys.intern(table))] = (fingerprint, offset, length)

    def fingerprint(self, box_key: str, table: str) -> str | None:
        stored = self._stored(box_key, table)
        return None if stored is None else stored[0]

    def items_json(self, box_key: str, table: str) -> str | None:
        stored = self._stored(box_key, table)
        return None if stored is None else zlib.decompress(self._items.read(stored[1], stored[2])).decode()

    def release(self) -> None:
        """Drop the index and the temporary file: the basis is compared only while extracting."""
        self._released = True
        self._index = {}
        self._items.close()

    def _stored(self, box_key: str, table: str) -> tuple[str | None, int, int] | None:
        if self._released:  # a lookup now would silently turn every kept box into a re-read
            raise RuntimeError("the refresh basis was released when extract ended")
        return self._index.get((box_key, table))

    def __len__(self) -> int:
        return len(self._index)

    def __repr__(self) -> str:  # never print 50,000 JSON documents into a log or a trace
        return f"RefreshBasis(stamp={self.stamp!r}, children={len(self._index)} box/table pairs)"


@dataclass(frozen=True)
class Decision:
    mode: RefreshMode
    reason: str


def _same_url(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.rstrip("/") == b.rstrip("/")


def _days(value: float) -> str:
    return f"{value:g} day" + ("" if value == 1 else "s")


def first_decision(
    requested: RefreshMode, basis: RefreshBasis | None, *, unavailable: str | None, base_url: str,
    layout_version: int | None, now: datetime, full_refresh_every_days: float, asked: bool = True,
    privacy: str = "none",
) -> Decision:
    """The mode as far as it is known before any call: everything but the account (see module doc).

    ``unavailable``: why this destination gives no basis at all (None: it does; ``basis`` None then
    means there is no previous complete load with one). ``asked``: False when no mode was set
    anywhere and ``requested`` is the default. ``privacy``: the fingerprint of this run's
    ``[privacy]`` policy: a basis kept under another one is not reused (its items would carry values
    the new settings protect, or protect them otherwise)."""
    if requested == "full":
        return Decision("full", "asked for" if asked else "the default")
    if unavailable is not None:
        return Decision("full", f"fell back to a full load: {unavailable}")
    if basis is None:
        return Decision("full", "fell back to a full load: no previous complete load with a refresh basis "
                                "in the destination (the first run with refresh = changed)")
    stamp = basis.stamp
    if stamp.layout_version != layout_version:
        return Decision("full", f"fell back to a full load: the previous load was written by layout version "
                                f"{stamp.layout_version}, this code writes {layout_version}")
    if stamp.basis_format != BASIS_FORMAT:
        return Decision("full", f"fell back to a full load: the previous load's basis has format "
                                f"{stamp.basis_format}, this code compares format {BASIS_FORMAT}")
    if (stamp.privacy or "none") != privacy:
        return Decision("full", "fell back to a full load: the previous load's raw responses were kept under other "
                                "[privacy] settings (docs/privacy.md)")
    if not _same_url(stamp.base_url, base_url):
        return Decision("full", f"fell back to a full load: the previous load came from another base URL "
                                f"({stamp.base_url})")
    if stamp.last_full_load_at is None:
        return Decision("full", "fell back to a full load: the previous load does not say when the last full load was")
    age = now - stamp.last_full_load_at
    if age > timedelta(days=full_refresh_every_days):
        return Decision("full", f"fell back to a full load: the last full load is {age.total_seconds() / 86400:.1f} "
                                f"days old (full_refresh_every_days = {full_refresh_every_days:g})")
    return Decision("changed", f"refresh = changed: children re-read only for boxes whose fingerprint moved since "
                               f"the previous load (last full load {stamp.last_full_load_at:%Y-%m-%d %H:%M} UTC, "
                               f"a full load at least every {_days(full_refresh_every_days)})")


def account_decision(decision: Decision, stamp: BasisStamp | None, me_key: str | None) -> Decision:
    """``decision`` unless the previous load came from another account (or either is unknown)."""
    if decision.mode != "changed" or stamp is None:
        return decision
    if me_key is None or stamp.account_key is None:
        return Decision("full", "fell back to a full load: the account could not be identified "
                                "(no user key from /v1/users/me now or in the previous load)")
    if me_key != stamp.account_key:
        return Decision("full", "fell back to a full load: the previous load came from another Streak account")
    return decision


# --- one run's plan --------------------------------------------------------------------------------


@dataclass
class RefreshPlan:
    """The rules bound to one run; shared by the source's extract threads.

    ``requested``/``asked``/``full_refresh_every_days``: the settings; ``basis``: what the live copy kept
    (None: nothing); ``unavailable``: why the destination keeps none; ``layout_version``: the
    warehouse layout this run writes (stamped, and compared with the basis'); ``started_at``: this
    run's start (the new "last full load" when it is one).
    """

    requested: RefreshMode = DEFAULT_REFRESH
    asked: bool = False
    """Whether ``requested`` was set (``--refresh``, config or env) rather than left to the default."""
    basis: RefreshBasis | None = None
    unavailable: str | None = None
    layout_version: int | None = None
    full_refresh_every_days: float = DEFAULT_FULL_REFRESH_EVERY_DAYS
    started_at: datetime = field(default_factory=lambda: streak_clock.now())
    privacy: str = "none"
    """The fingerprint of this run's ``[privacy]`` policy (``PrivacyPolicy.fingerprint``; the source
    sets it): stamped, and compared with the basis'."""
    reused: int = 0
    """(box, child table) pairs taken from the basis: child calls not made."""
    reread: int = 0
    """(box, child table) pairs read from Streak (the box's fingerprint moved, or it is new)."""
    reread_boxes: set[str] = field(default_factory=set)
    _decision: Decision | None = field(default=None, repr=False)
    _settled: bool = field(default=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def bind(self, base_url: str) -> Decision:
        """The decision before any call (the source calls this when it is built)."""
        with self._lock:
            self._decision = first_decision(
                self.requested, self.basis, unavailable=self.unavailable, base_url=base_url,
                layout_version=self.layout_version, now=self.started_at,
                full_refresh_every_days=self.full_refresh_every_days, asked=self.asked, privacy=self.privacy)
            self._settled = self._decision.mode == "full"
            return self._decision

    @property
    def bound(self) -> bool:
        return self._decision is not None

    @property
    def keeps_basis(self) -> bool:
        """Whether this run writes a basis: only when a ``changed`` refresh is asked for on a
        destination that keeps one. Under the default ``full`` setting nothing is written: a basis
        nobody reads would almost triple a 20,000-box DuckDB file (93 -> 269 MB: ~140 MB of raw JSON)."""
        return self.requested == "changed" and self.unavailable is None

    def outcome_line(self) -> str:
        """What the run did with its children, for the progress output."""
        decision = self.decision
        if decision.mode == "full":
            return f"full load: every box's children read ({decision.reason})"
        boxes = len(self.reread_boxes)
        return (f"refresh: {self.reread:,} child lists re-read ({boxes:,} boxes new or changed), "
                f"{self.reused:,} kept from the previous load without a call")

    @property
    def decision(self) -> Decision:
        """The current decision (final once :meth:`settle` ran, or when it is ``full`` anyway)."""
        if self._decision is None:
            raise RuntimeError("RefreshPlan.bind(base_url) was not called")
        return self._decision

    def settle(self, me_key: Callable[[], str | None]) -> Decision:
        """The final decision: the account check, once (``me_key`` is the memoized ``/v1/users/me``)."""
        with self._lock:
            if self._decision is None:
                raise RuntimeError("RefreshPlan.bind(base_url) was not called")
            if not self._settled:
                stamp = self.basis.stamp if self.basis is not None else None
                self._decision = account_decision(self._decision, stamp, me_key())
                self._settled = True
            return self._decision

    def kept_children(self, box: Mapping[str, Any], table: str, me_key: Callable[[], str | None]) -> str | None:
        """The basis' raw items JSON for ``box``'s ``table`` when they can stand for a fresh read
        (this run refreshes, the box's fingerprint is known and unchanged); None: read them."""
        key = as_key(box.get("box_key")) or entity_key(box, "boxKey")
        kept = None
        if key is not None and self.settle(me_key).mode == "changed" and self.basis is not None:
            fingerprint = box_fingerprint(box)
            if fingerprint is not None and self.basis.fingerprint(key, table) == fingerprint:
                kept = self.basis.items_json(key, table)
        with self._lock:
            if kept is None:
                self.reread += 1
                if key is not None:
                    self.reread_boxes.add(key)
            else:
                self.reused += 1
        return kept

    def release_basis(self) -> None:
        """Extract is over: drop the basis' index and temporary file (its stamp stays)."""
        if self.basis is not None:
            self.basis.release()

    def stamp_row(self, me_key: Callable[[], str | None], base_url: str) -> dict[str, Any]:
        """This run's ``refresh_basis`` row (settles the decision first)."""
        decision = self.settle(me_key)
        stamp = self.basis.stamp if self.basis is not None else None
        last_full = self.started_at if decision.mode == "full" or stamp is None else stamp.last_full_load_at
        return {"loaded_at": self.started_at, "account_key": me_key(), "base_url": base_url,
                "layout_version": self.layout_version, "basis_format": BASIS_FORMAT, "mode": decision.mode,
                "mode_reason": decision.reason, "last_full_load_at": last_full, "privacy": self.privacy}

