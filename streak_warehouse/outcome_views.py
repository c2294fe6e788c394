"""The outcome views and tables of each fresh copy (docs/metrics.md): won and lost, win rates, stage
probabilities, the weighted pipeline, the forecast and the owner scorecard.

Created by the main job in the fresh copy after this run's history versions were written
(``pipelines/job.py``, inside the publishing transaction), so they are published with the copy they
describe and read its ``box_stage_history`` and ``<table>_history``. In order:

1. ``outcome_stages`` and ``outcome_value_fields`` (tables): the configuration resolved against this
   account (``outcome_rules.py``): every stage's outcome, every pipeline's value field;
2. the views ``box_outcomes`` and ``win_rate_monthly`` (``outcome_sql.py``);
3. ``stage_win_probability`` (a table: the sample counts in SQL, the choice of number in Python,
   :func:`~streak_warehouse.outcome_rules.probability_choice`);
4. the views ``weighted_pipeline`` and ``owner_scorecard``;
5. ``forecast_monthly`` (a table computed here, ``forecast.py``) from the run's end as "now".

The steps (:func:`build_outcomes`) put each relation into a :class:`Target`: the copy itself
(:class:`CopyTarget`, the load), or CTEs of the queries that read them (:class:`SessionTarget`: the
dashboard's own choice of won and lost stages, computed from the same base tables by the same steps,
written nowhere). :func:`forecast_periods` is the forecast over any periods (the backtest's 30 days).

The tables are part of the copy (replaced each run), not kept tables. DuckDB and Postgres only (the
SQL is tested there); another SQL destination gets none, and the run says so.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from streak_warehouse import outcome_sql as q
from streak_warehouse.forecast import (
    ForecastRow, OpenBox, Period, forecast, month_periods, stage_curves, stays_until_close,
)
from streak_warehouse.outcome_config import DEFAULT_MIN_SAMPLE, OutcomeSettings
from streak_warehouse.outcome_rules import (
    LOST, WON, FieldRef, StageRef, ValueFieldChoice, choose_value_fields, probability_choice, resolve_stages,
    unmatched_entries,
)
from streak_warehouse.persistent import sql_literal
from streak_warehouse.sql import ANSI_TYPES, qualified, quote_identifier, string_literal

logger = logging.getLogger(__name__)

Execute = Callable[[str], Sequence[Sequence[Any]]]
Columns = tuple[tuple[str, str], ...]

SUPPORTED_DRIVERS: Final = frozenset({"duckdb", "psycopg2"})
VIEWS: Final = (q.OWNER_SCORECARD, q.WEIGHTED_PIPELINE, q.WIN_RATE_MONTHLY, q.BOX_OUTCOMES)
"""Dropped in this order (a view before what it reads) where a copy is loaded in place."""
TABLES: Final = (q.FORECAST_MONTHLY, q.STAGE_WIN_PROBABILITY, q.OUTCOME_VALUE_FIELDS, q.OUTCOME_STAGES)

OUTCOME_STAGES_COLUMNS: Final[Columns] = (
    ("pipeline_key", "text"), ("pipeline_name", "text"), ("stage_key", "text"), ("stage_name", "text"),
    ("stage_order", "bigint"), ("current_stage", "bool"), ("outcome", "text"), ("decided_by", "text"),
    ("configured_probability", "double"))
VALUE_FIELDS_COLUMNS: Final[Columns] = (
    ("pipeline_key", "text"), ("pipeline_name", "text"), ("field_key", "text"), ("field_name", "text"),
    ("chosen_by", "text"))
PROBABILITY_COLUMNS: Final[Columns] = (
    ("pipeline_key", "text"), ("pipeline_name", "text"), ("stage_key", "text"), ("stage_name", "text"),
    ("stage_order", "bigint"), ("stage_outcome", "text"), ("closed_boxes", "bigint"), ("won_boxes", "bigint"),
    ("observed_win_rate", "double"), ("probability", "double"), ("probability_source", "text"),
    ("min_sample", "bigint"))
FORECAST_COLUMNS: Final[Columns] = (
    ("pipeline_key", "text"), ("pipeline_name", "text"), ("month", "date"), ("period_start", "timestamp"),
    ("period_end", "timestamp"), ("as_of", "timestamp"), ("open_boxes", "bigint"),
    ("boxes_without_probability", "bigint"), ("expected_won_boxes", "double"), ("won_boxes_low", "double"),
    ("won_boxes_high", "double"), ("expected_won_value", "double"), ("won_value_low", "double"),
    ("won_value_high", "double"))


@dataclass
class OutcomesReport:
    """What the step created and what the run should say about the configuration."""

    created: list[str] = field(default_factory=list)
    value_fields: list[str] = field(default_factory=list)
    """``pipeline: field (how chosen)`` per pipeline."""
    warnings: list[str] = field(default_factory=list)
    skipped: str | None = None

    def line(self) -> str:
        if self.skipped:
            return f"outcomes: none ({self.skipped})"
        return (f"outcomes: {len(self.created)} views and tables; value field: "
                + (", ".join(self.value_fields) or "no pipeline"))


def create_outcome_views(execute: Execute, dataset: str, settings: OutcomeSettings, at: datetime,
                         driver: str) -> OutcomesReport:
    """Create every outcome table and view in ``dataset`` (the fresh copy), ``at`` = the run's end."""
    report = OutcomesReport()
    if driver not in SUPPORTED_DRIVERS:
        report.skipped = f"outcome views are made on DuckDB and Postgres, not on {driver}"
        return report
    src = copy_sources(execute, dataset)
    for view in VIEWS:
        execute(f"DROP VIEW IF EXISTS {qualified(dataset, view)}")
    for table in TABLES:
        execute(f"DROP TABLE IF EXISTS {qualified(dataset, table)}")
    missing = src.missing_required()
    if missing:
        report.skipped = f"the copy has no {', '.join(missing)}"
        return report
    return build_outcomes(CopyTarget(execute, dataset), src, settings, at)


def build_outcomes(target: Target, src: q.Sources, settings: OutcomeSettings, at: datetime) -> OutcomesReport:
    """Every outcome relation, in order, into ``target``, read from the copy ``src`` (which names the
    outcome relations as ``target`` defines them), ``at`` = "now": the one path from settings and base
    tables to the numbers, for a load and for the dashboard's own choice of stages alike."""
    report = OutcomesReport()
    stages = _stage_refs(target.rows, src)
    outcomes = resolve_stages(settings.stages, (ref for ref, _, _ in stages))
    report.warnings += _unmatched(settings, [ref for ref, _, _ in stages])
    target.table(q.OUTCOME_STAGES, OUTCOME_STAGES_COLUMNS, [
        dict(pipeline_key=o.stage.pipeline_key, pipeline_name=o.stage.pipeline_name, stage_key=o.stage.stage_key,
             stage_name=o.stage.stage_name, stage_order=order, current_stage=current, outcome=o.outcome,
             decided_by=o.decided_by, configured_probability=o.configured_probability)
        for o, (_, order, current) in zip(outcomes, stages)])
    pipelines = _pipeline_names(target.rows, src)
    choices, warnings = choose_value_fields(pipelines, _fields(target.rows, src), settings.value_field)
    report.warnings += warnings
    report.value_fields = [f"{c.pipeline_name or c.pipeline_key}: {c.field.name if c.field else 'none'} ({c.chosen_by})"
                           for c in choices]
    target.table(q.OUTCOME_VALUE_FIELDS, VALUE_FIELDS_COLUMNS, _value_field_rows(choices))
    target.view(q.BOX_OUTCOMES, q.box_outcomes_select(src))
    target.view(q.WIN_RATE_MONTHLY, q.win_rate_monthly_select(src))
    probabilities = _probability_rows(target.rows, src, outcomes, [order for _, order, _ in stages], settings.min_sample)
    target.table(q.STAGE_WIN_PROBABILITY, PROBABILITY_COLUMNS, probabilities)
    target.view(q.WEIGHTED_PIPELINE, q.weighted_pipeline_select(src))
    target.view(q.OWNER_SCORECARD, q.owner_scorecard_select(src))
    target.table(q.FORECAST_MONTHLY, FORECAST_COLUMNS, [
        forecast_row(row, pipelines, at) for row in forecast_periods(target.rows, src, at, month_periods(at))])
    report.created = [q.OUTCOME_STAGES, q.OUTCOME_VALUE_FIELDS, q.BOX_OUTCOMES, q.WIN_RATE_MONTHLY,
                      q.STAGE_WIN_PROBABILITY, q.WEIGHTED_PIPELINE, q.OWNER_SCORECARD, q.FORECAST_MONTHLY]
    return report


def same_as_loaded(rows: Execute, src: q.Sources, settings: OutcomeSettings) -> bool:
    """Whether ``settings`` come to what the copy's outcome relations were made with (every stage's
    outcome and configured probability, every pipeline's value field, ``min_sample``): then they are
    the numbers of these settings, and :func:`build_outcomes` need not run again."""
    stages = _stage_refs(rows, src)
    outcomes = resolve_stages(settings.stages, (ref for ref, _, _ in stages))
    want = sorted((o.stage.pipeline_key, o.stage.stage_key, o.outcome, o.configured_probability) for o in outcomes)
    have = sorted((str(p), str(s), str(o), None if _missing(c) else float(c)) for p, s, o, c in rows(
        f"SELECT pipeline_key, stage_key, outcome, configured_probability FROM {src.name(q.OUTCOME_STAGES)}"))
    choices, _ = choose_value_fields(_pipeline_names(rows, src), _fields(rows, src), settings.value_field)
    fields = sorted((c.pipeline_key, c.field.field_key) for c in choices if c.field is not None)
    loaded_fields = sorted((str(p), str(f)) for p, f in rows(
        f"SELECT pipeline_key, field_key FROM {src.name(q.OUTCOME_VALUE_FIELDS)}"))
    samples = {int(m) for (m,) in rows(f"SELECT DISTINCT min_sample FROM {src.name(q.STAGE_WIN_PROBABILITY)}")}
    return want == have and fields == loaded_fields and samples <= {settings.min_sample}


def copy_sources(execute: Execute, dataset: str) -> q.Sources:
    """The copy in ``dataset`` as :class:`~streak_warehouse.outcome_sql.Sources` (its tables' columns)."""
    return q.Sources(dataset, _dataset_columns(execute, dataset))


def forecast_periods(rows: Execute, src: q.Sources, at: datetime, periods: Sequence[Period]) -> list[ForecastRow]:
    """The forecast (``forecast.py``) of won boxes and value in ``periods``, from the outcome relations
    ``src`` names: its open boxes (``box_outcomes``: a filtered subset gives their forecast), their
    stages' probabilities, every stay's time to close; "now" = ``at``. The load's three months, the
    dashboard's filtered boxes and the backtest's next 30 days (``forecast.horizon``) all come here."""
    chance: dict[tuple[str, str], float | None] = {}
    min_sample = DEFAULT_MIN_SAMPLE
    for pipeline_key, stage_key, probability, sample in rows(
            f"SELECT pipeline_key, stage_key, probability, min_sample FROM {src.name(q.STAGE_WIN_PROBABILITY)}"):
        chance[(str(pipeline_key), str(stage_key))] = None if _missing(probability) else float(probability)
        min_sample = int(sample) if not _missing(sample) else min_sample
    outcome_of = {(str(p), str(s)): str(o) for p, s, o in rows(
        f"SELECT pipeline_key, stage_key, outcome FROM {src.name(q.OUTCOME_STAGES)} WHERE outcome IN ('{WON}', '{LOST}')")}
    deleted = {str(box): _aware(when) for box, when in rows(q.deleted_boxes_sql(src))}
    stays = stays_until_close(((str(b), str(p), str(s), _aware(e)) for b, p, s, e in rows(q.stays_sql(src))),
                              set(outcome_of), at, deleted, {key for key, o in outcome_of.items() if o == WON})
    curves = stage_curves(stays, min_sample)
    boxes = [OpenBox(str(b), str(p), str(s), at if _missing(entered) else _aware(entered),
                     None if _missing(value) else float(value), chance.get((str(p), str(s))))
             for b, p, s, entered, value in rows(q.open_boxes_sql(src))]
    return forecast(boxes, curves, at, periods, _pipeline_names(rows, src))


def forecast_row(row: ForecastRow, pipelines: Mapping[str, str | None], at: datetime) -> dict[str, Any]:
    """A :class:`~streak_warehouse.forecast.ForecastRow` as a row of ``forecast_monthly``."""
    return dict(pipeline_key=row.pipeline_key, pipeline_name=pipelines.get(row.pipeline_key), month=row.period.month,
                period_start=row.period.start, period_end=row.period.end, as_of=at, open_boxes=row.open_boxes,
                boxes_without_probability=row.boxes_without_probability,
                expected_won_boxes=row.expected_won_boxes, won_boxes_low=row.won_boxes_low,
                won_boxes_high=row.won_boxes_high, expected_won_value=row.expected_won_value,
                won_value_low=row.won_value_low, won_value_high=row.won_value_high)


# --- reading the copy --------------------------------------------------------------------------------


def _dataset_columns(execute: Execute, dataset: str) -> dict[str, frozenset[str]]:
    rows = execute("SELECT table_name, column_name FROM information_schema.columns "
                   f"WHERE table_schema = {string_literal(dataset)}")
    found: dict[str, set[str]] = {}
    for table, column in rows:
        found.setdefault(str(table).lower(), set()).add(str(column).lower())
    return {table: frozenset(columns) for table, columns in found.items()}


def _stage_refs(execute: Execute, src: q.Sources) -> list[tuple[StageRef, int | None, bool]]:
    """Every stage the copy names (Streak's stages, then those only boxes or the history still
    name): (stage, its order, whether it is a stage of its pipeline now)."""
    names = _pipeline_names(execute, src)
    found: dict[tuple[str, str], list[Any]] = {}
    parts = []
    if src.has("stages") and {"pipeline_key", "stage_key"} <= src.columns["stages"]:
        order = "s.stage_order" if "stage_order" in src.columns["stages"] else "CAST(NULL AS BIGINT)"
        name = "s.name" if "name" in src.columns["stages"] else "CAST(NULL AS VARCHAR)"
        parts.append((f"SELECT s.pipeline_key, s.stage_key, {name}, {order} FROM {src.name('stages')} AS s", True))
    # DISTINCT: a stage's name is read once, not once per box or stay (20,000 boxes: 20,000 rows to Python)
    parts.append((f"SELECT DISTINCT b.pipeline_key, b.stage_key, b.stage_name, CAST(NULL AS BIGINT) "
                  f"FROM {src.rel('boxes')} AS b", False))
    parts.append((f"SELECT DISTINCT h.pipeline_key, h.stage_key, h.stage_name, h.stage_order "
                  f"FROM {src.name('box_stage_history')} AS h", False))
    for sql, current in parts:
        for pipeline_key, stage_key, stage_name, order in execute(sql):
            if pipeline_key is None or stage_key is None:
                continue
            entry = found.setdefault((str(pipeline_key), str(stage_key)), [None, None, False])
            if entry[0] is None and stage_name is not None:
                entry[0] = str(stage_name)
            if entry[1] is None and order is not None:
                entry[1] = int(order)
            entry[2] = entry[2] or current
    return [(StageRef(key[0], names.get(key[0]), key[1], name), order, current)
            for key, (name, order, current) in sorted(found.items())]


def _pipeline_names(execute: Execute, src: q.Sources) -> dict[str, str | None]:
    return {str(key): None if name is None else str(name)
            for key, name in execute(f"SELECT p.pipeline_key, p.name FROM {src.rel('pipelines')} AS p")}


def _fields(execute: Execute, src: q.Sources) -> list[FieldRef]:
    """Custom fields with their order, numeric where their wide-view column is a number (the one
    typing rule of ``views.py``: FORMULA, and TEXT_INPUT whose every value reads as a number)."""
    if not src.has("pipeline_fields"):
        return []
    numeric: set[tuple[str, str]] = set()
    if src.has("wide_view_columns"):
        numeric = {(str(p), str(f)) for p, f in execute(
            f"SELECT pipeline_key, field_key FROM {src.name('wide_view_columns')} "
            "WHERE field_key IS NOT NULL AND data_type = 'double'")}
    columns = src.columns["pipeline_fields"]
    order = "field_order" if "field_order" in columns else "CAST(NULL AS BIGINT)"
    rows = execute(f"SELECT pipeline_key, field_key, name, {order} FROM {src.name('pipeline_fields')}")
    return [FieldRef(str(p), str(f), str(name or ""), int(position) if position is not None else 1 << 30,
                     (str(p), str(f)) in numeric) for p, f, name, position in rows]


def _unmatched(settings: OutcomeSettings, stages: list[StageRef]) -> list[str]:
    lists = (("outcomes.won_stages", settings.stages.won), ("outcomes.lost_stages", settings.stages.lost),
             ("dashboard.closed_stages", settings.stages.closed),
             ("outcomes.probability", tuple(settings.stages.probability or ())))
    return [f"{setting}: {entry!r} names no stage of this account" for setting, entries in lists
            for entry in unmatched_entries(entries, stages)]


# --- the tables computed here ------------------------------------------------------------------------


def _probability_rows(execute: Execute, src: q.Sources, outcomes: Sequence[Any], orders: Sequence[int | None],
                      min_sample: int) -> list[dict[str, Any]]:
    counts = {(str(p), str(s)): (int(c), int(w)) for p, s, c, w in execute(q.closed_counts_sql(src))}
    pipeline = {str(p): (int(c), int(w or 0)) for p, c, w in execute(q.pipeline_counts_sql(src))}
    rows = []
    for outcome, order in zip(outcomes, orders):
        stage = outcome.stage
        closed, won = counts.get((stage.pipeline_key, stage.stage_key), (0, 0))
        in_pipeline = pipeline.get(stage.pipeline_key, (0, 0))
        probability, source = probability_choice(outcome.outcome, closed, won, outcome.configured_probability,
                                                  in_pipeline[0], in_pipeline[1], min_sample)
        rows.append(dict(pipeline_key=stage.pipeline_key, pipeline_name=stage.pipeline_name, stage_key=stage.stage_key,
                         stage_name=stage.stage_name, stage_order=order, stage_outcome=outcome.outcome,
                         closed_boxes=closed, won_boxes=won, observed_win_rate=won / closed if closed else None,
                         probability=probability, probability_source=source, min_sample=min_sample))
    return rows


def _value_field_rows(choices: Sequence[ValueFieldChoice]) -> list[dict[str, Any]]:
    return [dict(pipeline_key=c.pipeline_key, pipeline_name=c.pipeline_name, field_key=c.field.field_key,
                 field_name=c.field.name, chosen_by=c.chosen_by) for c in choices if c.field is not None]


def _missing(value: Any) -> bool:
    """NULL as a driver or a data frame gives it back (None, NaN, NaT)."""
    return value is None or (isinstance(value, float) and math.isnan(value)) or str(value) == "NaT"


def _aware(value: Any) -> datetime:
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return when if when.tzinfo else when.replace(tzinfo=UTC)


# --- where the relations go -------------------------------------------------------------------------


class Target(Protocol):
    """Where :func:`build_outcomes` puts each relation, and how it reads what it put there."""

    def table(self, name: str, columns: Columns, rows: Sequence[Mapping[str, Any]]) -> None: ...

    def view(self, name: str, select: str) -> None: ...

    def rows(self, sql: str) -> Sequence[Sequence[Any]]: ...


class CopyTarget:
    """Tables and views in the copy's ``dataset`` (the load)."""

    def __init__(self, execute: Execute, dataset: str) -> None:
        self.execute, self.dataset = execute, dataset

    def table(self, name: str, columns: Columns, rows: Sequence[Mapping[str, Any]]) -> None:
        """Create ``name`` and insert ``rows`` as literals (500 a statement)."""
        table = qualified(self.dataset, name)
        self.execute(f"CREATE TABLE {table} (" + ", ".join(f"{quote_identifier(c)} {_kind(t)}" for c, t in columns) + ")")
        names = ", ".join(quote_identifier(c) for c, _ in columns)
        for first in range(0, len(rows), 500):
            self.execute(f"INSERT INTO {table} ({names}) VALUES " + ", ".join(_tuple(row, columns) for row in rows[first:first + 500]))

    def view(self, name: str, select: str) -> None:
        self.execute(f"CREATE VIEW {qualified(self.dataset, name)} AS\n{select}")

    def rows(self, sql: str) -> Sequence[Sequence[Any]]:
        return self.execute(sql)


SESSION_NAMES: Final = {relation: quote_identifier(relation) for relation in (*VIEWS, *TABLES)}
"""The outcome relations as a :class:`SessionTarget` names them: CTEs of the query that reads them."""


class SessionTarget:
    """Every relation a CTE of the queries that read it, written nowhere: the outcomes of other
    settings than the load's, computed from the copy's base tables by the same steps (the dashboard's
    own won and lost stages). Build with ``Sources(..., names=SESSION_NAMES)``."""

    def __init__(self, execute: Execute) -> None:
        self.execute = execute
        self.ctes: list[str] = []

    def table(self, name: str, columns: Columns, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            names = ", ".join(quote_identifier(c) for c, _ in columns)
            select = (f"SELECT {', '.join('v.' + quote_identifier(c) for c, _ in columns)} "
                      f"FROM (VALUES {', '.join(_tuple(row, columns) for row in rows)}) AS v({names})")
        else:
            select = "SELECT " + ", ".join(f"CAST(NULL AS {_kind(t)}) AS {quote_identifier(c)}" for c, t in columns) + " WHERE FALSE"
        self.ctes.append(f"{SESSION_NAMES[name]} AS ({select})")

    def view(self, name: str, select: str) -> None:
        self.ctes.append(f"{SESSION_NAMES[name]} AS (\n{select}\n)")

    def query(self, select: str, more: Sequence[str] = ()) -> str:
        """``select`` (a SELECT without a WITH of its own) over these relations and ``more`` CTEs."""
        ctes = [*self.ctes, *more]
        return f"WITH {', '.join(ctes)}\n{select}" if ctes else select

    def rows(self, sql: str) -> Sequence[Sequence[Any]]:
        return self.execute(self.query(sql))


def _kind(data_type: str) -> str:
    return "DATE" if data_type == "date" else ANSI_TYPES.get(data_type, "VARCHAR")


def _tuple(row: Mapping[str, Any], columns: Columns) -> str:
    def literal(value: Any, data_type: str) -> str:
        if data_type == "date":
            return "CAST(NULL AS DATE)" if value is None else f"CAST({string_literal(value.isoformat())} AS DATE)"
        return sql_literal(value, data_type)

    return "(" + ", ".join(literal(row.get(c), t) for c, t in columns) + ")"
