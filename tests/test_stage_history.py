"""Stage history core (issue 13): one scenario per rule, then properties against a simulated true path."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streak_source.history_calls import needs_newsfeed
from streak_warehouse.stage_history import (
    BoxSnapshot,
    RunObservation,
    StageChangeEvent,
    StageInfo,
    StageStay,
    stage_transitions,
    update_history,
)

MIN = 60_000
HOUR = 60 * MIN
DAY = 24 * HOUR
T0 = 1_764_000_000_000  # a fixed epoch-ms origin; every time below is T0 + offset
P = "pipe1"
STAGES = {P: {k: StageInfo(name=f"Stage {k}", order=i) for i, k in enumerate(["A", "B", "C", "D", "Y", "Z"])}}


def at(offset_ms: int) -> datetime:
    return datetime.fromtimestamp((T0 + offset_ms) / 1000, tz=UTC)


def item(kind: str, stage: str | None, offset_ms: int, box: str = "b1") -> dict[str, Any]:
    """A per-box newsfeed entry in Streak's shape; kind NEW_BOX, EDIT_STAGE or anything else (noise)."""
    variables: dict[str, Any] = {"BOX_NAME": box}
    if stage is not None:
        variables["STAGE_KEY"] = stage
    return {"newsfeedItemKey": f"{box}-{kind}-{offset_ms}", "boxKey": box, "pipelineKey": P,
            "timestamp": T0 + offset_ms, "newsfeedEntrySpecific": kind, "specificVariables": variables}


def feed(*entries: dict[str, Any]) -> list[dict[str, Any]]:
    """Newest first, as Streak serves it."""
    return sorted(entries, key=lambda e: e["timestamp"], reverse=True)


def snap(stage: str, lsct: int | None, box: str = "b1", updated: int | None = None, **extra: Any) -> BoxSnapshot:
    """A box as listed: in ``stage`` since ``lsct``, last updated at ``updated`` (offsets from T0)."""
    return BoxSnapshot(box_key=box, pipeline_key=P, stage_key=stage,
                       last_stage_change_ms=None if lsct is None else T0 + lsct, creation_ms=T0,
                       last_updated_ms=None if updated is None else T0 + updated, **extra)


def needing(
    previous_boxes: Sequence[BoxSnapshot] | None, boxes: Sequence[BoxSnapshot], backfill: bool = False
) -> set[str]:
    """Boxes whose newsfeed a run fetches, by THE rule (the source's): the previous map is what the
    previous complete run loaded into ``crm.boxes`` (None: there was none)."""
    previous = None if previous_boxes is None else {b.box_key: b.last_stage_change_ms for b in previous_boxes}
    return {b.box_key for b in boxes
            if needs_newsfeed({"box_key": b.box_key, "lastStageChangeTimestamp": b.last_stage_change_ms},
                              previous, backfill)}


def run(
    previous: Sequence[StageStay | Mapping[str, Any]], observed: int, boxes: Sequence[BoxSnapshot],
    feeds: Mapping[str, list[dict[str, Any]]] | None = None, events: Sequence[StageChangeEvent] = (),
    skipped: frozenset[str] = frozenset(),
) -> list[StageStay]:
    return update_history(previous, RunObservation(
        observed_at=at(observed), boxes=boxes, stages=STAGES, newsfeeds=feeds or {},
        webhook_events=events, skipped_box_keys=skipped))


def path(stays: Sequence[StageStay]) -> list[tuple[str, datetime, datetime | None, bool]]:
    return [(s.stage_key, s.entered_at, s.left_at, s.exact) for s in stays]


FULL_FEED = feed(item("NEW_BOX", "A", 0), item("COMMENT", None, 5 * MIN), item("EDIT_STAGE", "B", 10 * MIN),
                 item("EDIT_STAGE", "C", 20 * MIN), item("COMMENT", None, 25 * MIN))
IN_C = snap("C", 20 * MIN, updated=25 * MIN)  # read at 30 min: in C since 20 min, last updated at 25 min


def first_run_in_c() -> list[StageStay]:
    return run([], 30 * MIN, [IN_C], {"b1": FULL_FEED})


# --- one scenario per rule ------------------------------------------------------------------------


def test_first_run_with_full_newsfeed_from_new_box_is_exact_from_creation() -> None:
    stays = first_run_in_c()
    assert path(stays) == [("A", at(0), at(10 * MIN), True), ("B", at(10 * MIN), at(20 * MIN), True),
                           ("C", at(20 * MIN), None, True)]
    assert [s.known_from for s in stays] == ["newsfeed"] * 3
    assert [s.time_in_stage_s for s in stays] == [600.0, 600.0, None]
    assert stays[-1].last_seen_at == at(25 * MIN) and stays[-1].stage_name == "Stage C"  # Streak's clock
    assert needing(None, [IN_C]) == set()  # a first run reads no newsfeed ...
    assert needing(None, [IN_C], backfill=True) == {"b1"}  # ... unless --backfill-history: every box


def test_first_run_with_truncated_newsfeed_starts_at_the_oldest_covered_move() -> None:
    window = feed(item("COMMENT", None, 5 * MIN), item("EDIT_STAGE", "B", 10 * MIN), item("EDIT_STAGE", "C", 20 * MIN))
    stays = run([], 30 * MIN, [snap("C", 20 * MIN)], {"b1": window})
    # the stay before B (its stage is unknown: EDIT_STAGE names only the stage entered) is not invented
    assert path(stays) == [("B", at(10 * MIN), at(20 * MIN), True), ("C", at(20 * MIN), None, True)]


def test_a_first_run_trusts_the_stage_change_timestamp_as_the_entry_into_the_current_stage() -> None:
    # Streak stamps lastStageChangeTimestamp on every stage change: in C since 20 min, exactly
    stays = run([], 30 * MIN, [snap("C", 20 * MIN, updated=25 * MIN)])
    assert path(stays) == [("C", at(20 * MIN), None, True)] and stays[0].known_from == "snapshot"
    created_there = run([], 30 * MIN, [snap("A", 0)])  # lastStageChangeTimestamp = creation: never moved
    assert path(created_there) == [("A", at(0), None, True)]
    assert not run([], 30 * MIN, [snap("C", None)])[0].exact  # no lastStageChangeTimestamp: flagged
    # a timestamp that cannot be a move of this box: before its creation, after its last update
    assert not run([], 30 * MIN, [snap("C", -5 * MIN)])[0].exact
    assert not run([], 30 * MIN, [snap("C", 20 * MIN, updated=10 * MIN)])[0].exact
    # seen again after a move (the timestamp changed since): the move is exact, C's end an upper bound
    # (no newsfeed read: another move may lie between)
    moved = run(stays, DAY, [snap("D", DAY - HOUR)])
    assert path(moved) == [("C", at(20 * MIN), at(DAY - HOUR), False), ("D", at(DAY - HOUR), None, True)]


def test_a_newsfeed_read_later_corrects_a_first_sighting_it_contradicts() -> None:
    # the box sat in A since its creation, yet its lastStageChangeTimestamp says 20 min (no move then):
    # a first sighting cannot tell, so the run trusts Streak's stamp ...
    blind = run([], 30 * MIN, [snap("A", 20 * MIN)])
    assert path(blind) == [("A", at(20 * MIN), None, True)]
    assert needing([snap("A", 20 * MIN)], [snap("B", DAY)]) == {"b1"}  # it moved: its newsfeed is read
    window = feed(item("NEW_BOX", "A", 0), item("EDIT_STAGE", "B", DAY))
    after = run(blind, DAY + HOUR, [snap("B", DAY)], {"b1": window})
    # ... and the newsfeed, which reports the moves themselves, has the last word on the same stay
    assert path(after) == [("A", at(0), at(DAY), True), ("B", at(DAY), None, True)]
    assert after[0].known_from == "newsfeed"


def test_move_between_runs_covered_by_the_newsfeed_is_exact() -> None:
    day1 = first_run_in_c()
    now = [snap("D", DAY + 2 * HOUR)]
    assert needing([IN_C], now) == {"b1"}
    window = feed(item("COMMENT", None, 25 * MIN), item("EDIT_STAGE", "C", 20 * MIN),
                  item("EDIT_STAGE", "D", DAY + 2 * HOUR))
    # the window's oldest entry (25 min) reaches back to when day 1 last saw the box in C (updated 25 min)
    stays = run(day1, DAY + 3 * HOUR, now, {"b1": window[:2]})
    assert path(stays)[2:] == [("C", at(20 * MIN), at(DAY + 2 * HOUR), True), ("D", at(DAY + 2 * HOUR), None, True)]
    assert len(stays) == 4


def test_move_not_covered_keeps_what_is_known_and_flags_the_gap() -> None:
    day1 = first_run_in_c()
    # day 2: C -> (unknown stages, pushed out of the 50-entry window) -> Y -> Z
    window = feed(item("COMMENT", None, DAY), item("EDIT_STAGE", "Y", DAY + HOUR), item("EDIT_STAGE", "Z", DAY + 2 * HOUR))
    stays = run(day1, DAY + 3 * HOUR, [snap("Z", DAY + 2 * HOUR)], {"b1": window})
    c, y, z = stays[2:]
    assert (c.stage_key, c.left_at, c.entered_exact, c.left_exact, c.exact) == ("C", at(DAY + HOUR), True, False, False)
    assert path([y, z]) == [("Y", at(DAY + HOUR), at(DAY + 2 * HOUR), True), ("Z", at(DAY + 2 * HOUR), None, True)]
    assert len(stays) == 5  # nothing guessed for the gap
    transitions = stage_transitions(stays)
    assert [(t.from_stage_key, t.to_stage_key) for t in transitions] == [
        (None, "A"), ("A", "B"), ("B", "C"), (None, "Y"), ("Y", "Z")]
    # the newsfeed call failed: only the snapshot is known
    alone = run(day1, DAY + 3 * HOUR, [snap("Z", DAY + 2 * HOUR)])
    assert path(alone[2:]) == [("C", at(20 * MIN), at(DAY + 2 * HOUR), False), ("Z", at(DAY + 2 * HOUR), None, True)]


def test_several_moves_in_a_day_are_all_kept() -> None:
    day1 = first_run_in_c()
    moves = [("D", DAY + HOUR), ("Y", DAY + 2 * HOUR), ("Z", DAY + 3 * HOUR), ("A", DAY + 4 * HOUR)]
    window = feed(*FULL_FEED, *(item("EDIT_STAGE", s, t) for s, t in moves))
    stays = run(day1, DAY + 5 * HOUR, [snap("A", DAY + 4 * HOUR)], {"b1": window})
    assert [s.stage_key for s in stays] == ["A", "B", "C", "D", "Y", "Z", "A"]
    assert all(s.exact for s in stays)


def test_a_move_back_is_a_new_stay() -> None:
    day1 = first_run_in_c()
    window = feed(*FULL_FEED, item("EDIT_STAGE", "B", DAY), item("EDIT_STAGE", "C", DAY + HOUR))
    stays = run(day1, DAY + 2 * HOUR, [snap("C", DAY + HOUR)], {"b1": window})
    assert path(stays)[2:] == [("C", at(20 * MIN), at(DAY), True), ("B", at(DAY), at(DAY + HOUR), True),
                               ("C", at(DAY + HOUR), None, True)]
    # the same move and move back seen by the snapshot only: the stage did not change, its timestamp did
    now = [snap("C", DAY + HOUR)]
    assert needing([IN_C], now) == {"b1"}
    blind = run(day1, DAY + 2 * HOUR, now)
    assert path(blind)[2:] == [("C", at(20 * MIN), at(DAY + HOUR), False), ("C", at(DAY + HOUR), None, True)]


def test_a_bounce_within_a_second_is_two_moves_not_one() -> None:
    day1 = first_run_in_c()
    bounce = feed(*FULL_FEED, item("EDIT_STAGE", "D", DAY), item("EDIT_STAGE", "C", DAY + 500),
                  item("EDIT_STAGE", "D", DAY + 1_000))
    stays = run(day1, DAY + HOUR, [snap("D", DAY + 1_000)], {"b1": bounce})
    assert [(s.stage_key, s.entered_at) for s in stays[2:]] == [
        ("C", at(20 * MIN)), ("D", at(DAY)), ("C", at(DAY + 500)), ("D", at(DAY + 1_000))]
    assert all(s.exact for s in stays)


def test_late_evidence_fills_what_was_unknown_but_never_contradicts_an_exact_stay() -> None:
    window = feed(item("COMMENT", None, 5 * MIN), item("EDIT_STAGE", "B", 10 * MIN), item("EDIT_STAGE", "C", 20 * MIN))
    day1 = run([], 30 * MIN, [snap("C", 20 * MIN)], {"b1": window})  # known from B at 10 min on
    late = [StageChangeEvent("b1", "Y", T0 + 2 * MIN), StageChangeEvent("b1", "D", T0 + 15 * MIN)]
    she = ({"stageKey": "Z", "lastEntryToStageTs": T0 + 3 * MIN},)
    day2 = run(day1, DAY, [snap("C", 20 * MIN, stage_history_entries=she)], events=late)
    # Y and Z come before anything known (placed, ends unproven); D lies inside B, known exactly: dropped
    assert [(s.stage_key, s.entered_at, s.left_at, s.exact) for s in day2] == [
        ("Y", at(2 * MIN), at(3 * MIN), False), ("Z", at(3 * MIN), at(10 * MIN), False), *path(day1)]


def test_a_newsfeed_fetched_later_fills_the_gap_a_failed_fetch_left() -> None:
    day1 = first_run_in_c()
    # day 2: C -> D -> Y, but the newsfeed call failed: only the snapshot is known
    day2 = run(day1, DAY, [snap("Y", DAY - HOUR)])
    assert path(day2[2:]) == [("C", at(20 * MIN), at(DAY - HOUR), False), ("Y", at(DAY - HOUR), None, True)]
    # day 3: Y -> Z; this newsfeed still reaches back to creation
    full = feed(*FULL_FEED, item("EDIT_STAGE", "D", DAY - 2 * HOUR), item("EDIT_STAGE", "Y", DAY - HOUR),
                item("EDIT_STAGE", "Z", 2 * DAY - HOUR))
    day3 = run(day2, 2 * DAY, [snap("Z", 2 * DAY - HOUR)], {"b1": full})
    assert [s.stage_key for s in day3] == ["A", "B", "C", "D", "Y", "Z"] and all(s.exact for s in day3)
    assert day3[4].known_from == "snapshot" and day3[4].stay_key == day2[3].stay_key  # recorded stays keep their key
    # the same, but the box had gone C -> Y directly: a later newsfeed proves C's end exact
    direct = run(day1, DAY, [snap("Y", DAY - HOUR)])
    proven = run(direct, 2 * DAY, [snap("Z", 2 * DAY - HOUR)], {"b1": feed(*full[:2], *full[3:])})
    assert [(s.stage_key, s.exact) for s in proven[2:]] == [("C", True), ("Y", True), ("Z", True)]
    # a first run whose newsfeed failed: the stays before are added once a newsfeed reaches them
    blind = run([], 30 * MIN, [snap("C", 20 * MIN)])
    assert path(run(blind, HOUR, [snap("C", 20 * MIN)], {"b1": FULL_FEED})) == path(day1)


def test_evidence_inside_a_time_the_box_was_seen_in_one_stage_is_dropped() -> None:
    day1 = first_run_in_c()  # in C since 20 min (lastStageChangeTimestamp), still there at 25 min (updated)
    contradicting = [StageChangeEvent("b1", "Y", T0 + 22 * MIN)]
    window = feed(item("COMMENT", None, 25 * MIN), item("EDIT_STAGE", "D", DAY))
    day2 = run(day1, DAY + HOUR, [snap("D", DAY)], {"b1": window}, contradicting)
    assert [(s.stage_key, s.exact) for s in day2[2:]] == [("C", True), ("D", True)]


def test_a_snapshot_contradicting_what_was_seen_never_makes_an_end_exact() -> None:
    day1 = first_run_in_c()  # day 1 saw C (since 20 min) still current at its update at 25 min
    backdated = snap("D", 22 * MIN, updated=DAY)  # now Streak says D since 22 min
    window = feed(item("COMMENT", None, 24 * MIN), item("EDIT_STAGE", "D", 22 * MIN + 5_000))
    day2 = run(day1, DAY + HOUR, [backdated], {"b1": window})
    assert [(s.stage_key, s.left_exact) for s in day2[2:]] == [("C", False), ("D", None)]


def test_a_box_moved_to_another_pipeline_starts_an_inexact_stay_when_its_timestamp_did_not_move() -> None:
    day1 = first_run_in_c()
    # moved at DAY - HOUR (its last update); lastStageChangeTimestamp unchanged (assumed)
    moved = BoxSnapshot("b1", "pipe2", "A", T0 + 20 * MIN, T0, last_updated_ms=T0 + DAY - HOUR)
    assert needing([IN_C], [moved]) == set()  # the rule compares the timestamp only: not read
    day2 = update_history(day1, RunObservation(at(DAY), [moved], STAGES))
    assert update_history(day1, RunObservation(at(DAY), [moved], STAGES, {"b1": FULL_FEED})) == day2
    c, a = day2[2:]  # entered pipe2 by its last update at the latest: an upper bound, flagged
    assert (c.left_at, c.left_exact, c.exact) == (at(DAY - HOUR), False, False)
    assert (a.pipeline_key, a.entered_at, a.entered_exact, a.left_at) == ("pipe2", at(DAY - HOUR), False, None)
    assert update_history(day2, RunObservation(at(2 * DAY), [moved], STAGES)) == day2
    assert needing([moved], [moved]) == set()


def test_deleted_box_keeps_its_open_stay_and_gets_box_deleted_at() -> None:
    day1 = first_run_in_c() + run([], 30 * MIN, [snap("B", 0, box="b2")])
    other = [snap("B", 0, box="b2")]
    unread = run(day1, DAY, other, skipped=frozenset({"b1"}))  # not read this run: not deleted either
    assert [s for s in unread if s.box_key == "b1"] == [s for s in day1 if s.box_key == "b1"]
    day2 = run(day1, DAY, other)
    gone = [s for s in day2 if s.box_key == "b1"]
    assert {s.box_deleted_at for s in gone} == {at(DAY)}
    assert path(gone) == path(day1[:3])  # the open stay stays open: deletion is not a stage exit
    day3 = run(day2, 2 * DAY, other)
    assert {s.box_deleted_at for s in day3 if s.box_key == "b1"} == {at(DAY)}  # first run it was missing
    back = run(day3, 3 * DAY, [*other, IN_C])
    assert all(s.box_deleted_at is None for s in back) and path(back[:3]) == path(day1[:3])


def test_running_twice_adds_nothing() -> None:
    day1 = first_run_in_c()
    assert run(day1, 30 * MIN, [IN_C], {"b1": FULL_FEED}) == day1
    later = snap("C", 20 * MIN, updated=4 * HOUR)  # a comment, no move
    later_same_day = run(day1, 5 * HOUR, [later])
    assert path(later_same_day) == path(day1) and later_same_day[-1].last_seen_at == at(4 * HOUR)
    assert needing([IN_C], [IN_C]) == needing([IN_C], [later]) == set()


def test_webhook_and_newsfeed_for_the_same_move_are_one_stay() -> None:
    day1 = first_run_in_c()
    hook = StageChangeEvent("b1", "D", T0 + DAY + 1_000)  # delivered a second later than Streak's timestamp
    window = feed(*FULL_FEED, item("EDIT_STAGE", "D", DAY))
    stays = run(day1, DAY + HOUR, [snap("D", DAY)], {"b1": window}, [hook])
    assert path(stays)[3:] == [("D", at(DAY), None, True)] and stays[-1].known_from == "newsfeed"
    only_hook = run(day1, DAY + HOUR, [snap("D", DAY)], events=[StageChangeEvent("b1", "D", T0 + DAY)])
    assert [s.known_from for s in only_hook][3:] == ["webhook"] and len(only_hook) == 4
    twice = run(day1, DAY + HOUR, [snap("D", DAY)], events=[StageChangeEvent("b1", "D", T0 + DAY)] * 2)
    assert twice == only_hook  # a re-delivered webhook is the same move
    page_twice = run(day1, DAY + HOUR, [snap("D", DAY)], {"b1": [item("EDIT_STAGE", "D", DAY)] * 2})
    assert len(page_twice) == 4
    # events are passed again next run (they persist in crm.events): still one stay
    assert run(only_hook, DAY + HOUR, [snap("D", DAY)], events=[StageChangeEvent("b1", "D", T0 + DAY)]) == only_hook


def test_stage_history_entries_are_used_when_present() -> None:
    entries = ({"stageKey": "A", "lastEntryToStageTs": T0, "timeInStageMs": 10 * MIN},
               {"stageKey": "B", "lastEntryToStageTs": T0 + 10 * MIN, "timeInStageMs": 5 * MIN})
    stays = run([], HOUR, [snap("B", 10 * MIN, stage_history_entries=entries)])
    assert [(s.stage_key, s.entered_at, s.known_from) for s in stays] == [
        ("A", at(0), "stage_history_entries"), ("B", at(10 * MIN), "stage_history_entries")]
    assert stays[0].entered_exact and stays[0].left_exact is False  # totals per stage: no proof A -> B was direct


def test_an_exact_source_for_the_same_move_upgrades_an_inexact_open_stay() -> None:
    guessed = run([], HOUR, [snap("A", None)])  # no lastStageChangeTimestamp: assumed since creation
    assert (guessed[0].entered_at, guessed[0].entered_exact) == (at(0), False)
    hook = [StageChangeEvent("b1", "A", T0 + 400)]
    upgraded = run(guessed, 2 * HOUR, [snap("A", None)], events=hook)
    assert [(s.entered_at, s.entered_exact, s.known_from) for s in upgraded] == [(at(400), True, "webhook")]
    assert upgraded[0].stay_key != guessed[0].stay_key  # why the loader replaces the table, not appends


def test_a_box_without_a_usable_key_is_refused_never_keyed_none() -> None:
    box = {"pipelineKey": P, "stageKey": "C", "lastStageChangeTimestamp": T0}
    for broken, what in (({**box, "key": None}, "box key"), ({**box, "key": " "}, "box key"),
                         ({**box, "key": "b1", "pipelineKey": None}, "pipelineKey")):
        with pytest.raises(ValueError, match=f"box object: no usable {what}"):
            BoxSnapshot.from_api(broken)
    with pytest.raises(ValueError, match="BOX_CHANGE_STAGE box: no usable stageKey"):
        StageChangeEvent.from_box({"boxKey": "b1", "stageKey": None, "lastStageChangeTimestamp": T0})
    assert StageChangeEvent.from_box({"boxKey": "b1", "stageKey": "C", "lastStageChangeTimestamp": T0}).box_key == "b1"


def test_box_snapshot_from_the_api_box_object() -> None:
    box = {"key": "b1", "boxKey": "b1", "pipelineKey": P, "stageKey": "C", "creationTimestamp": T0,
           "lastStageChangeTimestamp": T0 + 20 * MIN, "stageHistoryEntries": [{"stageKey": "A"}]}
    assert BoxSnapshot.from_api(box) == BoxSnapshot("b1", P, "C", T0 + 20 * MIN, T0, ({"stageKey": "A"},))
    assert BoxSnapshot.from_api({**box, "stageHistoryEntries": None}).stage_history_entries == ()
    assert StageChangeEvent.from_box(box) == StageChangeEvent("b1", "C", T0 + 20 * MIN, P)


def test_rows_round_trip_and_keys_are_stable() -> None:
    stays = first_run_in_c()
    rows = [s.as_row() for s in stays]
    assert [r["exact"] for r in rows] == [True, True, True] and rows[0]["time_in_stage_s"] == 600.0
    naive = [{**r, "entered_at": r["entered_at"].replace(tzinfo=None)} for r in rows]  # as some drivers return
    assert [StageStay.from_row(r) for r in naive] == stays
    assert len({r["stay_key"] for r in rows}) == 3
    assert run(rows, 30 * MIN, [IN_C], {"b1": FULL_FEED}) == stays
    renamed = {P: {**STAGES[P], "C": StageInfo("Closed", 9)}}
    out = update_history(rows, RunObservation(at(HOUR), [IN_C], renamed))
    assert (out[-1].stage_name, out[-1].stage_order, out[-1].stay_key) == ("Closed", 9, stays[-1].stay_key)


# --- properties: a random true path, runs at random times, a 50-entry newsfeed window ---------------

WINDOW = 50
step = st.one_of(
    st.tuples(st.just("move"), st.integers(0, 3)),
    st.tuples(st.just("noise"), st.integers(1, 60)),
)


Simulation = tuple[list[tuple[str, int]], list[list[StageStay]], list[tuple[int, float]], tuple[int, BoxSnapshot]]


def simulate(
    steps: list[tuple[str, int]], run_after: list[int], hooked: set[int], failing: frozenset[int] = frozenset(),
    skew: int = 0,
) -> Simulation:
    """True path, the histories after each run, (run time, coverage start) of every newsfeed fetch,
    and the last run's (our clock, box as listed).

    ``hooked``: moves (by index in the path) also delivered by webhook; ``failing``: runs (by index)
    whose newsfeed call failed; ``skew``: our clock minus Streak's (the sandbox simulates days)."""
    stages = "ABCD"
    truth: list[tuple[str, int]] = [("A", 0)]
    events: list[dict[str, Any]] = [item("NEW_BOX", "A", 0)]
    t = 0
    for kind, value in steps:
        if kind == "move":
            stage = stages[value] if stages[value] != truth[-1][0] else stages[(value + 1) % 4]
            t += 7 * MIN
            truth.append((stage, t))
            events.append(item("EDIT_STAGE", stage, t))
        else:
            for _ in range(value):
                t += MIN
                events.append(item("NOTE", None, t))
    times = sorted({min(max(r, 0), len(events) - 1) for r in run_after} | {len(events) - 1})
    history: list[StageStay] = []
    listed: list[BoxSnapshot] | None = None  # the previous run's boxes (crm.boxes); None: no previous run
    outputs: list[list[StageStay]] = []
    fetches: list[tuple[int, float]] = []
    for number, index in enumerate(times):
        now = events[index]["timestamp"] - T0 + 30_000
        current = [s for s in truth if s[1] <= now][-1]
        updated = max(e["timestamp"] for e in events if e["timestamp"] - T0 <= now)
        box = BoxSnapshot("b1", P, current[0], T0 + current[1], T0, last_updated_ms=updated)
        feeds = {}
        if needing(listed, [box]) and number not in failing:
            window = feed(*(e for e in events if e["timestamp"] - T0 <= now))[:WINDOW]
            feeds["b1"] = window
            full = any(e["newsfeedEntrySpecific"] == "NEW_BOX" for e in window)
            fetches.append((now, float("-inf") if full else window[-1]["timestamp"] - T0))
        hooks = [StageChangeEvent("b1", s, T0 + ms) for i, (s, ms) in enumerate(truth) if i in hooked and ms <= now]
        history = run(history, now + skew, [box], feeds, hooks)
        listed = [box]
        outputs.append(history)
    return truth, outputs, fetches, (now + skew, box)


@settings(derandomize=True, max_examples=80, deadline=None)
@given(st.lists(step, max_size=14), st.lists(st.integers(0, 400), min_size=1, max_size=5),
       st.sets(st.integers(0, 14), max_size=4), st.frozensets(st.integers(0, 5), max_size=2),
       st.sampled_from([0, -400 * DAY, 400 * DAY]))
def test_history_never_invents_never_duplicates_and_is_exact_where_covered(
    steps: list[tuple[str, int]], run_after: list[int], hooked: set[int], failing: frozenset[int], skew: int
) -> None:
    truth, outputs, fetches, _ = simulate(steps, run_after, hooked, failing, skew)
    true_entries = {(s, T0 + ms) for s, ms in truth}
    exits = {T0 + ms: T0 + truth[i + 1][1] for i, (_, ms) in enumerate(truth[:-1])}
    final = outputs[-1]
    for stays in outputs:
        keys = [(s.stage_key, s.entered_at) for s in stays]
        assert len(keys) == len(set(keys)), "duplicated stay"
        assert len({s.stay_key for s in stays}) == len(stays)
        for s in stays:
            entered = int(s.entered_at.timestamp() * 1000)
            assert (s.stage_key, entered) in true_entries, f"invented stay {s}"
            if s.left_at is not None and s.left_exact:
                assert int(s.left_at.timestamp() * 1000) == exits[entered]
    for before, after in itertools.pairwise(outputs):  # a run keeps everything known before
        for s in before:
            if s.left_at is not None and s.exact:
                assert s in after, f"exactly known stay changed or lost: {s}"
            elif s.entered_exact:
                assert any((a.stage_key, a.entered_at) == (s.stage_key, s.entered_at) for a in after)
    assert final == sorted(final, key=lambda s: (s.box_key, s.entered_at, s.pipeline_key, s.stage_key))
    # Streak's timestamps are faithful here: the first run knows the current stay's entry exactly
    assert [s.entered_exact for s in outputs[0] if s.left_at is None] == [True]
    recorded = {(s.stage_key, int(s.entered_at.timestamp() * 1000)): s for s in final}
    for now, covered_from in fetches:
        for stage, ms in truth:
            if covered_from <= ms <= now:
                assert recorded[(stage, T0 + ms)].entered_exact, "covered entry not exact"
    assert [s for s in final if s.left_at is None] == [recorded[(truth[-1][0], T0 + truth[-1][1])]]
    for t in stage_transitions(final):
        if t.from_stage_key is not None:
            ms = int(t.at.timestamp() * 1000) - T0
            i = [m for _, m in truth].index(ms)
            assert truth[i - 1][0] == t.from_stage_key, "transition not in the true path"


@settings(derandomize=True, max_examples=30, deadline=None)
@given(st.lists(step, max_size=10), st.lists(st.integers(0, 300), min_size=1, max_size=4))
def test_rerunning_a_run_changes_nothing(steps: list[tuple[str, int]], run_after: list[int]) -> None:
    _, outputs, _, (now, box) = simulate(steps, run_after, set())
    final = outputs[-1]
    assert run(final, now, [box]) == final
    assert run([s.as_row() for s in reversed(final)], now, [box]) == final  # input order does not matter
    assert needing([box], [box]) == set()  # nothing moved since: no call
