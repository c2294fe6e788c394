"""``box_stage_history``: every stay of every box in a stage, kept across ``replace`` runs (issue 13).

Pure core: plain values in, rows out (no HTTP, no dlt, no SQL). A run passes the rows it loaded
back from the destination and what it observed (:class:`RunObservation`); :func:`update_history`
returns the COMPLETE new table, written in place of the old one (old rows change: an open stay gets
its ``left_at``, a deleted box gets ``box_deleted_at``, a late source fills a gap).

Evidence, most exact first: the per-box newsfeed (``EDIT_STAGE``/``NEW_BOX``; ``STAGE_KEY`` = the
stage ENTERED), webhook stage changes, ``stageHistoryEntries`` (last entry per stage), the snapshot
(current stage since ``lastStageChangeTimestamp``). Sources agreeing on a move (same stage, within
:data:`SAME_MOVE_TOLERANCE_MS`) are one stay; ``known_from`` names the most exact. Rules (why: see
docs/history.md):

* Never invent: a stay exists only if a source says the box entered that stage then. Known stays
  are kept (one known exactly end to end never changes); late evidence fills what was unknown and
  is dropped where it contradicts a time the box is known to have spent in one stage.
* An end is exact only if no unknown move can lie before the next known stay: the newsfeed read
  this run reaches back (oldest entry, or ``NEW_BOX``) to a moment the box was known to be in the
  stay. Else ``left_at`` = the next known entry (an upper bound), ``left_exact`` false, gap unfilled.
* A snapshot's entry time is ``lastStageChangeTimestamp``, which Streak stamps on every stage change: exact
  on a first sighting (when consistent with the box's creation and last update), for a move made since a
  run last saw the box, or a box never moved. A newsfeed or webhook entry that shows an earlier entry
  into the same stay (no move between) overrides a snapshot's time.
* ``exact`` = ``entered_exact`` and (open or ``left_exact``): then ``time_in_stage_s`` is true.
* A box missing from a run (not in ``skipped_box_keys``) gets ``box_deleted_at`` (that run's time,
  inexact) on all its rows; its open stay STAYS OPEN (deletion is no stage exit); cleared if it returns.
* Same previous rows + same observation = same rows (idempotent), in a deterministic order.

Why one file of ~470 lines: the rules above act on each other (matching, placing, closing a stay);
split apart, a reader could no longer check one rule against the others in one sitting.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final, Literal

from streak_source.keys import as_key, entity_key

KnownFrom = Literal["newsfeed", "webhook", "stage_history_entries", "snapshot"]
SAME_MOVE_TOLERANCE_MS: Final = 2_000
"""Two sources' times for one move may differ by this much (webhook vs newsfeed clocks)."""

COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("stay_key", "text"), ("box_key", "text"), ("pipeline_key", "text"), ("stage_key", "text"),
    ("stage_name", "text"), ("stage_order", "bigint"), ("entered_at", "timestamp"), ("left_at", "timestamp"),
    ("time_in_stage_s", "double"), ("known_from", "text"), ("exact", "bool"), ("entered_exact", "bool"),
    ("left_exact", "bool"), ("last_seen_at", "timestamp"), ("box_deleted_at", "timestamp"),
)
"""``box_stage_history`` columns as (name, dlt data type), the shape ``persistent.PersistentTable`` takes."""
PRIMARY_KEY: Final = ("stay_key",)
TRANSITION_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("box_key", "text"), ("pipeline_key", "text"), ("from_stage_key", "text"), ("to_stage_key", "text"),
    ("at", "timestamp"), ("exact", "bool"),
)


def to_ms(value: datetime | float | str | None) -> int | None:
    """Epoch ms from what a destination gives back (aware/naive-UTC datetime, ISO text) or Streak (ms)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return round(aware.timestamp() * 1000)
    return int(value)


def from_ms(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


def stay_key(box_key: str, pipeline_key: str, stage_key: str, entered_at: datetime | int) -> str:
    """Stable primary key of a stay: a digest of what identifies it (box, stage, entry time in ms)."""
    text = f"{box_key}\x1f{pipeline_key}\x1f{stage_key}\x1f{to_ms(entered_at)}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _required(key: str | None, what: str, where: str) -> str:
    """A key by the one key rule (streak_source.keys), or a clear error: never the text "None"."""
    if key is None:
        raise ValueError(f"{where}: no usable {what}")
    return key


@dataclass(frozen=True)
class StageStay:
    """One row of ``box_stage_history``: one stay of a box in a stage (times are aware UTC)."""

    box_key: str
    pipeline_key: str
    stage_key: str
    stage_name: str | None
    stage_order: int | None
    entered_at: datetime
    left_at: datetime | None
    known_from: KnownFrom
    entered_exact: bool
    left_exact: bool | None
    last_seen_at: datetime | None = None
    """Latest moment (Streak's clock) a run saw the box in this stay: the anchor for judging the next move."""
    box_deleted_at: datetime | None = None

    @property
    def stay_key(self) -> str:
        return stay_key(self.box_key, self.pipeline_key, self.stage_key, self.entered_at)

    @property
    def exact(self) -> bool:  # open stays: the entry; closed ones: both ends
        return self.entered_exact and self.left_exact is not False

    @property
    def time_in_stage_s(self) -> float | None:
        return None if self.left_at is None else (self.left_at - self.entered_at).total_seconds()

    def as_row(self) -> dict[str, Any]:
        """The destination row (column names of :data:`COLUMNS`)."""
        return {name: getattr(self, name) for name, _ in COLUMNS}

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> StageStay:
        """A row loaded back from the destination (derived columns are recomputed, not trusted)."""
        entered = from_ms(to_ms(row["entered_at"]))
        assert entered is not None, "entered_at is never NULL"
        order = row.get("stage_order")
        left_exact = row.get("left_exact")
        return cls(
            box_key=str(row["box_key"]), pipeline_key=str(row["pipeline_key"]), stage_key=str(row["stage_key"]),
            stage_name=row.get("stage_name"), stage_order=None if order is None else int(order),
            entered_at=entered, left_at=from_ms(to_ms(row.get("left_at"))), known_from=row["known_from"],
            entered_exact=bool(row.get("entered_exact", row.get("exact"))),
            left_exact=None if left_exact is None else bool(left_exact),
            last_seen_at=from_ms(to_ms(row.get("last_seen_at"))),
            box_deleted_at=from_ms(to_ms(row.get("box_deleted_at"))),
        )


@dataclass(frozen=True)
class StageInfo:
    name: str
    order: int


@dataclass(frozen=True)
class BoxSnapshot:
    """What a run reads of a box (from the boxes listing: no extra call)."""

    box_key: str
    pipeline_key: str
    stage_key: str | None
    last_stage_change_ms: int | None
    creation_ms: int | None = None
    stage_history_entries: tuple[Mapping[str, Any], ...] = ()
    last_updated_ms: int | None = None

    @classmethod
    def from_api(cls, box: Mapping[str, Any]) -> BoxSnapshot:
        """From Streak's box object (streak_api.md, box object)."""
        return cls(
            box_key=_required(entity_key(box, "boxKey"), "box key", "box object"),
            pipeline_key=_required(as_key(box.get("pipelineKey")), "pipelineKey", "box object"),
            stage_key=box.get("stageKey"), last_stage_change_ms=box.get("lastStageChangeTimestamp"),
            creation_ms=box.get("creationTimestamp"),
            stage_history_entries=tuple(box.get("stageHistoryEntries") or ()),
            last_updated_ms=box.get("lastUpdatedTimestamp"),
        )

    @property
    def seen_ms(self) -> int | None:
        """A moment the box was surely in its current stage: it sat there from its last stage change to
        its last update, both before it was read. STREAK's clock, not ours (the sandbox simulates days)."""
        known = [ms for ms in (self.last_stage_change_ms, self.last_updated_ms) if ms is not None]
        return max(known) if known else None


@dataclass(frozen=True)
class StageChangeEvent:
    """A webhook ``BOX_CHANGE_STAGE``; ``at_ms`` should be the payload box's ``lastStageChangeTimestamp``."""

    box_key: str
    to_stage_key: str
    at_ms: int
    pipeline_key: str | None = None

    @classmethod
    def from_box(cls, box: Mapping[str, Any]) -> StageChangeEvent:
        """From the Box object a ``BOX_CHANGE_STAGE`` delivery carries (streak_api.md 6.18)."""
        return cls(_required(entity_key(box, "boxKey"), "box key", "BOX_CHANGE_STAGE box"),
                   _required(as_key(box.get("stageKey")), "stageKey", "BOX_CHANGE_STAGE box"),
                   int(box["lastStageChangeTimestamp"]), as_key(box.get("pipelineKey")))


@dataclass(frozen=True)
class RunObservation:
    """Everything one run saw. ``observed_at`` (our clock) dates ``box_deleted_at`` only: the timeline
    is judged on Streak's own timestamps (:attr:`BoxSnapshot.seen_ms`)."""

    observed_at: datetime
    boxes: Sequence[BoxSnapshot]
    stages: Mapping[str, Mapping[str, StageInfo]] = field(default_factory=dict)
    """pipeline_key -> stage_key -> name and position in the pipeline's stageOrder."""
    newsfeeds: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)
    """box_key -> that box's whole per-box newsfeed response (ALL entries, any specific: the oldest one
    tells how far back the feed reaches). Only boxes whose feed was fetched."""
    webhook_events: Sequence[StageChangeEvent] = ()
    skipped_box_keys: frozenset[str] = frozenset()
    """Boxes this run could not read: neither present nor deleted; their history is carried."""


@dataclass
class _Entry:
    """One known entry into a stage while a box's history is rebuilt."""

    pipeline_key: str
    stage_key: str
    at: int
    entered_exact: bool
    known_from: KnownFrom
    seq: tuple[int, int]
    sources: set[str]
    seen: int | None = None
    old: StageStay | None = None


def update_history(previous: Iterable[StageStay | Mapping[str, Any]], run: RunObservation) -> list[StageStay]:
    """The whole new ``box_stage_history``: previous stays kept, this run's evidence added."""
    old_by_box: dict[str, list[StageStay]] = {}
    for item in previous:
        stay = item if isinstance(item, StageStay) else StageStay.from_row(item)
        old_by_box.setdefault(stay.box_key, []).append(stay)
    boxes = {box.box_key: box for box in run.boxes}
    events: dict[str, list[StageChangeEvent]] = {}
    for event in run.webhook_events:
        events.setdefault(event.box_key, []).append(event)
    observed = to_ms(run.observed_at)
    assert observed is not None
    out: list[StageStay] = []
    for box_key in sorted(old_by_box.keys() | boxes.keys()):
        old = sorted(old_by_box.get(box_key, ()), key=_stay_order)
        box = boxes.get(box_key)
        pipeline = box.pipeline_key if box else old[-1].pipeline_key
        stays = _rebuild_box(
            box_key, old, box, run.newsfeeds.get(box_key), events.get(box_key, ()), pipeline, observed
        )
        deleted_at = None if box is not None else next((s.box_deleted_at for s in stays if s.box_deleted_at), None)
        if box is None and box_key not in run.skipped_box_keys:
            deleted_at = deleted_at or run.observed_at  # the first run it was missing: inexact
        out.extend(_named(s, run.stages, deleted_at) for s in stays)
    return sorted(out, key=lambda s: (s.box_key, s.entered_at, s.pipeline_key, s.stage_key))


def _stay_order(stay: StageStay) -> tuple[datetime, bool, datetime]:
    return (stay.entered_at, stay.left_at is None, stay.left_at or stay.entered_at)


def _named(stay: StageStay, stages: Mapping[str, Mapping[str, StageInfo]], deleted_at: datetime | None) -> StageStay:
    """Current stage name/order (renames show; the recorded ones when the stage is gone), deletion."""
    info = stages.get(stay.pipeline_key, {}).get(stay.stage_key)
    name, order = (stay.stage_name, stay.stage_order) if info is None else (info.name, info.order)
    if (name, order, deleted_at) == (stay.stage_name, stay.stage_order, stay.box_deleted_at):
        return stay
    return replace(stay, stage_name=name, stage_order=order, box_deleted_at=deleted_at)


def _snapshot_exact(box: BoxSnapshot, last_seen: int | None) -> bool:
    """Is "in its stage since ``lastStageChangeTimestamp``" the true entry time? Streak stamps that field
    on a stage change, so yes: on a FIRST sighting (``last_seen`` None) when it fits the box's own times
    (not before its creation, not after its last update: a move is an update), later when it equals the
    creation or is after the last moment a run saw the box (it moved since). A newsfeed read later that
    shows an earlier entry into the same stay still corrects it (:func:`_rebuild_box`)."""
    at = box.last_stage_change_ms
    if at is None:
        return False  # assumed unmoved since creation
    if at == box.creation_ms:
        return True
    if last_seen is None:
        return (box.creation_ms is None or at >= box.creation_ms) and (
            box.last_updated_ms is None or at <= box.last_updated_ms)
    return at > last_seen


def _candidates(
    box: BoxSnapshot | None, feed: Sequence[Mapping[str, Any]] | None,
    events: Sequence[StageChangeEvent], pipeline: str, observed: int, last_seen: int | None = None,
) -> list[_Entry]:
    """This run's evidence of entries into stages, most exact source first."""
    found: list[_Entry] = []
    for index, entry in enumerate(feed or ()):
        specific = entry.get("newsfeedEntrySpecific")
        stage = (entry.get("specificVariables") or {}).get("STAGE_KEY")
        if specific in ("NEW_BOX", "EDIT_STAGE") and stage is not None and entry.get("timestamp") is not None:
            found.append(_Entry(str(entry.get("pipelineKey") or pipeline), str(stage), int(entry["timestamp"]),
                                True, "newsfeed", (0, -index), {"newsfeed"}))
    for index, event in enumerate(sorted(events, key=lambda e: (e.at_ms, e.to_stage_key))):
        found.append(_Entry(event.pipeline_key or pipeline, event.to_stage_key, int(event.at_ms), True,
                            "webhook", (1, index), {"webhook"}))
    if box is not None:
        for index, she in enumerate(box.stage_history_entries):
            stage, at = she.get("stageKey"), she.get("lastEntryToStageTs")
            if stage is not None and at is not None:
                found.append(_Entry(box.pipeline_key, str(stage), int(at), True, "stage_history_entries",
                                    (2, index), {"stage_history_entries"}))
        if box.stage_key is not None:
            at = box.last_stage_change_ms if box.last_stage_change_ms is not None else box.creation_ms
            found.append(_Entry(box.pipeline_key, box.stage_key, observed if at is None else int(at),
                                _snapshot_exact(box, last_seen), "snapshot", (3, 0), {"snapshot"}, box.seen_ms))
    # one source saying the same twice (a re-delivered webhook, a newsfeed page served twice) is one piece
    unique = {(e.known_from, e.pipeline_key, e.stage_key, e.at): e for e in reversed(found)}
    return sorted(unique.values(), key=lambda e: (e.seq[0], e.at, e.seq[1]))


def _coverage_start(feed: Sequence[Mapping[str, Any]] | None) -> float:
    """From when on the fetched feed holds every move: its oldest entry, or all time with ``NEW_BOX``."""
    if any(entry.get("newsfeedEntrySpecific") == "NEW_BOX" for entry in feed or ()):
        return float("-inf")
    times = [int(e["timestamp"]) for e in feed or () if e.get("timestamp") is not None]
    return float(min(times, default=float("inf")))


def _rebuild_box(
    box_key: str, old: list[StageStay], box: BoxSnapshot | None, feed: Sequence[Mapping[str, Any]] | None,
    events: Sequence[StageChangeEvent], pipeline: str, observed: int,
) -> list[StageStay]:
    """One box: match new evidence to known stays, place the rest where nothing exact contradicts it,
    then close every stay at the next one (exactly where no unknown move can lie between)."""
    known = [
        _Entry(s.pipeline_key, s.stage_key, to_ms(s.entered_at) or 0, s.entered_exact, s.known_from,
               (-1, i), {"previous"}, to_ms(s.last_seen_at), s)
        for i, s in enumerate(old)
    ]
    open_old = known[-1] if known and known[-1].old and known[-1].old.left_at is None else None
    frontier = max((e.at for e in known), default=None)
    locked = [span for span in map(_known_exactly, old) if span]
    fresh: list[_Entry] = []
    last_seen = max((m for e in known for m in (e.at, e.seen) if m is not None), default=None)
    for cand in _candidates(box, feed, events, pipeline, observed, last_seen):
        match = _match(cand, known + fresh, open_old)
        if match is not None:
            match.sources |= cand.sources
            upgradable = (match.old is None or match is open_old) and abs(match.at - cand.at) <= SAME_MOVE_TOLERANCE_MS
            if upgradable and cand.entered_exact and not match.entered_exact:  # an exact time for the same move
                match.at, match.entered_exact, match.known_from = cand.at, True, cand.known_from
            if cand.seen is not None:
                match.seen = max(match.seen or cand.seen, cand.seen)
            continue
        if cand.known_from == "snapshot":  # where the box is now: never dropped
            if frontier is not None and cand.at <= frontier:  # but no entry time after what is known:
                cand.at, cand.entered_exact = max(frontier + 1, cand.seen or 0), False  # a bound, flagged
        elif any(start <= cand.at < end for start, end in locked):
            continue  # inside a time the box is known to have spent in one stage: it cannot be true
        fresh.append(cand)
    covered_from = _coverage_start(feed)
    merged: list[_Entry] = []
    for entry in sorted(known + fresh, key=lambda e: (e.at, e.seq)):
        prev = merged[-1] if merged else None
        if prev and (prev.pipeline_key, prev.stage_key) == (entry.pipeline_key, entry.stage_key) \
                and not (prev.old and entry.old) and _contiguous(prev, entry, covered_from):
            keep, drop = (entry, prev) if entry.old and not prev.old else (prev, entry)  # a recorded stay stays
            keep.sources |= drop.sources  # a "move" into the stage the box was already in: no new stay
            if drop.entered_exact and drop.at < keep.at and (
                    not keep.entered_exact or keep.known_from == "snapshot" != drop.known_from):
                # the recorded entry was a bound, or a snapshot's inference that a source reporting the move
                # itself (newsfeed, webhook) contradicts: an exact, covered entry earlier in the stay replaces it
                keep.at, keep.entered_exact, keep.known_from = drop.at, True, drop.known_from
            keep.seen = max(filter(None, (keep.seen, drop.seen)), default=None)
            merged[-1] = keep
            continue
        merged.append(entry)
    return [_closed(entry, merged[i + 1] if i + 1 < len(merged) else None, box_key, covered_from)
            for i, entry in enumerate(merged)]


def _known_exactly(stay: StageStay) -> tuple[int, int] | None:
    """[from, to) in ms during which the box was certainly in ``stay`` and in no other stage."""
    start = to_ms(stay.entered_at)
    end = to_ms(stay.left_at) if stay.left_exact else None
    seen = to_ms(stay.last_seen_at)
    if start is None or not stay.entered_exact:
        return None
    if end is None and seen is not None:
        end = seen + 1  # seen there with the stage last changed at entry: nothing moved until then
    return (start + 1, end) if end is not None and end > start + 1 else None


def _closed(entry: _Entry, nxt: _Entry | None, box_key: str, covered_from: float) -> StageStay:
    """The row for ``entry``, ended by the next known stay (an upper bound unless provably direct)."""
    recorded = entry.old
    if nxt is None:
        left_at, left_exact = (recorded.left_at, recorded.left_exact) if recorded else (None, None)
    else:
        left_exact = nxt.entered_exact and _contiguous(entry, nxt, covered_from)
        left_at = from_ms(nxt.at)
        if recorded and recorded.left_at is not None and nxt.old and nxt.seq[1] == entry.seq[1] + 1:
            left_at, left_exact = recorded.left_at, bool(recorded.left_exact) or left_exact  # same neighbours
    return StageStay(
        box_key=box_key, pipeline_key=entry.pipeline_key, stage_key=entry.stage_key,
        stage_name=recorded.stage_name if recorded else None,
        stage_order=recorded.stage_order if recorded else None,
        entered_at=datetime.fromtimestamp(entry.at / 1000, tz=UTC), left_at=left_at, known_from=entry.known_from, entered_exact=entry.entered_exact,
        left_exact=left_exact, last_seen_at=from_ms(entry.seen),
        box_deleted_at=recorded.box_deleted_at if recorded else None,
    )


def _match(cand: _Entry, entries: list[_Entry], open_old: _Entry | None) -> _Entry | None:
    """The known entry ``cand`` is further evidence of (same stage, close in time), if any.

    One source never supplies two pieces of evidence for one entry (two newsfeed items are two
    moves). The snapshot also matches the open stay when the stage was last changed before the box
    was last seen there: nothing moved since.
    """
    same = [
        e for e in entries
        if (e.pipeline_key, e.stage_key) == (cand.pipeline_key, cand.stage_key) and not (e.sources & cand.sources)
        and abs(e.at - cand.at) <= SAME_MOVE_TOLERANCE_MS
    ]
    if same:
        return min(same, key=lambda e: (abs(e.at - cand.at), e.at))
    if (cand.known_from == "snapshot" and open_old is not None
            and (open_old.pipeline_key, open_old.stage_key) == (cand.pipeline_key, cand.stage_key)
            and cand.at <= max(open_old.seen or open_old.at, open_old.at)):
        return open_old
    return None


def _contiguous(prev: _Entry, nxt: _Entry, covered_from: float) -> bool:
    """No unknown move between ``prev`` and ``nxt``: the feed reaches back to a moment in ``prev``."""
    moments = [prev.at] + ([prev.seen] if prev.seen is not None and prev.seen < nxt.at else [])
    return covered_from <= max(moments)


@dataclass(frozen=True)
class StageTransition:
    """One row of ``stage_transitions``: a box entered ``to_stage_key`` at ``at``.

    ``from_stage_key`` is the stage it came from when that is KNOWN to be direct (the previous stay's
    end is exact); NULL when the box was created there or what came before is unknown. ``exact``:
    ``at`` is the true time.
    """

    box_key: str
    pipeline_key: str
    from_stage_key: str | None
    to_stage_key: str
    at: datetime
    exact: bool

    def as_row(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name, _ in TRANSITION_COLUMNS}


def stage_transitions(stays: Iterable[StageStay | Mapping[str, Any]]) -> list[StageTransition]:
    """``stage_transitions`` derived from stays: one row per stay's entry (same order as the stays)."""
    by_box: dict[str, list[StageStay]] = {}
    for item in stays:
        stay = item if isinstance(item, StageStay) else StageStay.from_row(item)
        by_box.setdefault(stay.box_key, []).append(stay)
    out: list[StageTransition] = []
    for box_key in sorted(by_box):
        ordered = sorted(by_box[box_key], key=_stay_order)
        for i, stay in enumerate(ordered):
            prev = ordered[i - 1] if i else None
            direct = (prev is not None and prev.left_exact is True and prev.left_at == stay.entered_at
                      and prev.pipeline_key == stay.pipeline_key)
            out.append(StageTransition(box_key, stay.pipeline_key, prev.stage_key if direct and prev else None,
                                       stay.stage_key, stay.entered_at, stay.entered_exact))
    return out
