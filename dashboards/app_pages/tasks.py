"""Tasks: open tasks on the filtered boxes that are overdue or due soon, per assignee."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from dashboards.app_pages import tasks_queries
from dashboards.data.filters import UNASSIGNED_LABEL
from dashboards.ui.context import Context, PageSpec, chart, empty_state, page_header
from dashboards.ui.format import STATE_COLORS, fmt_int


def render(ctx: Context) -> None:
    if not page_header(ctx, "Tasks", "Open tasks on these boxes that are overdue or due soon, by assignee."):
        return
    horizon = st.slider("Due soon means due within (days)", 1, 30, 7, key="tasks_horizon")
    tasks: pd.DataFrame = ctx.q(tasks_queries.open_tasks, ctx.filters)
    statuses: dict[str, int] = ctx.q(tasks_queries.task_status_counts, ctx.filters)
    classified = tasks_queries.classify_tasks(tasks, ctx.now, horizon)
    overdue = int((classified["state"] == "Overdue").sum())
    soon = int((classified["state"] == "Due soon").sum())
    cards = st.columns(4)
    cards[0].metric("Open tasks", fmt_int(len(classified)), border=True, help="Tasks not done.")
    cards[1].metric("Overdue", fmt_int(overdue), border=True, help="Not done, due date in the past.")
    cards[2].metric(f"Due in {horizon} days", fmt_int(soon), border=True)
    cards[3].metric("Done", fmt_int(statuses.get("DONE", 0)), border=True)
    if overdue + soon == 0:
        empty_state("Nothing overdue or due soon for these boxes.")
        return
    st.subheader("Overdue and due soon, by assignee", anchor=False)
    pairs: pd.DataFrame | None = ctx.q(tasks_queries.open_task_assignees, ctx.filters)
    if pairs is None:
        empty_state(
            "Per-assignee counts need the `box_task_assignees` table, which this destination does not "
            "have yet: run the main job again to add it."
        )
    else:
        st.caption(tasks_queries.COUNTING_RULE)
        chart(_assignee_chart(tasks_queries.tasks_by_assignee(classified, pairs)))
    st.subheader("The tasks", anchor=False)
    focus = classified[classified["state"].isin(["Overdue", "Due soon"])].sort_values("due_date")
    focus = focus.assign(assignee_names=focus["assignee_names"].fillna(UNASSIGNED_LABEL))
    st.dataframe(
        focus[["state", "due_date", "days_overdue", "text", "assignee_names", "box_name", "pipeline_name", "stage_name"]],
        hide_index=True,
        column_config={
            "state": st.column_config.TextColumn("State"),
            "due_date": st.column_config.DatetimeColumn("Due", format="YYYY-MM-DD HH:mm"),
            "days_overdue": st.column_config.NumberColumn("Days overdue", format="%.0f"),
            "text": st.column_config.TextColumn("Task", width="large"),
            "assignee_names": st.column_config.TextColumn("Assignees"),
            "box_name": st.column_config.TextColumn("Box"),
            "pipeline_name": st.column_config.TextColumn("Pipeline"),
            "stage_name": st.column_config.TextColumn("Stage"),
        },
    )


def _assignee_chart(by_assignee: pd.DataFrame) -> alt.Chart:
    totals = by_assignee.groupby("assignee")["tasks"].sum().sort_values(ascending=False)
    return (
        alt.Chart(by_assignee)
        .mark_bar(cornerRadiusEnd=3)
        .encode(
            y=alt.Y("assignee:N", sort=list(totals.index), title=None, axis=alt.Axis(labelLimit=220)),
            x=alt.X("tasks:Q", title="Tasks", stack=True),
            color=alt.Color(
                "state:N", title=None,
                scale=alt.Scale(domain=list(STATE_COLORS), range=list(STATE_COLORS.values())),
                legend=alt.Legend(orient="top"),
            ),
            order=alt.Order("state:N", sort="descending"),
            tooltip=[
                alt.Tooltip("assignee:N", title="Assignee"),
                alt.Tooltip("state:N", title="State"),
                alt.Tooltip("tasks:Q", title="Tasks"),
            ],
        )
        .properties(height=32 * len(totals) + 90)
    )


PAGE = PageSpec(render, "Tasks", ":material/task_alt:", "tasks")
