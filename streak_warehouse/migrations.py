"""How the old rows of the kept tables follow a change of the warehouse layout.

The kept tables (``kept_tables.KEPT_TABLES``: ``load_history``, ``box_stage_history``,
``stage_transitions``, ``events``) keep rows no run can fetch again, so a layout change must carry
them, not rebuild them. Most changes need no declaration: when a run finds a copy written by an
older layout (``layout_version.py``), every carried table is rebuilt from its CURRENT definition
(in ``kept_tables.py``) and filled from the old one by column name: a new column starts NULL, a
column the definition no longer has is left behind, a changed type is ``CAST`` and a changed
primary key keeps the first row of each new key. What a name alone cannot say is declared beside
the tables, once, in ``kept_tables.MIGRATIONS``: a column renamed (its values move to the new name)
or dropped so that its name can be reused later. This module applies those declarations.

The copy itself (the dlt-loaded tables) needs nothing here: it is rebuilt from a clean dlt schema
(``upgrade.py``). How to declare a migration: docs/development.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from streak_warehouse import kept_tables
from streak_warehouse.kept_tables import Migration, PersistentTable
from streak_warehouse.sql import ANSI_TYPES, quote_identifier


class MigrationDeclarationError(ValueError):
    """``kept_tables.MIGRATIONS`` is out of order or names a layout the code does not write."""


def pending(written: int, current: int, migrations: Sequence[Migration] | None = None) -> list[Migration]:
    """The migrations a copy written with layout ``written`` goes through to reach ``current``, in order."""
    declared = list(kept_tables.MIGRATIONS if migrations is None else migrations)
    check(declared, current)
    return [m for m in declared if written < m.version <= current]


def check(migrations: Sequence[Migration], current: int) -> None:
    """Raise :class:`MigrationDeclarationError` unless every migration is for a layout 2..``current``,
    oldest first (a migration for a layout not yet released would run too early)."""
    versions = [m.version for m in migrations]
    if versions != sorted(versions):
        raise MigrationDeclarationError(f"migrations must be declared oldest layout first, not {versions}")
    wrong = [m for m in migrations if not 2 <= m.version <= current]
    if wrong:
        raise MigrationDeclarationError(
            f"migration for {wrong[0].table} is for layout {wrong[0].version}, but this code writes layouts "
            f"up to {current} (bump LAYOUT_VERSION in streak_warehouse/layout_version.py first)"
        )


def column_sources(
    table: str, old_columns: Iterable[str], written: int, current: int, migrations: Sequence[Migration] | None = None
) -> dict[str, tuple[str, ...]]:
    """current column name -> the old table's columns holding its values, first choice first.

    Two sources happen when a column was renamed while something already wrote the new name into
    the old table (the events loader of a newer release): the new name's value wins, the old one
    fills where it is NULL.
    """
    names: dict[str, list[str]] = {name.lower(): [name.lower()] for name in old_columns}
    for migration in pending(written, current, migrations):
        if migration.table != table:
            continue
        for old, new in migration.renamed:
            if old in names:
                names[new] = [*names.get(new, []), *names.pop(old)]
        for name in migration.dropped:
            names.pop(name, None)
    return {name: tuple(sources) for name, sources in names.items()}


def carried_columns(
    table: PersistentTable, old_columns: Iterable[str], migrate_from: int | None, current: int,
    migrations: Sequence[Migration] | None = None,
) -> list[tuple[str, str]]:
    """``(column, SELECT expression)`` that fill ``table``'s current definition from an old table with
    ``old_columns``. ``migrate_from`` None: the old table has this layout, columns are copied as
    they are; else the old table was written with that layout: renames and drops apply, and every
    value is cast to the type the current definition declares."""
    old = {name.lower() for name in old_columns}
    if migrate_from is None:
        return [(name, quote_identifier(name)) for name in table.column_names() if name.lower() in old]
    sources = column_sources(table.name, old, migrate_from, current, migrations)
    carried = []
    for name, kind in table.columns:
        found = sources.get(name.lower())
        if not found:
            continue
        casts = [f"CAST({quote_identifier(column)} AS {ANSI_TYPES.get(kind, 'VARCHAR')})" for column in found]
        carried.append((name, casts[0] if len(casts) == 1 else f"COALESCE({', '.join(casts)})"))
    return carried


def migrated_row(table: str, row: Mapping[str, Any], written: int, current: int) -> dict[str, Any]:
    """One row written by layout ``written`` (a side record of ``history.py``: JSON, not a table)
    under the current column names: a renamed key moves, a dropped one goes."""
    sources = column_sources(table, row.keys(), written, current)
    return {name: next((row[s] for s in found if row.get(s) is not None), None) for name, found in sources.items()}
