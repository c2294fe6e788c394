"""Spooled events -> ``crm.events``: the small step ``streak_events.py load`` and the main job call.

``drain`` repeats read_batch -> ``load(rows)`` -> ack until nothing is pending; if ``load`` raises,
that batch is not acknowledged (the next run hands it over again; the merge on ``event_key`` makes
the repeat harmless). The ``load`` the project passes (``pipelines/events_load.py``) merges into the
persistent ``crm.events`` (streak_warehouse/events_table.py) with SQL rather than a dlt merge: the
table must survive the main job's whole-copy swap, which a dlt-managed table's schema state would
not follow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from .spool import Spool

BATCH_SIZE: Final = 10_000


def drain(spool: Spool, load: Callable[[list[dict[str, Any]]], object], batch_size: int = BATCH_SIZE) -> int:
    """Hand every pending event to ``load`` batch by batch, acking each after ``load`` returns."""
    handed = 0
    while True:
        batch = spool.read_batch(batch_size)
        if not batch.rows:
            return handed
        load(batch.rows)
        spool.ack(batch)
        handed += len(batch)
        if len(batch) < batch_size:
            return handed
