"""History mode as the dashboard reads it: which loads the history covers, and the copy at one of them.

Every load keeps each version of every keyed record in ``crm.<table>_history`` (``valid_from`` /
``valid_to`` / ``deleted``: streak_warehouse/history_mode.py). The copy a load produced is the
versions current at that load's end, its ``load_history.finished_at`` (:func:`at_load`, by the
warehouse's own as-of rule). A copy written before history mode has no such tables
(:func:`has_history` is False) and the pages that need them say so instead of failing.

"A load" here is an ``ok`` row of ``load_history`` that ended once the history had begun (the first
``valid_from`` in ``boxes_history``): an older load of an upgraded copy has no copy to rebuild.
"""

from __future__ import annotations

from typing import Final

import pandas as pd

from dashboards.data.catalog import Catalog
from dashboards.data.connection import Runner, require_data
from dashboards.data.sql import empty, lit, utc
from streak_warehouse.history_mode import DELETED, HISTORY_SUFFIX, VALID_FROM, VALID_TO, as_of_predicate

BOXES_HISTORY: Final = "boxes" + HISTORY_SUFFIX
LOAD_COLUMNS: Final = ["run_id", "finished_at"]
NO_HISTORY: Final = (
    "This copy has no history tables (`crm.boxes_history` and the other `*_history` tables): they are "
    "written by every load since history mode. Run a load (`python pipelines/streak_full.py`); the next "
    "one after it gives two loads to compare."
)


def history_of(table: str) -> str:
    """The history table of a table of the copy: ``boxes`` -> ``boxes_history``."""
    return table + HISTORY_SUFFIX


def has_history(catalog: Catalog, *tables: str) -> bool:
    """True when ``load_history`` and the history table of each of ``tables`` exist."""
    return catalog.has("load_history", "run_id", "finished_at", "outcome") and all(
        catalog.has(history_of(table), VALID_FROM, VALID_TO, DELETED) for table in tables
    )


def loads_sql() -> str:
    """The loads the history covers, ``run_id, finished_at``, oldest first."""
    return (
        f"SELECT l.run_id AS run_id, l.finished_at AS finished_at FROM load_history AS l "
        f"WHERE l.outcome = 'ok' AND l.finished_at IS NOT NULL AND l.finished_at >= "
        f"COALESCE((SELECT MIN(h.{VALID_FROM}) FROM {BOXES_HISTORY} AS h), l.finished_at)"
    )


def history_loads(run: Runner) -> pd.DataFrame | None:
    """The loads whose copy the history holds (``run_id, finished_at`` in UTC, oldest first); None
    when the copy has no history tables."""
    catalog = require_data(run)
    if not has_history(catalog, "boxes"):
        return None
    frame = run.df(f"{loads_sql()} ORDER BY finished_at")
    if frame.empty:
        return empty(LOAD_COLUMNS)
    frame["run_id"] = frame["run_id"].astype(str)
    frame["finished_at"] = utc(frame["finished_at"])
    return frame[LOAD_COLUMNS].reset_index(drop=True)


def load_end(run_id: str) -> str:
    """SQL for the end of the ok load ``run_id`` (NULL when there is none, so nothing is current)."""
    return f"(SELECT MAX(e.finished_at) FROM load_history AS e WHERE e.run_id = {lit(run_id)} AND e.outcome = 'ok')"


def current_at(moment: str, alias: str) -> str:
    """The rows of a history table (``alias``) current at ``moment`` (SQL for a timestamp, e.g. a
    load's ``finished_at``): the warehouse's as-of rule."""
    return as_of_predicate(moment, alias)


def at_load(run_id: str, alias: str) -> str:
    """The rows of a history table (``alias``) that made up the copy load ``run_id`` produced."""
    return current_at(load_end(run_id), alias)
