"""Activity: emails, comments, meetings and call logs on the filtered boxes over time and per owner."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from dashboards.app_pages import activity_queries
from dashboards.ui.context import Context, PageSpec, chart, empty_state, page_header
from dashboards.ui.format import KIND_COLORS, KIND_HELP, fmt_int


def render(ctx: Context) -> None:
    if not page_header(
        ctx, "Activity", "Email threads, comments, meetings and call logs on these boxes, over time and per owner."
    ):
        return
    grain = st.segmented_control("Group by", ["Week", "Month"], default="Week", key="activity_grain") or "Week"
    frame: pd.DataFrame = ctx.q(activity_queries.activity, ctx.filters, grain.lower())
    totals: dict[str, int] = ctx.q(activity_queries.activity_totals, ctx.filters)
    cards = st.columns(len(totals))
    for card, (kind, total) in zip(cards, totals.items()):
        card.metric(kind, fmt_int(total), border=True, help=KIND_HELP.get(kind))
    dated = frame.groupby("kind")["events"].sum() if not frame.empty else pd.Series(dtype="int64")
    undated = {kind: total - int(dated.get(kind, 0)) for kind, total in totals.items()}
    if any(undated.values()):
        st.caption("Not on the charts, having no date: "
                   + ", ".join(f"{fmt_int(n)} {kind.lower()}" for kind, n in undated.items() if n) + ".")
    if frame.empty:
        empty_state("No activity on these boxes.")
        return
    kind_scale = alt.Scale(domain=list(KIND_COLORS), range=list(KIND_COLORS.values()))
    st.subheader(f"Per {grain.lower()}", anchor=False)
    time_unit = "yearweek" if grain == "Week" else "yearmonth"
    chart(
        alt.Chart(frame)
        .mark_bar(width=alt.RelativeBandSize(0.85))
        .encode(
            x=alt.X(f"{time_unit}(period):T", title=None,
                    axis=alt.Axis(format="%b %-d, %Y" if grain == "Week" else "%b %Y")),
            y=alt.Y("sum(events):Q", title="Events"),
            color=alt.Color("kind:N", title=None, scale=kind_scale, legend=alt.Legend(orient="top")),
            tooltip=[
                alt.Tooltip(f"{time_unit}(period):T", title=grain),
                alt.Tooltip("kind:N", title="Kind"),
                alt.Tooltip("sum(events):Q", title="Events", format=","),
            ],
        )
        .properties(height=280)
    )
    st.subheader("Per box owner", anchor=False)
    per_owner = frame.groupby(["owner", "kind"], as_index=False)["events"].sum()
    owner_order = per_owner.groupby("owner")["events"].sum().sort_values(ascending=False).index.tolist()
    chart(
        alt.Chart(per_owner)
        .mark_bar(cornerRadiusEnd=3)
        .encode(
            y=alt.Y("owner:N", sort=owner_order, title=None, axis=alt.Axis(labelLimit=220)),
            x=alt.X("events:Q", title="Events"),
            color=alt.Color("kind:N", title=None, scale=kind_scale, legend=alt.Legend(orient="top")),
            tooltip=[
                alt.Tooltip("owner:N", title="Owner"),
                alt.Tooltip("kind:N", title="Kind"),
                alt.Tooltip("events:Q", title="Events", format=","),
            ],
        )
        .properties(height=32 * len(owner_order) + 90)
    )


PAGE = PageSpec(render, "Activity", ":material/forum:", "activity")
