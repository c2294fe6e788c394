"""Queries of the Overview page."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from dashboards.data.connection import Runner, require_data
from dashboards.data.filters import Filters, boxes_cte
from dashboards.data.lookups import with_pipeline_names
from dashboards.data.sql import col, empty, lit, utc


def overview_counts(run: Runner, f: Filters, now: datetime) -> dict[str, int]:
    """Headline numbers for the filtered boxes: ``boxes``, ``open_tasks`` (NOT_DONE) and
    ``overdue_tasks`` (NOT_DONE with ``due_date`` before ``now``). The activity cards count with
    ``activity_queries.activity_totals``, the Activity page's own rule."""
    catalog = require_data(run)
    parts = ["(SELECT COUNT(*) FROM fb) AS boxes"]

    def child_count(table: str, label: str, condition: str = "1 = 1") -> None:
        if catalog.has(table, "box_key"):
            parts.append(
                f"(SELECT COUNT(*) FROM {table} AS x JOIN fb ON fb.box_key = x.box_key WHERE {condition}) AS {label}"
            )
        else:
            parts.append(f"0 AS {label}")

    status = col(catalog, "box_tasks", "x", "status")
    due = col(catalog, "box_tasks", "x", "due_date")
    child_count("box_tasks", "open_tasks", f"{status} = 'NOT_DONE'")
    child_count("box_tasks", "overdue_tasks", f"{status} = 'NOT_DONE' AND {due} < {lit(now)}")
    frame = run.df(f"WITH {boxes_cte(f, catalog)} SELECT {', '.join(parts)}")
    return {column: int(frame[column].iloc[0]) for column in frame.columns}


def boxes_created(run: Runner, f: Filters) -> pd.DataFrame:
    """New boxes per month and pipeline: ``month, pipeline_key, pipeline_name, boxes``."""
    catalog = require_data(run)
    frame = run.df(
        f"""
        WITH {boxes_cte(f, catalog)}
        SELECT DATE_TRUNC('month', fb.creation_timestamp) AS month, fb.pipeline_key AS pipeline_key,
               COUNT(*) AS boxes
        FROM fb WHERE fb.creation_timestamp IS NOT NULL
        GROUP BY DATE_TRUNC('month', fb.creation_timestamp), fb.pipeline_key
        """
    )
    if frame.empty:
        return empty(["month", "pipeline_key", "pipeline_name", "boxes"])
    frame["month"] = utc(frame["month"])
    frame = with_pipeline_names(run, frame)
    frame["boxes"] = frame["boxes"].astype("int64")
    return frame.sort_values(["month", "pipeline_name"]).reset_index(drop=True)
