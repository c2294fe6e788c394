"""Runs the full load: arguments, credentials, progress, the three dlt steps, views, the summary.

Kept out of ``streak_full.py`` so tests and the benchmark can call :func:`run_full_load` in-process.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

from pipelines.dataset_swap import SCHEMA_SWAP_TYPES, discard_dataset, next_dataset, publish_dataset
from pipelines.duckdb_swap import LoadAlreadyRunning, fresh_file_for, publish
from streak_source.warehouse import (
    DATASET_NAME,
    PIPELINE_NAME,
    check_warehouse,
    configured_destination_type,
    default_duckdb_path,
    duckdb_file_target,
    use_project_settings,
    warehouse_destination,
)

DEMO_REQUESTS_PER_SECOND = 50.0
"""The demo's sandbox runs on this machine, so the demo need not wait on Streak's 10/s; a limit still
applies, so the demo shows the same paced extraction a real account gets."""

EXIT_FAILED = 1
EXIT_NO_KEY = 2
EXIT_INTERRUPTED = 130

NO_KEY_MESSAGE = (
    "error: no Streak API key. Give one in .dlt/secrets.toml ([sources.streak] api_key = \"...\"; "
    "see .dlt/example.secrets.toml), or in the SOURCES__STREAK__API_KEY environment variable, "
    "or run the demo account with --demo."
)

# Destinations that load parquet natively; parquet is ~5x faster than insert statements on DuckDB.
_PARQUET_DESTINATIONS = {"duckdb", "motherduck", "filesystem", "bigquery", "snowflake", "databricks", "athena"}

DUCKDB_LOAD_MEMORY_LIMIT = "64MB"
"""DuckDB's memory cap while loading. Uncapped (DuckDB's default: 80% of RAM) it keeps every block it
has written in memory until the file closes, so a load's memory grew with the account (20k boxes:
+260 MB, 2k: +100 MB); capped, it writes them out instead (20k: +125 MB, load 2.1 s -> ~3 s). Load
jobs are at most ``[data_writer] file_max_items`` rows, so the cap never has to hold a whole table."""


@dataclass
class LoadSummary:
    """What a run did; printed at the end and written as JSON with ``--summary-json``."""

    destination: str
    location: str
    dataset: str
    rows: dict[str, int] = field(default_factory=dict)
    api_calls: int = 0
    child_calls_skipped: int = 0
    boxes_read: int = 0
    boxes_gone: list[str] = field(default_factory=list)
    undecoded_field_values: dict[str, int] = field(default_factory=dict)
    views: list[str] = field(default_factory=list)
    replace_strategy: str | None = None
    extract_s: float = 0.0
    normalize_s: float = 0.0
    load_s: float = 0.0
    views_s: float = 0.0
    total_s: float = 0.0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="streak_full.py",
        description="Copy a whole Streak CRM account into DuckDB (default) or the warehouse configured "
        "under [destination.warehouse], replacing the previous copy.",
    )
    parser.add_argument("--demo", action="store_true",
                        help="load the built-in sandbox's demo account (no API key needed)")
    parser.add_argument("--demo-boxes", type=int, default=None, metavar="N",
                        help="with --demo: size of the generated account in boxes (default: the sandbox's)")
    parser.add_argument("--summary-json", type=Path, default=None, metavar="PATH",
                        help="also write the end-of-run summary as JSON to PATH")
    parser.add_argument("--quiet", action="store_true", help="no progress lines, only the summary")
    args = parser.parse_args(argv)
    if args.demo_boxes is not None and not args.demo:
        parser.error("--demo-boxes needs --demo")
    if args.demo_boxes is not None and args.demo_boxes < 0:
        parser.error("--demo-boxes must be >= 0")
    return args


def _stop_on_sigterm() -> None:
    """SIGTERM (a scheduler stopping the job) ends it like Ctrl-C: one line, exit 130."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    _stop_on_sigterm()
    use_project_settings()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        with _demo_sandbox(args) as demo:
            source_args: dict[str, Any] = {}
            if demo is not None:
                source_args = {"api_key": demo.api_key, "base_url": demo.base_url,
                               "max_requests_per_second": DEMO_REQUESTS_PER_SECOND}
            elif not _api_key_configured():
                print(NO_KEY_MESSAGE, file=sys.stderr)
                return EXIT_NO_KEY
            summary = run_full_load(source_args, progress=None if args.quiet else sys.stdout)
    except KeyboardInterrupt:
        print(INTERRUPTED_MESSAGE, file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # one line, the root cause, never a traceback
        if was_interrupted(exc):  # dlt wraps Ctrl-C during a step in PipelineStepFailed
            print(INTERRUPTED_MESSAGE, file=sys.stderr)
            return EXIT_INTERRUPTED
        print(f"error: {describe_failure(exc)}", file=sys.stderr)
        return EXIT_FAILED
    print_summary(summary, sys.stdout)
    if args.summary_json:
        args.summary_json.write_text(json.dumps(asdict(summary), indent=2, default=str))
    return 0


INTERRUPTED_MESSAGE = "error: interrupted; the destination keeps its previous complete load"


def was_interrupted(exc: BaseException) -> bool:
    """True when Ctrl-C / SIGINT (or dlt's SignalReceivedException) is anywhere in the chain."""
    return any(isinstance(e, KeyboardInterrupt) for e in _exception_chain(exc))


def _api_key_configured() -> bool:
    import dlt

    try:
        value: Any = dlt.secrets.get("sources.streak.api_key")
    except Exception:
        return False
    return bool(value and str(value).strip())


@contextlib.contextmanager
def _demo_sandbox(args: argparse.Namespace) -> Iterator[Any]:
    """The sandbox in-process for ``--demo``; nothing otherwise."""
    if not args.demo:
        yield None
        return
    from streak_source.sandbox import Sandbox

    kwargs = {} if args.demo_boxes is None else {"boxes": args.demo_boxes}
    with Sandbox(**kwargs) as sandbox:
        yield sandbox


def run_full_load(source_args: dict[str, Any], progress: TextIO | None = sys.stdout) -> LoadSummary:
    """Extract, normalize and load the whole account, then (re)create the wide views.

    The new copy replaces the old one whole, in one step, once tables and views are complete:
    a local DuckDB file is loaded as a fresh file renamed over the old one (``duckdb_swap.py``);
    Postgres as a fresh schema renamed into place in one transaction (``dataset_swap.py``). A
    failure at any earlier point leaves the previous copy exactly as it was. Other destinations
    replace table by table (``insert-from-staging`` where they have it).
    """
    target = duckdb_file_target()
    if target is not None:
        with fresh_file_for(target) as loading:
            summary, _ = _extract_normalize_load(
                source_args, progress, warehouse_destination(load_into_duckdb_file=loading), location=str(target),
                replaced_whole=True,
            )
            publish(loading, target)
        summary.replace_strategy = "new file renamed into place"
        return summary
    if configured_destination_type() in SCHEMA_SWAP_TYPES:
        loading_dataset = next_dataset(DATASET_NAME)
        summary, pipeline = _extract_normalize_load(
            source_args, progress, warehouse_destination(fresh_dataset=True), location=None,
            dataset_name=loading_dataset, replaced_whole=True,
        )
        publish_dataset(pipeline, loading_dataset, DATASET_NAME)
        summary.replace_strategy = "new schema renamed into place"
        return summary
    summary, _ = _extract_normalize_load(source_args, progress, warehouse_destination(), location=None)
    return summary


def _extract_normalize_load(
    source_args: dict[str, Any],
    progress: TextIO | None,
    destination: Any,
    location: str | None,
    dataset_name: str = DATASET_NAME,
    replaced_whole: bool = False,
) -> tuple[LoadSummary, Any]:
    """The three dlt steps and the views, into ``dataset_name`` of ``destination``.

    ``replaced_whole``: the destination is a fresh file or schema that will replace the real one,
    so what was there is dropped first and the per-table strategy need not be atomic. Leftover
    packages of an interrupted earlier run are dropped too: every run is a complete, fresh copy.
    """
    import dlt

    from streak_source import RunReport, streak_source
    from streak_source.views import create_wide_views, drop_wide_views

    started = time.monotonic()
    destination_type = configured_destination_type()
    pipeline = dlt.pipeline(pipeline_name=PIPELINE_NAME, destination=destination, dataset_name=dataset_name)
    if pipeline.has_pending_data:
        _say(progress, "dropping the unfinished packages of an interrupted earlier run")
        pipeline.abort_packages()
    report = RunReport()
    source = streak_source(report=report, **source_args)

    summary = LoadSummary(destination=destination_type, location=location or _location(pipeline, destination_type),
                          dataset=DATASET_NAME)
    # Bad destination settings fail here, in one line, not after a long extract.
    summary.replace_strategy = check_warehouse(pipeline, destination_type, summary.location,
                                               replaced_by_rename=replaced_whole)
    if replaced_whole and dataset_name != DATASET_NAME:
        discard_dataset(pipeline, dataset_name)
    file_format: Literal["parquet"] | None = "parquet" if destination_type in _PARQUET_DESTINATIONS else None
    with _progress(report, progress, started):
        pipeline.extract(source, loader_file_format=file_format)
    summary.extract_s = time.monotonic() - started

    _say(progress, "normalizing...")
    step = time.monotonic()
    pipeline.normalize()
    summary.normalize_s = time.monotonic() - step
    normalize_info = pipeline.last_trace.last_normalize_info if pipeline.last_trace else None

    _say(progress, "loading...")
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
    summary.views_s = time.monotonic() - step

    summary.rows = _row_counts(normalize_info, source)
    summary.api_calls = report.requests_sent
    summary.child_calls_skipped = sum(report.skipped_calls.values())
    summary.boxes_read = report.boxes_read
    summary.boxes_gone = sorted(report.skipped_boxes)
    summary.undecoded_field_values = {k: v for k, v in sorted(report.decode_statuses.items()) if k != "ok" and v}
    summary.total_s = time.monotonic() - started
    return summary, pipeline


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
    if destination_type == "duckdb":
        with contextlib.suppress(Exception):
            return str(pipeline.destination_client().config.credentials.database)
        return str(default_duckdb_path())
    with contextlib.suppress(Exception):
        credentials = pipeline.destination_client().config.credentials
        return str(credentials.to_url().render_as_string(hide_password=True))  # type: ignore[union-attr]
    with contextlib.suppress(Exception):
        return str(pipeline.destination_client().config.bucket_url)
    return destination_type


@contextlib.contextmanager
def _progress(report: Any, stream: TextIO | None, started: float, every_s: float = 2.0) -> Iterator[None]:
    """A line every few seconds while extracting, so a 20,000-box account is seen moving."""
    if stream is None:
        yield
        return
    done = threading.Event()

    def tick() -> None:
        while not done.wait(every_s):
            elapsed = time.monotonic() - started
            rate = report.requests_sent / elapsed if elapsed else 0.0
            _say(stream, f"extracting: {report.boxes_read:,} boxes read, {report.requests_sent:,} API calls "
                         f"({rate:.1f}/s), {sum(report.skipped_calls.values()):,} empty child calls skipped "
                         f"[{elapsed:.0f} s]")

    _say(stream, "extracting...")
    thread = threading.Thread(target=tick, name="streak-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def _say(stream: TextIO | None, message: str) -> None:
    if stream is not None:
        print(message, file=stream, flush=True)


def describe_failure(exc: BaseException) -> str:
    """The most telling one-line cause inside dlt's wrapped exceptions, without secrets."""
    from streak_source.client import StreakAPIError

    chain = _exception_chain(exc)
    for candidate in chain:
        if isinstance(candidate, LoadAlreadyRunning):
            return _one_line(str(candidate))
    for candidate in chain:
        if isinstance(candidate, StreakAPIError):
            return f"{_one_line(str(candidate))}; nothing was loaded, the destination keeps its previous load"
    for candidate in chain:
        if isinstance(candidate, ValueError):
            return _one_line(str(candidate))
    root = chain[-1]
    return _one_line(f"{type(root).__name__}: {root}")


def _exception_chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _one_line(text: str) -> str:
    first = " ".join(text.split())
    return first[:500]


def print_summary(summary: LoadSummary, stream: TextIO) -> None:
    width = max((len(name) for name in summary.rows), default=10)
    print(f"Loaded a full copy of the Streak account into {summary.destination}: {summary.location} "
          f"(dataset {summary.dataset})", file=stream)
    for name, count in summary.rows.items():
        print(f"  {name:<{width}}  {count:>9,}", file=stream)
    rate = summary.api_calls / summary.extract_s if summary.extract_s else 0.0
    print(f"API calls: {summary.api_calls:,} ({rate:.1f}/s during extract); "
          f"child calls skipped by box counters: {summary.child_calls_skipped:,}", file=stream)
    if summary.boxes_gone:
        print(f"Boxes gone during the run (their children skipped): {len(summary.boxes_gone)}: "
              f"{', '.join(summary.boxes_gone[:5])}{' ...' if len(summary.boxes_gone) > 5 else ''}", file=stream)
    else:
        print("Boxes gone during the run: 0", file=stream)
    if summary.undecoded_field_values:
        detail = ", ".join(f"{k} {v}" for k, v in summary.undecoded_field_values.items())
        print(f"Custom-field values kept as raw text: {sum(summary.undecoded_field_values.values())} ({detail})",
              file=stream)
    if summary.views:
        print(f"Wide views: {', '.join(f'{summary.dataset}.{v}' for v in summary.views)}", file=stream)
    print(f"Elapsed: {summary.total_s:.1f} s (extract {summary.extract_s:.1f}, normalize {summary.normalize_s:.1f}, "
          f"load {summary.load_s:.1f}, views {summary.views_s:.1f})", file=stream)
    print("Next: streamlit run dashboards/streak_dashboard.py", file=stream)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
