"""Every query the dashboard runs, and the plumbing to run it wherever the pipeline loaded.

The UI file holds no SQL: it calls the functions below with a :class:`Runner` and a
:class:`Filters`, and gets pandas DataFrames back. That keeps the numbers testable without
Streamlit, and keeps one place to look when a table or column changes.

Two runners exist because the project supports two kinds of destinations:

* DuckDB (the default): opened directly and read-only, so a dashboard never takes the write lock
  a running load needs, and a missing file is never created by accident.
* Anything else dlt loads (Postgres, ...): read through dlt's dataset API, which resolves the
  destination and credentials from the same configuration the pipeline used.

The SQL is written once for both: table names are unqualified (both runners put the dataset on
the search path; dlt qualifies them for its destination), literals are inlined by :func:`lit`
(dlt's dataset API takes no bind parameters), and the one construct that differs per dialect
(parsing numbers out of text fields) is branched in :func:`_numeric_text_expr`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Final, Literal, Protocol

import pandas as pd

from streak_source.warehouse import (
    DATASET_NAME,
    configured_credentials,
    configured_destination_type,
    default_duckdb_path,
    warehouse_destination,
)

UNASSIGNED: Final = "__unassigned__"
"""Owner filter value for boxes with no assignee (``owner_email`` is NULL)."""
UNASSIGNED_LABEL: Final = "Unassigned"
UNKNOWN_STAGE_ORDER: Final = 10_000
"""Sorts boxes whose stage is missing from ``stages`` after every real stage."""
LOAD_COMMAND: Final = "python pipelines/streak_full.py --demo"
NUMERIC_SHARE: Final = 0.8
"""A text field counts as numeric when at least this share of its values parse as numbers."""

# Tables the pages read. Missing ones (a table dlt never created because it got no rows) count as
# empty instead of failing the page.
BOXES: Final = "boxes"
REQUIRED_TABLE: Final = BOXES


# --------------------------------------------------------------------------------------------
# Errors the UI turns into friendly messages
# --------------------------------------------------------------------------------------------


class NoData(Exception):
    """The destination has nothing to show yet (file missing, or no ``boxes`` table)."""

    def __init__(self, reason: Literal["missing", "empty"], where: str) -> None:
        self.reason = reason
        self.where = where
        super().__init__(f"No CRM data in {where} ({reason})")


class DatabaseBusy(Exception):
    """The DuckDB file stayed locked (a load is writing) through every retry."""

    def __init__(self, path: Path, attempts: int, waited_s: float, cause: str) -> None:
        self.path = path
        self.attempts = attempts
        self.waited_s = waited_s
        self.cause = cause
        super().__init__(f"{path} is locked after {attempts} tries over {waited_s:.1f} s: {cause}")


class DestinationUnavailable(Exception):
    """The configured warehouse could not be reached or read (bad credentials, server down...)."""


# --------------------------------------------------------------------------------------------
# Where to read from
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """What the pipeline's configuration points at: a DuckDB file, or another dlt destination."""

    kind: Literal["duckdb", "dataset"]
    destination_type: str
    duckdb_path: Path | None = None

    @property
    def label(self) -> str:
        """Short human description for the page header."""
        if self.duckdb_path is not None:
            return f"DuckDB file {self.duckdb_path}"
        return f"{self.destination_type} dataset `{DATASET_NAME}`"

    def version(self) -> str:
        """Changes when a DuckDB load finishes, so cached results refresh at once after a load.

        Other destinations have no cheap change marker: their results live out the cache TTL.
        """
        if self.duckdb_path is None:
            return f"{self.destination_type}:{DATASET_NAME}"
        parts = [str(self.duckdb_path)]
        for path in (self.duckdb_path, Path(f"{self.duckdb_path}.wal")):
            try:
                stat = path.stat()
                parts.append(f"{stat.st_mtime_ns}:{stat.st_size}")
            except OSError:
                parts.append("-")
        return "|".join(parts)


def _duckdb_path_from_credentials(credentials: Any) -> Path | None:
    """A configured DuckDB credential as a file path; None when it is not a plain local file."""
    if credentials is None:
        return None
    text = str(getattr(credentials, "database", None) or credentials).strip()
    text = re.sub(r"^duckdb:///?", "", text)
    if not text or text == ":memory:" or text.startswith(("md:", "motherduck:")):
        return None
    return Path(text).expanduser().resolve()


def resolve_source() -> Source:
    """Read the destination from the project's configuration, exactly as the pipeline does."""
    destination_type = configured_destination_type()
    if destination_type == "duckdb":
        credentials = configured_credentials()
        path = default_duckdb_path() if not credentials else _duckdb_path_from_credentials(credentials)
        if path is not None:
            return Source("duckdb", destination_type, path)
    return Source("dataset", destination_type)


# --------------------------------------------------------------------------------------------
# Runners
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Catalog:
    """Which relations (tables and views) and columns exist in the dataset.

    dlt creates no table for a resource that yielded nothing and drops columns that were always
    NULL, so queries ask the catalog before naming an optional table or column.
    """

    relations: Mapping[str, str] = field(default_factory=dict)
    """name -> "table" | "view"."""
    columns: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def has(self, relation: str, *columns: str) -> bool:
        """True when the relation exists and carries every named column."""
        if relation not in self.relations:
            return False
        present = set(self.columns.get(relation, ()))
        return all(column in present for column in columns)

    def data_tables(self) -> list[str]:
        """Loaded tables, without dlt's bookkeeping tables and without views."""
        return sorted(
            name
            for name, kind in self.relations.items()
            if kind == "table" and not name.startswith("_dlt")
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


_CATALOG_SQL: Final = """
SELECT t.table_name, t.table_type, c.column_name
FROM information_schema.tables AS t
LEFT JOIN information_schema.columns AS c
  ON c.table_catalog = t.table_catalog
 AND c.table_schema = t.table_schema
 AND c.table_name = t.table_name
WHERE LOWER(t.table_schema) = {schema}{extra}
ORDER BY t.table_name, c.ordinal_position
"""


def catalog_sql(dialect: str) -> str:
    """The information_schema query; DuckDB also lists other attached catalogs, so pin it."""
    extra = " AND t.table_catalog = current_database()" if dialect == "duckdb" else ""
    return _CATALOG_SQL.format(schema=lit(DATASET_NAME.lower()), extra=extra)


class Runner(Protocol):
    """Runs one SQL string and returns a DataFrame; knows the dataset's catalog and SQL dialect."""

    dialect: str

    def df(self, sql: str) -> pd.DataFrame:
        """Run a SELECT and return all rows."""
        ...

    def catalog(self) -> Catalog:
        """Relations and columns present in the dataset."""
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
        # The catalog is named after the file; with a file named like the dataset, `crm.x` would be
        # ambiguous, so put catalog.schema on the search path and use unqualified names.
        current = self._con.execute("SELECT current_database()").fetchone()[0]
        has_schema = self._con.execute(
            "SELECT COUNT(*) FROM information_schema.schemata "
            f"WHERE catalog_name = current_database() AND schema_name = {lit(DATASET_NAME)}"
        ).fetchone()[0]
        if has_schema:  # a fresh file has no dataset schema yet: the catalog comes back empty
            path = lit(_quote_ident(current) + "." + _quote_ident(DATASET_NAME))
            self._con.execute(f"SET search_path = {path}")
        self._con.execute("SET TimeZone = 'UTC'")

    def df(self, sql: str) -> pd.DataFrame:
        """Arrow -> pandas: DuckDB's own ``.df()`` is slower and warns under pandas 3."""
        return self._con.sql(sql).to_arrow_table().to_pandas()

    def catalog(self) -> Catalog:
        if self._catalog is None:
            self._catalog = catalog_from_rows(self._con.execute(catalog_sql(self.dialect)).fetchall())
        return self._catalog

    def close(self) -> None:
        self._con.close()


retry_sleep: Callable[[float], None] = time.sleep
"""How :func:`open_duckdb` waits between tries (a module attribute, so tests can synchronise)."""


def _is_lock_error(exc: BaseException) -> bool:
    """DuckDB reports another process's write lock as an IOException mentioning the lock."""
    text = str(exc).lower()
    return "lock" in text and ("conflicting" in text or "could not set" in text)


def open_duckdb(
    path: Path,
    *,
    attempts: int = 5,
    delay_s: float = 0.6,
    sleep: Callable[[float], None] | None = None,
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

        return cls(dlt.dataset(warehouse_destination(), DATASET_NAME))

    def df(self, sql: str) -> pd.DataFrame:
        frame = self._dataset(sql).df()
        return frame if frame is not None else pd.DataFrame()

    def catalog(self) -> Catalog:
        if self._catalog is None:
            try:
                with self._dataset.sql_client as client:
                    rows = client.execute_sql(catalog_sql(self.dialect)) or []
                self._catalog = catalog_from_rows(rows)
            except Exception:
                # No information_schema on this destination: fall back to dlt's stored schema,
                # which knows the loaded tables (not the views) and their non-NULL columns.
                self._catalog = self._catalog_from_dlt_schema()
        return self._catalog

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
        raise NoData("empty", f"dataset `{DATASET_NAME}`")
    return catalog


# --------------------------------------------------------------------------------------------
# SQL building blocks
# --------------------------------------------------------------------------------------------


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def lit(value: Any) -> str:
    """An SQL literal that means the same on DuckDB and Postgres.

    The dataset API takes no bind parameters, so filter values are inlined; strings are quoted by
    doubling single quotes (standard SQL; both engines treat backslashes literally).
    """
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        text = aware.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f+00:00")
        return f"CAST('{text}' AS TIMESTAMP WITH TIME ZONE)"
    if isinstance(value, date):
        return lit(datetime(value.year, value.month, value.day, tzinfo=timezone.utc))
    text = str(value)
    if "\x00" in text:
        raise ValueError("NUL characters cannot appear in SQL literals")
    return "'" + text.replace("'", "''") + "'"


def _in_list(values: Iterable[Any]) -> str:
    return "(" + ", ".join(lit(v) for v in values) + ")"


def _col(catalog: Catalog, table: str, alias: str, column: str) -> str:
    """``alias.column`` when the column exists, else NULL (dlt drops always-NULL columns)."""
    return f"{alias}.{_quote_ident(column)}" if catalog.has(table, column) else "NULL"


@dataclass(frozen=True)
class Filters:
    """The sidebar filters every page applies to the set of boxes it looks at.

    ``created_from``/``created_to`` (inclusive) filter on the box's creation date; ``None`` means
    no bound. An empty ``owners`` tuple means everyone; :data:`UNASSIGNED` selects boxes with no
    assignee.
    """

    pipeline_key: str | None = None
    owners: tuple[str, ...] = ()
    created_from: date | None = None
    created_to: date | None = None


def _box_where(f: Filters, catalog: Catalog, alias: str = "b") -> str:
    clauses = ["1 = 1"]
    if f.pipeline_key is not None:
        clauses.append(f"{alias}.pipeline_key = {lit(f.pipeline_key)}")
    if f.owners:
        emails = [o for o in f.owners if o != UNASSIGNED]
        owner = _col(catalog, BOXES, alias, "owner_email")
        parts = [f"{owner} IN {_in_list(emails)}"] if emails else []
        if UNASSIGNED in f.owners:
            parts.append(f"{owner} IS NULL")
        clauses.append("(" + " OR ".join(parts) + ")")
    created = _col(catalog, BOXES, alias, "creation_timestamp")
    if f.created_from is not None:
        clauses.append(f"{created} >= {lit(f.created_from)}")
    if f.created_to is not None:
        clauses.append(f"{created} < {lit(f.created_to + timedelta(days=1))}")
    return " AND ".join(clauses)


def _boxes_cte(f: Filters, catalog: Catalog) -> str:
    """``fb``: the filtered boxes, with the columns the pages need (missing ones as NULL)."""
    c = lambda column: _col(catalog, BOXES, "b", column)  # noqa: E731
    return f"""fb AS (
  SELECT b.box_key AS box_key, b.pipeline_key AS pipeline_key, {c('name')} AS box_name,
         {c('stage_key')} AS stage_key, {c('stage_name')} AS box_stage_name,
         {c('owner_name')} AS owner_name, {c('owner_email')} AS owner_email,
         {c('creation_timestamp')} AS creation_timestamp,
         {c('last_stage_change_timestamp')} AS last_stage_change_timestamp
  FROM boxes AS b
  WHERE {_box_where(f, catalog)}
)"""


def _owner_label(expr: str) -> str:
    return f"COALESCE({expr}, {lit(UNASSIGNED_LABEL)})"


NUMBER_PATTERN: Final = "^[-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)[kKmM]?$"
NUMBER_NOISE: Final = "[[:space:],$€£¥]"
"""Stripped from number-like text before parsing: "119,500 €" -> "119500". Commas are read as
thousands separators; a trailing k / M multiplies ("175k" -> 175000)."""


def _numeric_text_expr(dialect: str, expr: str) -> str:
    """Parse a number out of a text value, NULL when it is not one.

    The one place the dialects differ. DuckDB and Postgres get the same strict check (a regex
    guard, so "v2.0 release" or "NaN" never count); Snowflake and BigQuery their safe casts
    (without the k / M suffixes); any other engine NULL (then only ``value_number`` counts).
    """
    pattern, noise = lit(NUMBER_PATTERN), lit(NUMBER_NOISE)
    cleaned = f"REGEXP_REPLACE({expr}, {noise}, '', 'g')"
    suffix = f"RIGHT({cleaned}, 1)"
    digits = f"CASE WHEN {suffix} IN ('k', 'K', 'm', 'M') THEN LEFT({cleaned}, LENGTH({cleaned}) - 1) ELSE {cleaned} END"
    factor = f"CASE WHEN {suffix} IN ('k', 'K') THEN 1000 WHEN {suffix} IN ('m', 'M') THEN 1000000 ELSE 1 END"
    if dialect == "duckdb":
        return f"CASE WHEN REGEXP_FULL_MATCH({cleaned}, {pattern}) THEN CAST({digits} AS DOUBLE) * {factor} END"
    if dialect in ("postgres", "redshift"):
        return f"CASE WHEN {cleaned} ~ {pattern} THEN CAST({digits} AS DOUBLE PRECISION) * {factor} END"
    if dialect == "snowflake":
        return f"TRY_TO_DOUBLE(REGEXP_REPLACE({expr}, {noise}, ''))"
    if dialect == "bigquery":
        return f"SAFE_CAST(REGEXP_REPLACE({expr}, r'[\\s,$€£¥]', '') AS FLOAT64)"
    return "NULL"


def _field_value_expr(run: Runner, catalog: Catalog) -> str:
    """A field's numeric value: ``value_number``, else numeric text of TEXT_INPUT/FORMULA fields."""
    number = _col(catalog, "box_field_values", "v", "value_number")
    text = _col(catalog, "box_field_values", "v", "value_text")
    ftype = _col(catalog, "box_field_values", "v", "field_type")
    if text == "NULL":
        return number
    parsed = _numeric_text_expr(run.dialect, text)
    return (
        f"COALESCE({number}, CASE WHEN {ftype} IN ('TEXT_INPUT', 'FORMULA') THEN {parsed} END)"
    )


def _empty(columns: Iterable[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})


def _utc(series: pd.Series) -> pd.Series:
    """Timestamps as tz-aware UTC whatever the driver returned (naive, tz-aware, all NULL)."""
    converted = pd.to_datetime(series, utc=True, errors="coerce")
    return converted


# --------------------------------------------------------------------------------------------
# Filter options
# --------------------------------------------------------------------------------------------


def pipelines(run: Runner) -> pd.DataFrame:
    """Pipelines that exist, with their box counts: ``pipeline_key, pipeline_name, boxes``."""
    catalog = require_data(run)
    name = _col(catalog, "pipelines", "p", "name") if catalog.has("pipelines") else "NULL"
    if catalog.has("pipelines", "pipeline_key"):
        sql = f"""
        SELECT p.pipeline_key AS pipeline_key, {name} AS pipeline_name, COUNT(b.box_key) AS boxes
        FROM pipelines AS p LEFT JOIN boxes AS b ON b.pipeline_key = p.pipeline_key
        GROUP BY p.pipeline_key, {name}
        UNION ALL
        SELECT b.pipeline_key AS pipeline_key, NULL AS pipeline_name, COUNT(*) AS boxes
        FROM boxes AS b
        WHERE b.pipeline_key NOT IN (SELECT p2.pipeline_key FROM pipelines AS p2)
        GROUP BY b.pipeline_key
        """
    else:
        sql = """
        SELECT b.pipeline_key AS pipeline_key, NULL AS pipeline_name, COUNT(*) AS boxes
        FROM boxes AS b GROUP BY b.pipeline_key
        """
    frame = run.df(sql)
    frame["pipeline_name"] = frame["pipeline_name"].where(
        frame["pipeline_name"].notna(), "Pipeline " + frame["pipeline_key"].astype(str)
    )
    frame["boxes"] = frame["boxes"].astype("int64")
    return frame.sort_values(["pipeline_name", "pipeline_key"]).reset_index(drop=True)


def owners(run: Runner) -> pd.DataFrame:
    """Box owners (first assignee): ``owner_email, owner_name, boxes``; NULL email = unassigned."""
    catalog = require_data(run)
    email = _col(catalog, BOXES, "b", "owner_email")
    name = _col(catalog, BOXES, "b", "owner_name")
    frame = run.df(
        f"""
        SELECT {email} AS owner_email, MAX({name}) AS owner_name, COUNT(*) AS boxes
        FROM boxes AS b GROUP BY {email}
        """
    )
    frame["boxes"] = frame["boxes"].astype("int64")
    return frame.sort_values(["owner_name", "owner_email"], na_position="last").reset_index(drop=True)


def creation_bounds(run: Runner) -> tuple[date | None, date | None]:
    """First and last box creation dates (UTC), for the date filter's default range."""
    catalog = require_data(run)
    created = _col(catalog, BOXES, "b", "creation_timestamp")
    frame = run.df(f"SELECT MIN({created}) AS first_at, MAX({created}) AS last_at FROM boxes AS b")
    first, last = _utc(frame["first_at"]).iloc[0], _utc(frame["last_at"]).iloc[0]
    return (
        None if pd.isna(first) else first.date(),
        None if pd.isna(last) else last.date(),
    )


# --------------------------------------------------------------------------------------------
# Overview
# --------------------------------------------------------------------------------------------


def overview_counts(run: Runner, f: Filters, now: datetime) -> dict[str, int]:
    """Headline numbers for the filtered boxes.

    ``open_tasks`` = NOT_DONE; ``overdue_tasks`` = NOT_DONE with ``due_date`` before ``now``;
    activity counts are rows of the child tables attached to the filtered boxes.
    """
    catalog = require_data(run)
    parts = ["(SELECT COUNT(*) FROM fb) AS boxes"]

    def child_count(table: str, label: str, condition: str = "1 = 1") -> None:
        if catalog.has(table, "box_key"):
            parts.append(
                f"(SELECT COUNT(*) FROM {table} AS x JOIN fb ON fb.box_key = x.box_key "
                f"WHERE {condition}) AS {label}"
            )
        else:
            parts.append(f"0 AS {label}")

    status = _col(catalog, "box_tasks", "x", "status")
    due = _col(catalog, "box_tasks", "x", "due_date")
    kind = _col(catalog, "box_meetings", "x", "meeting_type")
    child_count("box_tasks", "open_tasks", f"{status} = 'NOT_DONE'")
    child_count("box_tasks", "overdue_tasks", f"{status} = 'NOT_DONE' AND {due} < {lit(now)}")
    child_count("box_threads", "email_threads")
    child_count("box_comments", "comments")
    child_count("box_meetings", "meetings", f"{kind} = 'MEETING_NOTES'")
    child_count("box_meetings", "call_logs", f"{kind} = 'CALL_LOG'")
    frame = run.df(f"WITH {_boxes_cte(f, catalog)} SELECT {', '.join(parts)}")
    return {column: int(frame[column].iloc[0]) for column in frame.columns}


def last_load(run: Runner) -> dict[str, Any]:
    """When the last successful load finished (``_dlt_loads.status = 0``), and how many there were."""
    catalog = run.catalog()
    if not catalog.has("_dlt_loads", "inserted_at", "status"):
        return {"inserted_at": None, "loads": 0}
    frame = run.df(
        "SELECT MAX(l.inserted_at) AS inserted_at, COUNT(*) AS loads "
        "FROM _dlt_loads AS l WHERE l.status = 0"
    )
    inserted = _utc(frame["inserted_at"]).iloc[0]
    return {
        "inserted_at": None if pd.isna(inserted) else inserted.to_pydatetime(),
        "loads": int(frame["loads"].iloc[0]),
    }


def row_counts(run: Runner) -> pd.DataFrame:
    """Rows per loaded table (whole account, not filtered): ``table, rows``."""
    tables = run.catalog().data_tables()
    if not tables:
        return _empty(["table", "rows"])
    sql = " UNION ALL ".join(
        f"SELECT {lit(t)} AS table_name, COUNT(*) AS row_count FROM {_quote_ident(t)}" for t in tables
    )
    frame = run.df(sql).rename(columns={"table_name": "table", "row_count": "rows"})
    frame["rows"] = frame["rows"].astype("int64")
    return frame.sort_values("table").reset_index(drop=True)


def boxes_created(run: Runner, f: Filters) -> pd.DataFrame:
    """New boxes per month and pipeline: ``month, pipeline_name, boxes``."""
    catalog = require_data(run)
    frame = run.df(
        f"""
        WITH {_boxes_cte(f, catalog)}
        SELECT DATE_TRUNC('month', fb.creation_timestamp) AS month, fb.pipeline_key AS pipeline_key,
               COUNT(*) AS boxes
        FROM fb WHERE fb.creation_timestamp IS NOT NULL
        GROUP BY DATE_TRUNC('month', fb.creation_timestamp), fb.pipeline_key
        """
    )
    if frame.empty:
        return _empty(["month", "pipeline_key", "pipeline_name", "boxes"])
    frame["month"] = _utc(frame["month"])
    names = pipelines(run).set_index("pipeline_key")["pipeline_name"]
    frame["pipeline_name"] = frame["pipeline_key"].map(names).fillna(frame["pipeline_key"])
    frame["boxes"] = frame["boxes"].astype("int64")
    return frame.sort_values(["month", "pipeline_name"]).reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Stages and funnel
# --------------------------------------------------------------------------------------------


def stages(run: Runner, pipeline_key: str | None = None) -> pd.DataFrame:
    """Stages in display order: ``pipeline_key, stage_key, stage_name, stage_order, color``."""
    catalog = require_data(run)
    columns = ["pipeline_key", "stage_key", "stage_name", "stage_order", "color", "text_color"]
    if not catalog.has("stages", "pipeline_key", "stage_key"):
        return _empty(columns)
    c = lambda column: _col(catalog, "stages", "s", column)  # noqa: E731
    where = f"WHERE s.pipeline_key = {lit(pipeline_key)}" if pipeline_key is not None else ""
    frame = run.df(
        f"""
        SELECT s.pipeline_key AS pipeline_key, s.stage_key AS stage_key, {c('name')} AS stage_name,
               {c('stage_order')} AS stage_order, {c('background_color')} AS color,
               {c('foreground_color')} AS text_color
        FROM stages AS s {where}
        """
    )
    frame["stage_name"] = frame["stage_name"].where(frame["stage_name"].notna(), frame["stage_key"])
    frame["stage_order"] = pd.to_numeric(frame["stage_order"], errors="coerce").fillna(
        UNKNOWN_STAGE_ORDER - 1
    )
    return frame.sort_values(["pipeline_key", "stage_order", "stage_key"]).reset_index(drop=True)


def numeric_fields(run: Runner, f: Filters) -> pd.DataFrame:
    """Custom fields of the filtered boxes that hold numbers: ``field_name, boxes``.

    Numbers are ``value_number`` (any type) or text of TEXT_INPUT/FORMULA fields that parses as a
    number; a field qualifies when most of its values (:data:`NUMERIC_SHARE`) are numbers.
    """
    catalog = require_data(run)
    if not catalog.has("box_field_values", "box_key", "field_name"):
        return _empty(["field_name", "boxes"])
    value = _field_value_expr(run, catalog)
    frame = run.df(
        f"""
        WITH {_boxes_cte(f, catalog)}
        SELECT v.field_name AS field_name, COUNT(*) AS total,
               SUM(CASE WHEN {value} IS NOT NULL THEN 1 ELSE 0 END) AS numeric_values
        FROM box_field_values AS v JOIN fb ON fb.box_key = v.box_key
        GROUP BY v.field_name
        """
    )
    if frame.empty:
        return _empty(["field_name", "boxes"])
    frame["numeric_values"] = pd.to_numeric(frame["numeric_values"]).fillna(0).astype("int64")
    keep = (frame["numeric_values"] > 0) & (frame["numeric_values"] >= NUMERIC_SHARE * frame["total"])
    result = frame.loc[keep, ["field_name", "numeric_values"]].rename(columns={"numeric_values": "boxes"})
    return result.sort_values("field_name").reset_index(drop=True)


def funnel(run: Runner, f: Filters, value_field: str | None = None) -> pd.DataFrame:
    """Boxes (and optionally the sum of a numeric field) per stage, in stage order.

    Columns: ``pipeline_key, pipeline_name, stage_key, stage_name, stage_order, color, boxes,
    value``. Every stage of the pipelines in view appears, empty ones with 0; boxes whose stage is
    not in ``stages`` get their own row, so the counts always add up to the filtered boxes.
    """
    catalog = require_data(run)
    value_sql = "NULL AS value"
    value_join = ""
    if value_field and catalog.has("box_field_values", "box_key", "field_name"):
        value_sql = "SUM(fv.value) AS value"
        value_join = f"""
        LEFT JOIN (
          SELECT v.box_key AS box_key, SUM({_field_value_expr(run, catalog)}) AS value
          FROM box_field_values AS v
          WHERE v.field_name = {lit(value_field)}
          GROUP BY v.box_key
        ) AS fv ON fv.box_key = fb.box_key"""
    counts = run.df(
        f"""
        WITH {_boxes_cte(f, catalog)}
        SELECT fb.pipeline_key AS pipeline_key, fb.stage_key AS stage_key,
               MAX(fb.box_stage_name) AS box_stage_name, COUNT(*) AS boxes, {value_sql}
        FROM fb {value_join}
        GROUP BY fb.pipeline_key, fb.stage_key
        """
    )
    all_stages = stages(run, f.pipeline_key)
    keys = ["pipeline_key", "stage_key"]
    if f.pipeline_key is None:
        # All pipelines: show pipelines that have boxes in view, not every empty pipeline.
        all_stages = all_stages[all_stages["pipeline_key"].isin(counts["pipeline_key"])]
    merged = all_stages.merge(counts, on=keys, how="outer")
    unknown = merged["stage_name"].isna()
    merged.loc[unknown, "stage_name"] = merged.loc[unknown, "box_stage_name"].where(
        merged.loc[unknown, "box_stage_name"].notna(),
        "(stage " + merged.loc[unknown, "stage_key"].astype(str) + ")",
    )
    merged.loc[unknown, "stage_order"] = UNKNOWN_STAGE_ORDER
    merged["boxes"] = pd.to_numeric(merged["boxes"]).fillna(0).astype("int64")
    merged["value"] = pd.to_numeric(merged["value"], errors="coerce")
    if value_field:
        merged["value"] = merged["value"].fillna(0.0)
    names = pipelines(run).set_index("pipeline_key")["pipeline_name"]
    merged["pipeline_name"] = merged["pipeline_key"].map(names).fillna(merged["pipeline_key"])
    merged["stage_order"] = merged["stage_order"].astype("int64")
    columns = ["pipeline_key", "pipeline_name", "stage_key", "stage_name", "stage_order", "color", "boxes", "value"]
    return merged[columns].sort_values(["pipeline_name", "stage_order", "stage_key"]).reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Ageing
# --------------------------------------------------------------------------------------------


def ageing(run: Runner, f: Filters, now: datetime) -> pd.DataFrame:
    """One row per filtered box with the days since it last changed stage.

    Columns: ``box_key, box_name, pipeline_name, stage_name, stage_order, color, owner_name,
    since, days_in_stage``. ``since`` is ``last_stage_change_timestamp``, or the creation time
    for a box that never moved. Days are computed here, not in SQL, because date arithmetic is
    the least portable part of SQL.
    """
    catalog = require_data(run)
    frame = run.df(
        f"""
        WITH {_boxes_cte(f, catalog)}
        SELECT fb.box_key AS box_key, fb.box_name AS box_name, fb.pipeline_key AS pipeline_key,
               fb.stage_key AS stage_key, fb.box_stage_name AS box_stage_name,
               {_owner_label('fb.owner_name')} AS owner_name,
               COALESCE(fb.last_stage_change_timestamp, fb.creation_timestamp) AS since
        FROM fb
        """
    )
    columns = ["box_key", "box_name", "pipeline_name", "stage_name", "stage_order", "color",
               "owner_name", "since", "days_in_stage"]
    if frame.empty:
        return _empty(columns)
    stage_info = stages(run, f.pipeline_key)
    frame = frame.merge(stage_info, on=["pipeline_key", "stage_key"], how="left")
    unknown = frame["stage_name"].isna()
    frame.loc[unknown, "stage_name"] = frame.loc[unknown, "box_stage_name"].fillna("(unknown stage)")
    frame["stage_order"] = frame["stage_order"].fillna(UNKNOWN_STAGE_ORDER).astype("int64")
    names = pipelines(run).set_index("pipeline_key")["pipeline_name"]
    frame["pipeline_name"] = frame["pipeline_key"].map(names).fillna(frame["pipeline_key"])
    frame["since"] = _utc(frame["since"])
    now_ts = pd.Timestamp(now).tz_convert("UTC") if pd.Timestamp(now).tzinfo else pd.Timestamp(now, tz="UTC")
    frame["days_in_stage"] = (now_ts - frame["since"]).dt.total_seconds() / 86400.0
    return frame[columns].sort_values("days_in_stage", ascending=False, na_position="last").reset_index(drop=True)


def ageing_by_stage(boxes: pd.DataFrame) -> pd.DataFrame:
    """Per stage: boxes, median/p90/max days since the last stage change, in stage order."""
    columns = ["pipeline_name", "stage_name", "stage_order", "color", "boxes", "median_days", "p90_days", "max_days"]
    if boxes.empty:
        return _empty(columns)
    grouped = boxes.groupby(["pipeline_name", "stage_name", "stage_order"], dropna=False, sort=False)
    result = grouped.agg(
        color=("color", "first"),
        boxes=("box_key", "count"),
        median_days=("days_in_stage", "median"),
        p90_days=("days_in_stage", lambda s: s.quantile(0.9)),
        max_days=("days_in_stage", "max"),
    ).reset_index()
    return result[columns].sort_values(["pipeline_name", "stage_order"]).reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Tasks
# --------------------------------------------------------------------------------------------


def open_tasks(run: Runner, f: Filters) -> pd.DataFrame:
    """Every NOT_DONE task on the filtered boxes, with its box's name, pipeline and stage.

    Columns: ``task_key, text, due_date, assignee_names, assignee_emails, box_key, box_name,
    pipeline_name, stage_name, box_owner``.
    """
    catalog = require_data(run)
    columns = ["task_key", "text", "due_date", "assignee_names", "assignee_emails", "box_key",
               "box_name", "pipeline_name", "stage_name", "box_owner"]
    if not catalog.has("box_tasks", "box_key", "status"):
        return _empty(columns)
    c = lambda column: _col(catalog, "box_tasks", "t", column)  # noqa: E731
    frame = run.df(
        f"""
        WITH {_boxes_cte(f, catalog)}
        SELECT {c('task_key')} AS task_key, {c('text')} AS text, {c('due_date')} AS due_date,
               {c('assignee_names')} AS assignee_names, {c('assignee_emails')} AS assignee_emails,
               fb.box_key AS box_key, fb.box_name AS box_name, fb.pipeline_key AS pipeline_key,
               fb.box_stage_name AS stage_name, {_owner_label('fb.owner_name')} AS box_owner
        FROM box_tasks AS t JOIN fb ON fb.box_key = t.box_key
        WHERE t.status = 'NOT_DONE'
        """
    )
    if frame.empty:
        return _empty(columns)
    frame["due_date"] = _utc(frame["due_date"])
    names = pipelines(run).set_index("pipeline_key")["pipeline_name"]
    frame["pipeline_name"] = frame["pipeline_key"].map(names).fillna(frame["pipeline_key"])
    return frame[columns].sort_values("due_date", na_position="last").reset_index(drop=True)


def task_status_counts(run: Runner, f: Filters) -> dict[str, int]:
    """Tasks on the filtered boxes by status (``DONE``, ``NOT_DONE``, ...)."""
    catalog = require_data(run)
    if not catalog.has("box_tasks", "box_key", "status"):
        return {}
    frame = run.df(
        f"""
        WITH {_boxes_cte(f, catalog)}
        SELECT t.status AS status, COUNT(*) AS tasks
        FROM box_tasks AS t JOIN fb ON fb.box_key = t.box_key
        GROUP BY t.status
        """
    )
    return {str(row.status): int(row.tasks) for row in frame.itertuples()}


def classify_tasks(tasks: pd.DataFrame, now: datetime, due_soon_days: int) -> pd.DataFrame:
    """Adds ``state`` (Overdue / Due soon / Later / No due date) and ``days_overdue``.

    Overdue = due before ``now``; due soon = due within ``due_soon_days`` from ``now``.
    """
    result = tasks.copy()
    now_ts = pd.Timestamp(now)
    now_ts = now_ts.tz_convert("UTC") if now_ts.tzinfo else now_ts.tz_localize("UTC")
    due = _utc(result["due_date"]) if not result.empty else pd.Series(dtype="datetime64[us, UTC]")
    soon_limit = now_ts + pd.Timedelta(days=due_soon_days)
    state = pd.Series("Later", index=result.index, dtype="object")
    state[due.isna()] = "No due date"
    state[due < now_ts] = "Overdue"
    state[(due >= now_ts) & (due < soon_limit)] = "Due soon"
    result["state"] = state
    result["days_overdue"] = ((now_ts - due).dt.total_seconds() / 86400.0).where(due < now_ts)
    return result


def tasks_by_assignee(classified: pd.DataFrame) -> pd.DataFrame:
    """Overdue and due-soon tasks per assignee: ``assignee, state, tasks``.

    A task with several assignees counts once for each of them (``assignee_names`` is a joined
    list); a task with none counts under "Unassigned".
    """
    columns = ["assignee", "state", "tasks"]
    focus = classified[classified["state"].isin(["Overdue", "Due soon"])]
    if focus.empty:
        return _empty(columns)
    names = focus["assignee_names"].fillna("").astype(str).str.split(",")
    exploded = focus.assign(assignee=names).explode("assignee")
    exploded["assignee"] = exploded["assignee"].astype(str).str.strip()
    exploded.loc[exploded["assignee"] == "", "assignee"] = UNASSIGNED_LABEL
    counts = exploded.groupby(["assignee", "state"]).size().rename("tasks").reset_index()
    return counts[columns]


# --------------------------------------------------------------------------------------------
# Activity
# --------------------------------------------------------------------------------------------

ACTIVITY_KINDS: Final = ("Emails", "Comments", "Meetings", "Call logs")
"""Emails are email threads dated by their last email (``box_threads.last_email_timestamp``)."""


def activity(run: Runner, f: Filters, grain: Literal["day", "week", "month"] = "week") -> pd.DataFrame:
    """Activity on the filtered boxes per period, kind and box owner: ``period, kind, owner, events``."""
    catalog = require_data(run)
    if grain not in ("day", "week", "month"):
        raise ValueError(f"unknown grain {grain!r}")
    selects: list[str] = []

    def add(table: str, ts_column: str, kind_sql: str, where: str = "1 = 1") -> None:
        if not catalog.has(table, "box_key", ts_column):
            return
        period = f"DATE_TRUNC({lit(grain)}, x.{_quote_ident(ts_column)})"
        owner = _owner_label("fb.owner_name")
        # Postgres rejects a constant in GROUP BY: group by the kind only when it is an expression.
        group = [period, owner] + ([] if kind_sql.startswith("'") else [kind_sql])
        selects.append(
            f"SELECT {period} AS period, {kind_sql} AS kind, {owner} AS owner, COUNT(*) AS events "
            f"FROM {table} AS x JOIN fb ON fb.box_key = x.box_key "
            f"WHERE x.{_quote_ident(ts_column)} IS NOT NULL AND {where} "
            f"GROUP BY {', '.join(group)}"
        )

    add("box_threads", "last_email_timestamp", lit("Emails"))
    add("box_comments", "timestamp", lit("Comments"))
    meeting_kind = _col(catalog, "box_meetings", "x", "meeting_type")
    add(
        "box_meetings",
        "start_timestamp",
        f"CASE WHEN {meeting_kind} = 'CALL_LOG' THEN 'Call logs' ELSE 'Meetings' END",
    )
    columns = ["period", "kind", "owner", "events"]
    if not selects:
        return _empty(columns)
    frame = run.df(f"WITH {_boxes_cte(f, catalog)} " + " UNION ALL ".join(selects))
    if frame.empty:
        return _empty(columns)
    frame["period"] = _utc(frame["period"])
    frame["events"] = frame["events"].astype("int64")
    return frame[columns].sort_values(["period", "kind", "owner"]).reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Box explorer
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class WideView:
    """A pipeline's wide view as the main job names it: view name, column -> custom field name."""

    name: str
    field_names: Mapping[str, str]


def _naming() -> Callable[[str], str]:
    from dlt.common.normalizers.naming.snake_case import NamingConvention

    return NamingConvention().normalize_identifier


def _planned_wide_view(run: Runner, catalog: Catalog, pipeline_key: str) -> WideView | None:
    """Ask the main job's own naming rules (``streak_source.views.plan_wide_views``) for the view.

    They settle clashes (two pipelines with one name, a field named like a core column) with
    suffixes, which no guess from the name alone would reproduce.
    """
    if not catalog.has("pipelines", "pipeline_key", "name"):
        return None
    try:
        from streak_source.views import plan_wide_views
    except ImportError:  # an older project without views: fall back to the plain names
        return None
    pipeline_rows = run.df("SELECT p.pipeline_key AS pipeline_key, p.name AS name FROM pipelines AS p")
    field_rows = pd.DataFrame()
    if catalog.has("pipeline_fields", "pipeline_key", "field_key"):
        c = lambda column: _col(catalog, "pipeline_fields", "f", column)  # noqa: E731
        field_rows = run.df(
            f"SELECT f.pipeline_key AS pipeline_key, f.field_key AS field_key, {c('name')} AS name, "
            f"{c('type')} AS type, {c('field_order')} AS field_order FROM pipeline_fields AS f"
        )
    tables = [name for name, kind in catalog.relations.items() if kind == "table"]
    try:
        plans = plan_wide_views(_records(pipeline_rows), _records(field_rows), _naming(), reserved_names=tables)
    except Exception:  # the planner's contract changed: the plain names below still apply
        return None
    for plan in plans:
        if plan.pipeline_key == pipeline_key:
            labels = {f.column_name.lower(): f.field_name for f in plan.fields if f.field_name}
            return WideView(plan.view_name.lower(), labels)
    return None


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """DataFrame rows as plain dicts, missing values as None (what the planner expects)."""
    return [{k: (None if pd.isna(v) else v) for k, v in row.items()} for row in frame.to_dict("records")]


def wide_view(run: Runner, pipeline_key: str) -> WideView | None:
    """The pipeline's wide view if the main job created one (a view carrying ``box_key``)."""
    catalog = require_data(run)
    planned = _planned_wide_view(run, catalog, pipeline_key)
    candidates = [planned] if planned else []
    names = pipelines(run).set_index("pipeline_key")["pipeline_name"]
    if pipeline_key in names.index:  # the plain rule, for a main job that names views differently
        naming = _naming()
        for name in (naming(f"pipeline_{names[pipeline_key]}"), "pipeline_" + naming(str(names[pipeline_key]))):
            candidates.append(WideView(name.lower(), {}))
    for view in candidates:
        if catalog.relations.get(view.name) == "view" and catalog.has(view.name, "box_key"):
            return view
    return None


def explorer_boxes(run: Runner, f: Filters) -> pd.DataFrame:
    """The filtered boxes as a table a person reads, with custom fields by name.

    With one pipeline selected, the columns come from the pipeline's wide view
    (``pipeline_<name>``, one column per custom field); without one (all pipelines, or a
    destination where the view is missing) the fields are pivoted from ``box_field_values``
    when one pipeline is selected, and left out across pipelines (their fields differ).
    """
    catalog = require_data(run)
    if f.pipeline_key is not None:
        view = wide_view(run, f.pipeline_key)
        if view is not None:
            return _explorer_from_view(run, f, catalog, view.name)
    base = _explorer_base(run, f, catalog)
    if f.pipeline_key is not None and not base.empty:
        return _with_pivoted_fields(run, f, catalog, base)
    return base


def _explorer_base(run: Runner, f: Filters, catalog: Catalog) -> pd.DataFrame:
    c = lambda column: _col(catalog, BOXES, "b", column)  # noqa: E731
    stage_name = (
        f"COALESCE({_col(catalog, 'stages', 's', 'name')}, fb.box_stage_name)"
        if catalog.has("stages", "pipeline_key", "stage_key")
        else "fb.box_stage_name"
    )
    stage_join = (
        "LEFT JOIN stages AS s ON s.pipeline_key = fb.pipeline_key AND s.stage_key = fb.stage_key"
        if catalog.has("stages", "pipeline_key", "stage_key")
        else ""
    )
    stage_order = _col(catalog, "stages", "s", "stage_order") if stage_join else "NULL"
    frame = run.df(
        f"""
        WITH {_boxes_cte(f, catalog)}
        SELECT fb.box_key AS box_key, fb.box_name AS box_name, fb.pipeline_key AS pipeline_key,
               {stage_name} AS stage_name, {stage_order} AS stage_order,
               fb.owner_name AS owner_name, {c('assigned_to_names')} AS assigned_to,
               fb.creation_timestamp AS created, {c('last_updated_timestamp')} AS last_updated,
               fb.last_stage_change_timestamp AS last_stage_change,
               {c('task_total')} AS tasks, {c('gmail_thread_count')} AS email_threads,
               {c('comment_count')} AS comments
        FROM fb JOIN boxes AS b ON b.box_key = fb.box_key
        {stage_join}
        """
    )
    if frame.empty:
        return frame.drop(columns=["pipeline_key", "stage_order"], errors="ignore")
    pipeline_names = names_by_key(run)
    frame.insert(2, "pipeline", frame["pipeline_key"].map(pipeline_names).fillna(frame["pipeline_key"]))
    frame["stage_order"] = pd.to_numeric(frame["stage_order"], errors="coerce")
    frame = frame.sort_values(["pipeline", "stage_order", "box_name"], na_position="last")
    frame = frame.drop(columns=["pipeline_key", "stage_order"]).dropna(axis="columns", how="all")
    for column in ("created", "last_updated", "last_stage_change"):
        if column in frame:
            frame[column] = _utc(frame[column])
    return frame.reset_index(drop=True)


def names_by_key(run: Runner) -> pd.Series:
    """pipeline_key -> pipeline name."""
    return pipelines(run).set_index("pipeline_key")["pipeline_name"]


def _explorer_from_view(run: Runner, f: Filters, catalog: Catalog, view: str) -> pd.DataFrame:
    """Select the view's columns explicitly (dlt's dataset API cannot expand ``*`` of a view)."""
    view_columns = [c for c in catalog.columns.get(view, ()) if not c.startswith("_dlt")]
    select = ", ".join(f"v.{_quote_ident(c)} AS {_quote_ident(c)}" for c in view_columns)
    order = "v.stage_order, " if "stage_order" in view_columns else ""
    order += "v.box_name" if "box_name" in view_columns else "v.box_key"
    frame = run.df(
        f"""
        WITH {_boxes_cte(f, catalog)}
        SELECT {select}
        FROM {_quote_ident(view)} AS v JOIN fb ON fb.box_key = v.box_key
        ORDER BY {order}
        """
    )
    frame = frame.drop(columns=[c for c in ("stage_order", "stage_key") if c in frame])
    for column in frame.columns:
        if column.endswith("_timestamp"):
            frame[column] = _utc(frame[column])
    return frame


def _with_pivoted_fields(run: Runner, f: Filters, catalog: Catalog, base: pd.DataFrame) -> pd.DataFrame:
    """Fallback for a missing wide view: one column per custom field from box_field_values."""
    if not catalog.has("box_field_values", "box_key", "field_name"):
        return base
    v = lambda column: _col(catalog, "box_field_values", "v", column)  # noqa: E731
    values = run.df(
        f"""
        WITH {_boxes_cte(f, catalog)}
        SELECT v.box_key AS box_key, v.field_name AS field_name, {v('value_text')} AS value_text,
               {v('value_number')} AS value_number, {v('value_bool')} AS value_bool,
               {v('value_timestamp')} AS value_timestamp
        FROM box_field_values AS v JOIN fb ON fb.box_key = v.box_key
        """
    )
    if values.empty:
        return base
    shown = values["value_text"].astype("object")
    for column in ("value_number", "value_bool", "value_timestamp"):
        shown = shown.where(shown.notna(), values[column].astype("object"))
    values = values.assign(value=shown)
    wide = values.pivot_table(index="box_key", columns="field_name", values="value", aggfunc="first")
    wide = wide.drop(columns=[c for c in wide.columns if c in base.columns], errors="ignore")
    return base.merge(wide.reset_index(), on="box_key", how="left")


def field_labels(run: Runner, pipeline_key: str | None) -> dict[str, str]:
    """Wide-view column name -> the custom field's own name ("r_gionx" -> "Région / 地域").

    The view's columns went through dlt's naming convention; this maps them back for display.
    """
    if pipeline_key is None:
        return {}
    view = wide_view(run, pipeline_key)
    if view is not None and view.field_names:
        return dict(view.field_names)
    catalog = require_data(run)
    if not catalog.has("pipeline_fields", "pipeline_key", "name"):
        return {}
    naming = _naming()
    frame = run.df(f"SELECT f.name AS name FROM pipeline_fields AS f WHERE f.pipeline_key = {lit(pipeline_key)}")
    return {naming(str(n)).lower(): str(n) for n in frame["name"].dropna() if str(n).strip()}


def search_boxes(frame: pd.DataFrame, text: str) -> pd.DataFrame:
    """Rows where any text column contains ``text`` (case-insensitive, plain substring)."""
    needle = text.strip()
    if not needle or frame.empty:
        return frame
    mask = pd.Series(False, index=frame.index)
    for column in frame.columns:
        series = frame[column]
        if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_datetime64_any_dtype(series):
            continue
        mask |= series.astype("string").str.contains(needle, case=False, regex=False, na=False)
    return frame[mask]
