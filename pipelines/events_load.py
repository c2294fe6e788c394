"""Spooled events -> ``crm.events``: ``python pipelines/streak_events.py load``, and the main job's hook.

The command (:func:`load_spooled_events`) merges every pending spool event into ``crm.events`` of the
LIVE copy (the destination kind of ``streak_warehouse/targets/``, as the main job's), holding the
main job's run lock for that destination (a DuckDB file: its ``.lock`` file; Postgres: the advisory
lock on the dataset; other SQL destinations: the destination lock file), so the two never write it
at the same moment. Each
spool batch is acknowledged only after the transaction that merged it committed; a failed load
acknowledges nothing (the next load hands the events over again, and the merge makes that harmless).

The main job (``pipelines/job.py``) calls :func:`pending_events` before publishing, has the copy
merge the rows into the FRESH copy with :func:`merge_with_client` (after the kept tables were
carried over) and :func:`acknowledge` s them
once the copy is published. In the same step (same transaction) it adds the events derived from
that copy (``streak_warehouse/derived_events.py``), after the spool's, so a change that also came
by webhook is that webhook's event. Merge rules and the table: ``streak_warehouse/events_table.py``.

A spooled event that cannot be loaded (``streak_eventlog/spooled.py``) never stops either: it goes
to ``crm.rejected_records`` (``events_table.keep_rejected``) and is acknowledged with the rest. As
that table is replaced by every run, both write ALL the spool's rejected events each time (the
spool keeps them marked), so they are in every copy as long as the spool is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TextIO

import streak_clock
from pipelines.progress import say

ALL_PENDING: Final = 10_000_000
"""The main job hands every pending event over in one batch (it acks only after publishing)."""
DERIVING_DRIVERS: Final = frozenset({"duckdb", "psycopg2"})
"""Drivers (``streak_warehouse.sql.driver_name``) of the destinations derived events are added on
(their SQL: ``EXTRACT(EPOCH ...)``, ``NOT EXISTS`` into a keyed table; the events merge itself needs
``ON CONFLICT`` as well)."""


@dataclass
class LoadResult:
    events: int
    location: str
    rejected: int = 0
    """Spooled events that could not be loaded (kept in ``crm.rejected_records``)."""


def configured_spool() -> Path | None:
    """``[events] spool_path`` when that spool file exists, else None."""
    from streak_eventlog.config import load_events_config

    path = Path(str(load_events_config(need_keys=False).spool_path)).expanduser()
    return path if path.is_file() else None


@dataclass
class Pending:
    spool: Any
    batch: Any
    kept_rejected: list[Any]
    """Events of the spool rejected by earlier loads (``Spool.rejected``): written into each copy."""

    @property
    def rows(self) -> list[dict[str, Any]]:
        return list(self.batch.rows)

    @property
    def rejected(self) -> list[Any]:
        """Every rejected event the copy must show: earlier loads' and this batch's."""
        return [*self.kept_rejected, *self.batch.rejected]


def pending_events(progress: TextIO | None = None) -> Pending | None:
    """Every event not yet handed over from the configured spool (and those it holds as rejected),
    or None (no spool, nothing to write, or the spool cannot be read: then the run goes on without
    them and says so)."""
    from streak_eventlog.spool import Spool

    try:
        path = configured_spool()
        if path is None:
            return None
        spool = Spool(path, writer=False)
        batch = spool.read_batch(limit=ALL_PENDING)
        kept = spool.rejected()
    except Exception as exc:  # noqa: BLE001 - the CRM copy must not fail for the events log
        say(progress, f"events: the spool cannot be read ({type(exc).__name__}); events are not loaded this run")
        return None
    return Pending(spool, batch, kept) if len(batch) or kept else None


def acknowledge(pending: Pending | None, progress: TextIO | None = None) -> None:
    """Ack ``pending`` after the copy holding it was published (a failed ack only means a harmless reload)."""
    if pending is None or not len(pending.batch):
        return
    try:
        pending.spool.ack(pending.batch)
        say(progress, f"events: {len(pending.batch.rows)} spooled events loaded into crm.events"
                      + rejected_note(len(pending.batch.rejected)))
    except Exception as exc:  # noqa: BLE001
        say(progress, f"events: loaded, but the spool could not be acknowledged ({type(exc).__name__}); "
                      "the next load merges them again")


def rejected_note(count: int) -> str:
    """What a load says of the events it could not load ("" when none)."""
    return f"; {count} could not be loaded (kept in crm.rejected_records)" if count else ""


def load_spooled_events(progress: TextIO | None = None) -> LoadResult:
    """The ``load`` command: merge the spool into the live ``crm.events`` under the run lock (and
    write every event the spool holds as rejected into ``crm.rejected_records``).

    Raises :class:`~streak_warehouse.locks.LoadAlreadyRunning` when the main job (or another load)
    holds the lock.
    """
    from streak_eventlog.spool import Spool
    from streak_warehouse.destination import DATASET_NAME, use_project_settings
    from streak_warehouse.events_table import keep_rejected, merge_rows
    from streak_warehouse.locks import RunOwner
    from streak_warehouse.targets.configured import configured_target

    use_project_settings()
    path = configured_spool()
    live = configured_target().live_copy()
    location = live.location
    if path is None:
        return LoadResult(0, location)
    with live.locked(RunOwner.this_process()) as session:
        session.read(lambda execute: refuse_other_layout(execute, DATASET_NAME, location))

        def load(rows: list[dict[str, Any]], rejected: Sequence[Any]) -> None:
            with session.transaction() as execute:
                merge_rows(execute, DATASET_NAME, rows)
                keep_rejected(execute, DATASET_NAME, rejected)

        return _drained(Spool(path, writer=False), load, location)


def _drained(spool: Any, load: Callable[[list[dict[str, Any]], Sequence[Any]], object], location: str) -> LoadResult:
    """Drain ``spool`` through ``load``, then hand ``load`` (no rows) every event the spool holds as
    rejected, so ``crm.rejected_records`` shows them again after a replace run that did not."""
    from streak_eventlog.handover import drain

    drained = drain(spool, load)
    kept = spool.rejected()
    if kept:
        load([], kept)
    return LoadResult(drained.loaded, location, drained.rejected)


def refuse_other_layout(execute: Any, dataset: str, location: str) -> None:
    """Stop (one line, nothing written) when the live copy was written by another warehouse layout:
    only the main job migrates a copy (``streak_warehouse/upgrade.py``); events merged into an older
    copy by newer code, or the other way round, would mix two layouts of ``crm.events``."""
    from streak_warehouse.destination import WarehouseConfigError
    from streak_warehouse.layout_version import LAYOUT_VERSION, written_layout_version

    written = written_layout_version(execute, dataset)
    if written is None or written == LAYOUT_VERSION:
        return
    action = ("run the main job (pipelines/streak_full.py) once to upgrade it, then load again" if written < LAYOUT_VERSION
              else f"run a version that writes layout {written} or newer")
    raise WarehouseConfigError(f"{location} was written by warehouse layout {written}, this version writes layout "
                               f"{LAYOUT_VERSION}: {action}; no events were loaded (they stay in the spool)")


def merge_with_client(client: Any, dataset: str, pending: Pending | None, progress: TextIO | None = None) -> None:
    """The main job's hook through a dlt sql client (inside the caller's transaction): the spool's
    events, then the events derived from the copy ``dataset`` that ``crm.events`` lacks."""
    from streak_warehouse.events_table import add_derived_events, keep_rejected, merge_rows
    from streak_warehouse.sql import driver_name, executor

    if pending is not None:
        execute = executor(client)
        merge_rows(execute, dataset, pending.rows)
        keep_rejected(execute, dataset, pending.rejected)
    if driver_name(client) not in DERIVING_DRIVERS:
        say(progress, "events: no events derived (they need a DuckDB or Postgres destination)")
        return
    derived = add_derived_events(client, dataset, streak_clock.now())
    say(progress, f"events: {derived.added} new events derived from the copy ({derived.seconds:.1f} s)")
