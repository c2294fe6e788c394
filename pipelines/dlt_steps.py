"""The three dlt steps of a run (extract, normalize, load) and the wide views, into whatever
pipeline the destination kind opened (``streak_warehouse/targets/``); fills the run's summary."""

from __future__ import annotations

import contextlib
import gc
import os
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Final, Literal, TextIO

from pipelines.progress import LoadSummary, backfill_estimate, extract_progress, say
from pipelines.run_state import Run
from streak_warehouse.targets.duckdb_file import memory_capped

if TYPE_CHECKING:
    from streak_source import RunReport

PARALLEL_NORMALIZE_FROM_MB: Final = 6.0
"""Default of ``[normalize] parallel_from_mb``: below this many MB of extracted files one worker,
in process, beats forking ``[normalize] workers``: at 2,000 boxes (2.6 MB) one worker normalizes in
1.4 s and two in 2.0 s (the pool's start-up and its 0.3 s polling); at 6,000 boxes (7.7 MB) they are
even; at 20,000 boxes two take 7.6 s and one 12.7 s (benchmarks/README.md, "What made the
difference", item 5)."""
MB: Final = 1024 * 1024

PARQUET_DESTINATIONS: Final = frozenset(
    {"duckdb", "motherduck", "filesystem", "bigquery", "snowflake", "databricks", "athena"})
"""Destinations that load parquet natively; parquet is ~5x faster than insert statements on DuckDB."""


def extract_normalize_load(
    run: Run, pipeline: Any, destination_type: str, source_args: dict[str, Any], progress: TextIO | None,
    summary: LoadSummary,
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
    if pipeline.has_pending_data:
        say(progress, "dropping the unfinished packages of an interrupted earlier run")
        pipeline.abort_packages()
    with pipeline.managed_state() as state:
        force_state_extract(state)
    run.report = report = RunReport()
    if run.backfill_history:
        say(progress, backfill_estimate(run.previous, source_args))
    if run.privacy is not None and run.privacy.active:
        say(progress, run.privacy.summary_line())
    source = streak_source(report=report, **source_args, previous_stage_changes=run.previous.stage_changes,
                           backfill_history=run.backfill_history, refresh_plan=run.refresh, privacy=run.privacy)
    if run.refresh is not None:
        say(progress, f"mode: {run.refresh.decision.mode} ({run.refresh.decision.reason})")
    file_format: Literal["parquet"] | None = "parquet" if destination_type in PARQUET_DESTINATIONS else None
    try:
        with extract_progress(report, progress, started):
            pipeline.extract(source, loader_file_format=file_format)
    finally:
        if run.refresh is not None:  # compared only while extracting; normalize forks without it
            run.refresh.release_basis()
    summary.extract_s = time.monotonic() - started
    if run.refresh is not None:
        summary.mode, summary.mode_reason = run.refresh.decision.mode, run.refresh.decision.reason
        say(progress, run.refresh.outcome_line())

    step = time.monotonic()
    extracted = _extracted_bytes(pipeline)
    workers = normalize_workers(extracted)
    say(progress, f"normalizing... ({extracted / MB:.1f} MB, {workers} worker{'s' if workers > 1 else ''})")
    with _fork_safe(), _normalize_workers_set(workers):
        pipeline.normalize()
    summary.normalize_s = time.monotonic() - step
    normalize_info = pipeline.last_trace.last_normalize_info if pipeline.last_trace else None

    say(progress, "loading...")
    step = time.monotonic()
    # staging-optimized DROPs each table and puts the staging one in its place; Postgres refuses to
    # drop a table a view depends on, so the wide views go first and come back even if the load fails.
    views_dropped = summary.replace_strategy == "staging-optimized" and bool(drop_wide_views(pipeline))
    try:
        with memory_capped(pipeline, destination_type):
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
    fill_from_report(summary, report)
    summary.rows = row_counts(normalize_info, source)
    summary.total_s = time.monotonic() - started


def normalize_workers(extracted_bytes: int) -> int:
    """How many processes normalize a package of ``extracted_bytes``: ``[normalize] workers`` (env
    ``NORMALIZE__WORKERS``) when the package is at least ``[normalize] parallel_from_mb``, else one."""
    import dlt

    configured = int(dlt.config.get("normalize.workers", int) or 1)
    threshold = dlt.config.get("normalize.parallel_from_mb", float)
    threshold_mb = PARALLEL_NORMALIZE_FROM_MB if threshold is None else float(threshold)
    return configured if configured > 1 and extracted_bytes >= threshold_mb * MB else 1


def _extracted_bytes(pipeline: Any) -> int:
    """The size of the files of the packages waiting to be normalized (dlt's extract output)."""
    return sum(job.file_size for load_id in pipeline.list_extracted_load_packages()
               for jobs in pipeline.get_load_package_info(load_id).jobs.values() for job in jobs)


@contextlib.contextmanager
def _normalize_workers_set(workers: int) -> Iterator[None]:
    """``workers`` for this normalize. dlt resolves ``NormalizeConfiguration`` from its providers
    over the argument of ``pipeline.normalize(workers=...)``, so the one way to choose per run is
    the top provider, the environment; restored afterwards."""
    key = "NORMALIZE__WORKERS"
    before = os.environ.get(key)
    os.environ[key] = str(workers)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = before


def fill_from_report(summary: LoadSummary, report: RunReport) -> None:
    """The calls, boxes and rejected records of ``report`` into ``summary``."""
    summary.api_calls = report.requests_sent
    summary.history_calls = report.history_calls
    summary.history_unchanged = report.history_unchanged
    summary.child_calls_skipped = sum(report.skipped_calls.values())
    summary.boxes_read = report.boxes_read
    summary.boxes_gone = sorted(report.skipped_boxes)
    summary.undecoded_field_values = {k: v for k, v in sorted(report.decode_statuses.items()) if k != "ok" and v}
    summary.rejected_by_table = {str(k): int(v) for k, v in sorted(report.rejected.items())}
    summary.rejected_records = sum(summary.rejected_by_table.values())


@contextlib.contextmanager
def _fork_safe() -> Iterator[None]:
    """dlt forks its normalize workers ([normalize] workers). A DuckDB client this process dropped
    (e.g. the filesystem destination's, after reading the live copy) may still wait in the garbage
    collector; collected in a forked worker, its ``__del__`` closes a connection that is not the
    worker's and crashes it (seen as BrokenProcessPool). So: collect first, and freeze what is left,
    so the workers never collect the parent's objects."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def row_counts(normalize_info: Any, source: Any) -> dict[str, int]:
    """Rows per table of this load, zero for a table that got none; dlt's own tables left out."""
    counts = dict(normalize_info.row_counts) if normalize_info else {}
    tables = {name: 0 for name in source.resources.keys()}
    tables.update({name: n for name, n in counts.items() if not name.startswith("_dlt")})
    return dict(sorted(tables.items()))

