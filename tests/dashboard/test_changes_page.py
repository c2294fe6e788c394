"""Issue 23 #7: the Changes page, the pipeline over time and a box opened from a list, on real history.

``history_db`` is two loads of the demo account: as it was two days ago, then as it is today (with a
few boxes reassigned and tasks completed by hand in the sandbox, as a user would in Streak), so
``crm.*_history`` holds two loads. Every row and number the pages show is compared with SQL written
here over the history tables (the as-of rule spelled out, ``crm.deletions`` for what is gone), not
with the pages' own queries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import duckdb
import pandas as pd
import pytest

from dashboards.app_pages import funnel
from dashboards.data.history import NO_HISTORY
from dashboards.ui.format import field_value
from dashboards.ui.text import md

from . import accounts
from .charts import text_charts
from .conftest import DemoDB, as_int, metric_values, new_app, open_page
from .test_chart_labels import CHECKS, over_time_totals

SQL = Callable[[str], pd.DataFrame]
CLOSED = ("Won", "Lost", "Hired", "Rejected")  # the demo account's own closed stages
LISTS = ("created", "deleted", "moved", "owners", "fields", "tasks_added", "tasks_completed")
CARDS = ("Created", "Deleted", "Moved", "Reassigned", "Field values", "Tasks added", "Tasks completed")
TITLES = ("Boxes created", "Boxes deleted", "Boxes moved", "Owner or assignees changed", "Field values changed",
          "Tasks added", "Tasks completed")


@pytest.fixture
def hsql(history_db: Path) -> Iterator[SQL]:
    con = duckdb.connect(str(history_db), read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    try:
        yield lambda query: con.sql(query).to_arrow_table().to_pandas()
    finally:
        con.close()


def _loads(sql: SQL) -> list[str]:
    return list(sql("SELECT run_id FROM crm.load_history WHERE outcome = 'ok' ORDER BY finished_at")["run_id"])


def _at(table: str, run_id: str) -> str:
    """The copy of ``table`` that load ``run_id`` produced: its versions current at the load's end."""
    end = f"(SELECT finished_at FROM crm.load_history WHERE run_id = '{run_id}')"
    return f"(SELECT * FROM crm.{table}_history WHERE valid_from <= {end} AND (valid_to IS NULL OR valid_to > {end}))"


def expected_lists(sql: SQL, a: str, b: str, pipeline: str | None = None) -> dict[str, list[tuple[Any, ...]]]:
    """Each list of the page as plain SQL: the copies of loads ``a`` and ``b`` compared."""
    keep = lambda alias: f"AND {alias}.pipeline_key = '{pipeline}'" if pipeline else ""
    was, now = _at("boxes", a), _at("boxes", b)
    ends = [f"(SELECT finished_at FROM crm.load_history WHERE run_id = '{r}')" for r in (a, b)]
    rows = lambda query: sorted(tuple(map(_plain, r)) for r in sql(query).itertuples(index=False))
    fields = sql(f"""SELECT COALESCE(n.box_key, o.box_key) AS box_key, COALESCE(n.field_name, o.field_name) AS field,
            o.value_text AS ot, o.value_number AS onum, o.value_bool AS ob, o.value_timestamp AS ots,
            n.value_text AS nt, n.value_number AS nnum, n.value_bool AS nb, n.value_timestamp AS nts
        FROM {_at('box_field_values', a)} o FULL JOIN {_at('box_field_values', b)} n USING (box_key, field_key)
        WHERE o.value_raw IS DISTINCT FROM n.value_raw
          AND COALESCE(n.box_key, o.box_key) IN (SELECT t.box_key FROM {now} t JOIN {was} f USING (box_key) WHERE 1 = 1 {keep('t')})""")
    return {
        "created": rows(f"SELECT t.box_key, t.name FROM {now} t WHERE t.box_key NOT IN (SELECT box_key FROM {was}) {keep('t')}"),
        "deleted": rows(f"""SELECT DISTINCT d.record_key, d.name, strftime(d.deleted_at, '%Y-%m-%d %H:%M') FROM crm.deletions d JOIN {was} f ON f.box_key = d.record_key
            WHERE d.table_name = 'boxes' AND d.deleted_at > {ends[0]} AND d.deleted_at <= {ends[1]}
              AND d.record_key NOT IN (SELECT box_key FROM {now}) {keep('f')}"""),
        "moved": rows(f"""SELECT t.box_key, f.stage_name, t.stage_name FROM {now} t JOIN {was} f USING (box_key)
            WHERE t.stage_key <> f.stage_key {keep('t')}"""),
        "owners": rows(f"""SELECT t.box_key, COALESCE(f.assigned_to_names, 'Unassigned'), COALESCE(t.assigned_to_names, 'Unassigned')
            FROM {now} t JOIN {was} f USING (box_key)
            WHERE COALESCE(t.assigned_to_emails, '') <> COALESCE(f.assigned_to_emails, '') {keep('t')}"""),
        "fields": sorted((r.box_key, r.field, field_value(r.ot, r.onum, r.ob, r.ots), field_value(r.nt, r.nnum, r.nb, r.nts))
                         for r in fields.itertuples()),
        "tasks_added": rows(f"""SELECT k.box_key, k.text, CASE k.status WHEN 'DONE' THEN 'Done' WHEN 'NOT_DONE' THEN 'Not done' END
            FROM {_at('box_tasks', b)} k JOIN {now} t USING (box_key)
            WHERE k.task_key NOT IN (SELECT task_key FROM {_at('box_tasks', a)}) {keep('t')}"""),
        "tasks_completed": rows(f"""SELECT k.box_key, k.text FROM {_at('box_tasks', b)} k JOIN {now} t USING (box_key)
            WHERE k.status = 'DONE' AND k.task_key NOT IN (SELECT task_key FROM {_at('box_tasks', a)} WHERE status = 'DONE') {keep('t')}"""),
    }


SHOWN = {"created": ["Box"], "deleted": ["Box", "Found gone"], "moved": ["From", "To"], "owners": ["Before", "After"],
         "fields": ["Field", "Before", "After"], "tasks_added": ["Task", "Status"], "tasks_completed": ["Task"]}
"""The columns of each list compared with :func:`expected_lists` (after the box the row opens)."""


def _plain(value: Any) -> Any:
    """A cell as compared: no value is an empty cell (as the page shows it)."""
    return "" if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)) else value


def shown_lists(at: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Each list's rows as the page shows them: the box its link opens, then :data:`SHOWN` (a list
    without rows has no table: its subheader says 0)."""
    titles = [s.value for s in at.subheader]
    assert [title.rsplit(" · ", 1)[0] for title in titles] == list(TITLES)
    present = [name for name, title in zip(LISTS, titles) if not title.endswith(" · 0")]
    tables = [frame.value for frame in at.dataframe]
    assert len(tables) == len(present)
    found: dict[str, list[tuple[Any, ...]]] = {name: [] for name in LISTS}
    for name, table in zip(present, tables):
        prefix = "explorer?box="
        assert table["Open"].str.startswith(prefix).all(), table["Open"].head()
        keys = table["Open"].str.slice(len(prefix)).map(unquote)
        found[name] = sorted(tuple(map(_plain, row)) for row in zip(keys, *(table[column] for column in SHOWN[name])))
    return found


def _open_changes(history_db: Path, point_at: Callable[[Path], Path]) -> Any:
    point_at(history_db)
    at = open_page(new_app().run(), "changes")
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_lists_between_the_last_two_loads_are_those_of_the_history(
    history_db: Path, point_at: Callable[[Path], Path], hsql: SQL
) -> None:
    at = _open_changes(history_db, point_at)
    a, b = _loads(hsql)[-2:]
    assert (at.selectbox(key="changes_from").value, at.selectbox(key="changes_to").value) == (a, b)  # the last two
    expected = expected_lists(hsql, a, b)
    assert shown_lists(at) == expected
    assert [as_int(metric_values(at)[card]) for card in CARDS] == [len(expected[name]) for name in LISTS]
    assert all(expected.values()), {name: len(rows) for name, rows in expected.items()}  # not vacuous
    assert len(expected["owners"]) >= 3 and len(expected["tasks_completed"]) >= 2  # two_loads.by_hand's edits
    gone = hsql(f"SELECT COUNT(*) AS n FROM crm.deletions WHERE table_name = 'boxes' AND deleted_at > "
                f"(SELECT finished_at FROM crm.load_history WHERE run_id = '{a}')")["n"].iloc[0]
    assert len(expected["deleted"]) == gone > 0  # every box gone between the loads is named

    # The sidebar's filters apply: a pipeline keeps the boxes that are in it (a deleted one: that were).
    pipeline = str(hsql("SELECT pipeline_key FROM crm.boxes GROUP BY 1 ORDER BY COUNT(*) DESC, 1 LIMIT 1").iloc[0, 0])
    at = at.sidebar.selectbox(key="filter_pipeline").set_value(pipeline).run()
    narrowed = expected_lists(hsql, a, b, pipeline)
    assert [as_int(metric_values(at)[card]) for card in CARDS] == [len(narrowed[name]) for name in LISTS]
    assert sum(map(len, narrowed.values())) < sum(map(len, expected.values()))
    assert shown_lists(at) == narrowed


def test_any_two_loads_in_either_order_and_not_the_same_one(
    history_db: Path, point_at: Callable[[Path], Path], hsql: SQL
) -> None:
    at = _open_changes(history_db, point_at)
    a, b = _loads(hsql)[-2:]
    before = [metric_values(at)[card] for card in CARDS]
    at.selectbox(key="changes_from").set_value(b)
    at = at.selectbox(key="changes_to").set_value(a).run()
    assert [metric_values(at)[card] for card in CARDS] == before  # from the earlier copy to the later
    at = at.selectbox(key="changes_to").set_value(b).run()
    assert not at.metric and any("Pick two different loads" in i.value for i in at.info)


def test_a_row_opens_its_box_even_a_deleted_one(
    history_db: Path, point_at: Callable[[Path], Path], hsql: SQL
) -> None:
    point_at(history_db)
    gone = hsql("SELECT record_key, name, deleted_at FROM crm.deletions WHERE table_name = 'boxes' ORDER BY 1 LIMIT 1").iloc[0]
    at = new_app()
    at.query_params["box"] = gone["record_key"]
    at = open_page(at.run(), "explorer")
    assert not at.exception, [e.value for e in at.exception]
    assert [s.value for s in at.subheader] == [md(gone["name"])]  # its name as text (Markdown-escaped)
    assert any(c.value.startswith("**Deleted**") and f"{gone['deleted_at']:%Y-%m-%d %H:%M}" in c.value for c in at.caption)
    past, values = (frame.value for frame in at.dataframe)
    assert bool(past["deleted"].iloc[-1]) and past["until"].iloc[-1] == f"{gone['deleted_at']:%Y-%m-%d %H:%M}"
    versions = hsql(f"SELECT COUNT(*) AS n FROM crm.box_field_values_history WHERE box_key = '{gone['record_key']}'")
    assert len(values) == versions["n"].iloc[0] > 0  # every value it had, kept after it was deleted

    # A reassigned box: its assignees before and after, one row each, the later one still current.
    a, b = _loads(hsql)[-2:]
    key, before, after = expected_lists(hsql, a, b)["owners"][0]
    at.query_params["box"] = key
    at = at.run()
    past = at.dataframe[0].value
    assert list(past["assignees"].iloc[-2:]) == [before, after] and past["until"].iloc[-1] == "now"
    at = at.button[0].click().run()  # "All boxes": back to the explorer's table
    boxes = hsql("SELECT COUNT(*) AS n FROM crm.boxes")["n"].iloc[0]
    assert "box" not in at.query_params and any(c.value == f"{boxes:,} of {boxes:,} boxes" for c in at.caption)


def test_the_pipeline_over_time_is_the_funnel_of_each_loads_copy(
    history_db: Path, point_at: Callable[[Path], Path], hsql: SQL
) -> None:
    point_at(history_db)
    at = open_page(new_app().run(), "funnel")
    assert not at.dataframe  # the tables at each load are drawn once their expander is opened
    for (pipeline,) in hsql("SELECT DISTINCT pipeline_key FROM crm.boxes_history").itertuples(index=False):
        at.session_state[funnel.tables_key(pipeline)] = True
    at = at.selectbox(key="funnel_measure").select_index(1).run()
    assert not at.exception, [e.value for e in at.exception]
    field = at.selectbox(key="funnel_measure").value
    totals = over_time_totals(hsql, CLOSED, field)
    loads = _loads(hsql)[::-1]  # the tables list the newest load first
    names = dict(hsql("SELECT pipeline_key, name FROM crm.pipelines").itertuples(index=False))
    per_stage = hsql(f"""SELECT l.run_id, h.pipeline_key, COALESCE(s.name, h.stage_name) AS stage, COUNT(*) AS n
        FROM crm.load_history l JOIN crm.boxes_history h ON h.valid_from <= l.finished_at AND (h.valid_to IS NULL OR h.valid_to > l.finished_at)
        LEFT JOIN crm.stages s ON s.pipeline_key = h.pipeline_key AND s.stage_key = h.stage_key
        WHERE l.outcome = 'ok' AND LOWER(COALESCE(s.name, h.stage_name)) NOT IN ({', '.join(f"'{c.lower()}'" for c in CLOSED)})
        GROUP BY 1, 2, 3""")
    tables = iter(frame.value for frame in at.dataframe)
    for pipeline in sorted(set(per_stage["pipeline_key"]), key=names.__getitem__):
        counts = next(tables)
        want = per_stage[per_stage["pipeline_key"] == pipeline]
        assert set(counts.columns) - {"Load", "Total"} == set(want["stage"])
        stages = list(want["stage"].unique())
        for (_, row), run_id in zip(counts.iterrows(), loads, strict=True):
            here = want[want["run_id"] == run_id].set_index("stage")["n"]
            assert {stage: row[stage] for stage in stages} == {stage: int(here.get(stage, 0)) for stage in stages}
            assert row["Total"] == here.sum()
        if pipeline == field[0]:
            sums = next(tables)
            mine = totals[totals["pipeline_key"] == pipeline].set_index("run_id")["value"].fillna(0.0)
            assert list(sums["Total"]) == pytest.approx([float(mine.get(run_id, 0.0)) for run_id in loads])
    assert next(tables, None) is None
    # The charts' labels: the same checks as every other chart (test_chart_labels.py), on two loads.
    checked = 0
    for chart in text_charts(at):
        for layer in chart.text_layers():
            if layer.text.endswith("_total_label"):
                checked += CHECKS[("funnel", layer.text)](layer, hsql, closed=CLOSED, field=field)
    assert checked >= 2 * 3  # two loads, two pipelines with open boxes, and the summed field


def test_one_load_or_no_history_is_said_plainly(
    demo_db: DemoDB, point_at: Callable[[Path], Path], tmp_path: Path
) -> None:
    point_at(demo_db.path)
    at = open_page(new_app().run(), "changes")
    assert not at.exception and metric_values(at) == {"Loads in the history": "1"}
    assert any("Changes need two loads" in i.value for i in at.info)

    before = accounts.copy_db(demo_db.path, tmp_path / "before_history.duckdb")
    with duckdb.connect(str(before)) as con:  # what a copy made before history mode holds
        con.execute("DROP VIEW crm.deletions")
        for (name,) in con.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'crm'").fetchall():
            if name.endswith("_history") and name != "box_stage_history":
                con.execute(f'DROP TABLE crm."{name}"')
    point_at(before)
    at = new_app().run()
    for url_path in ("changes", "funnel"):
        at = open_page(at, url_path)
        assert not at.exception and not at.error, [e.value for e in at.exception]
    assert any("no history tables" in c.value for c in at.caption)  # the funnel's over-time note
    at = open_page(at, "changes")
    assert [i.value for i in at.info] == [NO_HISTORY]
