"""Queries of the Tasks page.

Counting rule for "tasks per assignee" (the same here, on the page and in the README): each task
counts once for each of its assignees in ``box_task_assignees`` (so the bars may add up to more
than the number of tasks), and a task with no row there counts once under "Unassigned".
Assignees are told apart by ``user_key``, else lower-case ``email``, else ``name``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

import pandas as pd

from dashboards.data.connection import Runner, require_data
from dashboards.data.filters import UNASSIGNED_LABEL, Filters, boxes_cte, owner_label
from dashboards.data.lookups import with_pipeline_names
from dashboards.data.sql import col, empty, utc

BRIDGE: Final = "box_task_assignees"
COUNTING_RULE: Final = (
    "A task with several assignees counts once for each of them, so the bars can add up to more "
    "than the tasks; a task with no assignee counts under Unassigned."
)
TASK_COLUMNS = ["task_key", "text", "due_date", "assignee_names", "box_key", "box_name", "pipeline_name",
                "stage_name", "box_owner"]


def open_tasks(run: Runner, f: Filters) -> pd.DataFrame:
    """Every NOT_DONE task on the filtered boxes, with its box's name, pipeline and stage."""
    catalog = require_data(run)
    if not catalog.has("box_tasks", "box_key", "status"):
        return empty(TASK_COLUMNS)
    c = lambda column: col(catalog, "box_tasks", "t", column)
    frame = run.df(
        f"""
        WITH {boxes_cte(f, catalog)}
        SELECT {c('task_key')} AS task_key, {c('text')} AS text, {c('due_date')} AS due_date,
               {c('assignee_names')} AS assignee_names,
               fb.box_key AS box_key, fb.box_name AS box_name, fb.pipeline_key AS pipeline_key,
               fb.box_stage_name AS stage_name, {owner_label('fb.owner_name')} AS box_owner
        FROM box_tasks AS t JOIN fb ON fb.box_key = t.box_key
        WHERE t.status = 'NOT_DONE'
        """
    )
    if frame.empty:
        return empty(TASK_COLUMNS)
    frame["due_date"] = utc(frame["due_date"])
    frame = with_pipeline_names(run, frame)
    return frame[TASK_COLUMNS].sort_values("due_date", na_position="last").reset_index(drop=True)


def open_task_assignees(run: Runner, f: Filters) -> pd.DataFrame | None:
    """(task, assignee) pairs of the open tasks: ``task_key, assignee_id, assignee``.

    One row per assignee of each task in ``box_task_assignees``, one "Unassigned" row for a task
    without any. None when the destination has no bridge table (loaded by an older version).
    """
    catalog = require_data(run)
    columns = ["task_key", "assignee_id", "assignee"]
    if not catalog.has(BRIDGE, "task_key"):
        return None
    if not catalog.has("box_tasks", "box_key", "status", "task_key"):
        return empty(columns)
    a = lambda column: col(catalog, BRIDGE, "a", column)
    # The loader's own assignee id when the table has it (the contract's rule, spelled out otherwise).
    who = a("assignee_id") if catalog.has(BRIDGE, "assignee_id") else f"COALESCE({a('user_key')}, LOWER({a('email')}), {a('name')})"
    frame = run.df(
        f"""
        WITH {boxes_cte(f, catalog)}
        SELECT t.task_key AS task_key,
               {who} AS assignee_id,
               COALESCE({a('name')}, {a('email')}, {a('user_key')}) AS assignee
        FROM box_tasks AS t JOIN fb ON fb.box_key = t.box_key
        LEFT JOIN {BRIDGE} AS a ON a.task_key = t.task_key
        WHERE t.status = 'NOT_DONE'
        """
    )
    if frame.empty:
        return empty(columns)
    frame = frame.astype({"assignee_id": "object", "assignee": "object"})
    missing = frame["assignee_id"].isna()
    frame.loc[missing, "assignee_id"] = ""
    frame.loc[missing, "assignee"] = UNASSIGNED_LABEL
    frame = frame.drop_duplicates(["task_key", "assignee_id"])
    return frame[columns].reset_index(drop=True)


def task_status_counts(run: Runner, f: Filters) -> dict[str, int]:
    """Tasks on the filtered boxes by status (``DONE``, ``NOT_DONE``, ...)."""
    catalog = require_data(run)
    if not catalog.has("box_tasks", "box_key", "status"):
        return {}
    frame = run.df(
        f"""
        WITH {boxes_cte(f, catalog)}
        SELECT t.status AS status, COUNT(*) AS tasks
        FROM box_tasks AS t JOIN fb ON fb.box_key = t.box_key
        GROUP BY t.status
        """
    )
    return {str(row.status): int(row.tasks) for row in frame.itertuples()}


def classify_tasks(tasks: pd.DataFrame, now: datetime, due_soon_days: int) -> pd.DataFrame:
    """Adds ``state`` (Overdue / Due soon / Later / No due date) and ``days_overdue``.

    Overdue = due before ``now``; due soon = due within ``due_soon_days`` from ``now``.
    """
    result = tasks.copy()
    now_ts = pd.Timestamp(now)
    now_ts = now_ts.tz_convert("UTC") if now_ts.tzinfo else now_ts.tz_localize("UTC")
    due = utc(result["due_date"]) if not result.empty else pd.Series(dtype="datetime64[us, UTC]")
    soon_limit = now_ts + pd.Timedelta(days=due_soon_days)
    state = pd.Series("Later", index=result.index, dtype="object")
    state[due.isna()] = "No due date"
    state[due < now_ts] = "Overdue"
    state[(due >= now_ts) & (due < soon_limit)] = "Due soon"
    result["state"] = state
    result["days_overdue"] = ((now_ts - due).dt.total_seconds() / 86400.0).where(due < now_ts)
    return result


def tasks_by_assignee(classified: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """Overdue and due-soon tasks per assignee (the counting rule above): ``assignee, state, tasks``."""
    columns = ["assignee", "state", "tasks"]
    focus = classified.loc[classified["state"].isin(["Overdue", "Due soon"]), ["task_key", "state"]]
    if focus.empty or pairs.empty:
        return empty(columns)
    joined = focus.merge(pairs, on="task_key", how="left")
    unmatched = joined["assignee_id"].isna()
    joined.loc[unmatched, "assignee_id"] = ""
    joined.loc[unmatched, "assignee"] = UNASSIGNED_LABEL
    # One label per assignee id (the first name seen), so "Ann" and "ann@x" never split a person.
    labels = joined.groupby("assignee_id")["assignee"].first().astype(str)
    clash = labels.duplicated(keep=False)
    labels = labels.where(~clash, labels + " (" + labels.index.astype(str) + ")")
    counts = joined.groupby(["assignee_id", "state"])["task_key"].nunique().rename("tasks").reset_index()
    counts["assignee"] = counts["assignee_id"].map(labels)
    return counts[columns]
