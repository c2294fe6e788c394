"""Where the data goes: one answer shared by the main job, the dashboard and the benchmarks.

The destination is dlt's named destination ``warehouse``; its type and credentials come from
configuration only (``.dlt/config.toml``, ``.dlt/secrets.toml`` or environment variables), so moving
from DuckDB to Postgres or a bucket is a change of configuration, never of code.

Public API (the dashboard relies on it; keep it small):

* :func:`duckdb_file_target` -> ``Path | None``: THE rule for "which DuckDB file is the warehouse"
  (default file, a plain path, or a ``duckdb:///`` URL; None for every other destination);
* :func:`duckdb_path_from_credentials` -> ``Path | None``: the same rule for one credentials value;
* :func:`configured_destination_type`, :func:`configured_credentials`,
  :func:`configured_table_format`, :func:`warehouse_destination`, :func:`default_duckdb_path`,
  constants ``DATASET_NAME``, ``PIPELINE_NAME``, ``DESTINATION_NAME``, ``TABLE_FORMATS``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Final

PROJECT_ROOT: Final = Path(__file__).resolve().parent.parent
NOT_A_FILE: Final = (":memory:", ":pipeline:", "md:", "motherduck:")
"""DuckDB credentials that name no local file (in-memory, dlt's per-pipeline file, MotherDuck)."""
PIPELINE_NAME: Final = "streak"
DATASET_NAME: Final = "crm"
"""Not ``streak``: DuckDB names a file's catalog after the file, and ``streak.duckdb`` + dataset
``streak`` fails with "Ambiguous reference to catalog or schema"."""
DESTINATION_NAME: Final = "warehouse"
DUCKDB_PATH_ENV: Final = "STREAK_DUCKDB_PATH"
"""Overrides the default DuckDB file (tests and benchmarks point it at a temp dir)."""
ATOMIC_REPLACE: Final = "insert-from-staging"
"""The project's replace strategy (``.dlt/config.toml``): load into ``crm_staging``, then swap each
table in one transaction, so readers keep the previous copy and a failed load leaves it in place."""
ENV_PREFIX: Final = f"DESTINATION__{DESTINATION_NAME.upper()}__"
TABLE_FORMATS: Final = ("delta", "iceberg")
"""Open table formats for ``[destination.warehouse] table_format`` (the filesystem destination writes
every table in it; dlt's own ``_dlt_*`` tables stay plain files)."""
TRANSACTIONAL_SWAP_TYPES: Final = frozenset({"duckdb", "motherduck", "postgres"})
"""Destinations whose replace swap gets an explicit transaction (see :func:`_destination`)."""

logger = logging.getLogger(__name__)


class WarehouseConfigError(ValueError):
    """The ``warehouse`` destination is configured in a way that cannot work; says how to fix it."""


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
    value: Any = dlt.config.get(f"destination.{DESTINATION_NAME}.destination_type")
    return str(value or "duckdb").strip().lower()


def configured_credentials() -> Any:
    """The configured ``[destination.warehouse] credentials``, or None."""
    import dlt

    use_project_settings()
    return dlt.secrets.get(f"destination.{DESTINATION_NAME}.credentials")


def configured_replace_strategy() -> str | None:
    """The configured ``[destination.warehouse] replace_strategy``, or None."""
    import dlt

    use_project_settings()
    value: Any = dlt.config.get(f"destination.{DESTINATION_NAME}.replace_strategy")
    return str(value).strip().lower() if value else None


def configured_table_format() -> str | None:
    """The configured ``[destination.warehouse] table_format`` (``delta``, ``iceberg``), or None.

    A project key, not dlt's: dlt takes the table format only as a per-resource hint or as the
    destination's ``preferred_table_format`` capability (a factory argument), so the project reads
    it here and passes it on, and one setting makes every table Delta or Iceberg. ``native`` or an
    empty value means plain files. A value outside :data:`TABLE_FORMATS` raises
    :class:`WarehouseConfigError`.
    """
    import dlt

    use_project_settings()
    value: Any = dlt.config.get(f"destination.{DESTINATION_NAME}.table_format")
    table_format = str(value or "").strip().lower()
    if table_format in ("", "native"):
        return None
    if table_format not in TABLE_FORMATS:
        raise WarehouseConfigError(
            f"destination.{DESTINATION_NAME}.table_format = {value!r} (env {ENV_PREFIX}TABLE_FORMAT) is not "
            f"allowed: {' or '.join(TABLE_FORMATS)} (filesystem destination), or leave it unset for plain files"
        )
    return table_format


def duckdb_file_target() -> Path | None:
    """The local DuckDB file the warehouse is, or None for every other destination.

    The default file when no credentials are configured, else :func:`duckdb_path_from_credentials`.
    """
    if configured_destination_type() != "duckdb":
        return None
    credentials = configured_credentials()
    if not credentials:
        return default_duckdb_path()
    return duckdb_path_from_credentials(credentials)


def duckdb_path_from_credentials(credentials: Any) -> Path | None:
    """A DuckDB credentials value as the absolute file it names; None when it names no local file.

    Parsed by dlt's own ``DuckDbCredentials``, so ``duckdb:///rel.duckdb`` (relative),
    ``duckdb:////abs/x.duckdb`` (absolute), a plain path and a ``{"database": ...}`` table all mean
    what they mean to the load; a relative path is taken from dlt's local dir (the current
    directory unless ``DLT_LOCAL_DIR`` says otherwise), where dlt itself puts it.
    """
    database = getattr(credentials, "database", None)
    if database is None and isinstance(credentials, dict):
        database = credentials.get("database")
    if database is None and isinstance(credentials, str):
        from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

        parsed = DuckDbCredentials()
        try:
            parsed.parse_native_representation(credentials.strip())
        except Exception:
            return None
        database = parsed.database
    if not isinstance(database, str) or not database.strip() or database.strip().startswith(NOT_A_FILE):
        return None
    path = Path(database.strip()).expanduser()
    if not path.is_absolute():
        import dlt

        path = Path(dlt.current.run_context().local_dir) / path
    return path.resolve()


def warehouse_destination(load_into_duckdb_file: Path | None = None, fresh_dataset: bool = False) -> Any:
    """The dlt destination to load into and read from.

    ``load_into_duckdb_file`` points a DuckDB warehouse at another file: the main job loads a fresh
    file and renames it over the real one (see ``streak_warehouse/targets/duckdb_file.py``); the file is new, so
    plain ``truncate-and-insert`` is as safe there as a staging swap and twice as fast.
    ``fresh_dataset``: the load goes into a new schema that replaces the real one whole
    (``streak_warehouse/targets/schema_swap.py``), so ``truncate-and-insert`` there too.

    A named destination of type duckdb with no credentials would write ``warehouse.duckdb`` in the
    current directory; pin it to the project's file instead. Everything else is resolved by dlt from
    configuration under ``[destination.warehouse]``, with one correction: the project's default
    ``insert-from-staging`` becomes the destination's own strategy where it has no staging dataset
    (filesystem, vector stores), so switching there needs no other setting. ``table_format``
    (:func:`configured_table_format`) becomes dlt's ``preferred_table_format``, so every table is
    Delta or Iceberg. An unknown destination
    type raises :class:`WarehouseConfigError`; a replace strategy the destination lacks is left for
    :func:`check_warehouse` to report, so readers (the dashboard) are not stopped by a load setting.
    """
    destination_type = configured_destination_type()
    if fresh_dataset or load_into_duckdb_file is not None:
        return _destination(destination_type, duckdb_file=load_into_duckdb_file, replace_strategy="truncate-and-insert")
    destination = _destination(destination_type)
    fallback = _replace_strategy_fallback(destination)
    return destination if fallback is None else _destination(destination_type, replace_strategy=fallback)


def _destination(destination_type: str, duckdb_file: Path | None = None, **options: Any) -> Any:
    """The factory for ``destination_type`` named ``warehouse`` (a DuckDB one on ``duckdb_file``,
    else on the configured or default file).

    dlt 1.31 leaves ``supports_transactions`` unset for DuckDB and Postgres, so the swap of
    ``insert-from-staging`` (``DELETE``/``TRUNCATE`` + ``INSERT ... SELECT`` from ``crm_staging``)
    runs without ``BEGIN``: on DuckDB each statement commits alone and a failing ``INSERT`` leaves
    the table empty; Postgres is saved only by running both statements in one query string. The
    capability (a factory argument, not a setting) puts each table's swap in one transaction.
    """
    import dlt
    from dlt.common.destination.exceptions import UnknownDestinationModule

    if destination_type in TRANSACTIONAL_SWAP_TYPES:
        options.setdefault("supports_transactions", True)
    table_format = configured_table_format()
    if table_format is not None:
        options.setdefault("preferred_table_format", table_format)
    if destination_type == "duckdb":
        duckdb_file = duckdb_file or duckdb_file_target()
    if duckdb_file is not None:  # the one rule above, so loader and readers open the same file
        destination = dlt.destinations.duckdb(credentials=str(duckdb_file), destination_name=DESTINATION_NAME, **options)
    else:
        try:
            destination = dlt.destination(DESTINATION_NAME, destination_type=destination_type, **options)
        except UnknownDestinationModule:
            raise WarehouseConfigError(
                f"unknown destination type {destination_type!r} in [destination.{DESTINATION_NAME}] "
                f"destination_type ({ENV_PREFIX}DESTINATION_TYPE); {did_you_mean(destination_type)}dlt 1.31 knows: "
                f"{', '.join(known_destination_types())}"
            ) from None
    if table_format is not None:
        _check_table_format(destination, destination_type, table_format)
    return destination


def _check_table_format(destination: Any, destination_type: str, table_format: str) -> None:
    """Refuse, before anything runs and with the key to change, a table format the destination lacks
    (most likely: ``table_format`` set while ``destination_type`` is still the default ``duckdb``)."""
    offered = list(destination.capabilities().supported_table_formats or ())
    if table_format not in offered:
        raise WarehouseConfigError(
            f"destination.{DESTINATION_NAME}.table_format = {table_format!r} (env {ENV_PREFIX}TABLE_FORMAT) does not "
            f"work on {destination_type} in dlt 1.31 (it offers {', '.join(offered) or 'no table formats'}); "
            f"use destination_type = \"filesystem\" for Delta or Iceberg files, or unset table_format"
        )


def known_destination_types() -> list[str]:
    """dlt's built-in destination types (``duckdb``, ``postgres``, ``filesystem``, ...), sorted."""
    import dlt.destinations

    return sorted(name for name in dlt.destinations.__all__ if name != "destination")


def did_you_mean(destination_type: str) -> str:
    """``did you mean 'duckdb'? `` for a near miss of a known destination type (``duckdbb``), else ``""``."""
    import difflib

    close = difflib.get_close_matches(destination_type.lower(), known_destination_types(), n=1, cutoff=0.75)
    return f"did you mean {close[0]!r}? " if close else ""


def supported_replace_strategies(destination: Any) -> list[str]:
    """Replace strategies the destination offers for the project's tables: plain ones, or in the
    configured table format (on filesystem, Delta and Iceberg tables take only ``insert-from-staging``,
    plain files only ``truncate-and-insert``)."""
    caps = destination.capabilities()
    strategies = list(caps.supported_replace_strategies or ())
    if caps.replace_strategies_selector is not None:
        table: dict[str, Any] = {"name": DATASET_NAME}
        if caps.preferred_table_format:
            table["table_format"] = caps.preferred_table_format
        strategies = list(caps.replace_strategies_selector(strategies, table_schema=table))
    return strategies


def _replace_strategy_fallback(destination: Any) -> str | None:
    """The strategy to use instead of the configured one, or None to keep what dlt resolves.

    dlt does not fall back by itself: a strategy the destination lacks fails the load with
    ``AssertionError: Must be able to get replace strategy for <table>`` after the whole extract.
    Only the project default falls back; any other choice is the user's, reported by
    :func:`check_warehouse`.
    """
    configured = configured_replace_strategy()
    supported = supported_replace_strategies(destination)
    if configured == ATOMIC_REPLACE and supported and configured not in supported:
        return supported[0]
    return None


def check_warehouse(pipeline: Any, destination_type: str, location: str, replaced_by_rename: bool = False) -> str | None:
    """Fail fast, before a long extract, on configuration that cannot load; returns the resolved
    replace strategy.

    Resolves the destination's configuration (missing credentials, bucket URL, driver extra) and,
    for server destinations, opens one connection. DuckDB files are left alone (the load creates
    them); in a bucket, tables already written in another format than ``table_format`` stop the run. ``replaced_by_rename``: the load goes into a fresh DuckDB file that replaces the
    old one whole, so the per-table strategy need not be atomic.
    """
    from dlt.common.configuration.exceptions import ConfigFieldMissingException
    from dlt.common.exceptions import MissingDependencyException

    configured = configured_replace_strategy()
    supported = supported_replace_strategies(pipeline.destination)
    if not replaced_by_rename and configured and supported and configured not in supported and configured != ATOMIC_REPLACE:
        raise WarehouseConfigError(
            f"replace_strategy {configured!r} does not work on {destination_type} in dlt 1.31 (it offers "
            f"{', '.join(supported)}); set [destination.{DESTINATION_NAME}] replace_strategy or "
            f"{ENV_PREFIX}REPLACE_STRATEGY to one of those"
        )
    try:
        client = pipeline.destination_client()
    except ConfigFieldMissingException as exc:
        keys = " / ".join(f"{ENV_PREFIX}{name.upper()}" for name in exc.fields)
        raise WarehouseConfigError(
            f"the {destination_type} destination `{DESTINATION_NAME}` is missing {', '.join(exc.fields)}: set "
            f"{keys} or the same key under [destination.{DESTINATION_NAME}] in .dlt/secrets.toml"
        ) from exc
    except MissingDependencyException as exc:
        raise WarehouseConfigError(
            f"the {destination_type} destination needs extra packages: "
            + "; ".join(f'pip install "{dependency}"' for dependency in exc.dependencies)
        ) from exc
    if destination_type == "filesystem":
        _check_no_format_switch(client, configured_table_format() or "native")
    if destination_type not in ("duckdb", "filesystem") and hasattr(client, "sql_client"):
        try:
            with client.sql_client:
                pass
        except Exception as exc:
            cause = " ".join(str(exc).split()) or type(exc).__name__
            raise WarehouseConfigError(f"cannot connect to the {destination_type} warehouse at {location}: {cause}") from exc
    resolved = getattr(client.config, "replace_strategy", None)
    if not resolved:  # dlt's default: the destination's first strategy
        resolved = supported[0] if supported else None
    if configured == ATOMIC_REPLACE and resolved != ATOMIC_REPLACE and not replaced_by_rename:
        logger.warning(
            "%s has no staging dataset, so %s is not available: using %s (not atomic: a load that fails "
            "can leave tables empty or partial)", destination_type, ATOMIC_REPLACE, resolved,
        )
    return str(resolved) if resolved else None


def written_table_formats(client: Any) -> dict[str, str]:
    """Table folder -> ``delta``, ``iceberg`` or ``native`` (plain files) as the filesystem
    destination's dataset holds them now; dlt's own ``_dlt_*`` tables left out."""
    fs, dataset_path = client.fs_client, client.dataset_path
    if not fs.isdir(dataset_path):
        return {}
    formats: dict[str, str] = {}
    for entry in fs.ls(dataset_path, detail=True):
        name = str(entry["name"]).rstrip("/").rsplit("/", 1)[-1]
        if entry["type"] != "directory" or name.startswith("_dlt_"):
            continue
        inside = {str(path).rstrip("/").rsplit("/", 1)[-1] for path in fs.ls(entry["name"], detail=False)}
        formats[name] = "delta" if "_delta_log" in inside else "iceberg" if "metadata" in inside else "native"
    return formats


def _check_no_format_switch(client: Any, table_format: str) -> None:
    """dlt 1.31 does not convert a table between plain files, Delta and Iceberg: it writes the new
    format next to the old files (Delta beside stale parquet, plain files beside a ``_delta_log``
    whose data it deleted), and readers of either kind then see wrong data. Refuse before loading."""
    other = {name: found for name, found in written_table_formats(client).items() if found != table_format}
    if other:
        names = sorted(other)
        shown = ", ".join(f"{name} ({other[name]})" for name in names[:3]) + (", ..." if len(names) > 3 else "")
        raise WarehouseConfigError(
            f"{str(client.dataset_path).rstrip('/')} holds tables in another format than table_format = {table_format!r} "
            f"({shown}); dlt 1.31 cannot switch a table's format in place: point bucket_url "
            f"({ENV_PREFIX}BUCKET_URL) at an empty location, or delete that folder first"
        )
