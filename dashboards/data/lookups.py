"""Queries every page shares: pipelines, owners, stages, the creation-date range, the account's defaults."""

from __future__ import annotations

from datetime import date
from typing import Any, Final
from weakref import WeakKeyDictionary

import pandas as pd

from dashboards.data.connection import Runner, require_data
from dashboards.data.sql import col, empty, lit, utc
from streak_warehouse import account_defaults as defaults
from streak_warehouse.outcome_rules import StageRef

UNKNOWN_STAGE_ORDER: Final = 10_000
"""Sorts boxes whose stage is missing from ``stages`` after every real stage."""


_PIPELINES_READ: WeakKeyDictionary[Any, pd.DataFrame] = WeakKeyDictionary()
""":func:`pipelines` per open runner: every query that names pipelines (``with_pipeline_names``) asks,
and the answer cannot change while the connection is open (a page view's)."""


def pipelines(run: Runner) -> pd.DataFrame:
    """Pipelines that exist, with their box counts: ``pipeline_key, pipeline_name, boxes``."""
    known = _PIPELINES_READ.get(run)
    if known is None:
        known = _PIPELINES_READ[run] = _read_pipelines(run)
    return known.copy()


def _read_pipelines(run: Runner) -> pd.DataFrame:
    catalog = require_data(run)
    if catalog.has("pipelines", "pipeline_key"):
        name = col(catalog, "pipelines", "p", "name")
        sql = f"""
        SELECT p.pipeline_key AS pipeline_key, {name} AS pipeline_name, COUNT(b.box_key) AS boxes
        FROM pipelines AS p LEFT JOIN boxes AS b ON b.pipeline_key = p.pipeline_key
        GROUP BY p.pipeline_key, {name}
        UNION ALL
        SELECT b.pipeline_key AS pipeline_key, NULL AS pipeline_name, COUNT(*) AS boxes
        FROM boxes AS b
        WHERE b.pipeline_key NOT IN (SELECT p2.pipeline_key FROM pipelines AS p2)
        GROUP BY b.pipeline_key
        """
    else:
        sql = """
        SELECT b.pipeline_key AS pipeline_key, NULL AS pipeline_name, COUNT(*) AS boxes
        FROM boxes AS b GROUP BY b.pipeline_key
        """
    frame = run.df(sql)
    if frame.empty:
        return empty(["pipeline_key", "pipeline_name", "boxes"]).astype({"boxes": "int64"})
    frame["pipeline_key"] = frame["pipeline_key"].astype("object")
    frame["pipeline_name"] = frame["pipeline_name"].astype("object").where(
        frame["pipeline_name"].notna(), "Pipeline " + frame["pipeline_key"].astype(str)
    )
    frame["boxes"] = frame["boxes"].astype("int64")
    return frame.sort_values(["pipeline_name", "pipeline_key"]).reset_index(drop=True)


def pipeline_names(run: Runner) -> pd.Series:
    """pipeline_key -> pipeline name."""
    return pipelines(run).set_index("pipeline_key")["pipeline_name"]


def with_pipeline_names(run: Runner, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with a ``pipeline_name`` column from its ``pipeline_key``."""
    names = pipeline_names(run)
    frame["pipeline_name"] = frame["pipeline_key"].map(names).fillna(frame["pipeline_key"])
    return frame


def owners(run: Runner) -> pd.DataFrame:
    """Box owners (first assignee): ``owner_email, owner_name, boxes``; NULL email = unassigned."""
    catalog = require_data(run)
    email = col(catalog, "boxes", "b", "owner_email")
    name = col(catalog, "boxes", "b", "owner_name")
    frame = run.df(
        f"SELECT {email} AS owner_email, MAX({name}) AS owner_name, COUNT(*) AS boxes FROM boxes AS b GROUP BY {email}"
    )
    frame["boxes"] = frame["boxes"].astype("int64")
    return frame.sort_values(["owner_name", "owner_email"], na_position="last").reset_index(drop=True)


def creation_bounds(run: Runner) -> tuple[date | None, date | None]:
    """First and last box creation dates (UTC), for the date filter's default range."""
    catalog = require_data(run)
    created = col(catalog, "boxes", "b", "creation_timestamp")
    frame = run.df(f"SELECT MIN({created}) AS first_at, MAX({created}) AS last_at FROM boxes AS b")
    first, last = utc(frame["first_at"]).iloc[0], utc(frame["last_at"]).iloc[0]
    return (None if pd.isna(first) else first.date(), None if pd.isna(last) else last.date())


def stages(run: Runner, pipeline_key: str | None = None) -> pd.DataFrame:
    """Stages in display order: ``pipeline_key, stage_key, stage_name, stage_order, color, text_color``."""
    catalog = require_data(run)
    columns = ["pipeline_key", "stage_key", "stage_name", "stage_order", "color", "text_color"]
    if not catalog.has("stages", "pipeline_key", "stage_key"):
        return empty(columns)
    c = lambda column: col(catalog, "stages", "s", column)
    where = f"WHERE s.pipeline_key = {lit(pipeline_key)}" if pipeline_key is not None else ""
    frame = run.df(
        f"""
        SELECT s.pipeline_key AS pipeline_key, s.stage_key AS stage_key, {c('name')} AS stage_name,
               {c('stage_order')} AS stage_order, {c('background_color')} AS color,
               {c('foreground_color')} AS text_color
        FROM stages AS s {where}
        """
    )
    if frame.empty:
        return empty(columns)
    frame = frame.astype({"stage_name": "object", "stage_key": "object", "pipeline_key": "object"})
    frame["stage_name"] = frame["stage_name"].where(frame["stage_name"].notna(), frame["stage_key"])
    frame["stage_order"] = pd.to_numeric(frame["stage_order"], errors="coerce").fillna(UNKNOWN_STAGE_ORDER - 1)
    return frame.sort_values(["pipeline_key", "stage_order", "stage_key"]).reset_index(drop=True)


def stage_names(run: Runner) -> list[str]:
    """Every stage name in the account (for the closed-stages picker), first spelling of each."""
    catalog = require_data(run)
    found: dict[str, str] = {}
    if catalog.has("stages", "name"):
        for name in run.df("SELECT DISTINCT s.name AS name FROM stages AS s")["name"].dropna():
            found.setdefault(str(name).strip().lower(), str(name).strip())
    if catalog.has("boxes", "stage_name"):
        for name in run.df("SELECT DISTINCT b.stage_name AS name FROM boxes AS b")["name"].dropna():
            found.setdefault(str(name).strip().lower(), str(name).strip())
    return sorted((n for k, n in found.items() if k), key=str.lower)


def stage_refs(run: Runner) -> list[StageRef]:
    """Every stage a closed-stage name can mean: Streak's stages, and those only boxes or the stage
    history still name (a deleted stage), each with its pipeline's name (for ``Pipeline/Stage``)."""
    catalog = require_data(run)
    parts = []
    for table, name_column in (("stages", "name"), ("boxes", "stage_name"), ("box_stage_history", "stage_name")):
        if catalog.has(table, "pipeline_key", "stage_key"):
            name = col(catalog, table, "t", name_column)
            parts.append(f"SELECT DISTINCT t.pipeline_key AS pipeline_key, t.stage_key AS stage_key, {name} AS stage_name "
                         f"FROM {table} AS t WHERE t.stage_key IS NOT NULL")
    if not parts:
        return []
    names: dict[Any, Any] = {}
    if catalog.has("pipelines", "pipeline_key", "name"):
        names = dict(run.df("SELECT p.pipeline_key AS k, p.name AS n FROM pipelines AS p").itertuples(index=False))
    refs: dict[tuple[str, str], StageRef] = {}
    for pipeline_key, stage_key, stage_name in run.df(" UNION ALL ".join(parts)).itertuples(index=False):
        key = (str(pipeline_key), str(stage_key))
        if key not in refs or refs[key].stage_name is None:
            pipeline_name = names.get(pipeline_key)
            refs[key] = StageRef(key[0], None if pd.isna(pipeline_name) else str(pipeline_name), key[1],
                                 None if pd.isna(stage_name) else str(stage_name))
    return [refs[key] for key in sorted(refs)]


def account_defaults(run: Runner) -> dict[str, Any]:
    """Settings the copy's account comes with (the demo's closed stages): {configuration key: value};
    {} for a user's account or an older copy (streak_warehouse/account_defaults.py)."""
    catalog = require_data(run)
    if not catalog.has(defaults.VIEW, defaults.SETTING, defaults.VALUE_JSON):
        return {}
    frame = run.df(f"SELECT d.{defaults.SETTING} AS setting, d.{defaults.VALUE_JSON} AS value_json "
                   f"FROM {defaults.VIEW} AS d")
    return defaults.parse_defaults(zip(frame["setting"], frame["value_json"]))
