"""Outcomes: won and lost, win rates by month, cycle time, the weighted pipeline, the forecast beside
its measured error, the owner scorecard and the deals that slipped.

Every number is one of the warehouse's outcome relations (docs/metrics.md defines them, with their
SQL); where they come from and how the sidebar's filters apply: ``outcomes_queries``' docstring. The
won and lost stages in use are shown and can be changed here (kept in the URL, ``?won=...&lost=...``);
then the page computes the same relations from the base tables with the same steps.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

import pandas as pd
import streamlit as st

from dashboards.app_pages import outcomes_charts as charts
from dashboards.app_pages import outcomes_queries as oq
from dashboards.app_pages.explorer import OPEN_COLUMN, box_link, open_column, who
from dashboards.data import closed, lookups
from dashboards.ui.context import Context, PageSpec, chart, empty_state, page_header
from dashboards.ui.format import fmt_int, fmt_number
from dashboards.ui.stage_picker import stage_names_picker
from dashboards.ui.text import md
from streak_warehouse.outcome_config import OutcomeSettings, OutcomesConfigError, configured_settings
from streak_warehouse.outcome_rules import StageSettings, normalize_stage_name

WON_KEY: Final = "outcomes_won"
LOST_KEY: Final = "outcomes_lost"
WON_PARAM: Final = "won"
LOST_PARAM: Final = "lost"
BACKTEST_FILE: Final = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "forecast_backtest.json"
BACKTEST_COMMAND: Final = "python benchmarks/forecast_backtest.py --boxes 2000 --days 180"
NO_VIEWS: Final = (
    "**This copy has no outcome views yet** ({missing}). Every load by this version writes them "
    "(DuckDB and Postgres): run `python pipelines/streak_full.py` once. docs/metrics.md says what each one is."
)


def render(ctx: Context) -> None:
    if not page_header(ctx, "Outcomes", "What was won and lost, what the open pipeline is worth, what will close next."):
        return
    absent = ctx.q(oq.missing)
    if absent:
        empty_state(NO_VIEWS.format(missing=", ".join(f"`{name}`" for name in absent)))
        return
    settings = _settings(ctx)
    rel = ctx.q(oq.relations, settings)
    _source_note(rel, settings, ctx.q(oq.value_fields, rel))
    f = ctx.filters
    rates, stages, forecast = ctx.q(oq.win_rates, f, rel), ctx.q(oq.weighted, f, rel), ctx.q(oq.forecast, f, rel)
    _cards(rates, stages, forecast)
    if rates.empty and not stages["open_boxes"].sum():
        empty_state("No boxes match these filters, or none of them is open, won or lost.")
        return
    multi = f.pipeline_key is None and len({*rates["pipeline_key"], *stages["pipeline_key"]}) > 1
    _win_rates(rates, multi)
    _cycle_times(ctx.q(oq.cycle_times, f, rel), multi)
    _weighted(ctx, stages, multi)
    _forecast(forecast, multi)
    _scorecard(ctx.q(oq.scorecard, f, rel))
    _slipped(ctx.q(oq.slipped, f, rel), rel, multi)


# --- the settings in use -------------------------------------------------------------------------------


def _settings(ctx: Context) -> OutcomeSettings | None:
    """The won and lost stages in use (the pickers: URL, else the configuration, else the account's),
    with the closed stages of the sidebar and the rest of ``[outcomes]``; None when the configuration
    cannot be read (the copy's relations are used as they are, and the page says why)."""
    account = ctx.q(lookups.account_defaults)
    defaults = closed.default_stage_settings(account)
    known = ctx.q(lookups.stage_names)
    with st.expander("Won and lost stages in use", expanded=False):
        left, right = st.columns(2)
        with left:
            won, won_default = stage_names_picker(
                "Won stages", WON_KEY, WON_PARAM, defaults.settings.won, known, placeholder="None won",
                help="A box in one of these stages is won (Pipeline/Stage for one pipeline's stage). Remembered "
                     "in the page URL; the default is `[outcomes] won_stages` in `.dlt/config.toml`, else the account's own.")
        with right:
            lost, lost_default = stage_names_picker(
                "Lost stages", LOST_KEY, LOST_PARAM, defaults.settings.lost, known, placeholder="None lost",
                help="A box in one of these stages is lost. Remembered in the page URL; the default is "
                     "`[outcomes] lost_stages`, else the account's own.")
        both = {normalize_stage_name(n) for n in won} & {normalize_stage_name(n) for n in lost}
        others = [n for n in ctx.closed_stage_names if normalize_stage_name(n) not in
                  {normalize_stage_name(x) for x in (*won, *lost)}]
        st.caption("Closed = won + lost + the sidebar's other closed stages: "
                   + (", ".join(md(n) for n in others) if others else "none") + ". Closed boxes are no open pipeline."
                   + ("" if won_default and lost_default else " Changed here: the numbers below are computed from the "
                      "base tables with these stages; the views in `crm` keep the load's."))
        if defaults.problem:
            st.caption(f"Configuration ignored: {md(defaults.problem)}")
            return None
        if both:
            st.caption("A stage cannot be both won and lost: " + ", ".join(md(n) for n in sorted(both))
                       + ". The load's stages are used.")
            return None
        try:
            configured = configured_settings(account)
        except OutcomesConfigError as exc:
            st.caption(f"Configuration ignored: {md(exc)}")
            return None
    stages = StageSettings(tuple(won), tuple(lost), tuple(others), defaults.settings.probability)
    return replace(configured, stages=stages)


def _source_note(rel: oq.Relations, settings: OutcomeSettings | None, fields: pd.DataFrame) -> None:
    when = f"{pd.Timestamp(rel.as_of):%Y-%m-%d %H:%M} UTC"
    if rel.computed:
        st.caption(f"Computed here from the base tables with the settings below, which are not those the load used, "
                   f"as of the load's end ({when}); the views in `crm` hold the load's. Definitions: docs/metrics.md.")
    else:
        st.caption(f"From the warehouse's outcome views (`crm.box_outcomes`, `crm.win_rate_monthly`, ...), as of "
                   f"the load's end ({when}). Definitions and SQL: docs/metrics.md.")
    names = lambda entries: ", ".join(md(n) for n in entries) or "none"  # noqa: E731
    used = [f"Won: {names(settings.stages.won)}", f"lost: {names(settings.stages.lost)}"] if settings else []
    used.append("value: " + (", ".join(f"{md(p)}: {md(n)} ({md(c)})" for p, n, c in
                                       zip(fields["pipeline_name"], fields["field_name"], fields["chosen_by"])) or "none"))
    if len(fields) and pd.notna(fields["min_sample"].iloc[0]):
        used.append(f"a stage's own history counts from {int(fields['min_sample'].iloc[0])} closed boxes")
    st.caption(" · ".join(used))
    for warning in rel.warnings:
        st.caption(md(warning))


# --- sections ------------------------------------------------------------------------------------------


def _cards(rates: pd.DataFrame, stages: pd.DataFrame, forecast: pd.DataFrame) -> None:
    won, lost = int(rates["won"].sum()), int(rates["lost"].sum())
    valued = rates["won_value"].fillna(0).sum() + rates["lost_value"].fillna(0).sum()
    row = st.columns(4)
    row[0].metric("Won", fmt_int(won), border=True, help="Boxes in a won stage now (all time, these filters).")
    row[1].metric("Lost", fmt_int(lost), border=True, help="Boxes in a lost stage now (all time, these filters).")
    row[2].metric("Win rate", f"{won / (won + lost):.0%}" if won + lost else "–", border=True,
                  help="Won / (won + lost), by count.")
    row[3].metric("Win rate by value", f"{rates['won_value'].fillna(0).sum() / valued:.0%}" if valued else "–",
                  border=True, help="Won value / (won + lost value), over the boxes with a value (at close).")
    row = st.columns(4)
    row[0].metric("Won value", fmt_number(rates["won_value"].sum(min_count=1)), border=True,
                  help="Each won box's value when it closed.")
    row[1].metric("Open value", fmt_number(stages["open_value"].sum(min_count=1)), border=True,
                  help="Today's value of the open boxes (not in a won, lost or closed stage).")
    row[2].metric("Weighted pipeline", fmt_number(stages["weighted_value"].sum(min_count=1)), border=True,
                  help="Each open stage's open value x its win probability, summed.")
    row[3].metric("Forecast, 3 months", fmt_number(forecast["expected_won_value"].sum(min_count=1)), border=True,
                  help="Expected won value from the load's end to the end of the month after next.")


def _win_rates(rates: pd.DataFrame, multi: bool) -> None:
    st.subheader("Win rate by month", anchor=False)
    st.caption("Boxes won and lost per month of close (UTC), the month's win rate by count on top; "
               "the table adds the values (each box's value when it closed) and the win rate by value.")
    if rates.empty:
        empty_state("No box is won or lost yet in these filters.")
        return
    for pipeline_key, own in rates.groupby("pipeline_key", sort=False):
        if multi:
            st.markdown(f"**{md(own['pipeline_name'].iloc[0])}**")
        chart(charts.win_rate_chart(own))
    shown = rates.sort_values(["pipeline_name", "month"], ascending=[True, False])
    columns = (["pipeline_name"] if multi else []) + ["month", "won", "lost", "win_rate", "won_value", "lost_value",
                                                      "win_rate_by_value"]
    st.dataframe(shown[columns], hide_index=True, height=min(400, 38 + 35 * len(shown)), column_config={
        "pipeline_name": "Pipeline", "month": st.column_config.DateColumn("Month", format="YYYY-MM"),
        "won": "Won", "lost": "Lost", "win_rate": st.column_config.NumberColumn("Win rate", format="percent"),
        "won_value": st.column_config.NumberColumn("Won value", format="localized"),
        "lost_value": st.column_config.NumberColumn("Lost value", format="localized"),
        "win_rate_by_value": st.column_config.NumberColumn("Win rate by value", format="percent")})


def _cycle_times(cycles: pd.DataFrame, multi: bool) -> None:
    st.subheader("Cycle time", anchor=False)
    st.caption("Days from a box's creation to its close, over the boxes won or lost.")
    if cycles.empty:
        empty_state("No box is won or lost yet in these filters.")
        return
    columns = (["pipeline_name"] if multi else []) + ["outcome", "boxes", "median_days", "p90_days"]
    st.dataframe(cycles[columns], hide_index=True, column_config={
        "pipeline_name": "Pipeline", "outcome": "Outcome", "boxes": "Boxes",
        "median_days": st.column_config.NumberColumn("Median days", format="%.1f"),
        "p90_days": st.column_config.NumberColumn("90th percentile days", format="%.1f")})


def _weighted(ctx: Context, stages: pd.DataFrame, multi: bool) -> None:
    st.subheader("Weighted pipeline by stage", anchor=False)
    st.caption("Open boxes per stage, their value, and that value weighted by the stage's win probability: of "
               "the boxes ever in the stage that have closed, the share won (the whole account's history; "
               "`probability_source` says where a number comes from when the sample is small).")
    if stages.empty:
        empty_state("No open stage in these filters.")
        return
    chart(charts.weighted_chart(stages, multi))
    columns = (["pipeline_name"] if multi else []) + ["stage_name", "open_boxes", "open_value", "probability",
                                                      "probability_source", "closed_boxes", "weighted_value"]
    st.dataframe(stages[columns], hide_index=True, height=min(500, 38 + 35 * len(stages)), column_config={
        "pipeline_name": "Pipeline", "stage_name": "Stage", "open_boxes": "Open boxes",
        "open_value": st.column_config.NumberColumn("Open value", format="localized"),
        "probability": st.column_config.NumberColumn("Win probability", format="percent"),
        "probability_source": "From", "closed_boxes": st.column_config.NumberColumn(
            "Sample", help="Boxes ever in the stage that have closed since (won or lost): the whole account's."),
        "weighted_value": st.column_config.NumberColumn("Weighted value", format="compact")})


def _forecast(forecast: pd.DataFrame, multi: bool) -> None:
    st.subheader("Forecast: the next three months", anchor=False)
    st.caption("Expected won boxes and value per month, with a 10-90 % range: each open box's value x its "
               "stage's probability x the chance that, if won, it is won in that month (the account's own "
               "times from its stage to a win). This month counts from the load's end.")
    left, right = st.columns([5, 2])
    with left:
        if forecast.empty:
            empty_state("Nothing to forecast in these filters.")
        else:
            columns = (["pipeline_name"] if multi else []) + [
                "month", "open_boxes", "expected_won_boxes", "won_boxes_low", "won_boxes_high", "expected_won_value",
                "won_value_low", "won_value_high"]
            boxes = lambda title: st.column_config.NumberColumn(title, format="%.1f", width=52)  # noqa: E731
            value = lambda title: st.column_config.NumberColumn(title, format="compact", width=60)  # noqa: E731
            st.dataframe(forecast[columns], hide_index=True, column_config={
                "pipeline_name": st.column_config.TextColumn("Pipeline", width=100),
                "month": st.column_config.DateColumn("Month", format="YYYY-MM", width=72),
                "open_boxes": st.column_config.NumberColumn("Open", width=48), "expected_won_boxes": boxes("Won"),
                "won_boxes_low": boxes("low"), "won_boxes_high": boxes("high"), "expected_won_value": value("Value"),
                "won_value_low": value("low"), "won_value_high": value("high")})
            st.caption("Won: expected won boxes; Value: expected won value; low and high: the 10-90 % range.")
    with right:
        _backtest(read_backtest(BACKTEST_FILE))


def read_backtest(path: Path) -> Mapping[str, Any] | None:
    """The forecast backtest's result (benchmarks/forecast_backtest.py), or None when there is none."""
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None


def _backtest(result: Mapping[str, Any] | None) -> None:
    with st.container(border=True):
        st.markdown("**How far off it is: the backtest**")
        if result is None or not result.get("forecast"):
            st.caption("No backtest result: `benchmarks/results/forecast_backtest.json` is not there, so this "
                       "forecast's error is unmeasured here. Measure it on the sandbox's simulated account with "
                       f"`{BACKTEST_COMMAND}`.")
            return
        for pipeline, score in result["forecast"].items():
            mean = score.get("mean_actual_value") or 0
            share = lambda error: f" ({error / mean:.0%})" if mean else ""  # noqa: E731
            st.markdown(f"{md(pipeline)}: off by **{fmt_number(score['mae_forecast'])}**{share(score['mae_forecast'])}"
                        f" on average; naive: {fmt_number(score['mae_baseline'])}{share(score['mae_baseline'])}")
        st.caption(f"Mean absolute error (and its share of the mean won value) of the won value forecast "
                   f"{md(result.get('horizon_days'))} days ahead, over "
                   f"{md(next(iter(result['forecast'].values())).get('cutoffs'))} cut-offs of a sandbox account "
                   f"simulated day by day and loaded daily, against what it then won; naive = the last "
                   f"{md(result.get('horizon_days'))} days' won value. A simulated account, not yours. Measured "
                   f"{md(result.get('measured_on'))} with `{result.get('command')}`.")


def _scorecard(frame: pd.DataFrame) -> None:
    st.subheader("Owner scorecard", anchor=False)
    st.caption("Per owner (the owner when a box closed; today's for an open box): all time, these filters. "
               "Overdue tasks: assigned to the owner, on these boxes, not done, due before the load's end.")
    if frame.empty:
        empty_state("No owner in these filters.")
        return
    shown = frame.assign(owner_name=frame["owner_name"].fillna(frame["owner_email"]).fillna("Unassigned"))
    st.dataframe(shown[["owner_name", "won", "lost", "win_rate", "won_value", "open_boxes", "open_value",
                        "weighted_value", "median_cycle_days", "overdue_tasks"]], hide_index=True, column_config={
        "owner_name": "Owner", "won": "Won", "lost": "Lost",
        "win_rate": st.column_config.NumberColumn("Win rate", format="percent"),
        "won_value": st.column_config.NumberColumn("Won value", format="localized"), "open_boxes": "Open",
        "open_value": st.column_config.NumberColumn("Open value", format="localized"),
        "weighted_value": st.column_config.NumberColumn("Weighted", format="compact"),
        "median_cycle_days": st.column_config.NumberColumn("Median cycle (d)", format="%.1f"),
        "overdue_tasks": "Overdue tasks"})


def _slipped(frame: pd.DataFrame, rel: oq.Relations, multi: bool) -> None:
    st.subheader(f"Slipped deals · {fmt_int(len(frame))}", anchor=False)
    st.caption("Open boxes in their stage longer than that stage's 90th percentile of time in stage (ended "
               "stays with exact times, the whole account's), days to the load's end. Each row opens its box.")
    if frame.empty:
        empty_state("No open box has been in its stage longer than that stage usually takes.")
        return
    shown = frame.assign(owner_name=frame["owner_name"].map(who))
    shown.insert(0, OPEN_COLUMN, [box_link(key) for key in frame["box_key"]])
    columns = [OPEN_COLUMN, "box_name", *(["pipeline_name"] if multi else []), "stage_name", "days_in_stage",
               "p90_days", "value", "owner_name"]
    st.dataframe(shown[columns], hide_index=True, height=min(400, 38 + 35 * len(shown)), column_config={
        OPEN_COLUMN: open_column(), "box_name": "Box", "pipeline_name": "Pipeline", "stage_name": "Stage",
        "days_in_stage": st.column_config.NumberColumn("Days in stage", format="%.0f"),
        "p90_days": st.column_config.NumberColumn("Stage p90 (d)", format="%.0f"),
        "value": st.column_config.NumberColumn("Value", format="localized"), "owner_name": "Owner"})


PAGE = PageSpec(render, "Outcomes", ":material/trophy:", "outcomes")
