"""Helpers for tests/test_destinations.py: environment per destination, and full-content snapshots.

A snapshot maps every table (and view) of the ``crm`` dataset to ``(row count, digest)``. The digest
is order-independent: each row becomes the hash of its canonical text, the sorted row hashes plus
the sorted column names are hashed together. Two snapshots of the same destination are equal only if
every relation holds exactly the same rows, ``_dlt_load_id`` and ``_dlt_id`` included (unless left
out with ``include_dlt_columns=False``, which compares what two different loads of one account
have in common).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb

DATASET = "crm"
STAGING_DATASET = "crm_staging"
FAST_SOURCE = {"SOURCES__STREAK__MAX_REQUESTS_PER_SECOND": "500"}

Snapshot = dict[str, tuple[int, str]]


def source_env(sandbox: Any) -> dict[str, str]:
    """Environment that points the main job at a running sandbox (no secrets file needed)."""
    return {"SOURCES__STREAK__API_KEY": sandbox.api_key, "SOURCES__STREAK__BASE_URL": sandbox.base_url,
            **FAST_SOURCE}


def postgres_env(url: str) -> dict[str, str]:
    return {"DESTINATION__WAREHOUSE__DESTINATION_TYPE": "postgres", "DESTINATION__WAREHOUSE__CREDENTIALS": url}


def filesystem_env(bucket: Path) -> dict[str, str]:
    return {"DESTINATION__WAREHOUSE__DESTINATION_TYPE": "filesystem",
            "DESTINATION__WAREHOUSE__BUCKET_URL": bucket.resolve().as_uri()}


# --------------------------------------------------------------------------- reading back


class Reader:
    """A read connection to the warehouse: DuckDB file (read-only) or a Postgres database."""

    def __init__(self, duckdb_path: Path | None = None, postgres_url: str | None = None) -> None:
        if (duckdb_path is None) == (postgres_url is None):
            raise ValueError("give exactly one of duckdb_path, postgres_url")
        self.kind = "duckdb" if duckdb_path is not None else "postgres"
        if duckdb_path is not None:
            self._con: Any = duckdb.connect(str(duckdb_path), read_only=True)
        else:
            import psycopg2

            self._con = psycopg2.connect(postgres_url, connect_timeout=5)
            self._con.autocommit = True

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._con.close()

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if self.kind == "duckdb":
            return [tuple(r) for r in self._con.execute(sql, list(params)).fetchall()]
        with self._con.cursor() as cur:
            cur.execute(sql.replace("?", "%s"), tuple(params) if params else None)
            return [tuple(r) for r in cur.fetchall()] if cur.description else []

    def relations(self, schema: str = DATASET) -> dict[str, str]:
        """name -> 'BASE TABLE' | 'VIEW' for every relation in ``schema``."""
        return dict(self.rows(
            "select table_name, table_type from information_schema.tables where table_schema = ?", [schema]))

    def schemas(self) -> set[str]:
        return {r[0] for r in self.rows("select schema_name from information_schema.schemata")}

    def columns(self, relation: str, schema: str = DATASET) -> list[str]:
        return sorted(r[0] for r in self.rows(
            "select column_name from information_schema.columns where table_schema = ? and table_name = ?",
            [schema, relation]))

    def count(self, relation: str, schema: str = DATASET) -> int:
        return int(self.rows(f'select count(*) from "{schema}"."{relation}"')[0][0])

    def counts(self, schema: str = DATASET) -> dict[str, int]:
        """Row count of every data table (dlt's own ``_dlt_*`` tables and views left out)."""
        return {name: self.count(name, schema) for name, kind in sorted(self.relations(schema).items())
                if kind == "BASE TABLE" and not name.startswith("_dlt_")}

    def snapshot(self, *, include_dlt_columns: bool = True, include_views: bool = True,
                 include_dlt_tables: bool = True, schema: str = DATASET) -> Snapshot:
        """``(rows, digest)`` of every relation in ``schema``; see the module docstring."""
        result: Snapshot = {}
        for name, kind in sorted(self.relations(schema).items()):
            if kind == "VIEW" and not include_views:
                continue
            if name.startswith("_dlt_") and not include_dlt_tables:
                continue
            columns = [c for c in self.columns(name, schema) if include_dlt_columns or not c.startswith("_dlt_")]
            select = ", ".join(f'"{c}"' for c in columns)
            result[name] = digest(columns, self.rows(f'select {select} from "{schema}"."{name}"'))
        return result


def digest(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> tuple[int, str]:
    row_hashes = sorted(hashlib.sha256(repr(tuple(row)).encode()).hexdigest() for row in rows)
    whole = hashlib.sha256(repr(list(columns)).encode())
    for row_hash in row_hashes:
        whole.update(row_hash.encode())
    return len(row_hashes), whole.hexdigest()


def parquet_counts(bucket: Path, dataset: str = DATASET) -> dict[str, int]:
    """Rows per table folder of a filesystem destination, read with DuckDB's ``read_parquet``.

    Raises if a data table's folder holds anything but parquet files.
    """
    counts: dict[str, int] = {}
    for folder in sorted(p for p in (bucket / dataset).iterdir() if p.is_dir()):
        if folder.name.startswith("_dlt_"):
            continue
        files = [f for f in folder.iterdir() if f.is_file()]
        not_parquet = [f.name for f in files if f.suffix != ".parquet"]
        if not files or not_parquet:
            raise AssertionError(f"{folder}: expected parquet files only, found {not_parquet or 'none'}")
        with duckdb.connect() as con:
            counts[folder.name] = int(con.execute(
                "select count(*) from read_parquet(?)", [str(folder / "*.parquet")]).fetchone()[0])
    return counts


def changed(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Relations whose snapshot differs (or that appear/disappear): name -> (before, after)."""
    return {name: (before.get(name), after.get(name)) for name in sorted(set(before) | set(after))
            if before.get(name) != after.get(name)}
