"""Queries of the Box explorer: the filtered boxes as a table, custom fields by name; one box and its past.

A pipeline's wide view and its column labels come from the mapping table ``wide_view_columns``
(written by the main job next to the views: one row per view column with its display name), never
from re-deriving the view's naming rules here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import pandas as pd

from dashboards.data.catalog import Catalog
from dashboards.data.connection import Runner, require_data
from dashboards.data.filters import UNASSIGNED_LABEL, Filters, boxes_cte, stage_join, stage_name_expr
from dashboards.data.history import BOXES_HISTORY, has_history, history_of
from dashboards.data.lookups import pipeline_names, with_pipeline_names
from dashboards.data.sql import col, empty, lit, quote_identifier, utc

MAPPING: Final = "wide_view_columns"
HIDDEN_VIEW_COLUMNS: Final = ("stage_order", "stage_key")
"""Columns a view carries for sorting/joining that a person does not need to read."""
BASE_LABELS: Final = {
    "box_name": "Box",
    "pipeline": "Pipeline",
    "stage_name": "Stage",
    "owner_name": "Owner",
    "assigned_to": "Assigned to",
    "created": "Created",
    "last_updated": "Last updated",
    "last_stage_change": "Last stage change",
    "tasks": "Tasks",
    "email_threads": "Email threads",
    "comments": "Comments",
}
"""Labels of the columns of the table built without a wide view."""
WHO_COLUMNS: Final = ("owner_name", "assigned_to")
"""Who has the box: "Unassigned" (the sidebar's word) when no one, in each of them alike."""


@dataclass(frozen=True)
class WideView:
    """A pipeline's wide view: its name and column -> display name, in the view's column order."""

    name: str
    labels: tuple[tuple[str, str], ...]


def wide_view(run: Runner, pipeline_key: str) -> WideView | None:
    """The pipeline's wide view per ``wide_view_columns``, if the view exists in the catalog."""
    catalog = require_data(run)
    if not catalog.has(MAPPING, "view_name", "pipeline_key", "column_name", "display_name"):
        return None
    position = col(catalog, MAPPING, "m", "column_position")
    rows = run.df(
        f"""
        SELECT m.view_name AS view_name, m.column_name AS column_name, m.display_name AS display_name
        FROM {MAPPING} AS m WHERE m.pipeline_key = {lit(pipeline_key)}
        ORDER BY m.view_name, {position}
        """
    )
    if rows.empty:
        return None
    name = str(rows["view_name"].iloc[0])
    if not catalog.is_view(name.lower()):
        return None
    rows = rows[rows["view_name"] == name]
    present = set(catalog.columns.get(name.lower(), ()))
    labels = tuple(
        (str(c), str(d) if pd.notna(d) and str(d).strip() else str(c))
        for c, d in zip(rows["column_name"], rows["display_name"])
        if str(c).lower() in present
    )
    return WideView(name, labels) if any(c == "box_key" for c, _ in labels) else None


def explorer_boxes(run: Runner, f: Filters) -> pd.DataFrame:
    """The filtered boxes as a table a person reads.

    With one pipeline selected, the columns come from its wide view (one column per custom field);
    without a view for it, the fields are pivoted from ``box_field_values`` (named by field name);
    across pipelines custom fields are left out (their fields differ).
    """
    catalog = require_data(run)
    view = wide_view(run, f.pipeline_key) if f.pipeline_key is not None else None
    if view is not None:
        frame = _from_view(run, f, catalog, view)
    else:
        frame = _base(run, f, catalog)
        if f.pipeline_key is not None and not frame.empty:
            frame = _with_pivoted_fields(run, f, catalog, frame)
    for column in WHO_COLUMNS:
        if column in frame:
            frame[column] = frame[column].astype("object").where(frame[column].notna(), UNASSIGNED_LABEL)
    return frame


def column_labels(run: Runner, pipeline_key: str | None) -> dict[str, str]:
    """Explorer column -> display name (the view's mapping rows, else the base labels)."""
    labels = dict(BASE_LABELS)
    if pipeline_key is not None:
        view = wide_view(run, pipeline_key)
        if view is not None:
            labels.update(dict(view.labels))
    return labels


def _from_view(run: Runner, f: Filters, catalog: Catalog, view: WideView) -> pd.DataFrame:
    """Select the view's columns explicitly (dlt's dataset API cannot expand ``*`` of a view)."""
    names = [c for c, _ in view.labels]
    select = ", ".join(f"v.{quote_identifier(c)} AS {quote_identifier(c)}" for c in names)
    order = "v.stage_order, " if "stage_order" in names else ""
    order += "v.box_name" if "box_name" in names else "v.box_key"
    frame = run.df(
        f"""
        WITH {boxes_cte(f, catalog)}
        SELECT {select}
        FROM {quote_identifier(view.name)} AS v JOIN fb ON fb.box_key = v.box_key
        ORDER BY {order}
        """
    )
    frame = frame.drop(columns=[c for c in HIDDEN_VIEW_COLUMNS if c in frame])
    for column in frame.columns:
        if isinstance(frame[column].dtype, pd.DatetimeTZDtype) or column.endswith("_timestamp"):
            frame[column] = utc(frame[column])
    return frame


def _base(run: Runner, f: Filters, catalog: Catalog) -> pd.DataFrame:
    c = lambda column: col(catalog, "boxes", "b", column)
    has_stages = catalog.has("stages", "pipeline_key", "stage_key")
    stage_join = (
        "LEFT JOIN stages AS st ON st.pipeline_key = fb.pipeline_key AND st.stage_key = fb.stage_key"
        if has_stages else ""
    )
    stage_order = col(catalog, "stages", "st", "stage_order") if has_stages else "NULL"
    frame = run.df(
        f"""
        WITH {boxes_cte(f, catalog)}
        SELECT fb.box_key AS box_key, fb.box_name AS box_name, fb.pipeline_key AS pipeline_key,
               fb.box_stage_name AS stage_name, {stage_order} AS stage_order,
               fb.owner_name AS owner_name, {c('assigned_to_names')} AS assigned_to,
               fb.creation_timestamp AS created, {c('last_updated_timestamp')} AS last_updated,
               fb.last_stage_change_timestamp AS last_stage_change,
               {c('task_total')} AS tasks, {c('gmail_thread_count')} AS email_threads,
               {c('comment_count')} AS comments
        FROM fb JOIN boxes AS b ON b.box_key = fb.box_key
        {stage_join}
        """
    )
    if frame.empty:
        return frame.drop(columns=["pipeline_key", "stage_order"], errors="ignore")
    names = pipeline_names(run)
    frame.insert(2, "pipeline", frame["pipeline_key"].map(names).fillna(frame["pipeline_key"]))
    frame["stage_order"] = pd.to_numeric(frame["stage_order"], errors="coerce")
    frame = frame.sort_values(["pipeline", "stage_order", "box_name"], na_position="last")
    frame = frame.drop(columns=["pipeline_key", "stage_order"]).dropna(axis="columns", how="all")
    for column in ("created", "last_updated", "last_stage_change"):
        if column in frame:
            frame[column] = utc(frame[column])
    return frame.reset_index(drop=True)


def _with_pivoted_fields(run: Runner, f: Filters, catalog: Catalog, base: pd.DataFrame) -> pd.DataFrame:
    """Without a wide view: one column per custom field (named by the field) from box_field_values."""
    if not catalog.has("box_field_values", "box_key", "field_name"):
        return base
    v = lambda column: col(catalog, "box_field_values", "v", column)
    values = run.df(
        f"""
        WITH {boxes_cte(f, catalog)}
        SELECT v.box_key AS box_key, v.field_name AS field_name, {v('value_text')} AS value_text,
               {v('value_number')} AS value_number, {v('value_bool')} AS value_bool,
               {v('value_timestamp')} AS value_timestamp
        FROM box_field_values AS v JOIN fb ON fb.box_key = v.box_key
        """
    )
    if values.empty:
        return base
    shown = values["value_number"].astype("object")
    for column in ("value_bool", "value_timestamp", "value_text"):
        shown = shown.where(shown.notna(), values[column].astype("object"))
    wide = values.assign(value=shown).pivot_table(index="box_key", columns="field_name", values="value", aggfunc="first")
    wide = wide.drop(columns=[c for c in wide.columns if c in base.columns], errors="ignore")
    return base.merge(wide.reset_index(), on="box_key", how="left")


def search_boxes(frame: pd.DataFrame, text: str) -> pd.DataFrame:
    """Rows where any text column contains ``text`` (case-insensitive, plain substring)."""
    needle = text.strip()
    if not needle or frame.empty:
        return frame
    mask = pd.Series(False, index=frame.index)
    for column in frame.columns:
        series = frame[column]
        if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_datetime64_any_dtype(series):
            continue
        mask |= series.astype("string").str.contains(needle, case=False, regex=False, na=False)
    return frame[mask]


def with_display_names(frame: pd.DataFrame, labels: dict[str, str]) -> pd.DataFrame:
    """``frame`` with display names as column headers (for the CSV), made unique, ``box_key`` kept."""
    seen: dict[str, int] = {}
    renamed: list[str] = []
    for column in frame.columns:
        label = labels.get(column, column)
        seen[label] = seen.get(label, 0) + 1
        renamed.append(label if seen[label] == 1 else f"{label} ({seen[label]})")
    return frame.set_axis(renamed, axis="columns")


# --- One box (``?box=<key>``): as it is, and its past from the history tables. ---------------------

BOX_NOW_COLUMNS: Final = ["box_key", "box_name", "pipeline_key", "pipeline_name", "stage_name", "assignees"]
VERSION_COLUMNS: Final = ["since", "until", "deleted", "box_name", "pipeline_key", "pipeline_name", "stage_name", "assignees"]
FIELD_VERSION_COLUMNS: Final = ["field_name", "value_text", "value_number", "value_bool", "value_timestamp", "since", "until"]


def box_now(run: Runner, box_key: str) -> pd.DataFrame:
    """The box in today's copy (one row; none when it is not there), whatever the filters."""
    catalog = require_data(run)
    c = lambda column: col(catalog, "boxes", "b", column)
    frame = run.df(
        f"""
        SELECT b.box_key AS box_key, {c('name')} AS box_name, b.pipeline_key AS pipeline_key,
               {stage_name_expr(catalog)} AS stage_name, {c('assigned_to_names')} AS assignees
        FROM boxes AS b {stage_join(catalog)} WHERE b.box_key = {lit(box_key)}
        """
    )
    if frame.empty:
        return empty(BOX_NOW_COLUMNS)
    return with_pipeline_names(run, frame)[BOX_NOW_COLUMNS]


def box_versions(run: Runner, box_key: str) -> pd.DataFrame | None:
    """The box's name, stage and assignees over time (``boxes_history``), oldest first: one row per
    stretch of versions where none of them changed (a box back after being gone starts a new one),
    from its first version's start to its last one's end (``until`` NULL: still so; ``deleted``: the
    box was found gone at ``until``). None when the copy has no history tables."""
    catalog = require_data(run)
    if not has_history(catalog, "boxes"):
        return None
    c = lambda column: col(catalog, BOXES_HISTORY, "h", column)
    shown = {"box_name": c("name"), "stage_name": f"COALESCE({c('stage_name')}, {c('stage_key')})",
             "assignees": c("assigned_to_names")}
    after = "OVER (ORDER BY h.valid_from)"
    starts = " OR ".join([f"ROW_NUMBER() {after} = 1", f"LAG(h.deleted) {after}",
                          *(f"{expr} IS DISTINCT FROM LAG({expr}) {after}" for expr in shown.values())])
    frame = run.df(
        f"""
        WITH versions AS (
          SELECT h.valid_from AS since, h.valid_to AS until, h.deleted AS deleted, h.pipeline_key AS pipeline_key,
                 {', '.join(f'{expr} AS {name}' for name, expr in shown.items())},
                 CASE WHEN {starts} THEN 1 ELSE 0 END AS starts
          FROM {BOXES_HISTORY} AS h WHERE h.box_key = {lit(box_key)}
        ), stretches AS (
          SELECT v.since AS since, v.until AS until, v.deleted AS deleted, v.pipeline_key AS pipeline_key,
                 {', '.join(f'v.{name} AS {name}' for name in shown)},
                 SUM(v.starts) OVER (ORDER BY v.since ROWS UNBOUNDED PRECEDING) AS stretch
          FROM versions AS v
        )
        SELECT MIN(s.since) AS since, CASE WHEN COUNT(*) > COUNT(s.until) THEN NULL ELSE MAX(s.until) END AS until,
               BOOL_OR(s.deleted) AS deleted, MAX(s.pipeline_key) AS pipeline_key,
               {', '.join(f'MAX(s.{name}) AS {name}' for name in shown)}
        FROM stretches AS s GROUP BY s.stretch ORDER BY MIN(s.since)
        """
    )
    if frame.empty:
        return empty(VERSION_COLUMNS)
    for column in ("since", "until"):
        frame[column] = utc(frame[column])
    frame["deleted"] = frame["deleted"].fillna(False).astype(bool)
    return with_pipeline_names(run, frame)[VERSION_COLUMNS].reset_index(drop=True)


def box_field_versions(run: Runner, box_key: str) -> pd.DataFrame | None:
    """Every stored value of the box's fields (``box_field_values_history``), by field, newest first.
    None when the copy has no history of field values."""
    catalog = require_data(run)
    if not has_history(catalog, "box_field_values"):
        return None
    table = history_of("box_field_values")
    v = lambda column: col(catalog, table, "v", column)
    frame = run.df(
        f"""
        SELECT COALESCE({v('field_name')}, v.field_key) AS field_name, {v('value_text')} AS value_text,
               {v('value_number')} AS value_number, {v('value_bool')} AS value_bool,
               {v('value_timestamp')} AS value_timestamp, v.valid_from AS since, v.valid_to AS until
        FROM {table} AS v WHERE v.box_key = {lit(box_key)}
        ORDER BY 1, v.valid_from DESC
        """
    )
    if frame.empty:
        return empty(FIELD_VERSION_COLUMNS)
    for column in ("value_timestamp", "since", "until"):
        frame[column] = utc(frame[column])
    return frame[FIELD_VERSION_COLUMNS]
