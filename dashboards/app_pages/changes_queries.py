"""Queries of the Changes page: what happened between two loads, read from the history tables.

The copy each of the two loads produced is rebuilt from ``crm.<table>_history`` (``data/history.py``:
the versions current at the load's end) and the two copies are compared record by record, so
"between two loads" means:

* **created**: a box in the later copy and not in the earlier one; **deleted**: the other way round
  (named as it was in the earlier copy, with the end of the first load that found it gone);
* **moved**: a box in both whose stage differs (from -> to); **owner or assignees**: a box in both
  whose owner or assignees differ;
* **field values**: a value of a box in both that differs (set, changed or cleared);
* **tasks added**: a task in the later copy and not in the earlier one; **tasks completed**: a task
  done in the later copy and not done (or not there) in the earlier one.

What happened and was undone in between (a box created and deleted, moved and moved back) is no
change between the two copies, and several moves in between are one move, from -> to. A box is
filtered (the sidebar) as it is in the later copy, a deleted box as it was in the earlier one.
Every function takes the earlier load's ``run_id`` then the later one's.
"""

from __future__ import annotations

from typing import Final

import pandas as pd

from dashboards.data.catalog import Catalog
from dashboards.data.connection import Runner, require_data
from dashboards.data.filters import Filters, box_where
from dashboards.data.history import BOXES_HISTORY, at_load, has_history, history_of, load_end
from dashboards.data.lookups import with_pipeline_names
from dashboards.data.sql import col, empty, json_as_text, utc

TASKS_HISTORY: Final = history_of("box_tasks")
FIELDS_HISTORY: Final = history_of("box_field_values")
DONE: Final = "DONE"
VALUE_COLUMNS: Final = ("value_text", "value_number", "value_bool", "value_timestamp")
"""A field value as the page shows it (the first that is set); any difference, in these or in the
raw value Streak sent (``value_raw``, ``value_labels``), is a change."""

BOX_COLUMNS: Final = ["box_key", "box_name", "pipeline_key", "pipeline_name"]
COLUMNS: Final = {
    "created": [*BOX_COLUMNS, "stage_name", "owner_name", "created"],
    "deleted": [*BOX_COLUMNS, "stage_name", "owner_name", "deleted_at"],
    "moved": [*BOX_COLUMNS, "from_stage", "to_stage"],
    "owners": [*BOX_COLUMNS, "from_assignees", "to_assignees"],
    "fields": [*BOX_COLUMNS, "field_key", "field_name",
               *(f"{side}_{column}" for side in ("old", "new") for column in VALUE_COLUMNS)],
    "tasks_added": [*BOX_COLUMNS, "task_key", "task", "status", "assignees", "due_date"],
    "tasks_completed": [*BOX_COLUMNS, "task_key", "task", "assignees", "completed_at"],
}
"""Each list's columns, by the name of its query function."""


def _boxes_at(run: Runner, catalog: Catalog, name: str, run_id: str, f: Filters | None = None) -> str:
    """CTE ``name``: the boxes of the copy load ``run_id`` produced (those ``f`` keeps, if given).
    Every list of the page reads them: the runner keeps them (``Runner.kept``), so the history is
    read once per page view, not twice per list."""
    c = lambda column: col(catalog, BOXES_HISTORY, "h", column)
    kept = f" AND {box_where(f, catalog, 'h', BOXES_HISTORY)}" if f is not None else ""
    select = f"""SELECT h.box_key AS box_key, h.pipeline_key AS pipeline_key, {c('name')} AS box_name,
         {c('stage_key')} AS stage_key, COALESCE({c('stage_name')}, {c('stage_key')}) AS stage_name,
         {c('owner_name')} AS owner_name, {c('owner_email')} AS owner_email,
         {c('assigned_to_names')} AS assignees, {c('assigned_to_emails')} AS assignee_emails,
         {c('creation_timestamp')} AS created
  FROM {BOXES_HISTORY} AS h WHERE {at_load(run_id, 'h')}{kept}"""
    table = run.kept(select)
    return f"{name} AS ({f'SELECT * FROM {table}' if table else select})"


def _frame(run: Runner, name: str, sql: str | None, times: tuple[str, ...] = ()) -> pd.DataFrame:
    """Run one list's query (None: the copy lacks its tables) into its :data:`COLUMNS`."""
    if sql is None:
        return empty(COLUMNS[name])
    frame = run.df(sql)
    if frame.empty:
        return empty(COLUMNS[name])
    for column in times:
        frame[column] = utc(frame[column])
    frame["pipeline_key"] = frame["pipeline_key"].astype("object")
    return with_pipeline_names(run, frame)[COLUMNS[name]].reset_index(drop=True)


def created(run: Runner, f: Filters, earlier: str, later: str) -> pd.DataFrame:
    catalog = require_data(run)
    sql = None if not has_history(catalog, "boxes") else f"""
        WITH {_boxes_at(run, catalog, 'box_to', later, f)}, {_boxes_at(run, catalog, 'box_from', earlier)}
        SELECT t.box_key AS box_key, t.box_name AS box_name, t.pipeline_key AS pipeline_key,
               t.stage_name AS stage_name, t.owner_name AS owner_name, t.created AS created
        FROM box_to AS t WHERE NOT EXISTS (SELECT 1 FROM box_from AS b WHERE b.box_key = t.box_key)
        ORDER BY t.box_name, t.box_key"""
    return _frame(run, "created", sql, ("created",))


def deleted(run: Runner, f: Filters, earlier: str, later: str) -> pd.DataFrame:
    catalog = require_data(run)
    sql = None if not has_history(catalog, "boxes") else f"""
        WITH {_boxes_at(run, catalog, 'box_from', earlier, f)}, {_boxes_at(run, catalog, 'box_to', later)}
        SELECT b.box_key AS box_key, b.box_name AS box_name, b.pipeline_key AS pipeline_key,
               b.stage_name AS stage_name, b.owner_name AS owner_name,
               (SELECT MIN(d.valid_to) FROM {BOXES_HISTORY} AS d WHERE d.box_key = b.box_key AND d.deleted
                  AND d.valid_to > {load_end(earlier)} AND d.valid_to <= {load_end(later)}) AS deleted_at
        FROM box_from AS b WHERE NOT EXISTS (SELECT 1 FROM box_to AS t WHERE t.box_key = b.box_key)
        ORDER BY b.box_name, b.box_key"""
    return _frame(run, "deleted", sql, ("deleted_at",))


def moved(run: Runner, f: Filters, earlier: str, later: str) -> pd.DataFrame:
    catalog = require_data(run)
    sql = None if not has_history(catalog, "boxes") else f"""
        WITH {_boxes_at(run, catalog, 'box_to', later, f)}, {_boxes_at(run, catalog, 'box_from', earlier)}
        SELECT t.box_key AS box_key, t.box_name AS box_name, t.pipeline_key AS pipeline_key,
               b.stage_name AS from_stage, t.stage_name AS to_stage
        FROM box_to AS t JOIN box_from AS b ON b.box_key = t.box_key
        WHERE t.stage_key IS DISTINCT FROM b.stage_key
        ORDER BY t.box_name, t.box_key"""
    return _frame(run, "moved", sql)


def owners(run: Runner, f: Filters, earlier: str, later: str) -> pd.DataFrame:
    """Boxes whose owner (first assignee) or assignees differ; ``*_assignees`` are the names (None:
    nobody)."""
    catalog = require_data(run)
    sql = None if not has_history(catalog, "boxes") else f"""
        WITH {_boxes_at(run, catalog, 'box_to', later, f)}, {_boxes_at(run, catalog, 'box_from', earlier)}
        SELECT t.box_key AS box_key, t.box_name AS box_name, t.pipeline_key AS pipeline_key,
               b.assignees AS from_assignees, t.assignees AS to_assignees
        FROM box_to AS t JOIN box_from AS b ON b.box_key = t.box_key
        WHERE t.owner_email IS DISTINCT FROM b.owner_email OR t.assignee_emails IS DISTINCT FROM b.assignee_emails
        ORDER BY t.box_name, t.box_key"""
    return _frame(run, "owners", sql)


def fields(run: Runner, f: Filters, earlier: str, later: str) -> pd.DataFrame:
    """Field values set, changed or cleared on boxes in both copies: ``old_*`` / ``new_*`` are the
    typed values (NULL: no value)."""
    catalog = require_data(run)
    if not has_history(catalog, "boxes", "box_field_values"):
        return _frame(run, "fields", None)
    v = lambda column: col(catalog, FIELDS_HISTORY, "v", column)
    raw = [v(column) for column in ("value_raw", "value_labels")]
    values = ", ".join(f"{v(column)} AS {column}" for column in VALUE_COLUMNS)
    texts = ", ".join(f"{json_as_text(expr)} AS raw_{i}" for i, expr in enumerate(raw))

    def state(name: str, run_id: str) -> str:
        return (f"{name} AS (SELECT v.box_key AS box_key, v.field_key AS field_key, {v('field_name')} AS field_name, "
                f"{values}, {texts} FROM {FIELDS_HISTORY} AS v WHERE {at_load(run_id, 'v')})")

    same = " AND ".join(f"o.{c} IS NOT DISTINCT FROM n.{c}"
                        for c in (*VALUE_COLUMNS, *(f"raw_{i}" for i in range(len(raw)))))
    sides = ", ".join(f"{alias}.{column} AS {side}_{column}"
                      for side, alias in (("old", "o"), ("new", "n")) for column in VALUE_COLUMNS)
    sql = f"""
        WITH {_boxes_at(run, catalog, 'box_to', later, f)}, {_boxes_at(run, catalog, 'box_from', earlier)},
        {state('fv_from', earlier)}, {state('fv_to', later)}
        SELECT t.box_key AS box_key, t.box_name AS box_name, t.pipeline_key AS pipeline_key,
               COALESCE(n.field_key, o.field_key) AS field_key, COALESCE(n.field_name, o.field_name) AS field_name,
               {sides}
        FROM fv_from AS o FULL JOIN fv_to AS n ON n.box_key = o.box_key AND n.field_key = o.field_key
        JOIN box_to AS t ON t.box_key = COALESCE(n.box_key, o.box_key)
        JOIN box_from AS b ON b.box_key = t.box_key
        WHERE NOT ({same})
        ORDER BY t.box_name, t.box_key, COALESCE(n.field_name, o.field_name)"""
    return _frame(run, "fields", sql, ("old_value_timestamp", "new_value_timestamp"))


def tasks_added(run: Runner, f: Filters, earlier: str, later: str) -> pd.DataFrame:
    catalog = require_data(run)
    if not has_history(catalog, "boxes", "box_tasks"):
        return _frame(run, "tasks_added", None)
    k = lambda column: col(catalog, TASKS_HISTORY, "n", column)
    sql = f"""
        WITH {_boxes_at(run, catalog, 'box_to', later, f)}
        SELECT t.box_key AS box_key, t.box_name AS box_name, t.pipeline_key AS pipeline_key,
               n.task_key AS task_key, {k('text')} AS task, {k('status')} AS status,
               {k('assignee_names')} AS assignees, {k('due_date')} AS due_date
        FROM {TASKS_HISTORY} AS n JOIN box_to AS t ON t.box_key = n.box_key
        WHERE {at_load(later, 'n')}
          AND NOT EXISTS (SELECT 1 FROM {TASKS_HISTORY} AS o WHERE o.task_key = n.task_key AND {at_load(earlier, 'o')})
        ORDER BY t.box_name, t.box_key, n.task_key"""
    return _frame(run, "tasks_added", sql, ("due_date",))


def tasks_completed(run: Runner, f: Filters, earlier: str, later: str) -> pd.DataFrame:
    catalog = require_data(run)
    if not has_history(catalog, "boxes", "box_tasks") or not catalog.has(TASKS_HISTORY, "status"):
        return _frame(run, "tasks_completed", None)
    k = lambda column: col(catalog, TASKS_HISTORY, "n", column)
    sql = f"""
        WITH {_boxes_at(run, catalog, 'box_to', later, f)}
        SELECT t.box_key AS box_key, t.box_name AS box_name, t.pipeline_key AS pipeline_key,
               n.task_key AS task_key, {k('text')} AS task, {k('assignee_names')} AS assignees,
               {k('last_status_change_date')} AS completed_at
        FROM {TASKS_HISTORY} AS n JOIN box_to AS t ON t.box_key = n.box_key
        WHERE {at_load(later, 'n')} AND n.status = '{DONE}'
          AND NOT EXISTS (SELECT 1 FROM {TASKS_HISTORY} AS o WHERE o.task_key = n.task_key
                            AND o.status = '{DONE}' AND {at_load(earlier, 'o')})
        ORDER BY t.box_name, t.box_key, n.task_key"""
    return _frame(run, "tasks_completed", sql, ("completed_at",))


LISTS: Final = (created, deleted, moved, owners, fields, tasks_added, tasks_completed)
"""Every list of the page, in page order."""
