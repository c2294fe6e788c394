"""Queries of the Outcomes page: the warehouse's outcome relations (docs/metrics.md) for the boxes the
sidebar keeps, with the won and lost stages in use.

Where the numbers come from (the rules live once, in ``streak_warehouse/outcome_*.py``):

* stages in use = those the load used (the configuration, else the account's own): the copy's own
  relations (``crm.box_outcomes``, ``crm.stage_win_probability``, ``crm.forecast_monthly``, ...);
* the user picked other won or lost stages (kept in the URL): the same steps from the same base
  tables (``outcome_views.build_outcomes`` into a ``SessionTarget``), as CTEs of each query of the
  page, written nowhere. :func:`relations` decides (``outcome_views.same_as_loaded``).

The sidebar's filters pick boxes as on every page (the ``fb`` CTE); each table is its view's own
SELECT (``outcome_sql.VIEW_SELECTS``) over those boxes' rows of ``box_outcomes``, so with no filter
it is the view's rows. What the account's history says about a stage (its win probability, its times
to close, its p90 of time in stage) stays the whole account's: a filter narrows which boxes count,
not the yardstick. "Now" is the load's end (the views' ``as_of``), not the clock.

SQL the warehouse writes runs as written (``Runner.df_as_written``): DuckDB and Postgres only, the
two destinations that have the outcome relations.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Final

import pandas as pd

from dashboards.app_pages import velocity_queries
from dashboards.data.catalog import Catalog
from dashboards.data.connection import Runner, require_data
from dashboards.data.filters import UNASSIGNED, Filters, boxes_cte
from dashboards.data.sql import empty, utc
from streak_warehouse import outcome_sql as q
from streak_warehouse.forecast import month_periods
from streak_warehouse.outcome_config import OutcomeSettings
from streak_warehouse.outcome_views import (
    SESSION_NAMES, SessionTarget, build_outcomes, forecast_periods, forecast_row, same_as_loaded,
)
from streak_warehouse.sql import quote_identifier

DATASET: Final = "crm"
FILTERED: Final = "filtered_outcomes"
NEEDED: Final = (q.BOX_OUTCOMES, q.WIN_RATE_MONTHLY, q.STAGE_WIN_PROBABILITY, q.WEIGHTED_PIPELINE,
                 q.OWNER_SCORECARD, q.FORECAST_MONTHLY, q.OUTCOME_STAGES, q.OUTCOME_VALUE_FIELDS)
FORECAST_COLUMNS: Final = ["pipeline_key", "pipeline_name", "month", "open_boxes", "boxes_without_probability",
                           "expected_won_boxes", "won_boxes_low", "won_boxes_high", "expected_won_value",
                           "won_value_low", "won_value_high"]
SLIPPED_COLUMNS: Final = ["box_key", "box_name", "pipeline_key", "pipeline_name", "stage_key", "stage_name",
                          "days_in_stage", "p90_days", "value", "owner_name"]


@dataclass(frozen=True)
class Relations:
    """Where a query reads the outcome relations: the copy's (no CTEs), or CTEs computed here."""

    as_of: datetime
    ctes: tuple[str, ...] = ()
    names: tuple[tuple[str, str], ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def computed(self) -> bool:
        """True: computed here from the base tables with the page's stages (not the load's)."""
        return bool(self.ctes)


def missing(run: Runner) -> list[str]:
    """The outcome relations the copy lacks (a copy made before them, or a destination without them)."""
    catalog = require_data(run)
    return [name for name in NEEDED if not catalog.has(name)]


def relations(run: Runner, settings: OutcomeSettings | None) -> Relations:
    """The copy's relations when ``settings`` are the load's (or None: unknown), else the same
    computed here."""
    catalog = require_data(run)
    rows = _rows(run)
    src = _sources(catalog)
    (as_of,) = rows("SELECT MAX(r.finished_at) FROM load_history AS r WHERE r.outcome = 'ok'")[0]
    at = _aware(as_of) if as_of is not None else datetime.fromtimestamp(0, UTC)
    if settings is None or same_as_loaded(rows, src, settings):
        return Relations(at)
    target = SessionTarget(rows)
    report = build_outcomes(target, replace(src, names=SESSION_NAMES), settings, at)
    return Relations(at, tuple(target.ctes), tuple(SESSION_NAMES.items()), tuple(report.warnings))


def value_fields(run: Runner, rel: Relations) -> pd.DataFrame:
    """Each pipeline's value field and how it was chosen, and ``min_sample`` (the copy's or computed)."""
    return _frame(run, rel, Filters(), lambda src: f"""SELECT f.pipeline_name, f.field_name, f.chosen_by,
        (SELECT MAX(p.min_sample) FROM {src.name(q.STAGE_WIN_PROBABILITY)} AS p) AS min_sample
        FROM {src.name(q.OUTCOME_VALUE_FIELDS)} AS f ORDER BY 1""")


def win_rates(run: Runner, f: Filters, rel: Relations) -> pd.DataFrame:
    """``win_rate_monthly`` of the filtered boxes: per pipeline and month of close."""
    frame = _frame(run, rel, f, q.win_rate_monthly_select)
    return frame.sort_values(["pipeline_name", "month"]).reset_index(drop=True) if not frame.empty else frame


def cycle_times(run: Runner, f: Filters, rel: Relations) -> pd.DataFrame:
    """Per pipeline and outcome (won, lost): closed boxes and the median and p90 of ``cycle_days``."""
    return _frame(run, rel, f, lambda src: f"""SELECT o.pipeline_key, MAX(o.pipeline_name) AS pipeline_name, o.outcome,
        COUNT(*) AS boxes, percentile_cont(0.5) WITHIN GROUP (ORDER BY o.cycle_days) AS median_days,
        percentile_cont(0.9) WITHIN GROUP (ORDER BY o.cycle_days) AS p90_days
        FROM {src.name(q.BOX_OUTCOMES)} AS o WHERE o.outcome IN ('won', 'lost')
        GROUP BY o.pipeline_key, o.outcome ORDER BY 2, 3 DESC""")


def weighted(run: Runner, f: Filters, rel: Relations) -> pd.DataFrame:
    """``weighted_pipeline`` of the filtered boxes (per open stage), with the stage's sample
    (``closed_boxes``, ``won_boxes`` of ``stage_win_probability``: the whole account's)."""
    def select(src: q.Sources) -> str:
        return (f"SELECT w.*, p.closed_boxes, p.won_boxes FROM ({q.weighted_pipeline_select(src)}) AS w "
                f"LEFT JOIN {src.name(q.STAGE_WIN_PROBABILITY)} AS p "
                "ON p.pipeline_key = w.pipeline_key AND p.stage_key = w.stage_key")

    frame = _in_pipeline(_frame(run, rel, f, select), f)
    return frame.sort_values(["pipeline_name", "stage_order", "stage_name"]).reset_index(drop=True) if not frame.empty else frame


def scorecard(run: Runner, f: Filters, rel: Relations) -> pd.DataFrame:
    """``owner_scorecard`` of the filtered boxes (overdue tasks: those on them); with owners chosen,
    their rows only."""
    frame = _frame(run, rel, f, q.owner_scorecard_select, tasks_of_filtered=True)
    if f.owners and not frame.empty:
        chosen = {o.lower() for o in f.owners if o != UNASSIGNED}
        frame = frame[frame["owner_email"].map(
            lambda email: UNASSIGNED in f.owners if _null(email) else str(email).lower() in chosen)]
    return frame.sort_values(["won_value", "won", "owner_name"], ascending=[False, False, True],
                             na_position="last").reset_index(drop=True) if not frame.empty else frame


def forecast(run: Runner, f: Filters, rel: Relations) -> pd.DataFrame:
    """The next three months' expected won boxes and value with their range: ``forecast_monthly``'s
    rows, or with an owner or date filter the same forecast (``forecast_periods``) of those boxes."""
    if f.owners or f.created_from or f.created_to:
        catalog = require_data(run)
        src = _sources(catalog, rel, filtered=True)
        rows = _rows(run, lambda sql: _with(rel, f, catalog, sql))
        pipelines = dict(rows(f"SELECT p.pipeline_key, p.name FROM {src.rel('pipelines')} AS p"))
        frame = pd.DataFrame([forecast_row(row, pipelines, rel.as_of)
                              for row in forecast_periods(rows, src, rel.as_of, month_periods(rel.as_of))])
    else:
        frame = _frame(run, rel, f, lambda src: f"SELECT * FROM {src.name(q.FORECAST_MONTHLY)}")
    if frame.empty:
        return empty(FORECAST_COLUMNS)
    frame = _in_pipeline(frame, f)
    frame["month"] = pd.to_datetime(frame["month"]).dt.date
    return frame[FORECAST_COLUMNS].sort_values(["pipeline_name", "month"]).reset_index(drop=True)


def slipped(run: Runner, f: Filters, rel: Relations) -> pd.DataFrame:
    """Open boxes in their stage longer than that stage's p90 of time in stage (ended stays with exact
    times in ``box_stage_history``, the whole account's: ``velocity_queries.time_in_stage``), longest
    over first; days counted to the load's end."""
    p90 = velocity_queries.time_in_stage(run, Filters(), True)
    boxes = _frame(run, rel, f, lambda src: f"""SELECT o.box_key, o.box_name, o.pipeline_key, o.pipeline_name,
        o.stage_key, o.stage_name, o.stage_entered_at, o.value, o.owner_name
        FROM {src.name(q.BOX_OUTCOMES)} AS o WHERE NOT o.closed""")
    if boxes.empty or p90.empty:
        return empty(SLIPPED_COLUMNS)
    limits = p90.dropna(subset=["p90_s"])[["pipeline_key", "stage_key", "p90_s"]]
    frame = boxes.merge(limits, on=["pipeline_key", "stage_key"], how="inner")
    frame["days_in_stage"] = (pd.Timestamp(rel.as_of) - utc(frame["stage_entered_at"])).dt.total_seconds() / 86400
    frame["p90_days"] = frame["p90_s"] / 86400
    frame = frame[frame["days_in_stage"] > frame["p90_days"]]
    if frame.empty:
        return empty(SLIPPED_COLUMNS)
    return frame[SLIPPED_COLUMNS].sort_values(["days_in_stage", "box_key"], ascending=[False, True]).reset_index(drop=True)


# --- building a query ---------------------------------------------------------------------------------


def _sources(catalog: Catalog, rel: Relations | None = None, filtered: bool = False,
             tasks_of_filtered: bool = False) -> q.Sources:
    """The copy as ``outcome_sql`` reads it; the outcome relations as ``rel`` has them, and with
    ``filtered`` ``box_outcomes`` = the filtered boxes' rows (``tasks_of_filtered``: their tasks)."""
    names = dict(rel.names) if rel is not None else {}
    if filtered:
        names[q.BOX_OUTCOMES] = quote_identifier(FILTERED)
        if tasks_of_filtered and catalog.has("box_tasks", "task_key", "box_key", "status", "due_date"):
            names["box_tasks"] = ("(SELECT t.task_key, t.status, t.due_date FROM box_tasks AS t "
                                  "WHERE t.box_key IN (SELECT fb.box_key FROM fb))")
    return q.Sources(DATASET, {table: frozenset(columns) for table, columns in catalog.columns.items()}, names)


def _with(rel: Relations, f: Filters, catalog: Catalog, select: str, kept: str | None = None) -> str:
    """``select`` after the CTEs it reads: ``rel``'s relations, the filtered boxes (``fb``) and their
    rows of ``box_outcomes`` (:data:`FILTERED`), or those rows from the table ``kept`` (:func:`_kept`)."""
    rows = f"SELECT * FROM {kept}" if kept else _filtered_select(rel)
    ctes = [*rel.ctes, boxes_cte(f, catalog), f"{quote_identifier(FILTERED)} AS ({rows})"]
    if select.lstrip().upper().startswith("WITH"):  # a view's SELECT with CTEs of its own (owner_scorecard)
        select = f"SELECT * FROM (\n{select}\n) AS v"
    return "WITH " + ",\n".join(ctes) + "\n" + select


def _filtered_select(rel: Relations) -> str:
    """The filtered boxes' rows of ``box_outcomes`` (reads the CTEs of :func:`_with` before it)."""
    outcomes = dict(rel.names).get(q.BOX_OUTCOMES) or f"{quote_identifier(DATASET)}.{quote_identifier(q.BOX_OUTCOMES)}"
    return f"SELECT o.* FROM {outcomes} AS o WHERE o.box_key IN (SELECT fb.box_key FROM fb)"


def _kept(run: Runner, rel: Relations, f: Filters, catalog: Catalog) -> str | None:
    """The filtered boxes' rows of ``box_outcomes`` kept by the runner for the page's other queries:
    the view reads every box's history (the value and owner when it closed), so the page computes it
    once, not once per table (None: the runner keeps nothing; each query computes it)."""
    return run.kept("WITH " + ",\n".join([*rel.ctes, boxes_cte(f, catalog)]) + "\n" + _filtered_select(rel))


def _frame(run: Runner, rel: Relations, f: Filters, select: Callable[[q.Sources], str],
           tasks_of_filtered: bool = False) -> pd.DataFrame:
    catalog = require_data(run)
    sql = select(_sources(catalog, rel, True, tasks_of_filtered))
    kept = _kept(run, rel, f, catalog) if quote_identifier(FILTERED) in sql else None
    return run.df_as_written(_with(rel, f, catalog, sql, kept))


def _rows(run: Runner, wrap: Callable[[str], str] = lambda sql: sql) -> Callable[[str], Sequence[Sequence[Any]]]:
    """``execute`` for the warehouse's steps: rows as tuples, NULL as None (not NaN or NaT)."""
    def rows(sql: str) -> list[tuple[Any, ...]]:
        frame = run.df_as_written(wrap(sql))
        return [tuple(None if _null(v) else v for v in row) for row in frame.astype(object).itertuples(index=False, name=None)]

    return rows


def _null(value: Any) -> bool:
    return value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value))


def _aware(value: Any) -> datetime:
    moment = pd.Timestamp(value).to_pydatetime()
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _in_pipeline(frame: pd.DataFrame, f: Filters) -> pd.DataFrame:
    if f.pipeline_key is None or frame.empty:
        return frame
    return frame[frame["pipeline_key"] == f.pipeline_key].reset_index(drop=True)
