"""The copy as it stood at an earlier time, rebuilt from the history tables (history mode).

``crm.<table>_history`` holds every version of every keyed record with ``valid_from`` / ``valid_to``
(``history_mode.py``), so the copy as of a time T is, table by table, the versions with
``valid_from <= T < valid_to`` (``valid_to`` NULL: still current). T is a moment, or a run id of
``load_history`` (that run's end, so the result is exactly the copy it produced).

:func:`write_copy_as_of` reads them from the live destination (DuckDB file or any SQL destination)
and writes a new DuckDB file with dataset ``crm``: every copied table and the wide views rebuilt over
them (``views.create_wide_views``), so a query written for today's copy runs unchanged on the past.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from streak_warehouse.history_mode import DELETED, HISTORY_SUFFIX, VALID_FROM, VALID_TO, TrackedTable, as_of_sql
from streak_warehouse.sql import catalog_sql, qualified, quote_identifier, string_literal

ReadArrow = Callable[[str], Any]
"""Runs one query on the live copy, returns a pyarrow Table."""

HISTORY_COLUMNS: Final = frozenset({VALID_FROM, VALID_TO, DELETED})


class AsOfError(ValueError):
    """What was asked cannot be answered; ``str()`` is the one line to show."""


@dataclass(frozen=True)
class Run:
    run_id: str
    finished_at: datetime
    outcome: str


def parse_moment(text: str, runs: Sequence[Run]) -> tuple[datetime, str]:
    """``text`` as a moment: a ``load_history`` run id (its end) or ISO 8601 (a date is its start,
    a time without offset is UTC); with a description of what it resolved to."""
    by_id = {run.run_id: run for run in runs}
    if text in by_id:
        run = by_id[text]
        if run.outcome != "ok":
            raise AsOfError(f"run {text} did not complete ({run.outcome}): it produced no copy; "
                            "pick a run whose outcome is ok (python pipelines/streak_history.py runs)")
        return run.finished_at, f"the copy run {text} produced"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise AsOfError(f"TIME {text!r} is neither an ISO 8601 time (e.g. 2026-11-30 or 2026-11-30T18:00:00Z) "
                        "nor a run id of load_history (python pipelines/streak_history.py runs)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment, f"the copy as of {moment.isoformat()}"


def copy_run(runs: Sequence[Run], at: datetime) -> Run:
    """The run whose copy was live at ``at``: the last ``ok`` run that ended at or before it."""
    done = [run for run in runs if run.outcome == "ok" and run.finished_at <= at]
    if not done:
        first = min((run.finished_at for run in runs if run.outcome == "ok"), default=None)
        since = f"; the first complete load ended {first.isoformat()}" if first else ""
        raise AsOfError(f"no load had completed by {at.isoformat()}{since}")
    return max(done, key=lambda run: run.finished_at)


def history_tables_in(catalog: Sequence[Sequence[Any]]) -> list[TrackedTable]:
    """The history-mode tables of a dataset from its catalog rows ``(table, type, column)``: each
    ``<table>_history`` with ``valid_from``/``valid_to``/``deleted`` whose ``<table>`` is in the copy."""
    columns: dict[str, list[str]] = {}
    for table, _kind, column in catalog:
        columns.setdefault(str(table), []).append(str(column))
    tracked = []
    for name, names in sorted(columns.items()):
        base = name.removesuffix(HISTORY_SUFFIX)
        if base == name or base not in columns or not HISTORY_COLUMNS <= set(names):
            continue
        kept = tuple((column, "text") for column in names if column not in HISTORY_COLUMNS)
        tracked.append(TrackedTable(base, (), kept))
    return tracked


def history_start(read: ReadArrow, dataset: str, tables: Sequence[TrackedTable]) -> datetime | None:
    """The end of the first run that stored versions (None: no version at all)."""
    union = " UNION ALL ".join(f"SELECT MIN({VALID_FROM}) AS m FROM {qualified(dataset, t.history_name)}" for t in tables)
    value = read(f"SELECT MIN(m) AS m FROM ({union}) AS starts").to_pylist()[0]["m"]
    return None if value is None else _aware(value)


def read_runs(read: ReadArrow, dataset: str) -> list[Run]:
    rows = read(f"SELECT run_id, finished_at, outcome FROM {qualified(dataset, 'load_history')} "
                "WHERE finished_at IS NOT NULL ORDER BY finished_at").to_pylist()
    return [Run(str(row["run_id"]), _aware(row["finished_at"]), str(row["outcome"])) for row in rows]


def _aware(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass
class AsOfResult:
    out: Path
    moment: datetime
    described: str
    run: Run
    rows: dict[str, int]
    views: list[str]


def write_copy_as_of(read: ReadArrow, dataset: str, text: str, out: Path) -> AsOfResult:
    """Write the copy as of ``text`` (a time or run id) to the DuckDB file ``out`` (replaced whole,
    only once complete)."""
    catalog = read(catalog_sql(dataset)).to_pylist()
    if not catalog:
        raise AsOfError(f"the destination holds no dataset {dataset}: load a copy first")
    rows_of = [(row["table_name"], row["table_type"], row["column_name"]) for row in catalog]
    tables = history_tables_in(rows_of)
    if not tables:
        raise AsOfError(f"{dataset} holds no history tables ({dataset}.<table>_history): they are written by "
                        "every load since history mode; run a load first")
    runs = read_runs(read, dataset)
    moment, described = parse_moment(text, runs)
    run = copy_run(runs, moment)
    start = history_start(read, dataset, tables)
    if start is not None and run.finished_at < start:
        raise AsOfError(f"the history starts with the load that ended {start.isoformat()} (the first with history mode); "
                        f"{described} is older: that copy was not recorded")
    partial = out.with_name(out.name + ".partial")
    partial.unlink(missing_ok=True)
    counts: dict[str, int] = {}
    import duckdb

    with duckdb.connect(str(partial)) as con:
        con.execute(f"CREATE SCHEMA {quote_identifier(dataset)}")
        con.execute("SET TimeZone = 'UTC'")
        for table in tables:
            rows = read(as_of_sql(table, dataset, moment))
            con.register("streak_as_of_rows", rows)
            con.execute(f"CREATE TABLE {qualified(dataset, table.name)} AS SELECT * FROM streak_as_of_rows")
            con.unregister("streak_as_of_rows")
            counts[table.name] = rows.num_rows
        con.execute(f"CREATE TABLE {qualified(dataset, 'as_of')} AS SELECT CAST({string_literal(moment.isoformat())} "
                    f"AS TIMESTAMP WITH TIME ZONE) AS as_of, {string_literal(run.run_id)} AS run_id, "
                    f"CAST({string_literal(run.finished_at.isoformat())} AS TIMESTAMP WITH TIME ZONE) AS run_finished_at")
    views = _wide_views(partial, dataset)
    os.replace(partial, out)
    return AsOfResult(out, moment, described, run, counts, views)


def _wide_views(path: Path, dataset: str) -> list[str]:
    """The wide views over the rebuilt tables, by the same code as after every load."""
    import dlt

    from streak_warehouse.views import create_wide_views

    with tempfile.TemporaryDirectory(prefix="streak-as-of-") as workdir:
        pipeline = dlt.pipeline(pipeline_name="streak_as_of", pipelines_dir=workdir,
                                destination=dlt.destinations.duckdb(str(path)), dataset_name=dataset)
        return create_wide_views(pipeline)


@contextlib.contextmanager
def live_reader(duckdb_path: Path | None, destination: Any, dataset: str) -> Iterator[ReadArrow]:
    """Queries on the live copy: the DuckDB file opened read-only, or dlt's dataset over any other."""
    if duckdb_path is not None:
        if not duckdb_path.is_file():
            raise AsOfError(f"no copy at {duckdb_path} yet: load one first (python pipelines/streak_full.py)")
        import duckdb

        with duckdb.connect(str(duckdb_path), read_only=True) as con:
            con.execute("SET TimeZone = 'UTC'")
            yield lambda sql: con.sql(sql).to_arrow_table()
        return
    import dlt

    data = dlt.dataset(destination, dataset)  # raw: the kept tables are not in dlt's schema
    yield lambda sql: data(sql, _execute_raw_query=True).arrow()
