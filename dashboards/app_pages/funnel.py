"""Pipeline funnel: boxes per stage in stage order, open vs closed, and sums of numeric fields; and the
pipeline over time: open boxes and the summed field per stage in the copy each load produced."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboards.app_pages import funnel_queries
from dashboards.app_pages.funnel_charts import over_time_bars, stage_bars
from dashboards.data import history
from dashboards.ui.context import Context, PageSpec, chart, empty_state, page_header
from dashboards.ui.format import fmt_int, fmt_number, load_labels, unique_labels
from dashboards.ui.text import md

COUNT: tuple[str, str] = ("", "")
"""The measure option "Number of boxes" (no field)."""


def render(ctx: Context) -> None:
    if not page_header(ctx, "Pipeline funnel", "Boxes in each stage, in the pipeline's stage order."):
        return
    fields: pd.DataFrame = ctx.q(funnel_queries.numeric_fields, ctx.filters)
    many = ctx.filters.pipeline_key is None
    labels = {COUNT: "Number of boxes"}
    for row in fields.itertuples():
        labels[(str(row.pipeline_key), str(row.field_key))] = (
            f"{row.field_name} ({row.pipeline_name})" if many else str(row.field_name)
        )
    if st.session_state.get("funnel_measure") not in labels:  # another filter: other fields
        st.session_state.pop("funnel_measure", None)
    measure = st.selectbox(
        "Sum a numeric field",
        list(labels),
        key="funnel_measure",
        format_func=labels.__getitem__,  # options are plain text: names unescaped
        help="Sums `value_number`: numbers, formulas and text the loader read as a number.",
    )
    value_field = None if measure == COUNT else measure
    frame: pd.DataFrame = ctx.q(funnel_queries.funnel, ctx.filters, value_field)
    total = int(frame["boxes"].sum())
    open_boxes = int(frame["open_boxes"].sum())
    cards = st.columns(4)
    cards[0].metric("Boxes", fmt_int(total), border=True)
    cards[1].metric("Open boxes", fmt_int(open_boxes), border=True, help="Boxes not in a closed stage.")
    if value_field:
        field_row = fields[(fields["pipeline_key"] == value_field[0]) & (fields["field_key"] == value_field[1])]
        cards[2].metric(f"Total {md(labels[measure])}", fmt_number(float(frame["value"].sum())), border=True)
        skipped = int(field_row["not_numbers"].sum()) if not field_row.empty else 0
        if skipped:
            st.caption(f"{fmt_int(skipped)} values of {md(labels[measure])} are not numbers and are left out of the sum.")
    st.caption(ctx.closed_note().replace("Leaves out", "Open boxes leave out"))
    if total == 0:
        empty_state("No boxes match these filters.")
        return
    loads: pd.DataFrame | None = ctx.q(history.history_loads)
    past: pd.DataFrame = ctx.q(funnel_queries.pipeline_over_time, ctx.filters, value_field)
    for pipeline_key, stages in frame.groupby("pipeline_key", sort=False):
        stages = stages.sort_values(["stage_order", "stage_key"]).reset_index(drop=True)
        if many:
            count = int(stages["boxes"].sum())
            st.subheader(f"{md(stages['pipeline_name'].iloc[0])} · {fmt_int(count)} boxes", anchor=False)
        shown = stages["stage_name"].astype(str) + stages["closed"].map({True: " (closed)", False: ""})
        stages["stage"] = unique_labels(shown, stages["stage_key"])
        stages["share"] = stages["boxes"] / max(1, int(stages["boxes"].sum()))
        stages["boxes_label"] = stages["boxes"].map(fmt_int) + "  ·  " + stages["share"].map("{:.0%}".format)
        columns = st.columns(2) if value_field else [st.container()]
        with columns[0]:
            if value_field:
                st.caption("Boxes per stage")
            chart(stage_bars(stages, "boxes", "Boxes", "boxes_label"))
        if value_field and pipeline_key != value_field[0]:
            with columns[1]:
                empty_state(f"**{md(labels[measure])}** is a field of another pipeline: "
                            f"{md(stages['pipeline_name'].iloc[0])} has no such field, so there is nothing to sum here.")
        elif value_field:
            stages["value_label"] = stages["value"].map(fmt_number)
            with columns[1]:
                st.caption(f"Sum of {md(labels[measure])} per stage")
                chart(stage_bars(stages, "value", labels[measure], "value_label"))
        if loads is not None and not loads.empty:
            summed = labels[measure] if value_field and pipeline_key == value_field[0] else None
            _over_time(past[past["pipeline_key"] == pipeline_key], loads, summed)
    if loads is None:
        st.caption(f"**Pipeline over time**: {history.NO_HISTORY}")


def _over_time(past: pd.DataFrame, loads: pd.DataFrame, summed: str | None) -> None:
    """One pipeline's open boxes (and sum of the field ``summed``) per stage at each load: charts and tables."""
    st.markdown("**Pipeline over time**: open boxes per stage in the copy each load produced"
                + (f", and their {md(summed)}" if summed else ""))
    names = dict(zip(loads["run_id"], load_labels(loads["finished_at"])))
    order = {names[run_id]: run_id for run_id in loads["run_id"]}
    open_rows = past[~past["closed"].astype(bool)].copy()
    if open_rows.empty:
        st.caption("No open boxes in this pipeline at any load.")
        return
    open_rows["load"] = open_rows["run_id"].map(names)
    stages = open_rows.drop_duplicates("stage_key")
    label_of = dict(zip(stages["stage_key"], unique_labels(stages["stage_name"].astype(str), stages["stage_key"])))
    open_rows["stage"] = open_rows["stage_key"].map(label_of)
    columns = st.columns(2) if summed else [st.container()]
    with columns[0]:
        chart(over_time_bars(open_rows, order, "boxes", "Open boxes", "boxes_total_label"))
    if summed:
        with columns[1]:
            chart(over_time_bars(open_rows, order, "value", summed, "value_total_label"))
    # Drawn only once opened (a rerun): closed, its tables would still be built, sent and laid out.
    with st.expander("At each load, as a table", key=tables_key(str(past["pipeline_key"].iloc[0])),
                     on_change="rerun") as tables:
        if tables.open:
            for measure, title in (("boxes", "Open boxes"), *((("value", summed),) if summed else ())):
                st.caption(f"{md(title)} per stage")
                st.dataframe(at_each_load(open_rows, list(reversed(list(order))), measure), hide_index=True)


def tables_key(pipeline_key: str) -> str:
    """The widget key of a pipeline's "At each load, as a table" expander (its open state)."""
    return f"funnel_tables_{pipeline_key}"


def at_each_load(rows: pd.DataFrame, loads: list[str], measure: str) -> pd.DataFrame:
    """A row per load (in ``loads`` order), a column per stage in stage order, and the total."""
    stages = rows.sort_values(["stage_order", "stage"]).drop_duplicates("stage")["stage"].tolist()
    table = rows.pivot_table(index="load", columns="stage", values=measure, aggfunc="sum", fill_value=0)
    table = table.reindex(index=loads, columns=stages, fill_value=0)
    table["Total"] = table.sum(axis=1)
    if measure == "boxes":
        table = table.astype("int64")
    return table.rename_axis(index="Load", columns=None).reset_index()


PAGE = PageSpec(render, "Pipeline funnel", ":material/filter_alt:", "funnel")
