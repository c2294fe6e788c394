"""Helpers for tests that run real loads against the sandbox: run one, read back row counts."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import duckdb

REPO_ROOT = Path(__file__).resolve().parent.parent
MAIN_JOB = REPO_ROOT / "pipelines" / "streak_full.py"

# Small pages so every paging loop turns several times on a small account.
SMALL_PAGES: dict[str, int] = {
    "boxes": 7, "tasks": 2, "comments": 2, "meetings": 2, "teams": 1, "team_users": 2,
    "contacts": 5, "organizations": 5,
}

# Tables the sandbox's ground truth describes and the load must reproduce row for row.
ACCOUNT_TABLES = (
    "users", "teams", "team_members", "pipelines", "stages", "pipeline_fields", "pipeline_field_options", "boxes",
    "box_field_values", "box_tasks", "box_threads", "box_comments", "box_meetings", "box_files",
    "snippets", "contacts", "organizations", "pipeline_newsfeed",
)


def table_counts(duckdb_path: Path, dataset: str = "crm") -> dict[str, int]:
    """Row count of every table in the dataset (read-only connection)."""
    with duckdb.connect(str(duckdb_path), read_only=True) as con:
        names = [r[0] for r in con.execute(
            "select table_name from information_schema.tables where table_schema = ? and table_type = 'BASE TABLE'",
            [dataset],
        ).fetchall()]
        return {n: con.execute(f'select count(*) from "{dataset}"."{n}"').fetchone()[0] for n in names}


def run_in_process(source_args: Mapping[str, Any]) -> dict[str, Any]:
    """The main job's load, in this process (env decides the destination); its summary as a dict."""
    from pipelines.job import run_full_load

    return asdict(run_full_load(dict(source_args), progress=None))


def run_main_job(args: list[str], env: Mapping[str, str], timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """``python pipelines/streak_full.py ARGS`` in a subprocess with exactly ``env`` on top of a clean base."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "DESTINATION__"))}
    return subprocess.run([sys.executable, str(MAIN_JOB), *args], env={**base, **env}, capture_output=True,
                          text=True, timeout=timeout, cwd=str(REPO_ROOT.parent))
