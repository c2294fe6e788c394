"""Queries of the Ageing page: days since each box last changed stage."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from dashboards.data.connection import Runner, require_data
from dashboards.data.filters import Filters, boxes_cte, owner_label
from dashboards.data.lookups import UNKNOWN_STAGE_ORDER, stages, with_pipeline_names
from dashboards.data.sql import empty, utc

AGEING_COLUMNS = [
    "box_key", "box_name", "pipeline_name", "stage_name", "stage_order", "color",
    "owner_name", "since", "days_in_stage", "closed",
]


def ageing(run: Runner, f: Filters, now: datetime) -> pd.DataFrame:
    """One row per filtered box with the days since it last changed stage, longest first.

    ``since`` is ``last_stage_change_timestamp``, or the creation time for a box that never moved;
    ``closed`` marks boxes in a closed stage (the page leaves them out). Days are computed here,
    not in SQL, because date arithmetic is the least portable part of SQL.
    """
    catalog = require_data(run)
    frame = run.df(
        f"""
        WITH {boxes_cte(f, catalog)}
        SELECT fb.box_key AS box_key, fb.box_name AS box_name, fb.pipeline_key AS pipeline_key,
               fb.stage_key AS stage_key, fb.box_stage_name AS box_stage_name,
               {owner_label('fb.owner_name')} AS owner_name, fb.is_closed AS closed,
               COALESCE(fb.last_stage_change_timestamp, fb.creation_timestamp) AS since
        FROM fb
        """
    )
    if frame.empty:
        return empty(AGEING_COLUMNS)
    frame = frame.astype({"pipeline_key": "object", "stage_key": "object"})
    stage_info = stages(run, f.pipeline_key).astype({"pipeline_key": "object", "stage_key": "object"})
    frame = frame.merge(stage_info, on=["pipeline_key", "stage_key"], how="left")
    unknown = frame["stage_name"].isna()
    fallback = frame["box_stage_name"].astype("object").where(frame["box_stage_name"].notna(), "(no stage)")
    frame["stage_name"] = frame["stage_name"].astype("object").where(~unknown, fallback)
    frame["stage_order"] = pd.to_numeric(frame["stage_order"], errors="coerce").fillna(UNKNOWN_STAGE_ORDER).astype("int64")
    frame = with_pipeline_names(run, frame)
    frame["closed"] = frame["closed"].fillna(False).astype(bool)
    frame["since"] = utc(frame["since"])
    now_ts = pd.Timestamp(now)
    now_ts = now_ts.tz_convert("UTC") if now_ts.tzinfo else now_ts.tz_localize("UTC")
    frame["days_in_stage"] = (now_ts - frame["since"]).dt.total_seconds() / 86400.0
    return frame[AGEING_COLUMNS].sort_values("days_in_stage", ascending=False, na_position="last").reset_index(drop=True)


def ageing_by_stage(boxes: pd.DataFrame) -> pd.DataFrame:
    """Per stage: boxes, median/p90/max days since the last stage change, in stage order."""
    columns = ["pipeline_name", "stage_name", "stage_order", "color", "boxes", "median_days", "p90_days", "max_days"]
    if boxes.empty:
        return empty(columns)
    grouped = boxes.groupby(["pipeline_name", "stage_name", "stage_order"], dropna=False, sort=False)
    result = grouped.agg(
        color=("color", "first"),
        boxes=("box_key", "count"),
        median_days=("days_in_stage", "median"),
        p90_days=("days_in_stage", lambda s: s.quantile(0.9)),
        max_days=("days_in_stage", "max"),
    ).reset_index()
    return result[columns].sort_values(["pipeline_name", "stage_order"]).reset_index(drop=True)
