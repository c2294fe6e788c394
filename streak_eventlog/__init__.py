"""The events wing (issue 14): receive events, keep them durably, hand them to the warehouse.

* ``contract.py``: the custom-events contract (Streamlined's Custom Events API), pure parsing.
* ``webhook_events.py``: Streak webhook deliveries -> events, with stable ``distinct_id``s.
* ``spool.py``: the local durable store (SQLite WAL, group commit) and the two-phase handover
  ``Spool.read_batch() -> Batch(rows)``, the caller loads ``rows`` into ``crm.events``,
  ``Spool.ack(batch)``; ``EVENTS_COLUMN_HINTS`` are the table's dlt column hints.
* ``spooled.py``: a spooled row -> a ``crm.events`` row, or a ``RejectedEvent`` (why it cannot load).
* ``app.py``: the Starlette routes; ``serve.py``: uvicorn, signals, the first stdout line.
* ``config.py``: ``[events]`` settings through dlt (``EVENTS__API_KEY``, ``EVENTS__WEBHOOK_TOKEN``).
* ``streak_api.py``, ``webhooks.py``: registering, listing and deleting Streak webhooks through the
  main job's ``StreakClient`` (its limiter, retries and key handling).

``pipelines/streak_events.py`` is the command line (``pipelines/events_cli.py``); loading the spool into
the warehouse is ``pipelines/events_load.py``. Nothing here imports ``pipelines`` or
``streak_warehouse``. docs/events.md is the user guide.
"""

from .spool import EVENTS_COLUMN_HINTS, ROW_COLUMNS, Batch, Spool, SpoolRecord
from .spooled import RejectedEvent

__all__ = ["EVENTS_COLUMN_HINTS", "ROW_COLUMNS", "Batch", "RejectedEvent", "Spool", "SpoolRecord"]
