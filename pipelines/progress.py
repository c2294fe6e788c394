"""What the user sees while and after a run: progress lines, and the end-of-run summary."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TextIO

from pipelines.failures import EXIT_OK, EXIT_STATUSES, RUN_STATUSES


@dataclass
class LoadSummary:
    """What a run did; printed at the end and written as JSON with ``--summary-json``."""

    destination: str
    location: str
    dataset: str
    run_id: str = ""
    mode: str = "full"
    """How the copy was made: ``full`` (every box's children read) or ``changed`` (only changed boxes')."""
    mode_reason: str = ""
    """Why this mode: ``the default``, ``asked for``, or why a ``changed`` refresh fell back to a full load."""
    rows: dict[str, int] = field(default_factory=dict)
    api_calls: int = 0
    child_calls_skipped: int = 0
    boxes_read: int = 0
    boxes_gone: list[str] = field(default_factory=list)
    undecoded_field_values: dict[str, int] = field(default_factory=dict)
    rejected_records: int = 0
    """Records the loader quarantined in ``rejected_records``."""
    rejected_by_table: dict[str, int] = field(default_factory=dict)
    history_calls: int = 0
    """Per-box newsfeed calls made for stage history (part of ``api_calls``)."""
    history_unchanged: int = 0
    """Boxes whose newsfeed was not read: unchanged since the previous load (or no previous load)."""
    history_stays: int = 0
    """Rows of ``box_stage_history`` after this run."""
    history_added: int = 0
    history_inexact: int = 0
    views: list[str] = field(default_factory=list)
    replace_strategy: str | None = None
    extract_s: float = 0.0
    normalize_s: float = 0.0
    load_s: float = 0.0
    views_s: float = 0.0
    history_s: float = 0.0
    versions_added: dict[str, int] = field(default_factory=dict)
    """History mode: new versions this run stored, per table (``crm.<table>_history``); none: nothing changed."""
    records_deleted: dict[str, int] = field(default_factory=dict)
    """History mode: records gone since the previous load, per table (``crm.deletions``)."""
    versions_s: float = 0.0
    total_s: float = 0.0


def say(stream: TextIO | None, message: str) -> None:
    if stream is not None:
        print(message, file=stream, flush=True)


@contextlib.contextmanager
def extract_progress(report: Any, stream: TextIO | None, started: float, every_s: float = 2.0) -> Iterator[None]:
    """A line every few seconds while extracting, so a 20,000-box account is seen moving."""
    if stream is None:
        yield
        return
    done = threading.Event()

    def tick() -> None:
        while not done.wait(every_s):
            elapsed = time.monotonic() - started
            rate = report.requests_sent / elapsed if elapsed else 0.0
            history = f", {report.history_calls:,} history calls" if report.history_calls else ""
            say(stream, f"extracting: {report.boxes_read:,} boxes read, {report.requests_sent:,} API calls "
                        f"({rate:.1f}/s){history}, {sum(report.skipped_calls.values()):,} empty child calls skipped "
                        f"[{elapsed:.0f} s]")

    say(stream, "extracting...")
    thread = threading.Thread(target=tick, name="streak-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def print_summary(summary: LoadSummary, stream: TextIO) -> None:
    width = max((len(name) for name in summary.rows), default=10)
    print(f"Loaded a full copy of the Streak account into {summary.destination}: {summary.location} "
          f"(dataset {summary.dataset})", file=stream)
    print(f"Mode: {summary.mode}{f' ({summary.mode_reason})' if summary.mode_reason else ''}", file=stream)
    for name, count in summary.rows.items():
        print(f"  {name:<{width}}  {count:>9,}", file=stream)
    rate = summary.api_calls / summary.extract_s if summary.extract_s else 0.0
    print(f"API calls: {summary.api_calls:,} ({rate:.1f}/s during extract); "
          f"child calls skipped by box counters: {summary.child_calls_skipped:,}", file=stream)
    if summary.destination == "filesystem":
        print("Stage history, load history and events: not kept on a filesystem destination "
              "(docs/destinations.md)", file=stream)
    else:
        print(f"Stage history: {summary.history_calls:,} per-box newsfeed calls (boxes new or moved since the "
              f"previous load; {summary.history_unchanged:,} unchanged, not called); {summary.dataset}.box_stage_history: "
              f"{summary.history_stays:,} stays ({summary.history_added:,} new, {summary.history_inexact:,} not exact)",
              file=stream)
    if summary.boxes_gone:
        print(f"Boxes gone during the run (their children skipped): {len(summary.boxes_gone)}: "
              f"{', '.join(summary.boxes_gone[:5])}{' ...' if len(summary.boxes_gone) > 5 else ''}", file=stream)
    else:
        print("Boxes gone during the run: 0", file=stream)
    detail = ", ".join(f"{k} {v}" for k, v in summary.rejected_by_table.items() if v)
    print(f"Records rejected (kept in {summary.dataset}.rejected_records): {summary.rejected_records:,}"
          f"{f' ({detail})' if detail else ''}", file=stream)
    if summary.undecoded_field_values:
        print(undecoded_line(summary.undecoded_field_values, summary.dataset), file=stream)
    if summary.views:
        print(f"Wide views: {', '.join(f'{summary.dataset}.{v}' for v in summary.views)}", file=stream)
    print(f"Elapsed: {summary.total_s:.1f} s (extract {summary.extract_s:.1f}, normalize {summary.normalize_s:.1f}, "
          f"load {summary.load_s:.1f}, views {summary.views_s:.1f}, history {summary.history_s:.1f}, "
          f"versions {summary.versions_s:.1f})", file=stream)
    print("Next: streamlit run dashboards/streak_dashboard.py", file=stream)


def undecoded_line(by_status: dict[str, int], dataset: str) -> str:
    """The summary line on custom-field values that could not be decoded: how many, why in words, and
    the query that lists them (the raw value is kept as text, nothing is lost)."""
    from streak_source.field_values import DECODE_STATUS_MEANINGS

    reasons = "; ".join(f"{count:,} {DECODE_STATUS_MEANINGS.get(status, status)}"
                        for status, count in by_status.items())
    return (f"Custom-field values that could not be decoded: {sum(by_status.values()):,} ({reasons}). Kept as "
            f"text; to see them: select box_key, field_name, value_text, decode_status from "
            f"{dataset}.box_field_values where decode_status <> 'ok'")


def backfill_estimate(previous: Any, source_args: dict[str, Any]) -> str:
    """The line ``--backfill-history`` prints before it starts: its extra calls and their time at the
    configured rate (``previous``: the live copy's ``PreviousHistory``; its box count, when known)."""
    from streak_source.history_calls import estimated_seconds

    rate = configured_rate(source_args)
    if previous.stage_changes is None:
        return (f"--backfill-history: one newsfeed call per box on top of the full load (the box count is known "
                f"once boxes are listed): {estimated_seconds(1000, rate):.0f} s per 1,000 boxes at {rate:g} requests/s")
    boxes = len(previous.stage_changes)
    return (f"--backfill-history: about {boxes:,} newsfeed calls (one per box of the previous load), "
            f"~{estimated_seconds(boxes, rate) / 60:.1f} min at {rate:g} requests/s on top of the full load")


def configured_rate(source_args: dict[str, Any]) -> float:
    """The run's ``max_requests_per_second``: the source argument, else config, else Streak's default."""
    import dlt

    from streak_source import settings

    value = source_args.get("max_requests_per_second")
    if value is None:
        with contextlib.suppress(Exception):
            value = dlt.config.get("sources.streak.max_requests_per_second")
    try:
        rate = float(value) if value is not None else settings.DEFAULT_MAX_REQUESTS_PER_SECOND
    except (TypeError, ValueError):
        rate = settings.DEFAULT_MAX_REQUESTS_PER_SECOND
    return rate if rate > 0 else settings.DEFAULT_MAX_REQUESTS_PER_SECOND


# --- the machine-readable outcome (``--summary-json``) -----------------------------------------

SUMMARY_SCHEMA_VERSION: Final = 1
"""Bumped when a field changes meaning or goes away (adding one does not); docs/summary.schema.json."""


def outcome_document(
    summary: LoadSummary | None,
    *,
    exit_code: int,
    reason: str,
    started_at: datetime,
    finished_at: datetime,
    requested_mode: str = "full",
    locked_by: Any = None,
    failed_report: Any = None,
) -> dict[str, Any]:
    """The ``--summary-json`` document: how the run ended, plus every :class:`LoadSummary` field.

    A run that did not finish has no summary: its counters are null (unknown), not zero, so a
    monitor never mistakes "failed after reading nothing" for "the account is empty". Only what the
    failed run's ``RunReport`` (``failed_report``) counted before it stopped is known: the API
    calls it made, the boxes it read and those it found gone.
    """
    if summary is not None:
        fields = asdict(summary)
        fields["boxes_skipped"] = len(summary.boxes_gone)
        fields["undecoded_values"] = sum(summary.undecoded_field_values.values())
    else:
        fields = {name: None for name in LoadSummary.__dataclass_fields__}
        fields.update(boxes_skipped=None, undecoded_values=None, mode=requested_mode,
                      mode_reason="requested; the run ended before it loaded")
        if failed_report is not None:
            fields.update(api_calls=failed_report.requests_sent, history_calls=failed_report.history_calls,
                          boxes_read=failed_report.boxes_read, boxes_gone=sorted(failed_report.skipped_boxes),
                          boxes_skipped=len(failed_report.skipped_boxes))
    return {
        "schema_version": SUMMARY_SCHEMA_VERSION,
        "status": RUN_STATUSES.get(exit_code, "failed"),
        "exit_code": exit_code,
        "exit_reason": reason,
        "started_at": _iso(started_at),
        "finished_at": _iso(finished_at),
        "wall_s": round((finished_at - started_at).total_seconds(), 3),
        "locked_by": asdict(locked_by) if locked_by is not None else None,
        **fields,
    }


def _iso(moment: datetime) -> str:
    """ISO 8601 in UTC to the millisecond, e.g. ``2026-12-02T03:00:00.125Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def success_reason() -> str:
    return EXIT_STATUSES[EXIT_OK]


def write_json_atomically(path: Path, document: dict[str, Any]) -> None:
    """Write ``document`` to ``path`` through a temporary file in the same directory renamed over
    it, so a monitor reading ``path`` sees the previous run's document or this one, never half."""
    path = path.expanduser()
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or Path("."))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            json.dump(document, stream, indent=2, default=str)
            stream.write("\n")
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o644)  # mkstemp makes it 0600; a monitor may run as another user
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def quiet_line(summary: LoadSummary) -> str:
    """The one line ``--quiet`` prints on success: what was loaded where, how, and how long it took."""
    rows = sum(summary.rows.values())
    gone = f", {len(summary.boxes_gone):,} boxes gone" if summary.boxes_gone else ""
    rejected = f", {summary.rejected_records:,} records rejected" if summary.rejected_records else ""
    return (f"ok: {rows:,} rows in {len(summary.rows)} tables into {summary.destination}: {summary.location} "
            f"(dataset {summary.dataset}); {summary.api_calls:,} API calls{gone}{rejected}; refresh {summary.mode}; "
            f"{summary.total_s:.1f} s")
