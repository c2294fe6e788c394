"""``load_history``: one row per run (ok, failed or interrupted), kept across replace runs.

The table is a kept table (``kept_tables.py``), so it survives the DuckDB file swap, the Postgres schema swap
and a fresh machine (it lives in the destination, not in dlt's working dir). A successful run writes
its own row into the fresh copy before publishing it. A failed or interrupted run must not touch the
live copy, so it leaves a *side record* (one JSON line in a file under dlt's data dir, keyed by the
destination) that the next successful run carries into the table; a run killed with SIGKILL leaves
none. Contract (plan.md): ``run_id`` (PK), ``started_at``, ``finished_at``, ``outcome``
(``ok``|``failed``|``interrupted``), ``error``, ``mode``, ``destination``, ``rows_per_table`` (JSON
text), ``rows_total``, ``api_calls``, ``boxes_read``, ``boxes_skipped``, ``duration_s``, plus
``rejected_records`` (records the loader quarantined) and ``history_calls`` (per-box newsfeed calls
made for stage history, issue 13) and ``layout_version`` (the warehouse layout the run's code writes:
``layout_version.py``; the newest ``ok`` row's says what the copy is) and ``privacy`` (the
fingerprint of the run's ``[privacy]`` policy: ``streak_warehouse/privacy_rewrite.py``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import streak_clock
from streak_warehouse import layout_version
from streak_warehouse.kept_tables import LOAD_HISTORY

OUTCOMES: Final = ("ok", "failed", "interrupted")


def history_row(
    *,
    run_id: str,
    started_at: datetime,
    outcome: str,
    destination: str,
    error: str | None = None,
    rows_per_table: Mapping[str, int] | None = None,
    api_calls: int = 0,
    boxes_read: int = 0,
    boxes_skipped: int = 0,
    rejected_records: int | None = None,
    history_calls: int | None = None,
    mode: str = "full",
    finished_at: datetime | None = None,
    privacy: str | None = None,
) -> dict[str, Any]:
    """One ``load_history`` row; ``finished_at`` defaults to now."""
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {OUTCOMES}, not {outcome!r}")
    finished = finished_at or streak_clock.now()
    rows = dict(sorted((rows_per_table or {}).items()))
    return {
        "run_id": run_id, "started_at": started_at.isoformat(), "finished_at": finished.isoformat(),
        "outcome": outcome, "error": error, "mode": mode, "destination": destination,
        "rows_per_table": json.dumps(rows), "rows_total": sum(rows.values()), "api_calls": api_calls,
        "boxes_read": boxes_read, "boxes_skipped": boxes_skipped,
        "duration_s": round((finished - started_at).total_seconds(), 3), "rejected_records": rejected_records,
        "history_calls": history_calls, "layout_version": layout_version.LAYOUT_VERSION, "privacy": privacy,
    }


def side_record_path(location: str) -> Path:
    """Where runs that did not publish leave their rows for ``location`` (dlt's data dir)."""
    import dlt

    digest = hashlib.sha256(location.encode()).hexdigest()[:16]
    return Path(dlt.current.run_context().data_dir) / "streak_runs" / f"unrecorded-{digest}.jsonl"


def leave_side_record(location: str, row: Mapping[str, Any]) -> Path | None:
    """Append ``row`` for the next successful run; None (never an error) when it cannot be written:
    the run is failing already, and a full disk must not hide its real cause."""
    path = side_record_path(location)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as stream:
            stream.write(json.dumps(dict(row), default=str) + "\n")
    except OSError:
        return None
    return path


def side_records(location: str) -> list[dict[str, Any]]:
    """Rows left by earlier runs for ``location`` (unreadable lines are skipped), in this layout's
    columns (a record left by an older release goes through ``migrations.py`` like the table)."""
    from streak_warehouse import migrations

    current = layout_version.LAYOUT_VERSION
    return [migrations.migrated_row(LOAD_HISTORY.name, row, int(row.get("layout_version") or layout_version.FIRST_LAYOUT),
                                    current) for row in _raw_side_records(location)]


def _raw_side_records(location: str) -> list[dict[str, Any]]:
    path = side_record_path(location)
    rows: list[dict[str, Any]] = []
    with contextlib.suppress(OSError):
        for line in path.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError):
                row = json.loads(line)
                if isinstance(row, dict) and row.get("run_id"):
                    rows.append(row)
    return rows


def forget_side_records(location: str, run_ids: set[str]) -> None:
    """Drop the side records now stored in the destination (others, e.g. written meanwhile, stay)."""
    path = side_record_path(location)
    remaining = [row for row in _raw_side_records(location) if row["run_id"] not in run_ids]
    with contextlib.suppress(OSError):
        if remaining:
            path.write_text("".join(json.dumps(row, default=str) + "\n" for row in remaining), encoding="utf-8")
        else:
            path.unlink(missing_ok=True)
