"""Box explorer: every box in view, with its stage and custom fields by name; search and CSV.

``explorer?box=<box key>`` opens one box instead (:func:`box_link`: how other pages open a box): as it
is in the copy, or as it was when last seen if it is gone, and its past from the history tables.
"""

from __future__ import annotations

import re
from typing import Any, Final
from urllib.parse import quote

import pandas as pd
import streamlit as st

from dashboards.app_pages import explorer_queries
from dashboards.data.filters import UNASSIGNED_LABEL
from dashboards.data.history import NO_HISTORY
from dashboards.ui.context import Context, PageSpec, empty_state, page_header
from dashboards.ui.format import blank_missing_text, field_value, fmt_int, fmt_moment, is_present
from dashboards.ui.text import md

URL_PATH: Final = "explorer"
BOX_PARAM: Final = "box"
OPEN_COLUMN: Final = "Open"
"""The first column of a list whose rows open their box: a link to :func:`box_link`."""


def box_link(box_key: str) -> str:
    """The URL, relative to the app, that opens the box ``box_key`` in the Box explorer."""
    return f"{URL_PATH}?{BOX_PARAM}={quote(str(box_key), safe='')}"


def open_column() -> Any:
    """The column config of :data:`OPEN_COLUMN`: each cell a link reading "Open"."""
    return st.column_config.LinkColumn(OPEN_COLUMN, display_text="Open", width="small",
                                       help="Opens the box in the Box explorer (a new tab).")


def render(ctx: Context) -> None:
    if not page_header(ctx, "Box explorer", "Every box in view, with its stage and custom fields by name."):
        return
    box_key = st.query_params.get(BOX_PARAM)
    if box_key:
        _one_box(ctx, box_key)
        return
    boxes: pd.DataFrame = ctx.q(explorer_queries.explorer_boxes, ctx.filters)
    labels: dict[str, str] = ctx.q(explorer_queries.column_labels, ctx.filters.pipeline_key)
    controls = st.columns([3, 2])
    search = controls[0].text_input("Search", key="explorer_search", placeholder="Name, stage, owner or any field value")
    if ctx.filters.pipeline_key is not None and "stage_name" in boxes and not boxes.empty:
        stage_names = [str(s) for s in dict.fromkeys(boxes["stage_name"].dropna())]
        chosen = controls[1].multiselect("Stages", stage_names, key="explorer_stages", placeholder="All stages")
        if chosen:
            boxes = boxes[boxes["stage_name"].isin(chosen)]
    shown = explorer_queries.search_boxes(boxes, search)
    st.caption(f"{fmt_int(len(shown))} of {fmt_int(len(boxes))} boxes")
    if shown.empty:
        empty_state("No boxes match." if not boxes.empty else "No boxes match these filters.")
        return
    pipeline = ctx.pipeline_names.get(ctx.filters.pipeline_key, "") if ctx.filters.pipeline_key else "all pipelines"
    file_name = re.sub(r"[^0-9A-Za-z]+", "_", f"streak_boxes_{pipeline}").strip("_").lower() + ".csv"
    st.download_button(
        "Download CSV",
        data=lambda: explorer_queries.with_display_names(shown, labels).to_csv(index=False).encode("utf-8"),
        file_name=file_name,
        mime="text/csv",
        icon=":material/download:",
        on_click="ignore",
        help="Columns carry the names they have in Streak.",
    )
    table = blank_missing_text(shown)
    st.dataframe(table, hide_index=True, height=560, column_config=_column_config(table, labels))


def _column_config(shown: pd.DataFrame, labels: dict[str, str]) -> dict[str, Any]:
    """Column headers are plain text in st.dataframe: display names go in unescaped."""
    config: dict[str, Any] = {"box_key": None}
    for column in shown.columns:
        if column == "box_key":
            continue
        label = labels.get(column, column.replace("_", " ").capitalize())
        series = shown[column]
        if column == "box_name":  # not pinned: Streamlit draws pinned columns in faded grey
            config[column] = st.column_config.TextColumn(label, width="medium")
        elif pd.api.types.is_datetime64_any_dtype(series):
            config[column] = st.column_config.DatetimeColumn(label, format="YYYY-MM-DD")
        elif pd.api.types.is_bool_dtype(series):
            config[column] = st.column_config.CheckboxColumn(label)
        elif pd.api.types.is_numeric_dtype(series):
            config[column] = st.column_config.NumberColumn(label, format="localized")
        else:
            config[column] = st.column_config.TextColumn(label)
    return config


def _all_boxes() -> None:
    st.query_params.pop(BOX_PARAM, None)


def _one_box(ctx: Context, box_key: str) -> None:
    """The box ``box_key`` whatever the filters: where it is now (or that it is gone), and its past."""
    st.button("All boxes", on_click=_all_boxes, icon=":material/arrow_back:", type="tertiary")
    now: pd.DataFrame = ctx.q(explorer_queries.box_now, box_key)
    versions: pd.DataFrame | None = ctx.q(explorer_queries.box_versions, box_key)
    values: pd.DataFrame | None = ctx.q(explorer_queries.box_field_versions, box_key)
    known = versions is not None and not versions.empty
    if now.empty and not known:
        empty_state(f"No box with the key {md(box_key)} in this copy or its history.")
        return
    last = now.iloc[0] if not now.empty else versions.iloc[-1]  # type: ignore[union-attr]
    name = last["box_name"] if is_present(last["box_name"]) else box_key
    st.subheader(md(name), anchor=False)
    where = f"{md(last['pipeline_name'])} · stage {md(last['stage_name'])} · assigned to {md(who(last['assignees']))}"
    if not now.empty:
        st.caption(f"In the copy: {where}.")
    else:
        gone = versions.iloc[-1]["until"]  # type: ignore[union-attr]
        st.caption(f"**Deleted**: the load that ended {gone:%Y-%m-%d %H:%M} UTC found it gone. When last seen: {where}.")
    if versions is None:
        empty_state(NO_HISTORY)
        return
    st.markdown("**Name, stage and assignees over time**")
    past = versions.assign(assignees=versions["assignees"].map(who), until=versions["until"].map(_until))
    past = past[["since", "until", "box_name", "stage_name", "assignees", "deleted"]]
    st.dataframe(blank_missing_text(past), hide_index=True, column_config={
        "since": st.column_config.DatetimeColumn("From load", format="YYYY-MM-DD HH:mm"),
        "until": "Until load", "box_name": "Box", "stage_name": "Stage", "assignees": "Assigned to",
        "deleted": st.column_config.CheckboxColumn("Then gone")})
    if values is not None and not values.empty:
        st.markdown("**Field values over time**")
        shown = pd.DataFrame({
            "field": values["field_name"],
            "value": [field_value(*row) for row in values[["value_text", "value_number", "value_bool",
                                                            "value_timestamp"]].itertuples(index=False)],
            "since": values["since"], "until": values["until"].map(_until)})
        st.dataframe(blank_missing_text(shown), hide_index=True, column_config={
            "field": "Field", "value": "Value", "until": "Until load",
            "since": st.column_config.DatetimeColumn("From load", format="YYYY-MM-DD HH:mm")})
    st.caption("A row holds from the end of the load that first stored it until the end of the load "
               "that stored something else or found the box gone.")


def _until(moment: Any) -> str:
    """When a row stopped holding (UTC), or "now" while it still does."""
    return fmt_moment(moment) or "now"


def who(names: Any) -> str:
    """Assignee names as a list shows them: "Unassigned" (the sidebar's word) for nobody."""
    return str(names) if is_present(names) and str(names) else UNASSIGNED_LABEL


PAGE = PageSpec(render, "Box explorer", ":material/table_view:", URL_PATH)
