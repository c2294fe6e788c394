"""The spool: two-phase handover, identity, concurrency, durability across SIGKILL, one receiver."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
import requests
from events_support import API_KEY, ReceiverProcess, sigkill_mid_stream

from streak_eventlog.spool import (
    EVENTS_COLUMN_HINTS,
    ROW_COLUMNS,
    Spool,
    SpoolBusy,
    SpoolRecord,
)


def rec(key: str, name: str = "e", ts: int | None = 1_700_000_000_000, received: int = 1_800_000_000_000, **kw: object) -> SpoolRecord:
    return SpoolRecord(event_key=key, event_name=name, source="api", received_ms=received, timestamp_ms=ts, **kw)  # type: ignore[arg-type]


def test_rows_have_the_crm_events_shape(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.sqlite") as spool:
        spool.write([rec("a", properties={"n": 1}, box_key="b", pipeline_key="p")])
        batch = spool.read_batch()
    assert list(batch.rows[0]) == list(ROW_COLUMNS) == list(EVENTS_COLUMN_HINTS)
    row = batch.rows[0]
    assert row["timestamp"].tzinfo is not None and row["properties"] == {"n": 1}


def test_read_then_ack_hands_each_event_over_once(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.sqlite") as spool:
        spool.write([rec(f"k{i}") for i in range(5)])
        first = spool.read_batch(limit=3)
        assert [r["event_key"] for r in first.rows] == ["k0", "k1", "k2"]
        assert len(spool.read_batch()) == 5  # not acked yet: still pending (the load may fail)
        assert spool.ack(first) == 3
        assert [r["event_key"] for r in spool.read_batch().rows] == ["k3", "k4"]
        assert spool.pending() == 2


def test_an_event_updated_between_read_and_ack_is_handed_over_again(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.sqlite") as spool:
        spool.write([rec("k", name="old")])
        batch = spool.read_batch()
        spool.write([rec("k", name="new", ts=1, received=1_900_000_000_000)])
        assert spool.ack(batch) == 0
        (again,) = spool.read_batch().rows
        assert again["event_name"] == "new"
        assert again["timestamp"].timestamp() == 1_700_000_000  # the first timestamp stays
        assert again["last_received_at"].timestamp() == 1_900_000_000


def test_concurrent_writers_lose_nothing_and_group_commit(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.sqlite") as spool:
        def writer(n: int) -> None:
            for i in range(200):
                spool.write([rec(f"w{n}-{i}")])

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert spool.events_written == 1600
        assert spool.commits < 1600  # several requests shared a commit
    with Spool(tmp_path / "s.sqlite", writer=False) as reader:
        assert reader.pending() == 1600


def test_wal_mode_and_full_sync_by_default(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.sqlite") as spool:
        spool.write([rec("a")])
    conn = sqlite3.connect(tmp_path / "s.sqlite")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with pytest.raises(ValueError):
        Spool(tmp_path / "t.sqlite", synchronous="OFF")  # type: ignore[arg-type]


def test_a_second_receiver_on_the_same_spool_is_refused(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.sqlite"), pytest.raises(SpoolBusy):
        Spool(tmp_path / "s.sqlite").start()


def test_sigkill_right_after_2xx_loses_nothing(tmp_path: Path) -> None:
    """Every event the receiver acknowledged is in the spool after a SIGKILL mid-stream."""
    spool_path = tmp_path / "spool.sqlite"
    receiver = ReceiverProcess(spool_path, tmp_path)

    def post(session: requests.Session, n: int, i: int) -> list[str]:
        answer = session.post(
            receiver.url + "events/ingestion/v1",
            json={"event_name": "k", "distinct_id": f"c{n}-{i}"},
            headers={"X-API-Key": API_KEY},
            timeout=5,
        )
        return [f"api:c{n}-{i}"] if answer.status_code == 202 else []

    acknowledged = sigkill_mid_stream(receiver, post, at_least=300)
    with Spool(spool_path, writer=False) as reader:
        keys = {row["event_key"] for row in reader.all_rows()}
    assert len(acknowledged) >= 300
    assert set(acknowledged) <= keys


def test_a_submission_that_cannot_be_stored_fails_alone_in_its_commit_group(tmp_path: Path) -> None:
    """A record SQLite cannot take (an integer beyond 64 bits, a lone surrogate) in a commit group:
    only its own submission fails; the group's others are committed (the receiver refuses such
    records before submitting them; this is the spool's own safety net)."""
    path = tmp_path / "s.sqlite"
    with Spool(path) as spool:
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # the writer waits here, so what is submitted meanwhile forms a group
        first = spool.submit([rec("first")])
        too_big = spool.submit([rec("too-big", ts=2**70)])
        good = [spool.submit([rec(f"good-{i}")]) for i in range(5)]
        not_unicode = spool.submit([rec("surrogate", name="\ud800")])
        last = spool.submit([rec("last")])
        blocker.execute("COMMIT")
        blocker.close()
        for done in (first, *good, last):
            assert done.result(30) is None
        with pytest.raises(OverflowError):
            too_big.result(30)
        with pytest.raises(UnicodeEncodeError):
            not_unicode.result(30)
    keys = {row["event_key"] for row in Spool(path, writer=False).all_rows()}
    assert keys == {"first", "last", *(f"good-{i}" for i in range(5))}


def test_rows_an_older_receiver_spooled_that_cannot_be_loaded_are_handed_over_as_rejected(tmp_path: Path) -> None:
    """Written straight into the spool (as a receiver before issue 21 did): the read names each one's
    fault instead of failing, the ack settles them with their reason, and ``rejected`` lists them."""
    with Spool(tmp_path / "s.sqlite") as spool:
        spool.write([
            rec("before"),
            rec("streak:BOX_CREATE:b1:9000000000000000", ts=9_000_000_000_000_000),
            rec("api:a\x00b", distinct_id="a\x00b"),
            rec("api:ab", distinct_id="ab"),
            rec("infinite", properties={"x": float("inf")}),
            rec("after"),
        ])
        batch = spool.read_batch()
        assert [r["event_key"] for r in batch.rows] == ["before", "api:ab", "after"]
        assert {r.event_key: r.reason for r in batch.rejected} == {
            "streak:BOX_CREATE:b1:9000000000000000": "timestamp is outside 1970-01-01 .. 9999-12-31",
            "api:a\x00b": "event_key contains a NUL character (\\u0000)",
            "infinite": "properties is not valid JSON",
        }
        assert len(batch) == 6 and spool.ack(batch) == 6 and spool.pending() == 0
        assert [(r.event_key, r.raw["timestamp_ms"]) for r in spool.rejected()][0] == (
            "streak:BOX_CREATE:b1:9000000000000000", 9_000_000_000_000_000)
        assert len(spool.rejected()) == 3
        spool.write([rec("infinite", properties={"x": 1})])  # a corrected version loads and is no longer rejected
        (fixed,) = spool.read_batch().rows
        assert fixed["properties"] == {"x": 1} and len(spool.rejected()) == 2
