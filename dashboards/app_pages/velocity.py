"""Velocity: how long each stage takes, how many boxes get from one stage to another and how fast.

Reads ``box_stage_history`` (every stay of every box, kept across runs); the counting rules are
in ``velocity_queries``' docstring and docs/dashboard.md.
"""

from __future__ import annotations

from typing import Final

import altair as alt
import pandas as pd
import streamlit as st

from dashboards.app_pages import velocity_queries as vq
from dashboards.data import lookups
from dashboards.ui.context import Context, PageSpec, chart, empty_state, page_header
from dashboards.ui.format import (
    fmt_days,
    fmt_int,
    fmt_pct,
    stage_colors,
    unique_labels,
    with_period_end,
)
from dashboards.ui.text import md
from dashboards.ui.time_axis import period_x, time_window

HISTORY_COMMAND: Final = "python pipelines/streak_full.py --backfill-history"
EXACT_HELP: Final = (
    "On: only stays whose entry and exit times are both known exactly. Off: also stays whose "
    "entry is a bound (Streak gave no usable stage-change time) or whose exit is an upper bound "
    "(a move the newsfeed no longer covered)."
)


def render(ctx: Context) -> None:
    if not page_header(ctx, "Velocity", "How long each stage takes, and how boxes move from stage to stage."):
        return
    if not ctx.q(vq.has_history):
        empty_state(
            "**No stage history in this destination yet.** The table `box_stage_history` is written by "
            "every run of the main job from this version on; run it once to start it (the first run "
            f"knows each box's current stage), or read each box's recent moves now:\n\n```\n{HISTORY_COMMAND}\n```"
        )
        return
    exact_only = st.toggle("Exact times only", value=True, key="velocity_exact", help=EXACT_HELP)
    counts = ctx.q(vq.velocity_counts, ctx.filters, exact_only)
    cards = st.columns(4)
    cards[0].metric("Boxes with history", fmt_int(counts["boxes"]), border=True)
    cards[1].metric("Stays recorded", fmt_int(counts["stays"]), border=True)
    cards[2].metric("Stays measured", fmt_int(counts["measured"]), border=True,
                    help="Stays that have ended" + (" with exact times." if exact_only else ", exact or not."))
    cards[3].metric("Still in their stage", fmt_int(counts["open"]), border=True)
    inexact = counts["inexact_ended"]
    st.caption(
        ("Exact times only: " + (f"{fmt_int(inexact)} ended stays with an inferred time are left out. "
                                 if inexact else "every ended stay here has exact times. ")
         if exact_only else f"Inexact stays included ({fmt_int(inexact)} of the measured ones). ")
        + "Stays of boxes deleted from Streak are not counted; open stays are not measured."
    )
    if counts["stays"] == 0:
        empty_state("No boxes match these filters, or none of them has stage history yet.")
        return
    stats = ctx.q(vq.time_in_stage, ctx.filters, exact_only)
    stage_info = _stage_info(ctx, stats)
    _time_in_stage(ctx, stats, stage_info, exact_only)
    pipeline = _pipeline_choice(ctx, stats)
    if pipeline is not None:
        stages = stage_info[stage_info["pipeline_key"] == pipeline].sort_values(["stage_order", "stage_key"])
        _conversion(ctx, pipeline, stages, exact_only)
        _creation_to_stage(ctx, pipeline, stages, exact_only)
    _weekly_entries(ctx, stage_info, exact_only)


def _stage_info(ctx: Context, stats: pd.DataFrame) -> pd.DataFrame:
    """Every stage (Streak's list, plus stages only the history knows): key, name, order, colour, label."""
    known = ctx.q(lookups.stages, ctx.filters.pipeline_key)[["pipeline_key", "stage_key", "stage_name", "stage_order", "color"]]
    extra = stats[["pipeline_key", "stage_key", "stage_name", "stage_order"]].assign(color=None)
    info = pd.concat([known.astype(object), extra.astype(object)], ignore_index=True)
    info = info.drop_duplicates(["pipeline_key", "stage_key"], keep="first").reset_index(drop=True)
    info["stage_order"] = pd.to_numeric(info["stage_order"], errors="coerce").fillna(lookups.UNKNOWN_STAGE_ORDER)
    info["stage_name"] = info["stage_name"].where(info["stage_name"].notna(), info["stage_key"]).astype(str)
    closed = set(ctx.filters.closed_stage_keys)
    info["closed"] = [(p, s) in closed for p, s in zip(info["pipeline_key"], info["stage_key"])]
    info["pipeline_name"] = info["pipeline_key"].map(lambda k: ctx.pipeline_names.get(k, k))
    multi = ctx.filters.pipeline_key is None and info["pipeline_key"].nunique() > 1
    base = (info["pipeline_name"].astype(str) + " · " + info["stage_name"]) if multi else info["stage_name"]
    info["label"] = unique_labels(base, info["stage_key"])
    return info.sort_values(["pipeline_name", "stage_order", "stage_key"]).reset_index(drop=True)


def _time_in_stage(ctx: Context, stats: pd.DataFrame, info: pd.DataFrame, exact_only: bool) -> None:
    st.subheader("Time in stage", anchor=False)
    frame = stats.merge(info[["pipeline_key", "stage_key", "label", "color", "closed", "pipeline_name"]],
                        on=["pipeline_key", "stage_key"], how="left")
    closed = frame[frame["closed"].fillna(False).astype(bool)]
    frame = frame[~frame["closed"].fillna(False).astype(bool) & (frame["measured"] > 0)]
    note = "Median (bar) and 90th percentile (tick) of every ended stay, not only the current one."
    if len(closed):
        note += " Closed stages left out: " + ", ".join(md(n) for n in closed["label"]) + "."
    st.caption(note)
    if frame.empty:
        empty_state("No stay has ended yet" + (" with exact times (turn off **Exact times only** to see "
                                                "inferred ones)." if exact_only else ".")
                    + " Times appear once boxes move on from a stage.")
        return
    frame = time_in_stage_rows(frame)
    order = frame["label"].tolist()
    base = alt.Chart(frame).encode(
        y=alt.Y("label:N", sort=order, title=None, axis=alt.Axis(labelLimit=260)),
        tooltip=[
            alt.Tooltip("label:N", title="Stage"),
            alt.Tooltip("measured:Q", title="Stays measured", format=","),
            alt.Tooltip("median_days:Q", title="Median days", format=".1f"),
            alt.Tooltip("p90_days:Q", title="90th percentile days", format=".1f"),
            alt.Tooltip("open:Q", title="Still there", format=","),
        ],
    )
    bars = base.mark_bar(cornerRadiusEnd=4, stroke="#495057", strokeWidth=0.5, strokeOpacity=0.6).encode(
        x=alt.X("median_days:Q", title="Days (bar: median, tick: 90th percentile)",
                scale=alt.Scale(domain=[0, float(frame["p90_days"].max()) * 1.3 or 1.0])),
        color=alt.Color("label:N", scale=stage_colors(frame, "label"), legend=None),
    )
    spread = base.mark_rule(color="#adb5bd", strokeWidth=2).encode(x="median_days:Q", x2="p90_days:Q")
    ticks = base.mark_tick(color="#343a40", thickness=2, size=22).encode(x="p90_days:Q")
    text = base.mark_text(align="left", dx=8, color="#343a40").encode(x="p90_days:Q", text="text:N")
    chart((spread + bars + ticks + text).properties(height=34 * len(frame) + 60))


def time_in_stage_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The chart's rows in stage order, each with its own days and text label.

    Every derived column is computed from the row's own values (index-aligned, never a list built
    in another order): a label can only ever sit next to the median it states.
    """
    rows = frame.sort_values(["pipeline_name", "stage_order", "stage_key"]).reset_index(drop=True)
    return rows.assign(
        median_days=rows["median_s"] / 86400,
        p90_days=rows["p90_s"] / 86400,
        text=rows["median_s"].map(fmt_days) + " (p90 " + rows["p90_s"].map(fmt_days) + ")",
    )


def _pipeline_choice(ctx: Context, stats: pd.DataFrame) -> str | None:
    """The sidebar's pipeline, else one picked here (conversion is within one pipeline)."""
    if ctx.filters.pipeline_key is not None:
        return ctx.filters.pipeline_key
    keys = stats.groupby("pipeline_key")["open"].count().index.tolist()
    if not keys:
        return None
    keys.sort(key=lambda k: str(ctx.pipeline_names.get(k, k)).lower())
    return st.selectbox("Pipeline for conversion and time from creation", keys, key="velocity_pipeline",
                        format_func=lambda k: str(ctx.pipeline_names.get(k, k)))


def _stage_label(stages: pd.DataFrame) -> dict[str, str]:
    return {k: n + (" (closed)" if c else "") for k, n, c in zip(stages["stage_key"], stages["stage_name"], stages["closed"])}


def _conversion(ctx: Context, pipeline: str, stages: pd.DataFrame, exact_only: bool) -> None:
    st.subheader("Stage to stage", anchor=False)
    keys = stages["stage_key"].tolist()
    if len(keys) < 2:
        empty_state("This pipeline has fewer than two stages.")
        return
    labels = _stage_label(stages)
    left, right = st.columns(2)
    stage_a = left.selectbox("From stage (A)", keys[:-1], key=f"velocity_a_{pipeline}", format_func=lambda k: labels.get(k, str(k)))
    after = keys[keys.index(stage_a) + 1:]
    stage_b = right.selectbox("To a later stage (B)", after, key=f"velocity_b_{pipeline}", format_func=lambda k: labels.get(k, str(k)))
    if stage_a is None or stage_b is None:
        return
    result = ctx.q(vq.conversion, ctx.filters, pipeline, stage_a, stage_b, exact_only)
    cards = st.columns(4)
    cards[0].metric("Entered A", fmt_int(result["entered"]), border=True)
    cards[1].metric("Reached B later", fmt_int(result["reached"]), border=True)
    cards[2].metric("Conversion", fmt_pct(result["reached"], result["entered"]), border=True)
    cards[3].metric("Median time A → B", fmt_days(result["median_s"]), border=True,
                    help=f"90th percentile {fmt_days(result['p90_s'])}; {fmt_int(result['timed'])} boxes timed.")
    st.caption(
        f"Of the boxes that entered **{md(labels[stage_a])}**, the share with a stay in **{md(labels[stage_b])}** "
        "that began after their first entry into A; time from that first entry to the first entry into B after it"
        + (" (pairs with both entry times exact)." if exact_only else ".")
    )


def _creation_to_stage(ctx: Context, pipeline: str, stages: pd.DataFrame, exact_only: bool) -> None:
    st.subheader("From creation to a stage", anchor=False)
    keys = stages["stage_key"].tolist()
    if not keys:
        return
    labels = _stage_label(stages)
    stage = st.selectbox("Stage", keys, index=min(1, len(keys) - 1), key=f"velocity_created_{pipeline}",
                         format_func=lambda k: labels.get(k, str(k)))
    if stage is None:
        return
    result = ctx.q(vq.creation_to_stage, ctx.filters, pipeline, stage, exact_only)
    cards = st.columns(3)
    cards[0].metric("Boxes that reached it", fmt_int(result["reached"]), border=True)
    cards[1].metric("Median from creation", fmt_days(result["median_s"]), border=True,
                    help=f"{fmt_int(result['timed'])} boxes timed.")
    cards[2].metric("90th percentile from creation", fmt_days(result["p90_s"]), border=True)


def _weekly_entries(ctx: Context, info: pd.DataFrame, exact_only: bool) -> None:
    st.subheader("Entries per week", anchor=False)
    frame = ctx.q(vq.weekly_entries, ctx.filters, exact_only)
    if frame.empty:
        empty_state("No entries into a stage" + (" with an exact time." if exact_only else "."))
        return
    frame = frame.rename(columns={"week": "period"})
    window = time_window(frame["period"], frame["entries"], "week", ctx.now)
    if window is None:
        empty_state("Every entry into a stage is dated in the future: nothing to draw.")
        return
    frame = with_period_end(frame[window.holds(frame["period"])], "week").drop(columns=["stage_name", "stage_order"]).merge(
        info[["pipeline_key", "stage_key", "label", "color", "stage_order", "pipeline_name"]],
        on=["pipeline_key", "stage_key"], how="left",
    )
    x, x2, when = period_x(window)
    legend = frame.drop_duplicates("label").sort_values(["pipeline_name", "stage_order"])
    st.caption("Stays begun per week (weeks start on Monday, UTC)"
               + (", exact entry times only." if exact_only else "."))
    chart(
        alt.Chart(frame)
        .mark_bar(orient="vertical")
        .encode(
            x=x, x2=x2,
            y=alt.Y("sum(entries):Q", title="Entries"),
            color=alt.Color("label:N", title=None, scale=stage_colors(legend, "label"),
                            sort=legend["label"].tolist(), legend=alt.Legend(orient="right", labelLimit=240)),
            order=alt.Order("stage_order:Q"),
            tooltip=[
                when,
                alt.Tooltip("label:N", title="Stage"),
                alt.Tooltip("sum(entries):Q", title="Entries", format=","),
            ],
        )
        .properties(height=300)
    )
    note = window.outside_note(("entry", "entries"))
    if note:
        st.caption(note)


PAGE = PageSpec(render, "Velocity", ":material/speed:", "velocity")
