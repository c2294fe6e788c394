"""The SQL of the outcome views (docs/metrics.md shows each one as created in ``crm``), pure text.

Plain SQL that DuckDB and Postgres both run: no ``now()`` (the reference time is the end of the
load that made the copy, ``load_history.finished_at`` of its newest ``ok`` row), months of close in
UTC, day counts from epoch seconds. Every input is read through :class:`Sources`, which stands in a
typed empty relation for a table the copy lacks (an account without custom fields has no
``box_field_values``) and a typed NULL for a column dlt left out, so the views keep their columns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

from streak_warehouse.sql import ANSI_TYPES, qualified, quote_identifier

BOX_OUTCOMES: Final = "box_outcomes"
WIN_RATE_MONTHLY: Final = "win_rate_monthly"
WEIGHTED_PIPELINE: Final = "weighted_pipeline"
OWNER_SCORECARD: Final = "owner_scorecard"
OUTCOME_STAGES: Final = "outcome_stages"
OUTCOME_VALUE_FIELDS: Final = "outcome_value_fields"
STAGE_WIN_PROBABILITY: Final = "stage_win_probability"
FORECAST_MONTHLY: Final = "forecast_monthly"

DOUBLE: Final = ANSI_TYPES["double"]

# The columns each view reads, by table: (name, dlt data type).
READS: Final[Mapping[str, tuple[tuple[str, str], ...]]] = {
    "boxes": (("box_key", "text"), ("name", "text"), ("pipeline_key", "text"), ("stage_key", "text"),
              ("stage_name", "text"), ("owner_name", "text"), ("owner_email", "text"),
              ("creation_timestamp", "timestamp"), ("last_stage_change_timestamp", "timestamp")),
    "pipelines": (("pipeline_key", "text"), ("name", "text")),
    "box_stage_history": (("box_key", "text"), ("pipeline_key", "text"), ("stage_key", "text"),
                          ("entered_at", "timestamp"), ("left_at", "timestamp"), ("entered_exact", "bool")),
    "box_field_values": (("box_key", "text"), ("pipeline_key", "text"), ("field_key", "text"), ("value_number", "double")),
    "box_field_values_history": (("box_key", "text"), ("pipeline_key", "text"), ("field_key", "text"),
                                 ("value_number", "double"), ("valid_from", "timestamp"), ("valid_to", "timestamp")),
    "boxes_history": (("box_key", "text"), ("owner_name", "text"), ("owner_email", "text"),
                      ("valid_from", "timestamp"), ("valid_to", "timestamp")),
    "box_tasks": (("task_key", "text"), ("status", "text"), ("due_date", "timestamp")),
    "box_task_assignees": (("task_key", "text"), ("email", "text"), ("name", "text")),
    "load_history": (("finished_at", "timestamp"), ("outcome", "text")),
}
REQUIRED: Final = ("boxes", "box_stage_history", "load_history")
"""Without these there is nothing to measure (an account without boxes has no ``boxes`` table)."""


@dataclass(frozen=True)
class Sources:
    """The tables of the fresh copy (``dataset``) and their columns (lower case)."""

    dataset: str
    columns: Mapping[str, frozenset[str]]
    names: Mapping[str, str] = field(default_factory=dict)
    """Relations read from elsewhere, by name: an outcome relation defined in a query of its own (the
    dashboard's CTEs, ``outcome_views.SessionTarget``) or a subset of one (the sidebar's filters);
    each a FROM item with the columns the relation has (for a table: those :data:`READS` names)."""

    def has(self, table: str) -> bool:
        return table in self.columns

    def missing_required(self) -> list[str]:
        return [table for table in REQUIRED if not self.has(table)]

    def rel(self, table: str) -> str:
        """``table`` as a FROM item with exactly the columns :data:`READS` names for it."""
        if table in self.names:
            return self.names[table]
        wanted = READS[table]
        present = self.columns.get(table)
        if present is not None and all(name in present for name, _ in wanted):
            return qualified(self.dataset, table)
        items = ", ".join(
            (quote_identifier(name) if present is not None and name in present
             else f"CAST(NULL AS {ANSI_TYPES[kind]})") + f" AS {quote_identifier(name)}"
            for name, kind in wanted
        )
        if present is None:
            return f"(SELECT {items} WHERE FALSE)"
        return f"(SELECT {items} FROM {qualified(self.dataset, table)})"

    def name(self, relation: str) -> str:
        """One of the outcome relations (always present once created), or a table of the copy read as
        it is."""
        return self.names.get(relation) or qualified(self.dataset, relation)


def _view(src: Sources, name: str, select: str) -> str:
    return f"CREATE VIEW {src.name(name)} AS\n{select}"


def _days(later: str, earlier: str) -> str:
    return f"CAST((EXTRACT(EPOCH FROM {later}) - EXTRACT(EPOCH FROM {earlier})) / 86400.0 AS {DOUBLE})"


def _version_at_close(versions: str, keys: str) -> str:
    """Rows of ``versions`` (with ``box_key``, ``valid_from``, ``valid_to``, ``first_from``) valid
    when the box of ``closing`` closed: the version valid at ``closed_at``, or, for a box that closed
    before its history began, its first version; ``pick = 1`` on the one to use."""
    return f"""
  SELECT c.box_key, {keys}, ROW_NUMBER() OVER (PARTITION BY c.box_key ORDER BY v.valid_from) AS pick
  FROM closing AS c JOIN {versions} AS v ON v.box_key = c.box_key
  WHERE c.closed_at IS NOT NULL AND (v.valid_to IS NULL OR v.valid_to > c.closed_at)
    AND (v.valid_from <= c.closed_at OR v.valid_from = v.first_from)
"""


def _owner_at_close(history: str) -> str:
    """:func:`_version_at_close`'s rule for the box's owner (``boxes_history``, with ``owner_first``),
    in two parts: a box that closed before its history began gets its first version (no other starts
    before it closed), any other the version current when it closed. A box has a version per load
    (its freshness moves daily), and most closed before the history began, so only the few that closed
    since are joined to all their versions."""
    return f"""
  SELECT c.box_key, v.owner_name, v.owner_email, ROW_NUMBER() OVER (PARTITION BY c.box_key ORDER BY v.valid_from) AS pick
  FROM closing AS c JOIN owner_first AS f ON f.box_key = c.box_key AND c.closed_at < f.first_from
  JOIN {history} AS v ON v.box_key = f.box_key AND v.valid_from = f.first_from
  UNION ALL
  SELECT c.box_key, v.owner_name, v.owner_email, ROW_NUMBER() OVER (PARTITION BY c.box_key ORDER BY v.valid_from) AS pick
  FROM closing AS c JOIN owner_first AS f ON f.box_key = c.box_key AND c.closed_at >= f.first_from
  JOIN {history} AS v ON v.box_key = c.box_key AND v.valid_from <= c.closed_at
   AND (v.valid_to IS NULL OR v.valid_to > c.closed_at)
"""


def box_outcomes_sql(src: Sources) -> str:
    """``crm.box_outcomes``: one row per box of the copy."""
    return _view(src, BOX_OUTCOMES, box_outcomes_select(src))


def box_outcomes_select(src: Sources) -> str:
    """The SELECT of :func:`box_outcomes_sql`."""
    value_fields = src.name(OUTCOME_VALUE_FIELDS)
    return f"""WITH current_stay AS (
  SELECT h.box_key, h.stage_key, h.entered_at, h.entered_exact,
         ROW_NUMBER() OVER (PARTITION BY h.box_key, h.stage_key ORDER BY h.entered_at DESC) AS pick
  FROM {src.rel('box_stage_history')} AS h WHERE h.left_at IS NULL
),
closing AS (
  SELECT b.box_key, b.name AS box_name, b.pipeline_key, p.name AS pipeline_name, b.stage_key,
         COALESCE(s.stage_name, b.stage_name) AS stage_name, COALESCE(s.outcome, 'open') AS stage_outcome,
         b.creation_timestamp AS created_at,
         COALESCE(c.entered_at, b.last_stage_change_timestamp, b.creation_timestamp) AS stage_entered_at,
         COALESCE(c.entered_exact, FALSE) AS stage_entered_exact,
         CASE WHEN s.outcome IN ('won', 'lost')
              THEN COALESCE(c.entered_at, b.last_stage_change_timestamp, b.creation_timestamp) END AS closed_at,
         b.owner_name, b.owner_email
  FROM {src.rel('boxes')} AS b
  LEFT JOIN {src.rel('pipelines')} AS p ON p.pipeline_key = b.pipeline_key
  LEFT JOIN {src.name(OUTCOME_STAGES)} AS s ON s.pipeline_key = b.pipeline_key AND s.stage_key = b.stage_key
  LEFT JOIN current_stay AS c ON c.box_key = b.box_key AND c.stage_key = b.stage_key AND c.pick = 1
),
value_versions AS (
  SELECT v.box_key, v.value_number, v.valid_from, v.valid_to,
         MIN(v.valid_from) OVER (PARTITION BY v.box_key, v.field_key) AS first_from
  FROM {src.rel('box_field_values_history')} AS v
  JOIN {value_fields} AS f ON f.pipeline_key = v.pipeline_key AND f.field_key = v.field_key
),
value_at_close AS ({_version_at_close('value_versions', 'v.value_number')}),
value_now AS (
  SELECT v.box_key, MAX(v.value_number) AS value_number
  FROM {src.rel('box_field_values')} AS v
  JOIN {value_fields} AS f ON f.pipeline_key = v.pipeline_key AND f.field_key = v.field_key
  GROUP BY v.box_key
),
owner_first AS (
  SELECT h.box_key, MIN(h.valid_from) AS first_from FROM {src.rel('boxes_history')} AS h GROUP BY h.box_key
),
owner_at_close AS ({_owner_at_close(src.rel('boxes_history'))})
SELECT c.box_key, c.box_name, c.pipeline_key, c.pipeline_name, c.stage_key, c.stage_name,
       CASE WHEN c.stage_outcome IN ('won', 'lost') THEN c.stage_outcome ELSE 'open' END AS outcome,
       c.stage_outcome <> 'open' AS closed,
       c.closed_at,
       CASE WHEN c.closed_at IS NOT NULL THEN c.stage_entered_exact END AS closed_at_exact,
       c.created_at,
       {_days('c.closed_at', 'c.created_at')} AS cycle_days,
       c.stage_entered_at,
       CASE WHEN c.closed_at IS NULL THEN n.value_number ELSE a.value_number END AS value,
       CASE WHEN o.box_key IS NOT NULL THEN o.owner_name ELSE c.owner_name END AS owner_name,
       CASE WHEN o.box_key IS NOT NULL THEN o.owner_email ELSE c.owner_email END AS owner_email
FROM closing AS c
LEFT JOIN value_at_close AS a ON a.box_key = c.box_key AND a.pick = 1
LEFT JOIN value_now AS n ON n.box_key = c.box_key
LEFT JOIN owner_at_close AS o ON o.box_key = c.box_key AND o.pick = 1"""


def win_rate_monthly_sql(src: Sources) -> str:
    """``crm.win_rate_monthly``: per pipeline and month of close (UTC)."""
    return _view(src, WIN_RATE_MONTHLY, win_rate_monthly_select(src))


def win_rate_monthly_select(src: Sources) -> str:
    """The SELECT of :func:`win_rate_monthly_sql`."""
    return f"""SELECT o.pipeline_key, MAX(o.pipeline_name) AS pipeline_name,
       CAST(date_trunc('month', o.closed_at AT TIME ZONE 'UTC') AS DATE) AS month,
       COUNT(CASE WHEN o.outcome = 'won' THEN 1 END) AS won,
       COUNT(CASE WHEN o.outcome = 'lost' THEN 1 END) AS lost,
       CAST(COUNT(CASE WHEN o.outcome = 'won' THEN 1 END) AS {DOUBLE}) / COUNT(*) AS win_rate,
       SUM(CASE WHEN o.outcome = 'won' THEN o.value END) AS won_value,
       SUM(CASE WHEN o.outcome = 'lost' THEN o.value END) AS lost_value,
       COUNT(o.value) AS boxes_with_value,
       SUM(CASE WHEN o.outcome = 'won' THEN o.value ELSE 0 END) / NULLIF(SUM(o.value), 0) AS win_rate_by_value
FROM {src.name(BOX_OUTCOMES)} AS o
WHERE o.outcome IN ('won', 'lost')
GROUP BY o.pipeline_key, CAST(date_trunc('month', o.closed_at AT TIME ZONE 'UTC') AS DATE)"""


def weighted_pipeline_sql(src: Sources) -> str:
    """``crm.weighted_pipeline``: per pipeline and open stage."""
    return _view(src, WEIGHTED_PIPELINE, weighted_pipeline_select(src))


def weighted_pipeline_select(src: Sources) -> str:
    """The SELECT of :func:`weighted_pipeline_sql`."""
    return f"""SELECT s.pipeline_key, s.pipeline_name, s.stage_key, s.stage_name, s.stage_order,
       COUNT(o.box_key) AS open_boxes, COUNT(o.value) AS boxes_with_value, SUM(o.value) AS open_value,
       w.probability, w.probability_source, SUM(o.value) * w.probability AS weighted_value
FROM {src.name(OUTCOME_STAGES)} AS s
LEFT JOIN {src.name(BOX_OUTCOMES)} AS o ON o.pipeline_key = s.pipeline_key AND o.stage_key = s.stage_key
LEFT JOIN {src.name(STAGE_WIN_PROBABILITY)} AS w ON w.pipeline_key = s.pipeline_key AND w.stage_key = s.stage_key
WHERE s.outcome = 'open' AND (s.current_stage OR o.box_key IS NOT NULL)
GROUP BY s.pipeline_key, s.pipeline_name, s.stage_key, s.stage_name, s.stage_order, w.probability, w.probability_source"""


def owner_scorecard_sql(src: Sources) -> str:
    """``crm.owner_scorecard``: per owner (lower-cased e-mail; NULL: unassigned boxes)."""
    return _view(src, OWNER_SCORECARD, owner_scorecard_select(src))


def owner_scorecard_select(src: Sources) -> str:
    """The SELECT of :func:`owner_scorecard_sql`."""
    return f"""WITH as_of AS (
  SELECT MAX(r.finished_at) AS at FROM {src.rel('load_history')} AS r WHERE r.outcome = 'ok'
),
by_owner AS (
  SELECT LOWER(o.owner_email) AS owner_email, MAX(o.owner_name) AS owner_name,
         COUNT(CASE WHEN o.outcome = 'won' THEN 1 END) AS won,
         COUNT(CASE WHEN o.outcome = 'lost' THEN 1 END) AS lost,
         SUM(CASE WHEN o.outcome = 'won' THEN o.value END) AS won_value,
         COUNT(CASE WHEN NOT o.closed THEN 1 END) AS open_boxes,
         SUM(CASE WHEN NOT o.closed THEN o.value END) AS open_value,
         SUM(CASE WHEN NOT o.closed THEN o.value * w.probability END) AS weighted_value,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY CASE WHEN o.outcome = 'won' THEN o.cycle_days END)
           AS median_cycle_days
  FROM {src.name(BOX_OUTCOMES)} AS o
  LEFT JOIN {src.name(STAGE_WIN_PROBABILITY)} AS w ON w.pipeline_key = o.pipeline_key AND w.stage_key = o.stage_key
  GROUP BY LOWER(o.owner_email)
),
overdue AS (
  SELECT LOWER(a.email) AS owner_email, MAX(a.name) AS owner_name, COUNT(DISTINCT t.task_key) AS overdue_tasks
  FROM {src.rel('box_task_assignees')} AS a
  JOIN {src.rel('box_tasks')} AS t ON t.task_key = a.task_key
  CROSS JOIN as_of
  WHERE a.email IS NOT NULL AND t.status = 'NOT_DONE' AND t.due_date < as_of.at
  GROUP BY LOWER(a.email)
)
SELECT COALESCE(b.owner_email, d.owner_email) AS owner_email, COALESCE(b.owner_name, d.owner_name) AS owner_name,
       COALESCE(b.won, 0) AS won, COALESCE(b.lost, 0) AS lost,
       CAST(b.won AS {DOUBLE}) / NULLIF(b.won + b.lost, 0) AS win_rate,
       b.won_value, COALESCE(b.open_boxes, 0) AS open_boxes, b.open_value, b.weighted_value,
       b.median_cycle_days, COALESCE(d.overdue_tasks, 0) AS overdue_tasks
FROM by_owner AS b
FULL OUTER JOIN overdue AS d ON d.owner_email = b.owner_email"""


def closed_counts_sql(src: Sources) -> str:
    """Per stage: the boxes ever in it that have closed since, and how many of them were won (the
    sample of ``stage_win_probability``)."""
    return f"""SELECT h.pipeline_key, h.stage_key, COUNT(DISTINCT h.box_key) AS closed_boxes,
       COUNT(DISTINCT CASE WHEN o.outcome = 'won' THEN h.box_key END) AS won_boxes
FROM {src.rel('box_stage_history')} AS h
JOIN {src.name(BOX_OUTCOMES)} AS o ON o.box_key = h.box_key AND o.pipeline_key = h.pipeline_key
WHERE o.outcome IN ('won', 'lost') AND h.entered_at <= o.closed_at
GROUP BY h.pipeline_key, h.stage_key"""


def pipeline_counts_sql(src: Sources) -> str:
    """Per pipeline: its closed boxes and how many were won (the ``pipeline`` prior)."""
    return f"""SELECT o.pipeline_key, COUNT(*) AS closed_boxes, COUNT(CASE WHEN o.outcome = 'won' THEN 1 END) AS won_boxes
FROM {src.name(BOX_OUTCOMES)} AS o WHERE o.outcome IN ('won', 'lost') GROUP BY o.pipeline_key"""


def open_boxes_sql(src: Sources) -> str:
    """The open boxes the forecast looks at."""
    return (f"SELECT o.box_key, o.pipeline_key, o.stage_key, o.stage_entered_at, o.value "
            f"FROM {src.name(BOX_OUTCOMES)} AS o WHERE NOT o.closed")


def stays_sql(src: Sources) -> str:
    """Every stay (for the time to close from each stage)."""
    return (f"SELECT h.box_key, h.pipeline_key, h.stage_key, h.entered_at FROM {src.rel('box_stage_history')} AS h "
            "WHERE h.entered_at IS NOT NULL")


def deleted_boxes_sql(src: Sources) -> str:
    """When each box the history knows was found deleted (a stay's ``box_deleted_at``)."""
    return (f"SELECT h.box_key, MAX(h.box_deleted_at) FROM {src.name('box_stage_history')} AS h "
            "WHERE h.box_deleted_at IS NOT NULL GROUP BY h.box_key")


VIEW_SELECTS: Final[Mapping[str, Callable[[Sources], str]]] = {
    BOX_OUTCOMES: box_outcomes_select, WIN_RATE_MONTHLY: win_rate_monthly_select,
    WEIGHTED_PIPELINE: weighted_pipeline_select, OWNER_SCORECARD: owner_scorecard_select,
}
"""Each view's SELECT (what ``CREATE VIEW`` wraps), for a query that defines the view itself."""


def documented(dataset: str = "crm") -> dict[str, str]:
    """Each statement as docs/metrics.md shows it (every input table present)."""
    src = Sources(dataset, {table: frozenset(name for name, _ in columns) for table, columns in READS.items()})
    return {"box_outcomes": box_outcomes_sql(src), "win_rate_monthly": win_rate_monthly_sql(src),
            "closed_counts": closed_counts_sql(src), "pipeline_counts": pipeline_counts_sql(src),
            "weighted_pipeline": weighted_pipeline_sql(src), "owner_scorecard": owner_scorecard_sql(src)}
