"""Queries of the Activity page; the Overview's activity cards count with :func:`activity_totals` too.

What each kind of activity is, in one place (:data:`ACTIVITY_KINDS`, :func:`_kinds`), so a name
means the same on every page: **Email threads** are ``box_threads`` rows (dated by their last
email), **Comments** ``box_comments`` rows, **Meetings** and **Call logs** the ``box_meetings``
rows, a call log being ``meeting_type = 'CALL_LOG'`` and a meeting any other row.
"""

from __future__ import annotations

from typing import Final, Literal, NamedTuple

import pandas as pd

from dashboards.data.catalog import Catalog
from dashboards.data.connection import Runner, require_data
from dashboards.data.filters import Filters, boxes_cte, owner_label
from dashboards.data.sql import col, empty, lit, quote_identifier, utc

ACTIVITY_KINDS: Final = ("Email threads", "Comments", "Meetings", "Call logs")


class _Kind(NamedTuple):
    """Where one or more kinds of activity come from: the table, its date, and the kind of a row."""

    table: str
    ts_column: str
    kind_sql: str
    """SQL naming the kind of a row (alias ``x``): a constant, or an expression over the row."""
    kind_is_constant: bool


def _kinds(catalog: Catalog) -> list[_Kind]:
    """The activity tables of this destination (absent ones left out) and the kind of each row."""
    meeting_type = col(catalog, "box_meetings", "x", "meeting_type")
    kinds = [
        _Kind("box_threads", "last_email_timestamp", lit("Email threads"), True),
        _Kind("box_comments", "timestamp", lit("Comments"), True),
        _Kind("box_meetings", "start_timestamp",
              f"CASE WHEN {meeting_type} = 'CALL_LOG' THEN {lit('Call logs')} ELSE {lit('Meetings')} END", False),
    ]
    return [k for k in kinds if catalog.has(k.table, "box_key")]


def activity_totals(run: Runner, f: Filters) -> dict[str, int]:
    """Rows of each kind on the filtered boxes, dated or not: every kind of :data:`ACTIVITY_KINDS`."""
    catalog = require_data(run)
    selects = [
        f"SELECT {k.kind_sql} AS kind, COUNT(*) AS events FROM {k.table} AS x JOIN fb ON fb.box_key = x.box_key"
        + ("" if k.kind_is_constant else f" GROUP BY {k.kind_sql}")
        for k in _kinds(catalog)
    ]
    totals = dict.fromkeys(ACTIVITY_KINDS, 0)
    if selects:
        frame = run.df(f"WITH {boxes_cte(f, catalog)} " + " UNION ALL ".join(selects))
        for kind, events in zip(frame["kind"], frame["events"]):
            totals[str(kind)] += int(events)
    return totals


def activity(run: Runner, f: Filters, grain: Literal["day", "week", "month"] = "week") -> pd.DataFrame:
    """Dated activity on the filtered boxes per period, kind and box owner: ``period, kind, owner, events``."""
    catalog = require_data(run)
    if grain not in ("day", "week", "month"):
        raise ValueError(f"unknown grain {grain!r}")
    selects: list[str] = []
    for k in _kinds(catalog):
        if not catalog.has(k.table, k.ts_column):
            continue
        ts = f"x.{quote_identifier(k.ts_column)}"
        period = f"DATE_TRUNC({lit(grain)}, {ts})"
        owner = owner_label("fb.owner_name")
        # Postgres rejects a constant in GROUP BY: group by the kind only when it is an expression.
        group = [period, owner] + ([] if k.kind_is_constant else [k.kind_sql])
        selects.append(
            f"SELECT {period} AS period, {k.kind_sql} AS kind, {owner} AS owner, COUNT(*) AS events "
            f"FROM {k.table} AS x JOIN fb ON fb.box_key = x.box_key "
            f"WHERE {ts} IS NOT NULL GROUP BY {', '.join(group)}"
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
