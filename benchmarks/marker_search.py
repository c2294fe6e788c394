"""Search every byte a run produced for a planted canary marker (issue 25), compressed or not.

Raw bytes are not enough: dlt gzips its load files, parquet and DuckDB compress their columns (a
marker inside a compressed string block is not in the file's bytes). So, besides the raw bytes of
every file: ``.gz`` files are searched inflated, parquet files by reading every column as text, and
DuckDB files by querying every column of every table as text. tests/test_privacy.py checks that
this finds a marker in each of those forms (a search that cannot find anything proves nothing).
"""

from __future__ import annotations

import gzip
import re
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from glob import glob
from pathlib import Path

import duckdb


def found_in(root: Path, token: str | Sequence[str]) -> list[str]:
    """Where under ``root`` ``token`` (or any of several) occurs: ``path`` (raw bytes),
    ``path (inflated)``, ``path: table.column``; empty when nowhere."""
    tokens = [token] if isinstance(token, str) else list(token)
    needles = [t.encode() for t in tokens]
    pattern = "|".join(re.escape(t) for t in tokens)
    hits: list[str] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if any(needle in data for needle in needles):
            hits.append(str(path))
        if data[:2] == b"\x1f\x8b":
            inflated = gzip.decompress(data)
            if any(needle in inflated for needle in needles):
                hits.append(f"{path} (inflated)")
        elif data[:4] == b"PAR1":
            hits += [f"{path}: {column}" for column in _parquet_columns_with(path, pattern)]
        elif data[8:12] == b"DUCK" and not path.name.endswith(".wal"):
            hits += [f"{path}: {column}" for column in _duckdb_columns_with(path, pattern)]
    return hits


def _parquet_columns_with(path: Path, pattern: str) -> Iterator[str]:
    with duckdb.connect() as con:
        names = [row[0] for row in con.execute("select name from parquet_schema(?) where num_children is null",
                                               [str(path)]).fetchall()]
        for name in names:
            quoted = '"' + name.replace('"', '""') + '"'
            (count,) = con.execute(f"select count(*) from read_parquet(?) "
                                   f"where regexp_matches(cast({quoted} as varchar), ?)", [str(path), pattern]).fetchone()
            if count:
                yield name


def _duckdb_columns_with(path: Path, pattern: str) -> Iterator[str]:
    with duckdb.connect(str(path), read_only=True) as con:
        columns = con.execute("select table_schema, table_name, column_name from information_schema.columns "
                              "join information_schema.tables using (table_catalog, table_schema, table_name) "
                              "where table_type = 'BASE TABLE'").fetchall()
        for schema, table, column in columns:
            (count,) = con.execute(f'select count(*) from "{schema}"."{table}" '
                                   f'where regexp_matches(cast("{column}" as varchar), ?)', [pattern]).fetchone()
            if count:
                yield f"{schema}.{table}.{column}"


def pg_dump_binary() -> str | None:
    """``pg_dump`` on PATH, else the newest in Debian's postgresql packages."""
    return shutil.which("pg_dump") or next(iter(sorted(glob("/usr/lib/postgresql/*/bin/pg_dump"), reverse=True)), None)


def pg_dump(url: str, out: Path) -> Path:
    """A plain-SQL dump of the database at ``url`` (every schema, data included) into ``out``."""
    binary = pg_dump_binary()
    if binary is None:
        raise FileNotFoundError("pg_dump not found (apt-get install postgresql-client)")
    subprocess.run([binary, "--no-owner", "--file", str(out), "--dbname", url], check=True, timeout=120,
                   capture_output=True)
    return out
