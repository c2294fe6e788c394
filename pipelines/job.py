"""The full load, one sequence for every destination kind: lock, read the live copy, the three dlt
steps and the views, the stage history, the kept tables, publish.

What differs per destination kind lives in ``streak_warehouse/targets/`` (chosen once per run by
``configured_target``): where the fresh copy goes (a fresh DuckDB file renamed over the old one, a
fresh Postgres schema renamed into place in one transaction, or the destination itself, table by
table), which lock guards it, how the live copy is read and how the kept tables and events reach
the copy that is published. A failure before publishing leaves the previous copy as it was.

One run at a time: the dlt working dir is locked here and the destination by its kind, for the whole
run (``streak_warehouse/locks.py``); a second run stops at once with :class:`LoadAlreadyRunning`.

Stage history (``streak_warehouse/history_tables.py``): before extracting, the previous complete
load's boxes map and stage history are read from the LIVE copy (the source reads per-box newsfeeds
only for boxes that moved); after loading, the new history is computed from the FRESH copy and
written into it as whole tables, so the swap publishes it together with the copy.

Events (``pipelines/events_load.py``): ``crm.events`` is a kept table; when an events spool exists
(``[events] spool_path``), its pending events are merged into the fresh copy before it is published
and acknowledged in the spool only after it was. Their ``BOX_CHANGE_STAGE`` webhook events (with
those already in the live ``crm.events``) feed the stage history with exact times. In the same step
the events derived from the fresh copy (``streak_warehouse/derived_events.py``) that ``crm.events``
lacks are added.

Privacy (``streak_source/privacy/``, docs/privacy.md): ``[privacy]`` is read and checked before
anything else too, and the source applies it to every object as it is read. Each load records its
policy's fingerprint in ``load_history.privacy``; when the previous complete load's differs, the
publishing transaction rewrites the kept tables (history, events) and the spool under the new rules
(``pipelines/privacy_step.py``), and a DuckDB file is then written anew.

Outcomes (``streak_warehouse/outcome_views.py``, docs/metrics.md): ``[outcomes]`` is read and checked
before anything else (a bad setting stops the run at once); last in the publishing transaction, once
this run's history versions are in the fresh copy, the outcome tables and views are written into it.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final, TextIO

import streak_clock
from pipelines import stopping
from pipelines.dlt_steps import extract_normalize_load
from pipelines.events_load import Pending, acknowledge, merge_with_client, pending_events
from pipelines.failures import describe_failure, was_interrupted
from pipelines.privacy_step import finish_rule_change, protect_pending_events, start_rule_change
from pipelines.progress import LoadSummary, say
from pipelines.run_state import Run
from streak_source.privacy import configured_policy
from streak_warehouse import history, kept_tables
from streak_warehouse.destination import DATASET_NAME, PIPELINE_NAME, use_project_settings
from streak_warehouse.events_table import stage_change_events
from streak_warehouse.history_lakehouse import record_open_table_versions
from streak_warehouse.history_mode import (
    TrackedTable, VersionsAdded, destination_type_name, history_kept_tables, record_versions, summary_line, tracked_tables,
)
from streak_warehouse.history_tables import new_history
from streak_warehouse.locks import FileRunLock, LoadAlreadyRunning, RunOwner
from streak_warehouse.refresh_basis import configured_refresh
from streak_warehouse.outcome_config import configured_settings
from streak_warehouse.outcome_views import create_outcome_views
from streak_warehouse.sql import driver_name, executor
from streak_warehouse.targets.base import FreshCopy, RunGuards, Target
from streak_warehouse.targets.configured import configured_target
from streak_warehouse.upgrade import prepare_upgrade


def run_full_load(
    source_args: dict[str, Any], progress: TextIO | None = sys.stdout, backfill_history: bool = False,
    refresh: str | None = None, account_defaults: Mapping[str, Any] | None = None, backfill_first_load: bool = False,
) -> LoadSummary:
    """Extract, normalize and load the whole account, create the wide views, update the stage
    history, keep the persistent tables, and publish the new copy; raises on failure (the previous
    copy stays). ``backfill_history``: read every box's newsfeed (one extra call per box).
    ``refresh``: ``full`` or ``changed`` (docs/refresh.md); None: ``[sources.streak] refresh``.
    ``account_defaults``: settings the account comes with (``--demo``'s), kept in the copy.
    ``backfill_first_load``: backfill when the destination holds no copy yet (``--demo``)."""
    use_project_settings()
    run = Run(backfill_history=backfill_history, backfill_first_load=backfill_first_load, account_defaults=account_defaults,
              outcomes=configured_settings(account_defaults), privacy=configured_policy())
    run.refresh_settings = configured_refresh(refresh)
    target = configured_target()
    run.destination_type = target.destination_type
    try:
        with _working_dir_locked(run):
            return _load(run, target, source_args, progress)
    except BaseException as exc:
        with contextlib.suppress(AttributeError):  # for the run's outcome document: calls made so far
            setattr(exc, FAILED_RUN_REPORT, run.report)  # noqa: B010
        raise


logger = logging.getLogger(__name__)

FAILED_RUN_REPORT: Final = "streak_run_report"
"""Attribute of the exception a failed run raises: its :class:`RunReport` so far (None: it failed
before extracting), so ``--summary-json`` can say how many calls a failed run made."""


def _load(run: Run, target: Target, source_args: dict[str, Any], progress: TextIO | None) -> LoadSummary:
    """The one sequence every destination kind follows; ``target`` places each step (``streak_warehouse/targets/``)."""
    guards = RunGuards(recorded=lambda location: _recorded(run, location), on_hard_stop=stopping.on_hard_stop)
    with target.opened(run.run_id, run.owner, guards) as copy:
        summary = _new_summary(run, target, copy)
        _prepare_upgrade(run, copy.pipeline, copy.written_layout(), copy.location, progress)
        live = copy.read_live(run.refresh_settings, run.started_at)
        run.previous, run.stage_events, run.refresh = live.previous, live.stage_events, live.refresh
        run.backfill_history = run.backfill_history or (run.backfill_first_load and live.previous.stage_changes is None)
        extract_normalize_load(run, copy.pipeline, target.destination_type, source_args, progress, summary)
        events = _pending_events(run, progress) if copy.keeps_tables else None
        if copy.keeps_tables:  # files (filesystem) keep no tables: no load_history, stage history, events
            with copy.fresh_execute() as execute:
                _update_stage_history(run, execute, copy.dataset, summary, progress)
        finished_at = streak_clock.now()
        rows, carried = _history_rows(run, summary, finished_at)
        if copy.keeps_tables:
            tracked = tracked_tables(copy.pipeline.default_schema)

            def finish(client: Any, dataset: str) -> bool:
                rule_change = start_rule_change(client, dataset, run.privacy, run.run_id, tracked, progress)
                _record_versions(client, dataset, tracked, finished_at, summary, progress)
                protect_pending_events(run.privacy, events)
                merge_with_client(client, dataset, events, progress)
                rewrote = finish_rule_change(rule_change, client, dataset, progress)
                _create_outcomes(client, dataset, run, finished_at, progress)
                return rewrote

            copy.publish(rows, run.upgrade.migrate_from, finish, (*kept_tables.KEPT_TABLES, *history_kept_tables(tracked)))
            acknowledge(events, progress)
        else:  # files: a history only where they are Delta or Iceberg tables, written after the copy
            _record_open_table_versions(copy.pipeline, finished_at, summary, progress)
    _done(run, carried)
    summary.replace_strategy = copy.replace_strategy
    return summary


def _new_summary(run: Run, target: Target, copy: FreshCopy) -> LoadSummary:
    summary = LoadSummary(destination=target.destination_type, location=copy.location, dataset=DATASET_NAME,
                          run_id=run.run_id, replace_strategy=copy.replace_strategy)
    run.location = summary.location
    return summary


# --- stage history --------------------------------------------------------------------------------


def _update_stage_history(run: Run, execute: Any, dataset: str, summary: LoadSummary, progress: TextIO | None) -> None:
    """Compute the new ``box_stage_history`` from the freshly loaded ``dataset`` (kept on ``run``)."""
    say(progress, "updating stage history...")
    step = time.monotonic()
    assert run.report is not None, "stage history is computed after extracting"
    run.history = new_history(run.previous, execute, dataset, run.started_at, run.report.skipped_boxes,
                              webhook_events=run.stage_events)
    summary.history_stays = len(run.history.stays)
    summary.history_added = run.history.added
    summary.history_inexact = run.history.inexact
    summary.history_s = time.monotonic() - step
    summary.total_s += summary.history_s


def _record_versions(client: Any, dataset: str, tracked: Sequence[TrackedTable], at: datetime,
                     summary: LoadSummary, progress: TextIO | None) -> None:
    """This run's versions of every keyed record into the fresh ``dataset`` (history mode)."""
    step = time.monotonic()
    _note_versions(record_versions(executor(client), dataset, tracked, at, destination_type_name(client)), step, summary, progress)


def _record_open_table_versions(pipeline: Any, at: datetime, summary: LoadSummary, progress: TextIO | None) -> None:
    """History mode on files: ``<table>_history`` next to the copy if it is Delta or Iceberg tables
    (``streak_warehouse/history_lakehouse.py``); plain files keep none."""
    step = time.monotonic()
    added = record_open_table_versions(pipeline, tracked_tables(pipeline.default_schema), at)
    if added is not None:
        _note_versions(added, step, summary, progress)


def _note_versions(added: VersionsAdded, step: float, summary: LoadSummary, progress: TextIO | None) -> None:
    summary.versions_added = {name: count for name, count in added.opened.items() if count}
    summary.records_deleted = {name: count for name, count in added.deleted.items() if count}
    summary.versions_s = time.monotonic() - step
    summary.total_s += summary.versions_s
    say(progress, f"{summary_line(added)} ({summary.versions_s:.1f} s)")


def _create_outcomes(client: Any, dataset: str, run: Run, at: datetime, progress: TextIO | None) -> None:
    """The outcome views and tables into the fresh ``dataset``, read from its history (docs/metrics.md);
    what the configuration named but the account lacks is a warning, on stderr."""
    step = time.monotonic()
    report = create_outcome_views(executor(client), dataset, run.outcomes, at, driver_name(client))
    for warning in report.warnings:
        logger.warning("%s", warning)
    say(progress, f"{report.line()} ({time.monotonic() - step:.1f} s)")


def _pending_events(run: Run, progress: TextIO | None) -> Pending | None:
    """The spool's pending events (merged into the fresh copy later); their stage changes join
    ``run.stage_events``."""
    events = pending_events(progress)
    if events is not None:
        run.stage_events = [*run.stage_events, *stage_change_events(events.rows)]
    return events


# --- load_history --------------------------------------------------------------------------------


def _history_rows(run: Run, summary: LoadSummary, finished_at: datetime) -> tuple[dict[str, list[dict[str, Any]]], set[str]]:
    """This run's ``ok`` row plus the side records of earlier runs that did not publish; ``finished_at``
    is also when the versions this run stores become valid (``history_mode.py``)."""
    location = summary.location
    row = history.history_row(
        run_id=run.run_id, started_at=run.started_at, outcome="ok", destination=_history_destination(summary),
        finished_at=finished_at,
        rows_per_table=summary.rows, api_calls=summary.api_calls, boxes_read=summary.boxes_read,
        boxes_skipped=len(summary.boxes_gone), rejected_records=summary.rejected_records,
        history_calls=summary.history_calls, mode=summary.mode,
        privacy=run.privacy.fingerprint if run.privacy is not None else None,
    )
    earlier = history.side_records(location)
    stage_history = run.history.table_rows() if run.history is not None else {}
    return {history.LOAD_HISTORY.name: [*earlier, row], **stage_history}, {r["run_id"] for r in earlier}


def _history_destination(summary: LoadSummary) -> str:
    return f"{summary.destination}: {summary.location}"


@contextlib.contextmanager
def _recorded(run: Run, location: str) -> Iterator[None]:
    """A run that fails or is interrupted after taking the locks leaves a side record (never touching
    the destination); the next successful run stores it in ``load_history``."""
    with stopping.on_hard_stop(lambda: _leave_side_record(run, location, None)):
        try:
            yield
        except BaseException as exc:
            if not isinstance(exc, LoadAlreadyRunning):
                _leave_side_record(run, location, exc)
            raise


def _leave_side_record(run: Run, location: str, exc: BaseException | None) -> None:
    if run.recorded:
        return
    run.recorded = True
    interrupted = exc is None or was_interrupted(exc)
    from streak_source import RunReport

    report = run.report or RunReport()  # a run that failed before extracting made no calls
    history.leave_side_record(location, history.history_row(
        run_id=run.run_id, started_at=run.started_at, outcome="interrupted" if interrupted else "failed",
        error=None if interrupted else describe_failure(exc),  # type: ignore[arg-type]
        destination=f"{run.destination_type}: {location}",
        api_calls=report.requests_sent, boxes_read=report.boxes_read,
        boxes_skipped=len(report.skipped_boxes), history_calls=report.history_calls,
        mode=run.refresh.decision.mode if run.refresh is not None and run.refresh.bound else "full",
    ))


def _prepare_upgrade(run: Run, pipeline: Any, written: int | None, location: str, progress: TextIO | None) -> None:
    """Stop on a copy written by a newer warehouse layout; rebuild and migrate one written by an
    older layout (or a dlt working dir built by another): streak_warehouse/upgrade.py."""
    run.upgrade = prepare_upgrade(pipeline, written, location)
    message = run.upgrade.message()
    if message is not None:
        say(progress, message)


def _done(run: Run, carried: set[str]) -> None:
    run.recorded = True
    run.upgrade.finish()
    if carried and run.location:
        history.forget_side_records(run.location, carried)


# --- locks and places ----------------------------------------------------------------------------


def working_dir_lock(pipelines_dir: Path, owner: RunOwner) -> FileRunLock:
    """The lock of the job's dlt working dir under ``pipelines_dir`` (also taken by ``forget``)."""
    return FileRunLock(pipelines_dir / f".{PIPELINE_NAME}.lock", f"with the dlt working dir {pipelines_dir / PIPELINE_NAME}",
                       owner)


@contextlib.contextmanager
def _working_dir_locked(run: Run) -> Iterator[None]:
    """One run at a time per dlt working dir: two runs sharing it (even into different DuckDB
    files) would drop each other's unfinished packages."""
    from dlt.common.pipeline import get_dlt_pipelines_dir

    with working_dir_lock(Path(get_dlt_pipelines_dir()), run.owner):
        yield
