"""dashboards/queries.py against the demo account: every number re-derived independently.

The expected values come from plain SQL / pandas on the same DuckDB file (``sql`` fixture), never
from the functions under test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from dashboards import queries
from dashboards.queries import Filters

from .conftest import DemoDB

NOW = datetime.now(timezone.utc).replace(microsecond=0)
SQL = Callable[[str], pd.DataFrame]


@pytest.fixture
def run(demo_db: DemoDB) -> Iterator[queries.DuckDBRunner]:
    runner, tries = queries.open_duckdb(demo_db.path)
    assert tries == 1
    try:
        yield runner
    finally:
        runner.close()


@pytest.fixture
def boxes(sql: SQL) -> pd.DataFrame:
    return sql("SELECT * EXCLUDE (fields) FROM crm.boxes")


def _biggest_pipeline(sql: SQL) -> str:
    counts = sql("SELECT pipeline_key, COUNT(*) AS n FROM crm.boxes GROUP BY 1 ORDER BY 2 DESC")
    return str(counts["pipeline_key"].iloc[0])


def _numeric(values: pd.DataFrame) -> pd.Series:
    """Independent numeric value of field rows: value_number, else number-like text of text/formula.

    Number-like: digits with an optional sign, decimal point and k / M suffix, once spaces,
    thousands commas and currency signs are dropped ("119,500 €" -> 119500, "175k" -> 175000).
    """
    text = values["value_text"].astype("string").str.replace(r"[\s,$€£¥]", "", regex=True)
    parts = text.str.extract(r"^([-+]?(?:\d+\.?\d*|\.\d+))([kKmM]?)$")
    factor = parts[1].str.lower().map({"": 1.0, "k": 1e3, "m": 1e6}).astype("float64")
    parsed = pd.to_numeric(parts[0], errors="coerce").astype("float64") * factor
    parsed = parsed.where(values["field_type"].isin(["TEXT_INPUT", "FORMULA"]))
    return pd.to_numeric(values["value_number"], errors="coerce").astype("float64").fillna(parsed)


# ---------------------------------------------------------------------------- the demo is real


def test_demo_account_has_what_the_pages_need(sql: SQL) -> None:
    """Guards the other tests against passing vacuously on an account without the shapes they test."""
    counts = sql(
        """
        SELECT (SELECT COUNT(*) FROM crm.boxes) AS boxes,
               (SELECT COUNT(DISTINCT pipeline_key) FROM crm.boxes) AS pipelines_with_boxes,
               (SELECT COUNT(*) FROM crm.box_tasks WHERE status = 'NOT_DONE' AND due_date < now()) AS overdue,
               (SELECT COUNT(*) FROM crm.box_threads) AS threads,
               (SELECT COUNT(*) FROM crm.box_meetings) AS meetings,
               (SELECT COUNT(*) FROM crm.boxes WHERE owner_email IS NULL) AS unassigned
        """
    ).iloc[0]
    assert counts["boxes"] > 50
    assert counts["pipelines_with_boxes"] >= 2
    assert counts["overdue"] > 0
    assert counts["threads"] > 0 and counts["meetings"] > 0


# ---------------------------------------------------------------------------- filter options


def test_pipelines_count_boxes_per_pipeline(run: queries.Runner, sql: SQL) -> None:
    expected = sql("SELECT pipeline_key, COUNT(*) AS n FROM crm.boxes GROUP BY 1")
    got = queries.pipelines(run).set_index("pipeline_key")["boxes"]
    for row in expected.itertuples():
        assert got[row.pipeline_key] == row.n
    names = sql("SELECT pipeline_key, name FROM crm.pipelines")
    assert set(names["pipeline_key"]) <= set(got.index)  # empty pipelines are listed too


def test_owners_cover_every_box(run: queries.Runner, boxes: pd.DataFrame) -> None:
    owners = queries.owners(run)
    assert owners["boxes"].sum() == len(boxes)
    unassigned = owners.loc[owners["owner_email"].isna(), "boxes"].sum()
    assert unassigned == boxes["owner_email"].isna().sum()


# ---------------------------------------------------------------------------- overview


def test_overview_counts_match_independent_sql(run: queries.Runner, sql: SQL, boxes: pd.DataFrame) -> None:
    counts = queries.overview_counts(run, Filters(), NOW)
    tasks = sql("SELECT status, due_date FROM crm.box_tasks")
    due = pd.to_datetime(tasks["due_date"], utc=True)
    assert counts["boxes"] == len(boxes)
    assert counts["open_tasks"] == (tasks["status"] == "NOT_DONE").sum()
    assert counts["overdue_tasks"] == ((tasks["status"] == "NOT_DONE") & (due < pd.Timestamp(NOW))).sum()
    assert counts["overdue_tasks"] > 0
    assert counts["email_threads"] == len(sql("SELECT thread_key FROM crm.box_threads"))
    assert counts["comments"] == len(sql("SELECT comment_key FROM crm.box_comments"))
    meetings = sql("SELECT meeting_type FROM crm.box_meetings")["meeting_type"]
    assert counts["meetings"] == (meetings == "MEETING_NOTES").sum()
    assert counts["call_logs"] == (meetings == "CALL_LOG").sum()


def test_filters_narrow_every_count(run: queries.Runner, sql: SQL, boxes: pd.DataFrame) -> None:
    pipeline = _biggest_pipeline(sql)
    owner = boxes.loc[boxes["pipeline_key"] == pipeline, "owner_email"].dropna().mode().iloc[0]
    created = pd.to_datetime(boxes["creation_timestamp"], utc=True)
    start = created.min().date() + timedelta(days=30)
    end = created.max().date() - timedelta(days=10)
    f = Filters(pipeline_key=pipeline, owners=(owner, queries.UNASSIGNED), created_from=start, created_to=end)

    in_range = (created >= pd.Timestamp(start, tz="UTC")) & (created < pd.Timestamp(end + timedelta(days=1), tz="UTC"))
    chosen = boxes[
        (boxes["pipeline_key"] == pipeline)
        & ((boxes["owner_email"] == owner) | boxes["owner_email"].isna())
        & in_range
    ]
    assert 0 < len(chosen) < len(boxes)
    counts = queries.overview_counts(run, f, NOW)
    assert counts["boxes"] == len(chosen)
    tasks = sql("SELECT box_key, status FROM crm.box_tasks")
    assert counts["open_tasks"] == (
        tasks["box_key"].isin(chosen["box_key"]) & (tasks["status"] == "NOT_DONE")
    ).sum()


def test_quotes_in_filter_values_are_data_not_sql(run: queries.Runner) -> None:
    f = Filters(pipeline_key="x' OR '1'='1", owners=("o'brien@example.com",))
    assert queries.overview_counts(run, f, NOW)["boxes"] == 0


def test_last_load_and_row_counts(run: queries.Runner, sql: SQL) -> None:
    loaded = queries.last_load(run)
    expected = sql("SELECT MAX(inserted_at) AS at, COUNT(*) AS n FROM crm._dlt_loads WHERE status = 0").iloc[0]
    assert loaded["inserted_at"] == pd.Timestamp(expected["at"]).to_pydatetime()
    assert loaded["loads"] == expected["n"] >= 1
    rows = queries.row_counts(run).set_index("table")["rows"]
    assert rows["boxes"] == len(sql("SELECT box_key FROM crm.boxes"))
    assert rows["box_tasks"] == len(sql("SELECT task_key FROM crm.box_tasks"))
    views = sql("SELECT table_name FROM information_schema.tables WHERE table_schema = 'crm' AND table_type = 'VIEW'")
    assert not set(views["table_name"]) & set(rows.index)  # tables only: a view is not a copy
    assert not any(name.startswith("_dlt") for name in rows.index)


# ---------------------------------------------------------------------------- funnel


def test_funnel_counts_sum_to_each_pipelines_boxes_in_stage_order(run: queries.Runner, sql: SQL) -> None:
    per_pipeline = sql("SELECT pipeline_key, COUNT(*) AS n FROM crm.boxes GROUP BY 1")
    stage_rows = sql("SELECT pipeline_key, stage_key, stage_order FROM crm.stages")
    for row in per_pipeline.itertuples():
        funnel = queries.funnel(run, Filters(pipeline_key=row.pipeline_key))
        assert funnel["boxes"].sum() == row.n
        stages = stage_rows[stage_rows["pipeline_key"] == row.pipeline_key].sort_values("stage_order")
        known = funnel[funnel["stage_order"] < queries.UNKNOWN_STAGE_ORDER]
        assert list(known["stage_key"]) == list(stages["stage_key"])  # every stage, in stage order
        by_stage = sql(
            f"SELECT stage_key, COUNT(*) AS n FROM crm.boxes WHERE pipeline_key = '{row.pipeline_key}' GROUP BY 1"
        ).set_index("stage_key")["n"]
        for stage in funnel.itertuples():
            assert stage.boxes == by_stage.get(stage.stage_key, 0)


def test_funnel_keeps_empty_stages(run: queries.Runner, sql: SQL) -> None:
    empty = sql(
        """
        SELECT s.pipeline_key, s.stage_key FROM crm.stages s
        WHERE s.pipeline_key IN (SELECT pipeline_key FROM crm.boxes)
          AND NOT EXISTS (SELECT 1 FROM crm.boxes b WHERE b.pipeline_key = s.pipeline_key AND b.stage_key = s.stage_key)
        """
    )
    if empty.empty:
        pytest.skip("the demo account has no empty stage in a pipeline with boxes")
    row = empty.iloc[0]
    funnel = queries.funnel(run, Filters(pipeline_key=row["pipeline_key"]))
    assert funnel.loc[funnel["stage_key"] == row["stage_key"], "boxes"].tolist() == [0]


def test_numeric_fields_and_funnel_sums(run: queries.Runner, sql: SQL) -> None:
    values = sql("SELECT box_key, field_name, field_type, value_number, value_text FROM crm.box_field_values")
    values["num"] = _numeric(values)
    share = values.groupby("field_name")["num"].agg(lambda s: s.notna().mean())
    expected_fields = sorted(share[share >= queries.NUMERIC_SHARE].index)
    fields = queries.numeric_fields(run, Filters())
    assert sorted(fields["field_name"]) == expected_fields
    assert expected_fields, "the demo account should have numeric custom fields"

    field = expected_fields[0]
    boxes = sql("SELECT box_key, pipeline_key, stage_key FROM crm.boxes")
    pipeline = boxes.merge(values[values["field_name"] == field], on="box_key")["pipeline_key"].mode().iloc[0]
    funnel = queries.funnel(run, Filters(pipeline_key=pipeline), field)
    chosen = values[values["field_name"] == field].merge(boxes[boxes["pipeline_key"] == pipeline], on="box_key")
    expected = chosen.groupby("stage_key")["num"].sum()
    for stage in funnel.itertuples():
        assert stage.value == pytest.approx(expected.get(stage.stage_key, 0.0))
    assert funnel["value"].sum() == pytest.approx(chosen["num"].sum())


# ---------------------------------------------------------------------------- ageing


def test_ageing_days_since_last_stage_change(run: queries.Runner, boxes: pd.DataFrame) -> None:
    ageing = queries.ageing(run, Filters(), NOW)
    assert len(ageing) == len(boxes)
    since = pd.to_datetime(boxes["last_stage_change_timestamp"], utc=True).fillna(
        pd.to_datetime(boxes["creation_timestamp"], utc=True)
    )
    expected = ((pd.Timestamp(NOW) - since).dt.total_seconds() / 86400).set_axis(boxes["box_key"])
    got = ageing.set_index("box_key")["days_in_stage"]
    pd.testing.assert_series_equal(got.sort_index(), expected.sort_index(), check_names=False)
    assert ageing["days_in_stage"].is_monotonic_decreasing  # stuck longest first

    stats = queries.ageing_by_stage(ageing)
    assert stats["boxes"].sum() == len(boxes)
    first = stats.iloc[0]
    members = ageing[(ageing["pipeline_name"] == first["pipeline_name"]) & (ageing["stage_name"] == first["stage_name"])]
    assert first["median_days"] == pytest.approx(members["days_in_stage"].median())


# ---------------------------------------------------------------------------- tasks


def test_overdue_tasks_are_not_done_with_past_due_date(run: queries.Runner, sql: SQL) -> None:
    tasks = sql("SELECT task_key, status, due_date, assignee_names FROM crm.box_tasks")
    tasks["due_date"] = pd.to_datetime(tasks["due_date"], utc=True)
    open_tasks = queries.open_tasks(run, Filters())
    assert set(open_tasks["task_key"]) == set(tasks.loc[tasks["status"] == "NOT_DONE", "task_key"])

    classified = queries.classify_tasks(open_tasks, NOW, 7)
    now = pd.Timestamp(NOW)
    not_done = tasks[tasks["status"] == "NOT_DONE"]
    expected_overdue = set(not_done.loc[not_done["due_date"] < now, "task_key"])
    expected_soon = set(
        not_done.loc[(not_done["due_date"] >= now) & (not_done["due_date"] < now + pd.Timedelta(days=7)), "task_key"]
    )
    assert set(classified.loc[classified["state"] == "Overdue", "task_key"]) == expected_overdue
    assert set(classified.loc[classified["state"] == "Due soon", "task_key"]) == expected_soon
    assert expected_overdue

    by_assignee = queries.tasks_by_assignee(classified)
    focus = not_done[not_done["task_key"].isin(expected_overdue | expected_soon)]
    names = focus["assignee_names"].fillna("").str.split(",").explode().str.strip()
    expected_counts = names.replace("", queries.UNASSIGNED_LABEL).value_counts()
    got_counts = by_assignee.groupby("assignee")["tasks"].sum()
    pd.testing.assert_series_equal(got_counts.sort_index(), expected_counts.sort_index(), check_names=False)


def test_task_status_counts(run: queries.Runner, sql: SQL) -> None:
    expected = sql("SELECT status, COUNT(*) AS n FROM crm.box_tasks GROUP BY 1").set_index("status")["n"].to_dict()
    assert queries.task_status_counts(run, Filters()) == expected


# ---------------------------------------------------------------------------- activity


def test_activity_counts_every_dated_event_once(run: queries.Runner, sql: SQL) -> None:
    frame = queries.activity(run, Filters(), "month")
    totals = frame.groupby("kind")["events"].sum()
    assert totals.get("Emails", 0) == len(sql("SELECT 1 FROM crm.box_threads WHERE last_email_timestamp IS NOT NULL"))
    assert totals.get("Comments", 0) == len(sql('SELECT 1 FROM crm.box_comments WHERE "timestamp" IS NOT NULL'))
    meetings = sql("SELECT meeting_type FROM crm.box_meetings WHERE start_timestamp IS NOT NULL")["meeting_type"]
    assert totals.get("Call logs", 0) == (meetings == "CALL_LOG").sum()
    assert totals.get("Meetings", 0) == (meetings != "CALL_LOG").sum()
    assert (frame["period"].dt.day == 1).all()

    owners = sql(
        """
        SELECT COALESCE(b.owner_name, 'Unassigned') AS owner, COUNT(*) AS n
        FROM crm.box_comments c JOIN crm.boxes b ON b.box_key = c.box_key
        WHERE c."timestamp" IS NOT NULL GROUP BY 1
        """
    ).set_index("owner")["n"]
    got = frame[frame["kind"] == "Comments"].groupby("owner")["events"].sum()
    pd.testing.assert_series_equal(got.sort_index(), owners.sort_index(), check_names=False, check_dtype=False)


# ---------------------------------------------------------------------------- explorer


def test_explorer_uses_the_wide_view_for_one_pipeline(run: queries.Runner, sql: SQL) -> None:
    pipeline = _biggest_pipeline(sql)
    found = queries.wide_view(run, pipeline)
    assert found is not None, "the main job should have created the pipeline's wide view"
    view = found.name
    view_columns = sql(
        f"SELECT column_name FROM information_schema.columns WHERE table_schema = 'crm' AND table_name = '{view}'"
    )["column_name"].tolist()
    table = queries.explorer_boxes(run, Filters(pipeline_key=pipeline))
    expected = sql(f"SELECT box_key, box_name FROM crm.{view}")
    assert sorted(table["box_key"]) == sorted(expected["box_key"])
    custom = [c for c in view_columns if c not in ("box_key", "box_name", "stage_key", "stage_name", "stage_order",
                                                   "owner_name", "owner_email", "creation_timestamp",
                                                   "last_updated_timestamp", "last_stage_change_timestamp")]
    assert custom and set(custom) <= set(table.columns)
    assert "stage_name" in table.columns
    # Display labels map the view's normalized columns back to the field names in pipeline_fields.
    labels = queries.field_labels(run, pipeline)
    field_names = set(sql(f"SELECT name FROM crm.pipeline_fields WHERE pipeline_key = '{pipeline}'")["name"])
    assert set(labels) == set(custom) and set(labels.values()) <= field_names


def test_explorer_all_pipelines_and_search(run: queries.Runner, boxes: pd.DataFrame) -> None:
    table = queries.explorer_boxes(run, Filters())
    assert sorted(table["box_key"]) == sorted(boxes["box_key"])
    target = boxes["name"].dropna().iloc[0]
    found = queries.search_boxes(table, target.upper())
    assert target in set(found["box_name"])
    assert len(queries.search_boxes(table, "zz-no-such-box-zz")) == 0


def test_explorer_pivot_fallback_matches_the_view(run: queries.Runner, sql: SQL, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a wide view (e.g. an older load), fields come from box_field_values by name."""
    pipeline = _biggest_pipeline(sql)
    monkeypatch.setattr(queries, "wide_view", lambda *_: None)
    table = queries.explorer_boxes(run, Filters(pipeline_key=pipeline))
    field_names = sql(
        f"SELECT DISTINCT field_name FROM crm.box_field_values WHERE pipeline_key = '{pipeline}'"
    )["field_name"].dropna()
    assert set(field_names) <= set(table.columns)
    assert len(table) == len(sql(f"SELECT 1 FROM crm.boxes WHERE pipeline_key = '{pipeline}'"))


# ---------------------------------------------------------------------------- other destinations


@pytest.mark.filterwarnings("ignore:The inplace keyword:DeprecationWarning")  # inside dlt's duckdb client
def test_dlt_dataset_runner_returns_the_same_numbers(demo_db: DemoDB) -> None:
    """The path Postgres & co. take (``dlt.dataset(...)`` + ``dataset(sql).df()``) runs the same SQL."""
    import dlt

    pipeline_key = None
    expected: dict[str, object] = {}
    direct, _ = queries.open_duckdb(demo_db.path)
    try:
        pipeline_key = str(queries.pipelines(direct).sort_values("boxes")["pipeline_key"].iloc[-1])
        f = Filters(pipeline_key=pipeline_key)
        expected = _all_results(direct, f)
    finally:
        direct.close()  # one DuckDB file cannot be open read-only and read-write in one process

    dataset = dlt.dataset(dlt.destinations.duckdb(str(demo_db.path)), "crm")
    through_dlt = queries.DatasetRunner(dataset)
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


def _all_results(run: queries.Runner, f: Filters) -> dict[str, object]:
    fields = queries.numeric_fields(run, f)
    value_field = fields["field_name"].iloc[0] if not fields.empty else None
    return {
        "counts": queries.overview_counts(run, f, NOW),
        "funnel": queries.funnel(run, f, value_field),
        "fields": fields,
        "tasks": queries.open_tasks(run, f).sort_values("task_key"),
        "activity": queries.activity(run, f, "week"),
        "explorer": queries.explorer_boxes(run, f).sort_values("box_key"),
        "ageing": queries.ageing(run, f, NOW).drop(columns=["color"]).sort_values("box_key"),
        "rows": queries.row_counts(run),
    }


# ---------------------------------------------------------------------------- opening the file


def test_missing_file_is_no_data_and_is_not_created(missing_db: Path) -> None:
    with pytest.raises(queries.NoData) as raised:
        queries.open_duckdb(missing_db)
    assert raised.value.reason == "missing"
    assert not missing_db.exists()


def test_empty_file_is_no_data(empty_db: Path) -> None:
    runner, _ = queries.open_duckdb(empty_db)
    try:
        with pytest.raises(queries.NoData) as raised:
            queries.pipelines(runner)
        assert raised.value.reason == "empty"
    finally:
        runner.close()


def test_locked_file_retries_then_gives_up(demo_db: DemoDB, tmp_path: Path, lock_file) -> None:
    copy = tmp_path / "locked.duckdb"
    copy.write_bytes(demo_db.path.read_bytes())
    lock_file(copy)
    sleeps: list[float] = []
    with pytest.raises(queries.DatabaseBusy) as raised:
        queries.open_duckdb(copy, attempts=4, delay_s=0.25, sleep=sleeps.append)
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

    runner, tries = queries.open_duckdb(copy, attempts=5, delay_s=0.5, sleep=sleep)
    try:
        assert tries == 2 and sleeps == [0.5]
        assert queries.overview_counts(runner, Filters(), NOW)["boxes"] > 0
    finally:
        runner.close()


def test_lit_round_trips_through_duckdb() -> None:
    con = duckdb.connect()
    try:
        for value in ["plain", "it's", "back\\slash", "ünïcode 🤝", 42, 1.5, True, None]:
            assert con.execute(f"SELECT {queries.lit(value)}").fetchone()[0] == value
        moment = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone.utc)
        assert con.execute(f"SELECT {queries.lit(moment)}").fetchone()[0] == moment
    finally:
        con.close()
