"""Spooled events -> ``crm.events``: the small step the warehouse load and the main job's hook call.

    from streak_eventlog.handover import drain, events_resource
    drain(Spool(path, writer=False), lambda rows: pipeline.run(events_resource(rows)))

``drain`` repeats read_batch -> ``load(rows)`` -> ack until nothing is pending; if ``load`` raises,
that batch is not acknowledged (the next run hands it over again; the merge on ``event_key`` makes
the repeat harmless). ``events_resource`` is the dlt resource for one batch: table ``events``,
``merge`` on ``event_key``, the column types of ``EVENTS_COLUMN_HINTS`` (``properties`` as JSON,
not a child table). Where the table lives and how it outlives replace runs is the warehouse's
(streak_warehouse/persistent.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, cast

import dlt
from dlt.common.schema.typing import TTableSchemaColumns
from dlt.extract.resource import DltResource

from .spool import EVENTS_COLUMN_HINTS, Spool

TABLE_NAME: Final = "events"
BATCH_SIZE: Final = 10_000


def events_resource(rows: list[dict[str, Any]]) -> DltResource:
    return dlt.resource(
        rows,
        name=TABLE_NAME,
        table_name=TABLE_NAME,
        write_disposition="merge",
        primary_key="event_key",
        columns=cast(TTableSchemaColumns, EVENTS_COLUMN_HINTS),
    )


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
