"""Issue 21: every text label on every chart sits on its own row, and says that row's number.

A bar's label, its tooltip fields and its length all come from one data row; the test reads those
rows as the browser gets them (tests/dashboard/charts.py) and compares each row, by the name a
person reads on the axis, with plain SQL written here without the dashboard's query code. The set
of numbers being right is not enough: Velocity once showed the right medians on the wrong stages.

Every page is visited, and every chart with a text mark must be one this file knows how to check,
so a new labelled chart cannot go unchecked.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import streak_clock
from dashboards.ui.format import fmt_days, fmt_int, fmt_number

from .charts import TextLayer, text_charts
from .conftest import PAGES, new_app, open_page

SQL = Callable[[str], pd.DataFrame]
CLOSED = ("Won", "Lost", "Hired", "Rejected")
CLOSED_SQL = ", ".join(f"'{name.lower()}'" for name in CLOSED)
STAGE = "COALESCE(s.name, b.stage_name)"
BOX_STAGES = ("FROM crm.boxes b JOIN crm.pipelines p USING (pipeline_key) "
              "LEFT JOIN crm.stages s ON s.pipeline_key = b.pipeline_key AND s.stage_key = b.stage_key")


def _minute() -> datetime:
    return streak_clock.now().replace(second=0, microsecond=0)


def _split(label: str, multi: bool) -> tuple[str | None, str]:
    """An axis label as (pipeline, stage): "Sales · Lead" across pipelines, "Lead" within one."""
    if not multi:
        return None, label
    pipeline, stage = label.split(" · ", 1)
    return pipeline, stage


# ------------------------------------------------------------------------------------- expectations


def _boxes_per_stage(sql: SQL) -> dict[tuple[str, str], int]:
    frame = sql(f"SELECT p.name AS pipeline, {STAGE} AS stage, COUNT(*) AS n {BOX_STAGES} GROUP BY 1, 2")
    return {(r.pipeline, r.stage): int(r.n) for r in frame.itertuples()}


def _check_breakdown(layer: TextLayer, sql: SQL, **_: Any) -> int:
    """Overview, "Where the boxes are": a segment per stage, labelled with its name (maybe cut) and count."""
    expected = _boxes_per_stage(sql)
    assert {(r.pipeline_name, r.stage_name) for r in layer.rows.itertuples()} == set(expected)
    named = 0
    for row in layer.rows.itertuples():
        n = expected[(row.pipeline_name, row.stage_name)]
        assert row.boxes == n, row
        label, count = str(getattr(row, layer.text)), fmt_int(n)
        if label in ("", count):  # too narrow for the name: the count alone, or nothing
            continue
        name, _, shown_count = label.rpartition(" ")
        assert shown_count == count, (row.stage_name, label)
        assert row.stage_name.startswith(name[:-1]) if name.endswith("…") else name == row.stage_name, label
        named += 1
    assert named > 0, "some segments are wide enough for their stage name"
    return len(layer.rows)


def _check_funnel_counts(layer: TextLayer, sql: SQL, closed: tuple[str, ...], **_: Any) -> int:
    """Funnel: each stage's bar says its boxes and their share of the pipeline."""
    pipelines = set(layer.rows["pipeline_name"])
    assert len(pipelines) == 1, pipelines
    expected = {stage: n for (pipeline, stage), n in _boxes_per_stage(sql).items() if pipeline in pipelines}
    total = sum(expected.values())
    for row in layer.rows.itertuples():
        n = expected.get(row.stage_name, 0)
        mark = " (closed)" if row.stage_name.lower() in {c.lower() for c in closed} else ""
        assert getattr(row, layer.position) == row.stage_name + mark
        assert row.boxes == n
        assert getattr(row, layer.text) == f"{fmt_int(n)}  ·  {n / total:.0%}", (row.stage_name, n, total)
    return len(layer.rows)


def _check_funnel_sums(layer: TextLayer, sql: SQL, field: tuple[str, str] | None, **_: Any) -> int:
    """Funnel with "Sum a numeric field": each stage's bar says the sum of that field over its boxes."""
    assert field is not None
    pipeline_key, field_key = field
    frame = sql(f"""SELECT {STAGE} AS stage, SUM(v.value_number) AS total {BOX_STAGES}
        JOIN crm.box_field_values v ON v.box_key = b.box_key
        WHERE v.pipeline_key = '{pipeline_key}' AND v.field_key = '{field_key}' GROUP BY 1""")
    expected = {r.stage: float(r.total) for r in frame.itertuples() if pd.notna(r.total)}
    assert set(layer.rows["pipeline_key"]) == {pipeline_key}, "the sum is drawn only for the field's pipeline"
    for row in layer.rows.itertuples():
        total = expected.get(row.stage_name, 0.0)
        assert row.value == pytest.approx(total)
        assert getattr(row, layer.text) == fmt_number(total), row.stage_name
    assert any(v != 0 for v in expected.values()), "the field has numbers: not vacuous"
    return len(layer.rows)


def _check_ageing(layer: TextLayer, sql: SQL, now: datetime, closed: tuple[str, ...], **_: Any) -> int:
    """Ageing: each open stage's bar says its median days since the last stage change."""
    days = (f"(epoch(TIMESTAMPTZ '{now.isoformat()}') "
            "- epoch(COALESCE(b.last_stage_change_timestamp, b.creation_timestamp))) / 86400.0")
    frame = sql(f"""SELECT p.name AS pipeline, {STAGE} AS stage, COUNT(*) AS n, MEDIAN({days}) AS median_days
        {BOX_STAGES} WHERE LOWER({STAGE}) NOT IN ({', '.join(f"'{c.lower()}'" for c in closed) or 'NULL'})
        GROUP BY 1, 2""")
    expected = {(r.pipeline, r.stage): (int(r.n), float(r.median_days)) for r in frame.itertuples()}
    multi = len({p for p, _ in expected}) > 1
    shown = {}
    for row in layer.rows.itertuples():
        key = _split(getattr(row, layer.position), multi)
        shown[key] = row
        n, median = expected[key]
        assert row.boxes == n, key
        assert row.median_days == pytest.approx(median), key
        assert getattr(row, layer.text) == f"{median:.0f} d", key
    assert set(shown) == set(expected)
    return len(layer.rows)


def _check_velocity(layer: TextLayer, sql: SQL, **_: Any) -> int:
    """Velocity, "Time in stage": each stage's label states its own median and 90th percentile."""
    frame = sql("""SELECT p.name AS pipeline, COALESCE(s.name, h.stage_name) AS stage,
               COUNT(*) FILTER (WHERE h.left_at IS NOT NULL AND h.exact) AS measured,
               COUNT(*) FILTER (WHERE h.left_at IS NULL) AS open,
               quantile_cont(h.time_in_stage_s, 0.5) FILTER (WHERE h.left_at IS NOT NULL AND h.exact) AS median_s,
               quantile_cont(h.time_in_stage_s, 0.9) FILTER (WHERE h.left_at IS NOT NULL AND h.exact) AS p90_s
        FROM crm.box_stage_history h JOIN crm.pipelines p USING (pipeline_key)
        LEFT JOIN crm.stages s ON s.pipeline_key = h.pipeline_key AND s.stage_key = h.stage_key
        WHERE h.box_key IN (SELECT box_key FROM crm.boxes) GROUP BY 1, 2""")
    expected = {(r.pipeline, r.stage): r for r in frame.itertuples()
                if r.measured > 0 and r.stage.lower() not in {c.lower() for c in CLOSED}}
    multi = len({p for p, _ in expected}) > 1
    shown = set()
    for row in layer.rows.itertuples():
        key = _split(getattr(row, layer.position), multi)
        want = expected[key]
        shown.add(key)
        assert (row.measured, row.open) == (want.measured, want.open), key
        assert row.median_days == pytest.approx(want.median_s / 86400), key
        assert row.p90_days == pytest.approx(want.p90_s / 86400), key
        assert getattr(row, layer.text) == f"{fmt_days(want.median_s)} (p90 {fmt_days(want.p90_s)})", key
    assert shown == set(expected) and len(shown) > 3
    return len(layer.rows)


def over_time_totals(sql: SQL, closed: tuple[str, ...], field: tuple[str, str] | None) -> pd.DataFrame:
    """Per ok load and pipeline: open boxes (not in a closed stage) in the copy that load produced, read
    from ``boxes_history`` as of the load's end, and their sum of ``field`` (its own pipeline only)."""
    def current(alias: str) -> str:
        return f"{alias}.valid_from <= l.finished_at AND ({alias}.valid_to IS NULL OR {alias}.valid_to > l.finished_at)"
    value = "NULL"
    join = ""
    if field is not None:
        value = "SUM(v.value_number)"
        join = (f"LEFT JOIN crm.box_field_values_history v ON v.box_key = h.box_key AND v.pipeline_key = '{field[0]}' "
                f"AND v.field_key = '{field[1]}' AND {current('v')}")
    return sql(f"""SELECT l.run_id, h.pipeline_key, COUNT(DISTINCT h.box_key) AS boxes, {value} AS value
        FROM crm.load_history l JOIN crm.boxes_history h ON {current('h')}
        LEFT JOIN crm.stages s ON s.pipeline_key = h.pipeline_key AND s.stage_key = h.stage_key {join}
        WHERE l.outcome = 'ok' AND LOWER(COALESCE(s.name, h.stage_name)) NOT IN ({', '.join(f"'{c.lower()}'" for c in closed)})
        GROUP BY 1, 2""")


def _check_over_time(layer: TextLayer, sql: SQL, closed: tuple[str, ...], field: tuple[str, str] | None,
                     **_: Any) -> int:
    """Funnel, pipeline over time: each load's bar says the open boxes (or their sum of the field) in
    the copy that load produced, for its pipeline, and there is a bar for every load."""
    value = layer.text == "value_total_label"
    totals = over_time_totals(sql, closed, field if value else None)
    loads = set(sql("SELECT run_id FROM crm.load_history WHERE outcome = 'ok'")["run_id"])
    [pipeline] = set(layer.rows["pipeline_key"])
    if value:
        assert field is not None and pipeline == field[0], "the sum is drawn only for the field's pipeline"
    expected = {r.run_id: ((float(r.value) if pd.notna(r.value) else 0.0) if value else int(r.boxes))
                for r in totals.itertuples() if r.pipeline_key == pipeline}
    assert set(layer.rows["run_id"]) == loads
    assert layer.rows[layer.position].is_unique  # one bar per load, each labelled apart
    for row in layer.rows.itertuples():
        want = expected.get(row.run_id, 0)
        assert row.total == pytest.approx(want), (row.run_id, pipeline)
        assert getattr(row, layer.text) == (fmt_number(want) if value else fmt_int(want)), (row.run_id, pipeline)
    assert any(expected.values()), "the pipeline has open boxes: not vacuous"
    return len(layer.rows)


def _check_win_rates(layer: TextLayer, sql: SQL, **_: Any) -> int:
    """Outcomes, "Win rate by month": each month's label is that month's win rate (``crm.win_rate_monthly``)."""
    [pipeline] = set(layer.rows["pipeline_key"])
    frame = sql(f"SELECT strftime(month, '%Y-%m') AS month, won, lost FROM crm.win_rate_monthly WHERE pipeline_key = '{pipeline}'")
    expected = {r.month: (int(r.won), int(r.lost)) for r in frame.itertuples()}
    assert set(layer.rows[layer.position]) == set(expected) and layer.rows[layer.position].is_unique
    for row in layer.rows.itertuples():
        won, lost = expected[getattr(row, layer.position)]
        assert (row.won, row.lost) == (won, lost), getattr(row, layer.position)
        assert getattr(row, layer.text) == f"{won / (won + lost):.0%}", getattr(row, layer.position)
    return len(layer.rows)


def _check_weighted(layer: TextLayer, sql: SQL, **_: Any) -> int:
    """Outcomes, weighted pipeline: each open stage's label is its weighted value and its probability."""
    frame = sql("SELECT pipeline_name, stage_name, open_boxes, weighted_value, probability FROM crm.weighted_pipeline")
    expected = {(r.pipeline_name, r.stage_name): r for r in frame.itertuples()}
    multi = len({p for p, _ in expected}) > 1
    shown = set()
    for row in layer.rows.itertuples():
        key = _split(getattr(row, layer.position), multi)
        want = expected[key] if multi else next(r for (_, s), r in expected.items() if s == key[1])
        shown.add(key)
        assert row.open_boxes == want.open_boxes, key
        weighted = "no value" if pd.isna(want.weighted_value) else fmt_number(want.weighted_value)
        label = "no probability" if pd.isna(want.probability) else f"{weighted} ({want.probability:.0%})"
        assert getattr(row, layer.text) == label, key
    assert shown == set(expected) and any(not pd.isna(r.weighted_value) for r in expected.values())
    return len(layer.rows)


CHECKS: dict[tuple[str, str], Callable[..., int]] = {
    ("", "label"): _check_breakdown,
    ("funnel", "boxes_label"): _check_funnel_counts,
    ("funnel", "value_label"): _check_funnel_sums,
    ("funnel", "boxes_total_label"): _check_over_time,
    ("funnel", "value_total_label"): _check_over_time,
    ("ageing", "label"): _check_ageing,
    ("velocity", "text"): _check_velocity,
    ("outcomes", "rate_label"): _check_win_rates,
    ("outcomes", "weighted_label"): _check_weighted,
}
"""(page, text column) -> the check of one text layer; a labelled chart without one fails the test."""


# ------------------------------------------------------------------------------------------- tests


def _visit(at: Any) -> tuple[dict[str, list[Any]], tuple[str, str] | None]:
    """Text charts per page (the funnel twice: counts, then a field summed across all pipelines)."""
    seen: dict[str, list[Any]] = {}
    for url_path, _ in PAGES:
        if url_path:
            at = open_page(at, url_path)
        assert not at.exception, [e.value for e in at.exception]
        seen[url_path] = text_charts(at)
    at = open_page(at, "funnel")
    at = at.selectbox(key="funnel_measure").select_index(1).run()
    assert not at.exception, [e.value for e in at.exception]
    seen["funnel"] += text_charts(at)
    return seen, at.selectbox(key="funnel_measure").value


def test_every_text_label_sits_on_its_own_row(
    rich_db: Path, rich_sql: SQL, point_at: Callable[[Path], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DASHBOARD__CLOSED_STAGES", '["' + '", "'.join(CLOSED) + '"]')
    monkeypatch.setenv("OUTCOMES__WON_STAGES", '["Won", "Hired"]')  # the demo's own: the outcome views' numbers
    monkeypatch.setenv("OUTCOMES__LOST_STAGES", '["Lost", "Rejected"]')
    point_at(rich_db)
    for _ in range(2):  # Ageing's days depend on the app's minute: once more across a minute boundary
        now = _minute()
        seen, field = _visit(new_app().run())
        if _minute() == now:
            break
    checked: dict[str, int] = {}
    for page, found in seen.items():
        for chart in found:
            for layer in chart.text_layers():
                check = CHECKS.get((page, layer.text))
                assert check is not None, f"page {page or 'overview'!r}: a chart labelled by {layer.text!r} is not checked here"
                checked[page] = checked.get(page, 0) + check(layer, rich_sql, now=now, closed=CLOSED, field=field)
    assert set(checked) == {"", "funnel", "ageing", "velocity", "outcomes"}, checked
    assert all(rows > 1 for rows in checked.values()), checked
