"""Events: what happened (custom events, Streak webhooks, events derived from each load) over time.

Reads ``crm.events``; which events count is ``events_queries``' rule (docs/dashboard.md).
"""

from __future__ import annotations

import math
from typing import Final

import altair as alt
import pandas as pd
import streamlit as st

from dashboards.app_pages import events_queries as eq
from dashboards.ui.context import Context, PageSpec, chart, empty_state, page_header
from dashboards.ui.format import (
    FALLBACK_PALETTE,
    blank_missing_text,
    fmt_int,
    fmt_number,
    number_label_expr,
    with_period_end,
)
from dashboards.ui.text import md, shorten
from dashboards.ui.time_axis import Grain, TimeWindow, period_x, time_window

EVENTS_COMMAND: Final = "python pipelines/streak_events.py load"
ANY: Final = "__any__"
GRAINS: Final[dict[str, Grain]] = {"Day": "day", "Week": "week", "Month": "month"}
METRIC_HEIGHT_PX: Final = 220
TITLE_CHARS: Final = 60
"""Titles are cut to this many characters, and the y axis' title to the plot's height in pixels:
a title longer than the plot (a property name of any length) leaves Vega no room to draw it."""
TOO_LARGE: Final = "Larger than the largest number a computer adds up (about 1.8e+308)."
SOURCES: Final = {"derived": "derived from the loads", "webhook": "Streak webhooks", "api": "custom events"}
"""How the ``source`` column reads on the page (docs/events.md: what each source contributes)."""
SCOPE_NOTE: Final = (
    "Events tied to a box count when the box passes the sidebar filters; events with no box count "
    "while no owner or creation-date filter is set (with a pipeline chosen, only those carrying it)."
)


def render(ctx: Context) -> None:
    if not page_header(ctx, "Events", "What happened: custom events, Streak webhooks and events derived from each load."):
        return
    if not ctx.q(eq.has_events):
        empty_state(
            "**No events in this destination yet.** Each run of the main job adds the events its copy "
            "shows (boxes created, stage changes, tasks, comments, ...); the events receiver collects "
            "custom events and Streak webhooks into its local spool (see docs/events.md), which the main "
            "job moves into `crm.events` at the end of each run, or at once with:\n\n"
            f"```\n{EVENTS_COMMAND}\n```"
        )
        return
    summary = ctx.q(eq.events_summary, ctx.filters)
    cards = st.columns(4)
    cards[0].metric("Events", fmt_int(summary["events"]), border=True)
    cards[1].metric("Event names", fmt_int(summary["names"]), border=True)
    cards[2].metric("Tied to a box", fmt_int(summary["with_box"]), border=True)
    latest = summary["latest"]
    cards[3].metric("Latest event", "–" if latest is None else latest.strftime("%Y-%m-%d"), border=True,
                    help=None if latest is None else f"{latest:%Y-%m-%d %H:%M} UTC")
    if summary["by_source"]:
        st.caption("By source: " + " · ".join(
            f"{SOURCES.get(name, name or 'unknown')} {fmt_int(n)}" for name, n in summary["by_source"].items()))
    st.caption(SCOPE_NOTE)
    if summary["events"] == 0:
        empty_state("No events match these filters.")
        return
    grain_label = st.segmented_control("Group by", list(GRAINS), default="Week", key="events_grain") or "Week"
    grain = GRAINS[grain_label]
    _per_name(ctx, grain, grain_label)
    _builder(ctx, grain, grain_label)
    _latest(ctx)


def _per_name(ctx: Context, grain: Grain, grain_label: str) -> None:
    st.subheader(f"Events per {grain_label.lower()}", anchor=False)
    frame = ctx.q(eq.events_over_time, ctx.filters, grain)
    window = time_window(frame["period"], frame["events"], grain, ctx.now)
    if window is None:
        empty_state(f"Every event in view is dated in the future (after this {grain}): nothing to draw.")
        return
    frame = with_period_end(frame[window.holds(frame["period"])], grain)
    names = frame.groupby("event_name")["events"].sum().sort_values(ascending=False).index.tolist()
    x, x2, when = period_x(window)
    scale = alt.Scale(domain=names, range=[FALLBACK_PALETTE[i % len(FALLBACK_PALETTE)] for i in range(len(names))])
    chart(
        alt.Chart(frame)
        .mark_bar(orient="vertical")
        .encode(
            x=x, x2=x2,
            y=alt.Y("sum(events):Q", title="Events"),
            color=alt.Color("event_name:N", title=None, scale=scale, sort=names,
                            legend=alt.Legend(orient="right", labelLimit=240)),
            tooltip=[
                when,
                alt.Tooltip("event_name:N", title="Event"),
                alt.Tooltip("sum(events):Q", title="Events", format=","),
            ],
        )
        .properties(height=300)
    )
    _outside_caption(window)


def _outside_caption(window: TimeWindow) -> None:
    note = window.outside_note(("event", "events"))
    if note:
        st.caption(note)


def _builder(ctx: Context, grain: Grain, grain_label: str) -> None:
    st.subheader("Metric builder", anchor=False)
    totals = ctx.q(eq.events_over_time, ctx.filters, "month").groupby("event_name")["events"].sum()
    names = totals.sort_values(ascending=False).index.tolist()
    top = st.columns(3)
    name = top[0].selectbox("Event", names, key="events_metric_name")
    if name is None:
        return
    dims = ctx.q(eq.event_dimensions, ctx.filters, name)
    pipelines = sorted(dims["pipeline_key"].dropna().unique().tolist(), key=lambda k: str(ctx.pipeline_names.get(k, k)).lower())
    pipeline = top[1].selectbox("Pipeline", [ANY, *pipelines], key="events_metric_pipeline",
                                format_func=lambda k: "Any" if k == ANY else str(ctx.pipeline_names.get(k, k)))
    owners = sorted(dims["owner"].dropna().astype(str).unique().tolist(), key=str.lower)
    owner = top[2].selectbox("Box owner", [ANY, *owners], key="events_metric_owner",
                             format_func=lambda o: "Any" if o == ANY else o)
    properties = ctx.q(eq.property_keys, ctx.filters, name)
    keys = properties["key"].tolist()
    numeric = properties.loc[properties["numbers"] > 0, "key"].tolist()  # text is never summed
    row = st.columns(3)
    prop = row[0].selectbox("Where property", [ANY, *keys], key="events_metric_prop",
                            format_func=lambda k: "(no property filter)" if k == ANY else k)
    value = None
    if prop not in (ANY, None):
        values = ctx.q(eq.property_values, ctx.filters, name, prop)["value"].astype(str).tolist()
        value = row[1].selectbox("equals", values, key="events_metric_value")
    if st.session_state.get("events_metric_measure") not in (ANY, *numeric):  # another event: other numbers
        st.session_state.pop("events_metric_measure", None)
    measure = row[2].selectbox("Measure", [ANY, *numeric], key="events_metric_measure",
                               format_func=lambda k: "Count of events" if k == ANY else f"Sum of {k}",
                               help="Only properties that hold a number in at least one of these events can be summed.")
    spec = eq.Metric(
        event_name=name,
        pipeline_key=None if pipeline in (ANY, None) else pipeline,
        owner=None if owner in (ANY, None) else owner,
        property_key=None if prop in (ANY, None) or value is None else prop,
        property_value=value,
        sum_property=None if measure in (ANY, None) else measure,
    )
    result = ctx.q(eq.metric, ctx.filters, spec, grain)
    cards = st.columns(3)
    cards[0].metric("Matching events", fmt_int(result["events"]), border=True)
    if spec.sum_property is not None:
        cards[1].metric(f"Sum of {md(spec.sum_property)}", fmt_number(result["value"]), border=True,
                        help=TOO_LARGE if math.isinf(result["value"]) else None)
        cards[2].metric("Not a number", fmt_int(result["not_numeric"]), border=True,
                        help="Matching events whose property is missing or text: left out of the sum (text is never parsed).")
    _metric_chart(ctx, result["series"], spec, grain)


def _metric_chart(ctx: Context, series: pd.DataFrame, spec: eq.Metric, grain: Grain) -> None:
    window = time_window(series["period"], series["events"], grain, ctx.now) if not series.empty else None
    if window is None:
        empty_state("No events match this metric" + (" up to now." if not series.empty else "."))
        return
    series = series[window.holds(series["period"])]
    finite = series["value"].map(math.isfinite)
    measure_title = "Events" if spec.sum_property is None else f"Sum of {spec.sum_property}"
    x, x2, when = period_x(window)
    chart(
        alt.Chart(with_period_end(series[finite].assign(label=series["value"].map(fmt_number)), grain))
        .mark_bar(color="#4263eb", orient="vertical")
        .encode(
            x=x, x2=x2,
            y=alt.Y("value:Q", title=shorten(measure_title, TITLE_CHARS),
                    axis=alt.Axis(labelExpr=number_label_expr(), titleLimit=METRIC_HEIGHT_PX - 20)),
            tooltip=[when, alt.Tooltip("label:N", title=shorten(measure_title, TITLE_CHARS))],
        )
        .properties(height=METRIC_HEIGHT_PX)
    )
    _outside_caption(window)
    if not finite.all():
        st.caption(f"Not drawn: {fmt_int(int((~finite).sum()))} {grain}(s) whose sum is {TOO_LARGE.lower()}")


def _latest(ctx: Context) -> None:
    st.subheader("Latest events", anchor=False)
    frame = ctx.q(eq.latest_events, ctx.filters)
    frame = frame.assign(pipeline=frame["pipeline_key"].map(lambda k: None if k is None else ctx.pipeline_names.get(k, k)))
    st.dataframe(
        blank_missing_text(frame[["timestamp", "event_name", "properties", "box_name", "pipeline", "owner", "source"]]),
        hide_index=True,
        column_config={
            "timestamp": st.column_config.DatetimeColumn("When (UTC)", format="YYYY-MM-DD HH:mm"),
            "event_name": st.column_config.TextColumn("Event"),
            "properties": st.column_config.TextColumn("Properties", width="large"),
            "box_name": st.column_config.TextColumn("Box"),
            "pipeline": st.column_config.TextColumn("Pipeline"),
            "owner": st.column_config.TextColumn("Owner"),
            "source": st.column_config.TextColumn("Source"),
        },
    )


PAGE = PageSpec(render, "Events", ":material/bolt:", "events")
