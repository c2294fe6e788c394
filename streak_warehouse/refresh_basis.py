"""The refresh basis in the destination: read it from the LIVE copy before extracting, and build the
run's :class:`~streak_source.refresh.RefreshPlan` (issue 15; the rules: streak_source/refresh.py).

The basis is two tables of the copy itself, written by the source on every run that asks for
``changed`` (whichever mode it then runs in):
``refresh_basis`` (one row: account, base URL, layout version, basis format, last full load) and
``refresh_basis_children`` (the raw child responses per box and child table, with the box's
fingerprint). Being part of the replaced copy, they are published by the same swap as every other
table, so a failed run leaves the previous basis with the previous copy, and the next run reads a
basis that always belongs to the copy readers see.

Read like the stage history's previous load (history_tables.py): from the DuckDB file read-only,
or from the live Postgres schema through the run's sql client. Destinations loaded in place
(filesystem, ...) are not read: a ``changed`` refresh falls back to a full load there and says why.
The basis is read only when a ``changed`` refresh is asked for (a full load never needs it).

A 20,000-box basis holds ~140 MB of raw JSON, so it is never held whole: its rows come a batch at a
time (from a DuckDB file, one streamed scan under a memory cap; from Postgres, slices of boxes),
and each item goes compressed to the basis' temporary file before the next batch (``RefreshBasis``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from streak_source.config import full_refresh_days_from, refresh_mode_from
from streak_source.refresh import (
    BASIS_CHILDREN_TABLE,
    BASIS_TABLE,
    DEFAULT_FULL_REFRESH_EVERY_DAYS,
    DEFAULT_REFRESH,
    BasisStamp,
    RefreshBasis,
    RefreshMode,
    RefreshPlan,
)
from streak_warehouse import layout_version
from streak_warehouse.persistent import with_live_duckdb_file
from streak_warehouse.sql import columns_of, qualified, string_literal

Execute = Callable[[str], Sequence[Sequence[Any]]]
"""Runs one SQL statement, returns its rows (a DuckDB connection's or a dlt sql client's)."""

STAMP_COLUMNS = ("account_key", "base_url", "layout_version", "basis_format", "last_full_load_at")


@dataclass(frozen=True)
class RefreshSettings:
    """``[sources.streak] refresh`` and ``full_refresh_every_days`` (or ``--refresh``) for one run."""

    mode: RefreshMode = DEFAULT_REFRESH
    full_refresh_every_days: float = DEFAULT_FULL_REFRESH_EVERY_DAYS
    asked: bool = False
    """Whether ``mode`` was set anywhere (False: nothing was asked, it is the default)."""


def configured_refresh(cli_value: str | None = None) -> RefreshSettings:
    """The run's settings: ``--refresh`` wins over ``[sources.streak] refresh`` (config or env
    ``SOURCES__STREAK__REFRESH``); a bad value raises ``StreakConfigError`` (exit status 3)."""
    import dlt

    mode: Any = cli_value
    days: Any = None
    if mode is None:
        with contextlib.suppress(Exception):
            mode = dlt.config.get("sources.streak.refresh")
    with contextlib.suppress(Exception):
        days = dlt.config.get("sources.streak.full_refresh_every_days")
    return RefreshSettings(refresh_mode_from(mode), full_refresh_days_from(days), asked=mode is not None)


def basis_layout() -> int:
    """The layout this code writes, read at call time (imported by value, the number would be the one
    the module saw when first imported, even a test's patched one)."""
    return layout_version.LAYOUT_VERSION


def plan_for_run(
    settings: RefreshSettings, started_at: datetime, read: Callable[[], RefreshBasis | None] | None = None,
    unavailable: str | None = None,
) -> RefreshPlan:
    """The plan the source gets: the settings, the layout this code writes, and the live copy's basis,
    read (``read``) only for a ``changed`` refresh on a destination that keeps one."""
    wanted = settings.mode == "changed" and unavailable is None and read is not None
    return RefreshPlan(requested=settings.mode, asked=settings.asked,
                       basis=read() if wanted and read is not None else None,
                       unavailable=unavailable, layout_version=basis_layout(),
                       full_refresh_every_days=settings.full_refresh_every_days, started_at=started_at)


def in_place_reason(destination_type: str) -> str:
    """Why a destination loaded in place gives no basis."""
    return (f"the {destination_type} destination is loaded table by table in place, and a refresh reads its basis "
            "only from a DuckDB file or a Postgres schema swapped whole (docs/refresh.md)")


def _as_utc(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return None


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


BASIS_CHUNK_BOXES = 2000
"""Boxes whose raw children one query fetches where the result cannot be streamed (Postgres through
the run's sql client: a whole result set is fetched at once): ~15 MB of JSON per slice."""

BASIS_BATCH_ROWS = 500
"""Rows per batch of the one streamed scan of a DuckDB file's basis (~1.5 MB of JSON)."""

BASIS_READ_MEMORY_LIMIT = "64MB"
"""DuckDB's memory cap while it streams the basis (the cap the load wrote it under). Uncapped (80 %
of RAM) it keeps every block it has read until the file closes: reading a 20,000-box basis peaked
at +245 MB, capped at +110 MB, the basis' index included."""

ChildRows = Iterator[Sequence[Sequence[Any]]]
"""Batches of ``(box_key, child_table, fingerprint, items_json)`` rows."""

CHILD_COLUMNS = ("box_key", "child_table", "fingerprint", "items_json")


def read_basis(execute: Execute, dataset: str, stream: Callable[[str], ChildRows] | None = None) -> RefreshBasis | None:
    """The basis of the complete load in ``dataset`` (the live copy); None when it holds none.

    The children come a batch at a time, each item stored away (``RefreshBasis.keep``) before the
    next batch: through ``stream`` (runs one query, yields its rows in batches) when given, else in
    slices of :data:`BASIS_CHUNK_BOXES` boxes."""
    if not set(STAMP_COLUMNS) <= columns_of(execute, dataset, BASIS_TABLE):
        return None
    if not set(CHILD_COLUMNS) <= columns_of(execute, dataset, BASIS_CHILDREN_TABLE):
        return None
    # ``privacy`` only since issue 25: a basis without it was kept with nothing protected
    privacy = "privacy" if "privacy" in columns_of(execute, dataset, BASIS_TABLE) else "NULL"
    stamps = execute(f"SELECT {', '.join(STAMP_COLUMNS)}, {privacy} FROM {qualified(dataset, BASIS_TABLE)}")
    if len(stamps) != 1:
        return None
    account, base_url, layout, basis_format, last_full, fingerprint = stamps[0]
    basis = RefreshBasis(BasisStamp(
        account_key=None if account is None else str(account), base_url=None if base_url is None else str(base_url),
        layout_version=_int_or_none(layout), basis_format=_int_or_none(basis_format),
        last_full_load_at=_as_utc(last_full), privacy=None if fingerprint is None else str(fingerprint)))
    table = qualified(dataset, BASIS_CHILDREN_TABLE)
    select = f"SELECT {', '.join(CHILD_COLUMNS)} FROM {table}"
    for rows in stream(select) if stream is not None else _in_box_slices(execute, table, select):
        for box, child_table, fingerprint, items in rows:
            basis.keep(str(box), str(child_table), None if fingerprint is None else str(fingerprint), str(items))
    return basis


def _in_box_slices(execute: Execute, table: str, select: str) -> ChildRows:
    """``select``'s rows (from ``table``), one query per slice of :data:`BASIS_CHUNK_BOXES` boxes."""
    boxes = sorted(str(row[0]) for row in execute(f"SELECT DISTINCT box_key FROM {table}"))
    for start in range(0, len(boxes), BASIS_CHUNK_BOXES):
        chunk = boxes[start:start + BASIS_CHUNK_BOXES]
        yield execute(f"{select} WHERE box_key IN ({', '.join(string_literal(key) for key in chunk)})")


def fetched_in_batches(con: Any, sql: str, rows_per_batch: int) -> ChildRows:
    """``sql``'s rows on a DuckDB connection, ``rows_per_batch`` at a time: DuckDB streams a result
    to ``fetchmany`` (``fetchall`` would hold all of it at once)."""
    cursor = con.execute(sql)
    while rows := cursor.fetchmany(rows_per_batch):
        yield rows


def read_basis_duckdb(path: Path, dataset: str) -> RefreshBasis | None:
    """:func:`read_basis` of a DuckDB file, read-only and streamed under :data:`BASIS_READ_MEMORY_LIMIT`;
    None when the file does not exist yet."""

    def read(con: Any) -> RefreshBasis | None:
        (limit,) = con.execute("SELECT current_setting('memory_limit')").fetchone()
        con.execute(f"SET memory_limit = '{BASIS_READ_MEMORY_LIMIT}'")
        try:
            return read_basis(lambda sql: con.execute(sql).fetchall(), dataset,
                              lambda sql: fetched_in_batches(con, sql, BASIS_BATCH_ROWS))
        finally:  # a setting of the database, shared with any other connection to the file in this process
            con.execute(f"SET memory_limit = '{limit}'")

    return with_live_duckdb_file(path, "the refresh basis", read)
