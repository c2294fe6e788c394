"""The main job's part of a ``[privacy]`` rule change (``streak_warehouse/privacy_rewrite.py``): in the
publishing transaction, when the previous complete load ran under other rules, the kept tables are
rewritten under this run's, and so is the events spool; spooled events about to be merged are
protected every run (the receiver may have spooled them under other rules)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from pipelines.progress import say
from streak_source.privacy import PrivacyPolicy
from streak_warehouse.history_mode import TrackedTable
from streak_warehouse.privacy_rewrite import (
    event_change, previous_fingerprint, protect_events, protect_history, protect_pending,
)
from streak_warehouse.sql import driver_name, executor

REWRITING_DRIVERS = frozenset({"duckdb", "psycopg2"})
"""Destinations whose kept rows can be rewritten in place (``table_rewrite.row_ids``)."""


@dataclass
class RuleChange:
    """One run's rewrite of what was kept under other rules."""

    policy: PrivacyPolicy
    previous: str
    started: float = field(default_factory=time.monotonic)
    rows: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        total = sum(self.rows.values())
        tables = ", ".join(f"{name} {count:,}" for name, count in sorted(self.rows.items(), key=lambda i: -i[1])[:6])
        return (f"privacy: the rules changed since the previous load ({self.previous} -> {self.policy.fingerprint}): "
                f"{total:,} stored rows rewritten" + (f" ({tables})" if tables else "")
                + f" ({time.monotonic() - self.started:.1f} s)")


def start_rule_change(client: Any, dataset: str, policy: PrivacyPolicy | None, run_id: str,
                      tracked: Sequence[TrackedTable], progress: TextIO | None) -> RuleChange | None:
    """When the previous complete load ran under other rules: rewrite the history tables under
    ``policy`` (before this run's versions are compared with them). None: nothing to do."""
    if policy is None or not policy.active:
        return None
    execute = executor(client)
    previous = previous_fingerprint(execute, dataset, run_id)
    if previous is None or previous == policy.fingerprint:
        return None
    driver = driver_name(client)
    if driver not in REWRITING_DRIVERS:
        say(progress, f"privacy: the rules changed, but the kept tables on {driver} cannot be rewritten in place: "
                      "values stored under the old rules stay as they are (docs/privacy.md)")
        return None
    change = RuleChange(policy, previous)
    change.rows.update(protect_history(execute, dataset, policy, tracked, driver, _native(client, driver)))
    return change


def finish_rule_change(change: RuleChange | None, client: Any, dataset: str, progress: TextIO | None) -> bool:
    """The rest of a rule change, after the events were merged: ``crm.events``, the spool, and the
    load packages of earlier runs in dlt's working dir (written under the old rules). True when
    something was rewritten (a DuckDB file is then written anew)."""
    from dlt.common.pipeline import get_dlt_pipelines_dir

    if change is None:
        return False
    driver = driver_name(client)
    events = protect_events(executor(client), dataset, change.policy, driver, _native(client, driver))
    if events:
        change.rows["events"] = events
    spooled = _protect_spool(change.policy)
    if spooled:
        change.rows["events spool"] = spooled
    packages = drop_load_packages(Path(get_dlt_pipelines_dir()))
    say(progress, change.line() + (f"; {packages} load package(s) of earlier runs deleted from dlt's working dir"
                                   if packages else ""))
    return True


def drop_load_packages(pipelines_dir: Path) -> int:
    """Delete every load package in the job's dlt working dir under ``pipelines_dir`` (call under its
    lock); how many. dlt keeps the files of every completed load there, and nothing reads them again
    (an unfinished one the next run drops anyway)."""
    from dlt.common.storages.load_storage import LoadStorage
    from dlt.common.storages.normalize_storage import NormalizeStorage

    from streak_warehouse.destination import PIPELINE_NAME

    root = pipelines_dir / PIPELINE_NAME
    folders = [root / "load" / LoadStorage.LOADED_FOLDER, root / "load" / LoadStorage.NORMALIZED_FOLDER,
               root / "load" / LoadStorage.NEW_PACKAGES_FOLDER, root / "normalize" / NormalizeStorage.EXTRACTED_FOLDER]
    packages = [package for folder in folders if folder.is_dir() for package in folder.iterdir()]
    for package in packages:
        if package.is_dir():
            shutil.rmtree(package)
        else:
            package.unlink()
    return len(packages)


def _native(client: Any, driver: str) -> Any:
    """The DuckDB connection behind ``client`` (its rewrite's fast path), else None."""
    return getattr(client, "native_connection", None) if driver == "duckdb" else None


def _protect_spool(policy: PrivacyPolicy) -> int:
    from pipelines.events_load import configured_spool
    from streak_eventlog.spool_rewrite import rewrite_spool, spool_keys

    path = configured_spool()
    if path is None:
        return 0
    superseded: list[str] = []
    return rewrite_spool(path, event_change(policy, spool_keys(path), superseded), lambda: superseded).rows


def protect_pending_events(policy: PrivacyPolicy | None, pending: Any) -> None:
    """The spool's pending events protected in memory before they are merged (``events_load.Pending``)."""
    if policy is not None and policy.active and pending is not None:
        protect_pending(policy, pending.batch.rows, pending.rejected)
