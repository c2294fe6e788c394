"""An open lakehouse path: the main job writes Delta or Iceberg tables from configuration alone.

``DESTINATION__WAREHOUSE__DESTINATION_TYPE=filesystem``, ``..._BUCKET_URL=file:///...`` and
``..._TABLE_FORMAT=delta|iceberg`` (or the same keys under ``[destination.warehouse]``) make the job
write every table of the copy as a Delta / Iceberg table. The tables are read back here with the
formats' own Python readers (``deltalake``, ``pyiceberg``), which share no code with dlt's writer
path beyond the files, and compared with the sandbox's ground truth; a second run over a different,
smaller account must replace every table, not append to it. See docs/destinations.md, "Delta Lake
and Iceberg tables".
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from streak_source.sandbox import Sandbox
from streak_warehouse.destination import (
    WarehouseConfigError,
    supported_replace_strategies,
    warehouse_destination,
)
from tests.destinations_support import DATASET, filesystem_env, source_env
from tests.loadtools import ACCOUNT_TABLES, run_in_process, run_main_job

pytestmark = pytest.mark.timeout(300)

TABLE_FORMAT = "DESTINATION__WAREHOUSE__TABLE_FORMAT"
ICEBERG_METADATA = re.compile(r"^(\d+)-.*\.metadata\.json$")


FAST_NORMALIZE = {"NORMALIZE__WORKERS": "1"}
"""A small account normalizes faster in-process than in a pool of forked workers (a test's speed only)."""


def lakehouse_env(bucket: Path, table_format: str) -> dict[str, str]:
    return {**filesystem_env(bucket), TABLE_FORMAT: table_format}


def table_dirs(bucket: Path) -> list[Path]:
    """Every data table's folder under the dataset (dlt's own ``_dlt_*`` tables left out)."""
    return sorted(p for p in (bucket / DATASET).iterdir() if p.is_dir() and not p.name.startswith("_dlt_"))


def delta_counts(bucket: Path) -> dict[str, int]:
    """Rows per table, read with ``deltalake``; raises if a table folder is not a Delta table."""
    from deltalake import DeltaTable

    counts: dict[str, int] = {}
    for folder in table_dirs(bucket):
        assert DeltaTable.is_deltatable(str(folder)), f"{folder} is not a Delta table"
        counts[folder.name] = DeltaTable(str(folder)).to_pyarrow_dataset().count_rows()
    return counts


def latest_iceberg_metadata(folder: Path) -> Path:
    """The table's newest ``<version>-<uuid>.metadata.json`` (no catalog: the files are the table)."""
    versions = {int(m.group(1)): f for f in (folder / "metadata").iterdir() if (m := ICEBERG_METADATA.match(f.name))}
    assert versions, f"{folder} is not an Iceberg table (no metadata/*.metadata.json)"
    return versions[max(versions)]


def iceberg_counts(bucket: Path) -> dict[str, int]:
    """Rows per table, read with ``pyiceberg`` from each table's newest metadata file."""
    from pyiceberg.table import StaticTable

    return {folder.name: StaticTable.from_metadata(str(latest_iceberg_metadata(folder))).scan().to_arrow().num_rows
            for folder in table_dirs(bucket)}


READERS = {"delta": delta_counts, "iceberg": iceberg_counts}
SWITCHED_TO = {"delta": "iceberg", "iceberg": "native"}


def account_counts(counts: dict[str, int]) -> dict[str, int]:
    """The ground-truth tables only; a table without rows may have no folder at all (0)."""
    return {table: counts.get(table, 0) for table in ACCOUNT_TABLES}


@pytest.mark.slow
@pytest.mark.parametrize("table_format", ["delta", "iceberg"])
def test_configuration_alone_writes_the_copy_as_open_tables_and_the_next_run_replaces_them(
    table_format: str, dlt_isolated: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = tmp_path / "lake"
    env = {**lakehouse_env(bucket, table_format), **FAST_NORMALIZE}
    summary_json = tmp_path / "summary.json"
    with Sandbox(boxes=30, seed=61) as first:
        truth_first = account_counts(first.ground_truth())
        result = run_main_job(["--quiet", "--summary-json", str(summary_json)], env={**source_env(first), **env})
    assert result.returncode == 0, result.stderr
    read = READERS[table_format]
    assert account_counts(read(bucket)) == truth_first

    summary = json.loads(summary_json.read_text())
    assert (summary["destination"], summary["location"]) == ("filesystem", bucket.resolve().as_uri())
    assert summary["views"] == []  # files have no views
    # open tables are overwritten whole by their own commit (dlt's only strategy for them): no fallback
    assert summary["replace_strategy"] == f"{table_format} overwrite, one commit per table"
    assert "truncate-and-insert" not in result.stderr
    assert not (bucket / f"{DATASET}_staging").exists()

    # the second run (same configuration, in this process) loads a smaller, different account
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with Sandbox(boxes=12, seed=62) as second:
        truth_second = account_counts(second.ground_truth())
        run_in_process({"api_key": second.api_key, "base_url": second.base_url, "max_requests_per_second": 500})
    assert truth_second["boxes"] == 12 and truth_second != truth_first
    # replaced, not appended: every table holds exactly the second account (an append would hold both)
    assert account_counts(read(bucket)) == truth_second
    if table_format == "delta":  # one overwrite commit per table: the previous load is one version back
        assert previous_delta_boxes(bucket) == truth_first["boxes"]
        assert duckdb_over_delta(bucket) == truth_second["boxes"]  # the docs' DuckDB recipe

    # dlt cannot convert tables between formats in place (it would write the new one beside the old
    # files): a run configured for another format is refused before it reads anything
    switched = SWITCHED_TO[table_format]
    monkeypatch.setenv(TABLE_FORMAT, switched)
    with pytest.raises(WarehouseConfigError, match=rf"another format than table_format = '{switched}' \(\w+ \({table_format}\)"):
        run_in_process({"api_key": "unused", "base_url": "http://127.0.0.1:9/api/"})
    assert account_counts(read(bucket)) == truth_second


def duckdb_over_delta(bucket: Path) -> int:
    """docs/destinations.md's offline DuckDB recipe: ``deltalake`` hands DuckDB an Arrow dataset."""
    import duckdb
    from deltalake import DeltaTable

    boxes = DeltaTable(str(bucket / DATASET / "boxes")).to_pyarrow_dataset()
    with duckdb.connect() as con:
        con.register("boxes", boxes)
        return int(con.execute("SELECT count(DISTINCT box_key) FROM boxes").fetchone()[0])


def previous_delta_boxes(bucket: Path) -> int:
    """Rows of ``boxes`` one Delta version back (time travel), read with ``deltalake``."""
    from deltalake import DeltaTable

    boxes = DeltaTable(str(bucket / DATASET / "boxes"))
    assert boxes.history(1)[0]["operationParameters"]["mode"] == "Overwrite"
    return DeltaTable(str(bucket / DATASET / "boxes"), version=boxes.version() - 1).to_pyarrow_dataset().count_rows()


# --------------------------------------------------------------------------- configuration errors


def test_a_table_format_on_a_destination_without_open_tables_is_refused_in_one_line(
    dlt_isolated: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TABLE_FORMAT, "delta")  # destination_type left at duckdb: a likely slip
    with pytest.raises(WarehouseConfigError, match=r"table_format = 'delta' .*does not work on duckdb"):
        warehouse_destination()
    monkeypatch.setenv("DESTINATION__WAREHOUSE__DESTINATION_TYPE", "filesystem")
    monkeypatch.setenv(TABLE_FORMAT, "hudi")
    with pytest.raises(WarehouseConfigError, match=r"table_format = 'hudi' \(env DESTINATION__WAREHOUSE__TABLE_FORMAT\)"):
        warehouse_destination()


@pytest.mark.parametrize(("table_format", "strategies"), [
    ("delta", ["insert-from-staging"]), ("iceberg", ["insert-from-staging"]),
    ("native", ["truncate-and-insert"]), ("", ["truncate-and-insert"]),
])
def test_the_replace_strategy_follows_the_table_format(
    table_format: str, strategies: list[str], dlt_isolated: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dlt replaces open tables only "from staging" (an overwrite commit) and plain files only by
    truncating: the project's check must ask for the format's strategy, or dlt fails after the extract."""
    for key, value in lakehouse_env(tmp_path / "lake", table_format).items():
        monkeypatch.setenv(key, value)
    assert supported_replace_strategies(warehouse_destination()) == strategies
