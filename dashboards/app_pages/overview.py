"""Overview: boxes, open work and activity of the filtered boxes, and how fresh the copy is."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from dashboards.app_pages import activity_queries, funnel_queries, overview_queries
from dashboards.app_pages.funnel_charts import stage_breakdown
from dashboards.data import freshness
from dashboards.ui.context import Context, PageSpec, chart, empty_state, page_header
from dashboards.ui.format import FALLBACK_PALETTE, KIND_HELP, ago, fmt_int


def render(ctx: Context) -> None:
    if not page_header(ctx, "Overview", "Boxes, open work and activity, and how fresh the copy is."):
        return
    counts: dict[str, int] = ctx.q(overview_queries.overview_counts, ctx.filters, ctx.now)
    activity: dict[str, int] = ctx.q(activity_queries.activity_totals, ctx.filters)
    cards = st.columns(3)
    cards[0].metric("Boxes", fmt_int(counts["boxes"]), border=True)
    cards[1].metric("Open tasks", fmt_int(counts["open_tasks"]), border=True, help="Tasks not done.")
    cards[2].metric(
        "Overdue tasks", fmt_int(counts["overdue_tasks"]), border=True, help="Not done, due date in the past."
    )
    for card, (kind, total) in zip(st.columns(len(activity)), activity.items()):  # the Activity page's cards
        card.metric(kind, fmt_int(total), border=True, help=KIND_HELP.get(kind))
    if counts["boxes"] == 0:
        empty_state("No boxes match these filters.")
    else:
        st.subheader("Where the boxes are", anchor=False)
        chart(stage_breakdown(ctx.q(funnel_queries.funnel, ctx.filters, None)))
        st.subheader("New boxes per month", anchor=False)
        created: pd.DataFrame = ctx.q(overview_queries.boxes_created, ctx.filters)
        if created.empty:
            empty_state("These boxes have no creation dates.")
        else:
            chart(_created_chart(created))
    _freshness(ctx)


def _created_chart(created: pd.DataFrame) -> alt.Chart:
    return (
        alt.Chart(created)
        .mark_bar(cornerRadiusTopLeft=2, cornerRadiusTopRight=2, width=alt.RelativeBandSize(0.8))
        .encode(
            x=alt.X("yearmonth(month):T", title=None, axis=alt.Axis(format="%b %Y")),
            y=alt.Y("sum(boxes):Q", title="Boxes"),
            color=alt.Color(
                "pipeline_name:N", title=None, scale=alt.Scale(range=list(FALLBACK_PALETTE)),
                legend=alt.Legend(orient="top"),
            ),
            tooltip=[
                alt.Tooltip("yearmonth(month):T", title="Month"),
                alt.Tooltip("pipeline_name:N", title="Pipeline"),
                alt.Tooltip("sum(boxes):Q", title="Boxes", format=","),
            ],
        )
        .properties(height=240)
    )


def _freshness(ctx: Context) -> None:
    st.subheader("Freshness", anchor=False)
    loaded: freshness.LastLoad = ctx.q(freshness.last_load)
    rows: pd.DataFrame = ctx.q(freshness.row_counts)
    fresh = st.columns([1, 1, 2])
    fresh[0].metric(
        "Last load",
        ago(loaded.finished_at, ctx.now),
        border=True,
        help=f"{loaded.finished_at:%Y-%m-%d %H:%M:%S} UTC" if loaded.finished_at else None,
    )
    if loaded.loads is not None:
        fresh[1].metric("Loads so far", fmt_int(loaded.loads), border=True, help="Successful runs of the main job.")
    else:
        fresh[1].caption("The number of loads is unknown: this destination has no `load_history` yet (the next load adds it).")
    with fresh[2]:
        st.caption("Rows per table (whole account, not filtered)")
        st.dataframe(
            rows,
            hide_index=True,
            height=min(38 + 35 * len(rows), 320),
            column_config={
                "table": st.column_config.TextColumn("Table"),
                "rows": st.column_config.NumberColumn("Rows", format="localized"),
            },
        )


PAGE = PageSpec(render, "Overview", ":material/dashboard:", "overview")
