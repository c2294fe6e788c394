"""Spooled events -> ``crm.events``: the small step ``streak_events.py load`` and the main job call.

``drain`` repeats read_batch -> ``load(rows, rejected)`` -> ack until nothing is pending; if ``load``
raises, that batch is not acknowledged (the next run hands it over again; the merge on ``event_key``
makes the repeat harmless). ``rejected`` are the batch's events that cannot be loaded
(``spooled.py``): ``load`` keeps them in ``crm.rejected_records``, and the ack settles them with the
rest, so one bad row never stops a load. The ``load`` the project passes (``pipelines/events_load.py``)
merges into the persistent ``crm.events`` (streak_warehouse/events_table.py) with SQL rather than a
dlt merge: the table must survive the main job's whole-copy swap, which a dlt-managed table's schema
state would not follow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from .spool import Spool
from .spooled import RejectedEvent

BATCH_SIZE: Final = 10_000


@dataclass(frozen=True)
class Drained:
    loaded: int
    """Events handed to ``load`` as rows (and acknowledged)."""
    rejected: int
    """Events that could not be loaded, handed to ``load`` as rejected (and acknowledged)."""


def drain(
    spool: Spool,
    load: Callable[[list[dict[str, Any]], tuple[RejectedEvent, ...]], object],
    batch_size: int = BATCH_SIZE,
) -> Drained:
    """Hand every pending event to ``load`` batch by batch, acking each after ``load`` returns."""
    loaded = rejected = 0
    while True:
        batch = spool.read_batch(batch_size)
        if not len(batch):
            return Drained(loaded, rejected)
        load(batch.rows, batch.rejected)
        spool.ack(batch)
        loaded += len(batch.rows)
        rejected += len(batch.rejected)
        if len(batch) < batch_size:
            return Drained(loaded, rejected)
