"""Box explorer: every box in view, with its stage and custom fields by name; search and CSV."""

from __future__ import annotations

import re
from typing import Any

import pandas as pd
import streamlit as st

from dashboards.app_pages import explorer_queries
from dashboards.ui.context import Context, PageSpec, empty_state, page_header
from dashboards.ui.format import blank_missing_text, fmt_int


def render(ctx: Context) -> None:
    if not page_header(ctx, "Box explorer", "Every box in view, with its stage and custom fields by name."):
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


PAGE = PageSpec(render, "Box explorer", ":material/table_view:", "explorer")
