"""Every table kept across replace runs, declared in one list, with the migrations of their columns.

Each run replaces the whole ``crm`` dataset, so a table whose past rows no run can fetch again
(``load_history``, stage history, ``events``) is carried from the live copy into the fresh one
(``persistent.py``: copied on DuckDB, moved with the schema swap on Postgres, left in place
elsewhere). What is carried is exactly :data:`KEPT_TABLES`, nothing registers itself by being
imported; its ``CREATE TABLE``, the columns a newer release adds to an old table and the rebuild of
an older layout all follow from the declaration.

Adding a kept table (docs/development.md, "How to add a kept table"): one :class:`PersistentTable`
in :data:`KEPT_TABLES`, plus the layout bump in ``layout_version.py`` (and, for a renamed or dropped
column of an existing table, one :class:`Migration` in :data:`MIGRATIONS`). Rows the run writes
into it are handed to the carry-over by table name (``rows`` of ``persistent.carry_over_*``); a
table no run hands rows to is carried as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from streak_eventlog.spool import EVENTS_COLUMN_HINTS
from streak_warehouse.stage_history import COLUMNS, PRIMARY_KEY, TRANSITION_COLUMNS


@dataclass(frozen=True)
class PersistentTable:
    """A table in ``crm`` that keeps its rows across replace runs."""

    name: str
    columns: tuple[tuple[str, str], ...]
    """(column name, dlt data type: text, bigint, double, bool, timestamp, json)."""
    primary_key: tuple[str, ...]
    whole: bool = False
    """The run writes the whole table (rows given replace the carried ones), instead of appending."""
    unique_by_construction: bool = False
    """Every key is written once by the code that writes the table (a history version: one per
    record and run), so DuckDB keeps no ``PRIMARY KEY`` index for it: the index over every version
    is rebuilt by each run's carry-over into the fresh file. Measured on a 20,000-box file after 7
    loads (566,130 versions): carry 7.5 -> 7.1 s, fresh file 208 -> 162 MB (docs/history.md).
    Postgres keeps the key (its tables move with the schema swap, nothing is copied)."""

    def column_names(self) -> list[str]:
        return [name for name, _ in self.columns]


@dataclass(frozen=True)
class Migration:
    """What layout ``version`` changed in the kept table ``table`` that its new definition cannot
    say by itself (how the old rows follow: ``migrations.py``)."""

    version: int
    """The layout that made the change (the ``LAYOUT_VERSION`` it shipped with)."""
    table: str
    renamed: tuple[tuple[str, str], ...] = ()
    """(old column, new column): the values move to the new name."""
    dropped: tuple[str, ...] = ()
    """Columns whose values are thrown away even if a later layout reuses the name."""

    def describe(self) -> str:
        parts = [f"{self.table}.{old} -> {new}" for old, new in self.renamed]
        parts += [f"{self.table}.{name} dropped" for name in self.dropped]
        return ", ".join(parts)


# --- the kept tables -------------------------------------------------------------------------------

BOX_STAGE_HISTORY: Final = PersistentTable("box_stage_history", COLUMNS, PRIMARY_KEY, whole=True)
"""One row per stay of a box in a stage (``history_tables.py``); rewritten whole by each run."""

EVENTS: Final = PersistentTable(
    "events", tuple((name, str(hint["data_type"])) for name, hint in EVENTS_COLUMN_HINTS.items()), ("event_key",))
"""The events log (``events_table.py``): columns as the receiver's spool declares them."""

LOAD_HISTORY: Final = PersistentTable(
    "load_history",
    (
        ("run_id", "text"), ("started_at", "timestamp"), ("finished_at", "timestamp"), ("outcome", "text"),
        ("error", "text"), ("mode", "text"), ("destination", "text"), ("rows_per_table", "text"),
        ("rows_total", "bigint"), ("api_calls", "bigint"), ("boxes_read", "bigint"), ("boxes_skipped", "bigint"),
        ("duration_s", "double"), ("rejected_records", "bigint"), ("history_calls", "bigint"),
        ("layout_version", "bigint"), ("privacy", "text"),
    ),
    ("run_id",),
)
"""One row per run, ok, failed or interrupted (``history.py``)."""

STAGE_TRANSITIONS: Final = PersistentTable(
    "stage_transitions", TRANSITION_COLUMNS, ("box_key", "pipeline_key", "to_stage_key", "at"), whole=True)
"""Every move of a box between stages, derived from its stays; rewritten whole with them."""

KEPT_TABLES: Final[tuple[PersistentTable, ...]] = (BOX_STAGE_HISTORY, EVENTS, LOAD_HISTORY, STAGE_TRANSITIONS)
"""Every table carried across replace runs (each run carries them in this order; a new one goes at the end)."""

MIGRATIONS: Final[tuple[Migration, ...]] = ()
"""Every declared migration of a kept table, oldest layout first. Layout 1 is the first layout:
nothing to migrate yet."""
