"""The spool: two-phase handover, identity, concurrency, durability across SIGKILL, one receiver."""

from __future__ import annotations

import signal
import sqlite3
import threading
from pathlib import Path

import pytest
import requests
from events_support import API_KEY, ReceiverProcess

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
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(n: int) -> None:
        session = requests.Session()
        i = 0
        while not stop.is_set():
            try:
                answer = session.post(
                    receiver.url + "events/ingestion/v1",
                    json={"event_name": "k", "distinct_id": f"c{n}-{i}"},
                    headers={"X-API-Key": API_KEY},
                    timeout=5,
                )
            except requests.RequestException:
                return
            if answer.status_code == 202:
                with lock:
                    acknowledged.append(f"api:c{n}-{i}")
            i += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    try:
        while any(t.is_alive() for t in threads):  # kill once a few hundred were acknowledged
            with lock:
                if len(acknowledged) >= 300:
                    break
            threads[0].join(0.01)
    finally:
        assert receiver.stop(signal.SIGKILL) == -signal.SIGKILL
    stop.set()
    for t in threads:
        t.join()
    with Spool(spool_path, writer=False) as reader:
        keys = {row["event_key"] for row in reader.all_rows()}
    assert len(acknowledged) >= 300
    assert set(acknowledged) <= keys
