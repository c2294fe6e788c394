"""``box_stage_history`` and ``stage_transitions`` in the destination (issue 13): the glue between the
pure rules (``stage_history.py``), the source's call rule (``streak_source/history_calls.py``) and the
whole-dataset swap (``persistent.py``).

A run:

1. before extracting, reads from the LIVE copy what the previous complete load knew
   (:func:`read_previous`): ``crm.boxes.box_key, last_stage_change_timestamp`` (the source's
   ``previous_stage_changes``; None when there is no previous complete load, so a first run reads no
   per-box newsfeed) and every ``crm.box_stage_history`` row;
2. after the fresh copy is loaded, reads this run's evidence from the FRESH copy (``boxes``,
   ``stages``, ``box_newsfeed``) and computes the complete new history (:func:`new_history`);
3. hands both tables to ``persistent.py`` as whole-table contents of the fresh file/schema, so they
   are published by the same swap as the copy. A failed or killed run publishes nothing, so the
   live history is untouched; a fresh dlt working dir changes nothing (everything is read from the
   destination).

Both tables are declared kept ``whole`` tables (``kept_tables.py``): when a run gives no contents for them
(e.g. history could not be computed on a destination without SQL), the live rows are carried as
they are, never dropped.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from streak_warehouse.layout_version import older_layout, written_layout_version
from streak_warehouse.kept_tables import BOX_STAGE_HISTORY, STAGE_TRANSITIONS
from streak_warehouse.persistent import read_live_duckdb_file, read_rows
from streak_warehouse.sql import columns_of, qualified
from streak_warehouse.stage_history import (
    BoxSnapshot,
    RunObservation,
    StageChangeEvent,
    StageInfo,
    StageStay,
    stage_transitions,
    to_ms,
    update_history,
)

Execute = Callable[[str], Sequence[Sequence[Any]]]
"""Runs one SQL statement, returns its rows (a DuckDB connection's or a dlt sql client's)."""


@dataclass
class PreviousHistory:
    """What the live copy knew before this run."""

    stage_changes: dict[str, Any] | None = None
    """box key -> ``last_stage_change_timestamp``; None: no previous complete load (no ``crm.boxes``)."""
    stays: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class HistoryResult:
    """This run's new history, as rows, and what the summary says about it."""

    stays: list[dict[str, Any]]
    transitions: list[dict[str, Any]]
    added: int = 0
    inexact: int = 0

    def table_rows(self) -> dict[str, list[dict[str, Any]]]:
        return {BOX_STAGE_HISTORY.name: self.stays, STAGE_TRANSITIONS.name: self.transitions}


def read_previous(execute: Execute, dataset: str) -> PreviousHistory:
    """The previous complete load's boxes map and stage history, from ``dataset`` (the live copy)."""
    if "last_stage_change_timestamp" not in columns_of(execute, dataset, "boxes"):
        return PreviousHistory()
    changes = {str(key): ts for key, ts in execute(
        f"SELECT box_key, last_stage_change_timestamp FROM {qualified(dataset, 'boxes')} WHERE box_key IS NOT NULL")}
    # a copy written by an older layout is read through the declared migrations (renamed columns)
    stays = read_rows(execute, BOX_STAGE_HISTORY, dataset, older_layout(written_layout_version(execute, dataset)))
    return PreviousHistory(changes, stays)


def read_previous_duckdb(path: Path, dataset: str) -> PreviousHistory:
    """:func:`read_previous` of a DuckDB file, read-only; nothing when the file does not exist yet."""
    previous = read_live_duckdb_file(path, "the stage history", lambda execute: read_previous(execute, dataset))
    return previous if previous is not None else PreviousHistory()


def _snapshots(execute: Execute, dataset: str) -> list[BoxSnapshot]:
    present = columns_of(execute, dataset, "boxes")
    if not present:
        return []
    wanted = ("box_key", "pipeline_key", "stage_key", "last_stage_change_timestamp", "creation_timestamp",
              "last_updated_timestamp", "stage_history_entries")
    select = ", ".join(f'"{c}"' if c in present else "NULL" for c in wanted)
    out = []
    for key, pipeline, stage, changed, created, updated, entries in execute(
            f"SELECT {select} FROM {qualified(dataset, 'boxes')} WHERE box_key IS NOT NULL AND pipeline_key IS NOT NULL"):
        if isinstance(entries, str):
            entries = json.loads(entries)
        out.append(BoxSnapshot(
            box_key=str(key), pipeline_key=str(pipeline), stage_key=None if stage is None else str(stage),
            last_stage_change_ms=to_ms(changed), creation_ms=to_ms(created), last_updated_ms=to_ms(updated),
            stage_history_entries=tuple(e for e in entries or () if isinstance(e, Mapping)),
        ))
    return out


def _stages(execute: Execute, dataset: str) -> dict[str, dict[str, StageInfo]]:
    present = columns_of(execute, dataset, "stages")
    if not {"pipeline_key", "stage_key", "name"} <= present:
        return {}
    order = '"stage_order"' if "stage_order" in present else "NULL"
    stages: dict[str, dict[str, StageInfo]] = {}
    for pipeline, stage, name, position in execute(
            f'SELECT pipeline_key, stage_key, "name", {order} FROM {qualified(dataset, "stages")}'):
        stages.setdefault(str(pipeline), {})[str(stage)] = StageInfo(name, -1 if position is None else int(position))
    return stages


def _newsfeeds(execute: Execute, dataset: str) -> dict[str, list[dict[str, Any]]]:
    """``box_newsfeed`` rows back in the API's shape, the only fields ``update_history`` reads."""
    if not {"box_key", "specific", "stage_key", "timestamp"} <= columns_of(execute, dataset, "box_newsfeed"):
        return {}
    feeds: dict[str, list[dict[str, Any]]] = {}
    for box, pipeline, specific, stage, at in execute(
            'SELECT box_key, pipeline_key, specific, stage_key, "timestamp" FROM '
            f"{qualified(dataset, 'box_newsfeed')} WHERE box_key IS NOT NULL"):
        variables = {} if stage is None else {"STAGE_KEY": stage}
        feeds.setdefault(str(box), []).append({"newsfeedEntrySpecific": specific, "specificVariables": variables,
                                               "timestamp": to_ms(at), "pipelineKey": pipeline})
    return feeds


def new_history(
    previous: PreviousHistory, execute: Execute, dataset: str, observed_at: datetime, skipped: Iterable[str] = (),
    webhook_events: Sequence[StageChangeEvent] = (),
) -> HistoryResult:
    """The complete new tables: ``previous`` stays + this run's evidence read from the fresh ``dataset``
    (+ ``webhook_events``: ``BOX_CHANGE_STAGE`` deliveries, for the events wing to pass)."""
    observation = RunObservation(
        observed_at=observed_at, boxes=_snapshots(execute, dataset), stages=_stages(execute, dataset),
        newsfeeds=_newsfeeds(execute, dataset), webhook_events=tuple(webhook_events),
        skipped_box_keys=frozenset(skipped),
    )
    stays = update_history(previous.stays, observation)
    old_keys = {str(row.get("stay_key")) for row in previous.stays}
    return HistoryResult(
        stays=[stay.as_row() for stay in stays],
        transitions=[t.as_row() for t in stage_transitions(stays)],
        added=sum(1 for stay in stays if stay.stay_key not in old_keys),
        inexact=sum(1 for stay in stays if not stay.exact),
    )


def stays_of(rows: Iterable[Mapping[str, Any]]) -> list[StageStay]:
    """Rows read back from ``box_stage_history`` as :class:`StageStay` (for tests and benchmarks)."""
    return [StageStay.from_row(row) for row in rows]
