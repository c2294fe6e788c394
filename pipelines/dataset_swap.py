"""Whole-dataset replace on Postgres: load a fresh schema, then rename it into place in one transaction.

dlt's ``insert-from-staging`` swaps one table per transaction, so a load failing part-way through the
swaps can leave some tables new and some old. Loading everything (tables and wide views) into
``crm_next`` and then, in one transaction, renaming ``crm`` away and ``crm_next`` to ``crm`` makes
the switch all-or-nothing: until it commits, readers see the previous copy, and a failure at any
earlier point leaves ``crm`` exactly as it was. Postgres views point at tables, not names, so the
views created in ``crm_next`` keep working after the rename.
"""

from __future__ import annotations

from typing import Any, Final

SCHEMA_SWAP_TYPES: Final = frozenset({"postgres"})
"""Destinations with transactional ``ALTER SCHEMA ... RENAME`` (DuckDB files are swapped whole)."""


def next_dataset(dataset: str) -> str:
    return f"{dataset}_next"


def _schemas(client: Any) -> set[str]:
    rows = client.execute_sql("SELECT schema_name FROM information_schema.schemata")
    return {str(row[0]) for row in rows or []}


def discard_dataset(pipeline: Any, dataset: str) -> None:
    """Drop a leftover ``dataset`` (and its staging twin) of an interrupted run, if any."""
    with pipeline.sql_client() as client:
        quote = client.capabilities.escape_identifier
        present = _schemas(client)
        for name in (dataset, f"{dataset}_staging"):
            if name in present:
                client.execute_sql(f"DROP SCHEMA {quote(name)} CASCADE")


def publish_dataset(pipeline: Any, loaded: str, target: str) -> None:
    """In one transaction: drop ``target``, rename ``loaded`` to ``target``; leftovers go too."""
    with pipeline.sql_client() as client:
        quote = client.capabilities.escape_identifier
        present = _schemas(client)
        previous = f"{target}_previous"
        with client.begin_transaction():
            for stale in (previous, f"{target}_staging"):
                if stale in present:
                    client.execute_sql(f"DROP SCHEMA {quote(stale)} CASCADE")
            if target in present:
                client.execute_sql(f"ALTER SCHEMA {quote(target)} RENAME TO {quote(previous)}")
            client.execute_sql(f"ALTER SCHEMA {quote(loaded)} RENAME TO {quote(target)}")
            if target in present:
                client.execute_sql(f"DROP SCHEMA {quote(previous)} CASCADE")
