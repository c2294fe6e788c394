"""Spool -> dlt merge into ``events`` (DuckDB): the row shape loads, repeats merge, failures re-hand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dlt
import duckdb
import pytest

from streak_eventlog.handover import drain, events_resource
from streak_eventlog.spool import Spool, SpoolRecord


def rec(key: str, name: str, props: dict[str, Any] | None = None) -> SpoolRecord:
    return SpoolRecord(event_key=key, event_name=name, source="api", received_ms=1_800_000_000_000,
                       timestamp_ms=1_700_000_000_000, distinct_id=key, box_key="b-1", properties=props or {"n": 1, "s": "x"})


def test_drain_merges_into_events_and_survives_a_failed_load(tmp_path: Path, dlt_isolated: Any) -> None:
    db = tmp_path / "events.duckdb"
    pipeline = dlt.pipeline("events_handover_test", destination=dlt.destinations.duckdb(str(db)), dataset_name="crm")

    def load(rows: list[dict[str, Any]]) -> None:
        pipeline.run(events_resource(rows))

    with Spool(tmp_path / "s.sqlite") as spool:
        spool.write([rec("a", "Offer made"), rec("b", "Paid")])
        assert drain(spool, load) == 2
        assert drain(spool, load) == 0
        spool.write([rec("a", "Offer accepted", {"n": 2})])

        def failing(rows: list[dict[str, Any]]) -> None:
            raise RuntimeError("warehouse down")

        with pytest.raises(RuntimeError):
            drain(spool, failing)
        assert spool.pending() == 1  # not acked: handed over again next time
        assert drain(spool, load) == 1
    conn = duckdb.connect(str(db))
    rows = conn.execute("SELECT event_key, event_name, properties, timestamp FROM crm.events ORDER BY 1").fetchall()
    types = dict(conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'crm' AND table_name = 'events'"
    ).fetchall())
    tables = {r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'crm'").fetchall()}
    conn.close()
    assert [(r[0], r[1]) for r in rows] == [("a", "Offer accepted"), ("b", "Paid")]
    assert '"n": 2' in rows[0][2] or '"n":2' in rows[0][2]
    assert types["timestamp"].startswith("TIMESTAMP") and types["properties"] == "JSON"
    assert not any(t.startswith("events__") for t in tables)  # properties is a JSON column, not a child table
