"""Ageing: how long open boxes have sat in their current stage (closed stages left out)."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from dashboards.app_pages import ageing_queries
from dashboards.ui.context import Context, PageSpec, chart, empty_state, page_header
from dashboards.ui.format import fmt_int, stage_colors


def render(ctx: Context) -> None:
    if not page_header(ctx, "Ageing", "How long open boxes have sat in their current stage."):
        return
    every: pd.DataFrame = ctx.q(ageing_queries.ageing, ctx.filters, ctx.now)
    boxes = every[~every["closed"]]
    left_out = len(every) - len(boxes)
    st.caption(ctx.closed_note() + (f" ({fmt_int(left_out)} boxes)" if left_out else ""))
    if every.empty:
        empty_state("No boxes match these filters.")
        return
    if boxes.empty:
        empty_state("Every box in view is in a closed stage.")
        return
    multi = ctx.filters.pipeline_key is None
    boxes = boxes.assign(
        stage=boxes["pipeline_name"].astype(str) + " · " + boxes["stage_name"].astype(str)
        if multi
        else boxes["stage_name"].astype(str)
    )
    stage_order = boxes.drop_duplicates("stage").sort_values(["pipeline_name", "stage_order"])["stage"].tolist()
    stats = ageing_queries.ageing_by_stage(boxes.drop(columns=["stage_name"]).rename(columns={"stage": "stage_name"}))
    days = boxes["days_in_stage"]
    cards = st.columns(4)
    cards[0].metric("Boxes", fmt_int(len(boxes)), border=True, help="Open boxes: closed stages left out.")
    cards[1].metric("Median days in stage", f"{days.median():.0f}" if days.notna().any() else "–", border=True)
    cards[2].metric("Over 30 days", fmt_int((days > 30).sum()), border=True)
    cards[3].metric("Over 90 days", fmt_int((days > 90).sum()), border=True)

    st.subheader("Days since last stage change, per stage", anchor=False)
    stats["label"] = [f"{m:.0f} d" if pd.notna(m) else "" for m in stats["median_days"]]
    order = [s for s in stage_order if s in set(stats["stage_name"])]
    chart(_stage_chart(stats, order))

    st.subheader("Stuck longest", anchor=False)
    longest = boxes.head(25)
    st.dataframe(
        longest[["box_name", "pipeline_name", "stage_name", "owner_name", "days_in_stage", "since"]],
        hide_index=True,
        column_config={
            "box_name": st.column_config.TextColumn("Box", width="large"),
            "pipeline_name": st.column_config.TextColumn("Pipeline"),
            "stage_name": st.column_config.TextColumn("Stage"),
            "owner_name": st.column_config.TextColumn("Owner"),
            "days_in_stage": st.column_config.ProgressColumn(
                "Days in stage", format="%.0f", min_value=0.0,
                max_value=float(max(1.0, longest["days_in_stage"].max(skipna=True) or 1.0)),
            ),
            "since": st.column_config.DatetimeColumn("In stage since", format="YYYY-MM-DD"),
        },
    )


def _stage_chart(stats: pd.DataFrame, order: list[str]) -> alt.LayerChart:
    base = alt.Chart(stats).encode(
        y=alt.Y("stage_name:N", sort=order, title=None, axis=alt.Axis(labelLimit=260)),
        tooltip=[
            alt.Tooltip("stage_name:N", title="Stage"),
            alt.Tooltip("boxes:Q", title="Boxes", format=","),
            alt.Tooltip("median_days:Q", title="Median days", format=".1f"),
            alt.Tooltip("p90_days:Q", title="90th percentile", format=".1f"),
            alt.Tooltip("max_days:Q", title="Longest", format=".1f"),
        ],
    )
    bars = base.mark_bar(cornerRadiusEnd=4, stroke="#495057", strokeWidth=0.5, strokeOpacity=0.6).encode(
        x=alt.X("median_days:Q", title="Days (bar: median, tick: 90th percentile)"),
        color=alt.Color("stage_name:N", scale=stage_colors(stats, "stage_name"), legend=None),
    )
    spread = base.mark_rule(color="#adb5bd", strokeWidth=2).encode(x="median_days:Q", x2="p90_days:Q")
    ticks = base.mark_tick(color="#343a40", thickness=2, size=22).encode(x="p90_days:Q")
    text = base.mark_text(align="left", dx=5, color="#343a40").encode(x="median_days:Q", text="label:N")
    return (spread + bars + ticks + text).properties(height=34 * len(stats) + 60)


PAGE = PageSpec(render, "Ageing", ":material/hourglass_bottom:", "ageing")
