"""The full load: lock, the three dlt steps, views, persistent tables, publish; one function per
destination kind.

The new copy replaces the old one whole, in one step, once tables, views and the tables kept across
runs are complete: a local DuckDB file is loaded as a fresh file renamed over the old one
(``streak_warehouse/duckdb_swap.py``); Postgres as a fresh schema renamed into place in one
transaction (``streak_warehouse/dataset_swap.py``). A failure at any earlier point leaves the
previous copy exactly as it was. Other destinations replace table by table.

One run at a time: the dlt working dir and the destination are locked for the whole run
(``streak_warehouse/locks.py``); a second run stops at once with :class:`LoadAlreadyRunning`.

Stage history (``streak_warehouse/history_tables.py``): before extracting, the previous complete
load's boxes map and stage history are read from the LIVE copy (the source reads per-box newsfeeds
only for boxes that moved); after loading, the new history is computed from the FRESH copy and
written into it as whole tables, so the swap publishes it together with the copy.

Events (``pipelines/events_load.py``): ``crm.events`` is a persistent table; when an events spool
exists (``[events] spool_path``), its pending events are merged into the fresh copy before it is
published and acknowledged in the spool only after it was. Their ``BOX_CHANGE_STAGE`` webhook
events (with those already in the live ``crm.events``) feed the stage history with exact times.
In the same step the events derived from the fresh copy (``streak_warehouse/derived_events.py``)
that ``crm.events`` lacks are added.
"""

from __future__ import annotations

import contextlib
import hashlib
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, TextIO

import streak_clock
from pipelines import stopping
from pipelines.events_load import (
    Pending,
    acknowledge,
    merge_into_duckdb_file,
    merge_with_client,
    pending_events,
)
from pipelines.failures import describe_failure, was_interrupted
from pipelines.progress import LoadSummary, backfill_estimate, extract_progress, say
from streak_warehouse import history
from streak_warehouse.dataset_swap import (
    SCHEMA_SWAP_TYPES,
    discard_dataset,
    discard_leftovers,
    fresh_dataset_name,
    publish_dataset,
    run_lock,
    state_names_the_published_dataset,
)
from streak_warehouse.destination import (
    DATASET_NAME,
    PIPELINE_NAME,
    check_warehouse,
    configured_destination_type,
    configured_table_format,
    duckdb_file_target,
    use_project_settings,
    warehouse_destination,
)
from streak_warehouse.duckdb_swap import fresh_file_for, publish
from streak_warehouse.events_table import read_stage_change_events, stage_change_events
from streak_warehouse.history_tables import (
    HistoryResult,
    PreviousHistory,
    new_history,
    read_previous,
    read_previous_duckdb,
)
from streak_warehouse.locks import FileRunLock, LoadAlreadyRunning, RunOwner
from streak_warehouse.persistent import (
    carry_over_duckdb,
    carry_over_schema,
    read_live_duckdb_file,
    record_in_place,
)
from streak_warehouse.refresh_basis import (
    RefreshSettings,
    configured_refresh,
    in_place_reason,
    plan_for_run,
    read_basis,
    read_basis_duckdb,
)
from streak_warehouse.sql import sql_client_or_none
from streak_warehouse.upgrade import Upgrade, prepare_upgrade, written_layout_at, written_layout_of_file

if TYPE_CHECKING:
    from streak_source import RunReport
    from streak_source.refresh import RefreshPlan

# Destinations that load parquet natively; parquet is ~5x faster than insert statements on DuckDB.
_PARQUET_DESTINATIONS = {"duckdb", "motherduck", "filesystem", "bigquery", "snowflake", "databricks", "athena"}

DUCKDB_LOAD_MEMORY_LIMIT = "64MB"
"""DuckDB's memory cap while loading. Uncapped (DuckDB's default: 80% of RAM) it keeps every block it
has written in memory until the file closes, so a load's memory grew with the account (20k boxes:
+260 MB, 2k: +100 MB); capped, it writes them out instead (20k: +125 MB, load 2.1 s -> ~3 s). Load
jobs are at most ``[data_writer] file_max_items`` rows, so the cap never has to hold a whole table."""


@dataclass
class Run:
    """One run: its id (in staging names and ``load_history``), owner line, and what it did so far."""

    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    started_at: datetime = field(default_factory=lambda: streak_clock.now())
    started_clock: float = field(default_factory=time.monotonic)
    report: RunReport | None = None
    location: str | None = None
    recorded: bool = False
    backfill_history: bool = False
    previous: PreviousHistory = field(default_factory=PreviousHistory)
    history: HistoryResult | None = None
    stage_events: list[Any] = field(default_factory=list)
    """``BOX_CHANGE_STAGE`` webhook events (``crm.events`` + the spool) for the stage history."""
    refresh_settings: RefreshSettings = field(default_factory=RefreshSettings)
    refresh: RefreshPlan | None = None
    """The run's refresh plan (streak_warehouse/refresh_basis.py), built once the live copy was read."""
    upgrade: Upgrade = field(default_factory=Upgrade)
    """Layouts found and what this run does about them (streak_warehouse/upgrade.py)."""
    account_defaults: Mapping[str, Any] | None = None
    """Settings the account comes with (the demo's), recorded in the copy: streak_warehouse/account_defaults.py."""

    @property
    def owner(self) -> RunOwner:
        return RunOwner.this_process(self.started_at)


def run_full_load(
    source_args: dict[str, Any], progress: TextIO | None = sys.stdout, backfill_history: bool = False,
    refresh: str | None = None, account_defaults: Mapping[str, Any] | None = None,
) -> LoadSummary:
    """Extract, normalize and load the whole account, create the wide views, update the stage
    history, keep the persistent tables, and publish the new copy; raises on failure (the previous
    copy stays). ``backfill_history``: read every box's newsfeed (one extra call per box).
    ``refresh``: ``full`` or ``changed`` (docs/refresh.md); None: ``[sources.streak] refresh``.
    ``account_defaults``: settings the account comes with (``--demo``'s), kept in the copy."""
    use_project_settings()
    run = Run(backfill_history=backfill_history, account_defaults=account_defaults)
    run.refresh_settings = configured_refresh(refresh)
    target = duckdb_file_target()
    try:
        with _working_dir_locked(run):
            if target is not None:
                return _into_fresh_duckdb_file(run, target, source_args, progress)
            if configured_destination_type() in SCHEMA_SWAP_TYPES:
                return _into_fresh_schema(run, source_args, progress)
            return _in_place(run, source_args, progress)
    except BaseException as exc:
        with contextlib.suppress(AttributeError):  # for the run's outcome document: calls made so far
            setattr(exc, FAILED_RUN_REPORT, run.report)  # noqa: B010
        raise


FAILED_RUN_REPORT: Final = "streak_run_report"
"""Attribute of the exception a failed run raises: its :class:`RunReport` so far (None: it failed
before extracting), so ``--summary-json`` can say how many calls a failed run made."""


def _into_fresh_duckdb_file(run: Run, target: Path, source_args: dict[str, Any], progress: TextIO | None) -> LoadSummary:
    with fresh_file_for(target, run.run_id, run.owner) as loading, _recorded(run, str(target)):
        with stopping.on_hard_stop(lambda: _discard_file(loading)):
            pipeline = _pipeline(warehouse_destination(load_into_duckdb_file=loading), DATASET_NAME)
            summary = _new_summary(run, pipeline, str(target))
            summary.replace_strategy = check_warehouse(pipeline, "duckdb", str(target), replaced_by_rename=True)
            _prepare_upgrade(run, pipeline, written_layout_of_file(target, DATASET_NAME), str(target), progress)
            run.previous = read_previous_duckdb(target, DATASET_NAME)
            run.stage_events = _live_stage_events_duckdb(target)
            run.refresh = plan_for_run(run.refresh_settings, run.started_at, lambda: read_basis_duckdb(target, DATASET_NAME))
            _extract_normalize_load(run, pipeline, source_args, progress, summary)
            events = _pending_events(run, progress)
            with _duckdb_execute(loading) as execute:
                _update_stage_history(run, execute, DATASET_NAME, summary, progress)
            rows, carried = _history_rows(run, summary)
            carry_over_duckdb(target, loading, DATASET_NAME, rows, run.upgrade.migrate_from)
            merge_into_duckdb_file(loading, DATASET_NAME, events, progress)
            publish(loading, target)
            acknowledge(events, progress)
    _done(run, carried)
    summary.replace_strategy = "new file renamed into place"
    return summary


def _into_fresh_schema(run: Run, source_args: dict[str, Any], progress: TextIO | None) -> LoadSummary:
    fresh = fresh_dataset_name(DATASET_NAME, run.run_id)
    destination_type = configured_destination_type()
    pipeline = _pipeline(warehouse_destination(fresh_dataset=True), fresh)
    summary = _new_summary(run, pipeline, None)
    check_warehouse(pipeline, destination_type, summary.location, replaced_by_rename=True)
    with run_lock(pipeline, DATASET_NAME, run.owner), _recorded(run, summary.location):
        discard_leftovers(pipeline, DATASET_NAME, keep=fresh)
        try:
            _prepare_upgrade(run, pipeline, written_layout_at(pipeline, DATASET_NAME), summary.location, progress)
            with pipeline.sql_client() as client:
                run.previous = read_previous(_client_execute(client), DATASET_NAME)
                run.stage_events = read_stage_change_events(_client_execute(client), DATASET_NAME)
                run.refresh = plan_for_run(run.refresh_settings, run.started_at,
                                           lambda: read_basis(_client_execute(client), DATASET_NAME))
            _extract_normalize_load(run, pipeline, source_args, progress, summary)
            events = _pending_events(run, progress)
            with pipeline.sql_client() as client:
                _update_stage_history(run, _client_execute(client), fresh, summary, progress)
            rows, carried = _history_rows(run, summary)

            def before_rename(client: Any, live_exists: bool) -> None:
                carry_over_schema(client, DATASET_NAME, fresh, live_exists, rows, run.upgrade.migrate_from)
                merge_with_client(client, fresh, events, progress)
                state_names_the_published_dataset(client, fresh, DATASET_NAME)

            publish_dataset(pipeline, fresh, DATASET_NAME, before_rename=before_rename)
            acknowledge(events, progress)
        except BaseException:
            with contextlib.suppress(Exception):
                discard_dataset(pipeline, fresh)
            raise
    _done(run, carried)
    summary.replace_strategy = "new schema renamed into place"
    return summary


def _in_place(run: Run, source_args: dict[str, Any], progress: TextIO | None) -> LoadSummary:
    destination_type = configured_destination_type()
    pipeline = _pipeline(warehouse_destination(), DATASET_NAME)
    summary = _new_summary(run, pipeline, None)
    summary.replace_strategy = check_warehouse(pipeline, destination_type, summary.location)
    table_format = configured_table_format()
    if destination_type == "filesystem" and table_format:  # dlt calls it insert-from-staging; nothing is staged
        summary.replace_strategy = f"{table_format} overwrite, one commit per table"
    lock_file = _runs_dir() / f"destination-{_digest(summary.location)}.lock"
    with FileRunLock(lock_file, summary.location, run.owner), _recorded(run, summary.location):
        _prepare_upgrade(run, pipeline, written_layout_at(pipeline, DATASET_NAME), summary.location, progress)
        run.refresh = plan_for_run(run.refresh_settings, run.started_at, unavailable=in_place_reason(destination_type))
        client = sql_client_or_none(pipeline, "load history")
        if client is not None:
            with client:
                run.previous = read_previous(_client_execute(client), DATASET_NAME)
                run.stage_events = read_stage_change_events(_client_execute(client), DATASET_NAME)
        _extract_normalize_load(run, pipeline, source_args, progress, summary)
        events = _pending_events(run, progress) if client is not None else None
        if client is not None:  # files (filesystem) have no load_history nor stage history
            with client:
                _update_stage_history(run, _client_execute(client), DATASET_NAME, summary, progress)
            rows, carried = _history_rows(run, summary)
            with client:
                record_in_place(client, DATASET_NAME, rows, run.upgrade.migrate_from)
                with client.begin_transaction():
                    merge_with_client(client, DATASET_NAME, events, progress)
            acknowledge(events, progress)
        else:
            rows, carried = _history_rows(run, summary)
    _done(run, carried)
    return summary


# --- the three dlt steps ------------------------------------------------------------------------


def _pipeline(destination: Any, dataset_name: str) -> Any:
    import dlt

    return dlt.pipeline(pipeline_name=PIPELINE_NAME, destination=destination, dataset_name=dataset_name)


def _new_summary(run: Run, pipeline: Any, location: str | None) -> LoadSummary:
    destination_type = configured_destination_type()
    summary = LoadSummary(destination=destination_type, location=location or _location(pipeline, destination_type),
                          dataset=DATASET_NAME, run_id=run.run_id)
    run.location = summary.location
    return summary


def _extract_normalize_load(
    run: Run, pipeline: Any, source_args: dict[str, Any], progress: TextIO | None, summary: LoadSummary
) -> None:
    """The three dlt steps and the views into the pipeline's dataset; fills ``summary``.

    Leftover packages of an interrupted earlier run are dropped (the working dir is ours: locked):
    every run is a complete, fresh copy. dlt's state is extracted every run, not only when it
    changed, so every fresh copy carries ``_dlt_pipeline_state`` and a new machine can restore it.
    """
    from dlt.pipeline.state_sync import force_state_extract

    from streak_source import RunReport, streak_source
    from streak_warehouse.account_defaults import record_account_defaults
    from streak_warehouse.views import create_wide_views, drop_wide_views

    started = time.monotonic()
    destination_type = configured_destination_type()
    if pipeline.has_pending_data:
        say(progress, "dropping the unfinished packages of an interrupted earlier run")
        pipeline.abort_packages()
    with pipeline.managed_state() as state:
        force_state_extract(state)
    run.report = report = RunReport()
    if run.backfill_history:
        say(progress, backfill_estimate(run.previous, source_args))
    source = streak_source(report=report, **source_args, previous_stage_changes=run.previous.stage_changes,
                           backfill_history=run.backfill_history, refresh_plan=run.refresh)
    if run.refresh is not None:
        say(progress, f"mode: {run.refresh.decision.mode} ({run.refresh.decision.reason})")
    file_format: Literal["parquet"] | None = "parquet" if destination_type in _PARQUET_DESTINATIONS else None
    with extract_progress(report, progress, started):
        pipeline.extract(source, loader_file_format=file_format)
    summary.extract_s = time.monotonic() - started
    if run.refresh is not None:
        summary.mode, summary.mode_reason = run.refresh.decision.mode, run.refresh.decision.reason
        say(progress, run.refresh.outcome_line())

    say(progress, "normalizing...")
    step = time.monotonic()
    pipeline.normalize()
    summary.normalize_s = time.monotonic() - step
    normalize_info = pipeline.last_trace.last_normalize_info if pipeline.last_trace else None

    say(progress, "loading...")
    step = time.monotonic()
    # staging-optimized DROPs each table and puts the staging one in its place; Postgres refuses to
    # drop a table a view depends on, so the wide views go first and come back even if the load fails.
    views_dropped = summary.replace_strategy == "staging-optimized" and bool(drop_wide_views(pipeline))
    try:
        with _duckdb_memory_capped(pipeline, destination_type):
            pipeline.load(raise_on_failed_jobs=True)
    except BaseException:
        if views_dropped:
            with contextlib.suppress(Exception):
                create_wide_views(pipeline)
        raise
    summary.load_s = time.monotonic() - step

    step = time.monotonic()
    summary.views = create_wide_views(pipeline)
    record_account_defaults(pipeline, run.account_defaults)
    summary.views_s = time.monotonic() - step
    _fill_from_report(summary, report)
    summary.rows = _row_counts(normalize_info, source)
    summary.total_s = time.monotonic() - started


def _fill_from_report(summary: LoadSummary, report: RunReport) -> None:
    summary.api_calls = report.requests_sent
    summary.history_calls = report.history_calls
    summary.history_unchanged = report.history_unchanged
    summary.child_calls_skipped = sum(report.skipped_calls.values())
    summary.boxes_read = report.boxes_read
    summary.boxes_gone = sorted(report.skipped_boxes)
    summary.undecoded_field_values = {k: v for k, v in sorted(report.decode_statuses.items()) if k != "ok" and v}
    summary.rejected_by_table = {str(k): int(v) for k, v in sorted(report.rejected.items())}
    summary.rejected_records = sum(summary.rejected_by_table.values())


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


def _pending_events(run: Run, progress: TextIO | None) -> Pending | None:
    """The spool's pending events (merged into the fresh copy later); their stage changes join
    ``run.stage_events``."""
    events = pending_events(progress)
    if events is not None:
        run.stage_events = [*run.stage_events, *stage_change_events(events.rows)]
    return events


def _live_stage_events_duckdb(target: Path) -> list[Any]:
    """``BOX_CHANGE_STAGE`` events kept in the live file's ``crm.events`` (read-only; none without it)."""
    events = read_live_duckdb_file(target, "the events", lambda execute: read_stage_change_events(execute, DATASET_NAME))
    return events if events is not None else []


@contextlib.contextmanager
def _duckdb_execute(path: Path) -> Iterator[Any]:
    import duckdb

    with duckdb.connect(str(path)) as con:
        yield lambda sql: con.execute(sql).fetchall()


def _client_execute(client: Any) -> Any:
    return lambda sql: client.execute_sql(sql) or []


# --- load_history --------------------------------------------------------------------------------


def _history_rows(run: Run, summary: LoadSummary) -> tuple[dict[str, list[dict[str, Any]]], set[str]]:
    """This run's ``ok`` row plus the side records of earlier runs that did not publish."""
    location = summary.location
    row = history.history_row(
        run_id=run.run_id, started_at=run.started_at, outcome="ok", destination=_history_destination(summary),
        rows_per_table=summary.rows, api_calls=summary.api_calls, boxes_read=summary.boxes_read,
        boxes_skipped=len(summary.boxes_gone), rejected_records=summary.rejected_records,
        history_calls=summary.history_calls, mode=summary.mode,
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
        destination=f"{configured_destination_type()}: {location}",
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


def _runs_dir() -> Path:
    import dlt

    return Path(dlt.current.run_context().data_dir) / "streak_runs"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@contextlib.contextmanager
def _working_dir_locked(run: Run) -> Iterator[None]:
    """One run at a time per dlt working dir: two runs sharing it (even into different DuckDB
    files) would drop each other's unfinished packages."""
    from dlt.common.pipeline import get_dlt_pipelines_dir

    pipelines_dir = Path(get_dlt_pipelines_dir())
    with FileRunLock(pipelines_dir / f".{PIPELINE_NAME}.lock", f"with the dlt working dir {pipelines_dir / PIPELINE_NAME}",
                     run.owner):
        yield


def _discard_file(path: Path) -> None:
    for leftover in (path, path.with_name(path.name + ".wal")):
        leftover.unlink(missing_ok=True)


@contextlib.contextmanager
def _duckdb_memory_capped(pipeline: Any, destination_type: str) -> Iterator[None]:
    """Keep a DuckDB destination open for the whole load with its memory capped.

    The cap is a setting of the open database, so every load job's connection shares it. It is put
    back afterwards for anyone else holding the same file open in this process, after a checkpoint
    under the cap: DuckDB checkpoints when the file closes, and uncapped that pass alone took as
    much memory as the load had saved. Other destinations: nothing to do.
    """
    if destination_type != "duckdb":
        yield
        return
    with pipeline.sql_client() as client:
        rows = client.execute_sql("SELECT current_setting('memory_limit')")
        client.execute_sql(f"SET GLOBAL memory_limit = '{DUCKDB_LOAD_MEMORY_LIMIT}'")
        try:
            yield
        finally:
            with contextlib.suppress(Exception):  # never hide the load's own error
                client.execute_sql("CHECKPOINT")
            if rows:
                with contextlib.suppress(Exception):
                    client.execute_sql(f"SET GLOBAL memory_limit = '{rows[0][0]}'")


def _row_counts(normalize_info: Any, source: Any) -> dict[str, int]:
    """Rows per table of this load, zero for a table that got none; dlt's own tables left out."""
    counts = dict(normalize_info.row_counts) if normalize_info else {}
    tables = {name: 0 for name in source.resources.keys()}
    tables.update({name: n for name, n in counts.items() if not name.startswith("_dlt")})
    return dict(sorted(tables.items()))


def _location(pipeline: Any, destination_type: str) -> str:
    """Where the data goes, without secrets (file path, URL without password, bucket)."""
    with contextlib.suppress(Exception):
        credentials = pipeline.destination_client().config.credentials
        if destination_type in ("duckdb", "motherduck"):
            return str(credentials.database)
        return str(credentials.to_url().render_as_string(hide_password=True))  # type: ignore[union-attr]
    with contextlib.suppress(Exception):
        return str(pipeline.destination_client().config.bucket_url)
    return destination_type
