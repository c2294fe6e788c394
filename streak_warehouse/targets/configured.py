"""The destination kind of this run, chosen once from configuration and passed on."""

from __future__ import annotations

from streak_warehouse.destination import configured_destination_type, duckdb_file_target
from streak_warehouse.targets.base import Target
from streak_warehouse.targets.duckdb_file import DuckDBFile
from streak_warehouse.targets.in_place import InPlace
from streak_warehouse.targets.schema_swap import SCHEMA_SWAP_TYPES, SchemaSwap


def configured_target() -> Target:
    """A local DuckDB file is swapped whole, a Postgres schema renamed into place, anything else
    loaded in place (``[destination.warehouse]``, see docs/destinations.md)."""
    path = duckdb_file_target()
    if path is not None:
        return DuckDBFile(path)
    destination_type = configured_destination_type()
    if destination_type in SCHEMA_SWAP_TYPES:
        return SchemaSwap(destination_type)
    return InPlace(destination_type)
