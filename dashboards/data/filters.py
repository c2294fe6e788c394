"""Which boxes a page looks at: the sidebar filters, and the closed stages it may leave out.

Every page query starts from the ``fb`` CTE of :func:`boxes_cte` (the filtered boxes), so a filter
means the same on every page. ``fb.is_closed`` marks boxes in a stage the user called closed;
pages where open work matters (Ageing, the funnel's open count) leave those out and say so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

from dashboards.data.catalog import Catalog
from dashboards.data.sql import col, in_list, lit

UNASSIGNED: Final = "__unassigned__"
"""Owner filter value for boxes with no assignee (``owner_email`` is NULL)."""
UNASSIGNED_LABEL: Final = "Unassigned"


@dataclass(frozen=True)
class Filters:
    """The sidebar filters every page applies to the set of boxes it looks at.

    ``created_from``/``created_to`` (inclusive) filter on the box's creation date; ``None`` means
    no bound. An empty ``owners`` tuple means everyone; :data:`UNASSIGNED` selects boxes with no
    assignee. ``closed_stage_keys``: ``(pipeline_key, stage_key)`` of the stages that count as
    closed (``data.closed.closed_keys``); they never remove boxes here, they only set ``fb.is_closed``.
    """

    pipeline_key: str | None = None
    owners: tuple[str, ...] = ()
    created_from: date | None = None
    created_to: date | None = None
    closed_stage_keys: tuple[tuple[str, str], ...] = ()


def box_where(f: Filters, catalog: Catalog, alias: str = "b", table: str = "boxes") -> str:
    """The WHERE clause of the filtered boxes (alias ``b`` = ``boxes``; or rows of another table with
    the box's columns, such as a version of it in ``boxes_history``)."""
    clauses = ["1 = 1"]
    if f.pipeline_key is not None:
        clauses.append(f"{alias}.pipeline_key = {lit(f.pipeline_key)}")
    if f.owners:
        emails = [o for o in f.owners if o != UNASSIGNED]
        owner = col(catalog, table, alias, "owner_email")
        parts = [f"{owner} IN {in_list(emails)}"] if emails else []
        if UNASSIGNED in f.owners:
            parts.append(f"{owner} IS NULL")
        clauses.append("(" + " OR ".join(parts) + ")")
    created = col(catalog, table, alias, "creation_timestamp")
    if f.created_from is not None:
        clauses.append(f"{created} >= {lit(f.created_from)}")
    if f.created_to is not None:
        clauses.append(f"{created} < {lit(f.created_to + timedelta(days=1))}")
    return " AND ".join(clauses)


def stage_name_expr(catalog: Catalog) -> str:
    """The box's stage name: the ``stages`` row's name, else the name the loader put on the box."""
    box_stage = col(catalog, "boxes", "b", "stage_name")
    if catalog.has("stages", "pipeline_key", "stage_key", "name") and catalog.has("boxes", "stage_key"):
        return f"COALESCE(s.name, {box_stage})"
    return box_stage


def stage_join(catalog: Catalog) -> str:
    """``LEFT JOIN stages AS s`` on the box ``b``'s stage, for :func:`stage_name_expr` (or nothing)."""
    if catalog.has("stages", "pipeline_key", "stage_key", "name") and catalog.has("boxes", "stage_key"):
        return "LEFT JOIN stages AS s ON s.pipeline_key = b.pipeline_key AND s.stage_key = b.stage_key"
    return ""


def boxes_cte(f: Filters, catalog: Catalog) -> str:
    """``fb``: the filtered boxes, with the columns the pages need (missing ones as NULL)."""
    c = lambda column: col(catalog, "boxes", "b", column)
    stage_name = stage_name_expr(catalog)
    closed = closed_sql(f.closed_stage_keys, "b")
    return f"""fb AS (
  SELECT b.box_key AS box_key, b.pipeline_key AS pipeline_key, {c('name')} AS box_name,
         {c('stage_key')} AS stage_key, {stage_name} AS box_stage_name,
         {c('owner_name')} AS owner_name, {c('owner_email')} AS owner_email,
         {c('creation_timestamp')} AS creation_timestamp,
         {c('last_stage_change_timestamp')} AS last_stage_change_timestamp,
         {closed} AS is_closed
  FROM boxes AS b {stage_join(catalog)}
  WHERE {box_where(f, catalog)}
)"""


def closed_sql(keys: tuple[tuple[str, str], ...], alias: str) -> str:
    """True for a box (``alias`` = ``boxes``) in one of the closed stages ``keys``."""
    by_pipeline: dict[str, list[str]] = {}
    for pipeline_key, stage_key in keys:
        by_pipeline.setdefault(pipeline_key, []).append(stage_key)
    if not by_pipeline:
        return "FALSE"
    return "(" + " OR ".join(
        f"({alias}.pipeline_key = {lit(pipeline)} AND {alias}.stage_key IN {in_list(stages)})"
        for pipeline, stages in sorted(by_pipeline.items())
    ) + ")"


def owner_label(expr: str) -> str:
    """A box owner's name, or "Unassigned" for a box with none."""
    return f"COALESCE({expr}, {lit(UNASSIGNED_LABEL)})"
