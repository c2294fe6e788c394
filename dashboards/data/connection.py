"""Where the dashboard reads from, and the two ways it reads.

* DuckDB (the default): opened directly and read-only, so a dashboard never takes the write lock
  a running load needs, and a missing file is never created by accident.
* Anything else dlt loads (Postgres, ...): read through dlt's dataset API, which resolves the
  destination and credentials from the same configuration the pipeline used.

Which destination, and which DuckDB file, is decided by ``streak_warehouse.destination`` (one rule
for the pipeline, the dashboard and the benchmarks): nothing here re-reads the configuration.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import pandas as pd

from dashboards.data.catalog import REQUIRED_TABLE, Catalog, catalog_from_rows
from dashboards.data.errors import DatabaseBusy, DestinationUnavailable, NoData
from dashboards.data.sql import lit, quote_identifier
from streak_warehouse import destination as warehouse
from streak_warehouse.sql import catalog_sql

DATASET_NAME = warehouse.DATASET_NAME


@dataclass(frozen=True)
class Source:
    """What the pipeline's configuration points at: a DuckDB file, or another dlt destination."""

    kind: Literal["duckdb", "dataset"]
    destination_type: str
    duckdb_path: Path | None = None

    @property
    def label(self) -> str:
        """Short human description for the sidebar (never the credentials)."""
        if self.duckdb_path is not None:
            return f"DuckDB file {self.duckdb_path}"
        return f"{self.destination_type} dataset {DATASET_NAME}"

    def version(self) -> str:
        """Cache-key part that changes when a DuckDB load finishes, so results refresh at once.

        Other destinations have no cheap change marker: the configured target (hashed, so no
        password sits in a cache key) and the cache TTL stand in.
        """
        if self.duckdb_path is None:
            try:
                target = hashlib.sha256(str(warehouse.configured_credentials()).encode()).hexdigest()[:16]
            except Exception:
                target = "unknown"
            return f"{self.destination_type}:{DATASET_NAME}:{target}"
        parts = [str(self.duckdb_path)]
        for path in (self.duckdb_path, Path(f"{self.duckdb_path}.wal")):
            try:
                stat = path.stat()
                parts.append(f"{stat.st_mtime_ns}:{stat.st_size}")
            except OSError:
                parts.append("-")
        return "|".join(parts)


def resolve_source() -> Source:
    """The destination the pipeline writes, by the warehouse package's one rule."""
    path = warehouse.duckdb_file_target()
    if path is not None:
        return Source("duckdb", "duckdb", Path(path))
    return Source("dataset", warehouse.configured_destination_type())


class Runner(Protocol):
    """Runs one SQL string and returns a DataFrame; knows the dataset's catalog and SQL dialect."""

    dialect: str

    def df(self, sql: str) -> pd.DataFrame:
        """Run a SELECT and return all rows."""
        ...

    def df_as_written(self, sql: str) -> pd.DataFrame:
        """Run a SELECT exactly as written (DuckDB or Postgres SQL, the dataset on the search path):
        for SQL the warehouse writes (``streak_warehouse.outcome_sql``), which dlt's query rewriting
        cannot follow through views its schema does not know."""
        ...

    def catalog(self) -> Catalog:
        """Relations and columns present in the dataset."""
        ...

    def kept(self, select: str) -> str | None:
        """The name of a temporary table holding the rows of ``select`` (SQL as written) for the rest of
        this connection, made on the first call: several queries of a page then read a costly relation
        computed once. None where the runner keeps nothing: the caller puts ``select`` in each query."""
        ...

    def close(self) -> None:
        """Release the connection (DuckDB: the file lock) as soon as the page is done."""
        ...


class DuckDBRunner:
    """A read-only DuckDB connection with the dataset schema on the search path."""

    dialect = "duckdb"

    def __init__(self, connection: Any) -> None:
        self._con = connection
        self._catalog: Catalog | None = None
        self._kept: set[str] = set()
        # The catalog is named after the file; with a file named like the dataset, `crm.x` would be
        # ambiguous, so put catalog.schema on the search path and use unqualified names.
        current = self._con.execute("SELECT current_database()").fetchone()[0]
        has_schema = self._con.execute(
            "SELECT COUNT(*) FROM information_schema.schemata "
            f"WHERE catalog_name = current_database() AND schema_name = {lit(DATASET_NAME)}"
        ).fetchone()[0]
        if has_schema:  # a fresh file has no dataset schema yet: the catalog comes back empty
            path = lit(quote_identifier(current) + "." + quote_identifier(DATASET_NAME))
            self._con.execute(f"SET search_path = {path}")
        self._con.execute("SET TimeZone = 'UTC'")

    def df(self, sql: str) -> pd.DataFrame:
        """Arrow -> pandas: DuckDB's own ``.df()`` is slower and warns under pandas 3."""
        return self._con.sql(sql).to_arrow_table().to_pandas()

    def df_as_written(self, sql: str) -> pd.DataFrame:
        return self.df(sql)

    def catalog(self) -> Catalog:
        if self._catalog is None:
            rows = self._con.execute(catalog_sql(DATASET_NAME)).fetchall()
            self._catalog = catalog_from_rows(rows)
        return self._catalog

    def kept(self, select: str) -> str | None:
        """A TEMP table (in memory: the file stays read-only), named after ``select``."""
        name = "kept_" + hashlib.sha256(select.encode()).hexdigest()[:16]
        if name not in self._kept:
            self._con.execute(f"CREATE TEMP TABLE {name} AS {select}")
            self._kept.add(name)
        return name

    def close(self) -> None:
        self._con.close()


retry_sleep: Callable[[float], None] = time.sleep
"""How :func:`open_duckdb` waits between tries (a module attribute, so tests can synchronise)."""


def _is_lock_error(exc: BaseException) -> bool:
    """DuckDB reports another process's write lock as an IOException mentioning the lock."""
    text = str(exc).lower()
    return "lock" in text and ("conflicting" in text or "could not set" in text)


def open_duckdb(
    path: Path, *, attempts: int = 5, delay_s: float = 0.6, sleep: Callable[[float], None] | None = None
) -> tuple[DuckDBRunner, int]:
    """Open ``path`` read-only, retrying while a load holds the write lock.

    Returns the runner and the number of tries it took (the UI says so when it is more than one).
    Raises :class:`NoData` when the file does not exist (read-only never creates it) and
    :class:`DatabaseBusy` when every try met the lock: bounded, so a page never hangs on a load.
    """
    import duckdb

    if not path.is_file():
        raise NoData("missing", str(path))
    pause = sleep or retry_sleep
    waited = 0.0
    last_error = ""
    for attempt in range(1, attempts + 1):
        try:
            return DuckDBRunner(duckdb.connect(str(path), read_only=True)), attempt
        except duckdb.Error as exc:
            if not _is_lock_error(exc):
                raise
            last_error = str(exc).splitlines()[0]
            if attempt < attempts:
                pause(delay_s)
                waited += delay_s
    raise DatabaseBusy(path, attempts, waited, last_error)


class DatasetRunner:
    """Reads any SQL destination dlt loaded, through ``dlt.dataset(...)``.

    Data queries go through ``dataset(sql).df()`` (dlt qualifies table names for the destination).
    The catalog query reads information_schema, which is not part of the dlt schema, so it runs on
    the dataset's own SQL client instead.
    """

    def __init__(self, dataset: Any) -> None:
        self._dataset = dataset
        self._catalog: Catalog | None = None
        self.dialect = str(dataset.destination_dialect)

    @classmethod
    def from_config(cls) -> DatasetRunner:
        """The dataset the pipeline wrote, resolved from configuration only."""
        import dlt

        return cls(dlt.dataset(warehouse.warehouse_destination(), DATASET_NAME))

    def df(self, sql: str) -> pd.DataFrame:
        frame = self._dataset(sql).df()
        return frame if frame is not None else pd.DataFrame()

    def df_as_written(self, sql: str) -> pd.DataFrame:
        """On the dataset's own SQL client, past dlt's query rewriting (Postgres puts the dataset on
        the search path)."""
        with self._dataset.sql_client as client, client.execute_query(sql) as cursor:
            frame = cursor.df()
        return frame if frame is not None else pd.DataFrame()

    def catalog(self) -> Catalog:
        if self._catalog is None:
            try:
                with self._dataset.sql_client as client:
                    rows = client.execute_sql(catalog_sql(DATASET_NAME)) or []
                self._catalog = catalog_from_rows(rows)
            except Exception:
                # No information_schema on this destination: fall back to dlt's stored schema,
                # which knows the loaded tables (not the views) and their non-NULL columns.
                self._catalog = self._catalog_from_dlt_schema()
        return self._catalog

    def kept(self, select: str) -> str | None:
        """dlt opens a connection per query: nothing outlives one."""
        return None

    def _catalog_from_dlt_schema(self) -> Catalog:
        rows: list[tuple[str, str, str | None]] = []
        for schema in self._dataset.schemas:
            for name in schema.data_table_names(seen_data_only=True):
                for column in schema.get_table_columns(name):
                    rows.append((name, "BASE TABLE", column))
        return catalog_from_rows(rows)

    def close(self) -> None:
        """dlt opens and closes its connection per query: nothing held."""


def connect(source: Source, *, attempts: int = 5, delay_s: float = 0.6) -> tuple[Runner, int]:
    """Open a runner for ``source``; returns it with the number of tries the open took."""
    if source.kind == "duckdb" and source.duckdb_path is not None:
        return open_duckdb(source.duckdb_path, attempts=attempts, delay_s=delay_s)
    try:
        return DatasetRunner.from_config(), 1
    except Exception as exc:  # configuration or driver errors: the UI shows them as one line
        raise DestinationUnavailable(f"{type(exc).__name__}: {exc}") from exc


def require_data(run: Runner) -> Catalog:
    """The catalog, or :class:`NoData` when nothing has been loaded into the dataset yet."""
    catalog = run.catalog()
    if not catalog.has(REQUIRED_TABLE, "box_key", "pipeline_key"):
        raise NoData("empty", f"dataset {DATASET_NAME}")
    return catalog
