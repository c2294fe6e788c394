"""Queries of the Velocity page: time in stage, conversion and entries, from ``box_stage_history``.

Counting rules (one place; docs/dashboard.md repeats them):

* A stay counts when its box passes the sidebar filters (the ``fb`` CTE: boxes in today's copy).
  Stays of boxes deleted from Streak have no owner or creation date any more and are left out.
  With a pipeline chosen, only stays in that pipeline count (a box that changed pipeline keeps its
  old stays under the old pipeline).
* Time in stage: stays that have ENDED (``left_at`` set), ``time_in_stage_s``. With ``exact_only``
  only stays whose both ends are true times (``exact``); otherwise also stays whose end is an upper
  bound or whose entry was inferred. Open stays are never measured (the box is still there).
* Conversion A -> B (one pipeline): boxes with a stay in A; of those, the boxes with a stay in B that
  began after their FIRST entry into A. Time = first entry into B after that minus first entry into
  A. Counts use every stay; with ``exact_only`` the time uses only pairs whose two entries are exact.
* Creation -> stage: first entry into the stage minus the box's ``creation_timestamp`` (exact entries
  only with ``exact_only``).
* Weekly entries: stays per week of ``entered_at`` (exact entries only with ``exact_only``).
"""

from __future__ import annotations

from typing import Any, Final

import pandas as pd

from dashboards.data.catalog import Catalog
from dashboards.data.connection import Runner, require_data
from dashboards.data.filters import Filters, boxes_cte
from dashboards.data.lookups import UNKNOWN_STAGE_ORDER
from dashboards.data.sql import col, empty, epoch_s, lit, percentile, utc

HISTORY: Final = "box_stage_history"
HISTORY_COLUMNS: Final = ("box_key", "pipeline_key", "stage_key", "entered_at")
"""Without these the table is unusable; every other column is read NULL-safe (dlt drops NULL columns)."""
STAGE_COLUMNS: Final = ["pipeline_key", "stage_key", "stage_name", "stage_order"]


def has_history(run: Runner) -> bool:
    """True when the destination has a usable ``box_stage_history`` (older ones do not)."""
    return require_data(run).has(HISTORY, *HISTORY_COLUMNS)


def _history_cte(f: Filters, catalog: Catalog) -> str:
    """``fb`` then ``h``: the stays in scope, with the stage's current name and order."""
    c = lambda column: col(catalog, HISTORY, "x", column)
    has_stages = catalog.has("stages", "pipeline_key", "stage_key")
    stage_join = (
        "LEFT JOIN stages AS st ON st.pipeline_key = x.pipeline_key AND st.stage_key = x.stage_key"
        if has_stages else ""
    )
    st_name = col(catalog, "stages", "st", "name") if has_stages else "NULL"
    st_order = col(catalog, "stages", "st", "stage_order") if has_stages else "NULL"
    pipeline = f"AND x.pipeline_key = {lit(f.pipeline_key)}" if f.pipeline_key is not None else ""
    return f"""WITH {boxes_cte(f, catalog)},
h AS (
  SELECT x.box_key AS box_key, x.pipeline_key AS pipeline_key, x.stage_key AS stage_key,
         COALESCE({st_name}, {c('stage_name')}, x.stage_key) AS stage_name,
         COALESCE(CAST({st_order} AS BIGINT), CAST({c('stage_order')} AS BIGINT), {UNKNOWN_STAGE_ORDER}) AS stage_order,
         x.entered_at AS entered_at, {c('left_at')} AS left_at,
         CAST({c('time_in_stage_s')} AS DOUBLE PRECISION) AS time_in_stage_s,
         COALESCE({c('exact')}, FALSE) AS exact,
         COALESCE({c('entered_exact')}, {c('exact')}, FALSE) AS entered_exact,
         fb.creation_timestamp AS creation_timestamp
  FROM {HISTORY} AS x JOIN fb ON fb.box_key = x.box_key {stage_join}
  WHERE x.entered_at IS NOT NULL {pipeline}
)"""


def _measured(exact_only: bool) -> str:
    """Which stays' durations count (an ended stay; both ends true times with ``exact_only``)."""
    return "h.left_at IS NOT NULL AND h.time_in_stage_s IS NOT NULL" + (" AND h.exact" if exact_only else "")


def _scalar(frame: pd.DataFrame, name: str) -> Any:
    value = frame[name].iloc[0] if not frame.empty else None
    return None if value is None or pd.isna(value) else value


def velocity_counts(run: Runner, f: Filters, exact_only: bool) -> dict[str, int]:
    """Headline counts: boxes with history, stays, stays measured (per ``exact_only``), still open."""
    catalog = require_data(run)
    keys = ("boxes", "stays", "measured", "inexact_ended", "open")
    if not catalog.has(HISTORY, *HISTORY_COLUMNS):
        return dict.fromkeys(keys, 0)
    frame = run.df(
        f"""{_history_cte(f, catalog)}
        SELECT COUNT(DISTINCT h.box_key) AS boxes, COUNT(*) AS stays,
               COUNT(CASE WHEN {_measured(exact_only)} THEN 1 END) AS measured,
               COUNT(CASE WHEN {_measured(False)} AND NOT h.exact THEN 1 END) AS inexact_ended,
               COUNT(CASE WHEN h.left_at IS NULL THEN 1 END) AS open
        FROM h"""
    )
    return {key: int(_scalar(frame, key) or 0) for key in keys}


def time_in_stage(run: Runner, f: Filters, exact_only: bool) -> pd.DataFrame:
    """Per stage with any stay: stays measured, median and p90 seconds, stays still open."""
    catalog = require_data(run)
    columns = [*STAGE_COLUMNS, "measured", "median_s", "p90_s", "open"]
    if not catalog.has(HISTORY, *HISTORY_COLUMNS):
        return empty(columns)
    measured = f"CASE WHEN {_measured(exact_only)} THEN h.time_in_stage_s END"
    frame = run.df(
        f"""{_history_cte(f, catalog)}
        SELECT h.pipeline_key AS pipeline_key, h.stage_key AS stage_key, MAX(h.stage_name) AS stage_name,
               MIN(h.stage_order) AS stage_order, COUNT({measured}) AS measured,
               {percentile(measured, 0.5)} AS median_s, {percentile(measured, 0.9)} AS p90_s,
               COUNT(CASE WHEN h.left_at IS NULL THEN 1 END) AS open
        FROM h GROUP BY h.pipeline_key, h.stage_key"""
    )
    if frame.empty:
        return empty(columns)
    frame = frame.astype({"pipeline_key": "object", "stage_key": "object", "stage_name": "object"})
    for name in ("measured", "open", "stage_order"):
        frame[name] = frame[name].astype("int64")
    for name in ("median_s", "p90_s"):
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
    return frame[columns].sort_values(["pipeline_key", "stage_order", "stage_key"]).reset_index(drop=True)


def conversion(
    run: Runner, f: Filters, pipeline_key: str, stage_a: str, stage_b: str, exact_only: bool
) -> dict[str, Any]:
    """Of the boxes that entered A, how many later entered B, and the median/p90 seconds it took."""
    catalog = require_data(run)
    result: dict[str, Any] = {"entered": 0, "reached": 0, "timed": 0, "median_s": None, "p90_s": None}
    if not catalog.has(HISTORY, *HISTORY_COLUMNS):
        return result
    where = f"h.pipeline_key = {lit(pipeline_key)} AND h.stage_key = "
    exact = "a.exact_a AND b.exact_b" if exact_only else "TRUE"
    took = f"CASE WHEN {exact} THEN {epoch_s('b.entered_b')} - {epoch_s('a.entered_a')} END"
    frame = run.df(
        f"""{_history_cte(f, catalog)},
        firsts AS (
          SELECT h.box_key AS box_key, h.entered_at AS entered_a, h.entered_exact AS exact_a,
                 ROW_NUMBER() OVER (PARTITION BY h.box_key ORDER BY h.entered_at) AS n
          FROM h WHERE {where}{lit(stage_a)}
        ),
        a AS (SELECT box_key, entered_a, exact_a FROM firsts WHERE n = 1),
        later AS (
          SELECT a.box_key AS box_key, h.entered_at AS entered_b, h.entered_exact AS exact_b,
                 ROW_NUMBER() OVER (PARTITION BY a.box_key ORDER BY h.entered_at) AS n
          FROM a JOIN h ON h.box_key = a.box_key
          WHERE {where}{lit(stage_b)} AND h.entered_at > a.entered_a
        ),
        b AS (SELECT box_key, entered_b, exact_b FROM later WHERE n = 1)
        SELECT COUNT(*) AS entered, COUNT(b.box_key) AS reached, COUNT({took}) AS timed,
               {percentile(took, 0.5)} AS median_s, {percentile(took, 0.9)} AS p90_s
        FROM a LEFT JOIN b ON b.box_key = a.box_key"""
    )
    for key in result:
        value = _scalar(frame, key)
        result[key] = (int(value or 0) if key in ("entered", "reached", "timed") else
                       (None if value is None else float(value)))
    return result


def creation_to_stage(run: Runner, f: Filters, pipeline_key: str, stage_key: str, exact_only: bool) -> dict[str, Any]:
    """Boxes that entered the stage, and median/p90 seconds from creation to their first entry."""
    catalog = require_data(run)
    result: dict[str, Any] = {"reached": 0, "timed": 0, "median_s": None, "p90_s": None}
    if not catalog.has(HISTORY, *HISTORY_COLUMNS):
        return result
    exact = "r.entered_exact" if exact_only else "TRUE"
    took = (f"CASE WHEN {exact} AND r.creation_timestamp IS NOT NULL "
            f"THEN {epoch_s('r.entered_at')} - {epoch_s('r.creation_timestamp')} END")
    frame = run.df(
        f"""{_history_cte(f, catalog)},
        firsts AS (
          SELECT h.box_key AS box_key, h.entered_at AS entered_at, h.entered_exact AS entered_exact,
                 h.creation_timestamp AS creation_timestamp,
                 ROW_NUMBER() OVER (PARTITION BY h.box_key ORDER BY h.entered_at) AS n
          FROM h WHERE h.pipeline_key = {lit(pipeline_key)} AND h.stage_key = {lit(stage_key)}
        ),
        r AS (SELECT * FROM firsts WHERE n = 1)
        SELECT COUNT(*) AS reached, COUNT({took}) AS timed,
               {percentile(took, 0.5)} AS median_s, {percentile(took, 0.9)} AS p90_s
        FROM r"""
    )
    for key in result:
        value = _scalar(frame, key)
        result[key] = int(value or 0) if key in ("reached", "timed") else (None if value is None else float(value))
    return result


def weekly_entries(run: Runner, f: Filters, exact_only: bool) -> pd.DataFrame:
    """Entries into each stage per week (Monday) of ``entered_at``."""
    catalog = require_data(run)
    columns = ["week", *STAGE_COLUMNS, "entries"]
    if not catalog.has(HISTORY, *HISTORY_COLUMNS):
        return empty(columns)
    week = "DATE_TRUNC('week', h.entered_at)"
    frame = run.df(
        f"""{_history_cte(f, catalog)}
        SELECT {week} AS week, h.pipeline_key AS pipeline_key, h.stage_key AS stage_key,
               MAX(h.stage_name) AS stage_name, MIN(h.stage_order) AS stage_order, COUNT(*) AS entries
        FROM h {'WHERE h.entered_exact' if exact_only else ''}
        GROUP BY {week}, h.pipeline_key, h.stage_key"""
    )
    if frame.empty:
        return empty(columns)
    frame["week"] = utc(frame["week"])
    frame = frame.astype({"pipeline_key": "object", "stage_key": "object", "stage_name": "object"})
    frame["entries"] = frame["entries"].astype("int64")
    frame["stage_order"] = frame["stage_order"].astype("int64")
    return frame[columns].sort_values(["week", "pipeline_key", "stage_order"]).reset_index(drop=True)
