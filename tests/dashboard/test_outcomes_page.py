"""Issue 24 #5: the Outcomes page shows the warehouse's outcome views, row by row, for the boxes the
sidebar keeps; won and lost stages changed on the page are computed from the base tables.

``demo_db`` is ``python pipelines/streak_full.py --demo`` (its first load reads the account's past),
so this is also the issue's "done" check: win rates, probabilities and a forecast on the first run.
Every number shown is compared with SQL written here over ``crm``'s views and tables.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pandas as pd
import pytest

from dashboards.app_pages import outcomes
from dashboards.ui.format import fmt_number

from .conftest import DemoDB, metric_values, new_app, open_page

SQL = Callable[[str], pd.DataFrame]
ORDER = ["pipeline_name", "month"]


def _open(demo_db: DemoDB, point_at: Callable[[Path], Path], **params: list[str]) -> Any:
    point_at(demo_db.path)
    at = new_app()
    for name, values in params.items():
        at.query_params[name] = values
    at = open_page(at.run(), "outcomes")
    assert not at.exception and not at.error and not at.warning, [e.value for e in at.exception]
    return at


def _table(at: Any, column: str) -> pd.DataFrame:
    """The page's table that has ``column`` (each table has a column of its own)."""
    [frame] = [d.value for d in at.dataframe if column in d.value.columns]
    return frame


def _same(shown: pd.DataFrame, want: pd.DataFrame, keys: list[str]) -> None:
    """Row by row, in a stable order; numbers to 1e-9 (the page reads the same doubles)."""
    columns = list(want.columns)
    got = shown[columns].sort_values(keys).reset_index(drop=True)
    want = want.sort_values(keys).reset_index(drop=True)
    assert len(got) == len(want) > 0
    pd.testing.assert_frame_equal(got.astype(object).where(got.notna(), None),
                                  want.astype(object).where(want.notna(), None), check_dtype=False, rtol=1e-9)


def _expected(sql: SQL, where: str = "TRUE") -> dict[str, pd.DataFrame]:
    """What each table of the page must show: the views' rows (``where`` on ``pipeline_key``)."""
    return {
        "win_rates": sql(f"""SELECT pipeline_name, month, won, lost, win_rate, won_value, lost_value, win_rate_by_value
            FROM crm.win_rate_monthly WHERE {where}"""),
        "weighted": sql(f"""SELECT w.pipeline_name, w.stage_name, w.open_boxes, w.open_value, w.probability,
            w.probability_source, p.closed_boxes, w.weighted_value FROM crm.weighted_pipeline w
            JOIN crm.stage_win_probability p USING (pipeline_key, stage_key) WHERE {where}"""),
        "forecast": sql(f"""SELECT pipeline_name, month, open_boxes, expected_won_boxes, won_boxes_low, won_boxes_high,
            expected_won_value, won_value_low, won_value_high FROM crm.forecast_monthly WHERE {where}"""),
        "cycles": sql(f"""SELECT pipeline_name, outcome, COUNT(*) AS boxes, quantile_cont(cycle_days, 0.5) AS median_days,
            quantile_cont(cycle_days, 0.9) AS p90_days FROM crm.box_outcomes
            WHERE outcome IN ('won', 'lost') AND {where} GROUP BY 1, 2"""),
    }


def _slipped(sql: SQL) -> list[str]:
    """Open boxes longer in their stage than its p90 (exact ended stays of today's boxes), to the load's end."""
    return sorted(sql("""WITH p90 AS (
          SELECT pipeline_key, stage_key, quantile_cont(time_in_stage_s, 0.9) AS p90_s FROM crm.box_stage_history
          WHERE left_at IS NOT NULL AND exact AND box_key IN (SELECT box_key FROM crm.boxes) GROUP BY 1, 2),
        now AS (SELECT max(finished_at) AS at FROM crm.load_history WHERE outcome = 'ok')
        SELECT o.box_key FROM crm.box_outcomes o JOIN p90 USING (pipeline_key, stage_key), now
        WHERE NOT o.closed AND epoch(now.at) - epoch(o.stage_entered_at) > p90.p90_s""")["box_key"])


def test_the_first_demo_load_shows_the_views_row_by_row(demo_db: DemoDB, point_at: Callable[[Path], Path], sql: SQL) -> None:
    at = _open(demo_db, point_at)
    assert any(c.value.startswith("From the warehouse's outcome views") for c in at.caption)
    want = _expected(sql)
    # Done means: non-empty win rates, probabilities and a forecast on the first --demo run.
    assert want["win_rates"]["won"].sum() > 0 and want["weighted"]["probability"].notna().any()
    assert (want["weighted"]["probability_source"] == "history").any()  # the past was read: the account's own numbers
    assert want["forecast"]["expected_won_value"].sum() > 0

    _same(_table(at, "win_rate_by_value"), want["win_rates"], ORDER)
    _same(_table(at, "probability_source"), want["weighted"], ["pipeline_name", "stage_name"])
    _same(_table(at, "expected_won_value"), want["forecast"], ORDER)
    _same(_table(at, "median_days"), want["cycles"], ["pipeline_name", "outcome"])
    card = sql("""SELECT owner_name, owner_email, won, lost, win_rate, won_value, open_boxes, open_value, weighted_value,
        median_cycle_days, overdue_tasks FROM crm.owner_scorecard""")
    card["owner_name"] = card["owner_name"].fillna(card["owner_email"]).fillna("Unassigned")
    _same(_table(at, "overdue_tasks"), card.drop(columns="owner_email"), ["owner_name"])
    slipped = [unquote(link.removeprefix("explorer?box=")) for link in _table(at, "days_in_stage")["Open"]]
    assert sorted(slipped) == _slipped(sql) and slipped  # each row opens its box

    totals = sql("SELECT SUM(won) AS won, SUM(lost) AS lost, SUM(won_value) AS won_value FROM crm.win_rate_monthly").iloc[0]
    shown = metric_values(at)
    assert (shown["Won"], shown["Lost"]) == (f"{int(totals['won']):,}", f"{int(totals['lost']):,}")
    assert shown["Win rate"] == f"{totals['won'] / (totals['won'] + totals['lost']):.0%}"

    # The sidebar's pipeline: that pipeline's rows of the views.
    pipeline = str(sql("SELECT pipeline_key FROM crm.pipelines WHERE name = 'Sales'")["pipeline_key"].iloc[0])
    at = at.sidebar.selectbox(key="filter_pipeline").set_value(pipeline).run()
    narrowed = _expected(sql, f"pipeline_key = '{pipeline}'")
    one = lambda frame: frame.drop(columns="pipeline_name")  # noqa: E731  (one pipeline: no pipeline column)
    _same(_table(at, "win_rate_by_value"), one(narrowed["win_rates"]), ["month"])
    _same(_table(at, "probability_source"), one(narrowed["weighted"]), ["stage_name"])
    _same(_table(at, "expected_won_value"), one(narrowed["forecast"]), ["month"])


def test_an_owner_filter_counts_that_owners_boxes(demo_db: DemoDB, point_at: Callable[[Path], Path], sql: SQL) -> None:
    """Boxes are picked as on every page (today's owner); the numbers are the views' over those boxes."""
    owner = str(sql("SELECT owner_email FROM crm.boxes WHERE owner_email IS NOT NULL GROUP BY 1 ORDER BY COUNT(*) DESC, 1 LIMIT 1").iloc[0, 0])
    at = _open(demo_db, point_at)
    at = at.sidebar.multiselect(key="filter_owners").set_value([owner]).run()
    assert not at.exception
    mine = f"box_key IN (SELECT box_key FROM crm.boxes WHERE owner_email = '{owner}')"
    rates = sql(f"""SELECT pipeline_name, CAST(date_trunc('month', closed_at AT TIME ZONE 'UTC') AS DATE) AS month,
        COUNT(*) FILTER (WHERE outcome = 'won') AS won, COUNT(*) FILTER (WHERE outcome = 'lost') AS lost
        FROM crm.box_outcomes WHERE outcome IN ('won', 'lost') AND {mine} GROUP BY 1, 2""")
    _same(_table(at, "win_rate_by_value"), rates, ORDER)
    weighted = sql(f"""SELECT w.pipeline_name, w.stage_name, COUNT(o.box_key) AS open_boxes, SUM(o.value) AS open_value
        FROM crm.weighted_pipeline w LEFT JOIN crm.box_outcomes o ON o.pipeline_key = w.pipeline_key
          AND o.stage_key = w.stage_key AND NOT o.closed AND o.{mine} GROUP BY 1, 2""")
    _same(_table(at, "probability_source"), weighted, ["pipeline_name", "stage_name"])
    assert 0 < _table(at, "win_rate_by_value")["won"].sum() + _table(at, "win_rate_by_value")["lost"].sum() < \
        sql("SELECT COUNT(*) AS n FROM crm.box_outcomes WHERE outcome <> 'open'")["n"].iloc[0]


def test_won_and_lost_stages_changed_on_the_page_come_from_the_base_tables(
    demo_db: DemoDB, point_at: Callable[[Path], Path], sql: SQL,
) -> None:
    """``?won=Won&lost=Lost``: Hiring's Hired and Rejected are no longer won or lost (they stay closed,
    as the sidebar says), so Hiring has no win rate; Sales' numbers are the views' own."""
    at = _open(demo_db, point_at, won=["Won"], lost=["lost"])
    assert any(c.value.startswith("Computed here from the base tables") for c in at.caption)
    assert at.multiselect(key=outcomes.WON_KEY).value == ["Won"] and at.multiselect(key=outcomes.LOST_KEY).value == ["Lost"]
    sales = "pipeline_key IN (SELECT pipeline_key FROM crm.pipelines WHERE name = 'Sales')"
    want = _expected(sql, sales)
    _same(_table(at, "win_rate_by_value"), want["win_rates"], ORDER)
    weighted = _table(at, "probability_source")
    _same(weighted[weighted["pipeline_name"] == "Sales"], want["weighted"], ["stage_name"])
    hiring = weighted[weighted["pipeline_name"] == "Hiring"]
    assert len(hiring) and hiring["probability"].isna().all() and set(hiring["probability_source"]) == {"none"}
    assert "won" in at.query_params and "lost" in at.query_params  # the choice is in the URL

    at = at.multiselect(key=outcomes.WON_KEY).set_value(["Won", "Hired"]).run()
    at = at.multiselect(key=outcomes.LOST_KEY).set_value(["Lost", "Rejected"]).run()
    assert "won" not in at.query_params and "lost" not in at.query_params  # back to the default: a plain URL
    assert any(c.value.startswith("From the warehouse's outcome views") for c in at.caption)


def test_the_forecast_says_how_far_off_it_was_or_that_nobody_measured(
    demo_db: DemoDB, point_at: Callable[[Path], Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    result = outcomes.read_backtest(outcomes.BACKTEST_FILE)
    if result is not None:  # the repository's measured result, shown with its date and command
        at = _open(demo_db, point_at)
        text = " ".join(c.value for c in at.caption) + " ".join(m.value for m in at.markdown)
        assert result["command"] in text and str(result["measured_on"]) in text
        for score in result["forecast"].values():
            assert f"off by **{fmt_number(score['mae_forecast'])}**" in text and fmt_number(score["mae_baseline"]) in text
    monkeypatch.setattr(outcomes, "BACKTEST_FILE", tmp_path / "absent.json")
    at = _open(demo_db, point_at)
    assert any(c.value.startswith("No backtest result") for c in at.caption)
