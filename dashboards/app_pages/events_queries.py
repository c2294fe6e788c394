"""Queries of the Events page, over ``crm.events`` (custom events, Streak webhooks, derived events).

Which events count (one rule, in :func:`_events_cte`; docs/dashboard.md repeats it):

* an event tied to a box counts when that box passes the sidebar filters;
* an event with no box, or whose box is no longer in the account, has no owner or creation date:
  it counts only while no owner or creation-date filter is set, and, with a pipeline chosen, only
  when the event itself carries that pipeline.

An event's pipeline is its own ``pipeline_key``, else its box's. Times are the event's
``timestamp`` (the first one for an event updated through its ``distinct_id``). Sums add only
property values that are JSON numbers; text is never parsed (the page says how many were not).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final, Literal

import pandas as pd

from dashboards.data.catalog import Catalog
from dashboards.data.connection import Runner, require_data
from dashboards.data.filters import Filters, boxes_cte
from dashboards.data.sql import (
    col,
    empty,
    json_as_text,
    json_is_object,
    json_keys,
    json_number,
    json_number_at,
    json_text,
    lit,
    quote_identifier,
    sum_numbers,
    utc,
)

EVENTS: Final = "events"
EVENT_COLUMNS: Final = ("event_key", "event_name", "timestamp")
NO_BOX: Final = "(no box)"
"""Owner label of events not tied to a box in the account."""
UNASSIGNED: Final = "Unassigned"
Grain = Literal["day", "week", "month"]


@dataclass(frozen=True)
class Metric:
    """The metric builder's choice: which events, and count them or sum a numeric property."""

    event_name: str
    pipeline_key: str | None = None
    owner: str | None = None
    """An owner label as :func:`event_dimensions` gives it (a name, "Unassigned" or "(no box)")."""
    property_key: str | None = None
    property_value: str | None = None
    sum_property: str | None = None
    """None = count events; else sum this property's numeric values."""


def has_events(run: Runner) -> bool:
    """``crm.events`` exists with its columns and holds an event (every main-job run keeps the table,
    empty until the first events are loaded)."""
    if not require_data(run).has(EVENTS, *EVENT_COLUMNS):
        return False
    return _int(run.df(f"SELECT COUNT(*) AS n FROM (SELECT 1 AS one FROM {EVENTS} LIMIT 1) AS t"), "n") > 0


def _events_cte(f: Filters, catalog: Catalog) -> str:
    """``fb`` then ``ev``: the events in scope with their pipeline, owner label and properties."""
    box_filters = bool(f.owners) or f.created_from is not None or f.created_to is not None
    e_box, e_pipeline = col(catalog, EVENTS, "e", "box_key"), col(catalog, EVENTS, "e", "pipeline_key")
    unboxed = "FALSE" if box_filters else (
        "TRUE" if f.pipeline_key is None else f"{e_pipeline} = {lit(f.pipeline_key)}"
    )
    has_box = "bx.box_key IS NOT NULL"
    return f"""WITH {boxes_cte(f, catalog)},
ev AS (
  SELECT e.event_key AS event_key, e.event_name AS event_name, e.{quote_identifier('timestamp')} AS ts,
         {e_box} AS box_key, fb.box_name AS box_name, COALESCE({e_pipeline}, fb.pipeline_key) AS pipeline_key,
         CASE WHEN fb.box_key IS NULL THEN {lit(NO_BOX)} ELSE COALESCE(fb.owner_name, {lit(UNASSIGNED)}) END AS owner,
         {col(catalog, EVENTS, 'e', 'source')} AS source, {col(catalog, EVENTS, 'e', 'properties')} AS properties
  FROM {EVENTS} AS e
  LEFT JOIN fb ON fb.box_key = {e_box}
  LEFT JOIN (SELECT b.box_key AS box_key FROM boxes AS b) AS bx ON bx.box_key = {e_box}
  WHERE e.{quote_identifier('timestamp')} IS NOT NULL
    AND (fb.box_key IS NOT NULL OR (NOT ({has_box}) AND {unboxed}))
)"""


def _int(frame: pd.DataFrame, name: str) -> int:
    value = frame[name].iloc[0] if not frame.empty else None
    return 0 if value is None or pd.isna(value) else int(value)


def events_summary(run: Runner, f: Filters) -> dict[str, Any]:
    """Headline figures: events, distinct names, events tied to a box, the latest event time, and
    events per ``source`` (``derived`` from each load, ``webhook``, ``api``), most first."""
    catalog = require_data(run)
    summary: dict[str, Any] = {"events": 0, "names": 0, "with_box": 0, "latest": None, "by_source": {}}
    if not catalog.has(EVENTS, *EVENT_COLUMNS):
        return summary
    # one pass: per source and name, summed here (the names are the distinct names of every group)
    frame = run.df(
        f"""{_events_cte(f, catalog)}
        SELECT COALESCE(ev.source, '') AS source, ev.event_name AS event_name, COUNT(*) AS events,
               COUNT(CASE WHEN ev.owner <> {lit(NO_BOX)} THEN 1 END) AS with_box, MAX(ev.ts) AS latest
        FROM ev GROUP BY COALESCE(ev.source, ''), ev.event_name"""
    )
    if frame.empty:
        return summary
    sources = frame.groupby("source", as_index=False)["events"].sum()
    summary["by_source"] = {str(r.source): int(r.events) for r in sources.sort_values(
        ["events", "source"], ascending=[False, True]).itertuples()}
    summary["events"] = int(frame["events"].sum())
    summary["names"] = int(frame["event_name"].nunique())
    summary["with_box"] = int(frame["with_box"].sum())
    latest = utc(frame["latest"]).max()
    summary["latest"] = None if pd.isna(latest) else latest
    return summary


def events_over_time(run: Runner, f: Filters, grain: Grain) -> pd.DataFrame:
    """Events per period and name: ``period, event_name, events``."""
    catalog = require_data(run)
    columns = ["period", "event_name", "events"]
    if grain not in ("day", "week", "month"):
        raise ValueError(f"unknown grain {grain!r}")
    if not catalog.has(EVENTS, *EVENT_COLUMNS):
        return empty(columns)
    period = f"DATE_TRUNC({lit(grain)}, ev.ts)"
    frame = run.df(
        f"""{_events_cte(f, catalog)}
        SELECT {period} AS period, ev.event_name AS event_name, COUNT(*) AS events
        FROM ev GROUP BY {period}, ev.event_name"""
    )
    if frame.empty:
        return empty(columns)
    frame["period"] = utc(frame["period"])
    frame["event_name"] = frame["event_name"].astype(str)
    frame["events"] = frame["events"].astype("int64")
    return frame[columns].sort_values(["period", "event_name"]).reset_index(drop=True)


def event_dimensions(run: Runner, f: Filters, event_name: str) -> pd.DataFrame:
    """Events of one name per pipeline and owner label: the metric builder's choices."""
    catalog = require_data(run)
    columns = ["pipeline_key", "owner", "events"]
    if not catalog.has(EVENTS, *EVENT_COLUMNS):
        return empty(columns)
    frame = run.df(
        f"""{_events_cte(f, catalog)}
        SELECT ev.pipeline_key AS pipeline_key, ev.owner AS owner, COUNT(*) AS events
        FROM ev WHERE ev.event_name = {lit(event_name)} GROUP BY ev.pipeline_key, ev.owner"""
    )
    return frame[columns] if not frame.empty else empty(columns)


def property_keys(run: Runner, f: Filters, event_name: str) -> pd.DataFrame:
    """Property names of one event name, with how many events carry each and in how many it is a
    JSON number (only those can be summed): ``key, events, numbers``."""
    catalog = require_data(run)
    columns = ["key", "events", "numbers"]
    if not catalog.has(EVENTS, *EVENT_COLUMNS, "properties"):
        return empty(columns)
    frame = run.df(
        f"""{_events_cte(f, catalog)},
        k AS (SELECT {json_keys(run.dialect, 'ev.properties')} AS key, ev.properties AS properties FROM ev
              WHERE ev.event_name = {lit(event_name)} AND ev.properties IS NOT NULL
                AND {json_is_object(run.dialect, 'ev.properties')})
        SELECT k.key AS key, COUNT(*) AS events,
               COUNT({json_number_at(run.dialect, 'k.properties', 'k.key')}) AS numbers
        FROM k GROUP BY k.key"""
    )
    if frame.empty:
        return empty(columns)
    frame["key"] = frame["key"].astype(str)
    frame[["events", "numbers"]] = frame[["events", "numbers"]].astype("int64")
    return frame.sort_values(["events", "key"], ascending=[False, True]).reset_index(drop=True)[columns]


def property_values(run: Runner, f: Filters, event_name: str, key: str, limit: int = 200) -> pd.DataFrame:
    """The most frequent values (as text) of one property of one event name: ``value, events``."""
    catalog = require_data(run)
    columns = ["value", "events"]
    if not catalog.has(EVENTS, *EVENT_COLUMNS, "properties"):
        return empty(columns)
    value = json_text(run.dialect, "ev.properties", key)
    frame = run.df(
        f"""{_events_cte(f, catalog)}
        SELECT {value} AS value, COUNT(*) AS events FROM ev
        WHERE ev.event_name = {lit(event_name)} AND {value} IS NOT NULL
        GROUP BY {value} ORDER BY COUNT(*) DESC, {value} LIMIT {int(limit)}"""
    )
    return frame[columns] if not frame.empty else empty(columns)


def _metric_where(run: Runner, m: Metric) -> str:
    clauses = [f"ev.event_name = {lit(m.event_name)}"]
    if m.pipeline_key is not None:
        clauses.append(f"ev.pipeline_key = {lit(m.pipeline_key)}")
    if m.owner is not None:
        clauses.append(f"ev.owner = {lit(m.owner)}")
    if m.property_key is not None and m.property_value is not None:
        clauses.append(f"{json_text(run.dialect, 'ev.properties', m.property_key)} = {lit(m.property_value)}")
    return " AND ".join(clauses)


def metric(run: Runner, f: Filters, m: Metric, grain: Grain) -> dict[str, Any]:
    """The built metric: ``events`` matched, ``value`` (count, or sum of the numeric values),
    ``not_numeric`` (matched events whose property is absent or not a number), and ``series``
    (``period, value, events`` per ``grain``). A sum past the largest double is infinite."""
    catalog = require_data(run)
    result: dict[str, Any] = {"events": 0, "value": 0.0, "not_numeric": 0, "series": empty(["period", "value", "events"])}
    if grain not in ("day", "week", "month"):
        raise ValueError(f"unknown grain {grain!r}")
    if not catalog.has(EVENTS, *EVENT_COLUMNS):
        return result
    number = json_number(run.dialect, "ev.properties", m.sum_property) if m.sum_property is not None else "NULL"
    value = ("CAST(COUNT(*) AS DOUBLE PRECISION)" if m.sum_property is None
             else f"COALESCE({sum_numbers(run.dialect, number)}, 0)")
    period = f"DATE_TRUNC({lit(grain)}, ev.ts)"
    frame = run.df(
        f"""{_events_cte(f, catalog)}
        SELECT {period} AS period, COUNT(*) AS events, {value} AS value,
               COUNT(*) - COUNT({number}) AS not_numeric
        FROM ev WHERE {_metric_where(run, m)} GROUP BY {period}"""
    )
    if frame.empty:
        return result
    frame["period"] = utc(frame["period"])
    frame["value"] = frame["value"].map(float).astype("float64")  # Postgres sums come as Decimal
    frame["events"] = frame["events"].astype("int64")
    result["events"] = int(frame["events"].sum())
    result["value"] = float(frame["value"].sum())
    result["not_numeric"] = int(frame["not_numeric"].sum()) if m.sum_property is not None else 0
    result["series"] = frame[["period", "value", "events"]].sort_values("period").reset_index(drop=True)
    return result


def latest_events(run: Runner, f: Filters, limit: int = 100) -> pd.DataFrame:
    """The most recent events in scope with their properties (one ``key: value`` line each)."""
    catalog = require_data(run)
    columns = ["timestamp", "event_name", "box_name", "pipeline_key", "owner", "source", "properties"]
    if not catalog.has(EVENTS, *EVENT_COLUMNS):
        return empty(columns)
    frame = run.df(
        f"""{_events_cte(f, catalog)}
        SELECT ev.ts AS {quote_identifier('timestamp')}, ev.event_name AS event_name, ev.box_name AS box_name,
               ev.pipeline_key AS pipeline_key, ev.owner AS owner, ev.source AS source,
               {json_as_text('ev.properties')} AS properties
        FROM ev ORDER BY ev.ts DESC, ev.event_key LIMIT {int(limit)}"""
    )
    if frame.empty:
        return empty(columns)
    frame["timestamp"] = utc(frame["timestamp"])
    frame["properties"] = frame["properties"].map(format_properties)
    return frame[columns].reset_index(drop=True)


def is_identifier(key: str) -> bool:
    """A property naming another object (``object_key``, ``box_key``, ``stageKey``): an opaque id
    that a person skips, and often long enough to push everything else out of view."""
    return key.lower() == "key" or key.endswith(("_key", "Key"))


def format_properties(text: Any) -> str:
    """``{"object_key": "agx…", "currency": "EUR", "amount": 12000}`` as
    ``amount: 12000 · currency: EUR · object_key: agx…``: plain text, the properties a person reads
    first (sorted), the identifiers (:func:`is_identifier`) last (sorted)."""
    if text is None or (isinstance(text, float) and pd.isna(text)):
        return ""
    try:
        value = json.loads(text) if isinstance(text, str) else text
    except ValueError:
        return str(text)
    if not isinstance(value, dict):
        return str(value)
    # Sorted: Postgres's jsonb keeps its own key order, DuckDB the order sent.
    return " · ".join(f"{k}: {value[k]}" for k in sorted(value, key=lambda k: (is_identifier(k), k)))
