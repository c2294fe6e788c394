"""The version of the warehouse layout this code writes: the ONE number both the upgrade path and the
refresh mode compare against what a destination was written with.

Bump it when a release changes tables or columns (added, renamed, dropped, retyped) of the copy or
of the persistent tables; a run that finds an older number rebuilds what it must (and a ``changed``
refresh falls back to a full load) instead of mixing two layouts. How to bump it and declare what
changed: docs/development.md ("Changing the warehouse layout"); what a run then does:
``streak_warehouse/upgrade.py``.

Every complete load records the number it wrote in its ``load_history`` row (column
``layout_version``); :func:`written_layout_version` reads it back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

from streak_warehouse.sql import columns_of, qualified, quote_identifier

LAYOUT_VERSION: Final = 3
"""1: the layout of the first releases (copy, wide views, load_history, box_stage_history, events).
2: history mode (``crm.<table>_history`` for every keyed table, the ``crm.deletions`` view), and
``box_newsfeed`` keeps every entry ever fetched (``history_mode.py``). Nothing to migrate: the new
tables start with the first run of this layout; the bump stops an older release from replacing
a copy whose history it would not carry.
3: ``load_history.privacy`` (the fingerprint of each load's ``[privacy]`` policy): a change of the
rules rewrites the kept tables (``privacy_rewrite.py``). Nothing to migrate: older rows have none,
read as "nothing protected"."""

FIRST_LAYOUT: Final = 1
"""What a copy that records no number was written with: the releases before the number existed."""
LAYOUT_COLUMN: Final = "layout_version"
"""The ``load_history`` column each run's row records its layout in."""

Execute = Callable[[str], Sequence[Sequence[Any]]]
"""Runs one SQL statement, returns its rows (a DuckDB connection's or a dlt sql client's)."""


def written_layout_version(execute: Execute, dataset: str) -> int | None:
    """The layout the last complete load of ``dataset`` was written with; None when ``dataset`` holds
    no copy at all (a first run).

    It is the ``layout_version`` of the newest ``ok`` row in ``load_history`` (the newest, not the
    largest: an older release that loaded after a newer one rewrote the copy in its layout). A copy
    without that column, or whose newest ``ok`` row has no number, was written by a release before
    the number was recorded: :data:`FIRST_LAYOUT`.
    """
    columns = columns_of(execute, dataset, "load_history")
    if not columns:
        return FIRST_LAYOUT if columns_of(execute, dataset, "_dlt_version") else None
    if LAYOUT_COLUMN not in columns:
        return FIRST_LAYOUT
    order = "finished_at DESC NULLS LAST, " if "finished_at" in columns else ""
    rows = execute(
        f"SELECT {quote_identifier(LAYOUT_COLUMN)} FROM {qualified(dataset, 'load_history')} "
        f"WHERE outcome = 'ok' ORDER BY {order}run_id DESC LIMIT 1"
    )
    if not rows or rows[0][0] is None:
        return FIRST_LAYOUT
    return int(rows[0][0])



def older_layout(written: int | None) -> int | None:
    """``written`` when it is older than the layout this code writes (the copy must be migrated), else None."""
    return written if written is not None and written < LAYOUT_VERSION else None
