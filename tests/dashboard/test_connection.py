"""Reading the destination: the dlt-dataset runner, opening DuckDB (missing, empty, locked) and literals."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pandas as pd
import pytest

import streak_clock
from dashboards.app_pages import (
    activity_queries,
    ageing_queries,
    explorer_queries,
    funnel_queries,
    overview_queries,
    tasks_queries,
)
from dashboards.data import connection, errors, freshness, lookups
from dashboards.data import sql as sql_text
from dashboards.data.filters import Filters

from .conftest import DemoDB

NOW = streak_clock.now().replace(microsecond=0)


# ---------------------------------------------------------------------------- other destinations


@pytest.mark.filterwarnings("ignore:The inplace keyword:DeprecationWarning")  # inside dlt's duckdb client
def test_dlt_dataset_runner_returns_the_same_numbers(demo_db: DemoDB) -> None:
    """The path Postgres & co. take (``dlt.dataset(...)`` + ``dataset(sql).df()``) runs the same SQL."""
    import dlt

    pipeline_key = None
    expected: dict[str, object] = {}
    direct, _ = connection.open_duckdb(demo_db.path)
    try:
        pipeline_key = str(lookups.pipelines(direct).sort_values("boxes")["pipeline_key"].iloc[-1])
        f = Filters(pipeline_key=pipeline_key)
        expected = _all_results(direct, f)
    finally:
        direct.close()  # one DuckDB file cannot be open read-only and read-write in one process

    dataset = dlt.dataset(dlt.destinations.duckdb(str(demo_db.path)), "crm")
    through_dlt = connection.DatasetRunner(dataset)
    got = _all_results(through_dlt, Filters(pipeline_key=pipeline_key))
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(_plain(got[name]), _plain(value), check_dtype=False, obj=name)
        else:
            assert got[name] == value, name


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Drivers differ in how they spell a missing value (None, NaN, pd.NA); compare the values."""
    frame = frame.reset_index(drop=True).astype(object)
    return frame.where(frame.notna(), None)


def _all_results(run: connection.Runner, f: Filters) -> dict[str, object]:
    fields = funnel_queries.numeric_fields(run, f)
    value_field = (str(fields["pipeline_key"].iloc[0]), str(fields["field_key"].iloc[0])) if not fields.empty else None
    return {
        "counts": overview_queries.overview_counts(run, f, NOW),
        "activity_totals": activity_queries.activity_totals(run, f),
        "funnel": funnel_queries.funnel(run, f, value_field),
        "fields": fields,
        "tasks": tasks_queries.open_tasks(run, f).sort_values("task_key"),
        "activity": activity_queries.activity(run, f, "week"),
        "explorer": explorer_queries.explorer_boxes(run, f).sort_values("box_key"),
        "ageing": ageing_queries.ageing(run, f, NOW).drop(columns=["color"]).sort_values("box_key"),
        "rows": freshness.row_counts(run),
    }


# ---------------------------------------------------------------------------- opening the file


def test_missing_file_is_no_data_and_is_not_created(missing_db: Path) -> None:
    with pytest.raises(errors.NoData) as raised:
        connection.open_duckdb(missing_db)
    assert raised.value.reason == "missing"
    assert not missing_db.exists()


def test_a_kept_relation_holds_its_rows_for_the_connection_and_leaves_the_file_alone(demo_db: DemoDB) -> None:
    """``Runner.kept``: a page's queries read one costly relation computed once (a TEMP table), and the
    read-only file is not written; a new connection starts without it."""
    before = demo_db.path.stat()
    select = "SELECT b.box_key, b.pipeline_key FROM boxes AS b WHERE b.box_key IS NOT NULL"
    runner, _ = connection.open_duckdb(demo_db.path)
    try:
        name = runner.kept(select)
        assert name is not None and runner.kept(select) == name
        assert runner.kept(select + " AND b.pipeline_key IS NOT NULL") != name
        kept = runner.df(f"SELECT * FROM {name} ORDER BY box_key").reset_index(drop=True)
        pd.testing.assert_frame_equal(kept, runner.df(f"{select} ORDER BY b.box_key").reset_index(drop=True))
        assert len(kept) > 0
    finally:
        runner.close()
    fresh, _ = connection.open_duckdb(demo_db.path)
    try:
        with pytest.raises(duckdb.CatalogException):
            fresh.df(f"SELECT * FROM {name}")
    finally:
        fresh.close()
    after = demo_db.path.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)


def test_empty_file_is_no_data(empty_db: Path) -> None:
    runner, _ = connection.open_duckdb(empty_db)
    try:
        with pytest.raises(errors.NoData) as raised:
            lookups.pipelines(runner)
        assert raised.value.reason == "empty"
    finally:
        runner.close()


def test_locked_file_retries_then_gives_up(demo_db: DemoDB, tmp_path: Path, lock_file) -> None:
    copy = tmp_path / "locked.duckdb"
    copy.write_bytes(demo_db.path.read_bytes())
    lock_file(copy)
    sleeps: list[float] = []
    with pytest.raises(errors.DatabaseBusy) as raised:
        connection.open_duckdb(copy, attempts=4, delay_s=0.25, sleep=sleeps.append)
    assert raised.value.attempts == 4
    assert sleeps == [0.25, 0.25, 0.25]  # bounded: no sleep after the last try
    assert raised.value.waited_s == pytest.approx(0.75)


def test_locked_file_opens_once_the_load_finishes(demo_db: DemoDB, tmp_path: Path, lock_file) -> None:
    copy = tmp_path / "locked.duckdb"
    copy.write_bytes(demo_db.path.read_bytes())
    holder = lock_file(copy)
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:  # the "load" finishes while the reader waits its first pause
        sleeps.append(seconds)
        holder.release()

    runner, tries = connection.open_duckdb(copy, attempts=5, delay_s=0.5, sleep=sleep)
    try:
        assert tries == 2 and sleeps == [0.5]
        assert overview_queries.overview_counts(runner, Filters(), NOW)["boxes"] > 0
    finally:
        runner.close()


def test_lit_round_trips_through_duckdb() -> None:
    con = duckdb.connect()
    try:
        for value in ["plain", "it's", "back\\slash", "ünïcode 🤝", 42, 1.5, True, None]:
            assert con.execute(f"SELECT {sql_text.lit(value)}").fetchone()[0] == value
        moment = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone.utc)
        assert con.execute(f"SELECT {sql_text.lit(moment)}").fetchone()[0] == moment
    finally:
        con.close()
