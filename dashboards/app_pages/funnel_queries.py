"""Queries of the Pipeline funnel page (the Overview's stage breakdown uses :func:`funnel` too), and
the pipeline over time: the same funnel in the copy each load produced (history mode).

Numbers are ``box_field_values.value_number`` only: the loader decides what text counts as a
number (``streak_source.numbers.parse_number``), the dashboard never parses strings.
"""

from __future__ import annotations

import pandas as pd

from dashboards.data.connection import Runner, require_data
from dashboards.data.filters import Filters, box_where, boxes_cte
from dashboards.data.history import BOXES_HISTORY, current_at, has_history, history_of, loads_sql
from dashboards.data.lookups import UNKNOWN_STAGE_ORDER, stages, with_pipeline_names
from dashboards.data.sql import col, empty, lit, utc

FieldId = tuple[str, str]
"""(pipeline_key, field_key): field keys repeat across pipelines ("1001" in each)."""

FUNNEL_COLUMNS = [
    "pipeline_key", "pipeline_name", "stage_key", "stage_name", "stage_order", "color",
    "boxes", "open_boxes", "closed", "value",
]
OVER_TIME_COLUMNS = [
    "run_id", "finished_at", "pipeline_key", "pipeline_name", "stage_key", "stage_name", "stage_order", "color",
    "closed", "boxes", "value",
]


def numeric_fields(run: Runner, f: Filters) -> pd.DataFrame:
    """Custom fields of the filtered boxes with at least one number.

    Columns: ``pipeline_key, field_key, field_name, pipeline_name, numbers, not_numbers`` where
    ``numbers`` counts values with ``value_number`` and ``not_numbers`` the other values of the
    field (left out of sums; the page says how many).
    """
    catalog = require_data(run)
    columns = ["pipeline_key", "field_key", "field_name", "pipeline_name", "numbers", "not_numbers"]
    if not catalog.has("box_field_values", "box_key", "field_key", "value_number"):
        return empty(columns)
    name = col(catalog, "box_field_values", "v", "field_name")
    frame = run.df(
        f"""
        WITH {boxes_cte(f, catalog)}
        SELECT v.pipeline_key AS pipeline_key, v.field_key AS field_key, MAX({name}) AS field_name,
               COUNT(v.value_number) AS numbers, COUNT(*) - COUNT(v.value_number) AS not_numbers
        FROM box_field_values AS v JOIN fb ON fb.box_key = v.box_key
        GROUP BY v.pipeline_key, v.field_key
        HAVING COUNT(v.value_number) > 0
        """
    )
    if frame.empty:
        return empty(columns)
    frame = with_pipeline_names(run, frame)
    frame["field_name"] = frame["field_name"].astype("object").where(frame["field_name"].notna(), frame["field_key"])
    for column in ("numbers", "not_numbers"):
        frame[column] = frame[column].astype("int64")
    return frame[columns].sort_values(["field_name", "pipeline_name"]).reset_index(drop=True)


def funnel(run: Runner, f: Filters, value_field: FieldId | None = None) -> pd.DataFrame:
    """Boxes (and optionally the sum of a numeric field) per stage, in stage order.

    Columns: :data:`FUNNEL_COLUMNS`. Every stage of the pipelines in view appears, empty ones with
    0; boxes whose stage is not in ``stages`` (or have none) get their own row, so the counts
    always add up to the filtered boxes. ``open_boxes`` leaves out boxes in closed stages
    (``closed`` marks those stages). ``value`` = SUM(value_number) of ``value_field`` in the field's
    own pipeline (0 for a stage without it), NaN in other pipelines, which have no such field.
    """
    catalog = require_data(run)
    value_sql, value_join = "NULL AS value", ""
    if value_field and catalog.has("box_field_values", "box_key", "field_key", "value_number"):
        pipeline_key, field_key = value_field
        value_sql = "SUM(fv.value) AS value"
        value_join = f"""
        LEFT JOIN (
          SELECT v.box_key AS box_key, SUM(v.value_number) AS value
          FROM box_field_values AS v
          WHERE v.pipeline_key = {lit(pipeline_key)} AND v.field_key = {lit(field_key)}
          GROUP BY v.box_key
        ) AS fv ON fv.box_key = fb.box_key"""
    counts = run.df(
        f"""
        WITH {boxes_cte(f, catalog)}
        SELECT fb.pipeline_key AS pipeline_key, fb.stage_key AS stage_key,
               MAX(fb.box_stage_name) AS box_stage_name, COUNT(*) AS boxes,
               SUM(CASE WHEN fb.is_closed THEN 0 ELSE 1 END) AS open_boxes, {value_sql}
        FROM fb {value_join}
        GROUP BY fb.pipeline_key, fb.stage_key
        """
    )
    all_stages = stages(run, f.pipeline_key)
    if f.pipeline_key is None:  # all pipelines: those with boxes in view, not every empty one
        all_stages = all_stages[all_stages["pipeline_key"].isin(counts["pipeline_key"])]
    if counts.empty and all_stages.empty:
        return empty(FUNNEL_COLUMNS)
    merged = _named_stages(counts, all_stages, f, "outer")
    merged["stage_key"] = merged["stage_key"].astype("object").where(merged["stage_key"].notna(), "")
    for column in ("boxes", "open_boxes"):
        merged[column] = pd.to_numeric(merged[column], errors="coerce").fillna(0).astype("int64")
    merged = _with_value(merged, value_field)
    merged = with_pipeline_names(run, merged)
    return merged[FUNNEL_COLUMNS].sort_values(["pipeline_name", "stage_order", "stage_key"]).reset_index(drop=True)


def _named_stages(counts: pd.DataFrame, all_stages: pd.DataFrame, f: Filters, how: str) -> pd.DataFrame:
    """``counts`` (per ``pipeline_key, stage_key`` with the ``box_stage_name`` its boxes carry) joined
    (``how``) to ``stages`` for each stage's name, order and colour; a stage missing there is named by
    its boxes (or its key) and sorts last. ``closed``: (pipeline, stage) is one of ``f.closed_stage_keys``."""
    keys = ["pipeline_key", "stage_key"]
    counts = counts.astype({"pipeline_key": "object", "stage_key": "object", "box_stage_name": "object"})
    merged = all_stages.astype({"pipeline_key": "object", "stage_key": "object"}).merge(counts, on=keys, how=how)
    unknown = merged["stage_name"].isna()
    fallback = merged["box_stage_name"].where(
        merged["box_stage_name"].notna(),
        merged["stage_key"].map(lambda k: "(no stage)" if pd.isna(k) else f"(stage {k})"),
    )
    merged["stage_name"] = merged["stage_name"].astype("object").where(~unknown, fallback)
    merged["stage_order"] = pd.to_numeric(merged["stage_order"], errors="coerce").where(~unknown, UNKNOWN_STAGE_ORDER)
    merged["stage_order"] = merged["stage_order"].fillna(UNKNOWN_STAGE_ORDER).astype("int64")
    closed = set(f.closed_stage_keys)
    merged["closed"] = [(p, s) in closed for p, s in zip(merged["pipeline_key"], merged["stage_key"])]
    return merged


def _with_value(merged: pd.DataFrame, value_field: FieldId | None) -> pd.DataFrame:
    """The value rule: 0 where the field's pipeline has no such box; NaN where the field does not exist."""
    merged["value"] = pd.to_numeric(merged["value"], errors="coerce")
    if value_field:
        has_field = merged["pipeline_key"] == value_field[0]
        merged["value"] = merged["value"].where(~has_field, merged["value"].fillna(0.0))
    return merged


def pipeline_over_time(run: Runner, f: Filters, value_field: FieldId | None = None) -> pd.DataFrame:
    """Boxes (and the sum of ``value_field``, by :func:`funnel`'s rule) per stage in the copy each
    load produced, from the history tables (``data/history.py``): one row per load and stage holding
    boxes, oldest load first. Columns: :data:`OVER_TIME_COLUMNS`; empty without history tables.
    A box is filtered as it was at that load; a stage is named and ordered as :func:`funnel` does."""
    catalog = require_data(run)
    if not has_history(catalog, "boxes"):
        return empty(OVER_TIME_COLUMNS)
    c = lambda column: col(catalog, BOXES_HISTORY, "h", column)
    fields_history = history_of("box_field_values")
    value_sql, value_cte, value_join = "NULL AS value", "", ""
    if value_field and has_history(catalog, "box_field_values") and catalog.has(fields_history, "field_key", "value_number"):
        pipeline_key, field_key = value_field
        value_sql = "SUM(fv.value) AS value"
        value_cte = f""", fv AS (
          SELECT l.run_id AS run_id, v.box_key AS box_key, SUM(v.value_number) AS value
          FROM loads AS l JOIN {fields_history} AS v ON {current_at('l.finished_at', 'v')}
          WHERE v.pipeline_key = {lit(pipeline_key)} AND v.field_key = {lit(field_key)}
          GROUP BY l.run_id, v.box_key
        )"""
        value_join = "LEFT JOIN fv ON fv.run_id = bx.run_id AND fv.box_key = bx.box_key"
    counts = run.df(
        f"""
        WITH loads AS ({loads_sql()}), bx AS (
          SELECT l.run_id AS run_id, l.finished_at AS finished_at, h.box_key AS box_key,
                 h.pipeline_key AS pipeline_key, {c('stage_key')} AS stage_key, {c('stage_name')} AS stage_name
          FROM loads AS l JOIN {BOXES_HISTORY} AS h ON {current_at('l.finished_at', 'h')}
          WHERE {box_where(f, catalog, 'h', BOXES_HISTORY)}
        ){value_cte}
        SELECT bx.run_id AS run_id, MAX(bx.finished_at) AS finished_at, bx.pipeline_key AS pipeline_key,
               bx.stage_key AS stage_key, MAX(bx.stage_name) AS box_stage_name, COUNT(*) AS boxes, {value_sql}
        FROM bx {value_join}
        GROUP BY bx.run_id, bx.pipeline_key, bx.stage_key
        """
    )
    if counts.empty:
        return empty(OVER_TIME_COLUMNS)
    merged = _named_stages(counts, stages(run, f.pipeline_key), f, "right")
    merged["stage_key"] = merged["stage_key"].astype("object").where(merged["stage_key"].notna(), "")
    merged["boxes"] = merged["boxes"].astype("int64")
    merged["finished_at"] = utc(merged["finished_at"])
    merged = _with_value(merged, value_field)
    merged = with_pipeline_names(run, merged)
    return merged[OVER_TIME_COLUMNS].sort_values(["finished_at", "pipeline_name", "stage_order", "stage_key"]).reset_index(drop=True)
