"""Destinations by configuration alone, and an atomic replace.

* One account, loaded by the main job into DuckDB, parquet files and Postgres with nothing but
  environment variables changed, gives the same row count in every table.
* DuckDB and Postgres are replaced whole: a fresh file / schema is loaded and renamed into place
  only when tables and views are complete; filesystem, which has no staging, replaces table by table.
* A run that fails during extract, or after every table is written, leaves every table, view and dlt
  table of DuckDB and Postgres exactly as the last good run left it (full-content digests, and the
  DuckDB file byte for byte).
  See the README, "Replace: what \"atomic\" means here".
* Bad destination configuration stops the main job before the extract, with one line and exit 3.

Postgres tests use the root conftest's ``postgres_warehouse`` (a fresh database; skipped with the
reason when no server is reachable, failed under STREAK_REQUIRE_SERVICES=1).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from streak_source.sandbox import Sandbox
from streak_warehouse.history_mode import DELETIONS_VIEW, HISTORY_SUFFIX
from streak_warehouse.kept_tables import KEPT_TABLES
from streak_warehouse.outcome_views import TABLES as OUTCOME_TABLES, VIEWS as OUTCOME_VIEWS
from tests.destinations_support import (
    STAGING_DATASET,
    Reader,
    changed,
    filesystem_env,
    parquet_counts,
    postgres_env,
    source_env,
)
from tests.loadtools import ACCOUNT_TABLES, run_in_process, run_main_job

pytestmark = pytest.mark.timeout(300)

EXTRACT_FAULT = "malformed:route=/api/v2/boxes/{box_key}/tasks:times=1"
"""One invalid JSON body on a box's task list: the extract stops about a third of the way in."""


def summary_of(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def succeeded(result: Any) -> None:
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr}"


def one_error_line(result: Any, status: int = 1) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == status, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def views_of(relations: dict[str, str]) -> set[str]:
    """The wide views (history mode's ``deletions`` view and the outcome views are not)."""
    return {name for name, kind in relations.items() if kind == "VIEW" and name not in {DELETIONS_VIEW, *OUTCOME_VIEWS}}


def warehouse(destination: str, request: pytest.FixtureRequest, dlt_dirs: Any) -> tuple[dict[str, str], dict[str, Any]]:
    """(environment for the main job, Reader kwargs) for ``duckdb`` or ``postgres``."""
    if destination == "duckdb":
        return {}, {"duckdb_path": dlt_dirs.duckdb_path}
    url = request.getfixturevalue("postgres_warehouse")  # also sets the env for in-process runs
    return postgres_env(url), {"postgres_url": url}


BOTH = ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)]
WAREHOUSE_ONLY = {table.name for table in KEPT_TABLES} | {"wide_view_columns", *OUTCOME_TABLES}
"""Tables the warehouse writes after the load (need SQL): the views' mapping, the outcome tables and the tables kept
across runs (load_history, box_stage_history, stage_transitions; and each ``<table>_history``:
:func:`warehouse_only`)."""


def warehouse_only(table: str, tables: dict[str, int]) -> bool:
    return table in WAREHOUSE_ONLY or (table.endswith(HISTORY_SUFFIX) and table.removesuffix(HISTORY_SUFFIX) in tables)


# --------------------------------------------------------------------------- same account everywhere


def test_environment_alone_moves_the_load_from_duckdb_to_parquet_files(dlt_isolated: Any, tmp_path: Path) -> None:
    bucket = tmp_path / "bucket"
    with Sandbox(boxes=30, seed=21) as sb:
        truth = sb.ground_truth()
        duck = run_main_job(["--quiet", "--summary-json", str(tmp_path / "duck.json")], env=source_env(sb))
        files = run_main_job(["--quiet", "--summary-json", str(tmp_path / "files.json")],
                             env={**source_env(sb), **filesystem_env(bucket)})
    succeeded(duck)
    succeeded(files)
    with Reader(duckdb_path=dlt_isolated.duckdb_path) as db:
        duck_counts = db.counts()
        duck_schemas = db.schemas()
        duck_views = views_of(db.relations())

    # every table as parquet files that DuckDB reads, with the same rows as the DuckDB load (the
    # tables the warehouse adds after the load, the views' mapping and load_history, need SQL)
    assert parquet_counts(bucket) == {t: n for t, n in duck_counts.items() if not warehouse_only(t, duck_counts)}
    assert {t: duck_counts.get(t) for t in ACCOUNT_TABLES} == {t: truth[t] for t in ACCOUNT_TABLES}

    # DuckDB: a fresh file renamed over the old one (whole-file atomic replace): nothing staged, no leftovers
    assert summary_of(tmp_path / "duck.json")["replace_strategy"] == "new file renamed into place"
    assert STAGING_DATASET not in duck_schemas
    assert not list(dlt_isolated.root.glob("*.loading*"))
    assert duck_views and all(v.startswith("pipeline_") for v in duck_views)

    # filesystem has no staging dataset: the job says so and replaces the plain way; no views
    files_summary = summary_of(tmp_path / "files.json")
    assert files_summary["destination"] == "filesystem"
    assert files_summary["replace_strategy"] == "truncate-and-insert"
    assert files_summary["views"] == []
    assert "using truncate-and-insert" in files.stderr
    assert not (bucket / STAGING_DATASET).exists()


@pytest.mark.postgres
def test_environment_alone_moves_the_load_and_the_dashboard_to_postgres(
    postgres_warehouse: str, dlt_isolated: Any, tmp_path: Path
) -> None:
    with Sandbox(boxes=30, seed=21) as sb:
        truth = sb.ground_truth()
        duck = run_main_job(["--quiet"], env=source_env(sb))
        succeeded(duck)
        with Reader(duckdb_path=dlt_isolated.duckdb_path) as db:
            duck_counts = db.counts()
            duck_views = views_of(db.relations())
            duck_before = db.snapshot()
        pg = run_main_job(["--quiet", "--summary-json", str(tmp_path / "pg.json")],
                          env={**source_env(sb), **postgres_env(postgres_warehouse)})
    succeeded(pg)
    with Reader(postgres_url=postgres_warehouse) as db:
        pg_counts = db.counts()
        pg_views = views_of(db.relations())
        pg_schemas = db.schemas()

    assert pg_counts == duck_counts
    assert {t: pg_counts.get(t) for t in ACCOUNT_TABLES} == {t: truth[t] for t in ACCOUNT_TABLES}
    assert pg_views == duck_views and pg_views
    assert summary_of(tmp_path / "pg.json")["replace_strategy"] == "new schema renamed into place"
    assert not [name for name in pg_schemas if name.startswith("crm_")]  # renamed into place, nothing staged
    with Reader(duckdb_path=dlt_isolated.duckdb_path) as db:  # the Postgres load left the file alone
        assert db.snapshot() == duck_before

    # the dashboard's data layer follows the same environment (postgres_warehouse set it here)
    from dashboards.data import connection, freshness

    source = connection.resolve_source()
    assert (source.kind, source.destination_type) == ("dataset", "postgres")
    run, _ = connection.connect(source)
    shown = {row["table"]: row["rows"] for row in freshness.row_counts(run).to_dict("records")}
    shown = {t: n for t, n in shown.items() if not t.startswith("_dlt")}
    assert set(pg_counts) - set(shown) <= WAREHOUSE_ONLY  # the dashboard may leave its bookkeeping out
    assert shown == {t: pg_counts[t] for t in shown}
    view_rows = [int(run.df(f'SELECT COUNT(*) AS n FROM "{view}"')["n"].iloc[0]) for view in sorted(pg_views)]
    assert sum(view_rows) == pg_counts["boxes"]  # one row per box, in its pipeline's wide view


# --------------------------------------------------------------------------- failed runs


@pytest.mark.parametrize("destination", BOTH)
def test_a_run_failing_during_extract_leaves_everything_exactly_as_before(
    destination: str, request: pytest.FixtureRequest, dlt_isolated: Any
) -> None:
    env, where = warehouse(destination, request, dlt_isolated)
    with Sandbox(boxes=20, seed=31) as good:
        succeeded(run_main_job(["--quiet"], env={**source_env(good), **env}))
    with Reader(**where) as db:
        before = db.snapshot()  # tables, views and dlt's own tables, every column
    with Sandbox(boxes=30, seed=32, faults=[EXTRACT_FAULT]) as bad:
        failed = run_main_job(["--quiet"], env={**source_env(bad), **env})
        injected = bad.stats()["faults"]["injected"][EXTRACT_FAULT]
    line = one_error_line(failed)
    assert injected == 1
    assert "not valid JSON" in line and "keeps its previous load" in line
    with Reader(**where) as db:
        after = db.snapshot()
    assert before and changed(before, after) == {}


def test_a_duckdb_load_failing_after_every_table_is_written_leaves_the_old_file_byte_for_byte(
    dlt_isolated: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DuckDB is loaded as a fresh file renamed over the old one only when tables and views are
    complete. A failure at the last step (the views) leaves the previous file identical to the
    byte, and no temporary file behind."""
    import hashlib

    import streak_warehouse.views

    with Sandbox(boxes=20, seed=41) as old:
        run_in_process({"api_key": old.api_key, "base_url": old.base_url, "max_requests_per_second": 500})
    digest_before = hashlib.sha256(dlt_isolated.duckdb_path.read_bytes()).hexdigest()

    def refuse(pipeline: Any) -> list[str]:
        raise RuntimeError("views refused")

    monkeypatch.setattr(streak_warehouse.views, "create_wide_views", refuse)
    with Sandbox(boxes=30, seed=42) as new:
        with pytest.raises(RuntimeError, match="views refused"):
            run_in_process({"api_key": new.api_key, "base_url": new.base_url, "max_requests_per_second": 500})
    assert hashlib.sha256(dlt_isolated.duckdb_path.read_bytes()).hexdigest() == digest_before
    assert not list(dlt_isolated.root.glob("*.loading*"))


@pytest.mark.postgres
def test_a_postgres_load_failing_after_every_table_is_written_leaves_crm_exactly_as_before(
    postgres_warehouse: str, dlt_isolated: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Postgres is loaded into a fresh schema of the run's own (``crm_load_<run id>``), renamed to
    ``crm`` in one transaction only when tables and views are complete. A failure at the last step
    (the views) leaves every table, view and dlt table of ``crm`` exactly as before and drops its own
    fresh schema; the next run publishes a complete copy."""
    import streak_warehouse.views

    where = {"postgres_url": postgres_warehouse}
    with Sandbox(boxes=20, seed=41) as old:
        run_in_process({"api_key": old.api_key, "base_url": old.base_url, "max_requests_per_second": 500})
    with Reader(**where) as db:
        before = db.snapshot()
    real_views = streak_warehouse.views.create_wide_views

    def refuse(pipeline: Any) -> list[str]:
        raise RuntimeError("views refused")

    monkeypatch.setattr(streak_warehouse.views, "create_wide_views", refuse)
    with Sandbox(boxes=30, seed=42) as new:
        args = {"api_key": new.api_key, "base_url": new.base_url, "max_requests_per_second": 500}
        with pytest.raises(RuntimeError, match="views refused"):
            run_in_process(args)
        with Reader(**where) as db:
            assert before and changed(before, db.snapshot()) == {}
            assert not [name for name in db.schemas() if name.startswith("crm_load_")]  # discarded
        monkeypatch.setattr(streak_warehouse.views, "create_wide_views", real_views)
        summary = run_in_process(args)
        truth = new.ground_truth()
    with Reader(**where) as db:
        assert {t: db.count(t) for t in ACCOUNT_TABLES} == {t: truth[t] for t in ACCOUNT_TABLES}
        assert not [name for name in db.schemas() if name.startswith("crm_")]
        assert views_of(db.relations()) == set(summary["views"]) and summary["views"]


# --------------------------------------------------------------------------- bad configuration

TYPE = "DESTINATION__WAREHOUSE__DESTINATION_TYPE"


@pytest.mark.parametrize(
    ("destination_env", "expected"),
    [
        pytest.param({TYPE: "postgress"}, "unknown destination type 'postgress'", id="unknown-type"),
        pytest.param({TYPE: "duckdbb"}, "unknown destination type 'duckdbb' in [destination.warehouse] destination_type "
                     "(DESTINATION__WAREHOUSE__DESTINATION_TYPE); did you mean 'duckdb'? dlt 1.31 knows: ",
                     id="typo-gets-a-suggestion"),
        pytest.param({TYPE: "postgres"}, "missing credentials: set DESTINATION__WAREHOUSE__CREDENTIALS",
                     id="postgres-without-credentials"),
        pytest.param({TYPE: "postgres", "DESTINATION__WAREHOUSE__CREDENTIALS": "postgresql://streak:{pw}@127.0.0.1:{port}/crm"},
                     "cannot connect to the postgres warehouse at postgresql://streak:***@127.0.0.1:{port}/crm",
                     id="unreachable-postgres"),
        pytest.param({TYPE: "filesystem"}, "missing bucket_url: set DESTINATION__WAREHOUSE__BUCKET_URL",
                     id="filesystem-without-bucket"),
    ],
)
def test_bad_destination_configuration_stops_the_job_before_the_extract_in_one_line(
    destination_env: dict[str, str], expected: str, dlt_isolated: Any, find_free_port: Any
) -> None:
    port = find_free_port()  # nothing listens here: neither a Streak API nor a Postgres server
    password = "s3cret-pw-xyz"
    env = {key: value.format(pw=password, port=port) for key, value in destination_env.items()}
    # Were the destination checked only at load time, the job would fail on the unreachable API
    # instead, after one attempt (no retry delays in this test).
    env.update({"SOURCES__STREAK__API_KEY": "some-key", "SOURCES__STREAK__BASE_URL": f"http://127.0.0.1:{port}/api/",
                "RUNTIME__REQUEST_MAX_ATTEMPTS": "1"})
    result = run_main_job(["--quiet"], env=env, timeout=120)
    line = one_error_line(result, status=3)
    assert expected.format(port=port) in line
    assert password not in result.stderr + result.stdout
    assert not dlt_isolated.duckdb_path.exists()
