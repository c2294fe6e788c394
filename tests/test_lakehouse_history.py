"""History mode on the lakehouse (issue 23): ``<table>_history`` as Delta / Iceberg tables next to the
copy on the filesystem destination (``streak_warehouse/history_lakehouse.py``), read back with the
formats' own readers (``deltalake``, ``pyiceberg``).

First the rules on hand-made Delta tables, the same cases as tests/test_history_mode.py's SQL ones;
then two daily loads of a small sandbox account per format: the history as of a time after each
load equals that load's copy (every tracked table, row by row), each load added as many versions as
records changed, the boxes the sandbox deleted are marked deleted, and ``box_newsfeed`` keeps the
entries a backfill fetched when the next load does not read them again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import streak_clock
from benchmarks.history_mode import BUSY
from pipelines.job import run_full_load
from streak_source.sandbox import Sandbox
from streak_warehouse.destination import PIPELINE_NAME
from streak_warehouse.history_lakehouse import DeltaTables, record_versions_in
from streak_warehouse.history_mode import DELETED, VALID_FROM, VALID_TO, TrackedTable, tracked_tables
from streak_warehouse.history_mode_check import TableSnapshot, changed_records, snapshot
from tests.destinations_support import DATASET
from tests.test_history_mode import BOXES, FEED, T0
from tests.test_lakehouse import FAST_NORMALIZE, latest_iceberg_metadata, lakehouse_env

pytestmark = pytest.mark.timeout(300)

BOX_COLUMNS = pa.schema([("box_key", pa.string()), ("name", pa.string()), ("amount", pa.float64()),
                         ("fields", pa.string()), ("_dlt_load_id", pa.string()), ("_dlt_id", pa.string())])
FEED_COLUMNS = pa.schema([("newsfeed_key", pa.string()), ("box_key", pa.string()), ("_dlt_load_id", pa.string()),
                          ("_dlt_id", pa.string())])


# --------------------------------------------------------------------------- the rules, on Delta


def delta_rows(folder: Path) -> list[dict[str, Any]]:
    from deltalake import DeltaTable

    return DeltaTable(str(folder)).to_pyarrow_table().to_pylist()


def load(lake_dir: Path, at: datetime, boxes: Sequence[tuple[Any, ...]], feed: Sequence[str] = ()) -> dict[str, int]:
    """One "run": overwrite the copy's Delta tables (as dlt does) and record its versions at ``at``."""
    from deltalake import write_deltalake

    load_id = str(at.timestamp())
    box_rows = [dict(zip(BOX_COLUMNS.names, (*box, load_id, box[0]), strict=True)) for box in boxes]
    feed_rows = [{"newsfeed_key": key, "box_key": "b1", "_dlt_load_id": load_id, "_dlt_id": key} for key in feed]
    write_deltalake(str(lake_dir / "boxes"), pa.Table.from_pylist(box_rows, BOX_COLUMNS), mode="overwrite")
    write_deltalake(str(lake_dir / "box_newsfeed"), pa.Table.from_pylist(feed_rows, FEED_COLUMNS), mode="overwrite")
    return record_versions_in(DeltaTables(lambda name: str(lake_dir / name), {}), (BOXES, FEED), at).opened


def test_on_delta_a_version_is_added_only_where_a_value_changed_and_a_gone_record_is_marked_deleted(tmp_path: Path) -> None:
    t1, t2, t3, t4 = (T0 + timedelta(days=n) for n in range(4))
    assert load(tmp_path, t1, [("b1", "Acme", 10.0, '{"a": 1}'), ("b2", "Beta", None, None)])["boxes"] == 2
    assert load(tmp_path, t2, [("b1", "Acme", 10.0, '{"a": 1}'), ("b2", "Beta", None, None)])["boxes"] == 0
    assert load(tmp_path, t3, [("b1", "Acme", 12.5, '{"a": 1}'), ("b3", "Gamma", 1.0, None)])["boxes"] == 2
    assert load(tmp_path, t4, [("b1", "Acme", 12.5, '{"a": 2}'), ("b2", "Beta", None, None), ("b3", "Gamma", 1.0, None)])["boxes"] == 2
    history = sorted((r["box_key"], r["name"], r["amount"], r[VALID_FROM], r[VALID_TO], r[DELETED])
                     for r in delta_rows(tmp_path / "boxes_history"))
    assert history == [
        ("b1", "Acme", 10.0, t1, t3, False),
        ("b1", "Acme", 12.5, t3, t4, False),  # a JSON value changed: a new version
        ("b1", "Acme", 12.5, t4, None, False),
        ("b2", "Beta", None, t1, t3, True),  # gone at t3 ...
        ("b2", "Beta", None, t4, None, False),  # ... and back at t4
        ("b3", "Gamma", 1.0, t3, None, False),
    ]
    assert {c for c in delta_rows(tmp_path / "boxes_history")[0] if c.startswith("_dlt")} == set()  # dlt's columns left out


def test_on_delta_an_append_only_table_keeps_every_entry_ever_fetched_once_as_first_fetched(tmp_path: Path) -> None:
    t1, t2, t3 = (T0 + timedelta(days=n) for n in range(3))
    assert load(tmp_path, t1, [], ["n1", "n2"])["box_newsfeed"] == 2
    assert load(tmp_path, t2, [], ["n3"])["box_newsfeed"] == 1  # n1, n2 not fetched: not gone
    assert load(tmp_path, t3, [], ["n1"])["box_newsfeed"] == 0  # fetched again: already kept
    assert sorted((r["newsfeed_key"], r["_dlt_load_id"]) for r in delta_rows(tmp_path / "box_newsfeed")) == [
        ("n1", str(t1.timestamp())), ("n2", str(t1.timestamp())), ("n3", str(t2.timestamp()))]
    assert [(r[VALID_TO], r[DELETED]) for r in delta_rows(tmp_path / "box_newsfeed_history")] == [(None, False)] * 3


# --------------------------------------------------------------------------- three loads of a sandbox


def read_table(bucket: Path, table_format: str, name: str) -> list[dict[str, Any]]:
    """Every row of ``crm/<name>`` with the format's own reader; none where the table has no folder."""
    folder = bucket / DATASET / name
    if not folder.exists():
        return []
    if table_format == "delta":
        return delta_rows(folder)
    from pyiceberg.table import StaticTable

    return StaticTable.from_metadata(str(latest_iceberg_metadata(folder))).scan().to_arrow().to_pylist()


def table_snapshot(table: TrackedTable, rows: Sequence[dict[str, Any]]) -> TableSnapshot:
    """The rows as the analyst sees them (dlt's columns left out), keyed by the record's key."""
    columns = table.copy_columns()
    return snapshot(([row.get(column) for column in columns] for row in rows), len(table.key))


def as_of(rows: Sequence[dict[str, Any]], moment: datetime) -> list[dict[str, Any]]:
    """docs/history.md's "as of" rule on a history read back: the versions valid at ``moment``."""
    return [r for r in rows if r[VALID_FROM] <= moment and (r[VALID_TO] is None or r[VALID_TO] > moment)]


@pytest.mark.slow
@pytest.mark.parametrize("table_format", ["delta", "iceberg"])
def test_two_loads_keep_a_history_whose_state_after_each_load_is_that_loads_copy(
    table_format: str, dlt_isolated: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dlt

    bucket = tmp_path / "lake"
    for key, value in {**lakehouse_env(bucket, table_format), **FAST_NORMALIZE}.items():
        monkeypatch.setenv(key, value)
    copies: list[dict[str, TableSnapshot]] = []
    moments: list[datetime] = []
    summaries: list[dict[str, Any]] = []
    with Sandbox(boxes=20, seed=23, rates={**BUSY, "deleted": 0.1}) as sb:
        for day in range(2):
            if day:
                sb.advance(1)
            # the first load reads every box's newsfeed: the next, reading few or none, must keep its entries
            summary = run_full_load({"api_key": sb.api_key, "base_url": sb.base_url, "max_requests_per_second": 1000},
                                    progress=None, backfill_history=day == 0)
            summaries.append(asdict(summary))
            moments.append(streak_clock.now())  # after this load's end, before the next one's
            tracked = tracked_tables(dlt.attach(pipeline_name=PIPELINE_NAME).default_schema)
            copies.append({t.name: table_snapshot(t, read_table(bucket, table_format, t.name)) for t in tracked})
        deleted_boxes = {c["box_key"] for c in sb.changes(0) if c["type"] == "BOX_DELETE"}

    assert {"boxes", "box_tasks", "box_field_values"} <= {t.name for t in tracked}
    first_feed, second_feed = (copy["box_newsfeed"].by_key for copy in copies)
    assert first_feed and {key: second_feed.get(key) for key in first_feed} == first_feed  # every entry, as first fetched
    histories = {t.name: read_table(bucket, table_format, t.history_name) for t in tracked}
    for day, moment in enumerate(moments):
        since = moments[day - 1] if day else datetime.min.replace(tzinfo=UTC)
        for t in tracked:
            state = table_snapshot(t, as_of(histories[t.name], moment))
            assert state.digest() == copies[day][t.name].digest(), f"{table_format} day {day}: {t.name} as of then"
        added = {t.name: n for t in tracked
                 if (n := sum(1 for r in histories[t.name] if since < r[VALID_FROM] <= moment))}
        changed = {t.name: n for t in tracked
                   if (n := changed_records(copies[day - 1][t.name] if day else None, copies[day][t.name]))}
        assert added == changed == summaries[day]["versions_added"], f"{table_format} day {day}"
    assert all(sum(s["versions_added"].values()) < sum(summaries[0]["versions_added"].values()) for s in summaries[1:])

    seen = {key[0] for copy in copies for key in copy["boxes"].by_key}
    flagged = {r["box_key"] for r in histories["boxes"] if r[DELETED]}
    assert deleted_boxes & seen and flagged == deleted_boxes & seen
    assert sum(summaries[-1]["records_deleted"].values()) > 0
