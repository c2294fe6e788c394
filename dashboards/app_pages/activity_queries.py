"""Queries of the Activity page."""

from __future__ import annotations

from typing import Final, Literal

import pandas as pd

from dashboards.data.connection import Runner, require_data
from dashboards.data.filters import Filters, boxes_cte, owner_label
from dashboards.data.sql import col, empty, lit, quote_identifier, utc

ACTIVITY_KINDS: Final = ("Emails", "Comments", "Meetings", "Call logs")
"""Emails are email threads dated by their last email (``box_threads.last_email_timestamp``)."""


def activity(run: Runner, f: Filters, grain: Literal["day", "week", "month"] = "week") -> pd.DataFrame:
    """Activity on the filtered boxes per period, kind and box owner: ``period, kind, owner, events``."""
    catalog = require_data(run)
    if grain not in ("day", "week", "month"):
        raise ValueError(f"unknown grain {grain!r}")
    selects: list[str] = []

    def add(table: str, ts_column: str, kind_sql: str, kind_is_constant: bool = True) -> None:
        if not catalog.has(table, "box_key", ts_column):
            return
        ts = f"x.{quote_identifier(ts_column)}"
        period = f"DATE_TRUNC({lit(grain)}, {ts})"
        owner = owner_label("fb.owner_name")
        # Postgres rejects a constant in GROUP BY: group by the kind only when it is an expression.
        group = [period, owner] + ([] if kind_is_constant else [kind_sql])
        selects.append(
            f"SELECT {period} AS period, {kind_sql} AS kind, {owner} AS owner, COUNT(*) AS events "
            f"FROM {table} AS x JOIN fb ON fb.box_key = x.box_key "
            f"WHERE {ts} IS NOT NULL GROUP BY {', '.join(group)}"
        )

    add("box_threads", "last_email_timestamp", lit("Emails"))
    add("box_comments", "timestamp", lit("Comments"))
    meeting_kind = col(catalog, "box_meetings", "x", "meeting_type")
    add(
        "box_meetings", "start_timestamp",
        f"CASE WHEN {meeting_kind} = 'CALL_LOG' THEN 'Call logs' ELSE 'Meetings' END", kind_is_constant=False,
    )
    columns = ["period", "kind", "owner", "events"]
    if not selects:
        return empty(columns)
    frame = run.df(f"WITH {boxes_cte(f, catalog)} " + " UNION ALL ".join(selects))
    if frame.empty:
        return empty(columns)
    frame["period"] = utc(frame["period"])
    frame["events"] = frame["events"].astype("int64")
    return frame[columns].sort_values(["period", "kind", "owner"]).reset_index(drop=True)
