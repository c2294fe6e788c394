"""What the user sees while and after a run: progress lines, and the end-of-run summary."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO


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
    """Why this mode: asked for, or why a ``changed`` refresh fell back to a full load."""
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
    for name, count in summary.rows.items():
        print(f"  {name:<{width}}  {count:>9,}", file=stream)
    rate = summary.api_calls / summary.extract_s if summary.extract_s else 0.0
    print(f"API calls: {summary.api_calls:,} ({rate:.1f}/s during extract); "
          f"child calls skipped by box counters: {summary.child_calls_skipped:,}", file=stream)
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
        detail = ", ".join(f"{k} {v}" for k, v in summary.undecoded_field_values.items())
        print(f"Custom-field values kept as raw text: {sum(summary.undecoded_field_values.values())} ({detail})",
              file=stream)
    if summary.views:
        print(f"Wide views: {', '.join(f'{summary.dataset}.{v}' for v in summary.views)}", file=stream)
    print(f"Elapsed: {summary.total_s:.1f} s (extract {summary.extract_s:.1f}, normalize {summary.normalize_s:.1f}, "
          f"load {summary.load_s:.1f}, views {summary.views_s:.1f}, history {summary.history_s:.1f})", file=stream)
    print("Next: streamlit run dashboards/streak_dashboard.py", file=stream)


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
