"""A run that finds a destination or a dlt working dir written by another warehouse layout.

What breaks without this (a release renamed, retyped or dropped a column, or added a table):

* dlt keeps the pipeline's schema in its working dir and never removes a column from it; every
  fresh copy is created from that schema, so a renamed column's old name came back in each new copy
  (all NULL), and a retyped one got a second, differently named column;
* the kept tables (``kept_tables.py``) were carried by common column names, so a renamed
  column's values were lost (DuckDB) or left in the old column (Postgres).

So, before extracting, :func:`prepare_upgrade` compares three layouts: the one this code writes
(``LAYOUT_VERSION``), the one the live copy was written with (its ``load_history``) and the one
dlt's working dir was built by (dlt's local state, which never leaves this machine):

* destination newer than the code: :class:`LayoutTooNewError`, before anything is written;
* destination or working dir older (or the working dir newer): the extract runs with dlt's
  ``refresh="drop_sources"``, dlt's own reset: the schema is rebuilt from the code and the source
  state wiped (tables dlt knew are dropped in the destination: nothing, in the fresh file or schema
  a run loads), so the new copy has exactly the columns this layout makes;
* destination older: the persistent tables are migrated (``migrations.py``) as they are carried
  into the new copy, published by the same swap: their rows are kept, and a failed run leaves the
  old copy and its old layout as they were.

After a complete run, :meth:`Upgrade.finish` records this layout in the working dir.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from streak_warehouse import kept_tables, layout_version, migrations
from streak_warehouse.destination import WarehouseConfigError
from streak_warehouse.layout_version import FIRST_LAYOUT, older_layout, written_layout_version

WORKING_DIR_KEY: Final = "streak_layout_version"
"""dlt local-state key: the layout the working dir's schema was built by (absent: before it was recorded)."""


class LayoutTooNewError(WarehouseConfigError):
    """The destination was written by a newer layout than this code writes: the run stops untouched."""


@dataclass
class Upgrade:
    """The layouts one run found, and what it does about them."""

    written: int | None = None
    """The live copy's layout; None: there is no copy yet."""
    working_dir: int | None = None
    """The layout dlt's working dir was built by; None: a new working dir (nothing to go stale)."""
    pipeline: Any = field(default=None, repr=False)

    @property
    def migrate_from(self) -> int | None:
        """The older layout the persistent tables are migrated from, or None."""
        return older_layout(self.written)

    @property
    def rebuilds(self) -> bool:
        """The copy is loaded from a clean dlt schema (``refresh="drop_sources"``)."""
        stale_dir = self.working_dir is not None and self.working_dir != layout_version.LAYOUT_VERSION
        return self.migrate_from is not None or stale_dir

    def message(self) -> str | None:
        """The progress line that says what happens (None: nothing to upgrade)."""
        current = layout_version.LAYOUT_VERSION
        if self.migrate_from is not None:
            declared = "; ".join(m.describe() for m in migrations.pending(self.migrate_from, current) if m.describe())
            tables = ", ".join(sorted(table.name for table in kept_tables.KEPT_TABLES))
            return (f"upgrade: the destination was written by warehouse layout {self.migrate_from}, this is layout "
                    f"{current}: rebuilding the copy from a clean dlt schema, migrating the tables kept across runs "
                    f"({tables}{f'; {declared}' if declared else ''}); their rows are kept")
        if self.rebuilds:
            return (f"upgrade: dlt's working dir was built by warehouse layout {self.working_dir}, this is layout "
                    f"{current}: rebuilding the copy from a clean dlt schema")
        return None

    def finish(self) -> None:
        """Record in the working dir that its schema is this layout's (call after a complete run)."""
        if self.pipeline is not None:
            self.pipeline.set_local_state_val(WORKING_DIR_KEY, layout_version.LAYOUT_VERSION)


def prepare_upgrade(pipeline: Any, written: int | None, location: str) -> Upgrade:
    """Check ``written`` (the layout of the live copy at ``location``) and the working dir of
    ``pipeline`` against this code's layout; set up the rebuild when one is needed.

    Raises :class:`LayoutTooNewError` (one line, nothing touched) when the copy is newer.
    """
    current = layout_version.LAYOUT_VERSION
    if written is not None and written > current:
        raise LayoutTooNewError(
            f"{location} was written by warehouse layout {written}, but this version of the code writes layout "
            f"{current}: run a version that writes layout {written} or newer, or point the warehouse at another "
            "destination; nothing was changed"
        )
    upgrade = Upgrade(written=written, working_dir=working_dir_layout(pipeline), pipeline=pipeline)
    if upgrade.rebuilds:
        pipeline.refresh = "drop_sources"
    return upgrade


def working_dir_layout(pipeline: Any) -> int | None:
    """The layout ``pipeline``'s working dir was built by; None when it holds no schema yet."""
    if not pipeline.schema_names:
        return None
    try:
        return int(pipeline.get_local_state_val(WORKING_DIR_KEY))
    except KeyError:
        return FIRST_LAYOUT


def written_layout_of_file(path: Path, dataset: str) -> int | None:
    """:func:`~streak_warehouse.layout_version.written_layout_version` of a DuckDB file, read-only;
    None when the file does not exist yet."""
    from streak_warehouse.persistent import read_live_duckdb_file

    return read_live_duckdb_file(path, "the load history (its layout version)",
                                 lambda execute: written_layout_version(execute, dataset))


def written_layout_at(pipeline: Any, dataset: str) -> int | None:
    """:func:`~streak_warehouse.layout_version.written_layout_version` of ``dataset`` in the
    pipeline's SQL destination; None where the destination keeps no tables to read (files)."""
    from streak_warehouse.sql import executor, sql_client_or_none

    client = sql_client_or_none(pipeline, "layout check")
    if client is None:
        return None
    with client:
        return written_layout_version(executor(client), dataset)
