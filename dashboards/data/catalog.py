"""Which relations (tables and views) and columns exist in the dataset.

dlt creates no table for a resource that yielded nothing and drops columns that were always NULL,
and older destinations lack the newer tables (``load_history``, ``box_task_assignees``,
``wide_view_columns``), so every query asks the catalog before naming an optional table or column.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

REQUIRED_TABLE: Final = "boxes"
"""Without it there is nothing to show: the UI says how to load data instead."""


@dataclass(frozen=True)
class Catalog:
    """Relations (name -> "table" | "view") and their columns, all lower-case."""

    relations: Mapping[str, str] = field(default_factory=dict)
    columns: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def has(self, relation: str, *columns: str) -> bool:
        """True when the relation exists and carries every named column."""
        if relation not in self.relations:
            return False
        present = set(self.columns.get(relation, ()))
        return all(column in present for column in columns)

    def is_view(self, relation: str) -> bool:
        return self.relations.get(relation) == "view"

    def data_tables(self) -> list[str]:
        """Loaded tables, without dlt's bookkeeping tables and without views."""
        return sorted(
            name for name, kind in self.relations.items() if kind == "table" and not name.startswith("_dlt")
        )


def catalog_from_rows(rows: Iterable[tuple[Any, Any, Any]]) -> Catalog:
    """Build a :class:`Catalog` from ``(table_name, table_type, column_name)`` rows."""
    relations: dict[str, str] = {}
    columns: dict[str, list[str]] = {}
    for table_name, table_type, column_name in rows:
        name = str(table_name).lower()
        relations[name] = "view" if "VIEW" in str(table_type).upper() else "table"
        if column_name is not None:
            columns.setdefault(name, []).append(str(column_name).lower())
    return Catalog(relations, {name: tuple(cols) for name, cols in columns.items()})
