"""Where the data goes: one answer shared by the main job, the dashboard and the benchmarks.

The destination is dlt's named destination ``warehouse``; its type and credentials come from
configuration only (``.dlt/config.toml``, ``.dlt/secrets.toml`` or environment variables), so moving
from DuckDB to Postgres or a bucket is a change of configuration, never of code.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Final

PROJECT_ROOT: Final = Path(__file__).resolve().parent.parent
PIPELINE_NAME: Final = "streak"
DATASET_NAME: Final = "crm"
"""Not ``streak``: DuckDB names a file's catalog after the file, and ``streak.duckdb`` + dataset
``streak`` fails with "Ambiguous reference to catalog or schema"."""
DESTINATION_NAME: Final = "warehouse"
DUCKDB_PATH_ENV: Final = "STREAK_DUCKDB_PATH"
"""Overrides the default DuckDB file (tests and benchmarks point it at a temp dir)."""


def use_project_settings() -> None:
    """Make dlt read ``.dlt/`` from the project root whatever the current directory is."""
    os.environ.setdefault("DLT_PROJECT_DIR", str(PROJECT_ROOT))


def default_duckdb_path() -> Path:
    """``streak.duckdb`` in the project root, unless ``STREAK_DUCKDB_PATH`` says otherwise."""
    return Path(os.environ.get(DUCKDB_PATH_ENV) or PROJECT_ROOT / "streak.duckdb").resolve()


def configured_destination_type() -> str:
    """The configured ``[destination.warehouse] destination_type`` (``duckdb`` when unset)."""
    import dlt

    use_project_settings()
    value = dlt.config.get(f"destination.{DESTINATION_NAME}.destination_type")
    return str(value or "duckdb").strip().lower()


def configured_credentials() -> Any:
    """The configured ``[destination.warehouse] credentials``, or None."""
    import dlt

    use_project_settings()
    return dlt.secrets.get(f"destination.{DESTINATION_NAME}.credentials")


def warehouse_destination() -> Any:
    """The dlt destination to load into and read from.

    A named destination of type duckdb with no credentials would write ``warehouse.duckdb`` in the
    current directory; pin it to the project's file instead. Everything else is resolved by dlt from
    configuration under ``[destination.warehouse]``.
    """
    import dlt

    destination_type = configured_destination_type()
    if destination_type == "duckdb" and not configured_credentials():
        return dlt.destinations.duckdb(
            credentials=str(default_duckdb_path()), destination_name=DESTINATION_NAME
        )
    return dlt.destination(DESTINATION_NAME, destination_type=destination_type)
