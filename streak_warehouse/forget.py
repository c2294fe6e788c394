"""Erase one person from the copy and every table kept beside it (``streak_privacy.py forget``).

What "erase" means, table by table (docs/privacy.md, "Forget a person"):

* rows that ARE the person: their ``contacts`` row and every version of it in ``contacts_history``
  are deleted;
* rows that mention them keep their place with the person's values taken out
  (``forget_values.redact``): a thread's participants lose their address and name, a box its
  ``email_addresses`` entry and ``first_email_from``, an event its matching properties, a raw
  response in ``refresh_basis_children`` or ``rejected_records`` the same inside its JSON, a text
  that names their address gets ``[forgotten]`` in its place. Other people's values stay as they
  are, so row counts change only by the person's own rows.

Every base table of ``crm`` is searched (the copy, ``<table>_history``, ``events``, the refresh basis,
``rejected_records``, ``box_newsfeed``, ``load_history``...), in ONE transaction. A DuckDB file keeps
what an ``UPDATE`` or ``DELETE`` replaced in its free blocks, so there the work happens in a copy of
the file and the result is written once more into a new file that replaces the live one
(:func:`forget_in_duckdb_file`): no byte of the erased values stays in ``streak.duckdb``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from streak_source.privacy import Kind
from streak_warehouse.forget_values import PERSON_COLUMNS, Person, holds_strong, person_from, redacted_cells
from streak_warehouse.history_mode import HISTORY_SUFFIX
from streak_warehouse.sql import columns_of, qualified, quote_identifier, string_literal
from streak_warehouse.table_rewrite import Execute, TextColumn, contains_any, rewrite_rows, row_ids, text_columns

PERSON_ROWS: Final = "contacts"
"""The table whose rows (and their history) are the person."""
CONTACT_KEY: Final = "contact_key"


@dataclass
class Erased:
    """What one ``forget`` did in a dataset, per table."""

    deleted: dict[str, int] = field(default_factory=dict)
    redacted: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.deleted.values()) + sum(self.redacted.values())

    def lines(self, dataset: str) -> list[str]:
        tables = sorted(set(self.deleted) | set(self.redacted))
        return [f"{dataset}.{table}: " + ", ".join(
            part for part in (_rows(self.deleted.get(table), "deleted"), _rows(self.redacted.get(table), "redacted"))
            if part) for table in tables]


def _rows(count: int | None, what: str) -> str:
    return f"{count:,} row{'s' if count != 1 else ''} {what}" if count else ""


def _person_tables(columns: Mapping[str, Sequence[TextColumn]]) -> list[tuple[str, str]]:
    """(table as stored, table of :data:`PERSON_COLUMNS`) for each person table and its history present."""
    return [(name, base) for base in PERSON_COLUMNS for name in (base, base + HISTORY_SUFFIX) if name in columns]


def find_person(execute: Execute, dataset: str, addresses: Sequence[str], contact_keys: Sequence[str],
                hash_: Callable[[Kind, str], str] | None) -> Person:
    """The person asked for, with every value the copy holds of them: contact rows (every version)
    with one of ``addresses`` (clear or hashed) or one of ``contact_keys``, and user / team-member
    rows with one of the addresses."""
    asked = person_from(addresses, [], hash_, contact_keys)
    columns = text_columns(execute, dataset)
    found: list[tuple[str, Mapping[str, Any]]] = []
    for stored, base in _person_tables(columns):
        present = {c.name for c in columns[stored]}
        wanted = [name for name in PERSON_COLUMNS[base] if name in present]
        emails = [c for c in columns[stored] if c.name in ("email_addresses", "email", "lowercase_email")]
        where = contains_any(emails, asked.needles)
        if base == PERSON_ROWS and contact_keys and CONTACT_KEY in present:
            keys = ", ".join(string_literal(key) for key in contact_keys)
            where = f"{quote_identifier(CONTACT_KEY)} IN ({keys}) OR {where}"
        cells = ", ".join(f"CAST({quote_identifier(name)} AS VARCHAR)" for name in wanted)
        for values in execute(f"SELECT {cells} FROM {qualified(dataset, stored)} WHERE {where}"):
            row = dict(zip(wanted, values))
            mine = (base == PERSON_ROWS and row.get(CONTACT_KEY) in contact_keys) or holds_strong(
                [row.get(name) for name in ("email_addresses", "email", "lowercase_email")], asked)
            if mine:
                found.append((base, row))
    return person_from(addresses, found, hash_, contact_keys)


def erase_person(execute: Execute, dataset: str, person: Person, driver: str, native: Any = None) -> Erased:
    """Delete the person's own rows and redact every mention in every base table of ``dataset``
    (module doc). Call inside the caller's transaction (``native``: its DuckDB connection)."""
    erased = Erased()
    columns = text_columns(execute, dataset)
    if person.contact_keys:
        keys = ", ".join(string_literal(key) for key in sorted(person.contact_keys))
        for table in (PERSON_ROWS, PERSON_ROWS + HISTORY_SUFFIX):
            if CONTACT_KEY in columns_of(execute, dataset, table):
                where = f"{quote_identifier(CONTACT_KEY)} IN ({keys})"
                [(count,)] = execute(f"SELECT COUNT(*) FROM {qualified(dataset, table)} WHERE {where}")
                if count:
                    execute(f"DELETE FROM {qualified(dataset, table)} WHERE {where}")
                    erased.deleted[table] = int(count)
    ids = row_ids(driver, native)
    for table, text in sorted(columns.items()):
        if not text:
            continue
        written = rewrite_rows(execute, dataset, table, text, lambda cells, t=text: redacted_cells(
            cells, person, {c.name: c.nullable for c in t}, {c.name: c.is_json for c in t}),
                               ids, where=contains_any(text, person.needles))
        if written:
            erased.redacted[table] = written
    return erased


# --- a DuckDB file ----------------------------------------------------------------------------------


@dataclass
class FileForgotten:
    person: Person
    erased: Erased


def forget_in_duckdb_file(path: Path, dataset: str, addresses: Sequence[str], contact_keys: Sequence[str],
                          hash_: Callable[[Kind, str], str] | None) -> FileForgotten:
    """Erase the person from the DuckDB file ``path`` (call under its run lock): in a copy of the
    file, in one transaction, then rewritten whole into a new file renamed over ``path`` (module doc).
    Readers that have ``path`` open keep the old file until they reopen it."""
    import duckdb

    from streak_warehouse.targets.duckdb_file import Connection, rewrite_duckdb_file

    working = path.with_name(path.name + ".forgetting.loading")  # a leftover the next run discards
    with _removed_on_exit(working):
        rewrite_duckdb_file(path, working)
        with duckdb.connect(str(working)) as con:
            con.execute("SET TimeZone = 'UTC'")
            execute = Connection(con).execute_sql
            con.execute("BEGIN TRANSACTION")
            try:
                person = find_person(execute, dataset, addresses, contact_keys, hash_)
                erased = erase_person(execute, dataset, person, "duckdb", con) if not person.empty else Erased()
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
        finished = path.with_name(path.name + ".forgotten.loading")
        with _removed_on_exit(finished):
            rewrite_duckdb_file(working, finished)
            path.with_name(path.name + ".wal").unlink(missing_ok=True)
            finished.replace(path)
    return FileForgotten(person, erased)


@contextlib.contextmanager
def _removed_on_exit(path: Path) -> Iterator[Path]:
    try:
        yield path
    finally:
        for leftover in (path, path.with_name(path.name + ".wal")):
            leftover.unlink(missing_ok=True)

