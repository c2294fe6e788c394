"""Spool -> ``drain``: every pending event handed over once, acked only after the load returned.

The merge into ``crm.events`` itself (DuckDB and Postgres, surviving the main job's swap) is
tests/test_events_load.py; this checks the two-phase handover in isolation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from streak_eventlog.handover import Drained, drain
from streak_eventlog.spool import ROW_COLUMNS, Spool, SpoolRecord


def rec(key: str, name: str, props: dict[str, Any] | None = None) -> SpoolRecord:
    return SpoolRecord(event_key=key, event_name=name, source="api", received_ms=1_800_000_000_000,
                       timestamp_ms=1_700_000_000_000, distinct_id=key, box_key="b-1", properties=props or {"n": 1, "s": "x"})


def test_drain_hands_each_event_over_once_and_a_failed_load_acks_nothing(tmp_path: Path) -> None:
    loaded: list[dict[str, Any]] = []

    def take(rows: list[dict[str, Any]], rejected: Any) -> None:
        loaded.extend(rows)

    with Spool(tmp_path / "s.sqlite") as spool:
        spool.write([rec("a", "Offer made"), rec("b", "Paid")])
        assert drain(spool, take) == Drained(2, 0)
        assert drain(spool, take) == Drained(0, 0)
        spool.write([rec("a", "Offer accepted", {"n": 2})])

        def failing(rows: list[dict[str, Any]], rejected: Any) -> None:
            raise RuntimeError("warehouse down")

        with pytest.raises(RuntimeError):
            drain(spool, failing)
        assert spool.pending() == 1  # not acked: handed over again next time
        assert drain(spool, take) == Drained(1, 0)
        assert spool.pending() == 0
    assert [(row["event_key"], row["event_name"]) for row in loaded] == [
        ("a", "Offer made"), ("b", "Paid"), ("a", "Offer accepted")]
    assert all(list(row) == list(ROW_COLUMNS) for row in loaded)
    assert loaded[-1]["properties"] == {"n": 2}


def test_drain_reads_in_batches_of_the_given_size(tmp_path: Path) -> None:
    sizes: list[int] = []
    with Spool(tmp_path / "s.sqlite") as spool:
        spool.write([rec(f"e{i}", "Ping") for i in range(7)])
        assert drain(spool, lambda rows, rejected: sizes.append(len(rows)), batch_size=3) == Drained(7, 0)
    assert sizes == [3, 3, 1]
