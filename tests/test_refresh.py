"""The refresh rule (streak_source/refresh.py) and its settings, without HTTP: the box fingerprint,
every fallback and its reason, what a plan keeps, the stored raw JSON giving back the same values,
and the basis read from a DuckDB file in batches into its temporary file (streak_source/spill.py)."""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from streak_source.config import StreakConfigError, full_refresh_days_from, refresh_mode_from
from streak_source.refresh import (
    BASIS_FORMAT,
    EARLIEST_OPEN_DUE,
    FINGERPRINT_FIELDS,
    BasisStamp,
    Decision,
    RefreshBasis,
    RefreshPlan,
    account_decision,
    box_fingerprint,
    children_json,
    first_decision,
)
from streak_source.spill import SpillFile
from streak_source.transform import box_row
from streak_warehouse import refresh_basis
from streak_warehouse.refresh_basis import (
    RefreshSettings,
    fetched_in_batches,
    in_place_reason,
    plan_for_run,
    read_basis,
    read_basis_duckdb,
)

NOW = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)
URL = "https://api.streak.com/api/"
ME = "agxzfm1haWxmb29nYWVyUser"


def api_box(**changes: Any) -> dict[str, Any]:
    box: dict[str, Any] = {
        "key": "b1", "boxKey": "b1", "pipelineKey": "p1", "stageKey": "5001", "name": "Acme",
        "lastUpdatedTimestamp": 1_764_000_000_000, "lastSavedTimestamp": 1_764_000_000_000,
        "lastStageChangeTimestamp": 1_763_000_000_000, "taskTotal": 3, "taskCompleteCount": 1,
        "taskIncompleteCount": 2, "taskOverdueCount": 1, "taskAssigneeKeySet": ["u1"],
        "incompleteTaskAssigneeKeySet": ["u1"], "overdueTaskAssigneeKeySet": ["u1"],
        "soonestTaskDueDate": 1_765_000_000_000, "earliestOverdueTaskDueDate": 1_763_500_000_000,
        "gmailThreadCount": 2, "totalNumberOfEmails": 5, "commentCount": 4, "lastCommentTimestamp": 1_763_900_000_000,
        "meetingNotesCount": 1, "callLogCount": 0, "fileCount": 2, "freshness": 0.93,
        "totalNumberOfSentEmailsViews": 3, "mostRecentSentEmailsViewsTimestamp": 1_763_950_000_000,
    }
    box.update(changes)
    return box


def stamp(**changes: Any) -> BasisStamp:
    values: dict[str, Any] = {"account_key": ME, "base_url": URL, "layout_version": 1, "basis_format": BASIS_FORMAT,
                              "last_full_load_at": NOW - timedelta(days=2)}
    values.update(changes)
    return BasisStamp(**values)


def decide(basis: RefreshBasis | None, requested: Any = "changed", unavailable: str | None = None,
           base_url: str = URL, every: float = 7.0) -> Decision:
    return first_decision(requested, basis, unavailable=unavailable, base_url=base_url, layout_version=1, now=NOW,
                          full_refresh_every_days=every)


# --------------------------------------------------------------------------- the fingerprint


def test_the_api_box_and_the_boxes_row_built_from_it_have_one_fingerprint() -> None:
    box = api_box()
    row = box_row(dict(box), {"5001": "Lead"})
    assert isinstance(row["lastUpdatedTimestamp"], datetime)  # the row holds datetimes, the API epoch ms
    assert box_fingerprint(row) == box_fingerprint(box) is not None


@pytest.mark.parametrize("name", FINGERPRINT_FIELDS)
def test_every_child_describing_field_moves_the_fingerprint(name: str) -> None:
    box = api_box()
    moved = api_box(**{name: ["u9"] if isinstance(box.get(name), list) else 42 if name != "pipelineKey" else "p2"})
    assert box_fingerprint(moved) != box_fingerprint(box)


def test_a_field_that_was_absent_and_appears_moves_it() -> None:
    box = api_box()
    del box["lastCommentTimestamp"]
    assert box_fingerprint(box) != box_fingerprint(api_box())


@pytest.mark.parametrize("changes", [
    {"freshness": 0.5}, {"taskOverdueCount": 2}, {"overdueTaskAssigneeKeySet": []},
    {"totalNumberOfSentEmailsViews": 9}, {"mostRecentSentEmailsViewsTimestamp": 1_764_100_000_000},
    {"stageKey": "5002", "name": "Acme Corp", "fields": {"1001": "x"}},
    # the clock passes the soonest due date: it moves from "soonest" to "earliest overdue"
    {"soonestTaskDueDate": 1_766_000_000_000, "earliestOverdueTaskDueDate": 1_763_500_000_000},
])
def test_the_clock_and_box_only_edits_do_not_move_it(changes: dict[str, Any]) -> None:
    """Overdue figures, freshness and e-mail views move with the clock while no child changes; the
    stage, name and field values are in the box row itself, re-read every run."""
    before = api_box(soonestTaskDueDate=1_765_000_000_000, earliestOverdueTaskDueDate=1_763_500_000_000)
    assert box_fingerprint(api_box(**changes)) == box_fingerprint(before)


def test_an_earlier_open_due_date_moves_it() -> None:
    for name in EARLIEST_OPEN_DUE:
        assert box_fingerprint(api_box(**{name: 1_700_000_000_000})) != box_fingerprint(api_box())


@pytest.mark.parametrize("value", [None, "1764000000000", True, float("nan")])
def test_no_fingerprint_without_a_usable_last_updated_time(value: Any) -> None:
    box = api_box(lastUpdatedTimestamp=value)
    assert box_fingerprint(box) is None


# --------------------------------------------------------------------------- the decision


def test_full_when_asked_for() -> None:
    assert decide(RefreshBasis(stamp()), requested="full") == Decision("full", "asked for")


def test_full_when_nothing_was_asked_says_it_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing set anywhere: the run does not claim it was asked for a full load."""
    from streak_warehouse.refresh_basis import configured_refresh

    monkeypatch.delenv("SOURCES__STREAK__REFRESH", raising=False)
    assert configured_refresh(None).asked is False
    assert configured_refresh("full").asked is True
    monkeypatch.setenv("SOURCES__STREAK__REFRESH", "full")
    assert configured_refresh(None).asked is True
    default = plan_for_run(RefreshSettings("full", asked=False), NOW)
    assert default.bind(URL) == Decision("full", "the default")
    assert plan_for_run(RefreshSettings("full", asked=True), NOW).bind(URL) == Decision("full", "asked for")


def test_changed_when_everything_matches() -> None:
    decision = decide(RefreshBasis(stamp()), base_url=URL.rstrip("/"))
    assert decision.mode == "changed" and "last full load 2026-11-30 06:00 UTC" in decision.reason


@pytest.mark.parametrize(("basis", "kwargs", "reason"), [
    (None, {}, "no previous complete load with a refresh basis"),
    (RefreshBasis(stamp()), {"unavailable": in_place_reason("filesystem")}, "filesystem destination is loaded"),
    (RefreshBasis(stamp(layout_version=0)), {}, "written by layout version 0, this code writes 1"),
    (RefreshBasis(stamp(basis_format=BASIS_FORMAT + 1)), {}, f"has format {BASIS_FORMAT + 1}"),
    (RefreshBasis(stamp()), {"base_url": "http://127.0.0.1:9/api/"}, "another base URL (https://api.streak.com/api/)"),
    (RefreshBasis(stamp(last_full_load_at=NOW - timedelta(days=7, minutes=1))), {},
     "the last full load is 7.0 days old (full_refresh_every_days = 7)"),
    (RefreshBasis(stamp()), {"every": 0}, "2.0 days old (full_refresh_every_days = 0)"),
    (RefreshBasis(stamp(last_full_load_at=None)), {}, "does not say when the last full load was"),
])
def test_each_fallback_to_a_full_load_says_why(basis: RefreshBasis | None, kwargs: dict[str, Any], reason: str) -> None:
    decision = decide(basis, **kwargs)
    assert decision.mode == "full"
    assert decision.reason.startswith("fell back to a full load: ") and reason in decision.reason


def test_a_full_load_exactly_at_the_limit_is_still_recent() -> None:
    assert decide(RefreshBasis(stamp(last_full_load_at=NOW - timedelta(days=7)))).mode == "changed"


@pytest.mark.parametrize(("me", "theirs", "reason"), [
    ("other-user", ME, "another Streak account"),
    (None, ME, "could not be identified"),
    (ME, None, "could not be identified"),
])
def test_another_or_an_unknown_account_falls_back(me: str | None, theirs: str | None, reason: str) -> None:
    decision = account_decision(Decision("changed", "ok"), stamp(account_key=theirs), me)
    assert decision.mode == "full" and reason in decision.reason
    assert account_decision(Decision("changed", "ok"), stamp(), ME) == Decision("changed", "ok")
    assert account_decision(Decision("full", "x"), stamp(account_key=theirs), me) == Decision("full", "x")


# --------------------------------------------------------------------------- the plan


def basis_with(box: dict[str, Any], items: list[Any], fingerprint: str | None = "same") -> RefreshBasis:
    basis = RefreshBasis(stamp())
    basis.keep("b1", "box_tasks", box_fingerprint(box) if fingerprint == "same" else fingerprint, children_json(items))
    return basis


def plan(basis: RefreshBasis | None, requested: Any = "changed", me: str | None = ME) -> tuple[RefreshPlan, Any]:
    p = RefreshPlan(requested=requested, basis=basis, layout_version=1, started_at=NOW)
    p.bind(URL)
    calls: list[int] = []

    def me_key() -> str | None:
        calls.append(1)
        return me

    return p, me_key


def test_a_plan_keeps_the_children_of_an_unchanged_box_only() -> None:
    box, items = api_box(), [{"key": "t1", "text": "Call"}]
    p, me = plan(basis_with(box, items))
    assert json.loads(p.kept_children(box, "box_tasks", me) or "null") == items
    assert p.kept_children(api_box(taskTotal=4), "box_tasks", me) is None  # moved
    assert p.kept_children(box, "box_comments", me) is None  # never read before
    assert p.kept_children(api_box(key="b2", boxKey="b2"), "box_tasks", me) is None  # new box
    assert (p.reused, p.reread, p.reread_boxes) == (1, 3, {"b1", "b2"})
    assert p.outcome_line() == "refresh: 3 child lists re-read (2 boxes new or changed), 1 kept from the previous load without a call"


@pytest.mark.parametrize(("requested", "me", "fingerprint"), [
    ("full", ME, "same"),          # a full load keeps nothing
    ("changed", "someone", "same"),  # another account
    ("changed", ME, None),         # the box had no fingerprint then
])
def test_a_plan_keeps_nothing_when_it_must_not(requested: str, me: str, fingerprint: str | None) -> None:
    box = api_box()
    p, me_key = plan(basis_with(box, [1], fingerprint), requested, me)
    assert p.kept_children(box, "box_tasks", me_key) is None


def test_the_account_is_asked_once_and_the_stamp_carries_the_last_full_load() -> None:
    p, me = plan(RefreshBasis(stamp()))
    row = p.stamp_row(me, URL)
    assert (row["mode"], row["last_full_load_at"], row["loaded_at"]) == ("changed", NOW - timedelta(days=2), NOW)
    assert (row["account_key"], row["layout_version"], row["basis_format"]) == (ME, 1, BASIS_FORMAT)
    full, me_full = plan(None)
    assert full.stamp_row(me_full, URL)["last_full_load_at"] == NOW  # a full load is the new last full load
    calls = []
    p2 = RefreshPlan(requested="changed", basis=RefreshBasis(stamp()), layout_version=1, started_at=NOW)
    p2.bind(URL)
    for _ in range(3):
        p2.settle(lambda: calls.append(1) or ME)
    assert len(calls) == 1


def test_only_a_changed_refresh_on_a_destination_that_keeps_one_writes_a_basis() -> None:
    assert RefreshPlan(requested="changed").keeps_basis
    assert not RefreshPlan(requested="full").keeps_basis
    assert not RefreshPlan(requested="changed", unavailable="filesystem").keeps_basis


def test_a_plan_must_be_bound_first() -> None:
    with pytest.raises(RuntimeError, match="bind"):
        RefreshPlan().settle(lambda: ME)


def test_stored_raw_json_gives_back_exactly_the_same_values() -> None:
    items = [{"text": "nul \x00 and ünïcode \u2028 ok", "n": 2**63 + 5, "f": 0.1 + 0.2, "neg": -0.0,
              "nested": {"a": [1, None, True, {"b": "\\"}]}, "nan": float("nan")}, None, "bare"]
    text = children_json(items)
    assert text.isascii() and "\x00" not in text  # Postgres text cannot hold NUL
    back = json.loads(text)
    assert math.isnan(back[0].pop("nan")) and math.isnan(items[0].pop("nan"))
    assert back == items and repr(back) == repr(items)
    basis = RefreshBasis(stamp())
    basis.keep("b", "box_tasks", "fp", text)
    assert basis.items_json("b", "box_tasks") == text and len(basis) == 1 and "fp" not in repr(basis)


# --------------------------------------------------------------------------- settings


def test_settings_and_their_one_line_errors() -> None:
    assert refresh_mode_from(None) == "full" and refresh_mode_from(" Changed ") == "changed"
    assert full_refresh_days_from(None) == 7.0 and full_refresh_days_from("0.5") == 0.5
    with pytest.raises(StreakConfigError) as bad_mode:
        refresh_mode_from("sometimes")
    assert str(bad_mode.value) == ("sources.streak.refresh = 'sometimes' (env SOURCES__STREAK__REFRESH) is not "
                                   'allowed: "full" or "changed"')
    for value in (-1, "abc", float("nan"), True):
        with pytest.raises(StreakConfigError, match="SOURCES__STREAK__FULL_REFRESH_EVERY_DAYS"):
            full_refresh_days_from(value)


def test_a_full_run_never_reads_the_basis() -> None:
    read: list[int] = []

    def reader() -> RefreshBasis:
        read.append(1)
        return RefreshBasis(stamp())

    assert plan_for_run(RefreshSettings("full"), NOW, reader).basis is None
    assert plan_for_run(RefreshSettings("changed"), NOW, reader, unavailable="x").basis is None
    assert not read
    assert plan_for_run(RefreshSettings("changed", 3.0), NOW, reader).basis is not None and read == [1]


# --------------------------------------------------------------------------- the basis' storage


def test_a_spill_file_gives_back_each_append_by_position() -> None:
    spill = SpillFile()
    written = [b"first", b"", b"\x00\xff" * 5000, b"last"]
    places = [spill.append(data) for data in written]
    assert [spill.read(*place) for place in places] == written
    late = spill.append(b"after a read")  # buffered again, written through by the next read
    assert spill.read(*late) == b"after a read" and spill.size == sum(map(len, written)) + 12
    with ThreadPoolExecutor(4) as pool:  # reads by position: threads do not move each other's offset
        assert list(pool.map(lambda place: spill.read(*place), places * 20)) == written * 20
    with pytest.raises(ValueError, match="not a written range"):
        spill.read(spill.size - 2, 5)
    spill.close()
    with pytest.raises(ValueError, match="closed"):
        spill.read(*places[0])
    with pytest.raises(ValueError, match="after close"):
        spill.append(b"x")


def test_a_released_basis_refuses_lookups_rather_than_have_every_box_re_read() -> None:
    box = api_box()
    basis = basis_with(box, [{"key": "t1"}])
    p, me = plan(basis)
    assert p.kept_children(box, "box_tasks", me) is not None
    p.release_basis()
    assert basis.stamp == stamp() and len(basis) == 0
    with pytest.raises(RuntimeError, match="released when extract ended"):
        p.kept_children(box, "box_tasks", me)


def basis_file(path: Path, children: list[tuple[str, str, str | None, str]]) -> None:
    """A DuckDB file holding a ``crm`` basis: the stamp of :func:`stamp` and ``children``."""
    import duckdb

    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA crm")
        con.execute("CREATE TABLE crm.refresh_basis (account_key VARCHAR, base_url VARCHAR, layout_version BIGINT, "
                    "basis_format BIGINT, last_full_load_at TIMESTAMP WITH TIME ZONE)")
        con.execute("INSERT INTO crm.refresh_basis VALUES (?, ?, 1, ?, ?)",
                    [ME, URL, BASIS_FORMAT, NOW - timedelta(days=2)])
        con.execute("CREATE TABLE crm.refresh_basis_children (box_key VARCHAR, child_table VARCHAR, "
                    "pipeline_key VARCHAR, fingerprint VARCHAR, items_json VARCHAR)")
        con.executemany("INSERT INTO crm.refresh_basis_children VALUES (?, ?, 'p1', ?, ?)", children)


def test_the_basis_is_read_in_batches_the_same_streamed_or_in_box_slices(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import duckdb

    children = [(f"b{n}", table, None if n == 4 else f"fp{n}", children_json([{"n": n, "in": table, "s": "ü\x00"}]))
                for n in range(7) for table in ("box_tasks", "box_files")]
    path = tmp_path / "live.duckdb"
    basis_file(path, children)
    monkeypatch.setattr(refresh_basis, "BASIS_BATCH_ROWS", 4)  # 14 rows: four batches
    monkeypatch.setattr(refresh_basis, "BASIS_CHUNK_BOXES", 3)  # 7 boxes: three slices
    streamed = read_basis_duckdb(path, "crm")
    with duckdb.connect(str(path), read_only=True) as con:
        sliced = read_basis(lambda sql: con.execute(sql).fetchall(), "crm")
        select = "SELECT box_key FROM crm.refresh_basis_children ORDER BY box_key, child_table"
        assert [len(rows) for rows in fetched_in_batches(con, select, 4)] == [4, 4, 4, 2]
        assert [row for rows in fetched_in_batches(con, select, 4) for row in rows] == con.execute(select).fetchall()
    for basis in (streamed, sliced):
        assert basis is not None and basis.stamp == stamp() and len(basis) == len(children)
        for box, table, fingerprint, items in children:
            assert (basis.fingerprint(box, table), basis.items_json(box, table)) == (fingerprint, items)
        basis.release()
    with duckdb.connect(str(path)) as con:  # no stamp, no basis: the first refresh runs a full load
        con.execute("DELETE FROM crm.refresh_basis")
    assert read_basis_duckdb(path, "crm") is None and read_basis_duckdb(tmp_path / "none.duckdb", "crm") is None
