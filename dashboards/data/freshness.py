"""How fresh the copy is: the last successful load, and how many there have been.

``load_history`` (written by the main job; it survives the DuckDB file swap and the Postgres schema
swap) is the only honest count of loads: ``_dlt_loads`` lives inside the replaced dataset and
keeps one row. Without ``load_history`` (a destination loaded by an older version) the count is
unknown (``loads is None``: the page hides it) and the last load time falls back to
``_dlt_loads``, which is right for the copy on hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

import pandas as pd

from dashboards.data.connection import Runner
from dashboards.data.sql import empty, lit, quote_identifier, utc

BOOKKEEPING_TABLES: Final = frozenset({"load_history", "wide_view_columns"})
"""Tables the main job keeps about its runs and views: not part of the account's copy."""


@dataclass(frozen=True)
class LastLoad:
    finished_at: datetime | None
    """When the last successful load finished (UTC), None when unknown."""
    loads: int | None
    """Successful loads so far (``load_history`` rows with outcome ``ok``); None when unknown."""


def last_load(run: Runner) -> LastLoad:
    """The freshness of the copy, from ``load_history`` when it exists."""
    catalog = run.catalog()
    if catalog.has("load_history", "outcome", "finished_at"):
        frame = run.df(
            "SELECT MAX(h.finished_at) AS finished_at, COUNT(*) AS loads "
            "FROM load_history AS h WHERE h.outcome = 'ok'"
        )
        return LastLoad(_moment(frame["finished_at"]), int(frame["loads"].iloc[0]))
    if catalog.has("_dlt_loads", "inserted_at", "status"):
        frame = run.df("SELECT MAX(l.inserted_at) AS finished_at FROM _dlt_loads AS l WHERE l.status = 0")
        return LastLoad(_moment(frame["finished_at"]), None)
    return LastLoad(None, None)


def _moment(series: pd.Series) -> datetime | None:
    value = utc(series).iloc[0]
    return None if pd.isna(value) else value.to_pydatetime()


def row_counts(run: Runner) -> pd.DataFrame:
    """Rows per loaded table (whole account, not filtered): ``table, rows``."""
    tables = [t for t in run.catalog().data_tables() if t not in BOOKKEEPING_TABLES]
    if not tables:
        return empty(["table", "rows"])
    sql = " UNION ALL ".join(
        f"SELECT {lit(t)} AS table_name, COUNT(*) AS row_count FROM {quote_identifier(t)}" for t in tables
    )
    frame = run.df(sql).rename(columns={"table_name": "table", "row_count": "rows"})
    frame["rows"] = frame["rows"].astype("int64")
    return frame.sort_values("table").reset_index(drop=True)
